"""The web application factory: REST, Socket.IO and health on one Flask app."""

from typing import Optional

from flask import Flask
from flask.sessions import SessionInterface
from flask_cors import CORS
from flask_socketio import SocketIO

from ..agent.sessions import AgentSessions
from ..celery_app import RUN_TASK, create_celery
from ..kinds import KINDS
from ..metrics import web as web_metrics
from ..resources import file_reader, mcp_config, redis_client
from ..settings import Settings, load_settings
from ..sandbox.artifacts import ArtifactStore
from ..tasks.broker import TaskMessages
from ..tasks.events import EventLog
from ..tasks.keys import SOCKETIO_CHANNEL
from ..tasks.pressure import RedisPressure
from ..sandbox.pool import SandboxPool
from ..tasks.service import TaskService
from ..tasks.store import TaskStore
from .gate import SubscriptionGate
from .queue import EVENT, GatedRedisManager
from .state import WebState

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


def create_app(settings: Optional[Settings] = None, *, async_mode: str = "eventlet") -> Flask:
    """The web app, its services in web_state(app). No fix of eventlet or engine.io internals
    is installed here: the web's entry point (app.py) adds them with server_fixes.install(),
    so Flask's test_client works in a plain process (with async_mode="threading", which
    imports no eventlet either)."""
    settings = settings or load_settings()
    app = Flask(__name__, static_folder=None)
    app.session_interface = NoSessions()
    app.config.update(SECRET_KEY=settings.secret_key.get_secret_value(),
                      MAX_CONTENT_LENGTH=settings.max_request_bytes, JSON_SORT_KEYS=False)

    celery = create_celery(settings)
    redis = redis_client(settings.redis_url)
    events = EventLog(redis, lambda room, events: socketio.emit(EVENT, events, to=room),
                      settings.task_retention_s)
    store = TaskStore(redis, settings.task_retention_s, settings.heartbeat_ttl_s)
    mcp_servers = sorted(mcp_config(settings).servers)
    tasks = TaskService(
        store, events, KINDS, message_for=TaskMessages(celery, RUN_TASK),
        revoke=lambda task_id: celery.control.revoke(task_id),
        max_input_bytes=settings.max_input_bytes,
        validation_context={"files": file_reader(settings),
                            "mcp_servers": mcp_servers,
                            "tool_policy": settings.tool_policy},
        pressure=RedisPressure(redis, settings.redis_high_water))
    gate = SubscriptionGate(fetch=lambda task_id, after: events.after(task_id, after) or [])
    WebState(
        settings=settings, celery=celery, redis=redis, tasks=tasks,
        artifacts=ArtifactStore(settings.artifact_dir, settings.task_retention_s),
        sessions=AgentSessions(redis, settings.agent_session_ttl_s),
        sandbox=SandboxPool.from_settings(settings),
        gate=gate, mcp_servers=mcp_servers).attach(app)
    manager = GatedRedisManager(settings.redis_url, gate, channel=SOCKETIO_CHANNEL)
    socketio.init_app(
        app, async_mode=async_mode, client_manager=manager,
        cors_allowed_origins=origin_check(settings.cors_origins), manage_session=False,
        max_http_buffer_size=settings.max_request_bytes,
        logger=False, engineio_logger=False)
    CORS(app, origins=settings.cors_origins, allow_headers=["Authorization", "Content-Type"])

    from . import console, errors, health, routes, sessions_api, sockets  # noqa: F401 - handlers register on import
    app.register_blueprint(health.bp)
    app.register_blueprint(routes.bp)
    app.register_blueprint(sessions_api.bp)
    app.register_blueprint(console.bp)
    errors.register(app)
    web_metrics.install(app, settings, tasks, manager, socketio)
    return app
