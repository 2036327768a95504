"""The task kinds, one module each: its input model and its run function, as a `Kind`.
Adding a kind is a new module here and one line in KINDS; the web validates submissions
and the worker runs tasks through this one table (docs/architecture.md has the recipe)."""

from ..tasks.kind import Kind
from . import agent, chat, code, echo

KINDS: dict[str, Kind] = {"echo": echo.KIND, "code": code.KIND, "chat": chat.KIND,
                          "agent": agent.KIND}
