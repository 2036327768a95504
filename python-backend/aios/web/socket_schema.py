"""The Socket.IO events as JSON Schema: what a client emits (and the ack it gets back), what the
server emits, and the connect handshake. One model per payload; `document()` puts them in one
JSON Schema 2020-12 document, served at /api/socketio-schema.json."""

from typing import Annotated, Any, Literal, Optional, Union

from pydantic import BaseModel, Field, RootModel, StrictBool, StrictStr, create_model
from pydantic.json_schema import models_json_schema

from ..tasks.kind import Kinds
from . import api_models as m

REF = "#/$defs/{model}"


class ConnectAuth(BaseModel):
    """The connect's `auth`: a connection without a valid token is refused."""
    token: str


class ErrorAckDetail(m.ErrorDetail):
    retry_after: Optional[float] = Field(None, description="storage_full, unavailable: seconds")


class ErrorAck(BaseModel):
    """Any handler's failure; the connection stays open."""
    error: ErrorAckDetail


class Subscribe(BaseModel):
    task_id: str
    after: int = Field(0, ge=0, le=m.MAX_SEQ,
                       description="the last seq seen: every later event comes")


class Cancel(BaseModel):
    task_id: str


class Approve(BaseModel):
    task_id: str
    call_id: str
    approved: StrictBool
    note: Optional[StrictStr] = Field(None, max_length=m.MAX_NOTE)


class Submitted(BaseModel):
    task_id: str
    status: m.Status


class Subscribed(BaseModel):
    task_id: str
    replayed: int


class Approved(BaseModel):
    ok: Literal[True]


class Pong(BaseModel):
    pong: Literal[True]
    echo: Any = None


# --- server -> client: task:event, its `data` by `type` ----------------------------------

class EventBase(BaseModel):
    task_id: str
    seq: int = Field(ge=1, description="from 1, one more per event of the task")
    ts: float


class StatusData(BaseModel):
    status: m.Status


class TextData(BaseModel):
    text: str


class ToolCallData(BaseModel):
    id: str
    name: str
    arguments: Any


class ToolResultData(ToolCallData):
    output: str
    is_error: bool
    arguments: Any = None


class ApprovalRequiredData(m.ApprovalRequest):
    """The same request GET /api/tasks/{id} lists under pending_approvals."""


class ApprovalResolvedData(BaseModel):
    call_id: str
    approved: bool
    by: Literal["user", "timeout", "cancel", "policy"]
    note: Optional[str] = None
    key: Optional[str] = None


def _event(name: str, types: Any, data: Any) -> type[EventBase]:
    return create_model(name, __base__=EventBase, type=(types, ...), data=(data, ...))


TASK_EVENTS = (
    _event("StatusEvent", Literal["status"], StatusData),
    _event("TextEvent", Literal["stdout", "stderr", "log", "token"], TextData),
    _event("ToolCallEvent", Literal["tool_call"], ToolCallData),
    _event("ToolResultEvent", Literal["tool_result"], ToolResultData),
    _event("ApprovalRequiredEvent", Literal["approval_required"], ApprovalRequiredData),
    _event("ApprovalResolvedEvent", Literal["approval_resolved"], ApprovalResolvedData),
    _event("ArtifactEvent", Literal["artifact"], m.Artifact),
    _event("ResultEvent", Literal["result"], Any),
    _event("ErrorEvent", Literal["error"], m.ErrorDetail),
)


class TaskEvent(RootModel[Annotated[Union[TASK_EVENTS], Field(discriminator="type")]]):
    """One event of a task, each once and in seq order per subscription."""


def _acked(model: type[BaseModel]) -> type[RootModel]:
    """The ack: the answer, or an error."""
    return create_model(f"{model.__name__}Ack", __base__=RootModel[Union[model, ErrorAck]])


def events(kinds: Kinds) -> dict[str, dict[str, Any]]:
    """event name -> {"direction", "data" model, "ack" model (client events)}."""
    return {
        "connect": {"direction": "client", "data": ConnectAuth,
                    "refused": m.ErrorDetail},
        "task:submit": {"direction": "client", "data": m.submission_model(kinds),
                        "ack": _acked(Submitted)},
        "task:subscribe": {"direction": "client", "data": Subscribe, "ack": _acked(Subscribed)},
        "task:cancel": {"direction": "client", "data": Cancel, "ack": _acked(m.TaskStatus)},
        "task:approve": {"direction": "client", "data": Approve, "ack": _acked(Approved)},
        "ping": {"direction": "client", "data": None, "ack": Pong},
        "task:event": {"direction": "server", "data": TaskEvent},
    }


def document(kinds: Kinds) -> dict:
    """{"$schema", "clientToServer": {event: {"data", "ack"}}, "serverToClient": {...},
    "$defs"}: every payload a $ref into $defs (`data` null: anything)."""
    table = events(kinds)
    models = sorted({(model, "validation") for spec in table.values() for key, model
                     in spec.items() if key != "direction" and model is not None},
                    key=lambda pair: repr(pair[0]))
    refs, schemas = models_json_schema(models, ref_template=REF)
    sections: dict[str, dict] = {"clientToServer": {}, "serverToClient": {}}
    for name, spec in table.items():
        section = "clientToServer" if spec["direction"] == "client" else "serverToClient"
        sections[section][name] = {key: refs[(model, "validation")] if model is not None
                                   else {} for key, model in spec.items() if key != "direction"}
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": "/api/socketio-schema.json",
            "title": "AI-OS web Socket.IO events (namespace /)",
            "description": "Connect with auth={token}; client events answer through their "
                           "ack. The prose is docs/api.md.",
            **sections, "$defs": schemas.get("$defs", {})}
