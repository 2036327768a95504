"""eventlet's WebSocket reader, mended (eventlet 0.41.3, its latest release). Imported only by
server_fixes.install() under the eventlet worker: it imports eventlet, which the gevent web
and the Celery worker never load.

Every message of every Socket.IO client passes through RFC6455WebSocket. Two fixes:

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

Under gevent neither is needed as such (server_fixes.py): simple-websocket reads frames with
wsproto already, and its own bound on a message is given there.
"""

import warnings

# eventlet's deprecation notice (printed when it is first imported) is nothing a user can act
# on: the design runs on eventlet, in bug-fix-only maintenance. Set before the import below.
warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

from eventlet.websocket import FailedConnectionError, RFC6455WebSocket  # noqa: E402
from wsproto.frame_protocol import XorMaskerSimple  # noqa: E402

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
