"""REST: thin handlers that parse, call the task service, serialize."""

from pathlib import Path

from flask import Blueprint, jsonify, request, send_file

from ..celery_app import MCP_STATUS
from ..files.roots import FileRefused
from ..files.uploads import save_upload, sweep
from ..tasks.events import PAGE

from ..providers.registry import NO_KEY_HINT, configured
from . import approvals
from .auth import bearer, token_ok
from .errors import ApiError
from .state import web_state

bp = Blueprint("api", __name__, url_prefix="/api")
MAX_PAGE = 10_000
MCP_STATUS_TIMEOUT_S = 20


def tasks():
    return web_state().tasks


@bp.before_request
def require_token():
    if request.method == "OPTIONS":
        return None  # CORS preflight carries no credentials
    if not token_ok(bearer(request.headers.get("Authorization", ""))):
        raise ApiError(401,
                       "missing or invalid bearer token (Authorization: Bearer $AIOS_API_TOKEN)")


def json_body() -> dict:
    if not request.is_json:
        raise ApiError(415, "send a JSON body with Content-Type: application/json")
    body = request.get_json(silent=True)
    if body is None:
        raise ApiError(400, "the body is not valid JSON", "malformed_json")
    if not isinstance(body, dict):
        raise ApiError(422, "the body must be a JSON object")
    return body


def int_arg(name: str, default: int) -> int:
    try:
        return int(request.args.get(name, default))
    except ValueError:
        raise ApiError(400, f"query parameter {name!r} must be an integer") from None


@bp.get("/mcp")
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
def submit():
    body = json_body()
    unknown = set(body) - {"kind", "input", "task_id"}
    if unknown:
        raise ApiError(422, f"unknown fields: {', '.join(sorted(unknown))}")
    submitted = tasks().submit(body.get("kind"), body.get("input", {}), body.get("task_id"))
    task = submitted.task
    return jsonify({"task_id": task["task_id"], "status": task["status"],
                    "created": submitted.created}), 202


@bp.get("/tasks")
def recent():
    return jsonify({"tasks": tasks().recent(request.args.get("status"), int_arg("limit", 50))})


@bp.get("/tasks/<task_id>")
def get(task_id: str):
    return jsonify(approvals.with_pending(tasks().get(task_id)))


@bp.post("/tasks/<task_id>/approvals/<call_id>")
def approve(task_id: str, call_id: str):
    """The user's answer to an approval_required event: {approved, note?}."""
    return jsonify(approvals.answer(task_id, call_id, json_body()))


@bp.get("/tasks/<task_id>/events")
def events(task_id: str):
    after, limit = int_arg("after", 0), int_arg("limit", PAGE)
    if not 1 <= limit <= MAX_PAGE:
        raise ApiError(422, f"limit must be between 1 and {MAX_PAGE}")
    page = tasks().events(task_id, after, limit)
    # A full page may be followed by more: ask again with after=next_after
    return jsonify({"events": page, "next_after": page[-1]["seq"] if len(page) == limit
                    else None})


@bp.get("/tasks/<task_id>/artifacts")
def artifacts(task_id: str):
    tasks().get(task_id)
    store = web_state().artifacts
    return jsonify({"artifacts": [a.public(task_id) for a in store.listing(task_id)]})


@bp.get("/tasks/<task_id>/artifacts/<path:name>")
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
def cancel(task_id: str):
    task = tasks().cancel(task_id)
    return jsonify({"task_id": task_id, "status": task["status"]}), 202


@bp.get("/providers")
def providers():
    settings = web_state().settings
    listed = configured(settings)
    return jsonify({"providers": listed, **({} if listed else {"hint": NO_KEY_HINT})})
