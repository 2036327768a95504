"""The agent's browser: one context whose pages are the tabs, and the actions on them.

Playwright's sync API, on the supervisor's one thread. Every action acts on the active tab;
pages the page opens (popups, target=_blank) join the tab list in the order they opened.
`read` uses a throwaway context of its own.
"""

import base64
import mimetypes
import os
import time

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

import browser_args as check
from browser_errors import TUNNEL_FAILED, ActionError, from_playwright, net_error
from browser_forms import CLICK_EFFECTS, ENTER_SUBMITS, PLAIN_CLICK, approval_error, is_enter
from browser_launch import new_context
from browser_proxy import ask_refusal, connect_target, refusal_in_headers
from browser_refs import RefBook, cut, refs_in

SETTLE_S = 5.0  # at most this long, after an input, for a navigation it started to load
ERROR_PAGE_WAIT_S = 1.0  # for Chromium's error page after a failed navigation
POPUP_WAIT_S = 5.0  # at most this long for the tab a target=_blank link opens
PENDING_POLL_MS = 5  # while a navigation the page started waits for its answer
# A refresh (meta or header) due this soon after the load is part of opening the page: its
# navigation is awaited (it starts a few ms after its timer, and after the load event).
REFRESH_WAIT_S = 1.0
REFRESH_START_S = 1.0  # past its due time, for the refresh's navigation to show up
READ_CUT_NOTE = "\n[cut: the first {limit} of {total} characters]"

# The delay of the document's (first) meta refresh in seconds, or null.
_META_REFRESH = """(() => {
    const meta = document.querySelector('meta[http-equiv="refresh" i]');
    const delay = meta ? parseFloat(meta.content) : NaN;
    return Number.isFinite(delay) && delay >= 0 ? delay : null; })()"""
# The old worker-side browse's readable text (python-backend/aios/tools/browse.py before
# issue #18): the main content when it has some, else the whole body.
READABLE_JS = """() => {
  const main = document.querySelector('main, article, [role=main]');
  const root = main && main.innerText.trim().length > 200 ? main : document.body;
  return {title: document.title, refresh: %s,
          text: root ? root.innerText : (document.documentElement.textContent || '')};
}""" % _META_REFRESH
LANDED_JS = "() => ({title: document.title, refresh: %s})" % _META_REFRESH

SCROLL_JS = """([dy]) => {
  window.scrollBy(0, dy);
  const root = document.scrollingElement || document.documentElement;
  const y = window.scrollY;
  return {scroll_y: Math.round(y),
          at_end: dy > 0 ? y + window.innerHeight >= root.scrollHeight - 1 : y <= 0};
}"""


class NavigationWatch:
    """What happened to a tab's main-frame navigations since the last reset: a refusal by
    the proxy (its response header) or a failure (Chromium's net error); and which are
    still waiting for their answer (a page sending itself elsewhere: script, meta refresh)."""

    def __init__(self, page):
        self.page = page
        self.refused: list[tuple[str, str]] = []
        self.failed: list[tuple[str, str]] = []
        self.pending: set = set()
        self.requested = 0  # main-frame navigation requests since the reset
        self.committed = 0  # main-frame documents (or same-document steps) since the reset
        page.on("request", self._on_request)
        page.on("framenavigated", self._on_navigated)
        page.on("response", self._on_response)
        page.on("requestfailed", self._on_failed)

    def reset(self) -> None:
        self.refused.clear()
        self.failed.clear()
        self.pending.clear()
        self.requested = 0
        self.committed = 0

    def _on_navigated(self, frame) -> None:
        if frame == self.page.main_frame:
            self.committed += 1

    def _on_request(self, request) -> None:
        if self._main(request):
            self.requested += 1
            self.pending.add(request)

    def _main(self, request) -> bool:
        try:
            return request.is_navigation_request() and request.frame == self.page.main_frame
        except PlaywrightError:
            return False

    def _on_response(self, response) -> None:
        self.pending.discard(response.request)
        if self._main(response.request):
            reason = refusal_in_headers(response.headers)
            if reason:
                self.refused.append((response.url, reason))

    def _on_failed(self, request) -> None:
        self.pending.discard(request)
        if self._main(request):
            self.failed.append((request.url, request.failure or "failed"))

    def problem(self):
        """The error for the tab's last navigation, if it was refused or failed."""
        if self.refused:
            url, reason = self.refused[-1]
            return refused(url, reason)
        if self.failed:
            url, error = self.failed[-1]
            return navigation_failed(url, error)
        return None

    def refusal(self):
        """The error for a refused main-frame navigation (a refused tunnel included), if
        there was one; other failures (an aborted navigation that another replaced) are
        not the page's answer."""
        if self.refused:
            url, reason = self.refused[-1]
            return refused(url, reason)
        for url, error in reversed(self.failed):
            if (net_error(error) or "").endswith(TUNNEL_FAILED):
                return navigation_failed(url, error)
        return None

    def settle(self, limit_s: float, awaiting: int = 0) -> None:
        """Let the main-frame navigations already asked for get their answer (event-driven:
        returns at once when there are none), for at most limit_s; first, if `awaiting`,
        until there have been that many requests."""
        deadline = time.monotonic() + limit_s
        while (self.pending or self.requested < awaiting) and time.monotonic() < deadline:
            self.page.wait_for_timeout(PENDING_POLL_MS)  # Playwright's events run meanwhile


def refused(url: str, reason: str) -> ActionError:
    reason = reason.removeprefix("refused: ")  # the guard's reasons start with it
    return ActionError("refused", f"the proxy refused {url}: {reason}")


def navigation_failed(url: str, error: str) -> ActionError:
    name = net_error(error) or error
    if name == TUNNEL_FAILED or name.endswith(TUNNEL_FAILED):
        reason = ask_refusal(url)
        if reason:
            return refused(url, reason)
        return ActionError("refused", f"the proxy would not open a connection to "
                                      f"{connect_target(url) or url}")
    if name in ("ERR_ABORTED",):
        return ActionError("failed", f"the navigation to {url} was aborted (perhaps a download "
                                     "or another navigation took its place)")
    return from_playwright(Exception(f"net::{name}" if name.startswith("ERR_") else name),
                           f"opening {url}", 0)


class Session:
    def __init__(self, browser):
        self.browser = browser
        self.context = new_context(browser)
        self.refs = RefBook()
        self.watches: dict[object, NavigationWatch] = {}
        self.crashed: list = []  # tabs whose renderer died (e.g. out of memory)
        self.context.on("page", self._adopt)
        self.active = self.context.new_page()
        self._adopt(self.active)
        self.timeout_s = check.TIMEOUT_DEFAULT_S
        self.deadline = time.monotonic()  # the current action's end

    # --- tabs -------------------------------------------------------------------------------
    def _adopt(self, page) -> None:
        if page in self.watches:
            return
        self.watches[page] = NavigationWatch(page)
        page.on("close", self._closed)
        page.on("crash", lambda crashed: self.crashed.append(crashed))

    def _closed(self, page) -> None:
        self.refs.forget(page)
        self.watches.pop(page, None)

    def pages(self) -> list:
        return [p for p in self.context.pages if not p.is_closed()]

    def _ensure_active(self):
        pages = self.pages()
        if self.active not in pages:
            self.active = pages[-1] if pages else self.context.new_page()
            self._adopt(self.active)
        return self.active

    def tab_list(self) -> list[dict]:
        active = self._ensure_active()
        tabs = []
        for index, page in enumerate(self.pages()):
            tabs.append({"index": index, "url": page.url, "title": _title(page),
                         "active": page is active})
        return tabs

    # --- plumbing ---------------------------------------------------------------------------
    def begin(self, timeout_s: float):
        """Ready for an action: its timeouts, crashed tabs closed; the active tab."""
        self.timeout_s = timeout_s
        self.deadline = time.monotonic() + timeout_s
        self.context.set_default_timeout(timeout_s * 1000)
        self.context.set_default_navigation_timeout(timeout_s * 1000)
        while self.crashed:
            # A crashed tab answers nothing any more: it leaves the tab list (the error of
            # the action that saw it crash said so); a blank tab takes its place if needed.
            page = self.crashed.pop()
            try:
                page.close()
            except PlaywrightError:
                pass
        page = self._ensure_active()
        for watch in self.watches.values():
            watch.reset()
        return page

    def _ms(self) -> float:
        return self.timeout_s * 1000

    def _locate(self, page, ref: str):
        self.refs.check(page, ref)
        locator = page.get_by_ref(ref)
        if locator.count() == 0:
            raise _gone(ref)
        return locator

    def _where(self, page, before: int) -> dict:
        """After an input: let a navigation it started load, then say where the tab is.
        Playwright's input actions return once a navigation they started has committed, so
        the wait is for that document's load only: none when nothing navigated."""
        watch = self.watches.get(page)
        if watch is None or watch.committed:
            try:
                page.wait_for_load_state("load", timeout=min(SETTLE_S, self.timeout_s) * 1000)
            except PlaywrightError:
                pass  # still loading: the page is answered as it is
        problem = watch.problem() if watch else None
        if problem:
            raise problem
        result = {"url": page.url, "title": _title(page)}
        pages = self.pages()
        if len(pages) > before:
            result["new_tabs"] = [i for i in range(before, len(pages))]
        return result

    # --- actions ----------------------------------------------------------------------------
    def navigate(self, page, args: dict) -> dict:
        check.check_known(args, ("url",), "navigate")
        url = check.url(args)
        watch = self.watches[page]
        response = self._goto(page, url, watch)
        requested = watch.requested
        found = _evaluate_or_none(page, LANDED_JS)  # in the page's world: what it says
        title = found.get("title") if found else None
        if self._landed(page, watch, requested, _refresh_s(response, found)) \
                or not isinstance(title, str):
            title = _title(page)
        return {"url": page.url, "title": title,
                "status": response.status if response else None}

    def _goto(self, page, url: str, watch: NavigationWatch):
        try:
            response = page.goto(url, wait_until="load", timeout=self._ms())
        except PlaywrightError as exc:
            error = net_error(str(exc))
            if error and "Timeout" not in type(exc).__name__:
                _await_error_page(page)
                raise navigation_failed(url, error) from None
            # e.g. "interrupted by another navigation": the page sent itself elsewhere
            problem = watch.refusal()
            if problem:
                raise problem from None
            raise
        reason = refusal_in_headers(response.headers) if response else None
        if reason:
            raise refused(url, reason)
        return response

    def _landed(self, page, watch: NavigationWatch, requested: int, refresh_s) -> bool:
        """After the page loaded (and one round trip to it): a navigation the page started
        by itself while loading (a script), or right after (a refresh due at once), is
        answered first; a refused one is the action's error, as the old browse tool had it.
        True when the tab moved on to another document meanwhile, whose load was then
        awaited (all bounded by the action's timeout). `requested`: the tab's navigation
        requests when the page had loaded."""
        url = page.url
        if refresh_s is not None and refresh_s <= REFRESH_WAIT_S:
            watch.settle(min(refresh_s + REFRESH_START_S, self._left_s()), requested + 1)
        watch.settle(min(SETTLE_S, self._left_s()))
        problem = watch.refusal()
        if problem:
            raise problem
        if page.url == url:
            return False
        try:
            page.wait_for_load_state("load", timeout=self._left_s() * 1000)
        except PlaywrightError:
            pass  # still loading: answered as it is
        return True

    def _left_s(self) -> float:
        return max(self.deadline - time.monotonic(), 0.5)

    def snapshot(self, page, args: dict) -> dict:
        check.check_known(args, ("max_chars",), "snapshot")
        max_chars = check.integer(args, "max_chars", check.SNAPSHOT_MAX_CHARS, 200,
                                  check.SNAPSHOT_CEILING)
        text = ai_snapshot(page, self._ms())
        self.refs.record(page, refs_in(text))
        shown, was_cut = cut(text, max_chars)
        tabs = self.tab_list()
        title = next((t["title"] for t in tabs if t["active"]), "")
        return {"url": page.url, "title": title, "snapshot": shown, "truncated": was_cut,
                "tabs": tabs}

    def click(self, page, args: dict) -> dict:
        check.check_known(args, ("ref", "guard_submit"), "click")
        ref, guard = check.ref(args), check.flag(args, "guard_submit")
        self.refs.check(page, ref)
        before = len(self.pages())
        # Fast path, one round trip in Playwright's world: the element is there and nothing
        # about it opens a tab or submits a form (PLAIN_CLICK) - then just the click, as
        # plain Playwright does it (its click already waits for a navigation it starts to
        # commit; _where then waits for that page's load only if there is one).
        if page.locator(f"aria-ref={ref} >> {PLAIN_CLICK}").count():
            page.get_by_ref(ref).click(timeout=self._ms())
            return self._where(page, before)
        # Otherwise resolve the element once: what the click will do is read off that handle
        # and the same element is clicked. None: the snapshot's element is gone (detached).
        # Not evaluate_all: it queries the page's main world, where Playwright's ref lookup
        # (kept by the snapshot's injected script) finds nothing.
        handle = page.query_selector(f"aria-ref={ref}")
        if handle is None:
            raise _gone(ref)
        try:
            effects = handle.evaluate(CLICK_EFFECTS)
            if guard:
                problem = approval_error(effects["submit"])
                if problem:
                    raise problem
            if not effects["opens_tab"]:
                handle.click(timeout=self._ms())
                return self._where(page, before)
            # The new tab's event comes after the click returns: wait for it, so the answer
            # (and the next tab list) has the tab. A page may well open none after all.
            clicked = False
            try:
                with self.context.expect_page(timeout=min(POPUP_WAIT_S, self.timeout_s) * 1000):
                    handle.click(timeout=self._ms())
                    clicked = True
            except PlaywrightTimeoutError:
                if not clicked:
                    raise
            return self._where(page, before)
        finally:
            _dispose(handle)

    def type(self, page, args: dict) -> dict:
        check.check_known(args, ("ref", "text", "submit", "guard_submit"), "type")
        ref, text = check.ref(args), check.text(args, "text")
        submit, guard = check.flag(args, "submit"), check.flag(args, "guard_submit")
        locator = self._locate(page, ref)
        if submit and guard:
            problem = approval_error(locator.evaluate(ENTER_SUBMITS))
            if problem:
                raise problem
        before = len(self.pages())
        locator.fill(text, timeout=self._ms())
        if submit:
            locator.press("Enter", timeout=self._ms())
        return self._where(page, before)

    def select(self, page, args: dict) -> dict:
        check.check_known(args, ("ref", "values"), "select")
        ref, wanted = check.ref(args), check.values(args)
        locator = self._locate(page, ref)
        selected = locator.select_option(wanted, timeout=self._ms())
        return {"selected": selected}

    def press(self, page, args: dict) -> dict:
        check.check_known(args, ("key", "guard_submit"), "press")
        key, guard = check.key(args), check.flag(args, "guard_submit")
        if guard and is_enter(key):
            problem = approval_error(page.evaluate(ENTER_SUBMITS))
            if problem:
                raise problem
        before = len(self.pages())
        page.keyboard.press(key)
        return self._where(page, before)

    def scroll(self, page, args: dict) -> dict:
        check.check_known(args, ("direction", "pixels"), "scroll")
        direction = args.get("direction", "down")
        if direction not in ("down", "up"):
            raise ActionError("invalid", 'direction must be "down" or "up"')
        default = int((page.viewport_size or {"height": 800})["height"] * 0.8)
        pixels = check.integer(args, "pixels", default, 1, check.SCROLL_PIXELS_MAX)
        return page.evaluate(SCROLL_JS, [pixels if direction == "down" else -pixels])

    def back(self, page, args: dict) -> dict:
        check.check_known(args, (), "back")
        before = page.url
        response = page.go_back(wait_until="load", timeout=self._ms())
        if response is None and page.url == before:  # None too for in-page (#hash) steps
            raise ActionError("not_found", "there is no earlier page in this tab")
        return self._where(page, len(self.pages()))

    def tabs(self, page, args: dict) -> dict:
        check.check_known(args, ("action", "index"), "tabs")
        action = args.get("action", "list")
        if action not in ("list", "switch", "close"):
            raise ActionError("invalid", 'action must be "list", "switch" or "close"')
        if action != "list":
            pages = self.pages()
            index = check.integer(args, "index", -1, 0, 1000)
            if index >= len(pages):
                raise ActionError("not_found", f"no tab {index}: there are {len(pages)}")
            if action == "switch":
                self.active = pages[index]
                self.active.bring_to_front()
            else:
                pages[index].close()
        return {"tabs": self.tab_list()}

    def screenshot(self, page, args: dict) -> dict:
        check.check_known(args, ("full_page",), "screenshot")
        png = page.screenshot(full_page=check.flag(args, "full_page"), type="png",
                              timeout=self._ms())
        return {"url": page.url, "png_base64": base64.b64encode(png).decode()}

    def download(self, page, args: dict) -> dict:
        check.check_known(args, ("ref", "max_bytes"), "download")
        ref = check.ref(args)
        max_bytes = check.integer(args, "max_bytes", check.DOWNLOAD_MAX_BYTES, 1,
                                  check.DOWNLOAD_CEILING)
        locator = self._locate(page, ref)
        try:
            with page.expect_download(timeout=self._ms()) as started:
                locator.click(timeout=self._ms())
            download = started.value
        except PlaywrightError as exc:
            if "Timeout" in type(exc).__name__ or "Timeout" in str(exc):
                raise ActionError("timeout", f"clicking {ref} started no download within "
                                             f"{self.timeout_s:g} s") from None
            raise
        try:
            return read_download(download, max_bytes)
        finally:
            try:
                download.delete()
            except PlaywrightError:
                pass  # a failed download left nothing to delete

    def read(self, browser, args: dict) -> dict:
        check.check_known(args, ("url", "screenshot", "max_chars"), "read")
        url = check.url(args)
        want_png = check.flag(args, "screenshot")
        max_chars = check.integer(args, "max_chars", check.READ_MAX_CHARS, 100,
                                  check.SNAPSHOT_CEILING)
        context = new_context(browser)
        try:
            context.set_default_timeout(self._ms())
            page = context.new_page()
            watch = NavigationWatch(page)
            response = self._goto(page, url, watch)
            requested = watch.requested
            found = _evaluate_or_none(page, READABLE_JS)
            if self._landed(page, watch, requested, _refresh_s(response, found)) \
                    or found is None:  # it moved on: read where it is
                found = page.evaluate(READABLE_JS)
            result = {"url": page.url, "status": response.status if response else None,
                      "title": " ".join(str(found.get("title") or "").split()),
                      "text": read_cut(readable(str(found.get("text") or "")), max_chars)}
            if want_png:
                png = page.screenshot(type="png", timeout=self._ms())
                result["png_base64"] = base64.b64encode(png).decode()
            return result
        finally:
            context.close()


def _evaluate_or_none(page, script: str):
    """The script's answer, or None when the page moved to another document meanwhile."""
    try:
        return page.evaluate(script)
    except PlaywrightError as exc:
        if "context was destroyed" in str(exc) or "navigat" in str(exc):
            return None
        raise


def _refresh_s(response, found):
    """The delay of the page's refresh, from its meta tag or its Refresh header, if any."""
    delays = [found.get("refresh")] if isinstance(found, dict) else []
    header = (response.headers.get("refresh") if response else None) or ""
    delays.append(header.split(";")[0].strip())
    for delay in delays:
        try:
            value = float(delay)
        except (TypeError, ValueError):
            continue
        if value >= 0:
            return value
    return None


def readable(text: str) -> str:
    """Each line's whitespace collapsed, empty lines dropped (the old browse's _readable)."""
    lines = (" ".join(line.split()) for line in text.splitlines())
    return "\n".join(line for line in lines if line)


def read_cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + READ_CUT_NOTE.format(limit=limit, total=len(text))


def _dispose(handle) -> None:
    try:
        handle.dispose()
    except PlaywrightError:
        pass  # its document is gone (the click navigated): so is the handle


def _gone(ref: str) -> ActionError:
    return ActionError("stale_ref", f"the element of ref {ref} is gone from the page (it changed "
                                    "or moved on); take a new snapshot")


def ai_snapshot(page, timeout_ms: float) -> str:
    """Playwright's AI snapshot: the accessibility tree with [ref=eN] on interactive
    elements, resolved later by page.get_by_ref (the `aria-ref=` selector). Public API
    since Playwright 1.5x; checked against 1.65.2 (`Page.aria_snapshot(mode="ai")`)."""
    return page.aria_snapshot(mode="ai", timeout=timeout_ms)


def read_download(download, max_bytes: int) -> dict:
    failure = download.failure()
    if failure:
        raise ActionError("failed", f"the download failed: {failure} (a full /tmp cancels it)")
    path = download.path()
    size = os.path.getsize(path)
    if size > max_bytes:
        raise ActionError("too_large", f"the download is {size} bytes, over the limit of "
                                       f"{max_bytes}")
    with open(path, "rb") as f:
        data = f.read()
    name = os.path.basename(download.suggested_filename or "download") or "download"
    mime = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return {"name": name, "mime": mime, "size": size,
            "data_base64": base64.b64encode(data).decode()}


def _await_error_page(page) -> None:
    """After a failed navigation Chromium commits its error page a moment later; a
    navigation started before that is cut short by it, so let it land first."""
    try:
        page.wait_for_url(lambda url: url.startswith("chrome-error:"), wait_until="commit",
                          timeout=ERROR_PAGE_WAIT_S * 1000)
    except PlaywrightError:
        pass  # no error page for this one (an aborted navigation shows none)


def _title(page) -> str:
    try:
        return page.title()
    except PlaywrightError:
        return ""  # mid-navigation: the document is being replaced
