"""The address guard: may the agent's browser reach this URL? Only http(s) to public unicast
addresses, unless the host (or host:port) is allowlisted. A name is refused when ANY of its
addresses is not public. Deciding makes no traffic but the name's lookup (none for literals).

DNS rebinding: a name may resolve to a public address here and to 127.0.0.1 for whoever
resolves it next. Callers that connect must dial `Verdict.addresses`, the addresses checked
here (GuardProxy does); a check that lets someone else resolve again decides on a snapshot."""

import ipaddress
import re
import socket
from dataclasses import dataclass
from typing import Callable, Iterable, Optional, Union
from urllib.parse import urlsplit

IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]
Resolver = Callable[[str, int], list[str]]

DEFAULT_PORTS = {"http": 80, "https": 443}
# Legacy IPv4 spellings that browsers and inet_aton accept: 2130706433, 0x7f.1, 0177.0.0.1
_LEGACY_IPV4 = re.compile(r"(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}", re.I)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_RFC1918 = [ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
                                              "fc00::/7")]
_NAMED = [(ipaddress.ip_network(net), what) for net, what in [
    ("169.254.169.254/32", "a cloud metadata address"),
    ("fd00:ec2::254/128", "a cloud metadata address"),
    ("100.100.100.200/32", "a cloud metadata address"),
    ("100.64.0.0/10", "a shared (CGNAT) address"),
]]


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    reason: str = ""  # "refused: 127.0.0.1 is a loopback address"
    addresses: tuple[str, ...] = ()  # the checked addresses to dial (none for allowlisted)

    def __bool__(self) -> bool:
        return self.allowed


def system_resolve(host: str, port: int) -> list[str]:
    return [info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


def describe_address(ip: IPAddress) -> Optional[str]:
    """What makes `ip` off limits ("a loopback address"...), or None for a public one."""
    if ip.version == 6:
        for form, v4 in (("an IPv4-mapped", ip.ipv4_mapped), ("a 6to4", ip.sixtofour),
                         ("a NAT64", _nat64_ipv4(ip))):
            if v4 is not None:
                problem = describe_address(v4)
                if problem:
                    return f"{form} form of {v4}, {problem}"
                if form != "a 6to4":
                    return None  # the IPv4 address is what gets dialled
    for network, what in _NAMED:
        if ip.version == network.version and ip in network:
            return what
    checks = [(ip.is_loopback, "a loopback address"),
              (ip.is_unspecified, "an unspecified address"),
              (ip.is_link_local, "a link-local address"),
              (ip.is_multicast, "a multicast address"),
              (ip.version == 6 and ip.is_site_local, "a site-local address"),
              (any(ip in n for n in _RFC1918 if n.version == ip.version), "a private address"),
              (ip.is_reserved, "a reserved address"),
              (not ip.is_global, "a special-purpose, non-public address")]
    return next((what for hit, what in checks if hit), None)


def _nat64_ipv4(ip: ipaddress.IPv6Address) -> Optional[ipaddress.IPv4Address]:
    return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF) if ip in _NAT64 else None


def literal_address(host: str) -> Optional[IPAddress]:
    """The address a host written as an IP literal (legacy IPv4 forms too) stands for."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    bare = host[:-1] if host.endswith(".") else host
    if _LEGACY_IPV4.fullmatch(bare):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(bare))
        except OSError:
            return None
    return None


def canonical_host(host: str) -> str:
    host = host.strip().lower().strip("[]")
    address = literal_address(host)
    return str(address) if address is not None else host.rstrip(".")


def parse_allow_entry(entry: str) -> tuple[str, Optional[int]]:
    """"host", "host:port", "[v6]" or "[v6]:port" (a bare IPv6 address has no port)."""
    entry = entry.strip().lower()
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else None
    elif entry.count(":") == 1:
        host, port = entry.split(":")
    else:
        host, port = entry, None
    if not host or (port is not None and not port.isdigit()):
        raise ValueError(f"bad browse allowlist entry {entry!r}: use host or host:port")
    return canonical_host(host), int(port) if port is not None else None


class AddressGuard:
    def __init__(self, allowlist: Iterable[str] = (), resolve: Resolver = system_resolve,
                 schemes: Iterable[str] = ("http", "https")):
        self.allowlist = {parse_allow_entry(entry) for entry in allowlist}
        self.resolve = resolve
        self.schemes = frozenset(schemes)

    def allowlisted(self, host: str, port: int) -> bool:
        host = canonical_host(host)
        return (host, None) in self.allowlist or (host, port) in self.allowlist

    def check(self, url: str) -> Verdict:
        try:
            parts = urlsplit(url.strip())
            host, port = parts.hostname, parts.port
        except ValueError as exc:
            return Verdict(False, f"refused: malformed URL ({exc})")
        scheme = parts.scheme.lower()
        if scheme not in self.schemes:
            return Verdict(False, f"refused: the {scheme or 'missing'} scheme is not allowed "
                                  f"(only {' and '.join(sorted(self.schemes))})")
        if not host:
            return Verdict(False, "refused: the URL has no host")
        return self.check_host(host, port or DEFAULT_PORTS.get(scheme, 80))

    def check_host(self, host: str, port: int) -> Verdict:
        host = host.strip().lower().strip("[]")
        if not host:
            return Verdict(False, "refused: no host")
        if self.allowlisted(host, port):
            return Verdict(True)
        address = literal_address(host)
        if address is not None:
            problem = describe_address(address)
            return Verdict(False, f"refused: {host} is {problem}") if problem else \
                Verdict(True, addresses=(str(address),))
        name = host.rstrip(".")
        if name == "localhost" or name.endswith(".localhost"):
            return Verdict(False, f"refused: {host} is a loopback name")
        return self._check_resolved(host, port)

    def _check_resolved(self, host: str, port: int) -> Verdict:
        try:
            addresses = self.resolve(host, port)
        except (OSError, UnicodeError) as exc:
            return Verdict(False, f"refused: cannot resolve {host} ({exc})")
        if not addresses:
            return Verdict(False, f"refused: {host} has no address")
        for text in addresses:
            try:
                problem = describe_address(ipaddress.ip_address(text))
            except ValueError:
                problem = "not an IP address"
            if problem:
                return Verdict(False, f"refused: {host} resolves to {text}, {problem}")
        return Verdict(True, addresses=tuple(dict.fromkeys(addresses)))
