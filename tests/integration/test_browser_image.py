"""The aios-browser image on a real dockerd: one hardened container, created and attached
the way the sandbox manager creates a sandbox, its Chromium behind a real aios.net.egress
proxy on the Docker bridge's gateway address, pages served from that address too (tests
reach only this machine's own addresses). One container for the whole module."""

import base64
import os
import re
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import docker
import pytest
from docker.types import Ulimit

from aios_sandbox.attestation import ZERO_CAPS
from aios_sandbox.protocol import FrameDecoder, encode_request

ROOT = Path(__file__).resolve().parents[2]
IMAGE = os.environ.get("BROWSER_IMAGE", "aios-browser")
SECCOMP = ROOT / "docker" / "seccomp-browser.json"
UID = 10001
MiB = 1 << 20
DOWNLOAD = b"col1,col2\n1,2\n" * 100


# --- the "internet": pages on the gateway address ---------------------------------------------

PAGES = {
    "/": """<html><head><title>Home</title></head><body>
      <h1>Welcome</h1>
      <a href="/form">Sign in</a>
      <a href="/popup" target="_blank">Open help</a>
      <a href="/file.csv" download>Get data</a>
      <a href="/big.bin" download>Get big</a>
      <label>Fruit <select name="fruit"><option value="a">Apple</option>
        <option value="b">Banana</option><option value="c">Cherry</option></select></label>
      <button onclick="this.remove()">Vanish</button>
      <div style="height: 4000px">tall</div><p>bottom</p>
    </body></html>""",
    "/form": """<html><head><title>Sign in</title></head><body>
      <form action="/hello" method="post">
        <label>Name <input name="name"></label>
        <button type="submit">Go</button>
      </form></body></html>""",
    "/popup": "<html><head><title>Help</title></head><body><p>Help text</p></body></html>",
    "/busy": "<title>Busy</title><script>setTimeout(() => { while (true) {} }, 300)</script>",
    # read: the main content when it has more than 200 characters, else the body
    "/article": "<html><head><title>  An \n  article </title></head><body><nav>menu</nav>"
                "<main><h1>Hello</h1><p>First   paragraph\n\n  with   spaces.</p><p>"
                + "Words of the article. " * 20 + "</p></main></body></html>",
    "/short": "<title>Short</title><nav>menu</nav><main><p>Too   short</p></main>",
    # a page that sends itself to an allowed page of this site
    "/hop": "<title>Hop</title><script>location.href = '/popup'</script>",
    # what a click will do (guard_submit), and the fast path's plain elements
    "/clicks": """<html><head><title>Clicks</title></head><body>
      <p>Count: <span id="n">0</span></p>
      <button onclick="n.textContent = +n.textContent + 1">Count</button>
      <form id="f" action="/hello" method="post">
        <label>Name <input name="name"></label>
        <button type="button" onclick="n.textContent = +n.textContent + 1">Plain</button>
        <button type="Bogus">Odd</button>
        <label><input type="checkbox" name="keep"> Remember me</label>
        <label for="go"><span>Send by label</span></label>
      </form>
      <button form="f">Outside</button>
      <form action="/hello" method="post"><button id="go">Hidden go</button></form>
      <form action="/popup"><button formtarget="_blank">In a new tab</button></form>
      <iframe srcdoc="<button onclick='this.textContent = &quot;Pressed&quot;'>Inner</button>">
      </iframe></body></html>""",
}
# Pages that send themselves to this host on a port the proxy does not allow, after loading.
AWAY = {
    "/away-script": "<title>Script</title><script>location.href = '{elsewhere}'</script>",
    "/away-meta": "<title>Meta</title><meta http-equiv='refresh' content='0; url={elsewhere}'>",
    "/away-onload": "<title>Onload</title>"
                    "<script>onload = () => location.href = '{elsewhere}'</script>",
}


class _Site(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def _send(self, body: bytes, ctype="text/html; charset=utf-8", extra=()):
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for name, value in extra:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        path = urlsplit(self.path).path
        host = self.headers["Host"].rsplit(":", 1)[0]
        if path == "/away":  # a link to this host on a port the proxy does not allow
            return self._send(f'<title>Away</title><a href="http://{host}:8888/">Elsewhere</a>'
                              .encode())
        if path in AWAY:
            return self._send(AWAY[path].format(elsewhere=f"http://{host}:8888/").encode())
        if path == "/file.csv":
            return self._send(DOWNLOAD, "text/csv",
                              [("Content-Disposition", 'attachment; filename="data.csv"')])
        if path == "/big.bin":
            return self._send(b"x" * 300_000, "application/octet-stream",
                              [("Content-Disposition", 'attachment; filename="big.bin"')])
        if path in PAGES:
            return self._send(PAGES[path].encode())
        self.send_error(404)

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        name = parse_qs(self.rfile.read(length).decode()).get("name", ["?"])[0]
        self._send(f"<html><head><title>Hello {name}</title></head>"
                   f"<body><p>Hello, {name}!</p></body></html>".encode())


@pytest.fixture(scope="module")
def gateway(docker_client) -> str:
    return docker_client.networks.get("bridge").attrs["IPAM"]["Config"][0]["Gateway"]


@pytest.fixture(scope="module")
def site(gateway):
    server = ThreadingHTTPServer((gateway, 0), _Site)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://{gateway}:{server.server_port}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def proxy(gateway, site, tmp_path_factory):
    """The real egress proxy, allowing the site's address and port only."""
    port = urlsplit(site).port
    log = tmp_path_factory.mktemp("proxy") / "egress.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "aios.net.egress", "--listen", f"{gateway}:0",
             "--allow", f"{gateway}:{port}", "--ports", f"80,443,{port}"],
            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT / "python-backend")},
            stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while not (found := re.search(r"listening on (\S+):(\d+)", log.read_text())):
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        yield f"http://{found.group(1)}:{found.group(2)}"
    finally:
        proc.terminate()
        proc.wait(10)


# --- the container, created and attached as the manager does ----------------------------------

class Browser:
    """A synchronous client of the supervisor over the attached socket."""

    def __init__(self, container, sock):
        self.container, self.sock = container, sock
        self.decoder = FrameDecoder()
        self.frames: list[dict] = []

    def receive(self, timeout_s: float = 60.0) -> dict:
        deadline = time.monotonic() + timeout_s
        while not self.frames:
            left = deadline - time.monotonic()
            assert left > 0, "no frame from the supervisor: " + \
                self.decoder.diagnostics.decode(errors="replace")[-2000:]
            self.sock.settimeout(left)
            data = self.sock.recv(1 << 20)
            assert data, "the supervisor closed its output: " + \
                self.decoder.diagnostics.decode(errors="replace")[-2000:]
            self.frames.extend(self.decoder.feed(data))
        return self.frames.pop(0)

    def request(self, request: dict) -> dict:
        self.sock.sendall(encode_request(request))
        return self.receive()

    def act(self, action: str, /, timeout_s: float = 20, **args) -> dict:
        return self.request({"op": "action", "action": action, "args": args,
                             "timeout_s": timeout_s})

    def ok(self, action: str, /, **args) -> dict:
        frame = self.act(action, **args)
        assert frame["t"] == "result", frame
        return frame["result"]

    def error(self, action: str, /, **args) -> dict:
        frame = self.act(action, **args)
        assert frame["t"] == "error", frame
        return frame


def browser_spec(proxy_url: str) -> dict:
    """What the manager gives a browser container (see /tmp/s/browser-container.md)."""
    return dict(
        image=IMAGE, user=f"{UID}:{UID}", labels={"aios.test": "browser-image"},
        stdin_open=True, tty=False, detach=True,
        cap_drop=["ALL"],
        security_opt=["no-new-privileges:true", "seccomp=" + SECCOMP.read_text()],
        read_only=True,
        tmpfs={"/home/browser": f"size=64m,uid={UID},gid={UID},mode=0700,nosuid,nodev,noexec",
               "/tmp": "size=512m,mode=1777,nosuid,nodev,noexec"},
        mem_limit=1024 * MiB, memswap_limit=1024 * MiB, nano_cpus=int(1e9), pids_limit=512,
        # fsize no smaller than /tmp: a download past it would kill Chromium (SIGXFSZ).
        ulimits=[Ulimit(name="nofile", soft=4096, hard=4096),
                 Ulimit(name="fsize", soft=512 * MiB, hard=512 * MiB),
                 Ulimit(name="core", soft=0, hard=0)],
        log_config={"type": "none"},
        environment={"HOME": "/home/browser", "AIOS_BROWSER_PROXY": proxy_url},
        working_dir="/home/browser",
        network="bridge",  # the manager's is an internal network whose one peer is the proxy
    )


@pytest.fixture(scope="module")
def browser(docker_client, proxy):
    try:
        docker_client.images.get(IMAGE)
    except docker.errors.ImageNotFound:
        pytest.fail(f"the {IMAGE} image is missing: run scripts/build-images.sh")
    container = docker_client.containers.create(**browser_spec(proxy))
    attached = docker_client.api.attach_socket(
        container.id, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1})
    raw = attached._sock
    sock = raw.dup()
    attached.close()
    raw.close()
    started = time.monotonic()
    container.start()
    client = Browser(container, sock)
    try:
        client.hello = client.receive(timeout_s=60)
        client.start_s = time.monotonic() - started
        print(f"\nbrowser container start to hello: {client.start_s:.2f} s")
        yield client
    finally:
        sock.close()
        container.remove(force=True)


def refs_named(snapshot: str, role: str, name: str) -> str:
    found = re.search(rf'- {role} "{re.escape(name)}"[^\n]*\[ref=(\w+)\]', snapshot)
    assert found, f"no {role} {name!r} in:\n{snapshot}"
    return found.group(1)


def ref_of(snapshot: str, role: str) -> str:
    found = re.search(rf"- {role}\b[^\n]*\[ref=(\w+)\]", snapshot)
    assert found, f"no {role} in:\n{snapshot}"
    return found.group(1)


# --- tests ------------------------------------------------------------------------------------

def test_hello_attests_a_hardened_container_and_chromium_sandbox(browser):
    hello = browser.hello
    assert hello["t"] == "hello", hello
    report = hello["attest"]
    assert report["uid"] == UID and report["euid"] == UID
    assert all(report[k] == ZERO_CAPS for k in ("cap_eff", "cap_prm", "cap_bnd", "cap_amb"))
    assert report["no_new_privs"] == "1" and report["seccomp"] == "2"
    assert report["root_read_only"] is True
    assert report["home_bytes"] == 64 * MiB and report["tmp_bytes"] == 512 * MiB
    assert report["docker_socket"] is False
    assert int(report["pids_max"]) == 512
    assert report["fsize"] == [512 * MiB] * 2 and report["core"] == [0, 0]
    assert re.match(r"^\d+\.\d+\.\d+\.\d+$", hello["browser"]["version"])
    # With docker/seccomp-browser.json, Chromium's own sandbox is on (measured inside).
    assert hello["browser"]["chromium_sandbox"] is True
    again = browser.request({"op": "attest"})
    assert again["t"] == "attest" and again["attest"]["uid"] == UID


def test_navigate_snapshot_click_a_link_and_back(browser, site):
    page = browser.ok("navigate", url=site + "/")
    assert page == {"url": site + "/", "title": "Home", "status": 200}
    snap = browser.ok("snapshot")
    assert snap["title"] == "Home" and snap["truncated"] is False
    assert snap["tabs"] == [{"index": 0, "url": site + "/", "title": "Home", "active": True}]
    link = refs_named(snap["snapshot"], "link", "Sign in")
    clicked = browser.ok("click", ref=link)
    assert clicked == {"url": site + "/form", "title": "Sign in"}
    # The home page's refs belong to a document that is gone.
    assert browser.error("click", ref=link)["code"] == "stale_ref"
    back = browser.ok("back")
    assert back["url"] == site + "/"


def test_type_into_a_form_and_submit_with_and_without_approval(browser, site):
    browser.ok("navigate", url=site + "/form")
    snap = browser.ok("snapshot")["snapshot"]
    box = ref_of(snap, "textbox")
    asked = browser.error("type", ref=box, text="Ada", submit=True, guard_submit=True)
    assert asked["code"] == "needs_approval"
    assert f"POST {site}/hello" in asked["message"]
    go = refs_named(snap, "button", "Go")
    assert browser.error("click", ref=go, guard_submit=True)["code"] == "needs_approval"
    browser.ok("type", ref=box, text="Ada")
    assert browser.error("press", key="Enter", guard_submit=True)["code"] == "needs_approval"
    done = browser.ok("type", ref=box, text="Ada", submit=True)
    assert done == {"url": site + "/hello", "title": "Hello Ada"}


def test_select_press_scroll_screenshot(browser, site):
    browser.ok("navigate", url=site + "/")
    snap = browser.ok("snapshot")["snapshot"]
    fruit = ref_of(snap, "combobox")
    assert browser.ok("select", ref=fruit, values=["Cherry"]) == {"selected": ["c"]}
    assert browser.error("select", ref=fruit, values=[])["code"] == "invalid"
    assert browser.ok("press", key="Tab")["url"] == site + "/"
    assert browser.error("press", key="Not a key!")["code"] == "invalid"
    down = browser.ok("scroll", direction="down", pixels=1000)
    assert down == {"scroll_y": 1000, "at_end": False}
    end = browser.ok("scroll", direction="down", pixels=100_000)
    assert end["at_end"] is True
    assert browser.ok("scroll", direction="up", pixels=100_000) == {"scroll_y": 0,
                                                                    "at_end": True}
    shot = browser.ok("screenshot")
    assert base64.b64decode(shot["png_base64"]).startswith(b"\x89PNG")


def test_a_removed_element_is_stale_and_an_unknown_ref_not_found(browser, site):
    browser.ok("navigate", url=site + "/")
    snap = browser.ok("snapshot")["snapshot"]
    vanish = refs_named(snap, "button", "Vanish")
    browser.ok("click", ref=vanish)  # the button removes itself
    assert browser.error("click", ref=vanish)["code"] == "stale_ref"
    assert browser.error("click", ref="e99999")["code"] == "not_found"
    assert browser.error("click", ref="#submit")["code"] == "invalid"


def test_a_popup_joins_the_tabs(browser, site):
    browser.ok("navigate", url=site + "/")
    snap = browser.ok("snapshot")["snapshot"]
    clicked = browser.ok("click", ref=refs_named(snap, "link", "Open help"))
    assert clicked["new_tabs"] == [1]
    tabs = browser.ok("tabs", action="list")["tabs"]
    assert [t["url"] for t in tabs] == [site + "/", site + "/popup"]
    assert browser.ok("tabs", action="switch", index=1)["tabs"][1]["active"] is True
    assert "Help text" in browser.ok("snapshot")["snapshot"]
    assert browser.error("tabs", action="switch", index=5)["code"] == "not_found"
    left = browser.ok("tabs", action="close", index=1)["tabs"]
    assert left == [{"index": 0, "url": site + "/", "title": "Home", "active": True}]


def test_download_and_its_size_cap(browser, site):
    browser.ok("navigate", url=site + "/")
    snap = browser.ok("snapshot")["snapshot"]
    got = browser.ok("download", ref=refs_named(snap, "link", "Get data"))
    assert (got["name"], got["mime"], got["size"]) == ("data.csv", "text/csv", len(DOWNLOAD))
    assert base64.b64decode(got["data_base64"]) == DOWNLOAD
    big = browser.error("download", ref=refs_named(snap, "link", "Get big"), max_bytes=1000)
    assert big["code"] == "too_large"
    none = browser.act("download", ref=refs_named(snap, "link", "Sign in"), timeout_s=3)
    assert none["t"] == "error" and none["code"] == "timeout"


def test_read_gives_the_readable_text_of_the_main_content(browser, site):
    """As the worker-side browse had it: the main element's text when it has more than 200
    characters, else the body's; each line's whitespace collapsed, no empty lines."""
    got = browser.ok("read", url=site + "/article")
    assert got["title"] == "An article" and got["status"] == 200
    assert got["text"].startswith("Hello\nFirst paragraph with spaces.\nWords of the")
    assert "menu" not in got["text"] and "\n\n" not in got["text"]
    assert browser.ok("read", url=site + "/short")["text"] == "menu\nToo short"
    cut = browser.ok("read", url=site + "/article", max_chars=100)["text"]
    assert cut == got["text"][:100] + f"\n[cut: the first 100 of {len(got['text'])} characters]"


def test_read_uses_a_throwaway_context(browser, site):
    got = browser.ok("read", url=site + "/popup", screenshot=True)
    assert (got["status"], got["title"], got["text"]) == (200, "Help", "Help text")
    assert base64.b64decode(got["png_base64"]).startswith(b"\x89PNG")
    tabs = browser.ok("tabs", action="list")["tabs"]
    assert all("/popup" not in t["url"] for t in tabs)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "chrome://version",
                                 "data:text/html,<h1>x</h1>", "javascript:alert(1)"])
def test_non_http_schemes_are_refused(browser, url):
    refused = browser.error("navigate", url=url)
    assert refused["code"] == "refused"
    assert browser.error("read", url=url)["code"] == "refused"


def test_the_proxy_refusals_come_back_with_its_reason(browser, gateway):
    plain = browser.error("navigate", url=f"http://{gateway}:8888/")  # port not allowed
    assert plain["code"] == "refused" and "port 8888 is not allowed" in plain["message"], plain
    tunnel = browser.error("navigate", url="https://10.255.255.1/")  # private address
    assert tunnel["code"] == "refused" and "10.255.255.1" in tunnel["message"], tunnel
    assert "private" in tunnel["message"] or "not allowed" in tunnel["message"], tunnel


def test_a_click_into_a_refused_destination_says_why(browser, site):
    browser.ok("navigate", url=site + "/away")
    link = refs_named(browser.ok("snapshot")["snapshot"], "link", "Elsewhere")
    refused = browser.error("click", ref=link)
    assert refused["code"] == "refused" and "port 8888 is not allowed" in refused["message"]


@pytest.mark.parametrize("path", sorted(AWAY))
def test_a_page_that_sends_itself_to_a_refused_address_is_refused(browser, site, path):
    """A script or a meta refresh that moves the page while the action waits for it: the
    proxy's refusal of that navigation is the answer, not the first page's text."""
    for action in ("read", "navigate"):
        refused = browser.error(action, url=site + path)
        assert refused["code"] == "refused", (action, refused)
        assert "port 8888 is not allowed" in refused["message"], (action, refused)


def test_a_page_that_sends_itself_to_an_allowed_page_is_answered_from_there(browser, site):
    assert browser.ok("navigate", url=site + "/hop") == {"url": site + "/popup", "title": "Help",
                                                         "status": 200}
    read = browser.ok("read", url=site + "/hop")
    assert (read["url"], read["title"], read["text"]) == (site + "/popup", "Help", "Help text")


def test_what_a_click_will_do_is_checked_on_the_element_itself(browser, site):
    """guard_submit on every click, as the worker sends it: plain elements are clicked at
    once (the fast path), anything that would submit a form asks first, whatever the way."""
    browser.ok("navigate", url=site + "/clicks")
    snap = browser.ok("snapshot")["snapshot"]
    for name in ("Count", "Plain"):
        assert browser.ok("click", ref=refs_named(snap, "button", name), guard_submit=True) == \
            {"url": site + "/clicks", "title": "Clicks"}
    assert '"Count: 2"' in browser.ok("snapshot")["snapshot"]
    snap = browser.ok("snapshot")["snapshot"]
    label = re.search(r"- generic \[ref=(\w+)\]: Send by label", snap).group(1)
    for ref in (refs_named(snap, "button", "Odd"),  # a type it does not know: a submit button
                refs_named(snap, "button", "Outside"),  # in the form by its form attribute
                label,  # the label of a submit button
                refs_named(snap, "button", "In a new tab")):
        asked = browser.error("click", ref=ref, guard_submit=True)
        assert asked["code"] == "needs_approval", (ref, asked)
    assert f"POST {site}/hello" in asked["message"] or f"GET {site}/popup" in asked["message"]
    browser.ok("click", ref=refs_named(snap, "checkbox", "Remember me"), guard_submit=True)
    assert 'checkbox "Remember me" [checked]' in browser.ok("snapshot")["snapshot"]
    inner = re.search(r'button "Inner" \[ref=(f\d+e\d+)\]', snap).group(1)
    browser.ok("click", ref=inner, guard_submit=True)  # in a frame: the fast path too
    assert 'button "Pressed"' in browser.ok("snapshot")["snapshot"]
    # Its formtarget opens a tab, once the user has said yes (guard_submit false).
    snap = browser.ok("snapshot")["snapshot"]
    opened = browser.ok("click", ref=refs_named(snap, "button", "In a new tab"))
    assert opened["new_tabs"] == [1], opened
    tabs = browser.ok("tabs", action="list")["tabs"]
    assert tabs[1]["url"].startswith(site + "/popup"), tabs
    browser.ok("tabs", action="close", index=1)


def test_bad_requests_are_answered_and_the_supervisor_keeps_serving(browser, site):
    assert browser.request({"op": "nope"})["code"] == "invalid"
    assert browser.request({"op": "action", "action": "fly"})["code"] == "invalid"
    assert browser.error("navigate", url=site, extra=1)["code"] == "invalid"
    assert browser.act("navigate", timeout_s=0, url=site)["code"] == "invalid"
    assert browser.ok("navigate", url=site + "/popup")["title"] == "Help"


def test_the_page_cannot_reach_the_container_loopback(browser):
    # "<-loopback>": even the container's own loopback goes through the proxy, which refuses.
    refused = browser.error("navigate", url="http://127.0.0.1/")
    assert refused["code"] == "refused" and "loopback" in refused["message"], refused


def test_a_page_stuck_in_a_script_times_out_and_the_browser_lives_on(browser, site):
    """Last: it costs the tabs. scroll's page.evaluate has no timeout of its own; the
    supervisor's watchdog stops the renderers 5 s past the action's timeout."""
    browser.ok("navigate", url=site + "/busy")
    time.sleep(0.5)  # the page's script is now looping
    stuck = browser.act("scroll", timeout_s=1, direction="down")
    assert stuck["t"] == "error" and stuck["code"] == "timeout", stuck
    assert browser.ok("navigate", url=site + "/popup")["title"] == "Help"
    assert browser.request({"op": "attest"})["t"] == "attest"
