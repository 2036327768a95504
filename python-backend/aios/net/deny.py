"""The deny list: hosts and networks no connection may reach, whatever else allows them (it
wins over the allowlist too).

Entries: a host name (`example.com`: that name only), a suffix pattern (`*.example.com`: the
domain itself AND every name under it, since whoever denies a domain's subdomains means the
domain too), an IP address (any spelling the guard accepts: `10.0.0.1`, `[fd00::1]`) or a
CIDR network (`172.16.0.0/12`, `fd00::/8`; host bits are ignored). An address is denied when
it, or the IPv4 address its IPv4-mapped, 6to4 or NAT64 form carries, is in a denied network;
names are matched as written (the guard also checks every address a name resolves to)."""

import ipaddress
import re
from typing import Iterable, Optional, Union

from .addresses import IPAddress, canonical_host, embedded_ipv4, literal_address

IPNetwork = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]
DenyEntry = Union[str, IPNetwork]
_LABEL = r"[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?"
_NAME = re.compile(rf"{_LABEL}(\.{_LABEL})*")
_USAGE = "use a host name, *.domain, an IP address or a CIDR network"


def parse_deny_entry(entry: str) -> DenyEntry:
    """An IP network for an address or CIDR (an address is a /32 or /128), else the host name
    or "*.domain" pattern in lower case. Raises ValueError naming a bad entry."""
    text = entry.strip().lower()
    try:
        network = _network(text)
    except ValueError as exc:
        raise ValueError(f"bad deny entry {entry!r}: {exc}") from None
    if network is not None:
        return network
    suffix = text.startswith("*.")
    name = (text[2:] if suffix else text).rstrip(".")
    if re.fullmatch(r"[0-9.]+", name):  # a mistyped address must not pass as a name
        raise ValueError(f"bad deny entry {entry!r}: not a valid IP address")
    if not _NAME.fullmatch(name):
        raise ValueError(f"bad deny entry {entry!r}: {_USAGE}")
    return f"*.{name}" if suffix else name


def parse_network(entry: str) -> IPNetwork:
    """An IP address (a /32 or /128) or a CIDR network; ValueError names anything else."""
    try:
        network = _network(entry.strip().lower())
    except ValueError as exc:
        raise ValueError(f"bad address or network {entry!r}: {exc}") from None
    if network is None:
        raise ValueError(f"bad address or network {entry!r}: use an IP address or a CIDR "
                         f"network")
    return network


def _network(text: str) -> Optional[IPNetwork]:
    if "/" in text:
        return ipaddress.ip_network(text, strict=False)
    address = literal_address(text.strip("[]"))
    return ipaddress.ip_network(address) if address is not None else None


class DenyList:
    """`where` completes the guard's reasons: "an address on the deny list"."""

    def __init__(self, entries: Iterable[str] = (), where: str = "on the deny list"):
        self.where = where
        parsed = [parse_deny_entry(entry) for entry in entries]
        names = [entry for entry in parsed if isinstance(entry, str)]
        self.networks = [entry for entry in parsed if not isinstance(entry, str)]
        self.names = {name for name in names if not name.startswith("*.")}
        self.domains = {name[2:] for name in names if name.startswith("*.")}

    def __bool__(self) -> bool:
        return bool(self.networks or self.names or self.domains)

    def name_problem(self, host: str) -> Optional[str]:
        name = canonical_host(host)
        labels = name.split(".")
        suffixes = (".".join(labels[i:]) for i in range(len(labels)))
        if name in self.names or any(suffix in self.domains for suffix in suffixes):
            return f"a name {self.where}"
        return None

    def address_problem(self, ip: IPAddress) -> Optional[str]:
        """Why `ip` is denied, in the guard's words ("an address on the deny list"), or None."""
        if self._listed(ip):
            return f"an address {self.where}"
        for form, v4 in embedded_ipv4(ip):
            if self._listed(v4):
                return f"{form} form of {v4}, an address {self.where}"
        return None

    def _listed(self, ip: IPAddress) -> bool:
        return any(ip in network for network in self.networks)
