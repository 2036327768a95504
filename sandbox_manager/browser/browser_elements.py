"""Element actions of the session: click, type, select, press, scroll on the active tab.

An input that starts a navigation is answered once that page has loaded (the session's
`_where`); guard_submit asks before one would submit a form (browser_forms). Mixed into
browser_session.Session, whose refs, tabs and timeouts it uses.
"""

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

import browser_args as check
from browser_errors import ActionError
from browser_forms import CLICK_EFFECTS, ENTER_SUBMITS, PLAIN_CLICK, approval_error, is_enter
from browser_refs import element_gone

POPUP_WAIT_S = 5.0  # at most this long for the tab a target=_blank link opens

SCROLL_JS = """([dy]) => {
  window.scrollBy(0, dy);
  const root = document.scrollingElement || document.documentElement;
  const y = window.scrollY;
  return {scroll_y: Math.round(y),
          at_end: dy > 0 ? y + window.innerHeight >= root.scrollHeight - 1 : y <= 0};
}"""


class ElementActions:
    """click, type, select, press, scroll: each (page, args) -> the answer."""

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
            raise element_gone(ref)
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


def _dispose(handle) -> None:
    try:
        handle.dispose()
    except PlaywrightError:
        pass  # its document is gone (the click navigated): so is the handle
