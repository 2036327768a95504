"""Browser sandboxes: created, driven one action at a time, reaped; apart from code sessions."""

import asyncio
import logging
import time
from contextlib import asynccontextmanager, contextmanager
from typing import Optional

from .errors import AtCapacity, Conflict, Invalid, NotFound, ServiceError, Unavailable
from .execution import RunnerRefused, SandboxLost, request_reply
from .sandbox import Launcher, Sandbox, SandboxUnavailable
from .settings import Settings

log = logging.getLogger(__name__)

# The supervisor's actions (sandbox_manager/browser): anything else is refused before the
# container sees it.
ACTIONS = ("navigate", "snapshot", "click", "type", "select", "press", "scroll", "back",
           "tabs", "screenshot", "download", "read")
# The supervisor answers by an action's timeout, and exits by itself 15 s past it when a
# page's script holds it: past this much more, the browser is lost.
BACKSTOP_S = 20.0


class BrowsersDisabled(ServiceError):
    status, code = 403, "browsers_disabled"


class BrowserService:
    def __init__(self, launcher: Launcher, settings: Settings):
        self.launcher = launcher
        self.settings = settings
        self.browsers: dict[str, Sandbox] = {}
        self.creating = 0  # being launched: they hold a place under the cap

    async def create(self, owner: str, ttl_s: Optional[float] = None,
                     idle_ttl_s: Optional[float] = None) -> Sandbox:
        """A started browser whose supervisor passed the hardening check; else 503."""
        s = self.settings
        if not s.allow_browsers:
            raise BrowsersDisabled("browsers are off on this sandbox manager; the operator "
                                   "enables them with SANDBOX_ALLOW_BROWSERS=1")
        ttl = ttl_s or s.browser_ttl_s
        if ttl > s.browser_max_ttl_s:
            raise Invalid(f"ttl_s must be at most {s.browser_max_ttl_s}")
        with self._slot():
            try:
                browser = await self.launcher.launch(s.browser_limits, "browser", owner, ttl,
                                                     "egress")
            except SandboxUnavailable as exc:  # its hardening violations too: fail closed
                raise Unavailable(str(exc)) from exc
            browser.idle_ttl_s = idle_ttl_s or s.browser_idle_ttl_s
            if not browser.details.get("browser", {}).get("chromium_sandbox"):
                log.warning("browser %s runs without Chromium's own sandbox (seccomp profile: "
                            "%s)", browser.id, "Docker's default"
                            if s.browser_seccomp_profile is None else "the browser's",
                            extra={"sandbox_id": browser.id})
            self.browsers[browser.id] = browser
            return browser

    @contextmanager
    def _slot(self):
        """A place under SANDBOX_MAX_BROWSERS, taken before the launch's awaits."""
        if len(self.browsers) + self.creating >= self.settings.max_browsers:
            raise AtCapacity(f"{len(self.browsers)} browsers exist and {self.creating} are "
                             f"being created (the cap is {self.settings.max_browsers}); "
                             "close one or retry later", retry_after_s=5)
        self.creating += 1
        try:
            yield
        finally:
            self.creating -= 1

    def get(self, browser_id: str) -> Sandbox:
        browser = self.browsers.get(browser_id)
        if browser is None or browser.expired():
            raise NotFound(f"no browser {browser_id!r}")
        return browser

    async def destroy(self, browser_id: str) -> None:
        await self._forget(self.get(browser_id))

    async def _forget(self, browser: Sandbox) -> None:
        self.browsers.pop(browser.id, None)
        await self.launcher.destroy(browser)

    async def action(self, browser_id: str, name: str, args: dict,
                     timeout_s: Optional[float] = None) -> dict:
        """`{"ok": true, "result"}`, or `{"ok": false, "error": {"code", "message"}}` for
        an error of the page. A browser that stops answering is destroyed (503)."""
        if name not in ACTIONS:
            raise Invalid(f"unknown action {name!r}; known: {', '.join(ACTIONS)}")
        timeout = timeout_s or self.settings.browser_action_timeout_s
        if timeout > self.settings.browser_max_action_timeout_s:
            raise Invalid("timeout_s must be at most "
                          f"{self.settings.browser_max_action_timeout_s:g}")
        if name == "download":
            args = self._capped_download(args)
        request = {"op": "action", "action": name, "args": args, "timeout_s": timeout}
        async with self._using(browser_id) as browser:
            try:
                # The supervisor keeps the action's deadline; ours is a backstop past it.
                frame = await request_reply(browser, request, timeout + BACKSTOP_S)
            except RunnerRefused as exc:
                return {"ok": False, "error": {"code": exc.code, "message": str(exc)}}
            except BaseException as exc:
                # Lost, or cancelled mid-action (its late reply would answer the next one)
                await asyncio.shield(self._forget(browser))
                if isinstance(exc, SandboxLost):
                    raise Unavailable(f"browser {browser_id!r} stopped answering and was "
                                      "destroyed") from exc
                raise
            return {"ok": True, "result": frame.get("result", {})}

    def _capped_download(self, args: dict) -> dict:
        """A download comes back base64 in one frame, through this process's memory: at
        most SANDBOX_BROWSER_MAX_DOWNLOAD_BYTES, whatever the supervisor would allow."""
        cap = self.settings.browser_max_download_bytes
        asked = args.get("max_bytes", cap)
        if isinstance(asked, int) and not isinstance(asked, bool) and asked > cap:
            raise Invalid(f"args/max_bytes must be at most {cap}")
        return {**args, "max_bytes": asked}

    @asynccontextmanager
    async def _using(self, browser_id: str):
        browser = self.get(browser_id)
        if browser.lock.locked():
            raise Conflict(f"browser {browser_id!r} is busy with another action")
        async with browser.lock:
            browser.touch()
            try:
                yield browser
            finally:
                browser.touch()

    # --- upkeep (driven by SandboxService's reaper and close) -----------------

    async def reap(self, now: Optional[float] = None) -> None:
        now = now or time.time()
        for browser in [b for b in self.browsers.values() if b.expired(now)]:
            await self._forget(browser)

    def known(self) -> tuple[set[str], set[str]]:
        """The containers (browsers, their proxies) and networks that are live browsers'."""
        containers = {b.container_id for b in self.browsers.values()}
        containers |= {b.route.proxy_id for b in self.browsers.values() if b.route}
        return containers, {b.route.network for b in self.browsers.values() if b.route}

    async def close(self) -> None:
        browsers, self.browsers = list(self.browsers.values()), {}
        await asyncio.gather(*(self.launcher.destroy(b) for b in browsers),
                             return_exceptions=True)


def describe(browser: Sandbox) -> dict:
    """What the API answers for a browser: its times and Chromium's version."""
    keys = ("id", "kind", "owner", "busy", "created_at", "expires_at", "idle_ttl_s",
            "last_used_at")
    described = browser.describe()
    return {**{k: described[k] for k in keys},
            "browser": browser.details.get("browser", {})}
