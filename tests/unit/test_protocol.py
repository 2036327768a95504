import json
import re
import struct

import pytest

from aios_sandbox.protocol import BadFrame, FrameDecoder, encode_request


def frame(stream: int, payload: bytes) -> bytes:
    return struct.pack(">BxxxI", stream, len(payload)) + payload


def test_lines_split_across_frames_and_reads_are_reassembled():
    body = json.dumps({"t": "o", "s": 1, "d": "héllo"}).encode() + b"\n" + b'{"t":"done"}\n'
    raw = frame(1, body[:7]) + frame(1, body[7:20]) + frame(1, body[20:])
    decoder = FrameDecoder()
    frames = []
    for i in range(0, len(raw), 3):  # worst case: tiny socket reads
        frames += decoder.feed(raw[i:i + 3])
    assert frames == [{"t": "o", "s": 1, "d": "héllo"}, {"t": "done"}]


def test_stderr_is_kept_as_diagnostics_not_frames():
    decoder = FrameDecoder()
    assert decoder.feed(frame(2, b"Traceback: boom\n")) == []
    assert b"boom" in decoder.diagnostics


def test_encode_request_is_one_line():
    line = encode_request({"op": "run", "code": "print(1)\nprint(2)"})
    assert line.endswith(b"\n") and line.count(b"\n") == 1


def test_a_line_that_is_not_a_json_object_is_refused_naming_it():
    for line in (b"stub\n", b"[1, 2]\n"):
        with pytest.raises(BadFrame, match=r"not a frame: " + re.escape(line.decode().strip())):
            FrameDecoder().feed(frame(1, line))
