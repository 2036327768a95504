"""linger() on real TCP sockets over loopback: why a server that fails a WebSocket must not
simply close while its client is still writing, and that lingering is bounded."""

import contextlib
import socket
import struct
import threading
import time

import pytest

from aios.web.lingering_close import linger


@pytest.fixture
def tcp_pair():
    """A connected (server, client) pair of TCP sockets on loopback."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
    server.settimeout(5)
    client.settimeout(5)
    yield server, client
    server.close()
    client.close()


def goodbye_to_a_client_still_writing(server, client, close) -> tuple[str, bytes]:
    """The server reads a little of what its client writes, says goodbye and closes with
    `close`, while the client writes 32 MiB whatever it hears, then reads to the end and
    closes (as a WebSocket client does): how the client's writes ended, and what it read."""
    outcome = []

    def write_then_read():
        ended, heard = "wrote all", b""
        try:
            for _ in range(32 * 16):
                client.sendall(b"x" * (64 << 10))
        except OSError as error:
            ended = type(error).__name__
        with contextlib.suppress(OSError):
            while chunk := client.recv(4096):
                heard += chunk
        client.close()
        outcome.append((ended, heard))
    writer = threading.Thread(target=write_then_read)
    writer.start()
    server.recv(4096)  # the first of what the client sends; the rest is left unread
    server.sendall(b"goodbye")
    close(server)
    writer.join(30)
    return outcome[0]


def test_closing_with_unread_data_resets_a_client_still_writing(tcp_pair):
    # What asyncio's transports (and so the websockets client) do on such a failed write is
    # stop reading: the goodbye (a close frame) in their buffer is never read.
    ended, _ = goodbye_to_a_client_still_writing(*tcp_pair, lambda sock: sock.close())
    assert ended in ("ConnectionResetError", "BrokenPipeError")


def test_lingering_lets_a_client_still_writing_finish_and_read_the_goodbye(tcp_pair):
    def linger_then_close(sock):
        linger(sock)
        sock.close()
    started = time.monotonic()
    # The goodbye, then the end of the stream (our side shut), and no reset.
    assert goodbye_to_a_client_still_writing(*tcp_pair, linger_then_close) == \
        ("wrote all", b"goodbye")
    assert time.monotonic() - started < 1.5  # over when the client closed, not at LINGER_S


def test_lingering_ends_at_its_deadline_when_the_client_never_stops(tcp_pair):
    server, client = tcp_pair
    stop = threading.Event()

    def flood():
        with contextlib.suppress(OSError):
            while not stop.is_set():
                client.sendall(b"x" * (64 << 10))
    flooder = threading.Thread(target=flood)
    flooder.start()
    started = time.monotonic()
    linger(server, seconds=0.5)
    lingered = time.monotonic() - started
    stop.set()
    server.close()
    flooder.join(10)
    assert 0.45 < lingered < 1.5


def test_lingering_on_a_connection_already_reset_returns_at_once(tcp_pair):
    server, client = tcp_pair
    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.close()  # SO_LINGER with 0 s: a reset, not a FIN
    time.sleep(0.1)
    started = time.monotonic()
    linger(server, seconds=5)
    assert time.monotonic() - started < 1
