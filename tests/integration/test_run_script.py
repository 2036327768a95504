"""`make run` (scripts/run.sh) and the doors of what it starts, as real processes.

Flower is started as the design guide, run.sh and the compose image start it: `celery -A
app.celery flower` from python-backend/, where Flower reads flowerconfig.py."""

import base64
import contextlib
import os
import re
import secrets
import signal
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

from .stack import BACKEND, VENV_BIN, RedisServer, backend_env, spawn
from .support import ROOT, free_port, wait_until

FLOWER_START_S = 60  # the app's import on a busy machine


@pytest.fixture(scope="module")
def flower_redis():
    server = RedisServer().start()
    yield server
    server.kill()


def start_flower(redis: RedisServer, basic_auth: str):
    # No sandbox manager is needed: Flower only talks to the broker.
    manager = SimpleNamespace(url="http://127.0.0.1:9", token="manager-" + secrets.token_hex(8))
    env = backend_env(redis.url, manager, FLOWER_BASIC_AUTH=basic_auth)
    port = free_port()
    flower = spawn([str(VENV_BIN / "celery"), "-A", "app.celery", "flower", f"--port={port}",
                    "--address=127.0.0.1"], env, "flower", cwd=BACKEND)
    flower.url = f"http://127.0.0.1:{port}"
    return flower


def _status(url: str, authorization: str | None = None) -> int | None:
    headers = {"Authorization": authorization} if authorization else {}
    try:
        return httpx.get(url, headers=headers, timeout=2).status_code
    except httpx.HTTPError:
        return None


@pytest.mark.parametrize("basic_auth, complaint", [
    ("", "empty"),
    ("admin", "user:password"),
    (":secret-password-1", "empty user"),
    ("admin:short", "at least 12"),
    ("admin:long-enough-password,bob", "entry 2"),
])
def test_flower_refuses_a_blank_or_malformed_basic_auth(flower_redis, basic_auth, complaint):
    flower = start_flower(flower_redis, basic_auth)
    try:
        def ended_or_serving():
            return flower.proc.poll() is not None or _status(flower.url + "/healthcheck") == 200
        wait_until(ended_or_serving, FLOWER_START_S, "flower to exit or serve")
        if flower.proc.poll() is None:
            workers = _status(flower.url + "/api/workers", "Basic =")
            pytest.fail(f"Flower started with FLOWER_BASIC_AUTH={basic_auth!r}; /api/workers "
                        f"answered {workers} to 'Authorization: Basic =' (an empty pair)")
        output = flower.log.read_text()
    finally:
        flower.stop()
    assert flower.proc.returncode != 0, output
    assert "FLOWER_BASIC_AUTH" in output and complaint in output, output
    assert "Traceback" not in output, output
    lines = [line for line in output.splitlines() if "FLOWER_BASIC_AUTH" in line]
    assert len(lines) == 1, output  # one line, saying what is wrong
    password = basic_auth.partition(":")[2]
    assert len(password) < 6 or password not in output, "the password was printed"


def test_flower_serves_with_a_sound_basic_auth(flower_redis):
    flower = start_flower(flower_redis, "admin:flower-secret-123,ops:another-secret-4")
    try:
        wait_until(lambda: _status(flower.url + "/healthcheck") == 200
                   or flower.proc.poll() is not None, FLOWER_START_S, "flower to serve")
        assert flower.proc.poll() is None, flower.log.read_text()
        empty_pair = "Basic " + base64.b64encode(b":").decode()  # Og==
        assert _status(flower.url + "/api/workers", empty_pair) == 401
        assert _status(flower.url + "/api/workers", "Basic =") == 401
        assert _status(flower.url + "/api/workers") == 401
        for pair in (b"admin:flower-secret-123", b"ops:another-secret-4"):
            good = "Basic " + base64.b64encode(pair).decode()
            assert _status(flower.url + "/api/workers", good) == 200
    finally:
        flower.stop()


# --- scripts/run.sh (`make run`) ----------------------------------------------------------
# run.sh is pointed at free ports, an env file and a state folder of the test's own, so it
# disturbs no stack of a developer's; its sandbox manager has a name of its own and no warm
# pool, and it builds no image (AIOS_BUILD_IMAGES=0: the suite's image is already there).

RUN_SH = ROOT / "scripts" / "run.sh"
ENV_TOKEN = "env-token-" + secrets.token_hex(12)
FILE_TOKEN = "file-token-" + secrets.token_hex(12)
START_S = 180  # run.sh up and /health 200, on a busy machine
RUN_TIMEOUT = pytest.mark.timeout(START_S + 240)  # the first test starts run.sh
STOP_S = 25  # SIGTERM to everything gone, a running task's grace period included


def _start_time(pid: int):
    """The process's start time, or None once it is gone (or a zombie): tells a pid reused
    by another process from the one we saw."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None if fields[0] == "Z" else fields[19]


def _children(pid: int) -> list[int]:
    pids = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            pids += [int(p) for p in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
    except (FileNotFoundError, ProcessLookupError):
        pass  # it ended meanwhile
    return pids


def _tree(pid: int) -> dict[int, str]:
    """Every descendant of pid (not pid itself), with its start time."""
    found, todo = {}, _children(pid)
    while todo:
        child = todo.pop()
        started = _start_time(child)
        if started is not None and child not in found:
            found[child] = started
            todo += _children(child)
    return found


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except (FileNotFoundError, ProcessLookupError):
        return ""


class RunScript:
    """scripts/run.sh as `make run` starts it, on the test's ports, env file and folders."""

    def __init__(self, tmp: Path, **extra_env):
        self.tmp = tmp
        self.name = "run-test-" + secrets.token_hex(4)
        self.env_file = tmp / "env"
        # As a user writes it: quotes, spaces and '=' in a value; no REDIS_PASSWORD yet (an
        # .env from before it existed: ensure-env.sh adds it).
        self.env_file.write_text(
            f"AIOS_API_TOKEN={FILE_TOKEN}\n"
            "SECRET_KEY=\"a secret = with spaces, 'quotes' and \\\"more\\\"\"\n"
            f"SANDBOX_MANAGER_TOKEN=manager-{secrets.token_hex(12)}\n"
            f"FLOWER_BASIC_AUTH=admin:{secrets.token_urlsafe(16)}\n"
            f"SANDBOX_MANAGER_NAME={self.name}\n"
            "SANDBOX_POOL_SIZE=0\n")
        self.redis_port, self.web_port = free_port(), free_port()
        self.manager_port, self.flower_port = free_port(), free_port()
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("AIOS_", "SANDBOX_", "CELERY_", "REDIS_", "FLOWER_"))}
        env.update(AIOS_ENV_FILE=str(self.env_file), AIOS_RUN_DIR=str(tmp / "run"),
                   AIOS_BUILD_IMAGES="0",
                   PORT=str(self.web_port),  # the design guide's name for AIOS_WEB_PORT
                   REDIS_MAXMEMORY="256mb",  # the guide's: the redis run.sh starts gets it
                   AIOS_SANDBOX_MANAGER_PORT=str(self.manager_port),
                   AIOS_FLOWER_PORT=str(self.flower_port),
                   REDIS_URL=f"redis://127.0.0.1:{self.redis_port}/0",
                   AIOS_API_TOKEN=ENV_TOKEN,  # the environment wins over the env file
                   AIOS_FILE_ROOTS=str(tmp), AIOS_UPLOAD_DIR=str(tmp / "uploads"),
                   AIOS_ARTIFACT_DIR=str(tmp / "artifacts"),
                   AIOS_WORKER_GRACE_S="3",  # then running tasks go back to the queue
                   **extra_env)
        self.env, self.runs = env, 0
        self.start()
        self.url = f"http://127.0.0.1:{self.web_port}"
        self.seen: dict[int, str] = {}  # every process of it ever seen, for the cleanup

    def start(self) -> None:
        """run.sh, as `make run` starts it (again: on the same files and ports)."""
        self.runs += 1
        self.log = self.tmp / f"run-{self.runs}.log"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen([str(RUN_SH)], env=self.env, stdout=out,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def terminate(self, within: float) -> float:
        """SIGTERM to run.sh; every process of it must be gone within `within` seconds."""
        processes = self.tree()
        assert len(processes) >= 5, processes  # redis, manager, worker (and its pool), web, flower
        self.proc.send_signal(signal.SIGTERM)
        stopped_at = time.monotonic()

        def left():
            return [pid for pid, started in processes.items() if _start_time(pid) == started]
        try:
            wait_until(lambda: self.proc.poll() is not None and not left(), within,
                       "run.sh and all its processes to end")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; left: {[_cmdline(pid) for pid in left()]}\n"
                                 f"{self.output()[-3000:]}") from None
        assert _status(self.url + "/health") is None
        return time.monotonic() - stopped_at

    def tree(self) -> dict[int, str]:
        found = _tree(self.proc.pid)
        self.seen.update(found)
        return found

    def service_pid(self, word: str):
        """The pid of run.sh's direct child whose command line holds `word`."""
        self.tree()
        return next((pid for pid in _children(self.proc.pid) if word in _cmdline(pid)), None)

    def healthy(self) -> bool:
        assert self.proc.poll() is None, f"run.sh ended ({self.proc.returncode}):\n{self.output()}"
        self.tree()
        return _status(self.url + "/health") == 200

    def wait_healthy(self, timeout: float = START_S) -> None:
        try:
            wait_until(self.healthy, timeout, "run.sh's web to answer /health with 200")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.output()}") from None

    def client(self, token: str = ENV_TOKEN) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30,
                            headers={"Authorization": f"Bearer {token}"})

    def env_value(self, name: str):
        from dotenv import dotenv_values
        return dotenv_values(self.env_file).get(name)

    def containers(self) -> list:
        import docker
        client = docker.from_env()
        try:
            return client.containers.list(all=True,
                                          filters={"label": f"aios.manager={self.name}"})
        finally:
            client.close()

    def cleanup(self) -> None:
        """Stop it, then kill whatever of it is left (by pid: other stacks run here too)."""
        self.tree()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for pid, started in self.seen.items():
            if _start_time(pid) == started:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(Exception):
            for container in self.containers():
                container.remove(force=True)


@pytest.fixture(scope="module")
def run_script(tmp_path_factory):
    """One run.sh for the tests below, in file order; the last one stops it."""
    run = RunScript(tmp_path_factory.mktemp("run-sh"))
    try:
        run.wait_healthy()
        yield run
    finally:
        run.cleanup()


def submit_echo(client: httpx.Client, text: str) -> str:
    response = client.post("/api/tasks", json={"kind": "echo", "input": {"text": text}})
    assert response.status_code == 202, response.text
    return response.json()["task_id"]


def wait_succeeded(client: httpx.Client, task_id: str, timeout: float = 60) -> dict:
    def final():
        task = client.get(f"/api/tasks/{task_id}").json()
        return task if task["status"] in ("succeeded", "failed", "cancelled") else None
    task = wait_until(final, timeout, f"task {task_id} to end")
    assert task["status"] == "succeeded", task
    return task


# Warnings a healthy start may print: each says what to change on this machine.
ACTIONABLE_WARNINGS = (
    re.compile(r"^\d+:M .* # WARNING"),  # redis-server's own: a sysctl to set, and which
    re.compile(r"\[WARNING\] open files are limited to .* raise the limit"),  # gunicorn.conf.py
)


def unactionable_warnings(output: str) -> list[str]:
    return [line for line in output.splitlines() if "warn" in line.lower()
            and not any(pattern.search(line) for pattern in ACTIONABLE_WARNINGS)]


@RUN_TIMEOUT
def test_run_starts_without_a_traceback_or_a_warning_nobody_can_act_on(run_script):
    wait_until(lambda: "AI-OS is starting" in run_script.output(), 30, "run.sh's banner")
    output = run_script.output()  # the first test: the start, up to a healthy /health
    assert "Traceback" not in output, output
    assert unactionable_warnings(output) == [], output
    # As root, Celery's "use the --uid option" (which make run's user cannot give) is replaced
    # by the banner's note of why the worker is root and what is not (compose).
    assert "SecurityWarning" not in output and "superuser privileges" not in output, output
    assert ("As root, the worker runs as root" in output) == (os.geteuid() == 0), output


@RUN_TIMEOUT
def test_run_the_environment_wins_over_the_env_file(run_script):
    with run_script.client(ENV_TOKEN) as client:
        assert client.get("/api/tasks").status_code == 200
    with run_script.client(FILE_TOKEN) as client:
        assert client.get("/api/tasks").status_code == 401
    assert run_script.env_value("AIOS_API_TOKEN") == FILE_TOKEN  # the file is left as it was


@RUN_TIMEOUT
def test_run_locks_redis_with_a_generated_password_it_never_prints(run_script):
    password = run_script.env_value("REDIS_PASSWORD")
    assert password and len(password) >= 32, "ensure-env.sh added REDIS_PASSWORD to the env file"
    answer = subprocess.run(["redis-cli", "-p", str(run_script.redis_port), "ping"],
                            capture_output=True, text=True, timeout=10).stdout
    assert answer.startswith("NOAUTH"), answer
    authed = subprocess.run(["redis-cli", "-p", str(run_script.redis_port), "ping"],
                            env=dict(os.environ, REDISCLI_AUTH=password),
                            capture_output=True, text=True, timeout=10).stdout
    assert authed.strip() == "PONG"
    maxmemory = subprocess.run(["redis-cli", "-p", str(run_script.redis_port), "config", "get",
                                "maxmemory"], env=dict(os.environ, REDISCLI_AUTH=password),
                               capture_output=True, text=True, timeout=10).stdout.split()
    assert maxmemory == ["maxmemory", str(256 << 20)], "REDIS_MAXMEMORY=256mb"
    output = run_script.output()
    assert password not in output
    assert all(password not in _cmdline(pid) for pid in run_script.tree())
    assert f"http://127.0.0.1:{run_script.web_port}" in output  # the banner
    assert "Inspect method" not in output  # Flower's warnings while no worker is up yet


@RUN_TIMEOUT
def test_run_restarts_a_service_that_dies(run_script):
    for delay in (1, 2):  # the backoff doubles while the worker does not stay up
        worker = run_script.service_pid("app.celery worker")
        assert worker, run_script.output()
        pool = set(_tree(worker))
        os.kill(worker, signal.SIGKILL)  # never by name: other stacks run on this machine
        logged = f"worker exited (status 137); restarting in {delay} s"
        wait_until(lambda logged=logged: logged in run_script.output(), 30,
                   f"run.sh to log {logged!r}")
        wait_until(lambda worker=worker: run_script.service_pid("app.celery worker")
                   not in (None, worker), 30, "a new worker")
        assert run_script.proc.poll() is None
        assert not [pid for pid in pool if _start_time(pid) is not None], "old pool left"
        with run_script.client() as client:
            wait_succeeded(client, submit_echo(client, f"after restart {delay}"), timeout=90)


@RUN_TIMEOUT
def test_run_stopped_mid_task_loses_nothing(run_script):
    """SIGTERM with a task mid-run in a sandbox: the worker has its grace period, then goes;
    the sandbox manager (stopped after it) removes the task's sandbox; redis keeps the task,
    and the next start runs it to the end."""
    run_script.wait_healthy()
    with run_script.client() as client:
        response = client.post("/api/tasks", json={"kind": "code", "input": {
            "language": "bash", "code": "echo started; sleep 12; echo done", "timeout_s": 60}})
        assert response.status_code == 202, response.text
        task_id = response.json()["task_id"]

        def printed(text):
            events = client.get(f"/api/tasks/{task_id}/events").json()["events"]
            return any(text in e["data"].get("text", "") for e in events)
        wait_until(lambda: printed("started"), 90, "the task to be mid-run")
    elapsed = run_script.terminate(within=STOP_S)
    assert run_script.containers() == [], "the task's sandbox was left behind"
    print(f"stopped mid-task in {elapsed:.1f} s")

    run_script.start()
    run_script.wait_healthy()
    with run_script.client() as client:
        task = wait_succeeded(client, task_id, timeout=120)
    assert task["result"]["stdout"] == "started\ndone\n", task


@RUN_TIMEOUT
def test_run_stops_everything_on_sigterm_promptly_even_with_a_restart_due(run_script):
    """SIGTERM while the worker waits to be restarted: everything stops within seconds, and
    nothing is started afterwards."""
    run_script.wait_healthy()
    worker = run_script.service_pid("app.celery worker")
    os.kill(worker, signal.SIGKILL)
    wait_until(lambda: "worker exited (status 137); restarting in" in run_script.output(), 30,
               "run.sh to log the worker's restart")
    elapsed = run_script.terminate(within=10)
    assert "worker exited (status 137); restarting in" in run_script.output()
    print(f"stopped in {elapsed:.1f} s")


@RUN_TIMEOUT
def test_run_starts_as_quietly_under_gevent(tmp_path):
    """AIOS_WEB_WORKER_CLASS=gevent: run.sh hands it to gunicorn, and the start is as quiet as
    eventlet's (above)."""
    run = RunScript(tmp_path, AIOS_WEB_WORKER_CLASS="gevent")
    try:
        run.wait_healthy()
        output = run.output()
        web = _cmdline(run.service_pid("gunicorn"))
    finally:
        run.cleanup()
    assert "Using worker: gevent" in output and "--worker-class gevent" in web, output
    assert "Traceback" not in output, output
    assert unactionable_warnings(output) == [], output


def test_run_refuses_a_malformed_flower_basic_auth_before_starting_anything(tmp_path):
    run = RunScript(tmp_path, FLOWER_BASIC_AUTH="admin:short")  # the environment wins
    try:
        wait_until(lambda: run.proc.poll() is not None, 90, "run.sh to refuse to start")
    except AssertionError:
        raise AssertionError(f"run.sh started with FLOWER_BASIC_AUTH=admin:short:\n"
                             f"{run.output()[-3000:]}") from None
    finally:
        run.cleanup()
    output = run.output()
    assert run.proc.returncode == 2, output
    assert "FLOWER_BASIC_AUTH: entry 1 (user 'admin') has a password of only 5" in output
    assert "Traceback" not in output and "Redis is starting" not in output, output


ENSURED = ("SANDBOX_MANAGER_TOKEN", "AIOS_API_TOKEN", "SECRET_KEY", "FLOWER_BASIC_AUTH",
           "REDIS_PASSWORD")


def test_ensure_env_generates_secrets_and_fills_in_missing_or_blank_ones(tmp_path):
    from dotenv import dotenv_values

    def ensure(path: Path) -> str:
        done = subprocess.run([str(ROOT / "scripts" / "ensure-env.sh")], capture_output=True,
                              text=True, timeout=60, env=dict(os.environ, AIOS_ENV_FILE=str(path)))
        assert done.returncode == 0, done.stderr
        return done.stdout + done.stderr

    fresh = tmp_path / "fresh.env"
    said = ensure(fresh)
    values = dotenv_values(fresh)
    assert all(len(values[name]) >= 32 for name in ENSURED), values.keys()
    assert values["FLOWER_BASIC_AUTH"].startswith("admin:")
    assert fresh.stat().st_mode & 0o777 == 0o600
    assert not any(values[name] in said for name in ENSURED)

    # An .env from before REDIS_PASSWORD, FLOWER_BASIC_AUTH left blank (copied by hand).
    older = tmp_path / "older.env"
    older.write_text("AIOS_API_TOKEN=keep-this-token-1234\nFLOWER_BASIC_AUTH=\n"
                     "SECRET_KEY='a kept secret = with spaces'\n# REDIS_URL=redis://x:6379/0\n")
    said = ensure(older)
    values = dotenv_values(older)
    assert values["AIOS_API_TOKEN"] == "keep-this-token-1234"
    assert values["SECRET_KEY"] == "a kept secret = with spaces"
    assert values["FLOWER_BASIC_AUTH"].startswith("admin:") and len(values["REDIS_PASSWORD"]) >= 32
    assert "REDIS_PASSWORD" in said and "FLOWER_BASIC_AUTH" in said
    assert not any(values[name] in said for name in ENSURED)
    before = older.read_text()
    ensure(older)
    assert older.read_text() == before  # nothing left to fill in
