"""The address guard: may this URL or host:port be reached? Only http(s) (or the schemes given)
to public unicast addresses, unless the host (or host:port) is allowlisted; optionally only
some ports, and never a host on the deny list (see deny.py), which wins over the allowlist. A
name is refused when ANY of its addresses is not public or is denied. Deciding makes no
traffic but the name's lookup (none for literals; none for allowlisted names either, unless
the deny list holds addresses their lookup must be checked against).

DNS rebinding: a name may resolve to a public address here and to 127.0.0.1 for whoever
resolves it next. Callers that connect must dial `Verdict.addresses`, the addresses checked
here (GuardProxy does); a check that lets someone else resolve again decides on a snapshot."""

import ipaddress
import socket
from typing import Callable, Iterable, NamedTuple, Optional
from urllib.parse import urlsplit

from .addresses import IPAddress, canonical_host, embedded_ipv4, literal_address
from .deny import DenyList, parse_deny_entry, parse_network

__all__ = ["AddressGuard", "Verdict", "describe_address", "parse_allow_entry",
           "parse_deny_entry", "parse_network", "parse_ports", "canonical_host",
           "literal_address"]

Resolver = Callable[[str, int], list[str]]

DEFAULT_PORTS = {"http": 80, "https": 443}
_RFC1918 = [ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
                                              "fc00::/7")]
_NAMED = [(ipaddress.ip_network(net), what) for net, what in [
    ("169.254.169.254/32", "a cloud metadata address"),
    ("fd00:ec2::254/128", "a cloud metadata address"),
    ("100.100.100.200/32", "a cloud metadata address"),
    ("100.64.0.0/10", "a shared (CGNAT) address"),
]]


class Verdict(NamedTuple):  # not a dataclass: the egress sidecar starts without `inspect`
    allowed: bool
    reason: str = ""  # "refused: 127.0.0.1 is a loopback address"
    addresses: tuple[str, ...] = ()  # the checked addresses to dial (none: dial the host)

    def __bool__(self) -> bool:
        return self.allowed


def system_resolve(host: str, port: int) -> list[str]:
    return [info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


def describe_address(ip: IPAddress) -> Optional[str]:
    """What makes `ip` off limits ("a loopback address"...), or None for a public one."""
    for form, v4 in embedded_ipv4(ip):
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
        raise ValueError(f"bad allowlist entry {entry!r}: use host or host:port")
    return canonical_host(host), int(port) if port is not None else None


def parse_ports(text: str) -> frozenset[int]:
    """"80,443" -> {80, 443}. Raises ValueError naming a bad port."""
    ports = set()
    for item in filter(None, (part.strip() for part in text.split(","))):
        if not item.isdigit() or not 0 < int(item) < 65536:
            raise ValueError(f"bad port {item!r}: use numbers from 1 to 65535")
        ports.add(int(item))
    if not ports:
        raise ValueError("no ports: name at least one, e.g. 80,443")
    return frozenset(ports)


class AddressGuard:
    """`ports`: the destination ports allowed (None: any); an allowlist entry with a port
    allows that port whatever `ports` says, one without a port allows the ports in `ports`.
    `deny`: entries for DenyList, which wins over everything. `own`: addresses and networks
    of the machine the proxy runs on and of its (Docker) networks, refused like private ones
    (so unless allowlisted) whatever their range: a host's public address included."""

    def __init__(self, allowlist: Iterable[str] = (), resolve: Resolver = system_resolve,
                 schemes: Iterable[str] = ("http", "https"),
                 ports: Optional[Iterable[int]] = None, deny: Iterable[str] = (),
                 own: Iterable[str] = ()):
        self.allowlist = {parse_allow_entry(entry) for entry in allowlist}
        self.resolve = resolve
        self.schemes = frozenset(schemes)
        self.ports = frozenset(ports) if ports is not None else None
        self.deny = DenyList(deny)
        own = [str(parse_network(entry)) for entry in own]  # addresses only, no names
        self.own = DenyList(own, where="of this host or its networks")

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
        address = literal_address(host)
        problem = self.deny.address_problem(address) if address is not None else \
            self.deny.name_problem(host)
        if problem:
            return Verdict(False, f"refused: {host} is {problem}")
        if self.ports is not None and port not in self.ports and \
                (canonical_host(host), port) not in self.allowlist:
            allowed = ", ".join(map(str, sorted(self.ports)))
            return Verdict(False, f"refused: port {port} is not allowed (allowed: {allowed})")
        if self.allowlisted(host, port):
            # Unchecked, dialled by name; but a deny list of addresses applies to its lookup.
            return self._check_resolved(host, port, self.deny.address_problem) \
                if address is None and self.deny.networks else Verdict(True)
        if address is not None:
            problem = self.own.address_problem(address) or describe_address(address)
            return Verdict(False, f"refused: {host} is {problem}") if problem else \
                Verdict(True, addresses=(str(address),))
        name = host.rstrip(".")
        if name == "localhost" or name.endswith(".localhost"):
            return Verdict(False, f"refused: {host} is a loopback name")
        return self._check_resolved(host, port, self._address_problem)

    def _address_problem(self, ip: IPAddress) -> Optional[str]:
        return self.deny.address_problem(ip) or self.own.address_problem(ip) or \
            describe_address(ip)

    def _check_resolved(self, host: str, port: int,
                        judge: Callable[[IPAddress], Optional[str]]) -> Verdict:
        try:
            addresses = self.resolve(host, port)
        except (OSError, UnicodeError) as exc:
            return Verdict(False, f"refused: cannot resolve {host} ({exc})")
        if not addresses:
            return Verdict(False, f"refused: {host} has no address")
        for text in addresses:
            try:
                problem = judge(ipaddress.ip_address(text))
            except ValueError:
                problem = "not an IP address"
            if problem:
                return Verdict(False, f"refused: {host} resolves to {text}, {problem}")
        return Verdict(True, addresses=tuple(dict.fromkeys(addresses)))
