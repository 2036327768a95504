"""Helpers that start the real pipeline: redis-server, Celery workers, gunicorn+eventlet."""

import asyncio
import contextlib
import json
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
import websockets

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
               AIOS_HEARTBEAT_INTERVAL_S="1", AIOS_HEARTBEAT_TTL_S="4",
               AIOS_WORKER_GRACE_S="3",  # a worker stopped mid-task hands it back soon
               # its metrics exporter on a port of its own, not 9808: other stacks run here
               AIOS_WORKER_METRICS_PORT=str(free_port()))
    env.update({k.upper() if k.isupper() else f"AIOS_{k.upper()}": str(v)
                for k, v in extra.items()})
    return env


APPROVAL_TIMEOUT_S = 6  # AIOS_APPROVAL_TIMEOUT_S of the agent stack (conftest.agent_stack)
CANARY = "canary-5d1e9b"  # the user's secret, in the agent stack's user folder


def agent_env(redis_url, manager, fake, **extra):
    """backend_env with every provider pointed at the fake LLM server (each wire format)."""
    return backend_env(redis_url, manager, OPENAI_API_KEY="sk-fake-agent-key",
                       OPENAI_BASE_URL=fake.base_url, ANTHROPIC_API_KEY="sk-fake-agent-key",
                       ANTHROPIC_BASE_URL=fake.groq_base_url, GROQ_API_KEY="sk-fake-agent-key",
                       GROQ_BASE_URL=fake.groq_base_url, MISTRAL_API_KEY="sk-fake-agent-key",
                       MISTRAL_BASE_URL=fake.mistral_base_url, AIOS_LLM_MAX_RETRIES="0",
                       **extra)


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

    def child_pid(self) -> int:
        """The first child process: gunicorn's worker, under its master."""
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
        return int(children.split()[0])

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


def spawn(argv: list[str], env: dict, name: str, cwd=None) -> Service:
    log = Path(tempfile.gettempdir()) / f"aios-{name}-{secrets.token_hex(3)}.log"
    with log.open("wb") as out:
        # By default an empty working directory: no developer's .env leaks into the settings.
        proc = subprocess.Popen(argv, env=env, cwd=cwd or tempfile.mkdtemp(prefix="aios-cwd-"),
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    return Service(proc, log, name=name)


@contextlib.contextmanager
def stopped_on_failure(service: Service):
    """A service that does not come up is stopped, not left running after the test."""
    try:
        yield
    except BaseException:
        service.stop()
        raise


def start_worker(env: dict, name: str, concurrency: int = 2) -> Service:
    worker = spawn([str(VENV_BIN / "celery"), "-A", "app.celery", "worker", "--pool", "prefork",
                    "-c", str(concurrency), "-n", f"{name}@%h", "--loglevel", "INFO"],
                   env, name)
    with stopped_on_failure(worker):
        wait_until(lambda: "ready." in worker.log.read_text() or worker.proc.poll() is not None,
                   60, f"worker {name}")
        assert worker.proc.poll() is None, worker.log.read_text()
    return worker


def web_command(port: int) -> list[str]:
    # The project's gunicorn.conf.py, named: spawn's working directory is an empty one.
    return [str(VENV_BIN / "gunicorn"), "-c", str(BACKEND / "gunicorn.conf.py"),
            "--bind", f"127.0.0.1:{port}", "app:app"]


def start_web(env: dict, name: str = "web", healthy: bool = True, command=web_command,
              cwd=None) -> Service:
    port = free_port()
    web = spawn(command(port), env, name, cwd)
    web.url = f"http://127.0.0.1:{port}"

    def answering():
        assert web.proc.poll() is None, web.log.read_text()
        try:
            status = httpx.get(web.url + "/health", timeout=2).status_code
        except httpx.HTTPError:
            return False
        return status == 200 or (not healthy and status == 503)
    with stopped_on_failure(web):
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

    def call(self, event: str, data, timeout: float = 10) -> dict:
        return self.client.call(event, data, timeout=timeout)

    def of(self, task_id: str) -> list:
        """The task's events in seq order. The server sends them in order, but the Python
        engine.io client hands each message to a thread of its own, so they may be recorded
        out of order here; a missing or doubled event still shows."""
        return sorted((e for e in self.events if e["task_id"] == task_id),
                      key=lambda e: e["seq"])

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


def websocket_url(http_url: str) -> str:
    """The web's engine.io endpoint for the WebSocket transport."""
    return http_url.replace("http", "ws", 1) + "/socket.io/?EIO=4&transport=websocket"


@contextlib.asynccontextmanager
async def raw_socketio(http_url: str, token: str = API_TOKEN, **options):
    """A Socket.IO client spoken by hand over a raw WebSocket, connected with the token: it
    sends whatever frames it is told to."""
    async with websockets.connect(websocket_url(http_url), max_size=None, ping_interval=None,
                                  **options) as ws:
        await ws.recv()  # engine.io's open packet
        await ws.send("40" + json.dumps({"token": token}))
        reply = await ws.recv()
        assert reply.startswith("40{"), reply
        yield ws


class IdleSockets:
    """Raw engine.io WebSocket clients that connect, authenticate and then only answer the
    server's pings: what an idle desktop app costs the web server. They run on an asyncio
    loop of their own, so thousands fit in one test process."""

    def __init__(self, url: str, token: str = API_TOKEN):
        self.url, self.token = url, token
        self.sockets, self.tasks = [], []
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    async def _one(self):
        async with raw_socketio(self.url, self.token, open_timeout=60) as ws:
            self.sockets.append(ws)
            try:
                while True:
                    if await ws.recv() == "2":
                        await ws.send("3")
            except websockets.exceptions.ConnectionClosed:
                return

    async def _open(self, count: int, batch: int):
        for start in range(0, count, batch):
            self.tasks += [asyncio.ensure_future(self._one())
                           for _ in range(min(batch, count - start))]
            await asyncio.sleep(0.3)

    def open(self, count: int, timeout: float = 180, batch: int = 250) -> None:
        """Open `count` more clients; returns once all are in or one was refused or dropped
        (see dropped() and first_error())."""
        wanted = len(self.sockets) + count
        asyncio.run_coroutine_threadsafe(self._open(count, batch), self.loop).result()
        wait_until(lambda: len(self.sockets) >= wanted or self.dropped(), timeout,
                   f"{wanted} WebSocket clients")

    def dropped(self) -> int:
        return sum(1 for task in self.tasks if task.done())

    def held(self) -> int:
        return sum(1 for task in self.tasks if not task.done())

    def first_error(self):
        return next((task.exception() for task in self.tasks
                     if task.done() and not task.cancelled() and task.exception()), None)

    def close(self) -> None:
        async def close_all():
            await asyncio.gather(*(ws.close() for ws in self.sockets), return_exceptions=True)
            await asyncio.gather(*self.tasks, return_exceptions=True)
        try:
            asyncio.run_coroutine_threadsafe(close_all(), self.loop).result(timeout=120)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=30)
            self.loop.close()
