"""The web application factory: REST, Socket.IO and health on one Flask app."""

from typing import Optional

from flask import Flask
from flask.sessions import SessionInterface
from flask_cors import CORS
from flask_socketio import SocketIO

from ..agent.sessions import AgentSessions
from ..celery_app import RUN_TASK, create_celery
from ..resources import redis_client
from ..settings import Settings, load_settings
from ..tasks.artifacts import ArtifactStore
from ..tasks.broker import TaskMessages
from ..tasks.events import EventLog
from ..tasks.keys import SOCKETIO_CHANNEL
from ..tasks.pressure import RedisPressure
from ..tasks.sandbox_client import SandboxClient
from ..tasks.service import TaskService
from ..tasks.store import TaskStore
from .connect_deadline import ConnectDeadline
from .gate import SubscriptionGate
from .lean_websocket import LeanWebSocket
from .queue import EVENT, GatedRedisManager

socketio = SocketIO()


def origin_check(allowed: list[str]):
    """Socket.IO origins: the configured ones (Electron's file://, null, app://) and the
    server's own, which engine.io would drop as soon as a list is given."""
    allowed = set(allowed)

    def check(origin, environ) -> bool:
        own = f"{environ.get('wsgi.url_scheme', 'http')}://{environ.get('HTTP_HOST', '')}"
        return origin is None or origin in allowed or origin == own
    return check


class NoSessions(SessionInterface):
    """Every call carries its bearer token: no cookie session is read, signed or set (Flask
    would otherwise build a signing serializer for every request)."""

    def open_session(self, app, request):
        return None  # Flask then uses a null session, which refuses writes

    def save_session(self, app, session, response):
        pass


def create_app(settings: Optional[Settings] = None) -> Flask:
    settings = settings or load_settings()
    app = Flask(__name__, static_folder=None)
    app.session_interface = NoSessions()
    app.config.update(SECRET_KEY=settings.secret_key.get_secret_value(),
                      MAX_CONTENT_LENGTH=settings.max_request_bytes, JSON_SORT_KEYS=False)
    app.extensions["aios.settings"] = settings

    celery = create_celery(settings)
    app.extensions["celery"] = celery
    redis = redis_client(settings.redis_url)
    events = EventLog(redis, lambda room, events: socketio.emit(EVENT, events, to=room),
                      settings.task_retention_s)
    store = TaskStore(redis, settings.task_retention_s, settings.heartbeat_ttl_s)
    app.extensions["aios.tasks"] = TaskService(
        store, events, message_for=TaskMessages(celery, RUN_TASK),
        revoke=lambda task_id: celery.control.revoke(task_id),
        max_input_bytes=settings.max_input_bytes,
        validation_context={"files": settings.file_reader(),
                            "mcp_servers": sorted(settings.mcp_config.servers)},
        pressure=RedisPressure(redis, settings.redis_high_water))
    app.extensions["aios.redis"] = redis
    app.extensions["aios.artifacts"] = ArtifactStore(settings.aios_artifact_dir,
                                                     settings.task_retention_s)
    app.extensions["aios.sessions"] = AgentSessions(redis, settings.agent_session_ttl_s)
    app.extensions["aios.sandbox"] = SandboxClient(  # removes a deleted session's sandbox
        settings.sandbox_manager_url, settings.sandbox_manager_token.get_secret_value())

    gate = SubscriptionGate(fetch=lambda task_id, after: events.after(task_id, after) or [])
    app.extensions["aios.gate"] = gate
    socketio.init_app(
        app, async_mode="eventlet",
        client_manager=GatedRedisManager(settings.redis_url, gate, channel=SOCKETIO_CHANNEL),
        cors_allowed_origins=origin_check(settings.aios_cors_origins), manage_session=False,
        max_http_buffer_size=settings.max_request_bytes,
        logger=False, engineio_logger=False)
    app.wsgi_app = LeanWebSocket(app.wsgi_app)
    from .websocket_frames import mend_eventlet_websocket  # imports eventlet: only when serving
    mend_eventlet_websocket()
    ConnectDeadline(socketio.server, settings.socket_connect_timeout_s).install()
    CORS(app, origins=settings.aios_cors_origins, allow_headers=["Authorization", "Content-Type"])

    from . import console, errors, health, routes, sessions_api, sockets  # noqa: F401 - handlers register on import
    app.register_blueprint(health.bp)
    app.register_blueprint(routes.bp)
    app.register_blueprint(sessions_api.bp)
    app.register_blueprint(console.bp)
    errors.register(app)
    return app
