"""The fixes to eventlet, python-engineio, simple-websocket and python-socketio internals that
the served web needs, in one place, installed by one call: `install(app, socketio, settings)`.

Only the web's entry point (`app:app` in python-backend/app.py, what gunicorn's worker loads)
calls install(). create_app() does not: the Celery worker, Flower and the in-process tests
(Flask's test_client) never get them, and the worker never imports eventlet or gevent.

Under each worker class (AIOS_WEB_WORKER_CLASS), each fix has its form or a note on why it is
not needed there:

| fix                        | eventlet                      | gevent (simple-websocket)        |
| compression declined       | LeanWebSocket                 | LeanWebSocket (same)             |
| no per-request Input class | socket in eventlet.input      | socket held aside, put back      |
| unmasking at C speed       | websocket_frames.py           | not needed: wsproto reads frames |
| bound on a whole message   | websocket_frames.py           | simple-websocket's own bound     |
| lingering close on failing | websocket_frames.py           | LingeringServer                  |
| connect deadline           | ConnectDeadline               | ConnectDeadline (same)           |

Each fix says what breaks without it and the upstream version it was checked against.
Checked against (`pip show`): eventlet 0.41.3, gevent 26.9.0, simple-websocket 1.1.0,
wsproto 1.3.2, python-engineio 4.15.1, python-socketio 5.18.1, Flask-SocketIO 5.7.0,
gunicorn 25.3.0. On an upgrade, read each fix against the new code
(tests/unit/test_web_fixes_*.py check that the internals they replace still exist), and drop
a fix that upstream has made unnecessary.

Relied upon elsewhere, not patched: GatedRedisManager (queue.py) overrides python-socketio's
private delivery hook PubSubManager._handle_emit, and checks at construction that the hook is
still there (see its comment).
"""

import collections
import time
import warnings

import simple_websocket
from flask import Flask
from flask_socketio import SocketIO
from wsproto.connection import ConnectionState

from ..settings import Settings
from .lingering_close import LINGER_S, linger

# The design runs on eventlet, in bug-fix-only maintenance: its deprecation notice (printed
# when it is first imported, by websocket_frames.py or by Socket.IO's eventlet driver) is
# nothing a user can act on. Set before create_app() picks the driver.
warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

NAMESPACE = "/"
HELD_SOCKET = "aios.gunicorn_socket"  # where LeanWebSocket keeps gunicorn's socket (gevent)
EVENTLET_FRAMES = ("unmask", "BoundedMessage", "mend_eventlet_websocket")

installed: list[str] = []  # the fixes installed in this process, by name (tests read it)


def install(app: Flask, socketio: SocketIO, settings: Settings) -> None:
    """Install every fix on the app create_app() built (after socketio.init_app), for the
    worker class it runs under. Call once per app, where the app is served."""
    worker_class = settings.web_worker_class
    app.wsgi_app = LeanWebSocket(app.wsgi_app, worker_class)
    _record("lean_websocket")
    if worker_class == "gevent":
        bound_simple_websocket(socketio.server.eio)
        _record("simple_websocket_bound")
    else:
        from .websocket_frames import mend_eventlet_websocket
        mend_eventlet_websocket()
        _record("eventlet_websocket_frames")
    ConnectDeadline(socketio.server, settings.socket_connect_timeout_s).install()
    _record("connect_deadline")
    from . import gunicorn_errors  # gunicorn is there wherever the app is served
    gunicorn_errors.install()
    _record("gunicorn_json_errors")


def _record(name: str) -> None:
    if name not in installed:
        installed.append(name)


def __getattr__(name: str):
    """eventlet's reader fixes, where they were before websocket_frames.py: imported (with
    eventlet) only when asked for."""
    if name in EVENTLET_FRAMES:
        from . import websocket_frames
        return getattr(websocket_frames, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# --- WebSocket handshake under gunicorn (python-engineio 4.15.1, eventlet 0.41.3,
#     simple-websocket 1.1.0) -----------------------------------------------------------------
#
# Keeps each idle WebSocket connection small: one web process holds 10,000 of them.
#
# - Decline compression. Browsers, Electron and most clients offer permessage-deflate;
#   accepting it keeps zlib state of about 100 KiB per connection in the server (measured:
#   150 KiB vs 52 KiB per idle client), which task events (small JSON) do not repay. Without
#   the fix 10,000 idle clients cost about 1 GiB more. Hiding the offer from the handshake
#   makes the server answer without the extension, and every client falls back to plain
#   frames. Same under gevent: simple-websocket accepts PerMessageDeflate whenever offered,
#   and builds its handshake from the same HTTP_* keys of environ.
# - Keep engine.io from defining a class per request. python-engineio's WSGIApp
#   (engineio/middleware.py) hands gunicorn's socket to eventlet's handler by defining a new
#   `Input` class on every request that has environ['gunicorn.socket'] (under either
#   worker), and a class object costs about 2.5 KiB for as long as its connection lives:
#   without the fix, 25 MiB per 10,000 clients. Under eventlet one shared class does the same
#   job. Under gevent, simple-websocket needs gunicorn.socket itself (in its "gunicorn" mode
#   it ends the request so that gunicorn writes nothing after the WebSocket), so the socket
#   is held aside past engine.io's middleware and put back by BoundedWebSocket below.


class _EventletInput:
    """What eventlet's WebSocket handler expects in environ['eventlet.input']."""

    __slots__ = ("socket",)

    def __init__(self, socket):
        self.socket = socket

    def get_socket(self):
        return self.socket


def _to_eventlet(environ, socket) -> None:
    environ["eventlet.input"] = _EventletInput(socket)


def _held_for_simple_websocket(environ, socket) -> None:
    environ[HELD_SOCKET] = socket


class LeanWebSocket:
    """WSGI middleware, outside Flask-SocketIO's (install() wraps app.wsgi_app after
    socketio.init_app)."""

    def __init__(self, wsgi_app, worker_class: str = "eventlet"):
        self.wsgi_app = wsgi_app
        self.hand_over = _held_for_simple_websocket if worker_class == "gevent" else _to_eventlet

    def __call__(self, environ, start_response):
        if environ.get("HTTP_UPGRADE", "").lower() == "websocket":
            environ.pop("HTTP_SEC_WEBSOCKET_EXTENSIONS", None)
            if "gunicorn.socket" in environ:
                self.hand_over(environ, environ.pop("gunicorn.socket"))
        return self.wsgi_app(environ, start_response)


# --- simple-websocket under gevent (python-engineio 4.15.1, simple-websocket 1.1.0,
#     wsproto 1.3.2) ---------------------------------------------------------------------------
#
# engine.io's gevent driver serves WebSockets with simple-websocket (when gevent-websocket is
# not installed: it must not be, or the driver expects gevent-websocket's own worker) and
# gives it no max_message_size: simple-websocket then gathers the frames of a message without
# limit, and engine.io refuses a message only once it is whole, so a client could make the
# process hold gigabytes before it even authenticates (eventlet's form of this is in
# websocket_frames.py). With the bound, simple-websocket closes with 1009 (message too big)
# as soon as a message passes AIOS_MAX_REQUEST_BYTES (engine.io's max_http_buffer_size).
# Unmasking needs no fix here: wsproto unmasks whole chunks at C speed. Uses engine.io's
# driver table (Server._async, a module-level dict: a copy is set on this server only) and
# SimpleWebSocketWSGI.server_args.


class LingeringServer(simple_websocket.Server):
    """simple-websocket's server, lingering (lingering_close.py) when it fails the connection
    (wsproto's LOCAL_CLOSING: our close frame sent, the client's not received; the message
    too big). Uses Base._handle_events, `ws` (wsproto's WSConnection), `connected`, `event`.

    Not connected first, then the event: engine.io's reader, woken, gets its end (None) and
    its writer sends nothing more, while this reader thread lingers.
    """

    lingering = False

    def _handle_events(self):
        keep_going = super()._handle_events()
        if not keep_going and self.ws.state is ConnectionState.LOCAL_CLOSING:
            self.lingering, self.connected = True, False
            self.event.set()
            linger(self.sock)
        return keep_going


def bound_simple_websocket(eio) -> None:
    from engineio.async_drivers._websocket_wsgi import SimpleWebSocketWSGI
    from engineio.async_drivers.gevent import WebSocketWSGI
    if not issubclass(WebSocketWSGI, SimpleWebSocketWSGI):
        raise RuntimeError("gevent-websocket is installed: engine.io's gevent driver then "
                           "needs its worker (GeventWebSocketWorker) instead of gunicorn's "
                           "gevent worker; uninstall gevent-websocket")

    class BoundedWebSocket(WebSocketWSGI):
        def __init__(self, handler, server):
            super().__init__(handler, server)
            self.server_args["max_message_size"] = server.max_http_buffer_size

        def __call__(self, environ, start_response):
            """SimpleWebSocketWSGI.__call__ in gunicorn's mode (always so here), with
            LingeringServer: gunicorn closes the socket once this returns, so a lingering
            reader is waited for."""
            if HELD_SOCKET in environ:
                environ["gunicorn.socket"] = environ.pop(HELD_SOCKET)
            self.ws = LingeringServer(environ, **self.server_args)
            try:
                self.app(self)
            finally:
                if self.ws.lingering:
                    self.ws.thread.join(LINGER_S + 1)
            raise StopIteration()  # simple-websocket's "gunicorn" mode: the request is over

    eio._async = {**eio._async, "websocket": BoundedWebSocket}


# --- A connect deadline (python-socketio 5.18.1, python-engineio 4.15.1) -------------------
#
# Closes an engine.io connection that has not joined the Socket.IO namespace with a valid
# token within AIOS_SOCKET_CONNECT_TIMEOUT_S. Engine.io connections open before any token is
# checked, and python-socketio (unlike the JavaScript server's connectTimeout) keeps them for
# as long as their client answers pings: without the deadline a client with no token can hold
# thousands of them, each a slot of AIOS_WEB_WORKER_CONNECTIONS and ~50 KiB of the web
# process. Uses engine.io's handler table (Server.handlers["connect"] and ["message"],
# Server.on), its `sockets` and `disconnect`, and python-socketio's manager.sid_from_eio_sid
# and `environ` (its sessions, by engine.io sid).


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
        # A message whose handler waited for its turn (a green thread each, under load) while
        # the sweeper closed its session finds no environ in python-socketio's _handle_connect
        # and logs a KeyError traceback: the session is gone, so is what it sent
        handle_message, sessions = self.server.eio.handlers["message"], self.server.environ

        def on_engineio_message(eio_sid, data):
            if eio_sid in sessions:
                return handle_message(eio_sid, data)
            return None

        self.server.eio.on("message", on_engineio_message)
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
