"""How hosts are spelled: IP literals (legacy IPv4 forms too), canonical host names, and the
IPv4 address an IPv6 one carries. Shared by the guard's private-address rules and its deny
list, so both see through the same spellings."""

import ipaddress
import re
import socket
from typing import Optional, Union

IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]

# Legacy IPv4 spellings that browsers and inet_aton accept: 2130706433, 0x7f.1, 0177.0.0.1
_LEGACY_IPV4 = re.compile(r"(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}", re.I)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


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


def embedded_ipv4(ip: IPAddress) -> list[tuple[str, ipaddress.IPv4Address]]:
    """The IPv4 addresses an IPv6 address stands for, each with the form that carries it:
    ("an IPv4-mapped", v4), ("a 6to4", v4), ("a NAT64", v4). Empty for IPv4 addresses."""
    if ip.version == 4:
        return []
    nat64 = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF) if ip in _NAT64 else None
    forms = (("an IPv4-mapped", ip.ipv4_mapped), ("a 6to4", ip.sixtofour), ("a NAT64", nat64))
    return [(form, v4) for form, v4 in forms if v4 is not None]
