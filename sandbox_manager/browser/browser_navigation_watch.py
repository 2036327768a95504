"""What a tab's main-frame navigations did: refused by the proxy, failed, or still pending.

Actions read it after an input or a page load: a refusal (the proxy's 403 header or a
refused tunnel) becomes the action's `refused` error, and navigations a page started by
itself (a script, a meta refresh) are awaited until they have their answer.
"""

import time

from playwright.sync_api import Error as PlaywrightError

from browser_errors import TUNNEL_FAILED, ActionError, from_playwright, net_error
from browser_proxy import ask_refusal, connect_target, refusal_in_headers

SETTLE_S = 5.0  # at most this long, after an input, for a navigation it started to load
PENDING_POLL_MS = 5  # while a navigation the page started waits for its answer


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
