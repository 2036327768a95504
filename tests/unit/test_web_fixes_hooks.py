"""The upstream internals that aios/web/server_fixes.py and GatedRedisManager rely on, checked
through the installed eventlet, simple-websocket (gevent's WebSocket), python-engineio and
python-socketio themselves: an upgrade that moves one of them fails here, not in production."""

import base64
import io
import os
import socket
import struct
import threading
from types import SimpleNamespace

import pytest
import socketio

pytestmark = pytest.mark.filterwarnings(r"ignore:\s*Eventlet is deprecated")


def client_frame(opcode: int, payload: bytes, final: bool) -> bytes:
    """A masked frame, as a client sends it (RFC 6455, 5.2), of a payload under 126 bytes."""
    mask = os.urandom(4)
    masked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
    return bytes([(0x80 if final else 0) | opcode, 0x80 | len(payload)]) + mask + masked


@pytest.fixture
def websocket_pair():
    """eventlet's server-side WebSocket on one end of a socket pair, the client's end."""
    from eventlet.websocket import RFC6455WebSocket

    from aios.web.server_fixes import mend_eventlet_websocket
    mend_eventlet_websocket()
    server, client = socket.socketpair()
    server.settimeout(5)
    client.settimeout(5)
    yield RFC6455WebSocket(server, {}, max_frame_length=10), client
    server.close()
    client.close()


def test_eventlets_reader_unmasks_through_the_fix(websocket_pair):
    ws, client = websocket_pair
    client.sendall(client_frame(1, b"hel", final=False) + client_frame(0, b"lo!", final=True))
    assert ws.wait() == "hello!"


def closed_with(client: socket.socket) -> int:
    """The status of the close frame the client reads next."""
    close = client.recv(64)
    assert close[0] == 0x88, close
    return struct.unpack("!H", close[2:4])[0]


def lingers_until_the_client_closes(client: socket.socket, reader: threading.Thread) -> bool:
    """After the close frame: the end of the stream (the server's side shut), while the
    server still reads and discards what the client sends, until the client closes too."""
    assert client.recv(64) == b""
    client.sendall(b"the rest of the message" * 100)
    assert reader.is_alive()
    client.shutdown(socket.SHUT_WR)
    reader.join(5)
    return not reader.is_alive()


def test_eventlets_reader_closes_with_1009_a_fragmented_message_past_the_bound_and_lingers(
        websocket_pair):
    ws, client = websocket_pair
    # Each fragment is under max_frame_length (10), the message is not: eventlet alone would
    # return all 12 bytes.
    client.sendall(client_frame(1, b"abcdef", final=False) + client_frame(0, b"ghijkl", True))
    waited = []
    reader = threading.Thread(target=lambda: waited.append(ws.wait()))
    reader.start()
    assert closed_with(client) == 1009
    assert lingers_until_the_client_closes(client, reader)
    assert waited == [None]


def test_engineios_close_after_the_readers_own_logs_no_shutdown_error():
    from eventlet.websocket import RFC6455WebSocket

    from aios.web.server_fixes import mend_eventlet_websocket
    mend_eventlet_websocket()
    server, client = socket.socketpair()
    client.settimeout(5)
    log = io.StringIO()  # eventlet's log: wsgi.errors, gunicorn's stderr when served
    ws = RFC6455WebSocket(server, {"wsgi.errors": log}, max_frame_length=10)
    client.sendall(client_frame(8, struct.pack("!H", 1000), final=True))  # the client's close
    client.shutdown(socket.SHUT_WR)
    assert ws.wait() is None  # the reader answers, and closes the socket
    ws.close()  # then engine.io's writer, as every client's disconnect ends
    assert closed_with(client) == 1000
    assert log.getvalue() == ""  # eventlet alone: "socket shutdown error: [Errno 9] ..."
    client.close()


def test_lean_websocket_hands_the_socket_over_and_hides_the_compression_offer():
    from aios.web.server_fixes import LeanWebSocket
    seen = {}
    app = LeanWebSocket(lambda environ, start_response: seen.update(environ) or [])
    sock = object()
    app({"HTTP_UPGRADE": "websocket", "gunicorn.socket": sock,
         "HTTP_SEC_WEBSOCKET_EXTENSIONS": "permessage-deflate"}, None)
    assert seen["eventlet.input"].get_socket() is sock
    assert "gunicorn.socket" not in seen and "HTTP_SEC_WEBSOCKET_EXTENSIONS" not in seen
    app({"PATH_INFO": "/api/tasks", "gunicorn.socket": sock}, None)  # plain HTTP: untouched
    assert seen["gunicorn.socket"] is sock


def test_lean_websocket_under_gevent_holds_the_socket_aside_for_simple_websocket():
    from aios.web.server_fixes import HELD_SOCKET, LeanWebSocket
    seen = {}
    app = LeanWebSocket(lambda environ, start_response: seen.update(environ) or [], "gevent")
    sock = object()
    app({"HTTP_UPGRADE": "websocket", "gunicorn.socket": sock,
         "HTTP_SEC_WEBSOCKET_EXTENSIONS": "permessage-deflate"}, None)
    # engine.io's middleware defines its Input class only where it sees gunicorn.socket
    assert seen[HELD_SOCKET] is sock and "eventlet.input" not in seen
    assert "gunicorn.socket" not in seen and "HTTP_SEC_WEBSOCKET_EXTENSIONS" not in seen


@pytest.fixture
def simple_websocket_pair():
    """simple-websocket's server (what engine.io's gevent driver runs; here on threads) on one
    end of a socket pair as under gunicorn, the client's end, and the handshake's answer."""
    import simple_websocket
    made = []

    def make(max_message_size=None, extensions=None, server_class=simple_websocket.Server):
        server, client = socket.socketpair()
        client.settimeout(5)
        made.extend([server, client])
        environ = {"gunicorn.socket": server, "HTTP_HOST": "127.0.0.1",
                   "HTTP_UPGRADE": "websocket", "HTTP_CONNECTION": "Upgrade",
                   "HTTP_SEC_WEBSOCKET_VERSION": "13",
                   "HTTP_SEC_WEBSOCKET_KEY": base64.b64encode(os.urandom(16)).decode()}
        if extensions:
            environ["HTTP_SEC_WEBSOCKET_EXTENSIONS"] = extensions
        ws = server_class(environ, max_message_size=max_message_size)
        assert ws.mode == "gunicorn"  # it then ends the request: gunicorn writes nothing more
        return ws, client, client.recv(4096)
    yield make
    for sock in made:
        sock.close()


def test_simple_websocket_accepts_compression_when_offered_so_the_offer_is_hidden(
        simple_websocket_pair):
    _, _, offered = simple_websocket_pair(extensions="permessage-deflate")
    _, _, plain = simple_websocket_pair()
    assert b" 101 " in offered and b"permessage-deflate" in offered.lower()
    assert b" 101 " in plain and b"permessage-deflate" not in plain.lower()


def test_simple_websocket_gathers_a_message_without_limit_unless_given_the_bound(
        simple_websocket_pair):
    import simple_websocket
    message = client_frame(1, b"abcdef", final=False) + client_frame(0, b"ghijkl", True)
    unbounded, client, _ = simple_websocket_pair()  # engine.io's gevent driver gives none
    client.sendall(message)
    assert unbounded.receive(timeout=5) == "abcdefghijkl"
    bounded, client, _ = simple_websocket_pair(max_message_size=10)  # server_fixes gives it
    client.sendall(message)
    assert closed_with(client) == 1009
    try:  # None or ConnectionClosed, as its reader thread ends: engine.io's wait() gives None
        refused = bounded.receive(timeout=5)
    except simple_websocket.ConnectionClosed:
        refused = None
    assert refused is None and not bounded.connected


def test_simple_websocket_lingers_after_closing_with_1009_through_the_fix(
        simple_websocket_pair):
    from aios.web.server_fixes import LingeringServer
    ws, client, _ = simple_websocket_pair(max_message_size=10, server_class=LingeringServer)
    client.sendall(client_frame(1, b"abcdef", final=False) + client_frame(0, b"ghijkl", True))
    assert closed_with(client) == 1009
    import simple_websocket
    with pytest.raises(simple_websocket.ConnectionClosed):  # engine.io's wait() gives None:
        ws.receive(timeout=5)  # its reader gets the end while this one lingers
    assert ws.lingering
    assert lingers_until_the_client_closes(client, ws.thread)


def test_the_connect_deadline_wraps_python_socketios_own_connect_handler():
    from aios.web.server_fixes import ConnectDeadline
    server = socketio.Server(async_mode="threading")
    accept = server.eio.handlers["connect"]  # python-socketio's _handle_eio_connect
    deadline = ConnectDeadline(server, seconds=10, clock=lambda: 0.0)
    deadline.sweeper = "started"  # no sweeper thread in a unit test
    deadline.install()
    wrapped = server.eio.handlers["connect"]
    assert wrapped is not accept and wrapped.connect_deadline is deadline
    wrapped("eio-1", {"PATH_INFO": "/socket.io/"})
    assert server.environ["eio-1"]["PATH_INFO"] == "/socket.io/"  # python-socketio's ran
    assert list(deadline.pending) == [(10.0, "eio-1")]
    server.eio.sockets["eio-1"] = SimpleNamespace()
    server.eio.disconnect = lambda eio_sid: server.eio.sockets.pop(eio_sid)
    assert server.manager.sid_from_eio_sid("eio-1", "/") is None  # never joined: closed
    assert deadline.close_overdue(10.0) == 1 and "eio-1" not in server.eio.sockets


def test_task_events_emitted_go_through_the_gates_delivery_hook():
    from aios.tasks.keys import room
    from aios.web.gate import SubscriptionGate
    from aios.web.queue import EVENT, GatedRedisManager
    gate = SubscriptionGate(fetch=lambda task_id, after: [])
    manager = GatedRedisManager("redis://127.0.0.1:9/0", gate, channel="test")
    published, sent = [], []
    manager._publish = published.append  # no Redis here: what would go to other hosts
    server = socketio.Server(async_mode="threading", client_manager=manager)
    queued = manager.emit

    def emit(event, data, *args, **kwargs):  # what deliver() sends to one socket, recorded
        if not kwargs.get("ignore_queue"):
            return queued(event, data, *args, **kwargs)
        sent.append((kwargs["to"], event, data))

    manager.emit = emit
    sid = manager.connect("eio-1", "/")
    manager.basic_enter_room(sid, "/", room("t1"))
    gate.begin(sid, "t1", 0)
    gate.finish(sid, "t1")

    event = {"task_id": "t1", "seq": 1, "type": "status", "data": {"status": "succeeded"}}
    server.emit(EVENT, (event, dict(event, seq=1)), to=room("t1"))  # seq 1 twice: sent once

    assert sent == [(sid, EVENT, event)]
    assert published and published[0]["event"] == EVENT  # other web processes get it too
    assert not list(manager.get_participants("/", room("t1")))  # final: left the room
