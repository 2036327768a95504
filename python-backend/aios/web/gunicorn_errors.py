"""gunicorn answers what it refuses before the app sees it (a request line over
limit_request_line, too many or too large headers, a malformed request) with its own HTML
page. Every answer of the API is JSON ({"error": {"code", "message"}}, errors.py), so those
are JSON too: gunicorn.util.write_error, which gunicorn.workers.base.Worker.handle_error calls
(checked on gunicorn 25.3.0), is replaced in the worker process that serves the app."""

import json

from gunicorn import util

from .errors import CODES


def write_json_error(sock, status_int: int, reason: str, mesg: str) -> None:
    body = json.dumps({"error": {"code": CODES.get(status_int, "error"),
                                 "message": mesg or reason}}).encode()
    head = (f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
    util.write_nonblock(sock, head.encode("latin-1") + body)


def install() -> None:
    util.write_error = write_json_error
