"""LOG_FORMAT=json through the real stack (redis-server, Celery worker, gunicorn+eventlet,
the sandbox manager on dockerd): every line each service writes is one JSON object, the
task's lines carry its fields, and no token or key the run used appears anywhere."""

import json
import secrets
import subprocess

import httpx
import pytest

from .stack import (API_TOKEN, RedisServer, TaskListener, backend_env, rest_client, start_web,
                    start_worker, wait_for_task, wait_until)

PROVIDER_KEY = "sk-log-test-" + secrets.token_hex(12)
REDIS_PASSWORD = "redis-pass-" + secrets.token_hex(8)


def lines_of(service_log) -> list[dict]:
    """Each line as JSON; a line that is not fails the test, named with its service."""
    parsed = []
    for number, line in enumerate(service_log.read_text().splitlines(), 1):
        if line.strip():
            try:
                parsed.append(json.loads(line))
            except json.JSONDecodeError:
                pytest.fail(f"{service_log.name}:{number} is not JSON: {line!r}")
    return parsed


@pytest.fixture
def json_stack(spawn_manager):
    """A private stack whose Redis wants a password and whose worker holds a provider key."""
    manager = spawn_manager(LOG_FORMAT="json")
    redis = RedisServer().start()
    env = backend_env(redis.url.replace("redis://", f"redis://:{REDIS_PASSWORD}@"), manager,
                      LOG_FORMAT="json", OPENAI_API_KEY=PROVIDER_KEY,
                      OPENAI_BASE_URL="http://127.0.0.1:9/v1")
    services = []
    try:
        subprocess.run(["redis-cli", "-p", str(redis.port), "config", "set", "requirepass",
                        REDIS_PASSWORD], check=True, capture_output=True)
        services.append(start_worker(env, "w-json"))
        services.append(start_web(env, "web-json"))
        yield manager, services[0], services[1], env
    finally:
        for service in reversed(services):
            service.stop()
        redis.kill()


def test_json_logs_carry_the_task_and_never_a_secret(json_stack):
    manager, worker, web, env = json_stack
    with rest_client(web) as rest:
        response = rest.post("/api/tasks", json={"kind": "code", "input": {
            "language": "python", "code": "print(6 * 7)"}})
        assert response.status_code == 202, response.text
        task_id = response.json()["task_id"]
        assert wait_for_task(rest, task_id)["status"] == "succeeded"
    listener = TaskListener(web.url).connect()  # the token in the Socket.IO handshake
    listener.close()
    # a token where it has no business, in a URL that the access log records: masked
    assert httpx.get(f"{web.url}/health?token={API_TOKEN}", timeout=10).status_code == 200
    with manager.client() as api:  # a session: the manager's lines name its sandbox
        created = api.post("/v1/sandboxes", json={"ttl_s": 60})
        assert created.status_code == 201, created.text
        sandbox_id = created.json()["id"]
        assert api.delete(f"/v1/sandboxes/{sandbox_id}").status_code == 204
    wait_until(lambda: f"{task_id} (code) succeeded" in worker.log.read_text(), 10,
               "the worker's line for the task's end")
    web.stop()
    worker.stop()  # their shutdown lines too
    manager.stop()

    web_lines, worker_lines, manager_lines = (lines_of(s.log) for s in (web, worker, manager))
    task_lines = [line for line in worker_lines
                  if line.get("task_id") == task_id and line["logger"].startswith("aios")]
    assert len(task_lines) >= 2, worker_lines
    for line in task_lines:
        assert (line["kind"], line["attempt"]) == ("code", 1) and line["worker"], line
    assert any(line.get("task_id") == task_id and line["logger"].startswith("celery")
               for line in worker_lines), "Celery's own lines of the task"
    assert any(line.get("method") == "POST" and line.get("path") == "/api/tasks"
               and line.get("status") == 202 for line in web_lines), web_lines
    assert any("[redacted]" in line["message"] for line in web_lines)
    assert any(line.get("sandbox_id") == sandbox_id for line in manager_lines), manager_lines

    used = {"AIOS_API_TOKEN": API_TOKEN, "SECRET_KEY": env["SECRET_KEY"],
            "SANDBOX_MANAGER_TOKEN": manager.token, "OPENAI_API_KEY": PROVIDER_KEY,
            "REDIS_PASSWORD": REDIS_PASSWORD}
    for service in (web, worker, manager):
        text = service.log.read_text()
        for name, value in used.items():
            assert value not in text, f"{name} appears in {service.log}"
