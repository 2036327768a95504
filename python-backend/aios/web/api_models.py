"""The REST API's request and response models: the routes validate with them and the OpenAPI
document (openapi.py) is generated from them, so the two cannot drift apart."""

from typing import Annotated, Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, RootModel, StrictBool, StrictStr, create_model

from ..tasks.events import PAGE
from ..tasks.kind import Kinds
from ..tasks.store import STATUSES

Status = Literal[STATUSES]  # type: ignore[valid-type]
MAX_NOTE = 2000
MAX_PAGE = 10_000
MAX_SEQ = 2 ** 53  # JSON's safe integers; Redis indexes a list with 64-bit ones


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- errors ---------------------------------------------------------------------------

class ErrorDetail(BaseModel):
    code: str = Field(description="machine-readable: bad_request, not_found, invalid_request, ...")
    message: str = Field(description="what is wrong, for people")


class Error(BaseModel):
    """Every error answer: {"error": {"code", "message"}}."""
    error: ErrorDetail


# --- requests -------------------------------------------------------------------------

class TaskListQuery(BaseModel):
    status: Optional[Status] = None
    limit: int = Field(50, ge=1, le=500)


class EventsQuery(BaseModel):
    after: int = Field(0, ge=0, le=MAX_SEQ,
                       description="the last seq seen; events with a larger one come")
    limit: int = Field(PAGE, ge=1, le=MAX_PAGE)


class SessionListQuery(BaseModel):
    limit: int = Field(100, ge=1, le=500)


class SubmitTask(Strict):
    """A task to run. `input` is validated against the kind's own model when submitted
    (with the server's context: its files, MCP servers, tool policy)."""
    kind: Any = Field(description="one of the task kinds")
    input: Any = {}
    task_id: Optional[Annotated[str, Field(pattern=r"^([A-Za-z0-9_-]{8,64})?$")]] = Field(
        None, description="yours to choose, for an idempotent submit; the same id again "
                          "answers created: false and runs nothing")


def submission_model(kinds: Kinds) -> type[RootModel]:
    """The submit body as documented: one variant per kind, `input` that kind's model.
    Built from the kinds table, so a new kind appears in the document by itself."""
    variants = tuple(
        create_model(f"Submit{name.title().replace('_', '')}Task", __base__=SubmitTask,
                     __doc__=f"A `{name}` task.", kind=(Literal[name], ...),
                     input=(kind.input, ...))
        for name, kind in kinds.items())
    union = Annotated[Union[variants], Field(discriminator="kind")]  # type: ignore[valid-type]
    return create_model("TaskSubmission", __base__=RootModel[union])


class ApprovalAnswer(Strict):
    approved: StrictBool
    note: Optional[StrictStr] = Field(None, max_length=MAX_NOTE)


# --- responses ------------------------------------------------------------------------

class TaskSubmitted(BaseModel):
    task_id: str
    status: Status
    created: bool = Field(description="false: the task_id existed; nothing was run again")


class ApprovalRequest(BaseModel):
    """What a tool call that waits for the user's yes says (the approval_required event)."""
    call_id: str
    tool: str
    key: str
    arguments: Any
    reason: str
    timeout_s: float


class PendingApproval(ApprovalRequest):
    expires_at: float


class Task(BaseModel):
    task_id: str
    kind: str
    status: Status
    result: Any = Field(description="the kind's result once it succeeded, else null")
    error: Optional[dict[str, Any]] = Field(description='{"code", "message"} once it failed')
    created_at: float
    updated_at: float
    attempt: int
    pending_approvals: Optional[list[PendingApproval]] = Field(
        None, description="a running task's open approval requests")


class TaskList(BaseModel):
    tasks: list[Task]


class Event(BaseModel):
    task_id: str
    seq: int
    type: str = Field(description="status, stdout, stderr, log, token, tool_call, ...")
    data: Any
    ts: float


class EventPage(BaseModel):
    events: list[Event]
    next_after: Optional[int] = Field(description="not null: ask again with after=next_after")


class TaskStatus(BaseModel):
    task_id: str
    status: Status


class ApprovalAnswered(BaseModel):
    task_id: str
    call_id: str
    approved: bool


class Artifact(BaseModel):
    name: str
    mime: str
    size: int
    url: str


class ArtifactList(BaseModel):
    artifacts: list[Artifact]


class Session(BaseModel):
    session_id: str
    title: str
    turns: int
    updated_at: float
    sandbox_id: Optional[str]
    busy: bool


class SessionList(BaseModel):
    sessions: list[Session]


class Provider(BaseModel):
    name: str
    default_model: Optional[str]
    models: list[Optional[str]]


class ProviderList(BaseModel):
    providers: list[Provider]
    hint: Optional[str] = Field(None, description="with none configured: what to set")


class McpTool(BaseModel):
    name: str
    agent_name: str
    description: Optional[str] = None


class McpServer(BaseModel):
    name: str
    transport: Optional[Literal["stdio", "http"]] = None
    state: Literal["ready", "failed", "unknown"]
    error: Optional[str] = None
    tools: list[McpTool] = []


class McpServerList(BaseModel):
    servers: list[McpServer]
    hint: Optional[str] = None


class Uploaded(BaseModel):
    path: str = Field(description="for `attachments` and the file tools")
    size: int


class Upload(BaseModel):
    """multipart/form-data with the file in field `file`."""
    file: bytes = Field(json_schema_extra={"format": "binary"})


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    checks: dict[str, dict[str, Any]] = Field(
        description='redis, workers, sandbox_manager: {"ok", "error"?, ...}')
    elapsed_ms: float


class Document(RootModel[dict[str, Any]]):
    """A JSON document (OpenAPI, JSON Schema)."""
