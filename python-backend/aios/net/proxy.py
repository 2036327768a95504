"""A forward proxy that lets through only what the address guard allows. Two uses share it:
the browse tool starts one per call on 127.0.0.1, and Chromium sends every connection of the
call through it; a code sandbox's egress sidecar (egress.py) serves one for the sandbox's
pip, git and curl. Either way it takes plain HTTP requests (one per connection) and CONNECT
tunnels, and dials only the addresses the guard checked, so a name cannot pass the check and
then resolve elsewhere (DNS rebinding).

Limits: `max_bytes` per connection, of what comes back (going over cuts it); and a Budget
shared by all connections: how many at a time (past that, a 429) and how many bytes in all,
both ways (going over cuts the connection that did, and refuses everything after)."""

import logging
import socket
import threading
from typing import Callable, Optional
from urllib.parse import urlsplit

from . import wire
from .budget import Budget
from .guard import DEFAULT_PORTS, AddressGuard, Verdict
from .wire import REFUSED_HEADER

__all__ = ["GuardProxy", "REFUSED_HEADER"]
HISTORY_MAX = 1000  # refusals and cuts kept in memory; a long-lived proxy reports the rest
# Connections being answered a refusal at once (at most as many as may be served: a sidecar's
# threads are counted); past that, just closed.
REFUSING_MAX = 32
log = logging.getLogger(__name__)


class _Link:
    """One client connection, shared by its two relay threads."""

    def __init__(self, client: socket.socket, method: str, target: str):
        self.client, self.method, self.target = client, method, target
        self.upstream: Optional[socket.socket] = None
        self.cut = False


class GuardProxy:
    def __init__(self, guard: AddressGuard, max_bytes: Optional[int] = None,
                 connect_timeout: float = 10.0, *, listen: tuple[str, int] = ("127.0.0.1", 0),
                 max_total_bytes: Optional[int] = None, max_connections: Optional[int] = None,
                 report: Optional[Callable[[str], None]] = None):
        self.guard, self.max_bytes, self.connect_timeout = guard, max_bytes, connect_timeout
        self.budget = Budget(max_total_bytes, max_connections)
        self.report = report or (lambda line: None)  # one line per refusal and per cut
        self.refusals: list[tuple[str, str]] = []  # (target, reason), in order
        self.cut: list[str] = []  # targets whose connection was cut
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._closed = False
        self._refusing = 0
        family = socket.AF_INET6 if ":" in listen[0] else socket.AF_INET
        self._server = socket.create_server(listen, family=family)
        self._server.settimeout(0.25)  # the accept loop notices close() this often
        self.address: tuple[str, int] = self._server.getsockname()[:2]
        host = f"[{self.address[0]}]" if family == socket.AF_INET6 else self.address[0]
        self.url = f"http://{host}:{self.address[1]}"
        threading.Thread(target=self._accept, name="aios-guard-proxy", daemon=True).start()

    def close(self) -> None:
        """Stop accepting and cut every open connection (any thread may call it)."""
        with self._lock:
            self._closed = True
            sockets = [self._server, *self._open]
        for sock in sockets:
            _shut(sock)

    def __enter__(self) -> "GuardProxy":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _accept(self) -> None:
        with self._server:
            while not self._closed:
                try:
                    client, _ = self._server.accept()
                except socket.timeout:
                    continue
                except OSError:
                    return
                if self._track(client):
                    self._start(client)

    def _start(self, client: socket.socket) -> None:
        refused = self.budget.admit()
        if refused and not self._may_refuse():  # a flood must not become one of threads
            return self._forget(client)
        try:
            threading.Thread(target=self._serve, args=(client, refused), daemon=True,
                             name="aios-guard-proxy-conn").start()
        except RuntimeError:  # out of threads (a pids limit): drop this one, keep accepting
            self._end(client, None, refused)

    def _may_refuse(self) -> bool:
        with self._lock:
            if self._refusing >= min(REFUSING_MAX, self.budget.max_connections or REFUSING_MAX):
                return False
            self._refusing += 1
            return True

    def _track(self, sock: socket.socket) -> bool:
        with self._lock:
            if not self._closed:
                self._open.add(sock)
                return True
        sock.close()
        return False

    def _serve(self, client: socket.socket, refused: Optional[tuple[int, str]]) -> None:
        link = None
        try:
            client.settimeout(self.connect_timeout)
            head, rest = wire.read_head(client)
            if head is None:
                return
            method, target, version, headers = wire.parse_head(head)
            link = _Link(client, method, target)
            if refused:
                return self._refuse(link, *refused)
            host, port, verdict = self._check(method, target)
            if not verdict:
                return self._refuse(link, 403, verdict.reason)
            link.upstream = self._dial(host, port, verdict.addresses)
            if link.upstream is None:
                return client.sendall(wire.BAD_GATEWAY)
            if method == "CONNECT":
                client.sendall(wire.ESTABLISHED)
            else:
                rest = wire.origin_form(method, target, version, headers) + rest
            if not rest or self._spend(link, len(rest)):
                link.upstream.sendall(rest)
                self._relay(link, rewrite=method != "CONNECT")
        except (OSError, ValueError):
            pass  # a dropped or malformed connection ends here; the client sees it closed
        except Exception:  # noqa: BLE001 - a server thread must not die silently
            log.exception("guard proxy: connection failed")
        finally:
            self._end(client, link, refused)

    def _end(self, client: socket.socket, link: Optional[_Link], refused) -> None:
        for sock in (client, link and link.upstream):
            if sock is not None:
                self._forget(sock)
        if refused:
            with self._lock:
                self._refusing -= 1
        else:
            self.budget.release()

    def _check(self, method: str, target: str) -> tuple[str, int, Verdict]:
        if method == "CONNECT":
            parts = urlsplit("//" + target)
            host, port = parts.hostname or "", parts.port or 443
            return host, port, self.guard.check_host(host, port)
        parts = urlsplit(target)
        verdict = self.guard.check(target)
        return parts.hostname or "", parts.port or DEFAULT_PORTS.get(parts.scheme, 80), verdict

    def _dial(self, host: str, port: int, addresses: tuple) -> Optional[socket.socket]:
        for address in addresses or (host,):  # allowlisted hosts: dial by name
            try:
                sock = socket.create_connection((address, port), self.connect_timeout)
            except OSError:
                continue
            if self._track(sock):
                return sock
            return None
        return None

    def _relay(self, link: _Link, rewrite: bool) -> None:
        client, upstream = link.client, link.upstream
        client.settimeout(None)
        upstream.settimeout(None)
        threading.Thread(target=self._pump_up, args=(link,), daemon=True,
                         name="aios-guard-proxy-up").start()
        received = 0
        if rewrite:  # one response per connection: tell the client not to reuse it
            head, rest = wire.read_head(upstream)
            if head is None:
                return
            length = wire.content_length(head)
            if self.max_bytes is not None and length is not None and length > self.max_bytes:
                return self._cut(link, f"the response of {length} bytes is over the "
                                       f"{self.max_bytes}-byte limit per connection")
            head = wire.close_after(head)
            if not self._spend(link, len(head) + len(rest)):
                return
            client.sendall(head + rest)
            received = len(rest)
        while chunk := upstream.recv(65536):
            received += len(chunk)
            if self.max_bytes is not None and received > self.max_bytes:
                return self._cut(link, f"over the {self.max_bytes}-byte limit per connection")
            if not self._spend(link, len(chunk)):
                return
            client.sendall(chunk)

    def _pump_up(self, link: _Link) -> None:
        try:
            while chunk := link.client.recv(65536):
                if not self._spend(link, len(chunk)):
                    return
                link.upstream.sendall(chunk)
            link.upstream.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the connection ended, or the other direction cut it

    def _spend(self, link: _Link, count: int) -> bool:
        if self.budget.spend(count):
            return True
        self._cut(link, self.budget.spent_reason())
        return False

    def _refuse(self, link: _Link, status: int, reason: str) -> None:
        _remember(self.refusals, (link.target, reason))
        self.report(f"refused {link.method} {link.target}: {reason}")
        link.client.sendall(wire.refusal(reason, status))

    def _cut(self, link: _Link, reason: str) -> None:
        with self._lock:  # both directions may go over at once: one cut, one report
            if link.cut:
                return
            link.cut = True
        _remember(self.cut, link.target)
        self.report(f"cut {link.method} {link.target}: {reason}")
        for sock in (link.client, link.upstream):
            _shut(sock)  # ends the other direction's thread too

    def _forget(self, sock: socket.socket) -> None:
        with self._lock:
            self._open.discard(sock)
        _shut(sock)
        sock.close()


def _remember(history: list, item) -> None:
    if len(history) < HISTORY_MAX:
        history.append(item)


def _shut(sock: Optional[socket.socket]) -> None:
    try:
        if sock is not None:
            sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed or never connected
