"""The fixes to eventlet, python-engineio and python-socketio internals that the served web
needs, in one place, installed by one call: `install(app, socketio, settings)`.

Only the web's entry point (`app:app` in python-backend/app.py, what gunicorn's eventlet
worker loads) calls install(). create_app() does not: the Celery worker, Flower and the
in-process tests (Flask's test_client) never get them, and the worker never imports eventlet.

Each fix says what breaks without it and the upstream version it was checked against.
Checked against (`pip show`): eventlet 0.41.3, python-engineio 4.15.1, python-socketio
5.18.1, Flask-SocketIO 5.7.0, gunicorn 25.3.0. On an upgrade, read each fix against the new
code (tests/unit/test_web_fixes_*.py check that the internals they replace still exist), and
drop a fix that upstream has made unnecessary.

Relied upon elsewhere, not patched: GatedRedisManager (queue.py) overrides python-socketio's
private delivery hook PubSubManager._handle_emit, and checks at construction that the hook is
still there (see its comment).
"""

import collections
import time
import warnings

from flask import Flask
from flask_socketio import SocketIO

from ..settings import Settings

# The design runs on eventlet, in bug-fix-only maintenance: its deprecation notice (printed
# when it is first imported, here or by Socket.IO's eventlet driver) is nothing a user can act
# on. Set before the import below.
warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

from eventlet.websocket import FailedConnectionError, RFC6455WebSocket  # noqa: E402
from wsproto.frame_protocol import XorMaskerSimple  # noqa: E402

NAMESPACE = "/"

installed: list[str] = []  # the fixes installed in this process, by name (tests read it)


def install(app: Flask, socketio: SocketIO, settings: Settings) -> None:
    """Install every fix on the app create_app() built (after socketio.init_app). Call once
    per app, where the app is served."""
    app.wsgi_app = LeanWebSocket(app.wsgi_app)
    _record("lean_websocket")
    mend_eventlet_websocket()
    _record("eventlet_websocket_frames")
    ConnectDeadline(socketio.server, settings.socket_connect_timeout_s).install()
    _record("connect_deadline")


def _record(name: str) -> None:
    if name not in installed:
        installed.append(name)


# --- eventlet's WebSocket reader (eventlet 0.41.3, its latest release) ---------------------
#
# Every message of every Socket.IO client passes through RFC6455WebSocket. Two fixes:
#
# - Unmasking at C speed. Clients mask every frame they send, and eventlet XORs the payload
#   with the mask one byte at a time in Python (RFC6455WebSocket._apply_mask): 171 us per
#   KiB, 254 ms per MiB measured here, while the one web process serves nobody else.
#   Without the fix a client sending a few MiB stalls every other client, and a stream of
#   such messages starves gunicorn's heartbeat until gunicorn kills the worker, dropping
#   every client. wsproto's masker (a dependency of python-engineio already) does the same
#   XOR with bytes.translate: about 2 ms per MiB.
# - A bound on the whole message, not only on each frame (RFC6455WebSocket.Message).
#   eventlet checks every frame against max_frame_length (engine.io passes
#   AIOS_MAX_REQUEST_BYTES) but gathers the frames of a fragmented message without limit,
#   and engine.io refuses a message only once it is whole: without the fix a client, before
#   it even authenticates, can make the process hold gigabytes. The connection is now closed
#   with 1009 (message too big) as soon as a message passes the limit.

_EventletMessage = RFC6455WebSocket.Message


def unmask(data, mask: bytes, length=None, offset: int = 0) -> bytes:
    """RFC 6455 masking of data[:length], whose first byte is byte `offset` of its frame's
    payload (eventlet unmasks a frame in the pieces that recv returns)."""
    if length is not None:
        data = data[:length]
    shift = offset % 4
    return bytes(XorMaskerSimple(mask[shift:] + mask[:shift]).process(data))


class BoundedMessage(_EventletMessage):
    size = 0

    def push(self, data, final=False):
        self.size += len(data)
        if self.size > self.max_frame_length:
            raise FailedConnectionError(
                1009, f"message larger than {self.max_frame_length} bytes")
        super().push(data, final)


def mend_eventlet_websocket() -> None:
    """Install both fixes (process-wide, idempotent)."""
    RFC6455WebSocket._apply_mask = staticmethod(unmask)
    RFC6455WebSocket.Message = BoundedMessage


# --- WebSocket handshake under gunicorn (python-engineio 4.15.1, eventlet 0.41.3) ----------
#
# Keeps each idle WebSocket connection small: one eventlet web process holds 10,000 of them.
#
# - Decline compression. Browsers, Electron and most clients offer permessage-deflate;
#   accepting it keeps zlib state of about 100 KiB per connection in the server (measured:
#   150 KiB vs 52 KiB per idle client), which task events (small JSON) do not repay. Without
#   the fix 10,000 idle clients cost about 1 GiB more. Hiding the offer from the handshake
#   makes eventlet answer without the extension, and every client falls back to plain frames.
# - Hand gunicorn's socket to eventlet's WebSocket handler ourselves. python-engineio's
#   WSGIApp (engineio/middleware.py) does it by defining a new `Input` class on every request
#   under gunicorn, and a class object costs about 2.5 KiB for as long as its connection
#   lives: without the fix, 25 MiB per 10,000 clients. One shared class does the same job;
#   engine.io then finds environ['eventlet.input'] and leaves it alone.


class _EventletInput:
    """What eventlet's WebSocket handler expects in environ['eventlet.input']."""

    __slots__ = ("socket",)

    def __init__(self, socket):
        self.socket = socket

    def get_socket(self):
        return self.socket


class LeanWebSocket:
    """WSGI middleware, outside Flask-SocketIO's (install() wraps app.wsgi_app after
    socketio.init_app)."""

    def __init__(self, wsgi_app):
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        if environ.get("HTTP_UPGRADE", "").lower() == "websocket":
            environ.pop("HTTP_SEC_WEBSOCKET_EXTENSIONS", None)
            if "gunicorn.socket" in environ:
                environ["eventlet.input"] = _EventletInput(environ.pop("gunicorn.socket"))
        return self.wsgi_app(environ, start_response)


# --- A connect deadline (python-socketio 5.18.1, python-engineio 4.15.1) -------------------
#
# Closes an engine.io connection that has not joined the Socket.IO namespace with a valid
# token within AIOS_SOCKET_CONNECT_TIMEOUT_S. Engine.io connections open before any token is
# checked, and python-socketio (unlike the JavaScript server's connectTimeout) keeps them for
# as long as their client answers pings: without the deadline a client with no token can hold
# thousands of them, each a slot of AIOS_WEB_WORKER_CONNECTIONS and ~50 KiB of the web
# process. Uses engine.io's handler table (Server.handlers["connect"], Server.on), its
# `sockets` and `disconnect`, and python-socketio's manager.sid_from_eio_sid.


class ConnectDeadline:
    """One sweeper for all connections, not a timer or a sleeping green thread each:
    10,000 clients connecting at once cost a queue entry each for the deadline's length."""

    def __init__(self, server, seconds: float, clock=time.monotonic):
        self.server = server  # python-socketio's Server (Flask-SocketIO's `socketio.server`)
        self.seconds = seconds
        self.clock = clock
        self.pending = collections.deque()  # (deadline, eio_sid), oldest first
        self.sweeper = None

    def install(self) -> "ConnectDeadline":
        accept = self.server.eio.handlers["connect"]

        def on_engineio_connect(eio_sid, environ):
            accepted = accept(eio_sid, environ)
            if accepted is not False:
                self.pending.append((self.clock() + self.seconds, eio_sid))
                if self.sweeper is None:  # started by the first client: only where one comes
                    self.sweeper = self.server.start_background_task(self.sweep_forever)
            return accepted

        on_engineio_connect.connect_deadline = self  # how a test sees it is installed
        self.server.eio.on("connect", on_engineio_connect)
        return self

    def sweep_forever(self) -> None:
        while True:
            self.server.sleep(min(1.0, self.seconds / 2))
            self.close_overdue(self.clock())

    def close_overdue(self, now: float) -> int:
        """Close the connections past their deadline that have not connected; how many."""
        eio, manager, closed = self.server.eio, self.server.manager, 0
        while self.pending and self.pending[0][0] <= now:
            _, eio_sid = self.pending.popleft()
            if eio_sid in eio.sockets and manager.sid_from_eio_sid(eio_sid, NAMESPACE) is None:
                eio.disconnect(eio_sid)
                closed += 1
        return closed
