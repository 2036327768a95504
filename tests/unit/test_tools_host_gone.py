"""What the run's sandbox and browser tools forget when the host holding theirs is gone
(forget_if_host_gone): the run's id, and the conversation's, only if it is still that one."""

import threading
from types import SimpleNamespace

import pytest

from aios.sandbox.client import SandboxError
from aios.tools.base import ToolContext
from aios.tools.run_browser import BROWSER, RunBrowser
from aios.tools.sandbox import HOST_GONE, SANDBOX, forget_if_host_gone

GONE = SandboxError(HOST_GONE, "the session's sandbox host m1 is unavailable")


class KeptIds:
    """AgentSessions' kept ids (keep, kept, forget), in a dict: what the tools use of it."""

    def __init__(self):
        self.ids = {}

    def keep(self, session_id, kind, resource_id):
        self.ids[session_id, kind] = resource_id

    def kept(self, session_id, kind):
        return self.ids.get((session_id, kind))

    def forget(self, session_id, kind, resource_id):
        if self.ids.get((session_id, kind)) == resource_id:
            del self.ids[session_id, kind]


def context(session_id=None, **state) -> ToolContext:
    return ToolContext(task_id="t1", emit=lambda *event: None, cancelled=threading.Event(),
                       on_cancel=lambda abort: None, session_id=session_id, state=state)


@pytest.mark.parametrize("kind, key", [("sandbox", SANDBOX), ("browser", BROWSER)])
def test_the_run_and_the_conversation_forget_what_was_on_the_gone_host(kind, key):
    sessions, ctx = KeptIds(), context("conv", **{key: "s1@m1"})
    sessions.keep("conv", kind, "s1@m1")
    sessions.keep("conv", "other", "s1@m1")
    assert forget_if_host_gone(ctx, GONE, sessions, kind, key)
    assert key not in ctx.state and sessions.ids == {("conv", "other"): "s1@m1"}


def test_the_conversations_id_is_forgotten_when_the_run_had_none_yet():
    sessions, ctx = KeptIds(), context("conv")
    sessions.keep("conv", "browser", "b1@m1")
    assert forget_if_host_gone(ctx, GONE, sessions, "browser", BROWSER)
    assert sessions.ids == {}


def test_a_newer_id_of_the_conversation_is_kept():
    sessions, ctx = KeptIds(), context("conv", **{SANDBOX: "s1@m1"})
    sessions.keep("conv", "sandbox", "s2@m2")  # another run made a new one meanwhile
    assert forget_if_host_gone(ctx, GONE, sessions, "sandbox", SANDBOX)
    assert SANDBOX not in ctx.state and sessions.ids == {("conv", "sandbox"): "s2@m2"}


def test_other_failures_forget_nothing():
    sessions, ctx = KeptIds(), context("conv", **{SANDBOX: "s1@m1"})
    sessions.keep("conv", "sandbox", "s1@m1")
    assert not forget_if_host_gone(ctx, SandboxError("busy", "at capacity"), sessions,
                                   "sandbox", SANDBOX)
    assert ctx.state == {SANDBOX: "s1@m1"} and sessions.ids == {("conv", "sandbox"): "s1@m1"}


def test_the_browser_tells_the_model_its_tabs_are_gone():
    settings = SimpleNamespace(agent_max_seconds=60, agent_session_ttl_s=600,
                               agent_sandbox_idle_s=300)
    browser = RunBrowser(SimpleNamespace(settings=settings, sandbox=None,
                                         agent_sessions=KeptIds()))
    ctx = context(**{BROWSER: "b1@m1"})
    assert "its tabs and logins are out of reach" in browser._lost(ctx, GONE)
    assert BROWSER not in ctx.state
    assert browser._lost(ctx, SandboxError("not_found", "no such browser")) == ""
