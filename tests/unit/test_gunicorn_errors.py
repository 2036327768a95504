"""What gunicorn refuses before the app (an over-long request line, bad headers) is JSON too;
through a real gunicorn under both worker classes: test_pipeline.py."""

import json
import socket

from gunicorn import util

from aios.web import gunicorn_errors


def test_write_error_answers_json_with_the_apis_error_shape():
    left, right = socket.socketpair()
    with left, right:
        gunicorn_errors.write_json_error(left, 400, "Bad Request", "Request Line is too large")
        raw = right.recv(4096).decode()
    head, body = raw.split("\r\n\r\n", 1)
    assert head.startswith("HTTP/1.1 400 Bad Request") and "Content-Type: application/json" in head
    assert json.loads(body) == {"error": {"code": "bad_request",
                                          "message": "Request Line is too large"}}
    assert f"Content-Length: {len(body)}" in head


def test_gunicorn_still_calls_the_hook_it_replaces():
    # gunicorn.workers.base.Worker.handle_error looks write_error up on the module at each
    # error: replacing the module's attribute reaches it (gunicorn 25.3.0)
    import inspect

    from gunicorn.workers import base
    assert "util.write_error(" in inspect.getsource(base.Worker.handle_error)
    assert list(inspect.signature(util.write_error).parameters) == [
        "sock", "status_int", "reason", "mesg"]


def test_too_many_or_too_large_headers_have_a_code_of_their_own():
    left, right = socket.socketpair()
    with left, right:
        gunicorn_errors.write_json_error(left, 431, "Request Header Fields Too Large",
                                         "Error parsing headers: 'limit request headers fields'")
        body = right.recv(4096).decode().split("\r\n\r\n", 1)[1]
    assert json.loads(body)["error"]["code"] == "headers_too_large"
