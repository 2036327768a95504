"""Request bodies, and the size checks that answer 413 rather than 422."""

from typing import Optional

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..errors import TooLarge
from ..limits import LimitOverrides
from ..paths import check_relative_path
from ..settings import Settings

OWNER = Field(default="anonymous", pattern=r"^[A-Za-z0-9_.:@-]{1,128}$")


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RunIn(Body):
    language: str = Field(examples=["python"])
    code: str
    stdin: str = ""
    files: dict[str, str] = Field(default_factory=dict, description="relative path -> text")
    timeout_s: Optional[float] = Field(default=None, gt=0)
    limits: Optional[LimitOverrides] = None
    owner: str = OWNER


class SandboxIn(Body):
    timeout_s: Optional[float] = Field(default=None, gt=0, description="default per exec")
    ttl_s: Optional[float] = Field(default=None, gt=0)
    limits: Optional[LimitOverrides] = None
    owner: str = OWNER


class ExecIn(Body):
    language: Optional[str] = None
    code: Optional[str] = None
    cmd: Optional[list[str]] = Field(default=None, min_length=1)
    stdin: str = ""
    timeout_s: Optional[float] = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _one_of(self) -> "ExecIn":
        if (self.cmd is None) == (self.code is None):
            raise ValueError("give either `language` and `code`, or `cmd`")
        if self.code is not None and self.language is None:
            raise ValueError("`code` needs a `language`")
        return self


def check_sizes(settings: Settings, code: str = "", stdin: str = "",
                files: Optional[dict[str, str]] = None, cmd: Optional[list[str]] = None) -> None:
    if len(code.encode()) > settings.max_code_bytes:
        raise TooLarge(f"code is larger than {settings.max_code_bytes} bytes")
    if cmd and sum(len(a.encode()) for a in cmd) > settings.max_code_bytes:
        raise TooLarge(f"cmd is larger than {settings.max_code_bytes} bytes")
    if len(stdin.encode()) > settings.max_stdin_bytes:
        raise TooLarge(f"stdin is larger than {settings.max_stdin_bytes} bytes")
    files = files or {}
    if len(files) > settings.max_files:
        raise TooLarge(f"{len(files)} files; at most {settings.max_files}")
    for path, text in files.items():
        check_relative_path(path)
        if len(text.encode()) > settings.max_file_bytes:
            raise TooLarge(f"file {path!r} is larger than {settings.max_file_bytes} bytes")
