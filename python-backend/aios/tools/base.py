"""The tool interface: a name, a description and JSON-schema parameters for the model, and
`run`. A tool's failure is a ToolError: its message goes back to the model as the tool's
result, and the agent carries on."""

import importlib
import threading
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Optional, Protocol

from ..approvals.policy import Policy

if TYPE_CHECKING:
    from ..approvals.gate import ApprovalGate


class ToolError(Exception):
    """What the model is told when a call fails (bad arguments, refused, timed out...)."""


@dataclass
class ToolContext:
    """What a tool may use during one agent run."""

    task_id: str
    emit: Callable[[str, dict], None]        # stream an event of the task (stdout, log...)
    cancelled: threading.Event
    on_cancel: Callable[[Callable[[], None]], None]  # how to abort a blocking call on cancel
    # Cleanups the run performs when it ends, however it ends (sandboxes, temp files...)
    cleanups: list[Callable[[], None]] = field(default_factory=list)
    state: dict = field(default_factory=dict)  # per-run state of tools (e.g. the sandbox id)
    session_id: Optional[str] = None  # the conversation the run belongs to, if any
    # wait, unless the run is cancelled first (then True); by default on the cancel flag
    pause: Optional[Callable[[float], bool]] = None
    call_id: Optional[str] = None  # the model's call being run (set by the agent loop)
    call_arguments: Optional[dict] = None
    ends_at: Optional[float] = None  # the run's wall-time end (time.monotonic())
    # The levels per tool (None: the built-in defaults), and who asks the user. Without a
    # gate (the MCP server, a context built by hand) nobody can answer: `ask` is `deny`.
    policy: Optional[Policy] = None
    gate: Optional["ApprovalGate"] = None
    current_abort: Optional[Callable[[], None]] = field(default=None, init=False)

    def __post_init__(self):
        register = self.on_cancel

        def on_cancel(abort: Callable[[], None]) -> None:
            self.current_abort = abort  # so that a wait can put it back when it ends
            register(abort)
        self.on_cancel = on_cancel

    def wait(self, seconds: float) -> bool:
        return self.pause(seconds) if self.pause else self.cancelled.wait(seconds)

    def approve(self, key: str, reason: str, arguments: Optional[dict] = None) -> None:
        """Returns when `key` (a tool, or `tool.variant`) may go ahead: at once for `auto`,
        after the user's yes for `ask`; ToolError, worded for the model, otherwise."""
        level = (self.policy or Policy()).level(key)
        if level == "deny":
            self._denied_by_policy(key)
        if level == "auto" or self.call_id in self.state.get(APPROVED_CALLS, ()):
            return  # one yes per call: a call the user allowed is not asked about again
        if self.gate is None:
            raise ToolError(f"not done: {key} needs the user's approval and there is no "
                            "user to ask here")
        call_id = self.call_id or f"approval-{uuid.uuid4().hex[:12]}"
        answer = self.gate.ask(self, call_id, key.split(".", 1)[0],
                               arguments if arguments is not None else self.call_arguments,
                               reason, key)
        if not answer.approved:
            raise ToolError(refusal(answer))
        self.state.setdefault(APPROVED_CALLS, set()).add(call_id)

    def _denied_by_policy(self, key: str) -> None:
        if self.call_id:
            self.emit("approval_resolved", {"call_id": self.call_id, "approved": False,
                                            "by": "policy", "key": key})
        raise ToolError(f"not done: the policy denies {key} here (the operator's "
                        "AIOS_TOOL_POLICY or the task's tool_policy); do not retry it, find "
                        "another way or tell the user")


def refusal(answer) -> str:
    """What the model is told when the user's say was no (approvals.store.Answer)."""
    if answer.by == "user":
        note = f": {answer.note}" if answer.note else ""
        return (f"the user denied this action{note}. It was not done; do not retry it "
                "unless the user asks for it")
    if answer.by == "cancel":
        return "not done: the task was cancelled while waiting for the user"
    return f"no answer from the user within {answer.timeout_s:g} s, so it was not done"


APPROVED_CALLS = "approvals.approved_calls"  # state: the calls the user allowed


@dataclass
class ToolOutput:
    """A result with media: `text` goes back as the tool's result, `parts` (images,
    documents) follow it in a user turn, the way every provider takes them."""

    text: str
    parts: list[dict] = field(default_factory=list)
    structured: Optional[dict] = None  # the result as data, when `text` is its JSON


class Tool(Protocol):
    name: str
    description: str
    parameters: dict  # JSON schema of the arguments (an object)

    def run(self, arguments: dict, ctx: ToolContext) -> Any:
        """The result (str, a JSON-serializable dict, or a ToolOutput) for the model."""


def spec(tool: Tool) -> dict:
    """The tool as the provider layer takes it (ChatRequest.tools)."""
    return {"name": tool.name, "description": tool.description, "parameters": tool.parameters}


@dataclass
class ToolRegistry:
    """Tools by name, each made by a factory `(deps) -> Tool` named "module:function" and
    imported only when the tool is built (Playwright stays out of processes that never
    browse)."""
    factories: dict[str, str]

    def names(self) -> list[str]:
        return sorted(self.factories)

    def build_one(self, name: str, deps) -> Tool:
        module, _, function = self.factories[name].partition(":")
        return getattr(importlib.import_module(module), function)(deps)

    def build(self, names: list[str], deps) -> list[Tool]:
        unknown = [n for n in names if n not in self.factories]
        if unknown:
            raise KeyError(f"unknown tools {unknown}; available: {', '.join(self.names())}")
        return [self.build_one(name, deps) for name in names]
