"""REST for agent sessions (conversations): list them, delete one with its sandbox and browser."""

import logging
import re

from flask import Blueprint, jsonify

from ..agent.sessions import SessionBusy
from ..sandbox.client import SandboxError
from . import api_models as m
from .contract import operation
from .errors import ApiError
from .routes import require_token
from .state import web_state

bp = Blueprint("sessions", __name__, url_prefix="/api/sessions")
bp.before_request(require_token)
SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
log = logging.getLogger(__name__)


def sessions():
    return web_state().sessions


@bp.get("")
@operation("Agent conversations, the most recently used first", query=m.SessionListQuery,
           responses={200: m.SessionList}, errors=(503,))
def listing(query: m.SessionListQuery):
    return jsonify({"sessions": sessions().listing(query.limit)})


@bp.delete("/<session_id>")
@operation("Forget a conversation and destroy its sandbox and browser",
           responses={204: None}, errors=(404, 409, 503))
def delete(session_id: str):
    if not SESSION_ID.match(session_id):
        raise ApiError(404, f"no session {session_id!r}")
    try:
        kept = sessions().delete(session_id)
    except SessionBusy as exc:
        raise ApiError(409, str(exc), "session_busy") from None
    except KeyError:
        raise ApiError(404, f"no session {session_id!r}") from None
    manager = web_state().sandbox
    destroy = {"sandbox": manager.destroy, "browser": manager.destroy_browser}
    for kind, resource_id in kept.items():
        try:
            destroy[kind](resource_id)
        except SandboxError as exc:  # its idle time removes it anyway
            log.warning("session %s: its %s %s was not removed now: %s", session_id, kind,
                        resource_id, exc)
    return "", 204
