"""REST: thin handlers that parse, call the task service, serialize."""

from pathlib import Path

from flask import Blueprint, current_app, jsonify, request, send_file

from ..celery_app import MCP_STATUS
from ..files.roots import FileRefused
from ..files.uploads import save_upload, sweep
from ..providers.registry import NO_KEY_HINT, configured
from ..tokens import bearer
from . import api_models as m
from . import approvals, openapi, socket_schema
from .auth import token_ok
from .contract import operation
from .errors import ApiError
from .state import web_state

bp = Blueprint("api", __name__, url_prefix="/api")
MCP_STATUS_TIMEOUT_S = 20
TASK_ERRORS = (404, 503)  # an unknown or expired task; Redis away or full


def tasks():
    return web_state().tasks


@bp.before_request
def require_token():
    if request.method == "OPTIONS":
        return None  # CORS preflight carries no credentials
    if not token_ok(bearer(request.headers.get("Authorization", ""))):
        raise ApiError(401,
                       "missing or invalid bearer token (Authorization: Bearer $AIOS_API_TOKEN)")


@bp.get("/mcp")
@operation("The configured MCP servers with their state and tools",
           responses={200: m.McpServerList})
def mcp():
    """The configured MCP servers with their state and tools, as a worker sees them."""
    servers = web_state().mcp_servers
    if not servers:
        return jsonify({"servers": [], "hint": "list MCP servers in a JSON file "
                        "({\"mcpServers\": {...}}) and point AIOS_MCP_CONFIG at it"})
    celery = web_state().celery
    try:
        seen = celery.send_task(MCP_STATUS).get(timeout=MCP_STATUS_TIMEOUT_S)
    except Exception:  # noqa: BLE001 - no worker answered in time: say so, per server
        seen = [{"name": name, "state": "unknown",
                 "error": f"no worker answered within {MCP_STATUS_TIMEOUT_S} s"}
                for name in servers]
    return jsonify({"servers": seen})


@bp.post("/files")
@operation("Upload a file for attachments and the file tools", form=m.Upload,
           responses={201: m.Uploaded}, errors=(400, 413))
def upload():
    """multipart/form-data with a `file` field -> {"path"} for attachments and read_file."""
    settings = web_state().settings
    request.max_content_length = settings.upload_max_bytes + (64 << 10)  # + form overhead
    file = request.files.get("file")
    if file is None:
        raise ApiError(400, "send multipart/form-data with the file in a field named `file`")
    folder = Path(settings.upload_dir)
    sweep(folder, settings.upload_retention_s)
    try:
        saved = save_upload(file.stream, file.filename, folder, settings.upload_max_bytes)
    except FileRefused as exc:
        raise ApiError(413, str(exc)) from None
    return jsonify({"path": str(saved), "size": saved.stat().st_size}), 201


@bp.post("/tasks")
@operation("Submit a task", body=m.SubmitTask, responses={202: m.TaskSubmitted},
           errors=(503,), documented_body=lambda: m.submission_model(tasks().kinds))
def submit(body: m.SubmitTask):
    submitted = tasks().submit(body.kind, body.input, body.task_id)
    task = submitted.task
    return jsonify({"task_id": task["task_id"], "status": task["status"],
                    "created": submitted.created}), 202


@bp.get("/tasks")
@operation("Recent tasks, newest first", query=m.TaskListQuery, responses={200: m.TaskList},
           errors=(503,))
def recent(query: m.TaskListQuery):
    return jsonify({"tasks": tasks().recent(query.status, query.limit)})


@bp.get("/tasks/<task_id>")
@operation("A task, with its open approval requests while it runs",
           responses={200: m.Task}, errors=TASK_ERRORS)
def get(task_id: str):
    return jsonify(approvals.with_pending(tasks().get(task_id)))


@bp.post("/tasks/<task_id>/approvals/<call_id>")
@operation("Answer an approval_required event", body=m.ApprovalAnswer,
           responses={200: m.ApprovalAnswered}, errors=TASK_ERRORS + (409,))
def approve(task_id: str, call_id: str, body: m.ApprovalAnswer):
    """The user's answer to an approval_required event: {approved, note?}."""
    return jsonify(approvals.answer(task_id, call_id, body))


@bp.get("/tasks/<task_id>/events")
@operation("The task's stored events after a seq, a page at a time", query=m.EventsQuery,
           responses={200: m.EventPage}, errors=TASK_ERRORS)
def events(task_id: str, query: m.EventsQuery):
    after, limit = query.after, query.limit
    page = tasks().events(task_id, after, limit)
    # A full page may be followed by more: ask again with after=next_after
    return jsonify({"events": page, "next_after": page[-1]["seq"] if len(page) == limit
                    else None})


@bp.get("/tasks/<task_id>/artifacts")
@operation("The figures and files the task's sandbox runs gave back",
           responses={200: m.ArtifactList}, errors=TASK_ERRORS)
def artifacts(task_id: str):
    tasks().get(task_id)
    store = web_state().artifacts
    return jsonify({"artifacts": [a.public(task_id) for a in store.listing(task_id)]})


@bp.get("/tasks/<task_id>/artifacts/<path:name>")
@operation("An artifact's bytes (a download; its type decided by its content)",
           responses={200: "binary"}, errors=TASK_ERRORS)
def artifact(task_id: str, name: str):
    """A figure or file a task's sandbox gave back; only names the task listed exist."""
    tasks().get(task_id)  # 404 for an unknown or expired task
    found = web_state().artifacts.find(task_id, name)
    if found is None:
        raise ApiError(404, f"task {task_id} has no artifact {name!r}")
    path, meta = found
    response = send_file(path, mimetype=meta.mime, as_attachment=True, download_name=meta.name,
                         max_age=0)
    response.headers["X-Content-Type-Options"] = "nosniff"
    # An HTML or SVG artifact opened directly must not run its scripts as this origin
    response.headers["Content-Security-Policy"] = "sandbox"
    return response


@bp.post("/tasks/<task_id>/cancel")
@operation("Cancel a task (a finished one is unchanged)", responses={202: m.TaskStatus},
           errors=TASK_ERRORS)
def cancel(task_id: str):
    task = tasks().cancel(task_id)
    return jsonify({"task_id": task_id, "status": task["status"]}), 202


@bp.get("/providers")
@operation("The configured LLM providers (never a key)", responses={200: m.ProviderList})
def providers():
    settings = web_state().settings
    listed = configured(settings)
    return jsonify({"providers": listed, **({} if listed else {"hint": NO_KEY_HINT})})


@bp.get("/openapi.json")
@operation("This document: the REST API as OpenAPI 3.1", responses={200: m.Document})
def openapi_document():
    return jsonify(_built_once("openapi", lambda: openapi.document(current_app)))


@bp.get("/socketio-schema.json")
@operation("The Socket.IO events, their payloads and acks, as JSON Schema",
           responses={200: m.Document})
def socketio_schema():
    return jsonify(_built_once("socketio", lambda: socket_schema.document(tasks().kinds)))


def _built_once(name: str, build) -> dict:
    """A document of the API, built at its first request: the routes and the kinds are fixed
    once the app starts."""
    documents = current_app.extensions.setdefault("aios.documents", {})
    if name not in documents:
        documents[name] = build()
    return documents[name]
