"""Navigation actions of the session: navigate, back, and read (the worker's one-shot
`browse`, in a throwaway context of its own).

`navigate` and `read` answer a page that sends itself elsewhere while it is being opened
(a script, a refresh due within REFRESH_WAIT_S) from where it landed, or with the proxy's
refusal of that navigation. Mixed into browser_session.Session, whose context, timeouts
and `_where` it uses.
"""

import base64
import time

from playwright.sync_api import Error as PlaywrightError

import browser_args as check
from browser_errors import ActionError, net_error
from browser_launch import new_context
from browser_navigation_watch import SETTLE_S, NavigationWatch, navigation_failed, refused
from browser_proxy import refusal_in_headers

ERROR_PAGE_WAIT_S = 1.0  # for Chromium's error page after a failed navigation
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


class NavigationActions:
    """navigate, back, read: each (page or browser, args) -> the answer."""

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
            title = self._title(page)
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

    def back(self, page, args: dict) -> dict:
        check.check_known(args, (), "back")
        before = page.url
        response = page.go_back(wait_until="load", timeout=self._ms())
        if response is None and page.url == before:  # None too for in-page (#hash) steps
            raise ActionError("not_found", "there is no earlier page in this tab")
        return self._where(page, len(self.pages()))

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


def _await_error_page(page) -> None:
    """After a failed navigation Chromium commits its error page a moment later; a
    navigation started before that is cut short by it, so let it land first."""
    try:
        page.wait_for_url(lambda url: url.startswith("chrome-error:"), wait_until="commit",
                          timeout=ERROR_PAGE_WAIT_S * 1000)
    except PlaywrightError:
        pass  # no error page for this one (an aborted navigation shows none)
