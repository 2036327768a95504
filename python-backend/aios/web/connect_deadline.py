"""Close an engine.io connection that has not joined the Socket.IO namespace with a valid
token within a deadline. Engine.io connections open before any token is checked, and
python-socketio (unlike the JavaScript server's connectTimeout) keeps them for as long as
their client answers pings: without a deadline a client with no token could hold thousands
of them, each a slot of AIOS_WEB_WORKER_CONNECTIONS and ~50 KiB of the web process."""

import collections
import time

NAMESPACE = "/"


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
