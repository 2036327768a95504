"""Attachments of a task: checked when the task is submitted, loaded when it runs."""

from typing import Optional

from pydantic import BaseModel, Field, ValidationInfo, field_validator

from ..deps import Deps
from ..files.roots import FileRefused
from ..sandbox import attachments
from ..tasks.context import RunContext
from ..tasks.errors import TaskFailed

MAX_ATTACHMENTS = 16


def checked_attachments(paths: list[str], info: ValidationInfo, check: str) -> list[str]:
    """With the file settings in the context (the web at submit), a bad path is a 422 at
    once rather than a failed task later; the worker checks again when it reads. `check`:
    the reader's `inspect` (for a model: a type it can read) or `check` (for a sandbox)."""
    files = (info.context or {}).get("files")
    for path in paths if files else ():
        try:
            getattr(files, check)(path)
        except FileRefused as exc:
            raise ValueError(f"{exc.code}: {exc}") from None
    return paths


class SandboxAttachments(BaseModel):
    """Files copied into the task's sandbox (any type; the rules of chat attachments)."""
    attachments: Optional[list[str]] = Field(default=None, max_length=MAX_ATTACHMENTS)

    @field_validator("attachments")
    @classmethod
    def _files_exist_and_fit(cls, paths: Optional[list[str]], info: ValidationInfo):
        return checked_attachments(paths, info, "check") if paths is not None else None


def load_for_sandbox(deps: Deps, paths: list[str], taken=()) -> list[attachments.Attachment]:
    """The files, read under names that clash with none in `taken`; a refused one fails
    the task with `bad_attachment`."""
    try:
        return attachments.load(deps.files, paths, deps.settings.upload_dir, taken=taken)
    except FileRefused as exc:
        raise TaskFailed("bad_attachment", str(exc)) from exc


def announce(ctx: RunContext, attached: list[attachments.Attachment]) -> None:
    ctx.emit("log", {"text": "attached: " + ", ".join(a.describe() for a in attached) + "\n"})
