"""The browse tool through Debian's real Chromium, against pages served on 127.0.0.1 by the
test. All traffic stays on loopback: refused targets are loopback ports that are not
allowlisted (or names that resolve to loopback), and the guard's verdict comes before any
connection."""

import os
import socket
import statistics
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.server import serve as ws_serve

from aios.net.guard import AddressGuard
from aios.net.proxy import GuardProxy
from aios.settings import PROJECT_TMP, Settings
from aios.tools.base import ToolContext, ToolError
from aios.tools.browse import Browse, Visit
from aios.tools.browser import BrowserHost

from ..net_helpers import serving

SECRETS = {"api_token": "a" * 16, "secret_key": "b" * 16, "sandbox_manager_token": "c" * 16}


class Site(ThreadingHTTPServer):
    """Serves `pages` (path -> handler function) and counts connections and requests."""

    daemon_threads = True

    def __init__(self, pages: dict):
        self.pages, self.connections, self.requests = pages, 0, []
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def process_request(self, request, client_address):
        self.connections += 1
        super().process_request(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        self.server.requests.append((self.path, self.headers.get("Cookie")))
        page = self.server.pages.get(self.path.split("?")[0])
        if page is None:
            return self.reply(404, "<title>missing</title>not here")
        page(self)

    def reply(self, status: int, body, headers=(), length=True):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        for name, value in headers:
            self.send_header(name, value)
        if length:
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def serve(pages: dict):
    return serving(Site(pages))


@contextmanager
def silent_port():
    """A port that accepts connections and never answers."""
    with socket.create_server(("127.0.0.1", 0), backlog=16) as server:
        yield server.getsockname()[1]


@pytest.fixture(scope="module")
def host():
    host = BrowserHost(Settings(_env_file=None, **SECRETS).chromium_path)
    yield host
    host.close()


def make_tool(host, allow, **settings) -> Browse:
    values = {"browse_timeout_s": 10.0, **settings}
    return Browse(Settings(_env_file=None, **SECRETS, browse_allowlist=allow, **values),
                  host)


def context(task_id: str = "test-browse") -> ToolContext:
    return ToolContext(task_id, lambda *_: None, threading.Event(), lambda _: None)


ARTICLE = ("<html><head><title>  Local   page </title></head><body><nav>menu</nav>"
           "<main><h1>Hello</h1><p>First   paragraph\n\n  with   spaces.</p>"
           "<p>" + "Words of the article. " * 20 + "</p></main></body></html>")


def test_allowlisted_page_gives_title_text_status(host):
    with serve({"/": lambda h: h.reply(200, ARTICLE)}) as site:
        result = make_tool(host, [f"127.0.0.1:{site.server_port}"]).run(
            {"url": site.base + "/"}, context())
    assert result["title"] == "Local page"
    assert result["status"] == 200 and result["url"] == site.base + "/"
    assert result["text"].startswith("Hello\nFirst paragraph with spaces.")
    assert "menu" not in result["text"]  # the main element, not the navigation


def test_long_text_is_cut_with_a_note(host):
    with serve({"/": lambda h: h.reply(200, "<p>" + "x" * 5000 + "</p>")}) as site:
        result = make_tool(host, [f"127.0.0.1:{site.server_port}"],
                           tool_result_max_chars=1000).run({"url": site.base}, context())
    assert result["text"].startswith("x" * 1000 + "\n[cut: the first 1000 of 5000 characters]")


def test_screenshot_is_a_png_under_project_tmp(host):
    task = f"test-shot-{time.monotonic_ns()}"
    with serve({"/": lambda h: h.reply(200, ARTICLE)}) as site:
        result = make_tool(host, [f"127.0.0.1:{site.server_port}"]).run(
            {"url": site.base + "/", "screenshot": True}, context(task))
    shot = PROJECT_TMP.joinpath("browse", task)
    try:
        path = shot / result["screenshot"].rsplit("/", 1)[1]
        assert result["screenshot"] == str(path)
        assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    finally:
        for file in shot.glob("*"):
            file.unlink()
        shot.rmdir()


@pytest.mark.parametrize("target, reason", [
    ("http://127.0.0.1:{other}/", "refused: 127.0.0.1 is a loopback address"),
    ("http://localhost:{port}/", "refused: localhost is a loopback name"),
    ("http://[::1]:{port}/", "refused: ::1 is a loopback address"),
    ("http://0x7f.0.0.1:{other}/", "refused: .* is a loopback address"),
    ("http://{hosts_name}:{other}/", "refused: .* (resolves to 127.0.0.1, a )?loopback"),
])
def test_refused_targets_get_no_traffic(host, target, reason):
    with serve({"/": lambda h: h.reply(200, ARTICLE)}) as site, \
            serve({"/": lambda h: h.reply(200, "secret")}) as other:
        tool = make_tool(host, [f"127.0.0.1:{site.server_port}"])
        url = target.format(port=site.server_port, other=other.server_port,
                            hosts_name=_hosts_name())
        with pytest.raises(ToolError, match=reason) as err:
            tool.run({"url": url}, context())
        assert "AIOS_BROWSE_ALLOWLIST" in str(err.value)
        # The same URL straight into the browser, past the tool's own check: the route
        # handler and the proxy refuse it in Chromium.
        with pytest.raises(ToolError, match=reason):
            host.run(Visit(tool, url, None), timeout=30)
    assert site.connections == other.connections == 0


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://127.0.0.1/", "javascript:1",
                                 "data:text/html,<title>x</title>", "chrome://version"])
def test_other_schemes_are_refused(host, url):
    with pytest.raises(ToolError, match="refused: the .* scheme is not allowed"):
        make_tool(host, []).run({"url": url}, context())


def test_redirects_to_refused_addresses_never_connect(host):
    with serve({"/": lambda h: h.reply(200, "secret")}) as other:
        secret = f"{other.base}/"
        tls = secret.replace("http:", "https:")  # a CONNECT tunnel through the proxy
        pages = {"/one": lambda h: h.reply(302, "", [("Location", secret)]),
                 "/two": lambda h: h.reply(302, "", [("Location", "/one")]),
                 "/tls": lambda h: h.reply(307, "", [("Location", tls)]),
                 "/js": lambda h: h.reply(200, f"<script>location.href='{secret}'</script>")}
        with serve(pages) as site:
            tool = make_tool(host, [f"127.0.0.1:{site.server_port}"])
            for path in ("/one", "/two", "/tls", "/js"):
                with pytest.raises(ToolError) as err:
                    tool.run({"url": site.base + path}, context())
                assert "refused: 127.0.0.1 is a loopback address" in str(err.value), path
    assert other.connections == 0


def test_sub_requests_to_refused_addresses_never_connect(host):
    with serve({}) as other:
        b = other.base
        page = (f"<title>subs</title><img src='{b}/img.png'><script src='{b}/x.js'></script>"
                f"<link rel=stylesheet href='{b}/s.css'><iframe src='{b}/frame'></iframe>"
                f"<main id=out>waiting</main><script>"
                f"fetch('{b}/api').catch(() => 0);"
                f"const x = new XMLHttpRequest(); x.open('GET', '{b}/xhr'); x.send();"
                f"new Worker(URL.createObjectURL(new Blob([\"fetch('{b}/worker')\"])));"
                f"const ws = new WebSocket('{b.replace('http', 'ws')}/ws');"
                f"ws.onclose = ws.onerror = () => document.getElementById('out').textContent"
                f" = 'done';</script>")
        with serve({"/": lambda h: h.reply(200, page)}) as site:
            result = make_tool(host, [f"127.0.0.1:{site.server_port}"]).run(
                {"url": site.base + "/", "screenshot": True}, context("test-subrequests"))
            time.sleep(0.5)  # a late request would have arrived by now
    _remove_screenshots("test-subrequests")
    assert result["status"] == 200 and result["title"] == "subs"
    assert other.connections == 0, other.requests


def test_an_allowlisted_websocket_goes_through(host):
    def echo(connection):
        try:
            for message in connection:
                connection.send("echo:" + message)
        except ConnectionClosed:
            pass  # the call's context closed
    with ws_serve(echo, "127.0.0.1", 0) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        ws_port = server.socket.getsockname()[1]
        page = (f"<title>ws</title><main id=out>waiting</main><script>"
                f"const ws = new WebSocket('ws://127.0.0.1:{ws_port}/');"
                f"ws.onopen = () => ws.send('hi');"
                f"ws.onmessage = e => document.getElementById('out').textContent = e.data;"
                f"</script><img src='/slow'>")  # load waits for the image, the echo comes first

        def slow(h):
            time.sleep(1)
            h.reply(404, "")
        with serve({"/": lambda h: h.reply(200, page), "/slow": slow}) as site:
            tool = make_tool(host, [f"127.0.0.1:{site.server_port}", f"127.0.0.1:{ws_port}"])
            result = tool.run({"url": site.base + "/", "screenshot": True}, context("test-ws"))
        server.shutdown()
    _remove_screenshots("test-ws")
    assert result["text"] == "echo:hi"


def test_the_proxy_alone_refuses_relays_and_cuts():
    """The layer under the route checks: what Chromium's connections go through."""
    pages = {"/": lambda h: h.reply(200, "small"), "/big": lambda h: h.reply(200, "z" * 5000)}
    with serve(pages) as site, serve({"/": lambda h: h.reply(200, "secret")}) as other:
        guard = AddressGuard([f"127.0.0.1:{site.server_port}"])
        with GuardProxy(guard, max_bytes=1000) as proxy, httpx.Client(proxy=proxy.url) as client:
            assert client.get(site.base + "/").text == "small"
            refused = client.get(other.base + "/")
            with pytest.raises(httpx.ProxyError):
                client.get(other.base.replace("http:", "https:") + "/")
            with pytest.raises(httpx.HTTPError):
                client.get(site.base + "/big")
    assert refused.status_code == 403
    assert refused.headers["X-AIOS-Refused"] == "refused: 127.0.0.1 is a loopback address"
    assert [reason for _, reason in proxy.refusals] == [refused.text] * 2
    assert proxy.cut == [site.base + "/big"]
    assert other.connections == 0


def test_a_page_larger_than_the_cap_is_refused(host):
    big = "<title>big</title>" + "y" * 300_000
    pages = {"/sized": lambda h: h.reply(200, big),
             "/streamed": lambda h: h.reply(200, big, length=False)}
    with serve(pages) as site:
        tool = make_tool(host, [f"127.0.0.1:{site.server_port}"], browse_max_page_bytes=100_000)
        for path in ("/sized", "/streamed"):
            with pytest.raises(ToolError, match="larger than 100000 bytes"):
                tool.run({"url": site.base + path}, context())


def test_a_page_that_never_answers_times_out(host):
    with silent_port() as port:
        tool = make_tool(host, [f"127.0.0.1:{port}"], browse_timeout_s=2.0)
        started = time.monotonic()
        with pytest.raises(ToolError, match="timed out after 2 s"):
            tool.run({"url": f"http://127.0.0.1:{port}/"}, context())
    assert time.monotonic() - started < 2.0 + 5.0


def test_each_call_gets_a_fresh_context(host):
    def set_cookie(h):
        h.reply(200, "<title>cookie</title>set", [("Set-Cookie", "seen=1; Path=/")])
    with serve({"/set": set_cookie, "/get": lambda h: h.reply(200, "got")}) as site:
        tool = make_tool(host, [f"127.0.0.1:{site.server_port}"])
        tool.run({"url": site.base + "/set"}, context())
        tool.run({"url": site.base + "/get"}, context())
        tool.run({"url": site.base + "/set"}, context())
    cookies = {path: cookie for path, cookie in site.requests if path != "/favicon.ico"}
    assert cookies == {"/set": None, "/get": None}


def test_a_forked_child_starts_its_own_browser(host):
    """Celery's prefork pool: a child must not use the browser thread of its parent."""
    with serve({"/": lambda h: h.reply(200, ARTICLE)}) as site:
        tool = make_tool(host, [f"127.0.0.1:{site.server_port}"])
        assert tool.run({"url": site.base}, context())["title"] == "Local page"
        pid = os.fork()
        if pid == 0:  # the child: report through the exit code only
            code = 1
            try:
                code = 0 if tool.run({"url": site.base}, context())["title"] == "Local page" else 2
                host.close()
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert tool.run({"url": site.base}, context())["title"] == "Local page"


def test_warm_browse_latency(host, capsys):
    with serve({"/": lambda h: h.reply(200, ARTICLE)}) as site:
        tool = make_tool(host, [f"127.0.0.1:{site.server_port}"])
        samples = []
        for _ in range(12):
            started = time.perf_counter()
            tool.run({"url": site.base + "/"}, context())
            samples.append((time.perf_counter() - started) * 1000)
    with capsys.disabled():
        print(f"\nwarm browse of a local page: p50 {statistics.median(samples[2:]):.0f} ms")


def _hosts_name() -> str:
    """A name other than localhost that /etc/hosts maps to 127.0.0.1 (looked up there, no DNS
    query), else localhost."""
    with open("/etc/hosts") as hosts:
        for line in hosts:
            fields = line.split("#")[0].split()
            if fields[:1] == ["127.0.0.1"]:
                names = [n for n in fields[1:] if n != "localhost" and "." not in n]
                if names:
                    return names[0]
    return "localhost"


def _remove_screenshots(task: str) -> None:
    folder = PROJECT_TMP / "browse" / task
    for file in folder.glob("*"):
        file.unlink()
    if folder.exists():
        folder.rmdir()
