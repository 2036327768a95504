"""`code`: runs a program in a throwaway sandbox, its output streamed, its files returned."""

import base64
from typing import Literal, Optional, Union

from pydantic import Field

from ..deps import Deps
from ..sandbox.artifacts import publish_outputs
from ..sandbox.capacity import waiting_for_capacity
from ..sandbox.client import SandboxError
from ..tasks.context import RunContext
from ..tasks.errors import failed
from ..tasks.kind import Kind, TaskInput
from .attachments import SandboxAttachments, announce, load_for_sandbox


class FileData(TaskInput):
    data_base64: str = Field(min_length=0)


class CodeInput(SandboxAttachments, TaskInput):
    """Passed to the sandbox manager's /v1/run as it is (docs/api.md has the fields), the
    attachments added to its files."""
    language: Literal["python", "bash"]
    code: str = Field(min_length=1)
    stdin: str = ""
    files: dict[str, Union[str, FileData]] = Field(default_factory=dict)  # text or base64
    timeout_s: Optional[float] = Field(default=None, gt=0, le=600)
    network: Literal["none", "egress"] = "none"


def run(ctx: RunContext, task_input: dict, deps: Deps) -> dict:
    def output(stream: str, text: str) -> None:
        ctx.emit(stream, {"text": text})
    body = dict(task_input)
    attached = _attach(ctx, body, deps)
    try:
        result = waiting_for_capacity(
            lambda: deps.sandbox.run(body, output, owner=f"task:{ctx.task_id}",
                                     register_close=ctx.on_cancel,
                                     on_note=lambda text: ctx.emit("log", {"text": text})),
            ctx.emit, ctx.pause)
    except SandboxError as exc:
        raise failed(ctx, exc, exc.code) from exc
    publish_outputs(ctx, result, deps.artifacts)
    return dict(result, **({"attachments": [a.listed() for a in attached]} if attached else {}))


def _attach(ctx: RunContext, body: dict, deps: Deps) -> list:
    """The task's attachments join its files, under names that clash with none of them."""
    paths = body.pop("attachments", None)
    if not paths:
        return []
    attached = load_for_sandbox(deps, paths, taken=body.get("files", {}))
    body["files"] = {**body.get("files", {}), **{
        a.name: {"data_base64": base64.b64encode(a.data).decode()} for a in attached}}
    announce(ctx, attached)
    return attached


KIND = Kind(CodeInput, run)
