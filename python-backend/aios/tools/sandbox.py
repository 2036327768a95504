"""The sandbox an agent run's tools share (`run_code`, `copy_to_sandbox`): made on first
use and destroyed when the run ends or, with a session, the conversation's own, kept by
the sandbox manager until it has been unused for AIOS_AGENT_SANDBOX_IDLE_S."""

from typing import TYPE_CHECKING

from ..deps import Deps
from ..sandbox.capacity import waiting_for_capacity
from ..sandbox.client import SandboxError
from .base import ToolContext, ToolError

if TYPE_CHECKING:  # a higher layer's: for the type only
    from ..agent.sessions import AgentSessions

SANDBOX = "sandbox.id"  # its id in the run's tool state
NOTE = "sandbox.note"  # what the model is told once about it
HOST_GONE = "sandbox_host_unavailable"  # SandboxPool's code: the manager holding it is down
GONE_NOTE = ("; its files and variables are out of reach: the next call starts a new "
             "sandbox on another host")


def forget_if_host_gone(ctx: ToolContext, exc: SandboxError, sessions: "AgentSessions",
                        kind: str, state_key: str, resource_id: str = "") -> bool:
    """When exc says the host of the run's sandbox or browser (`kind`) is gone: the run
    (ctx.state[state_key]) and the conversation forget it, so that the next use makes a new
    one on another host. Whether it was gone."""
    if exc.code != HOST_GONE:
        return False
    resource_id = resource_id or ctx.state.get(state_key) or (
        sessions.kept(ctx.session_id, kind) if ctx.session_id else None)
    ctx.state.pop(state_key, None)
    if ctx.session_id and resource_id:
        sessions.forget(ctx.session_id, kind, resource_id)
    return True


class RunSandbox:
    def __init__(self, deps: Deps, network: bool):
        settings = deps.settings
        self.client = deps.sandbox
        self.sessions = deps.agent_sessions
        self.network = network  # made able to reach the internet (per exec, on request)
        # A run's sandbox outlives a crashed worker by its TTL at most: the manager's reaper
        self.run_ttl_s = settings.agent_max_seconds + 60
        self.session_ttl_s = settings.agent_session_ttl_s
        self.idle_s = settings.agent_sandbox_idle_s

    def of(self, ctx: ToolContext) -> str:
        """The run's sandbox: the conversation's if it still exists, else a new one."""
        if SANDBOX not in ctx.state:
            kept = self.sessions.sandbox(ctx.session_id) if ctx.session_id else None
            if kept and self._exists(ctx, kept):
                ctx.state[SANDBOX] = kept
            else:
                ctx.state[SANDBOX] = self._new(ctx, replaced=bool(kept))
        return ctx.state[SANDBOX]

    def _exists(self, ctx: ToolContext, kept: str) -> bool:
        try:
            return self.client.exists(kept)
        except SandboxError as exc:
            self.lost(ctx, exc, kept)
            raise

    def lost(self, ctx: ToolContext, exc: SandboxError, sandbox_id: str = "") -> str:
        """The words the model is told when exc says the sandbox's host is gone."""
        gone = forget_if_host_gone(ctx, exc, self.sessions, "sandbox", SANDBOX, sandbox_id)
        return GONE_NOTE if gone else ""

    def _new(self, ctx: ToolContext, replaced: bool) -> str:
        network = "egress" if self.network else "none"
        if ctx.session_id is None:
            sandbox_id = waiting_for_capacity(lambda: self.client.create_session(
                f"task:{ctx.task_id}", self.run_ttl_s, timeout_s=30, network=network),
                ctx.emit, ctx.wait)
            ctx.cleanups.append(lambda: self.client.destroy(sandbox_id))
            return sandbox_id
        sandbox_id = waiting_for_capacity(lambda: self.client.create_session(
            f"session:{ctx.session_id}", self.session_ttl_s, timeout_s=30,
            idle_ttl_s=self.idle_s, network=network), ctx.emit, ctx.wait)
        self.sessions.keep_sandbox(ctx.session_id, sandbox_id)
        if replaced:
            ctx.state[NOTE] = (f"This is a new sandbox: the conversation's previous one was "
                               f"removed after {self.idle_s / 60:g} minutes unused, with its "
                               "files, installed packages and variables.")
        return sandbox_id

    def put(self, ctx: ToolContext, files: list) -> str:
        """Copies files (.name, .data) into the sandbox's working directory."""
        try:
            sandbox_id = self.of(ctx)
            for file in files:
                self.client.put_file(sandbox_id, file.name, file.data)
        except SandboxError as exc:
            raise ToolError(f"the files could not be copied into the sandbox: {exc}"
                            f"{self.lost(ctx, exc)}") from exc
        return sandbox_id
