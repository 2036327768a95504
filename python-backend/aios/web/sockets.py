"""Socket.IO: thin handlers; errors come back in the ack, and the socket stays open."""

import functools

import redis
from flask import current_app, request
from flask_socketio import ConnectionRefusedError, join_room, leave_room

from ..tasks.events import PAGE
from ..tasks.errors import BadTaskInput
from ..tasks.keys import room
from ..tasks.service import TaskNotFound
from ..tasks.pressure import StorageFull
from . import socketio
from . import approvals
from .errors import REDIS_RETRY_AFTER_S, ApiError
from .api_models import MAX_SEQ, ApprovalAnswer
from .auth import token_ok
from .contract import parse_body
from .state import web_state


def acked(handler):
    """Turns expected failures into an error ack instead of a dropped event."""
    @functools.wraps(handler)
    def wrapper(data=None):
        if not isinstance(data, dict):
            return {"error": {"code": "invalid_request", "message": "send a JSON object"}}
        try:
            return handler(data)
        except BadTaskInput as exc:
            code = "too_large" if exc.status == 413 else "invalid_request"
            return {"error": {"code": code, "message": str(exc)}}
        except TaskNotFound as exc:
            return {"error": {"code": "not_found", "message": str(exc)}}
        except ApiError as exc:
            return {"error": {"code": exc.code, "message": exc.message}}
        except StorageFull as exc:
            return {"error": {"code": "storage_full", "message": str(exc),
                              "retry_after": exc.retry_after_s}}
        except redis.RedisError as exc:
            return {"error": {"code": "unavailable", "retry_after": REDIS_RETRY_AFTER_S,
                              "message": f"Redis is unavailable or full for now ({exc})"}}
        except Exception:  # noqa: BLE001 - the connection must survive anything
            current_app.logger.exception("socket handler failed")
            return {"error": {"code": "internal", "message": "internal error"}}
    return wrapper


def service():
    return web_state().tasks


def stream_to_me(task_id: str, after: int, then=None) -> int:
    """Join the task's room and replay its log after `after`, gated so that every event
    reaches this socket exactly once, in order (also those emitted meanwhile)."""
    sid, gate = request.sid, web_state().gate
    manager = socketio.server.manager
    gate.begin(sid, task_id, after)
    join_room(room(task_id))
    try:
        if then:
            then()
        page = service().events(task_id, after)  # TaskNotFound for an unknown task
    except Exception:
        gate.close(sid, task_id)  # nothing to stream: leave no state behind
        leave_room(room(task_id))
        raise
    replayed = manager.deliver(sid, task_id, gate.replayed, page)
    while len(page) == PAGE:  # a long log, a page at a time: however long, all of it
        page = service().events(task_id, page[-1]["seq"])
        replayed += manager.deliver(sid, task_id, gate.replayed, page)
    return replayed + manager.deliver(sid, task_id, gate.finish)


@socketio.on("connect")
def connect(auth=None):
    if not token_ok((auth or {}).get("token") if isinstance(auth, dict) else None):
        # The client's connect_error: err.message, and err.data in the API's error shape
        message = "connect with auth={'token': AIOS_API_TOKEN}"
        raise ConnectionRefusedError(message, {"code": "unauthorized", "message": message})


@socketio.on("disconnect")
def disconnect(*_):
    web_state().gate.forget(request.sid)


@socketio.on("ping")
def ping(data=None):
    """A cheap round trip, for clients that measure latency."""
    return {"pong": True, "echo": data}


@socketio.on("task:submit")
@acked
def submit(data):
    task_id = data.get("task_id") or service().new_id()
    submitted = {}

    def do_submit():
        submitted["result"] = service().submit(data.get("kind"), data.get("input", {}), task_id)

    stream_to_me(task_id, 0, then=do_submit)
    return {"task_id": task_id, "status": submitted["result"].task["status"]}


@socketio.on("task:subscribe")
@acked
def subscribe(data):
    task_id = str(data.get("task_id", ""))
    after = data.get("after", 0)
    if not isinstance(after, int) or not 0 <= after <= MAX_SEQ:
        raise BadTaskInput(f"`after` must be an integer from 0 to {MAX_SEQ}")
    return {"task_id": task_id, "replayed": stream_to_me(task_id, after)}


@socketio.on("task:approve")
@acked
def approve(data):
    """{task_id, call_id, approved, note?}: the user's answer to approval_required."""
    answer = {k: v for k, v in data.items() if k not in ("task_id", "call_id")}
    approvals.answer(str(data.get("task_id", "")), data.get("call_id"),
                     parse_body(ApprovalAnswer, answer))  # ApiError 422, as over REST
    return {"ok": True}


@socketio.on("task:cancel")
@acked
def cancel(data):
    task = service().cancel(str(data.get("task_id", "")))
    return {"task_id": task["task_id"], "status": task["status"]}
