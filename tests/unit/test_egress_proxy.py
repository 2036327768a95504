"""The guard proxy as a sandbox's egress sidecar, for real: sockets on 127.0.0.1 only. Every
target is a server of this test on loopback; refused targets are loopback ports that are not
allowlisted or names of a fake resolver, and a refusal comes before any connection."""

import http.client
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from aios.net.egress import make_guard
from aios.net.proxy import GuardProxy

from ..net_helpers import serving

BACKEND = Path(__file__).resolve().parents[2] / "python-backend"
# What the sidecar runs: the system's bare python3.11 (-S: not even site-packages).
PYTHON = "/usr/bin/python3.11" if os.access("/usr/bin/python3.11", os.X_OK) else sys.executable
BIG = 400_000


@pytest.fixture(autouse=True)
def no_proxy_bypass(monkeypatch):
    for name in ("no_proxy", "NO_PROXY"):  # urllib would go straight to 127.0.0.1
        monkeypatch.delenv(name, raising=False)


class Site(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        self.connections, self.requests = 0, []  # requests: (path, headers)
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_port}"

    def process_request(self, request, client_address):
        self.connections += 1
        super().process_request(request, client_address)

    def handle_error(self, request, client_address):
        pass  # a download the proxy cut ends in a broken pipe here


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        self.server.requests.append((self.path, self.headers))
        body = b"z" * BIG if self.path == "/big" else b"hello"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def serve():
    return serving(Site())


@contextmanager
def tcp_server(echo: bool):
    """A raw TCP server: echoes (echo) or swallows what it gets; yields (port, bytes seen)."""
    seen, threads = [], []
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.1)

    def handle(conn):
        with conn:
            while chunk := conn.recv(65536):
                seen.append(len(chunk))
                if echo:
                    conn.sendall(chunk)

    def accept():
        while server.fileno() != -1:
            try:
                conn, _ = server.accept()
            except (socket.timeout, OSError):
                continue
            threads.append(threading.Thread(target=handle, args=(conn,), daemon=True))
            threads[-1].start()
    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    try:
        yield server.getsockname()[1], seen
    finally:
        server.close()
        acceptor.join(5)
        for thread in threads:
            thread.join(5)


@contextmanager
def egress_proxy(allow=(), deny=(), ports="80,443", resolve=None, **limits):
    guard = make_guard(allow, deny, ports)
    if resolve:
        guard.resolve = resolve
    lines = []
    with GuardProxy(guard, report=lines.append, **limits) as proxy:
        yield proxy, lines


def via(proxy_url: str, url: str) -> tuple[int, dict, bytes]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": proxy_url}))
    try:
        with opener.open(url, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, dict(error.headers), error.read()


def tunnel(proxy: GuardProxy, target: str) -> tuple[socket.socket, bytes]:
    sock = socket.create_connection(proxy.address, timeout=10)
    sock.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head and (chunk := sock.recv(1)):
        head += chunk
    return sock, head


def receive(sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count and (chunk := sock.recv(count - len(data))):
        data += chunk
    return data


def closed(sock: socket.socket) -> bool:
    try:
        return sock.recv(10) == b""
    except ConnectionResetError:
        return True


def wait_for(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_a_plain_get_to_an_allowlisted_target_goes_through():
    with serve() as site, egress_proxy([f"127.0.0.1:{site.server_port}"]) as (proxy, lines):
        assert via(proxy.url, site.base + "/")[::2] == (200, b"hello")
        conn = http.client.HTTPConnection(*proxy.address, timeout=10)
        conn.request("GET", site.base + "/x?q=1", headers={
            "Proxy-Authorization": "Basic dXNlcjpwdw==", "Proxy-Connection": "keep-alive",
            "X-Kept": "yes"})
        response = conn.getresponse()
        assert (response.status, response.read()) == (200, b"hello")
        assert response.headers["Connection"] == "close"  # one request per connection
        conn.close()
    path, headers = site.requests[-1]
    assert path == "/x?q=1" and headers["X-Kept"] == "yes"
    assert "Proxy-Authorization" not in headers and "Proxy-Connection" not in headers
    assert lines == [] and proxy.budget.spent > 0


def test_a_target_not_allowlisted_is_refused_with_the_reason_and_gets_no_traffic():
    with serve() as site, serve() as other, \
            egress_proxy([f"127.0.0.1:{site.server_port}"],
                         ports=f"80,443,{other.server_port}") as (proxy, lines):
        status, headers, body = via(proxy.url, other.base + "/")
        sock, head = tunnel(proxy, f"127.0.0.1:{other.server_port}")
        sock.close()
    reason = "refused: 127.0.0.1 is a loopback address"
    assert status == 403 and headers["X-AIOS-Refused"] == reason and body == reason.encode()
    assert head.startswith(b"HTTP/1.1 403 ") and reason.encode() in head
    assert lines == [f"refused GET {other.base}/: {reason}",
                     f"refused CONNECT 127.0.0.1:{other.server_port}: {reason}"]
    assert other.connections == 0


def test_a_connect_tunnel_relays_both_ways():
    with tcp_server(echo=True) as (port, seen), \
            egress_proxy([f"127.0.0.1:{port}"]) as (proxy, lines):
        sock, head = tunnel(proxy, f"127.0.0.1:{port}")
        with sock:
            assert head == b"HTTP/1.1 200 Connection established\r\n\r\n"
            for size in (1, 5000, 100_000):
                sock.sendall(b"u" * size)
                assert receive(sock, size) == b"u" * size
            wait_for(lambda: proxy.budget.spent == 2 * 105_001)
    assert sum(seen) == 105_001 and lines == []


def test_only_the_allowed_ports_unless_a_host_and_port_is_allowlisted():
    with serve() as site, egress_proxy(["127.0.0.1"]) as (proxy, lines):  # 80 and 443 only
        status, headers, _ = via(proxy.url, site.base + "/")
        sock, head = tunnel(proxy, f"127.0.0.1:{site.server_port}")
        sock.close()
    reason = f"refused: port {site.server_port} is not allowed (allowed: 80, 443)"
    assert status == 403 and headers["X-AIOS-Refused"] == reason
    assert head.startswith(b"HTTP/1.1 403 ") and reason.encode() in head
    assert site.connections == 0


def test_deny_through_the_proxy_and_dialling_the_checked_address():
    def resolve(host, port):
        return {"site.test": ["127.0.0.1"]}[host]  # a name only this guard knows
    with serve() as site:
        allow = [f"site.test:{site.server_port}"]
        url = f"http://site.test:{site.server_port}/"
        with egress_proxy(allow, deny=["127.0.0.0/8"], resolve=resolve) as (proxy, _):
            status, headers, _ = via(proxy.url, url)
        assert status == 403 and headers["X-AIOS-Refused"] == \
            "refused: site.test resolves to 127.0.0.1, an address on the deny list"
        assert site.connections == 0
        # Another deny list: the name passes and is dialled at the address checked, since
        # nobody else could resolve it.
        with egress_proxy(allow, deny=["10.0.0.0/8"], resolve=resolve) as (proxy, _):
            assert via(proxy.url, url)[::2] == (200, b"hello")


def test_the_byte_budget_cuts_a_large_download_and_refuses_what_follows():
    with serve() as site, egress_proxy([f"127.0.0.1:{site.server_port}"],
                                       max_total_bytes=150_000) as (proxy, lines):
        conn = http.client.HTTPConnection(*proxy.address, timeout=10)
        conn.request("GET", site.base + "/big")
        response = conn.getresponse()
        assert response.status == 200  # the head came: the first read is under the budget
        with pytest.raises(http.client.IncompleteRead):
            response.read()
        conn.close()
        status, headers, _ = via(proxy.url, site.base + "/")
        assert proxy.budget.spent <= 150_000
    spent = "the byte budget of 150000 bytes is spent"
    assert status == 403 and headers["X-AIOS-Refused"] == f"refused: {spent}"
    assert lines == [f"cut GET {site.base}/big: {spent}",
                     f"refused GET {site.base}/: refused: {spent}"]
    assert [path for path, _ in site.requests] == ["/big"]


def test_uploads_count_against_the_byte_budget():
    with tcp_server(echo=False) as (port, seen), \
            egress_proxy([f"127.0.0.1:{port}"], max_total_bytes=30_000) as (proxy, lines):
        sock, _ = tunnel(proxy, f"127.0.0.1:{port}")
        with sock:
            for size, total in ((10_000, 10_000), (10_000, 20_000)):
                sock.sendall(b"u" * size)
                wait_for(lambda total=total: sum(seen) == total)
            sock.sendall(b"u" * 20_000)  # over: cut, and none of it relayed
            wait_for(lambda: lines)
            assert closed(sock)
        refused, head = tunnel(proxy, f"127.0.0.1:{port}")
        refused.close()
    spent = "the byte budget of 30000 bytes is spent"
    assert lines[0] == f"cut CONNECT 127.0.0.1:{port}: {spent}"
    assert sum(seen) == 20_000 and proxy.budget.spent == 20_000
    assert head.startswith(b"HTTP/1.1 403 ") and f"refused: {spent}".encode() in head


def test_connections_past_the_cap_are_refused_until_one_ends():
    with tcp_server(echo=True) as (port, _), \
            egress_proxy([f"127.0.0.1:{port}"], max_connections=2) as (proxy, lines):
        target = f"127.0.0.1:{port}"
        first, second = tunnel(proxy, target)[0], tunnel(proxy, target)[0]
        for sock in (first, second):
            sock.sendall(b"ping")
            assert receive(sock, 4) == b"ping"  # both established and relaying
        third, head = tunnel(proxy, target)
        third.close()
        first.close()
        wait_for(lambda: proxy.budget.active == 1)
        fourth, again = tunnel(proxy, target)
        fourth.close()
        second.close()
    reason = "refused: too many connections (at most 2 at a time)"
    assert head.startswith(b"HTTP/1.1 429 Too Many Requests\r\n")
    assert f"X-AIOS-Refused: {reason}".encode() in head
    assert again.startswith(b"HTTP/1.1 200 ")
    assert lines == [f"refused CONNECT {target}: {reason}"]


@contextmanager
def egress_process(*args: str):
    process = subprocess.Popen(
        [PYTHON, "-S", "-m", "aios.net.egress", *args], stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(BACKEND)})
    lines: queue.Queue = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line.rstrip("\n"))
                                              for line in process.stderr], daemon=True)
    reader.start()
    try:
        yield process, lines
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)
        reader.join(5)
        process.stderr.close()


def test_the_sidecar_entry_point_serves_logs_and_stops_on_sigterm():
    with serve() as site, serve() as other:
        allow = f"127.0.0.1:{site.server_port},127.0.0.1:{other.server_port + 1}"
        ports = f"80,443,{other.server_port}"
        with egress_process("--listen", "127.0.0.1:0", "--allow", allow, "--ports", ports,
                            "--deny", "*.evil.test,169.254.0.0/16", "--own", "172.17.0.0/16",
                            "--max-bytes", "1000000",
                            "--max-connections", "8") as (process, lines):
            first = lines.get(timeout=30)
            match = re.fullmatch(r"listening on 127\.0\.0\.1:(\d+) \(.*\)", first)
            assert match, first
            proxy_url = f"http://127.0.0.1:{match[1]}"
            assert via(proxy_url, site.base + "/")[::2] == (200, b"hello")
            assert via(proxy_url, other.base + "/")[0] == 403
            assert lines.get(timeout=10) == \
                f"refused GET {other.base}/: refused: 127.0.0.1 is a loopback address"
            started = time.monotonic()
            process.send_signal(signal.SIGTERM)
            assert process.wait(10) == 0
            assert time.monotonic() - started < 2.0
    assert other.connections == 0


@pytest.mark.parametrize("args, named", [
    (["--deny", "10.0.0.0/33"], "--deny"), (["--deny", "ok.test,a b"], "--deny"),
    (["--ports", "80,99999"], "--ports"), (["--allow", "host:port"], "--allow"),
    (["--max-bytes", "lots"], "--max-bytes"), (["--own", "host.test"], "--own"),
    (["--listen", "3128"], "--listen")])
def test_the_sidecar_refuses_bad_arguments_with_status_2(args, named):
    done = subprocess.run([PYTHON, "-S", "-m", "aios.net.egress", "--listen", "127.0.0.1:0",
                           *args], capture_output=True, text=True, timeout=30,
                          env={**os.environ, "PYTHONPATH": str(BACKEND)})
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and f"argument {named}: " in done.stderr, done.stderr
