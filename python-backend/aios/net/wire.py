"""HTTP/1.1 heads as the proxy reads and writes them: just enough to route one request per
connection and to answer with its own refusals."""

import socket
from typing import Optional
from urllib.parse import urlsplit

HEAD_MAX = 64 << 10
REFUSED_HEADER = "X-AIOS-Refused"  # on the proxy's own refusals, with the reason
_HOP_BY_HOP = {b"connection", b"proxy-connection", b"keep-alive", b"proxy-authorization",
               b"upgrade"}
_STATUS = {403: "Forbidden", 429: "Too Many Requests"}


def read_head(sock: socket.socket) -> tuple[Optional[bytes], bytes]:
    """The head (through its blank line) and whatever came after it; None at EOF."""
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


def parse_head(head: bytes) -> tuple[str, str, str, list[bytes]]:
    lines = head[:-4].split(b"\r\n")
    method, target, version = lines[0].decode("latin-1").split(" ")
    return method.upper(), target, version, lines[1:]


def origin_form(method: str, target: str, version: str, headers: list[bytes]) -> bytes:
    """The request as the origin server must see it: a path, no proxy or hop-by-hop headers
    (Proxy-Authorization included), and no reuse of the connection."""
    parts = urlsplit(target)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    lines = [f"{method} {path} {version}".encode("latin-1"), *_end_to_end(headers),
             b"Connection: close"]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def close_after(head: bytes) -> bytes:
    """A response head that tells the client not to reuse the connection (one request each)."""
    lines = head[:-4].split(b"\r\n")
    return b"\r\n".join([lines[0], *_end_to_end(lines[1:]), b"Connection: close"]) + b"\r\n\r\n"


def content_length(head: bytes) -> Optional[int]:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length" and value.strip().isdigit():
            return int(value.strip())
    return None


def refusal(reason: str, status: int = 403) -> bytes:
    body = reason.encode()
    return (f"HTTP/1.1 {status} {_STATUS.get(status, 'Refused')}\r\n".encode()
            + b"Content-Type: text/plain; charset=utf-8\r\n"
            + f"{REFUSED_HEADER}: ".encode() + reason.encode("latin-1", "replace")
            + b"\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)


BAD_GATEWAY = b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
ESTABLISHED = b"HTTP/1.1 200 Connection established\r\n\r\n"


def _end_to_end(headers: list[bytes]) -> list[bytes]:
    return [h for h in headers if h.split(b":", 1)[0].strip().lower() not in _HOP_BY_HOP]
