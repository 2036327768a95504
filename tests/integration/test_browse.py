"""The browse tool end to end: the worker's tool, the sandbox manager's browser sandbox
(Debian's Chromium in its own container), its guard proxy, and pages served by the test on
the Docker bridge's gateway address (this machine's own; the only kind a container can
reach here). The proxy lets the page reach the allowed ports of that address and nothing
else; "elsewhere" is a server on the same address on a port the proxy refuses, and every
test checks it got no connection at all."""

import socket
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.server import serve as ws_serve

from aios.net.guard import AddressGuard
from aios.net.proxy import GuardProxy
from aios.sandbox.artifacts import ArtifactStore
from aios.sandbox.client import SandboxClient
from aios.settings import Settings
from aios.tools.base import ToolContext, ToolError
from aios.tools.browse import make_browse

from ..net_helpers import serving
from .browser_site import gateway_address
from .support import free_port, start_manager

SECRETS = {"api_token": "a" * 16, "secret_key": "b" * 16, "sandbox_manager_token": "c" * 16}


class Site(ThreadingHTTPServer):
    """Serves `pages` (path -> handler function) and counts connections and requests."""

    daemon_threads = True

    def __init__(self, host: str, port: int, pages: dict):
        self.pages, self.connections, self.requests = pages, 0, []
        super().__init__((host, port), _Handler)

    @property
    def address(self) -> str:
        return f"{self.server_address[0]}:{self.server_address[1]}"

    @property
    def base(self) -> str:
        return f"http://{self.address}"

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


@pytest.fixture(scope="module")
def net(docker_client):
    """The gateway address and the ports of it the manager's proxies may reach."""
    return SimpleNamespace(host=gateway_address(docker_client),
                           ports=[free_port() for _ in range(3)])


@pytest.fixture(scope="module")
def manager(docker_client, net):
    manager = start_manager(docker_client, egress_allow=net.host,
                            egress_ports=",".join(map(str, net.ports)))
    yield manager
    manager.stop()
    assert manager.containers() == [], "the manager left containers behind"


@pytest.fixture(scope="module")
def browser(manager):
    """One browser sandbox for the module (each `browse` gets a fresh context of it)."""
    client = SandboxClient(manager.url, manager.token)
    browser_id = client.create_browser("test-browse", 600)["id"]
    yield client, browser_id
    client.destroy_browser(browser_id)
    client.close()


def serve(net, pages: dict, port_index: int = 0):
    return serving(Site(net.host, net.ports[port_index], pages))


def elsewhere(net, pages=None):
    """A server on the same address, on a port the proxy refuses."""
    return serving(Site(net.host, 0, pages or {"/": lambda h: h.reply(200, "secret")}))


def make_tool(browser, tmp_path, allow, **settings):
    client, _ = browser
    values = {"browse_timeout_s": 10.0, **settings}
    deps = SimpleNamespace(
        settings=Settings(_env_file=None, **SECRETS, browse_allowlist=allow, **values),
        sandbox=client, artifacts=ArtifactStore(tmp_path / "artifacts", 3600),
        agent_sessions=None)
    return make_browse(deps)


def context(browser, task_id: str = "test-browse", events=None) -> ToolContext:
    events = events if events is not None else []
    ctx = ToolContext(task_id, lambda kind, data: events.append((kind, data)),
                      threading.Event(), lambda _: None)
    ctx.state["browser.id"] = browser[1]  # the module's browser is the run's
    return ctx


ARTICLE = ("<html><head><title>  Local   page </title></head><body><nav>menu</nav>"
           "<main><h1>Hello</h1><p>First   paragraph\n\n  with   spaces.</p>"
           "<p>" + "Words of the article. " * 20 + "</p></main></body></html>")


def test_allowlisted_page_gives_title_text_status(browser, net, tmp_path):
    with serve(net, {"/": lambda h: h.reply(200, ARTICLE)}) as site:
        result = make_tool(browser, tmp_path, [site.address]).run(
            {"url": site.base + "/"}, context(browser))
    assert result["status"] == 200 and result["title"] == "Local page"
    assert result["url"] == site.base + "/"
    assert result["text"].startswith("Hello\nFirst paragraph with spaces.")
    assert "menu" not in result["text"]  # the main content, not the navigation


def test_long_text_is_cut_with_a_note(browser, net, tmp_path):
    with serve(net, {"/": lambda h: h.reply(200, ARTICLE)}) as site:
        result = make_tool(browser, tmp_path, [site.address], tool_result_max_chars=200).run(
            {"url": site.base + "/"}, context(browser))
    assert len(result["text"]) < 300 and "cut" in result["text"]


def test_a_screenshot_becomes_an_artifact(browser, net, tmp_path):
    events = []
    with serve(net, {"/": lambda h: h.reply(200, ARTICLE)}) as site:
        result = make_tool(browser, tmp_path, [site.address]).run(
            {"url": site.base + "/", "screenshot": True}, context(browser, "shot", events))
    artifact = result["screenshot"]
    assert events == [("artifact", artifact)] and artifact["mime"] == "image/png"
    saved = tmp_path / "artifacts" / "shot" / artifact["name"]
    assert saved.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("target, reason", [
    ("http://127.0.0.1:{port}/", "refused: 127.0.0.1 is a loopback address"),
    ("http://localhost:{port}/", "refused: localhost is a loopback name"),
    ("http://[::1]:{port}/", "refused: ::1 is a loopback address"),
    ("http://0x7f.0.0.1:{port}/", "refused: .* is a loopback address"),
])
def test_the_worker_refuses_private_targets_before_any_browser_work(browser, net, tmp_path,
                                                                    target, reason):
    with pytest.raises(ToolError, match=reason) as err:
        make_tool(browser, tmp_path, []).run({"url": target.format(port=net.ports[0])},
                                             context(browser))
    assert "AIOS_BROWSE_ALLOWLIST" in str(err.value)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://127.0.0.1/", "javascript:1",
                                 "data:text/html,<title>x</title>", "chrome://version"])
def test_other_schemes_are_refused(browser, tmp_path, url):
    with pytest.raises(ToolError, match="refused: the .* scheme is not allowed"):
        make_tool(browser, tmp_path, []).run({"url": url}, context(browser))


def test_what_the_worker_allows_the_proxy_still_refuses(browser, net, tmp_path):
    """Past the worker's own check (its allowlist names the host and port), the browser's
    proxy, with the manager's policy, is what connects: it refuses that port."""
    with elsewhere(net) as other:
        with pytest.raises(ToolError, match="refused|not allowed|would not open") as err:
            make_tool(browser, tmp_path, [other.address]).run(
                {"url": other.base + "/"}, context(browser))
    assert "AIOS_BROWSE_ALLOWLIST" in str(err.value)
    assert other.connections == 0


def test_redirects_to_refused_addresses_never_connect(browser, net, tmp_path):
    with elsewhere(net) as other:
        secret = f"{other.base}/"
        tls = secret.replace("http:", "https:")  # a CONNECT tunnel through the proxy
        loopback = f"http://127.0.0.1:{net.ports[0]}/"
        pages = {"/one": lambda h: h.reply(302, "", [("Location", secret)]),
                 "/two": lambda h: h.reply(302, "", [("Location", "/one")]),
                 "/tls": lambda h: h.reply(307, "", [("Location", tls)]),
                 "/loop": lambda h: h.reply(302, "", [("Location", loopback)]),
                 "/js": lambda h: h.reply(200, f"<script>location.href='{secret}'</script>")}
        with serve(net, pages) as site:
            tool = make_tool(browser, tmp_path, [site.address])
            for path in ("/one", "/two", "/tls", "/loop", "/js"):
                with _note(path), pytest.raises(ToolError,
                                                match="refused|not allowed|would not open"):
                    tool.run({"url": site.base + path}, context(browser))
    assert other.connections == 0


def test_sub_requests_to_refused_addresses_never_connect(browser, net, tmp_path):
    with elsewhere(net, {}) as other:
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
        with serve(net, {"/": lambda h: h.reply(200, page)}) as site:
            result = make_tool(browser, tmp_path, [site.address]).run(
                {"url": site.base + "/", "screenshot": True}, context(browser))
            time.sleep(0.5)  # a late request would have arrived by now
    assert result["status"] == 200 and result["title"] == "subs"
    assert other.connections == 0, other.requests


def test_an_allowed_websocket_goes_through(browser, net, tmp_path):
    def echo(connection):
        try:
            for message in connection:
                connection.send("echo:" + message)
        except ConnectionClosed:
            pass  # the call's context closed
    with ws_serve(echo, net.host, net.ports[1]) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        page = (f"<title>ws</title><main id=out>waiting</main><script>"
                f"const ws = new WebSocket('ws://{net.host}:{net.ports[1]}/');"
                f"ws.onopen = () => ws.send('hi');"
                f"ws.onmessage = e => document.getElementById('out').textContent = e.data;"
                f"</script><img src='/slow'>")  # load waits for the image, the echo comes first

        def slow(h):
            time.sleep(1)
            h.reply(404, "")
        with serve(net, {"/": lambda h: h.reply(200, page), "/slow": slow}) as site:
            result = make_tool(browser, tmp_path, [site.address]).run(
                {"url": site.base + "/", "screenshot": True}, context(browser))
        server.shutdown()
    assert result["text"] == "echo:hi"


@contextmanager
def silent_port(host: str, port: int):
    """A port that accepts connections and never answers."""
    with socket.create_server((host, port), backlog=16):
        yield


def test_a_page_that_never_answers_times_out(browser, net, tmp_path):
    with silent_port(net.host, net.ports[2]):
        tool = make_tool(browser, tmp_path, [f"{net.host}:{net.ports[2]}"],
                         browse_timeout_s=2.0)
        started = time.monotonic()
        with pytest.raises(ToolError, match="timed out|did not finish within 2 s"):
            tool.run({"url": f"http://{net.host}:{net.ports[2]}/"}, context(browser))
    assert time.monotonic() - started < 2.0 + 10.0


def test_each_call_gets_a_fresh_context(browser, net, tmp_path):
    def set_cookie(h):
        h.reply(200, "<title>cookie</title>set", [("Set-Cookie", "seen=1; Path=/")])
    with serve(net, {"/set": set_cookie, "/get": lambda h: h.reply(200, "got")}) as site:
        tool = make_tool(browser, tmp_path, [site.address])
        tool.run({"url": site.base + "/set"}, context(browser))
        tool.run({"url": site.base + "/get"}, context(browser))
        tool.run({"url": site.base + "/set"}, context(browser))
    cookies = {path: cookie for path, cookie in site.requests if path != "/favicon.ico"}
    assert cookies == {"/set": None, "/get": None}


def test_the_proxy_alone_refuses_relays_and_cuts():
    """The guard proxy every browser sandbox's traffic goes through (aios.net.proxy), on
    loopback, on its own."""
    pages = {"/": lambda h: h.reply(200, "small"), "/big": lambda h: h.reply(200, "z" * 5000)}
    with serving(Site("127.0.0.1", 0, pages)) as site, \
            serving(Site("127.0.0.1", 0, {"/": lambda h: h.reply(200, "secret")})) as other:
        guard = AddressGuard([site.address])
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


@contextmanager
def _note(what: str):
    """Names `what` in an assertion that fails inside the block."""
    try:
        yield
    except BaseException as exc:
        exc.add_note(f"while checking {what}")
        raise
