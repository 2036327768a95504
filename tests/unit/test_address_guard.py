"""The address guard's decisions. No traffic: literals need no lookup, and names go to a fake
resolver (a test that reached the real one would fail: see `no_lookup`)."""

import pytest

from aios.net.guard import AddressGuard

from ..net_helpers import no_lookup, table_resolver

NAMES = {
    "intranet.test": ["10.1.2.3"],
    "mixed.test": ["93.184.216.34", "127.0.0.1"],  # one bad address is enough to refuse
    "public.test": ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"],
    "mapped.test": ["::ffff:127.0.0.1"],
    "metadata.test": ["169.254.169.254"],
}


fake_resolve = table_resolver(NAMES)


def guard(allow=(), resolve=no_lookup) -> AddressGuard:
    return AddressGuard(allow, resolve=resolve)


@pytest.mark.parametrize("url, reason", [
    ("http://127.0.0.1/", "127.0.0.1 is a loopback address"),
    ("http://127.9.9.9:8080/x", "127.9.9.9 is a loopback address"),
    ("http://[::1]/", "::1 is a loopback address"),
    ("http://localhost/", "localhost is a loopback name"),
    ("http://LOCALHOST./", "localhost. is a loopback name"),
    ("http://api.localhost/", "api.localhost is a loopback name"),
    ("http://10.0.0.1/", "10.0.0.1 is a private address"),
    ("http://172.16.0.1/", "172.16.0.1 is a private address"),
    ("http://172.31.255.255/", "172.31.255.255 is a private address"),
    ("http://192.168.1.1/", "192.168.1.1 is a private address"),
    ("http://100.64.0.1/", "100.64.0.1 is a shared (CGNAT) address"),
    ("http://[fc00::1]/", "fc00::1 is a private address"),
    ("http://[fd12:3456::1]/", "fd12:3456::1 is a private address"),
    ("http://[fe80::1]/", "fe80::1 is a link-local address"),
    ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a cloud metadata address"),
    ("http://169.254.1.1/", "169.254.1.1 is a link-local address"),
    ("http://[fd00:ec2::254]/", "fd00:ec2::254 is a cloud metadata address"),
    ("http://0.0.0.0/", "0.0.0.0 is an unspecified address"),
    ("http://[::]/", ":: is an unspecified address"),
    ("http://0.1.2.3/", "0.1.2.3 is a special-purpose, non-public address"),
    ("http://224.0.0.1/", "224.0.0.1 is a multicast address"),
    ("http://[ff02::1]/", "ff02::1 is a multicast address"),
    ("http://240.0.0.1/", "240.0.0.1 is a reserved address"),
    ("http://255.255.255.255/", "255.255.255.255 is a reserved address"),
    ("http://192.0.2.1/", "192.0.2.1 is a special-purpose, non-public address"),
    ("http://[::ffff:127.0.0.1]/", "::ffff:127.0.0.1 is an IPv4-mapped form of 127.0.0.1, "
                                   "a loopback address"),
    ("http://[::ffff:10.0.0.1]/", "::ffff:10.0.0.1 is an IPv4-mapped form of 10.0.0.1, "
                                  "a private address"),
    ("http://[::ffff:169.254.169.254]/", "an IPv4-mapped form of 169.254.169.254, "
                                         "a cloud metadata address"),
    ("http://[2002:7f00:1::1]/", "a 6to4 form of 127.0.0.1, a loopback address"),
    ("http://[64:ff9b::a9fe:a9fe]/", "a NAT64 form of 169.254.169.254, a cloud metadata"),
    ("http://[::127.0.0.1]/", "::127.0.0.1 is a reserved address"),  # IPv4-compatible
    ("http://[2001::1]/", "2001::1 is a special-purpose, non-public address"),  # Teredo
    # Legacy IPv4 spellings browsers accept
    ("http://2130706433/", "2130706433 is a loopback address"),
    ("http://0x7f.1/", "0x7f.1 is a loopback address"),
    ("http://0177.0.0.1/", "0177.0.0.1 is a loopback address"),
    ("http://127.1/", "127.1 is a loopback address"),
    ("http://127.0.0.1./", "127.0.0.1. is a loopback address"),
    ("http://user:pw@127.0.0.1:80/", "127.0.0.1 is a loopback address"),
])
def test_internal_addresses_are_refused_without_a_lookup(url, reason):
    verdict = guard().check(url)
    assert not verdict
    assert verdict.reason.startswith("refused: ") and reason in verdict.reason


@pytest.mark.parametrize("url, reason", [
    ("http://intranet.test/", "intranet.test resolves to 10.1.2.3, a private address"),
    ("https://mixed.test/", "mixed.test resolves to 127.0.0.1, a loopback address"),
    ("http://mapped.test/", "mapped.test resolves to ::ffff:127.0.0.1, an IPv4-mapped form "
                            "of 127.0.0.1, a loopback address"),
    ("http://metadata.test/", "metadata.test resolves to 169.254.169.254, a cloud metadata"),
    ("http://nowhere.test/", "cannot resolve nowhere.test"),
])
def test_names_are_refused_when_any_address_is_internal(url, reason):
    verdict = guard(resolve=fake_resolve).check(url)
    assert not verdict and reason in verdict.reason


@pytest.mark.parametrize("url", [
    "http://93.184.216.34/", "https://93.184.216.34:8443/path?q=1",
    "http://[2606:2800:220:1:248:1893:25c8:1946]/", "http://[::ffff:93.184.216.34]/",
    "http://[64:ff9b::5db8:d822]/", "http://8.8.8.8/", "http://100.128.0.1/",
])
def test_public_addresses_are_allowed(url):
    verdict = guard().check(url)
    assert verdict and verdict.addresses and verdict.reason == ""


def test_public_names_are_allowed_with_the_addresses_to_dial():
    verdict = guard(resolve=fake_resolve).check("https://public.test/a")
    assert verdict.addresses == ("93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946")


@pytest.mark.parametrize("url", [
    "file:///etc/passwd", "ftp://93.184.216.34/", "javascript:alert(1)", "data:text/html,hi",
    "gopher://93.184.216.34/", "ws://93.184.216.34/", "chrome://settings", "//93.184.216.34/",
    "93.184.216.34"])
def test_other_schemes_are_refused(url):
    verdict = guard().check(url)
    assert not verdict and "scheme is not allowed" in verdict.reason


@pytest.mark.parametrize("url", ["http://[::1/", "http://93.184.216.34:99999/", "http:///path"])
def test_malformed_urls_are_refused(url):
    assert not guard().check(url)


def test_allowlisted_host_allows_every_port_and_skips_the_checks():
    allow = guard(["127.0.0.1", "Intranet.Test", "[::1]"])
    for url in ("http://127.0.0.1/", "http://127.0.0.1:8080/x", "https://intranet.test:444/",
                "http://INTRANET.test./", "http://[::1]:9000/", "http://0x7f.0.0.1/"):
        assert allow.check(url), url
    assert not allow.check("http://127.0.0.2/")
    assert not allow.check("http://localhost/")  # names are matched as written, not resolved


def test_allowlisted_host_and_port_allows_only_that_port():
    allow = guard(["127.0.0.1:8080", "intranet.test:443", "[::1]:9000"], resolve=fake_resolve)
    assert allow.check("http://127.0.0.1:8080/")
    assert allow.check("https://intranet.test/")  # the default port
    assert allow.check("http://[::1]:9000/")
    for url in ("http://127.0.0.1/", "http://127.0.0.1:8081/", "http://intranet.test/",
                "http://[::1]:9001/"):
        assert not allow.check(url), url


def test_allowlist_does_not_widen_the_schemes():
    assert not guard(["127.0.0.1"]).check("file://127.0.0.1/etc/passwd")


def test_bad_allowlist_entries_are_configuration_errors():
    with pytest.raises(ValueError, match="bad allowlist entry"):
        AddressGuard(["127.0.0.1:http"])


def test_check_host_is_what_the_proxy_asks_for_connect():
    assert not guard().check_host("127.0.0.1", 443)
    assert guard(["127.0.0.1:443"]).check_host("127.0.0.1", 443)
    assert guard().check_host("[2606:2800:220:1:248:1893:25c8:1946]", 443)
    assert not guard().check_host("", 443)
