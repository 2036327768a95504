"""The browser supervisor's pure parts (sandbox_manager/browser): argument checks, error
mapping, refs and the snapshot's cut, the proxy's refusal reasons. No container, no
Chromium: tests/integration/test_browser_image.py runs the real thing."""

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# In the image these modules sit side by side in /opt/aios/browser (with the runner's
# aios_attest and aios_files); here they are imported the same way.
for folder in ("sandbox_manager/browser", "sandbox_manager/runner"):
    if str(ROOT / folder) not in sys.path:
        sys.path.insert(0, str(ROOT / folder))

import aios_browser  # noqa: E402
import browser_args as check  # noqa: E402
from aios.net.guard import AddressGuard  # noqa: E402
from aios.net.proxy import GuardProxy  # noqa: E402
from aios.net.wire import REFUSED_HEADER, refusal  # noqa: E402
from browser_errors import ActionError, first_line, from_playwright  # noqa: E402
from browser_forms import approval_error, is_enter  # noqa: E402
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
