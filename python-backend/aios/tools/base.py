"""The tool interface: a name, a description and JSON-schema parameters for the model, and
`run`. A tool's failure is a ToolError: its message goes back to the model as the tool's
result, and the agent carries on."""

import importlib
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Protocol


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

    def wait(self, seconds: float) -> bool:
        return self.pause(seconds) if self.pause else self.cancelled.wait(seconds)


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
