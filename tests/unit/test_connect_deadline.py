"""The connect deadline's bookkeeping, on stand-ins for python-socketio's server objects."""

from types import SimpleNamespace

from aios.web.server_fixes import ConnectDeadline


class Server:
    """What ConnectDeadline uses of python-socketio's Server: its engine.io server (handlers,
    sockets, disconnect), its sessions' environ, its manager's sid lookup, and background
    tasks."""

    def __init__(self):
        self.connected, self.closed, self.started = set(), [], []
        self.eio = SimpleNamespace(handlers={"connect": self.accept, "message": print},
                                   sockets={}, disconnect=self.disconnect, on=self.on)
        self.environ = {}
        self.manager = SimpleNamespace(sid_from_eio_sid=lambda eio_sid, namespace:
                                       "sid" if eio_sid in self.connected else None)

    def accept(self, eio_sid, environ):
        return environ.get("refuse") and False

    def on(self, event, handler):
        self.eio.handlers[event] = handler

    def disconnect(self, eio_sid):
        self.closed.append(eio_sid)
        del self.eio.sockets[eio_sid]

    def start_background_task(self, target):
        self.started.append(target)
        return target

    def open(self, eio_sid, **environ):
        self.eio.sockets[eio_sid] = object()
        return self.eio.handlers["connect"](eio_sid, environ)


def test_only_connections_that_never_connected_are_closed_once_overdue():
    clock = [100.0]
    server = Server()
    deadline = ConnectDeadline(server, seconds=10, clock=lambda: clock[0]).install()
    server.open("silent")
    server.open("connected")
    server.connected.add("connected")
    clock[0] = 105.0
    server.open("late")
    server.open("gone")
    del server.eio.sockets["gone"]  # its client left by itself

    assert deadline.close_overdue(109.9) == 0
    assert deadline.close_overdue(110.0) == 1 and server.closed == ["silent"]
    assert deadline.close_overdue(200.0) == 1 and server.closed == ["silent", "late"]
    assert not deadline.pending


def test_a_refused_connection_is_not_tracked_and_one_sweeper_serves_all():
    server = Server()
    deadline = ConnectDeadline(server, seconds=10).install()
    assert server.open("refused", refuse=True) is False
    assert not deadline.pending and not server.started
    server.open("a")
    server.open("b")
    assert len(deadline.pending) == 2 and len(server.started) == 1


def test_a_connect_that_arrives_after_the_deadline_closed_its_session_is_dropped_quietly():
    # python-socketio's own Server (5.18.1): a message handler that waited for its turn (under
    # load, in a green thread) while the sweeper closed its session found no environ: KeyError
    import socketio

    server = socketio.Server(async_mode="threading")
    server.on("connect", lambda sid, environ, auth: True)
    ConnectDeadline(server, seconds=10).install()
    handlers = server.eio.handlers
    handlers["connect"]("late", {"QUERY_STRING": ""})
    handlers["disconnect"]("late", server.reason.SERVER_DISCONNECT)  # what eio.disconnect does
    assert handlers["message"]("late", '0{"token": "x"}') is None
    assert server.manager.sid_from_eio_sid("late", "/") is None

    handlers["connect"]("on-time", {"QUERY_STRING": ""})
    handlers["message"]("on-time", '0{"token": "x"}')
    assert server.manager.sid_from_eio_sid("on-time", "/") is not None
