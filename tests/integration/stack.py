"""Helpers that start the real pipeline: redis-server, Celery workers, gunicorn+eventlet."""

import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import socketio

from .support import ROOT, free_port, wait_until

BACKEND = ROOT / "python-backend"
VENV_BIN = Path(sys.executable).parent
API_TOKEN = "api-token-" + secrets.token_hex(12)
FINAL = ("succeeded", "failed", "cancelled")


class RedisServer:
    """A real redis-server with AOF persistence (fsync on every write by default, so that a
    SIGKILL loses nothing; benchmarks use everysec, Redis's and compose's default)."""

    def __init__(self, fsync: str = "always"):
        self.fsync = fsync
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="aios-redis-")
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc = None

    def start(self) -> "RedisServer":
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir,
             "--appendonly", "yes", "--appendfsync", self.fsync, "--save", "",
             "--maxmemory-policy", "noeviction"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self.ping, 10, "redis-server")
        return self

    def ping(self) -> bool:
        try:
            out = subprocess.run(["redis-cli", "-p", str(self.port), "ping"],
                                 capture_output=True, text=True, timeout=2).stdout
            return out.strip() == "PONG"
        except subprocess.TimeoutExpired:
            return False

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def backend_env(redis_url: str, manager, **extra) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AIOS_", "SANDBOX_", "CELERY_", "REDIS_"))}
    env.update(AIOS_API_TOKEN=API_TOKEN, SECRET_KEY=secrets.token_hex(16), REDIS_URL=redis_url,
               SANDBOX_MANAGER_URL=manager.url, SANDBOX_MANAGER_TOKEN=manager.token,
               PYTHONPATH=str(BACKEND), AIOS_WATCHDOG_INTERVAL_S="1",
               AIOS_HEARTBEAT_INTERVAL_S="1", AIOS_HEARTBEAT_TTL_S="4")
    env.update({k.upper() if k.isupper() else f"AIOS_{k.upper()}": str(v)
                for k, v in extra.items()})
    return env


@dataclass
class Service:
    proc: subprocess.Popen
    log: Path
    url: str = ""
    name: str = ""

    def kill(self, sig=signal.SIGKILL) -> None:
        """Signal the whole process group (a Celery worker and its pool children)."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


def spawn(argv: list[str], env: dict, name: str) -> Service:
    log = Path(tempfile.gettempdir()) / f"aios-{name}-{secrets.token_hex(3)}.log"
    with log.open("wb") as out:
        # An empty working directory: no developer's .env leaks into the test's settings.
        proc = subprocess.Popen(argv, env=env, cwd=tempfile.mkdtemp(prefix="aios-cwd-"),
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    return Service(proc, log, name=name)


def start_worker(env: dict, name: str, concurrency: int = 2) -> Service:
    worker = spawn([str(VENV_BIN / "celery"), "-A", "app.celery", "worker", "--pool", "prefork",
                    "-c", str(concurrency), "-n", f"{name}@%h", "--loglevel", "INFO"],
                   env, name)
    wait_until(lambda: "ready." in worker.log.read_text() or worker.proc.poll() is not None,
               60, f"worker {name}")
    assert worker.proc.poll() is None, worker.log.read_text()
    return worker


def start_web(env: dict, name: str = "web", healthy: bool = True) -> Service:
    port = free_port()
    web = spawn([str(VENV_BIN / "gunicorn"), "-k", "eventlet", "-w", "1",
                 "--worker-connections", "20000", "--bind", f"127.0.0.1:{port}", "app:app"],
                env, name)
    web.url = f"http://127.0.0.1:{port}"

    def answering():
        assert web.proc.poll() is None, web.log.read_text()
        try:
            status = httpx.get(web.url + "/health", timeout=2).status_code
        except httpx.HTTPError:
            return False
        return status == 200 or (not healthy and status == 503)
    wait_until(answering, 60, f"{name} to answer /health")
    return web


def rest_client(web: Service, token: str = API_TOKEN) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=web.url, headers=headers, timeout=30)


def wait_for_task(client: httpx.Client, task_id: str, timeout: float = 30) -> dict:
    def final():
        task = client.get(f"/api/tasks/{task_id}").json()
        return task if task["status"] in FINAL else None
    return wait_until(final, timeout, f"task {task_id} to end")


@dataclass
class TaskListener:
    """A python-socketio client over WebSocket that records every task:event."""

    url: str
    token: str = API_TOKEN
    events: list = field(default_factory=list)
    client: socketio.Client = field(default_factory=lambda: socketio.Client(reconnection=False))
    changed: threading.Condition = field(default_factory=threading.Condition)

    def __post_init__(self):
        @self.client.on("task:event")
        def on_event(event):
            with self.changed:
                self.events.append(event)
                self.changed.notify_all()

    def connect(self) -> "TaskListener":
        self.client.connect(self.url, auth={"token": self.token}, transports=["websocket"],
                            wait_timeout=10)
        return self

    def call(self, event: str, data) -> dict:
        return self.client.call(event, data, timeout=10)

    def of(self, task_id: str) -> list:
        return [e for e in self.events if e["task_id"] == task_id]

    def wait_for(self, predicate, timeout: float = 30, what: str = "events"):
        with self.changed:
            if not self.changed.wait_for(lambda: predicate(self), timeout):
                raise AssertionError(f"timed out waiting for {what}; got {self.events}")

    def wait_final(self, task_id: str, timeout: float = 30) -> str:
        def ended(listener):
            return any(e["type"] == "status" and e["data"]["status"] in FINAL
                       for e in listener.of(task_id))
        self.wait_for(ended, timeout, f"task {task_id} to end")
        return [e for e in self.of(task_id) if e["type"] == "status"][-1]["data"]["status"]

    def close(self) -> None:
        if self.client.connected:
            self.client.disconnect()
