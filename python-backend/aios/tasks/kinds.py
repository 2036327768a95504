"""Task kinds and their inputs: adding a kind is one entry in KINDS."""

from typing import Literal, Optional, Union

from pydantic import (BaseModel, ConfigDict, Field, ValidationError, ValidationInfo,
                      field_validator, model_validator)

from ..files.roots import FileRefused


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EchoInput(Input):
    text: str


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


class Attachments(BaseModel):
    """Files copied into the task's sandbox (any type; the rules of chat attachments)."""
    attachments: Optional[list[str]] = Field(default=None, max_length=MAX_ATTACHMENTS)

    @field_validator("attachments")
    @classmethod
    def _files_exist_and_fit(cls, paths: Optional[list[str]], info: ValidationInfo):
        return checked_attachments(paths, info, "check") if paths is not None else None


class FileData(Input):
    data_base64: str = Field(min_length=0)


class CodeInput(Attachments, Input):
    """Passed to the sandbox manager's /v1/run as it is (docs/api.md has the fields), the
    attachments added to its files."""
    language: Literal["python", "bash"]
    code: str = Field(min_length=1)
    stdin: str = ""
    files: dict[str, Union[str, FileData]] = Field(default_factory=dict)  # text or base64
    timeout_s: Optional[float] = Field(default=None, gt=0, le=600)
    network: Literal["none", "egress"] = "none"


class ChatMessage(Input):
    role: Literal["system", "user", "assistant"]
    content: str


class ChatInput(Input):
    provider: Optional[str] = None
    model: Optional[str] = None
    messages: list[ChatMessage] = Field(min_length=1)
    temperature: Optional[float] = Field(default=None, ge=0, le=2)
    max_tokens: Optional[int] = Field(default=None, gt=0)
    cache: bool = True  # temperature 0 answers may come from the cache; false: never
    attachments: list[str] = Field(default_factory=list, max_length=MAX_ATTACHMENTS)

    @field_validator("attachments")
    @classmethod
    def _files_exist_and_fit(cls, paths: list[str], info: ValidationInfo) -> list[str]:
        if paths and (info.context or {}).get("files") \
                and not any(m.role == "user" for m in info.data.get("messages", [])):
            raise ValueError("attachments need a user message to go with")
        return checked_attachments(paths, info, "inspect")  # for a model: a type it reads


class AgentInput(Attachments, Input):
    goal: Optional[str] = Field(default=None, min_length=1)
    messages: Optional[list[ChatMessage]] = Field(default=None, min_length=1)
    provider: Optional[str] = None
    model: Optional[str] = None
    tools: Optional[list[str]] = None  # default: every built-in tool
    max_steps: Optional[int] = Field(default=None, ge=1, le=100)
    session_id: Optional[str] = Field(default=None, pattern=r"^[A-Za-z0-9_-]{8,64}$")
    temperature: Optional[float] = Field(default=None, ge=0, le=2)
    max_tokens: Optional[int] = Field(default=None, gt=0)

    @field_validator("tools")
    @classmethod
    def _known_tools(cls, names: list[str], info: ValidationInfo) -> list[str]:
        # MCP tools (mcp__<server>__<tool>) are known to the workers that connect to their
        # servers; here the server must at least be configured (when the web says which are)
        from ..tools.registry import MCP_PREFIX, TOOLS
        servers = (info.context or {}).get("mcp_servers")

        def known(name: str) -> bool:
            if not name.startswith(MCP_PREFIX):
                return name in TOOLS.names()
            return servers is None or name[len(MCP_PREFIX):].split("__", 1)[0] in servers
        unknown = [n for n in names if not known(n)]
        if unknown:
            mcp = f", and mcp__<server>__<tool> of: {', '.join(servers)}" if servers else ""
            raise ValueError(f"unknown tools {unknown}; available: {', '.join(TOOLS.names())}{mcp}")
        return names

    @model_validator(mode="after")
    def _goal_or_messages(self) -> "AgentInput":
        if (self.goal is None) == (self.messages is None):
            raise ValueError("give either `goal` (a string) or `messages`, not both")
        if self.attachments and self.tools is not None and "run_code" not in self.tools:
            raise ValueError("attachments go into the run_code sandbox: enable run_code")
        return self


KINDS: dict[str, type[Input]] = {"echo": EchoInput, "code": CodeInput, "chat": ChatInput,
                                 "agent": AgentInput}


class BadTaskInput(ValueError):
    """Unknown kind or malformed input: the message says what is wrong."""

    def __init__(self, message: str, status: int = 422):
        super().__init__(message)
        self.status = status


def validate_input(kind: object, task_input: object, context: Optional[dict] = None) -> dict:
    if kind not in KINDS:
        raise BadTaskInput(f"unknown task kind {kind!r}; available: {', '.join(KINDS)}")
    if not isinstance(task_input, dict):
        raise BadTaskInput("`input` must be a JSON object")
    try:
        return KINDS[kind].model_validate(task_input, context=context).model_dump(
            exclude_none=True)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'input'}: {e['msg']}"
                             for e in exc.errors())
        raise BadTaskInput(f"invalid input for {kind!r}: {problems}") from None
