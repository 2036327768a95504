"""The browser an agent run's browser tools share: Chromium in a browser sandbox of its own
(made by the sandbox manager, reached only through its API), started on first use and
destroyed when the run ends or, with a session, the conversation's, kept by the manager until
it has been unused for AIOS_AGENT_SANDBOX_IDLE_S. No Chromium runs in the worker."""

from ..deps import Deps
from ..sandbox.capacity import waiting_for_capacity
from ..sandbox.client import BrowserActionError, SandboxError
from .base import ToolContext, ToolError
from .sandbox import forget_if_host_gone

BROWSER = "browser.id"  # its id in the run's tool state
NOTE = "browser.note"  # what the model is told once about it
GRACE_S = 10.0  # past an action's own timeout: the manager's answer on its way back
GONE_NOTE = ("; its tabs and logins are out of reach: the next action starts a new browser "
             "on another host")


class RunBrowser:
    def __init__(self, deps: Deps):
        settings = deps.settings
        self.client = deps.sandbox
        self.sessions = deps.agent_sessions
        self.run_ttl_s = settings.agent_max_seconds + 60  # a crashed worker's: the reaper's
        self.session_ttl_s = settings.agent_session_ttl_s
        self.idle_s = settings.agent_sandbox_idle_s

    def of(self, ctx: ToolContext) -> str:
        """The run's browser: the conversation's if it still exists, else a new one."""
        if BROWSER not in ctx.state:
            kept = self.sessions.kept(ctx.session_id, "browser") if ctx.session_id else None
            if kept and self.client.browser_exists(kept):
                ctx.state[BROWSER] = kept
            else:
                ctx.state[BROWSER] = self._new(ctx, replaced=bool(kept))
        return ctx.state[BROWSER]

    def act(self, ctx: ToolContext, action: str, args: dict, timeout_s: float) -> dict:
        """The action's result; a ToolError the model can act on when it failed."""
        try:
            browser_id = self.of(ctx)
            return self.client.browser_action(browser_id, action, args, timeout_s,
                                              register_close=ctx.on_cancel)
        except BrowserActionError:
            raise
        except SandboxError as exc:
            if exc.code == "not_found":  # removed under us (idle, reaped): start over once
                ctx.state.pop(BROWSER, None)
            raise ToolError(f"the browser failed: {exc}{self._lost(ctx, exc)}") from exc

    def _lost(self, ctx: ToolContext, exc: SandboxError) -> str:
        """The words the model is told when exc says the browser's host is gone."""
        gone = forget_if_host_gone(ctx, exc, self.sessions, "browser", BROWSER)
        return GONE_NOTE if gone else ""

    def _new(self, ctx: ToolContext, replaced: bool) -> str:
        owner, ttl_s, idle_s = (f"task:{ctx.task_id}", self.run_ttl_s, None) \
            if ctx.session_id is None \
            else (f"session:{ctx.session_id}", self.session_ttl_s, self.idle_s)
        ctx.emit("log", {"text": "starting a browser\n"})
        described = waiting_for_capacity(
            lambda: self.client.create_browser(owner, ttl_s, idle_s), ctx.emit, ctx.wait)
        browser_id = described["id"]
        if ctx.session_id is None:
            ctx.cleanups.append(lambda: self.client.destroy_browser(browser_id))
        else:
            self.sessions.keep(ctx.session_id, "browser", browser_id)
            if replaced:
                ctx.state[NOTE] = (f"This is a new browser: the conversation's previous one "
                                   f"was removed after {self.idle_s / 60:g} minutes unused, "
                                   "with its tabs and logins.")
        return browser_id
