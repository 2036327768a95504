"""The browser's proxy: its launch setting, and the reason it refused a destination.

All of Chromium's traffic goes through AIOS_BROWSER_PROXY, the egress sidecar
(aios.net.egress). Its refusals of plain-HTTP requests come back as a 403 with the
X-AIOS-Refused header, which the page's response shows. A refused CONNECT (HTTPS) is a 403
too, but Chromium only says ERR_TUNNEL_CONNECTION_FAILED: the supervisor then asks the
proxy itself for the same CONNECT and reads the reason off its answer.
"""

import os
import socket
from typing import Optional
from urllib.parse import urlsplit

REFUSED_HEADER = "x-aios-refused"  # aios.net.wire.REFUSED_HEADER, lower-cased
# Nothing listens on the discard port of loopback: with no proxy configured, every request
# fails at the proxy, and "<-loopback>" below sends even loopback through it.
BLACK_HOLE = "http://127.0.0.1:9"
PROBE_TIMEOUT_S = 5.0


def proxy_server(environ=os.environ) -> str:
    return environ.get("AIOS_BROWSER_PROXY", "").strip() or BLACK_HOLE


def launch_proxy(environ=os.environ) -> dict:
    """Playwright's `proxy` launch option. `<-loopback>` removes Chromium's implicit
    bypass of localhost, so the container's own loopback is not reachable either."""
    return {"server": proxy_server(environ), "bypass": "<-loopback>"}


def refusal_in_headers(headers: dict) -> Optional[str]:
    """The proxy's reason, when a response is its refusal (header names lower-case)."""
    reason = (headers or {}).get(REFUSED_HEADER)
    return reason.strip() if reason else None


def connect_target(url: str) -> Optional[str]:
    parts = urlsplit(url)
    if not parts.hostname:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    default = 443 if parts.scheme == "https" else 80
    try:
        port = parts.port or default
    except ValueError:
        return None
    return f"{host}:{port}"


def parse_refusal(head: bytes) -> tuple[Optional[int], Optional[str]]:
    """Status and X-AIOS-Refused reason of a proxy's response head."""
    lines = head.split(b"\r\n")
    try:
        status = int(lines[0].split()[1])
    except (IndexError, ValueError):
        return None, None
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == REFUSED_HEADER.encode():
            return status, value.strip().decode("latin-1")
    return status, None


def ask_refusal(url: str, environ=os.environ) -> Optional[str]:
    """Why the proxy refuses a tunnel to url's host, or None if it says nothing of it.
    Only asked after Chromium's own CONNECT failed; an accepted tunnel is closed unused."""
    target = connect_target(url)
    proxy = urlsplit(proxy_server(environ))
    if target is None or not proxy.hostname:
        return None
    try:
        with socket.create_connection((proxy.hostname, proxy.port or 3128),
                                      timeout=PROBE_TIMEOUT_S) as sock:
            sock.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
            head = b""
            while b"\r\n\r\n" not in head and len(head) < 16384:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                head += chunk
    except OSError:
        return None
    status, reason = parse_refusal(head)
    if reason:
        return reason
    if status == 502:
        return f"the proxy could not reach {target}"
    return None
