"""`echo`: returns its text (the cheapest task: health checks, benchmarks, examples)."""

from ..deps import Deps
from ..tasks.context import RunContext
from ..tasks.kind import Kind, TaskInput


class EchoInput(TaskInput):
    text: str


def run(ctx: RunContext, task_input: dict, deps: Deps) -> dict:
    return {"text": task_input["text"]}


KIND = Kind(EchoInput, run)
