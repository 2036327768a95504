"""Metrics end to end: Debian's Prometheus server scrapes a real stack (gunicorn web, Celery
prefork worker with its exporter, sandbox manager on dockerd), and PromQL over its HTTP API
counts the tasks just run, by kind and status, exactly."""

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from .stack import (RedisServer, TaskListener, backend_env, rest_client, start_web,
                    start_worker, wait_for_task)
from .support import free_port, wait_until

SCRAPE_TOKEN = "it-metrics-token-0123456789"
SCRAPE_INTERVAL = "1s"


def scrape_config(web: str, worker: str, manager: str, manager_token: str) -> str:
    def job(name: str, target: str, token: str) -> str:
        return (f"  - job_name: {name}\n    authorization: {{credentials: '{token}'}}\n"
                f"    static_configs: [{{targets: ['{target}']}}]\n")
    return (f"global: {{scrape_interval: {SCRAPE_INTERVAL}, evaluation_interval: 1s}}\n"
            "scrape_configs:\n" + job("web", web, SCRAPE_TOKEN)
            + job("worker", worker, SCRAPE_TOKEN) + job("sandbox-manager", manager, manager_token))


@pytest.fixture
def prometheus_at():
    """start(config) -> the base URL of a Prometheus server scraping as config says."""
    if not shutil.which("prometheus"):
        pytest.fail("Debian's prometheus is missing: scripts/ensure-prometheus.sh installs it "
                    "(scripts/with-services.sh runs it)")
    started = []

    def start(config: str) -> str:
        folder = Path(tempfile.mkdtemp(prefix="aios-prometheus-"))
        (folder / "prometheus.yml").write_text(config)
        port = free_port()
        with (folder / "log").open("wb") as log:
            proc = subprocess.Popen(
                ["prometheus", f"--config.file={folder / 'prometheus.yml'}",
                 f"--storage.tsdb.path={folder / 'data'}",
                 f"--web.listen-address=127.0.0.1:{port}"],
                stdout=log, stderr=subprocess.STDOUT)
        started.append((proc, folder))
        url = f"http://127.0.0.1:{port}"

        def ready():
            assert proc.poll() is None, (folder / "log").read_text()
            try:
                return httpx.get(url + "/-/ready", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False
        wait_until(ready, 20, "prometheus to be ready")
        return url

    yield start
    for proc, folder in started:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(folder, ignore_errors=True)


def query(prometheus: str, promql: str) -> dict:
    """{label values: value} of an instant vector query, over the HTTP API."""
    response = httpx.get(prometheus + "/api/v1/query", params={"query": promql}, timeout=5)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "success", body
    return {tuple(sorted(r["metric"].items())): float(r["value"][1])
            for r in body["data"]["result"]}


def settles_at(prometheus: str, promql: str, expected: dict, timeout: float = 15) -> dict:
    """The query's answer once it equals `expected` (scrapes come every second), else the
    last one: the caller's assert then shows the difference."""
    deadline, got = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        got = query(prometheus, promql)
        if got == expected:
            break
        time.sleep(0.5)
    return got


def by(**labels) -> tuple:
    return tuple(sorted(labels.items()))


def test_prometheus_counts_the_tasks_just_run_by_kind_and_status(spawn_manager, prometheus_at):
    manager = spawn_manager()  # its own: its counts are this test's alone
    redis = RedisServer().start()
    exporter_port = free_port()
    env = backend_env(redis.url, manager, metrics_token=SCRAPE_TOKEN,
                      worker_metrics_port=exporter_port)
    services = []
    try:
        services.append(start_worker(env, "w-metrics"))
        services.append(web := start_web(env, "web-metrics"))
        exporter = f"http://127.0.0.1:{exporter_port}/metrics"
        wait_until(lambda: _answers(exporter), 15, "the worker's metrics exporter")
        refused = httpx.get(exporter, headers={"Authorization": f"Bearer {env['AIOS_API_TOKEN']}"})
        assert refused.status_code == 401 and refused.json()["error"]["code"] == "unauthorized"
        assert httpx.get(web.url + "/metrics").status_code == 401

        prometheus = prometheus_at(scrape_config(
            web.url.removeprefix("http://"), f"127.0.0.1:{exporter_port}",
            manager.url.removeprefix("http://"), manager.token))
        ups = {"web": 1.0, "worker": 1.0, "sandbox-manager": 1.0}
        assert _ups(prometheus) == ups

        listener = TaskListener(web.url).connect()  # submits over Socket.IO: live events
        with rest_client(web) as rest:
            echo_ids = [listener.call("task:submit", {"kind": "echo", "input": {"text": str(i)}}
                                      )["task_id"] for i in range(3)]
            code_ids = [rest.post("/api/tasks", json={"kind": "code", "input": body}).json()
                        ["task_id"] for body in (
                            {"language": "python", "code": "print(6*7)"},
                            {"language": "python", "code": "print(1)"},
                            # egress is off on this manager: refused, so the task fails
                            {"language": "python", "code": "print(2)", "network": "egress"})]
            ended = [wait_for_task(rest, task_id)["status"] for task_id in echo_ids + code_ids]
        listener.close()
        assert ended == ["succeeded"] * 5 + ["failed"]

        # Each target is scraped on its own clock: every answer is awaited until it settles
        expected = {
            "sum by (kind, status) (aios_tasks_total)": {
                by(kind="echo", status="succeeded"): 3, by(kind="code", status="succeeded"): 2,
                by(kind="code", status="failed"): 1},
            "sum by (kind) (aios_tasks_submitted_total)": {by(kind="echo"): 3, by(kind="code"): 3},
            'sum by (status) (aios_http_requests_total{route="/api/tasks",method="POST"})': {
                by(status="202"): 3},
            "sum by (kind) (aios_task_duration_seconds_count)": {
                by(kind="echo"): 3, by(kind="code"): 3},
            # the refused one never ran: two one-shot runs
            "sum by (mode, result) (aios_sandbox_runs_total)": {
                by(mode="oneshot", result="ok"): 2},
        }
        for promql, counts in expected.items():
            assert settles_at(prometheus, promql, counts) == counts, promql
        lag = query(prometheus, "sum(aios_event_delivery_lag_seconds_count)")
        assert lag[()] >= 3  # each echo's running, result and final status went out live
        assert query(prometheus, "sum(aios_sockets_connected)") != {}
    finally:
        for service in reversed(services):
            service.stop()
        redis.kill()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 401
    except httpx.HTTPError:
        return False


def _ups(prometheus: str) -> dict:
    """{job: up} once every target was scraped once."""
    def scraped():
        return len(query(prometheus, "up")) == 3
    wait_until(scraped, 10, "a first scrape of every target")
    return {dict(labels)["job"]: value for labels, value in query(prometheus, "up").items()}
