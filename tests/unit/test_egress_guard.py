"""The guard as the sandbox egress proxy uses it: a deny list, a port rule, the same address
rules. Pure decisions: literals need no lookup, and names go to a fake resolver."""

import re

import pytest

from aios.net.egress import make_guard, parse_listen
from aios.net.guard import AddressGuard, parse_deny_entry, parse_ports

from ..net_helpers import no_lookup, table_resolver

PUBLIC = "93.184.216.34"
NAMES = {
    "public.test": [PUBLIC, "2606:2800:220:1:248:1893:25c8:1946"],
    "other.test": ["8.8.8.8"],
    "mixed.test": ["8.8.8.8", PUBLIC],  # one denied address is enough to refuse
    "v6.test": ["2606:2800:220:1::7"],
    "bridge.test": ["172.17.0.5"],
}


fake_resolve = table_resolver(NAMES)


def egress(allow=(), deny=(), ports="80,443", resolve=fake_resolve, own=()) -> AddressGuard:
    guard = make_guard(allow, deny, ports, own)
    guard.resolve = resolve
    return guard


def refused(verdict, reason: str) -> bool:
    return not verdict and verdict.reason == f"refused: {reason}"


def test_a_denied_name_is_refused_without_a_lookup():
    guard = egress(deny=["public.test", "Evil.Test."], resolve=no_lookup)
    assert refused(guard.check("https://public.test/"), "public.test is a name on the deny list")
    assert refused(guard.check("http://EVIL.test./x"), "evil.test. is a name on the deny list")
    assert refused(guard.check_host("evil.test", 443), "evil.test is a name on the deny list")


def test_a_denied_name_covers_only_itself():
    guard = egress(deny=["public.test"])
    assert not guard.check("https://www.public.test/")  # refused, but as unresolvable
    assert "deny list" not in guard.check("https://www.public.test/").reason
    assert guard.check("https://other.test/")


def test_a_suffix_pattern_covers_the_domain_and_every_name_under_it():
    guard = egress(deny=["*.public.test"], resolve=no_lookup)
    for host in ("public.test", "a.public.test", "a.b.PUBLIC.test."):
        assert refused(guard.check_host(host, 443), f"{host.lower()} is a name on the deny list")
    assert egress(deny=["*.public.test"]).check("https://notpublic.test/").reason != \
        "refused: notpublic.test is a name on the deny list"


@pytest.mark.parametrize("host, reason", [
    (PUBLIC, f"{PUBLIC} is an address on the deny list"),
    ("[::ffff:93.184.216.34]", f"::ffff:93.184.216.34 is an IPv4-mapped form of {PUBLIC}, "
                               f"an address on the deny list"),
    ("[2002:5db8:d822::1]", f"2002:5db8:d822::1 is a 6to4 form of {PUBLIC}, an address on"),
    ("[64:ff9b::5db8:d822]", f"64:ff9b::5db8:d822 is a NAT64 form of {PUBLIC}, an address on"),
    ("1572395042", "1572395042 is an address on the deny list"),  # decimal
    ("0135.0270.0330.042", "0135.0270.0330.042 is an address on the deny list"),  # octal
    ("0x5d.0xb8.0xd8.0x22", "0x5d.0xb8.0xd8.0x22 is an address on the deny list"),
    ("93.184.55330", "93.184.55330 is an address on the deny list"),
])
def test_a_denied_address_is_refused_in_every_spelling(host, reason):
    for deny in ([PUBLIC], ["93.184.216.0/24"], ["[93.184.216.34]"]):
        verdict = egress(deny=deny, resolve=no_lookup).check(f"http://{host}/")
        assert not verdict and verdict.reason.startswith(f"refused: {reason}"), (deny, verdict)


def test_denied_networks_of_both_families():
    guard = egress(deny=["93.184.216.0/24", "2606:2800:220::/48"], resolve=no_lookup)
    assert not guard.check("http://93.184.216.1/")
    assert refused(guard.check("http://[2606:2800:220:1::1]/"),
                   "2606:2800:220:1::1 is an address on the deny list")
    assert guard.check("http://93.184.217.1/") and guard.check("http://[2606:2800:221::1]/")


@pytest.mark.parametrize("host, reason", [
    ("public.test", f"public.test resolves to {PUBLIC}, an address on the deny list"),
    ("mixed.test", f"mixed.test resolves to {PUBLIC}, an address on the deny list"),
    ("v6.test", "v6.test resolves to 2606:2800:220:1::7, an address on the deny list"),
])
def test_a_name_resolving_into_a_denied_network_is_refused(host, reason):
    guard = egress(deny=["93.184.216.0/24", "2606:2800:220:1::/64"])
    assert refused(guard.check(f"https://{host}/"), reason)


def test_deny_wins_over_the_allowlist():
    guard = egress(allow=[PUBLIC, "api.public.test:8443", "public.test", "bridge.test"],
                   deny=[f"{PUBLIC}/32", "*.public.test", "172.16.0.0/12"])
    assert not guard.check(f"http://{PUBLIC}/")
    assert refused(guard.check("https://api.public.test:8443/"),
                   "api.public.test is a name on the deny list")
    # An allowlisted name is looked up when addresses are denied, and dialled at what passed.
    assert refused(guard.check("https://bridge.test/"),
                   "bridge.test resolves to 172.17.0.5, an address on the deny list")
    assert not guard.check("http://[::ffff:172.17.0.1]/")


def test_an_allowlisted_name_is_dialled_at_its_checked_addresses_when_addresses_are_denied():
    verdict = egress(allow=["bridge.test"], deny=["10.0.0.0/8"]).check("http://bridge.test/")
    assert verdict and verdict.addresses == ("172.17.0.5",)
    # Without denied addresses an allowlisted name is not looked up at all, as for browse.
    assert egress(allow=["bridge.test"], deny=["*.evil.test"], resolve=no_lookup).check(
        "http://bridge.test/") == (True, "", ())


def test_egress_allows_ports_80_and_443_only_by_default():
    guard = egress(resolve=no_lookup)
    assert guard.check(f"http://{PUBLIC}/") and guard.check(f"https://{PUBLIC}/")
    assert guard.check_host(PUBLIC, 443) and guard.check_host(PUBLIC, 80)
    for port in (25, 22, 8080, 8443):
        assert refused(guard.check_host(PUBLIC, port),
                       f"port {port} is not allowed (allowed: 80, 443)")
    assert refused(guard.check(f"https://{PUBLIC}:8443/"),
                   "port 8443 is not allowed (allowed: 80, 443)")
    assert refused(guard.check_host("public.test", 25),  # no lookup for a refused port
                   "port 25 is not allowed (allowed: 80, 443)")


def test_an_allowlisted_host_and_port_passes_on_its_port_only():
    guard = egress(allow=["127.0.0.1:8080", "[::1]:3000"], resolve=no_lookup)
    assert guard.check("http://127.0.0.1:8080/") and guard.check_host("::1", 3000)
    assert refused(guard.check("http://127.0.0.1/"), "127.0.0.1 is a loopback address")
    assert refused(guard.check_host("127.0.0.1", 8081),
                   "port 8081 is not allowed (allowed: 80, 443)")


def test_an_allowlisted_host_without_a_port_passes_on_the_allowed_ports_only():
    guard = egress(allow=["127.0.0.1"], resolve=no_lookup)
    assert guard.check("http://127.0.0.1/") and guard.check_host("127.0.0.1", 443)
    assert refused(guard.check("http://127.0.0.1:8080/"),
                   "port 8080 is not allowed (allowed: 80, 443)")


def test_any_port_when_no_port_rule():
    guard = AddressGuard(deny=["*.evil.test"], resolve=no_lookup)
    assert guard.ports is None and guard.check(f"http://{PUBLIC}:25/")


@pytest.mark.parametrize("url, reason", [
    ("http://169.254.169.254/", "169.254.169.254 is a cloud metadata address"),
    ("http://[fd00:ec2::254]/", "fd00:ec2::254 is a cloud metadata address"),
    ("http://100.100.100.200/", "100.100.100.200 is a cloud metadata address"),
    ("http://100.64.0.1/", "100.64.0.1 is a shared (CGNAT) address"),
    ("http://172.17.0.1/", "172.17.0.1 is a private address"),
    ("https://10.0.0.1/", "10.0.0.1 is a private address"),
    ("http://127.0.0.1/", "127.0.0.1 is a loopback address"),
    ("http://localhost/", "localhost is a loopback name"),
    ("http://2130706433/", "2130706433 is a loopback address"),
    ("https://bridge.test/", "bridge.test resolves to 172.17.0.5, a private address"),
])
def test_internal_addresses_are_still_refused(url, reason):
    assert refused(egress(deny=["*.evil.test", "203.0.113.0/24"]).check(url), reason)


def test_other_schemes_are_refused():
    for url in ("ftp://93.184.216.34/", "file:///etc/passwd", "ws://93.184.216.34/"):
        assert "scheme is not allowed (only http and https)" in egress().check(url).reason


@pytest.mark.parametrize("entry, parsed", [
    ("Example.COM", "example.com"), ("example.com.", "example.com"),
    ("*.Example.com", "*.example.com"), ("172.17.0.1", "172.17.0.1/32"),
    ("172.16.0.0/12", "172.16.0.0/12"), ("10.1.2.3/8", "10.0.0.0/8"),
    ("fd00::/8", "fd00::/8"), ("[::1]", "::1/128"), ("0x7f.1", "127.0.0.1/32"),
    (" metadata.google.internal ", "metadata.google.internal"),
])
def test_deny_entries(entry, parsed):
    assert str(parse_deny_entry(entry)) == parsed


@pytest.mark.parametrize("entry", ["", "*", "*.", "a b", "evil.test:443", "10.0.0.0/33",
                                   "10.0.0.256", "1.2.3.4.5", "*.*.evil", "-evil.test",
                                   "evil..test", "http://evil.test", "fd00::/129"])
def test_bad_deny_entries_name_the_entry(entry):
    with pytest.raises(ValueError, match=re.escape(f"bad deny entry {entry!r}")):
        parse_deny_entry(entry)
    with pytest.raises(ValueError, match="bad deny entry"):
        make_guard(deny=["ok.test", entry])


def test_ports():
    assert parse_ports("80,443") == {80, 443}
    assert parse_ports(" 443 , 80,,8080") == {80, 443, 8080}
    for text, bad in (("80,0", "'0'"), ("65536", "'65536'"), ("http", "'http'"),
                      ("80,-1", "'-1'")):
        with pytest.raises(ValueError, match=f"bad port {bad}"):
            parse_ports(text)
    with pytest.raises(ValueError, match="no ports"):
        parse_ports(" , ")


def test_listen_addresses():
    assert parse_listen("0.0.0.0:3128") == ("0.0.0.0", 3128)
    assert parse_listen("[::]:3128") == ("::", 3128)
    for text in ("3128", "0.0.0.0", ":3128", "0.0.0.0:x", "0.0.0.0:70000"):
        with pytest.raises(ValueError, match="bad listen address"):
            parse_listen(text)


def test_own_addresses_are_refused_unless_allowlisted_whatever_their_range():
    own = [PUBLIC, "2606:2800:220::/48", "172.17.0.0/16"]
    guard = egress(allow=["other.test", "[2606:2800:220::9]"], own=own)
    mine = "an address of this host or its networks"
    assert refused(guard.check(f"http://{PUBLIC}/"), f"{PUBLIC} is {mine}")
    assert refused(guard.check("http://1572395042/"), f"1572395042 is {mine}")
    assert refused(guard.check("http://[::ffff:93.184.216.34]/"),
                   f"::ffff:93.184.216.34 is an IPv4-mapped form of {PUBLIC}, {mine}")
    assert refused(guard.check("http://public.test/"), f"public.test resolves to {PUBLIC}, {mine}")
    assert refused(guard.check("http://bridge.test/"),
                   f"bridge.test resolves to 172.17.0.5, {mine}")
    assert guard.check("http://[2606:2800:220::9]/")  # the allowlist opens them, unlike deny
    assert guard.check("http://8.8.8.8/") and guard.check("http://other.test/")


def test_own_entries_are_addresses_or_networks():
    for entry in ("host.test", "*.test", "10.0.0.0/40", ""):
        with pytest.raises(ValueError, match=re.escape(f"bad address or network {entry!r}")):
            make_guard(own=[entry])
