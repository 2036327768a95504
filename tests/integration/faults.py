"""Faults made for real: a loopback TCP proxy between a process and Redis that can stall
(hold every byte, both ways, for as long as asked), or answer the one request that carries
a given command with an error of Redis's own in its place (Redis is never asked)."""

import select
import socket
import threading
import time
from typing import Optional


class TcpProxy:
    def __init__(self, target_port: int, target_host: str = "127.0.0.1"):
        self.target = (target_host, target_port)
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self._running = threading.Event()
        self._running.set()  # cleared: stalled
        self._refuse: Optional[tuple[bytes, bytes]] = None
        self.refused = 0
        self._closed = False
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True, name="tcp-proxy").start()

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def stall(self) -> None:
        """From now on nothing moves, either way, until resume()."""
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def refuse_once(self, marker: bytes, error: bytes) -> None:
        """The next request that carries `marker` gets the RESP `error` (e.g. b"-OOM ...")
        instead of reaching Redis."""
        self._refuse = (marker, error)

    def close(self) -> None:
        self._closed = True
        self._running.set()
        with self._lock:
            sockets = [self.server, *self._sockets]
        for sock in sockets:
            try:
                sock.close()
            except OSError:
                pass

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets |= {client, upstream}
            threading.Thread(target=self._pump, args=(client, upstream, True),
                             daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False),
                             daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, to_redis: bool) -> None:
        try:
            while not self._closed:
                ready, _, _ = select.select([source], [], [], 0.1)
                if not ready:
                    continue
                data = source.recv(65536)
                if not data:
                    break
                while not self._running.is_set() and not self._closed:
                    time.sleep(0.01)  # stalled: hold it
                refuse = self._refuse
                if to_redis and refuse is not None and refuse[0] in data:
                    self._refuse = None
                    self.refused += 1
                    source.sendall(refuse[1] + b"\r\n")  # one request, one reply
                    continue
                sink.sendall(data)
        except (OSError, ValueError):  # ValueError: select() on a socket the other pump closed
            pass
        for sock in (source, sink):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
