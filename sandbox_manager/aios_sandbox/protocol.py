"""Framing of the supervisor's conversation over Docker's attached, multiplexed stdio."""

import json
import struct

HEADER = struct.Struct(">BxxxI")  # stream id (1 stdout, 2 stderr), payload length
STDOUT, STDERR = 1, 2


def encode_request(request: dict) -> bytes:
    return (json.dumps(request, separators=(",", ":")) + "\n").encode()


class BadFrame(ValueError):
    """The supervisor wrote a stdout line that is not a JSON object: it cannot be trusted."""


def _frame(line: bytes) -> dict:
    try:
        frame = json.loads(line)
    except ValueError:
        frame = None
    if not isinstance(frame, dict):
        raise BadFrame("not a frame: " + line[:200].decode(errors="replace"))
    return frame


class FrameDecoder:
    """Turns the raw attached stream into the supervisor's JSON frames (from stdout)
    and its diagnostics (from stderr)."""

    def __init__(self) -> None:
        self._raw = bytearray()
        self._line = bytearray()
        self.diagnostics = bytearray()

    def feed(self, data: bytes) -> list[dict]:
        self._raw += data
        while len(self._raw) >= HEADER.size:
            stream, size = HEADER.unpack_from(self._raw)
            if len(self._raw) < HEADER.size + size:
                break
            payload = bytes(self._raw[HEADER.size:HEADER.size + size])
            del self._raw[:HEADER.size + size]
            if stream == STDOUT:
                self._line += payload
            else:
                self.diagnostics = (self.diagnostics + payload)[-8192:]
        frames = []
        while True:
            end = self._line.find(b"\n")
            if end < 0:
                return frames
            line = bytes(self._line[:end])
            del self._line[:end + 1]
            if line.strip():
                frames.append(_frame(line))
