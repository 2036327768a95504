"""eventlet's WebSocket reader, mended (eventlet 0.41.3, its latest release). Imported only by
server_fixes.install() under the eventlet worker: it imports eventlet, which the gevent web
and the Celery worker never load.

Every message of every Socket.IO client passes through RFC6455WebSocket. Three fixes:

- Unmasking at C speed. Clients mask every frame they send, and eventlet XORs the payload
  with the mask one byte at a time in Python (RFC6455WebSocket._apply_mask): 171 us per
  KiB, 254 ms per MiB measured here, while the one web process serves nobody else.
  Without the fix a client sending a few MiB stalls every other client, and a stream of
  such messages starves gunicorn's heartbeat until gunicorn kills the worker, dropping
  every client. wsproto's masker (a dependency of python-engineio already) does the same
  XOR with bytes.translate: about 2 ms per MiB.
- A bound on the whole message, not only on each frame (RFC6455WebSocket.Message).
  eventlet checks every frame against max_frame_length (engine.io passes
  AIOS_MAX_REQUEST_BYTES) but gathers the frames of a fragmented message without limit,
  and engine.io refuses a message only once it is whole: without the fix a client, before
  it even authenticates, can make the process hold gigabytes. The connection is now closed
  with 1009 (message too big) as soon as a message passes the limit.
- A lingering close when the reader ends the connection (lingering_close.py): the client
  still sending its too big message reads the 1009, not a reset. engine.io's writer's close
  afterwards is then nothing, not a "socket shutdown error" in the log.

Under gevent the first two are not needed as such (server_fixes.py): simple-websocket reads
frames with wsproto already, and its own bound on a message is given there; the third has
its counterpart there (LingeringServer).
"""

import warnings

# eventlet's deprecation notice (printed when it is first imported) is nothing a user can act
# on: the design runs on eventlet, in bug-fix-only maintenance. Set before the import below.
warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

from eventlet.websocket import FailedConnectionError, RFC6455WebSocket  # noqa: E402
from wsproto.frame_protocol import XorMaskerSimple  # noqa: E402

from .lingering_close import linger  # noqa: E402

_EventletMessage = RFC6455WebSocket.Message
_eventlet_close = RFC6455WebSocket.close


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


def close(self, close_data=None):
    """RFC6455WebSocket.close, lingering when its reader closes. eventlet passes close_data
    only from the reader, having failed the connection (1009, 1002, 1011) or answering the
    client's close. Without it, engine.io's writer is closing while the reader may be waiting
    on the same socket, which only one green thread may read: eventlet's own close then,
    unless the reader closed already (engine.io's writer closes after it on every client's
    disconnect, and eventlet would log a shutdown error, EBADF, each time)."""
    if close_data is None:
        if not getattr(self, "closed_by_reader", False):
            _eventlet_close(self)
        return
    try:
        self._send_closing_frame(close_data=close_data, ignore_send_errors=True)
        linger(self.socket)
    finally:
        self.closed_by_reader = True
        self.socket.close()


def mend_eventlet_websocket() -> None:
    """Install the three fixes (process-wide, idempotent)."""
    RFC6455WebSocket._apply_mask = staticmethod(unmask)
    RFC6455WebSocket.Message = BoundedMessage
    RFC6455WebSocket.close = close
