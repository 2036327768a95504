"""The metrics helpers and every /metrics' refusal without its token (docs/deployment.md,
"Metrics"): the web's (Flask test client), the worker exporter's (its WSGI app) and the
sandbox manager's (FastAPI, no Docker: the lifespan does not run)."""

import io
import json
import os
import socket
import threading

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry, generate_latest

import aios.metrics as metrics
from aios.metrics import WebMetrics, WorkerMetrics
from aios.metrics.exporter import listen, metrics_app
from aios.metrics.web import count_submissions
from aios.sandbox.capacity import waiting_for_capacity
from aios.sandbox.client import SandboxError
from aios.settings import Settings
from aios.tasks.service import Submitted

TOKEN = "unit-api-token-0123456789"
SCRAPE = "unit-metrics-token-0123456789"


def sample(registry, name: str, **labels) -> float:
    value = registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def test_task_ends_count_by_kind_and_status_and_time_and_retries():
    registry = CollectorRegistry()
    worker = WorkerMetrics(registry)
    worker.task_ended("echo", "succeeded", 1, 0.02)
    worker.task_ended("echo", "succeeded", 2, 0.03)
    worker.task_ended("code", "failed", 1, 1.5)
    assert sample(registry, "aios_tasks_total", kind="echo", status="succeeded") == 2
    assert sample(registry, "aios_tasks_total", kind="code", status="failed") == 1
    assert sample(registry, "aios_task_retries_total", kind="echo") == 1
    assert sample(registry, "aios_task_retries_total", kind="code") == 0
    assert sample(registry, "aios_task_duration_seconds_count", kind="echo") == 2
    assert sample(registry, "aios_task_duration_seconds_bucket", kind="code", le="1.0") == 0
    assert sample(registry, "aios_task_duration_seconds_bucket", kind="code", le="2.5") == 1


def test_a_capacity_wait_is_observed_only_when_the_worker_counts_and_only_if_it_waited():
    busy = SandboxError("at_capacity", "full", retry_after_s=0.01)
    registry = CollectorRegistry()
    answers = iter([busy, busy, "ran"])

    def call():
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer
    metrics.use_worker_metrics(WorkerMetrics(registry))
    try:
        assert waiting_for_capacity(call, lambda *_: None, lambda s: False) == "ran"
        assert waiting_for_capacity(lambda: "at once", lambda *_: None, lambda s: False)
    finally:
        metrics.use_worker_metrics(None)
    assert sample(registry, "aios_sandbox_capacity_wait_seconds_count") == 1
    metrics.capacity_waited(1.0)  # no worker metrics: nothing, and no error


def test_requests_are_counted_by_route_template_never_the_raw_path():
    web = WebMetrics()
    web.request_done("/api/tasks/<task_id>", "GET", 200, 0.001)
    web.request_done("/api/tasks/<task_id>", "GET", 200, 0.002)
    text = generate_latest(web.registry).decode()
    assert 'aios_http_requests_total{method="GET",route="/api/tasks/<task_id>",status="200"} ' \
           '2.0' in text


def test_only_created_tasks_count_as_submitted():
    web = WebMetrics()

    class Tasks:
        created = True

        def submit(self, kind, task_input, task_id=None):
            return Submitted({"task_id": task_id, "kind": kind}, created=self.created)
    tasks = Tasks()
    count_submissions(tasks, web)
    tasks.submit("echo", {}, "t1")
    tasks.created = False  # the same task_id again: not a new task
    tasks.submit("echo", {}, "t1")
    assert sample(web.registry, "aios_tasks_submitted_total", kind="echo") == 1


def test_sockets_are_read_at_scrape_time():
    web = WebMetrics()
    connected = [3]
    web.watch_sockets(lambda: connected[0])
    assert sample(web.registry, "aios_sockets_connected") == 3
    connected[0] = 5
    assert sample(web.registry, "aios_sockets_connected") == 5


def test_the_scrape_token_is_the_metrics_token_else_the_api_token():
    base = {"AIOS_API_TOKEN": TOKEN, "secret_key": "s" * 32, "sandbox_manager_token": "m" * 16,
            "_env_file": None}
    assert Settings(**base).scrape_token == TOKEN
    assert Settings(**base, AIOS_METRICS_TOKEN=SCRAPE).scrape_token == SCRAPE


@pytest.fixture
def web_app(monkeypatch, tmp_path):
    from aios.settings import load_settings
    from aios.web import create_app
    for key in list(os.environ):
        if key.startswith(("AIOS_", "SANDBOX_", "REDIS_", "CELERY_")) or key == "SECRET_KEY":
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    for key, value in {"AIOS_API_TOKEN": TOKEN, "SECRET_KEY": "s" * 32,
                       "SANDBOX_MANAGER_TOKEN": "m" * 16, "AIOS_METRICS_TOKEN": SCRAPE,
                       "REDIS_URL": "redis://127.0.0.1:1/0"}.items():
        monkeypatch.setenv(key, value)
    # Nothing here reaches Redis: /metrics and a 404 are answered from memory
    return create_app(load_settings(), async_mode="threading")


def test_web_metrics_refuse_without_the_metrics_token(web_app):
    client = web_app.test_client()
    for headers in ({}, {"Authorization": f"Bearer {TOKEN}"}, {"Authorization": SCRAPE}):
        response = client.get("/metrics", headers=headers)
        assert response.status_code == 401
        assert response.get_json()["error"]["code"] == "unauthorized"
        assert response.headers["WWW-Authenticate"] == "Bearer"
    client.get("/no/such/page/123")
    response = client.get("/metrics", headers={"Authorization": f"Bearer {SCRAPE}"})
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert 'route="unmatched",status="404"' in text and "/no/such" not in text
    assert 'aios_http_requests_total{method="GET",route="/metrics",status="401"} 3.0' in text
    assert TOKEN not in text and SCRAPE not in text


def test_metrics_off_means_no_endpoint(web_app, monkeypatch):
    from aios.settings import load_settings
    from aios.web import create_app
    monkeypatch.setenv("AIOS_METRICS", "false")
    client = create_app(load_settings(), async_mode="threading").test_client()
    response = client.get("/metrics", headers={"Authorization": f"Bearer {SCRAPE}"})
    assert response.status_code == 404


def call_wsgi(app, path: str, token: str = "") -> tuple[str, dict, bytes]:
    seen = {}

    def start_response(status, headers):
        seen.update(status=status, headers=dict(headers))
    environ = {"PATH_INFO": path, "REQUEST_METHOD": "GET", "wsgi.input": io.BytesIO()}
    if token:
        environ["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    body = b"".join(app(environ, start_response))
    return seen["status"], seen["headers"], body


def test_the_worker_exporter_wants_its_token_and_sums_the_files(tmp_path):
    app = metrics_app(str(tmp_path), SCRAPE)
    status, headers, body = call_wsgi(app, "/metrics")
    assert status.startswith("401") and headers["Content-Type"] == "application/json"
    assert json.loads(body)["error"]["code"] == "unauthorized"
    assert call_wsgi(app, "/metrics", "wrong-token-0123456789")[0].startswith("401")
    assert call_wsgi(app, "/other", SCRAPE)[0].startswith("404")
    status, headers, body = call_wsgi(app, "/metrics", SCRAPE)
    assert status.startswith("200") and headers["Content-Type"].startswith("text/plain")


def test_the_exporter_waits_a_little_for_a_port_its_predecessor_holds():
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    held.listen()
    port = held.getsockname()[1]
    with pytest.raises(SystemExit, match="cannot listen"):
        listen("127.0.0.1", port, metrics_app("/nonexistent", SCRAPE), patience_s=0.3)
    threading.Timer(0.3, held.close).start()  # the predecessor goes meanwhile
    server = listen("127.0.0.1", port, metrics_app("/nonexistent", SCRAPE), patience_s=5)
    assert server.server_address[1] == port
    server.server_close()


def test_the_sandbox_managers_metrics_want_its_token():
    from aios_sandbox.api import create_app
    from aios_sandbox.settings import Settings as ManagerSettings
    app = create_app(ManagerSettings(manager_token="manager-token-0123456789",
                                     manager_name="unit-mgr", _env_file=None))
    client = TestClient(app)  # no `with`: the lifespan (Docker) does not run
    response = client.get("/metrics")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    response = client.get("/metrics", headers={"Authorization": "Bearer manager-token-0123456789"})
    assert response.status_code == 200
    assert 'aios_sandbox_manager_info{manager="unit-mgr"} 1.0' in response.text
    app.state.metrics.run_ended("oneshot", True, 0.05)
    app.state.metrics.pool_take(hit=False)
    text = client.get("/metrics", headers={"Authorization": "Bearer manager-token-0123456789"})
    assert 'aios_sandbox_runs_total{mode="oneshot",result="ok"} 1.0' in text.text
    assert 'aios_sandbox_pool_takes_total{result="miss"} 1.0' in text.text
