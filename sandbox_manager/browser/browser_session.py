"""The agent's browser: one context whose pages are the tabs, and the actions on them.

Playwright's sync API, on the supervisor's one thread. Every action acts on the active tab;
pages the page opens (popups, target=_blank) join the tab list in the order they opened.
Here: the context, the tabs, the refs of their snapshots, and what every action starts and
ends with. The actions themselves, methods of Session called by name (aios_browser.perform),
come from browser_navigation, browser_elements and browser_capture.
"""

import time

from playwright.sync_api import Error as PlaywrightError

import browser_args as check
from browser_capture import CaptureActions
from browser_elements import ElementActions
from browser_errors import ActionError
from browser_launch import new_context
from browser_navigation import NavigationActions
from browser_navigation_watch import SETTLE_S, NavigationWatch
from browser_refs import RefBook, cut, element_gone, refs_in


class Session(NavigationActions, ElementActions, CaptureActions):
    """The agent's context and tabs. The action mixins use its context, watches, refs,
    timeout_s and deadline, pages() and the plumbing below (_ms, _locate, _where, _title)."""

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
            tabs.append({"index": index, "url": page.url, "title": self._title(page),
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

    @staticmethod
    def _title(page) -> str:
        try:
            return page.title()
        except PlaywrightError:
            return ""  # mid-navigation: the document is being replaced

    def _ms(self) -> float:
        return self.timeout_s * 1000

    def _locate(self, page, ref: str):
        self.refs.check(page, ref)
        locator = page.get_by_ref(ref)
        if locator.count() == 0:
            raise element_gone(ref)
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
        result = {"url": page.url, "title": self._title(page)}
        pages = self.pages()
        if len(pages) > before:
            result["new_tabs"] = [i for i in range(before, len(pages))]
        return result

    # --- actions ----------------------------------------------------------------------------
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


def ai_snapshot(page, timeout_ms: float) -> str:
    """Playwright's AI snapshot: the accessibility tree with [ref=eN] on interactive
    elements, resolved later by page.get_by_ref (the `aria-ref=` selector). Public API
    since Playwright 1.5x; checked against 1.65.2 (`Page.aria_snapshot(mode="ai")`)."""
    return page.aria_snapshot(mode="ai", timeout=timeout_ms)
