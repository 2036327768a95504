"""A forward proxy for one browse call. Chromium sends every connection of the call through
it (plain HTTP requests, CONNECT tunnels for HTTPS and WebSockets; redirect hops, iframes and
workers alike), and it dials only the addresses the guard checked, so a name cannot pass the
check and then resolve elsewhere (DNS rebinding). Each connection may bring at most
`max_bytes`; going over cuts it. Plain HTTP gets one request per connection."""

import logging
import socket
import threading
from typing import Optional
from urllib.parse import urlsplit

from .guard import DEFAULT_PORTS, AddressGuard, Verdict

HEAD_MAX = 64 << 10
REFUSED_HEADER = "X-AIOS-Refused"  # on the proxy's own 403s, with the guard's reason
log = logging.getLogger(__name__)
_HOP_BY_HOP = {b"connection", b"proxy-connection", b"keep-alive", b"proxy-authorization",
               b"upgrade"}


class GuardProxy:
    def __init__(self, guard: AddressGuard, max_bytes: int, connect_timeout: float = 10.0):
        self.guard, self.max_bytes, self.connect_timeout = guard, max_bytes, connect_timeout
        self.refusals: list[tuple[str, str]] = []  # (target, reason), in order
        self.cut: list[str] = []  # targets whose response went over max_bytes
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._closed = False
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.25)  # the accept loop notices close() this often
        self.url = "http://127.0.0.1:%d" % self._server.getsockname()[1]
        threading.Thread(target=self._accept, name="aios-browse-proxy", daemon=True).start()

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
                    threading.Thread(target=self._serve, args=(client,), daemon=True,
                                     name="aios-browse-proxy-conn").start()

    def _track(self, sock: socket.socket) -> bool:
        with self._lock:
            if not self._closed:
                self._open.add(sock)
                return True
        sock.close()
        return False

    def _serve(self, client: socket.socket) -> None:
        upstream = None
        try:
            client.settimeout(self.connect_timeout)
            head, rest = _read_head(client)
            if head is None:
                return
            method, target, version, headers = _parse_head(head)
            host, port, verdict = self._check(method, target)
            if not verdict:
                self.refusals.append((target, verdict.reason))
                client.sendall(_refusal(verdict.reason))
                return
            upstream = self._dial(host, port, verdict.addresses)
            if upstream is None:
                client.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n"
                               b"Connection: close\r\n\r\n")
                return
            if method == "CONNECT":
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                upstream.sendall(rest)
            else:
                upstream.sendall(_origin_form(method, target, version, headers) + rest)
            self._relay(client, upstream, target, rewrite=method != "CONNECT")
        except (OSError, ValueError):
            pass  # a dropped or malformed connection ends here; the browser sees it closed
        except Exception:  # noqa: BLE001 - a server thread must not die silently
            log.exception("browse proxy: connection failed")
        finally:
            for sock in (client, upstream):
                if sock is not None:
                    self._forget(sock)

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

    def _relay(self, client: socket.socket, upstream: socket.socket, target: str,
               rewrite: bool) -> None:
        client.settimeout(None)
        upstream.settimeout(None)
        threading.Thread(target=_pump, args=(client, upstream), daemon=True,
                         name="aios-browse-proxy-up").start()
        received = 0
        if rewrite:  # one response per connection: tell the browser not to reuse it
            head, rest = _read_head(upstream)
            if head is None:
                return
            length = _content_length(head)
            if length is not None and length > self.max_bytes:
                self.cut.append(target)
                return
            client.sendall(_close_after(head))
            received = len(rest)
            client.sendall(rest)
        while chunk := upstream.recv(65536):
            received += len(chunk)
            if received > self.max_bytes:
                self.cut.append(target)
                return
            client.sendall(chunk)

    def _forget(self, sock: socket.socket) -> None:
        with self._lock:
            self._open.discard(sock)
        _shut(sock)
        sock.close()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while chunk := source.recv(65536):
            sink.sendall(chunk)
        sink.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed or never connected


def _read_head(sock: socket.socket) -> tuple[Optional[bytes], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        if len(data) > HEAD_MAX:
            raise ValueError("header too large")
        chunk = sock.recv(65536)
        if not chunk:
            return None, b""
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head + b"\r\n\r\n", rest


def _parse_head(head: bytes) -> tuple[str, str, str, list[bytes]]:
    lines = head[:-4].split(b"\r\n")
    method, target, version = lines[0].decode("latin-1").split(" ")
    return method.upper(), target, version, lines[1:]


def _origin_form(method: str, target: str, version: str, headers: list[bytes]) -> bytes:
    parts = urlsplit(target)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    kept = [h for h in headers if h.split(b":", 1)[0].strip().lower() not in _HOP_BY_HOP]
    lines = [f"{method} {path} {version}".encode("latin-1"), *kept, b"Connection: close"]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def _close_after(head: bytes) -> bytes:
    lines = head[:-4].split(b"\r\n")
    kept = [h for h in lines[1:] if h.split(b":", 1)[0].strip().lower() not in _HOP_BY_HOP]
    return b"\r\n".join([lines[0], *kept, b"Connection: close"]) + b"\r\n\r\n"


def _content_length(head: bytes) -> Optional[int]:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length" and value.strip().isdigit():
            return int(value.strip())
    return None


def _refusal(reason: str) -> bytes:
    body = reason.encode()
    return (b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain; charset=utf-8\r\n"
            + f"{REFUSED_HEADER}: ".encode() + reason.encode("latin-1", "replace")
            + b"\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
