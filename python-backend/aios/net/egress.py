"""The egress sidecar of a code sandbox: a GuardProxy on the sandbox's internal network, the
only way out for its pip, git and curl (HTTP_PROXY/HTTPS_PROXY point here).

    python -m aios.net.egress --listen 0.0.0.0:3128 [--allow a,b] [--deny x,y] [--own z,w]
        [--ports 80,443] [--max-bytes N] [--max-connections N] [--connect-timeout S]

It runs in the sandbox image's bare python3.11 and starts once per sandbox: standard library
only, and nothing imported that the proxy does not need. One line on stderr when listening,
one per refusal and per cut connection; exit 0 on SIGTERM or SIGINT, 2 on a bad argument.
The manager checks its settings with the same parsers before it starts one: parse_ports,
parse_deny_entry, parse_allow_entry, parse_network, or all at once with make_guard."""

import argparse
import signal
import sys
import threading
from typing import Callable, Iterable, Optional

from .guard import AddressGuard, parse_allow_entry, parse_deny_entry, parse_network, parse_ports
from .proxy import GuardProxy

__all__ = ["main", "make_guard", "parse_allow_entry", "parse_deny_entry", "parse_listen",
           "parse_network", "parse_ports", "DEFAULT_PORTS"]
DEFAULT_PORTS = "80,443"


def make_guard(allow: Iterable[str] = (), deny: Iterable[str] = (), ports: str = DEFAULT_PORTS,
               own: Iterable[str] = ()) -> AddressGuard:
    """The sidecar's guard (http and https); ValueError names the first bad entry."""
    return AddressGuard(allow, schemes=("http", "https"), ports=parse_ports(ports), deny=deny,
                        own=own)


def parse_listen(text: str) -> tuple[str, int]:
    """"0.0.0.0:3128" or "[::]:3128"."""
    host, sep, port = text.strip().rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(f"bad listen address {text!r}: use host:port")
    return host, int(port)


def main(argv: Optional[list[str]] = None) -> int:
    args = _parser().parse_args(argv)
    guard = AddressGuard(args.allow, schemes=("http", "https"), ports=args.ports, deny=args.deny,
                         own=args.own)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    try:
        proxy = GuardProxy(guard, connect_timeout=args.connect_timeout, listen=args.listen,
                           max_total_bytes=args.max_bytes,
                           max_connections=args.max_connections, report=_log)
    except OSError as exc:
        _log(f"cannot listen on {_hostport(args.listen)}: {exc}")
        return 1
    with proxy:
        _log(f"listening on {_hostport(proxy.address)} (ports {_ports(args.ports)}; "
             f"{len(args.allow)} allowed, {len(args.deny)} denied, {len(args.own)} own; "
             f"byte budget {args.max_bytes or 'none'}; "
             f"at most {args.max_connections} connections)")
        stop.wait()
    return 0


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, no usage dump: the manager logs it whole
        self.exit(2, f"{self.prog}: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m aios.net.egress",
                     description="The filtered-internet proxy of one code sandbox.")
    parser.add_argument("--listen", required=True, type=_typed(parse_listen),
                        help="host:port to listen on, e.g. 0.0.0.0:3128")
    parser.add_argument("--allow", action="extend", default=[], type=_entries(parse_allow_entry),
                        help="comma-separated host or host:port entries exempt from the "
                             "address rules (not from the deny list)")
    parser.add_argument("--deny", action="extend", default=[], type=_entries(parse_deny_entry),
                        help="comma-separated host names, *.domain patterns, IP addresses "
                             "and CIDR networks never to reach")
    parser.add_argument("--own", action="extend", default=[], type=_entries(parse_network),
                        help="comma-separated addresses and networks of this host and its "
                             "networks: refused unless allowlisted, public ones too")
    parser.add_argument("--ports", default=DEFAULT_PORTS, type=_typed(parse_ports),
                        help="comma-separated destination ports allowed (default 80,443)")
    parser.add_argument("--max-bytes", type=_typed(_positive(int)), default=None,
                        help="bytes all connections may relay together, both ways")
    parser.add_argument("--max-connections", type=_typed(_positive(int)), default=64,
                        help="connections served at a time (default 64)")
    parser.add_argument("--connect-timeout", type=_typed(_positive(float)), default=10.0,
                        help="seconds to connect upstream and to read a request head")
    return parser


def _typed(parse: Callable):
    def convert(text: str):
        try:
            return parse(text)
        except ValueError as exc:  # argparse keeps the message of this one only
            raise argparse.ArgumentTypeError(str(exc)) from None
    return convert


def _entries(parse_entry: Callable) -> Callable:
    def parse(text: str) -> list[str]:
        entries = [entry.strip() for entry in text.split(",") if entry.strip()]
        for entry in entries:
            parse_entry(entry)
        return entries
    return _typed(parse)


def _positive(kind: type) -> Callable:
    def parse(text: str):
        value = kind(text)
        if not 0 < value < float("inf"):  # nan too
            raise ValueError(f"{text!r} is not a positive number")
        return value
    return parse


def _hostport(address: tuple) -> str:
    host, port = address[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _ports(ports: frozenset) -> str:
    return ", ".join(map(str, sorted(ports)))


def _log(line: str) -> None:
    sys.stderr.write(line + "\n")  # one write per line: threads do not interleave within it
    sys.stderr.flush()


if __name__ == "__main__":
    sys.exit(main())
