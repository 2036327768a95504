"""The web's REST contract (docs/api.md) in process: create_app() against a real redis-server,
through Flask's test_client. No gunicorn, no eventlet, no Celery worker: a submitted task only
becomes a message on the broker's list in Redis, which is what the web is responsible for.
The same contract over a real gunicorn with workers is tests/integration/test_pipeline.py."""

import base64
import json
import logging
import os

import pytest

from aios.settings import load_settings
from aios.web import create_app, socketio
from aios.web.state import web_state
from tests.integration.support import free_port

TOKEN = "domain-api-token-0123456789"
MAX_REQUEST_BYTES = 64 << 10
MAX_INPUT_BYTES = 16 << 10
QUEUE = "celery"  # Celery's default queue: a Redis list on the broker


@pytest.fixture
def app(redis_url, monkeypatch, tmp_path):
    for key in list(os.environ):
        if key.startswith(("AIOS_", "SANDBOX_", "REDIS_", "CELERY_")) or key == "SECRET_KEY":
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)  # no developer's .env
    for key, value in {"AIOS_API_TOKEN": TOKEN, "SECRET_KEY": "s" * 32, "REDIS_URL": redis_url,
                       "SANDBOX_MANAGER_TOKEN": "m" * 16,
                       # nobody listens there: /health names it, nothing else calls it
                       "SANDBOX_MANAGER_URL": f"http://127.0.0.1:{free_port()}",
                       "AIOS_MAX_REQUEST_BYTES": str(MAX_REQUEST_BYTES),
                       "AIOS_MAX_INPUT_BYTES": str(MAX_INPUT_BYTES)}.items():
        monkeypatch.setenv(key, value)
    web = create_app(load_settings(), async_mode="threading")
    yield web
    state = web_state(web)
    state.redis.close()
    if socketio.server.manager.redis is not None:  # Socket.IO's queue publisher
        socketio.server.manager.redis.close()
    state.celery.close()


@pytest.fixture
def client(app, caplog):
    caplog.set_level(logging.ERROR, logger="aios.web.errors")
    yield app.test_client()
    # No handler failed: errors.py logs "unhandled error" for what becomes a 500
    assert not [r for r in caplog.records if r.name == "aios.web.errors"]


def auth(token: str = TOKEN) -> dict:
    return {"Authorization": f"Bearer {token}"}


def json_error(response, status: int, code: str) -> str:
    """The documented error body, {"error": {"code", "message"}}, never a traceback."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"error"} and body["error"]["code"] == code
    assert body["error"]["message"] and "Traceback" not in response.get_data(as_text=True)
    return body["error"]["message"]


def broker_messages(redis_client) -> list[dict]:
    """The task messages waiting on the broker, as a worker would take them."""
    return [json.loads(raw) for raw in redis_client.lrange(QUEUE, 0, -1)]


def test_create_app_installs_no_server_fix(app):
    # The fixes of eventlet's and engine.io's internals are the web entry point's
    # (app.py -> aios/web/server_fixes.py): create_app alone serves a plain WSGI process.
    assert type(app.wsgi_app).__name__ != "LeanWebSocket"
    assert not hasattr(socketio.server.eio.handlers["connect"], "connect_deadline")
    assert socketio.server.async_mode == "threading"


def test_health_needs_no_token_and_names_what_is_missing(client):
    response = client.get("/health")
    assert response.status_code == 503  # no Celery worker, no sandbox manager here
    body = response.get_json()
    assert body["status"] == "unavailable" and body["elapsed_ms"] < 1000
    assert body["checks"]["redis"]["ok"] is True
    assert body["checks"]["workers"] == {"ok": False, "error": "no Celery worker answered a ping"}
    assert body["checks"]["sandbox_manager"]["ok"] is False
    assert body["checks"]["sandbox_manager"]["error"]


@pytest.mark.parametrize("headers", [{}, auth("wrong-token-0123456789"), {"Authorization": TOKEN}])
@pytest.mark.parametrize("method, path", [("POST", "/api/tasks"), ("GET", "/api/tasks"),
                                          ("GET", "/api/tasks/0123456789abcdef"),
                                          ("POST", "/api/tasks/0123456789abcdef/cancel"),
                                          ("GET", "/api/sessions")])
def test_the_api_needs_the_token(client, redis_client, headers, method, path):
    response = client.open(path, method=method, headers=headers, json={})
    assert "Bearer $AIOS_API_TOKEN" in json_error(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert not broker_messages(redis_client)


@pytest.mark.parametrize("body, named", [
    ({"kind": "cobol", "input": {}}, "cobol"),
    ({"kind": "echo", "input": {"words": "x"}}, "text"),
    ({"kind": "echo", "input": {"text": 7}}, "text"),
    ({"kind": "code", "input": {"language": "ruby", "code": "1"}}, "language"),
    ({"kind": "echo", "input": {"text": "x"}, "extra": 1}, "extra"),
    ({"kind": "echo", "input": {"text": "x"}, "task_id": "../../x"}, "task_id"),
])
def test_a_bad_submit_is_a_422_naming_the_problem(client, redis_client, body, named):
    message = json_error(client.post("/api/tasks", json=body, headers=auth()),
                         422, "invalid_request")
    assert named in message
    assert not broker_messages(redis_client) and not redis_client.keys("aios:task:*")


def test_an_echo_task_is_recorded_queued_and_put_on_the_broker(client, redis_client):
    response = client.post("/api/tasks", json={"kind": "echo", "input": {"text": "hello"}},
                           headers=auth())
    assert response.status_code == 202
    submitted = response.get_json()
    task_id = submitted.pop("task_id")
    assert submitted == {"status": "queued", "created": True}

    task = client.get(f"/api/tasks/{task_id}", headers=auth()).get_json()
    assert (task["task_id"], task["kind"], task["status"], task["attempt"]) == \
        (task_id, "echo", "queued", 0)
    assert task["result"] is None and task["error"] is None
    events = client.get(f"/api/tasks/{task_id}/events", headers=auth()).get_json()
    assert [(e["seq"], e["type"], e["data"]) for e in events["events"]] == \
        [(1, "status", {"status": "queued"})]
    assert events["next_after"] is None
    listed = client.get("/api/tasks", headers=auth()).get_json()["tasks"]
    assert [t["task_id"] for t in listed] == [task_id]

    [message] = broker_messages(redis_client)  # one message, for the worker to take
    assert message["headers"]["id"] == task_id
    assert message["headers"]["task"] == "aios.run_task"
    assert json.loads(base64.b64decode(message["body"]))[0] == [task_id]


def test_a_task_id_submitted_twice_is_queued_once(client, redis_client):
    body = {"kind": "echo", "input": {"text": "once"}, "task_id": "idem-0123456789"}
    first = client.post("/api/tasks", json=body, headers=auth())
    second = client.post("/api/tasks", json=body, headers=auth())
    assert (first.status_code, second.status_code) == (202, 202)
    assert first.get_json()["created"] is True and second.get_json()["created"] is False
    assert len(broker_messages(redis_client)) == 1


def test_a_queued_task_is_cancelled_at_once(client):
    task_id = client.post("/api/tasks", json={"kind": "echo", "input": {"text": "never"}},
                          headers=auth()).get_json()["task_id"]
    response = client.post(f"/api/tasks/{task_id}/cancel", headers=auth())
    assert response.status_code == 202
    assert response.get_json() == {"task_id": task_id, "status": "cancelled"}
    task = client.get(f"/api/tasks/{task_id}", headers=auth()).get_json()
    assert task["status"] == "cancelled" and task["attempt"] == 0
    events = client.get(f"/api/tasks/{task_id}/events", headers=auth()).get_json()["events"]
    assert [e["data"]["status"] for e in events] == ["queued", "cancelled"]
    # Cancelling again changes nothing
    again = client.post(f"/api/tasks/{task_id}/cancel", headers=auth())
    assert again.status_code == 202 and again.get_json()["status"] == "cancelled"


def test_oversized_bodies_and_inputs_are_413(client, redis_client):
    huge = b'{"kind": "echo", "input": {"text": "' + b"x" * MAX_REQUEST_BYTES + b'"}}'
    response = client.post("/api/tasks", data=huge, headers=auth(),
                           content_type="application/json")
    json_error(response, 413, "too_large")
    big_input = {"kind": "echo", "input": {"text": "x" * MAX_INPUT_BYTES}}
    message = json_error(client.post("/api/tasks", json=big_input, headers=auth()),
                         413, "too_large")
    assert str(MAX_INPUT_BYTES) in message
    assert not broker_messages(redis_client)


def test_unknown_routes_and_tasks_and_odd_requests_are_json_errors(client):
    json_error(client.get("/api/nothing", headers=auth()), 404, "not_found")
    json_error(client.get("/nothing"), 404, "not_found")
    json_error(client.get("/api/tasks/0123456789abcdef", headers=auth()), 404, "not_found")
    json_error(client.get("/api/tasks/0123456789abcdef/events", headers=auth()),
               404, "not_found")
    json_error(client.post("/api/tasks/0123456789abcdef/cancel", headers=auth()),
               404, "not_found")
    json_error(client.delete("/api/tasks/0123456789abcdef", headers=auth()),
               405, "method_not_allowed")
    json_error(client.post("/api/tasks", data="kind=echo", headers=auth(),
                           content_type="text/plain"), 415, "unsupported_media_type")
    json_error(client.post("/api/tasks", data='{"kind": ', headers=auth(),
                           content_type="application/json"), 400, "malformed_json")
    json_error(client.get("/api/tasks", query_string={"limit": "many"}, headers=auth()),
               400, "bad_request")
    json_error(client.get("/api/tasks/0123456789abcdef/events", query_string={"after": -1},
                          headers=auth()), 422, "invalid_request")


def test_a_redis_nobody_serves_is_a_503_with_retry_after(app, client):
    state = web_state(app)
    state.redis.connection_pool.connection_kwargs["port"] = free_port()
    state.redis.connection_pool.disconnect()
    response = client.get("/api/tasks/0123456789abcdef", headers=auth())
    json_error(response, 503, "unavailable")
    assert response.headers["Retry-After"]


@pytest.mark.parametrize("auth_data", [None, {"token": "wrong-token-0123456789"}, "a string"])
def test_a_refused_socketio_connect_says_why_in_the_error_shape(app, auth_data):
    """What a client's connect_error gets (docs/api.md): {"message", "data": {"code",
    "message"}}, python-socketio's CONNECT_ERROR packet for these arguments."""
    from flask_socketio import ConnectionRefusedError

    from aios.web import sockets
    with app.test_request_context(), pytest.raises(ConnectionRefusedError) as refused:
        sockets.connect(auth_data)
    args = refused.value.error_args
    assert args == {"message": "connect with auth={'token': AIOS_API_TOKEN}",
                    "data": {"code": "unauthorized", "message": args["message"]}}
