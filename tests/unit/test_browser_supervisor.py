"""The browser supervisor's pure parts (sandbox_manager/browser): argument checks, error
mapping, refs and the snapshot's cut, the proxy's refusal reasons, the read's text, and
which calls an action makes (on fakes of Playwright's page). No container, no Chromium:
tests/integration/test_browser_image.py runs the real thing."""

import sys
from pathlib import Path

import pytest

# The supervisor's modules import Playwright, which only the browser image and the
# development venv have: the app image's `test` stage (Dockerfile) runs without them
pytest.importorskip("playwright", reason="the browser supervisor needs Playwright")

ROOT = Path(__file__).resolve().parents[2]
# In the image these modules sit side by side in /opt/aios/browser (with the runner's
# aios_attest and aios_files); here they are imported the same way.
for folder in ("sandbox_manager/browser", "sandbox_manager/runner"):
    if str(ROOT / folder) not in sys.path:
        sys.path.insert(0, str(ROOT / folder))

import aios_browser  # noqa: E402
import browser_args as check  # noqa: E402
import browser_navigation  # noqa: E402
import browser_navigation_watch  # noqa: E402
import browser_session  # noqa: E402
from aios.net.guard import AddressGuard  # noqa: E402
from aios.net.proxy import GuardProxy  # noqa: E402
from aios.net.wire import REFUSED_HEADER, refusal  # noqa: E402
from browser_errors import ActionError, first_line, from_playwright  # noqa: E402
from browser_forms import PLAIN_CLICK, approval_error, is_enter  # noqa: E402
from browser_launch import CHROMIUM_ARGS, LaunchFailed, sandbox_mode  # noqa: E402
from browser_proxy import (BLACK_HOLE, ask_refusal, connect_target, launch_proxy,  # noqa: E402
                           parse_refusal, refusal_in_headers)
from browser_refs import RefBook, cut, refs_in  # noqa: E402


def code_of(call, *args) -> str:
    with pytest.raises(ActionError) as caught:
        call(*args)
    return caught.value.code


# --- arguments ----------------------------------------------------------------------------

@pytest.mark.parametrize("url", ["file:///etc/passwd", "FILE:///etc/passwd", "chrome://version",
                                 "data:text/html,<h1>x</h1>", "javascript:alert(1)",
                                 "about:blank", "view-source:http://x/", "ftp://host/",
                                 "//host/path", "host/path"])
def test_only_http_and_https_urls_may_be_opened(url):
    assert code_of(check.url, {"url": url}) == "refused"


@pytest.mark.parametrize("args", [{}, {"url": ""}, {"url": 5}, {"url": "http://"},
                                  {"url": "http://x/" + "a" * check.URL_MAX}])
def test_malformed_urls_are_invalid(args):
    assert code_of(check.url, args) == "invalid"


def test_good_urls_pass_as_given():
    assert check.url({"url": " https://example.com/a?b=1 "}) == "https://example.com/a?b=1"
    assert check.url({"url": "http://172.17.0.1:8080/"}) == "http://172.17.0.1:8080/"


@pytest.mark.parametrize("ref", ["e1", "e123", "f1e3", "f12e456"])
def test_refs_of_the_ai_snapshot_are_accepted(ref):
    assert check.ref({"ref": ref}) == ref


@pytest.mark.parametrize("ref", [None, "", "3", "e", "ref=e3", "[ref=e3]", "#id", "e3 ", "E3",
                                 "aria-ref=e3", "e3>>css=a", "e3\n"])
def test_anything_else_is_not_a_ref(ref):
    assert code_of(check.ref, {"ref": ref}) == "invalid"


@pytest.mark.parametrize("key", ["Enter", "Tab", "ArrowDown", "a", "Z", "F5", "Control+A",
                                 "Shift+Tab", "Control+Shift+K", "/", "PageDown"])
def test_key_names_pass(key):
    assert check.key({"key": key}) == key


@pytest.mark.parametrize("key", [None, "", "Not a key!", "Enter Enter", "a" * 30, "Control+",
                                 "\n", " ", "Enter\n"])
def test_bad_keys_are_invalid(key):
    assert code_of(check.key, {"key": key}) == "invalid"


def test_values_integers_flags_and_unknown_arguments():
    assert check.values({"values": "b"}) == ["b"]
    assert check.values({"values": ["a", "b"]}) == ["a", "b"]
    for bad in ([], [1], None, ["x" * 2000]):
        assert code_of(check.values, {"values": bad}) == "invalid"
    assert check.integer({}, "n", 5, 1, 10) == 5
    for bad in (0, 11, True, "3", 2.5):
        assert code_of(check.integer, {"n": bad}, "n", 5, 1, 10) == "invalid"
    assert check.flag({}, "submit") is False
    assert code_of(check.flag, {"submit": "yes"}, "submit") == "invalid"
    assert code_of(check.check_known, {"ref": "e1", "evil": 1}, ("ref",), "click") == "invalid"
    assert code_of(check.check_known, ["ref"], ("ref",), "click") == "invalid"


def test_timeouts():
    assert check.timeout({}) == check.TIMEOUT_DEFAULT_S
    assert check.timeout({"timeout_s": 2}) == 2.0
    for bad in (0, -1, check.TIMEOUT_MAX_S + 1, True, "5", None):
        assert code_of(check.timeout, {"timeout_s": bad}) == "invalid"


# --- errors -------------------------------------------------------------------------------

class TimeoutError(Exception):  # noqa: A001 - named as Playwright's, which is what counts
    pass


def test_playwright_failures_map_onto_the_codes():
    call_log = "\nCall log:\n  - waiting for locator('aria-ref=e5')\n"
    assert from_playwright(TimeoutError("Timeout 5000ms exceeded." + call_log), "the click",
                           5).code == "timeout"
    assert from_playwright(Exception("Locator.click: Timeout 30000ms exceeded."), "the click",
                           30).message == "the click did not finish within 30 s"
    proxy_down = from_playwright(Exception("net::ERR_PROXY_CONNECTION_FAILED at http://x/"),
                                 "opening the page", 5)
    assert proxy_down.code == "refused" and "proxy is not reachable" in proxy_down.message
    assert from_playwright(Exception("net::ERR_NAME_NOT_RESOLVED at http://x/"), "opening",
                           5).message == "opening failed: ERR_NAME_NOT_RESOLVED"
    assert from_playwright(Exception("Element is not attached to the DOM" + call_log),
                           "the click", 5).code == "stale_ref"
    assert from_playwright(Exception('Keyboard.press: Unknown key: "Foo"'), "the key press",
                           5).code == "invalid"
    assert from_playwright(Exception("Target crashed"), "the screenshot", 5).code == "failed"


def test_messages_are_one_line_without_call_log_or_stack():
    long = "Locator.fill: Error: Element is not an <input>\n    at foo (x.js:1)" \
           "\nCall log:\n  - waiting for locator('aria-ref=e5')\n"
    error = from_playwright(Exception(long), "typing", 5)
    assert error.code == "failed"
    assert error.message == "typing failed: Locator.fill: Error: Element is not an <input>"
    assert first_line("") == "unknown error"
    assert len(first_line("x" * 5000)) == 300
    assert ActionError("refused", "no").frame() == {"t": "error", "code": "refused",
                                                    "message": "no"}
    with pytest.raises(AssertionError):
        ActionError("bogus", "codes are a closed list")


# --- refs and the snapshot's cut ------------------------------------------------------------

SNAPSHOT = """- generic [ref=e1]:
  - heading "Welcome" [level=1] [ref=e2]
  - link "Sign in" [ref=e3] [cursor=pointer]:
    - /url: /form
  - iframe [ref=e4]:
    - button "Inside" [ref=f1e2]
  - paragraph: not interactive
"""


def test_refs_are_read_off_the_snapshot():
    assert refs_in(SNAPSHOT) == {"e1", "e2", "e3", "e4", "f1e2"}


def test_a_short_snapshot_is_left_whole():
    assert cut(SNAPSHOT, 10_000) == (SNAPSHOT, False)


def test_a_long_snapshot_is_cut_at_a_line_end_with_a_note():
    text, was_cut = cut(SNAPSHOT, 60)
    assert was_cut
    body, note = text.split("\n[snapshot cut at ")
    assert SNAPSHOT.startswith(body) and SNAPSHOT[len(body)] == "\n"
    assert len(body) <= 60
    assert f"of {len(SNAPSHOT)} characters" in note
    one_line = "x" * 500
    assert cut(one_line, 100)[0].startswith("x" * 100 + "\n[snapshot cut at 100 of 500")


def test_ref_book_tells_current_stale_and_unknown_refs():
    book, tab, other = RefBook(), object(), object()
    assert code_of(book.check, tab, "e1") == "not_found"  # no snapshot yet
    book.record(tab, {"e1", "e2"})
    book.check(tab, "e1")
    book.record(tab, {"e2", "e9"})  # the page changed: e1 is gone
    book.check(tab, "e9")
    assert code_of(book.check, tab, "e1") == "stale_ref"
    assert code_of(book.check, tab, "e77") == "not_found"
    book.record(other, {"e40"})
    assert code_of(book.check, tab, "e40") == "stale_ref"  # another tab's
    book.forget(tab)
    assert code_of(book.check, tab, "e9") == "not_found"


# --- the proxy ----------------------------------------------------------------------------

def test_without_a_proxy_everything_goes_to_a_black_hole():
    assert launch_proxy({}) == {"server": BLACK_HOLE, "bypass": "<-loopback>"}
    assert launch_proxy({"AIOS_BROWSER_PROXY": " "})["server"] == BLACK_HOLE
    assert launch_proxy({"AIOS_BROWSER_PROXY": "http://10.0.0.2:3128"}) == \
        {"server": "http://10.0.0.2:3128", "bypass": "<-loopback>"}


def test_the_refusal_header_is_the_proxys():
    head = refusal("refused: 10.1.2.3 is a private address").split(b"\r\n\r\n")[0] + b"\r\n"
    assert parse_refusal(head) == (403, "refused: 10.1.2.3 is a private address")
    assert refusal_in_headers({REFUSED_HEADER.lower(): " refused: no "}) == "refused: no"
    assert refusal_in_headers({"content-type": "text/html"}) is None
    assert parse_refusal(b"HTTP/1.1 200 Connection established\r\n") == (200, None)
    assert parse_refusal(b"garbage") == (None, None)


@pytest.mark.parametrize("url,target", [
    ("https://example.com/x", "example.com:443"), ("http://example.com/", "example.com:80"),
    ("https://10.0.0.1:8443/", "10.0.0.1:8443"), ("https://[::1]/", "[::1]:443"),
    ("https:///nohost", None), ("https://h:99999/", None)])
def test_connect_targets(url, target):
    assert connect_target(url) == target


def test_a_refused_tunnel_is_explained_by_asking_the_proxy():
    guard = AddressGuard(ports=[443])
    with GuardProxy(guard) as proxy:
        environ = {"AIOS_BROWSER_PROXY": proxy.url}
        assert ask_refusal("https://10.255.255.1/", environ) == \
            "refused: 10.255.255.1 is a private address"
        assert "port 8443 is not allowed" in ask_refusal("https://10.255.255.1:8443/", environ)
    assert ask_refusal("https://10.255.255.1/", {"AIOS_BROWSER_PROXY": "http://127.0.0.1:9"}) \
        is None


# --- forms, launch, dispatch ----------------------------------------------------------------

def test_approval_names_the_forms_target_and_method():
    assert approval_error(None) is None
    error = approval_error({"action": "https://shop.example/pay", "method": "post"})
    assert error.code == "needs_approval"
    assert "POST https://shop.example/pay" in error.message
    assert is_enter("Enter") and is_enter("Control+Enter") and not is_enter("Tab")


def test_chromium_sandbox_is_never_switched_off_by_the_flags():
    assert "--no-sandbox" not in CHROMIUM_ARGS
    assert "--force-webrtc-ip-handling-policy=disable_non_proxied_udp" in CHROMIUM_ARGS
    assert sandbox_mode({}) == "auto"
    assert sandbox_mode({"AIOS_BROWSER_SANDBOX": "OFF"}) == "off"
    with pytest.raises(LaunchFailed):
        sandbox_mode({"AIOS_BROWSER_SANDBOX": "maybe"})


class FakeSession:
    browser = None

    def begin(self, timeout_s):
        self.timeout_s = timeout_s
        return "page"

    def click(self, page, args):
        raise RuntimeError("Locator.click: something odd\nCall log:\n  - x")

    def tabs(self, page, args):
        return {"tabs": [], "page": page, "timeout_s": self.timeout_s}


def test_perform_checks_the_request_and_maps_unexpected_errors():
    session = FakeSession()
    assert aios_browser.perform(session, {"action": "tabs", "timeout_s": 3}) == \
        {"tabs": [], "page": "page", "timeout_s": 3.0}
    for bad in ({"action": "fly"}, {"action": "tabs", "args": []},
                {"action": "tabs", "timeout_s": 0}):
        assert code_of(aios_browser.perform, session, bad) == "invalid"
    with pytest.raises(ActionError) as caught:
        aios_browser.perform(session, {"action": "click", "args": {"ref": "e1"}})
    assert (caught.value.code, caught.value.message) == \
        ("failed", "the click failed: Locator.click: something odd")
    assert set(aios_browser.ACTIONS) == set(aios_browser.VERBS)


# --- the read's text ----------------------------------------------------------------------

def test_the_read_text_is_the_old_browse_tools():
    """Each line's whitespace collapsed, empty lines dropped (the worker-side browse's
    _readable before issue #18); its JS picks main/article/[role=main] past 200 characters."""
    text = "  Hello \n\n\tFirst   paragraph\n  with   spaces. \n \n"
    assert browser_navigation.readable(text) == "Hello\nFirst paragraph\nwith spaces."
    assert browser_navigation.readable(" \n\t\n") == ""
    assert "main, article, [role=main]" in browser_navigation.READABLE_JS
    assert "innerText.trim().length > 200" in browser_navigation.READABLE_JS
    assert browser_navigation.read_cut("short", 100) == "short"
    assert browser_navigation.read_cut("x" * 150, 100) == \
        "x" * 100 + "\n[cut: the first 100 of 150 characters]"


class FakeResponse:
    def __init__(self, headers):
        self.headers = headers


@pytest.mark.parametrize("found, headers, delay", [
    ({"refresh": 0}, {}, 0.0), ({"refresh": 2.5}, {}, 2.5), ({"refresh": None}, {}, None),
    (None, {"refresh": "0; url=http://x/"}, 0.0), (None, {"refresh": "soon"}, None),
    ({"refresh": None}, {"refresh": " 1 "}, 1.0), (None, {"refresh": "-1"}, None),
    (None, {"refresh": "nan"}, None)])
def test_a_refresh_is_read_off_the_meta_tag_or_the_header(found, headers, delay):
    assert browser_navigation._refresh_s(FakeResponse(headers), found) == delay
    assert browser_navigation._refresh_s(None, None) is None


# --- navigations the page starts by itself ---------------------------------------------------

class FakeRequest:
    def __init__(self, page, url, navigation=True, main=True, failure=None):
        self.url, self.failure = url, failure
        self._navigation = navigation
        self.frame = page.main_frame if main else object()

    def is_navigation_request(self):
        return self._navigation


class FakeEventResponse:
    def __init__(self, request, status=200, headers=None):
        self.request, self.url, self.status = request, request.url, status
        self.headers = headers or {}


class FakePage:
    """Playwright's page as NavigationWatch and the click see it: handlers, and a clock
    (wait_for_timeout) that delivers the events queued for later."""

    def __init__(self):
        self.main_frame = object()
        self.handlers: dict[str, list] = {}
        self.later: list = []  # (event, argument), delivered by wait_for_timeout
        self.waited_ms = 0
        self.calls: list = []

    def on(self, event, handler):
        self.handlers.setdefault(event, []).append(handler)

    def emit(self, event, argument):
        for handler in self.handlers.get(event, []):
            handler(argument)

    def wait_for_timeout(self, ms):
        self.waited_ms += ms
        if self.later:
            self.emit(*self.later.pop(0))


REFUSAL = {REFUSED_HEADER.lower(): "refused: port 8888 is not allowed"}


def test_a_refused_navigation_of_the_page_itself_is_the_answer():
    page = FakePage()
    watch = browser_navigation_watch.NavigationWatch(page)
    watch.settle(5.0)
    assert page.waited_ms == 0  # nothing pending: no wait at all
    away = FakeRequest(page, "http://h:8888/")
    page.emit("request", FakeRequest(page, "http://h/img.png", navigation=False))
    page.emit("request", FakeRequest(page, "http://h/frame", main=False))
    page.emit("request", away)
    assert watch.pending == {away} and watch.requested == 1
    page.later.append(("response", FakeEventResponse(away, 403, REFUSAL)))
    watch.settle(5.0)
    assert watch.pending == set() and page.waited_ms == browser_navigation_watch.PENDING_POLL_MS
    error = watch.refusal()
    assert error.code == "refused"
    assert error.message == "the proxy refused http://h:8888/: port 8888 is not allowed"
    watch.reset()
    assert watch.refusal() is None and watch.requested == 0


def test_a_refresh_due_at_once_is_awaited_until_its_request_shows_up():
    page = FakePage()
    watch = browser_navigation_watch.NavigationWatch(page)
    away = FakeRequest(page, "http://h:8888/")
    page.later += [("request", away), ("response", FakeEventResponse(away, 403, REFUSAL))]
    watch.settle(5.0, awaiting=1)
    assert watch.refusal().code == "refused" and not page.later
    page.later.clear()
    watch.reset()
    watch.settle(0.05, awaiting=1)  # none comes: bounded
    assert watch.refusal() is None


def test_only_refusals_are_the_pages_answer_not_other_failures():
    page = FakePage()
    watch = browser_navigation_watch.NavigationWatch(page)
    aborted = FakeRequest(page, "http://h/next", failure="net::ERR_ABORTED")
    page.emit("request", aborted)
    page.emit("requestfailed", aborted)
    assert watch.pending == set() and watch.refusal() is None
    assert watch.problem().code == "failed"  # what an input's answer says of it
    tunnel = FakeRequest(page, "https://10.255.255.1/",
                         failure="net::ERR_TUNNEL_CONNECTION_FAILED")
    page.emit("requestfailed", tunnel)  # no proxy here to ask why: still a refusal
    assert watch.refusal().code == "refused"


# --- the click's round trips ------------------------------------------------------------------

class FakeLocator:
    def __init__(self, page, selector):
        self.page, self.selector = page, selector

    def count(self):
        self.page.calls.append(("count", self.selector))
        return 1 if self.page.plain else 0

    def click(self, timeout=None):
        self.page.calls.append(("click", self.selector))


class FakeHandle:
    def __init__(self, page):
        self.page = page

    def evaluate(self, script):
        self.page.calls.append(("evaluate",))
        return self.page.effects

    def click(self, timeout=None):
        self.page.calls.append(("handle.click",))

    def dispose(self):
        self.page.calls.append(("dispose",))


class ClickPage(FakePage):
    url = "http://h/"

    def __init__(self, plain, effects=None, gone=False):
        super().__init__()
        self.plain, self.effects, self.gone = plain, effects, gone

    def locator(self, selector):
        return FakeLocator(self, selector)

    def get_by_ref(self, ref):
        return FakeLocator(self, f"aria-ref={ref}")

    def query_selector(self, selector):
        self.calls.append(("query_selector", selector))
        return None if self.gone else FakeHandle(self)

    def title(self):
        self.calls.append(("title",))
        return "Page"


def click_session(page):
    session = browser_session.Session.__new__(browser_session.Session)
    session.refs, session.timeout_s = RefBook(), 5.0
    session.watches = {page: browser_navigation_watch.NavigationWatch(page)}
    session.pages = lambda: [page]
    session.refs.record(page, {"e1"})
    return session


def test_a_plain_click_is_one_check_and_the_click_and_waits_for_nothing():
    """The fast path: one count() of the element under PLAIN_CLICK (in Playwright's world:
    no handle to adopt), the click, the title; no wait for a load when nothing navigated."""
    page = ClickPage(plain=True)
    page.wait_for_load_state = lambda *a, **k: page.calls.append(("wait_for_load_state",))
    result = click_session(page).click(page, {"ref": "e1", "guard_submit": True})
    assert result == {"url": "http://h/", "title": "Page"}
    assert page.calls == [("count", f"aria-ref=e1 >> {PLAIN_CLICK}"), ("click", "aria-ref=e1"),
                          ("title",)]


def test_a_click_that_may_submit_is_checked_on_the_handle_it_clicks():
    submit = {"opens_tab": False, "submit": {"action": "http://h/pay", "method": "post"}}
    page = ClickPage(plain=False, effects=submit)
    with pytest.raises(ActionError) as asked:
        click_session(page).click(page, {"ref": "e1", "guard_submit": True})
    assert asked.value.code == "needs_approval" and "POST http://h/pay" in asked.value.message
    assert [c[0] for c in page.calls] == ["count", "query_selector", "evaluate", "dispose"]
    page.calls.clear()
    click_session(page).click(page, {"ref": "e1", "guard_submit": False})
    assert [c[0] for c in page.calls] == ["count", "query_selector", "evaluate", "handle.click",
                                          "title", "dispose"]


def test_a_gone_element_is_a_stale_ref_and_an_unknown_one_not_found():
    page = ClickPage(plain=False, gone=True)
    session = click_session(page)
    assert code_of(session.click, page, {"ref": "e1"}) == "stale_ref"
    assert code_of(session.click, page, {"ref": "e9"}) == "not_found"


def test_the_fast_paths_selector_is_a_chained_xpath_on_the_element_itself():
    assert PLAIN_CLICK.startswith("xpath=self::*[not(") and " >> " not in PLAIN_CLICK
    for kept_out in ("@target", "'label'", "'form'", "'submit'", "'image'", "'reset'"):
        assert kept_out in PLAIN_CLICK
