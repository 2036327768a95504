"""Helpers for the integration tests: real managers as uvicorn subprocesses."""

import base64
import hashlib
import io
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import docker
import httpx

ROOT = Path(__file__).resolve().parents[2]
MANAGER_DIR = ROOT / "sandbox_manager"


def wait_until(predicate, timeout: float, what: str):
    """The predicate's first truthy value, polled until the timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Manager:
    url: str
    token: str
    name: str
    proc: subprocess.Popen
    log: Path
    docker: docker.DockerClient
    clients: list = field(default_factory=list)

    def client(self, token: str | None = None, timeout: float = 60) -> httpx.Client:
        token = self.token if token is None else token
        client = httpx.Client(base_url=self.url, timeout=timeout,
                              headers={"Authorization": f"Bearer {token}"} if token else {})
        self.clients.append(client)
        return client

    def containers(self, **labels) -> list:
        """As Docker lists them, without inspecting each (one may go in between)."""
        wanted = [f"aios.manager={self.name}"] + [f"{k}={v}" for k, v in labels.items()]
        listed = self.docker.api.containers(all=True, filters={"label": wanted})
        return [SimpleNamespace(id=c["Id"], labels=c["Labels"]) for c in listed]

    def wait_for(self, predicate, timeout: float = 10.0, what: str = "condition"):
        return wait_until(predicate, timeout, what)

    def stop(self, sig=signal.SIGTERM) -> None:
        for client in self.clients:
            client.close()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=30)


def start_manager(docker_client, **env) -> Manager:
    # port and token given: a manager started again where it was (tests of a restart)
    port = env.pop("port", None) or free_port()
    token = env.pop("token", None) or "it-token-" + secrets.token_hex(12)
    name = env.pop("name", None) or "it-" + secrets.token_hex(4)
    log = Path(os.environ.get("TMPDIR", "/tmp")) / f"aios-manager-{name}-{port}.log"
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SANDBOX_")}
    environment.update(SANDBOX_MANAGER_TOKEN=token, SANDBOX_MANAGER_NAME=name,
                       SANDBOX_POOL_SIZE="0", SANDBOX_REAPER_INTERVAL_S="0.5")
    # lower case: the manager's own (SANDBOX_...); upper case as given (LOG_FORMAT)
    environment.update({k if k.isupper() else f"SANDBOX_{k.upper()}": str(v)
                        for k, v in env.items()})
    with log.open("wb") as out:
        # An empty working directory: no developer's .env leaks into the test's settings.
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--app-dir", str(MANAGER_DIR), "main:app",
             "--host", "127.0.0.1", "--port", str(port)],
            cwd=tempfile.mkdtemp(prefix="aios-manager-"), env=environment, stdout=out,
            stderr=subprocess.STDOUT)
    manager = Manager(f"http://127.0.0.1:{port}", token, name, proc, log, docker_client)
    # Its start runs a probe container: half a minute and more while several test processes
    # start their managers at once on a busy machine.
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"manager exited at start:\n{log.read_text()}")
        try:
            if httpx.get(manager.url + "/health", timeout=1).status_code == 200:
                return manager
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    manager.stop(signal.SIGKILL)
    raise AssertionError(f"manager did not become healthy:\n{log.read_text()}")



def run(api: httpx.Client, code: str, language: str = "python", **extra) -> dict:
    response = api.post("/v1/run", json={"language": language, "code": code, **extra})
    assert response.status_code == 200, response.text
    return response.json()


def exec_in(api: httpx.Client, sandbox_id: str, **body) -> dict:
    response = api.post(f"/v1/sandboxes/{sandbox_id}/exec", json=body)
    assert response.status_code == 200, response.text
    return response.json()


@dataclass
class Wheel:
    name: str  # the file name pip wants: <dist>-<version>-py3-none-any.whl
    data: bytes


def tiny_wheel(package: str, source: str, version: str = "1.0") -> Wheel:
    """A pure-Python wheel of one module, made in memory (no build backend, no network)."""
    dist_info = f"{package}-{version}.dist-info"
    files = {
        f"{package}/__init__.py": source.encode(),
        f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: {package}\n"
                                 f"Version: {version}\n".encode(),
        f"{dist_info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: aios-tests\n"
                              b"Root-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = [f"{path},sha256={_digest(data)},{len(data)}" for path, data in files.items()]
    files[f"{dist_info}/RECORD"] = ("\n".join(record + [f"{dist_info}/RECORD,,"]) + "\n").encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, data in files.items():
            archive.writestr(path, data)
    return Wheel(f"{package}-{version}-py3-none-any.whl", buffer.getvalue())


def _digest(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
