"""The manager refuses to serve when the engine does not apply a restriction it asked for."""

import os
import secrets
import subprocess
import sys

import pytest
from fastapi.testclient import TestClient

from aios_sandbox.api import create_app
from aios_sandbox.settings import Settings
from aios_sandbox.spec import container_spec

from .support import MANAGER_DIR

TOKEN = "fail-closed-token-" + secrets.token_hex(8)


def engine_that_drops(flag: str):
    """A container spec as an engine that silently ignores one setting would apply it
    ("ulimit:NAME": one entry of the ulimits list)."""
    def spec(settings, limits, labels, route=None):
        built = container_spec(settings, limits, labels, route)
        kind, _, name = flag.partition(":")
        if kind == "ulimit":
            kept = [u for u in built["ulimits"] if u["Name"] != name]
            assert len(kept) == len(built["ulimits"]) - 1, f"no {name} ulimit to drop"
            built["ulimits"] = kept
        else:
            built.pop(flag)
        return built
    return spec


@pytest.mark.parametrize("flag, named", [
    ("read_only", "root filesystem is writable"),
    ("cap_drop", "has capabilities"),
    ("security_opt", "no-new-privileges is off"),
    ("pids_limit", "pids limit not in force"),
    ("network_disabled", "has a network interface besides loopback"),
    ("ulimit:core", "core dumps are not off"),  # dockerd's default: soft 0, hard unlimited
])
def test_a_dropped_restriction_stops_all_runs(docker_client, flag, named):
    name = "it-closed-" + secrets.token_hex(3)
    settings = Settings(_env_file=None, manager_token=TOKEN, manager_name=name, pool_size=1)
    app = create_app(settings, spec_builder=engine_that_drops(flag))
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with TestClient(app) as client:
        health = client.get("/health")
        assert health.status_code == 503
        assert named in health.json()["checks"]["hardening"]["error"]
        refused = client.post("/v1/run", json={"language": "python", "code": "print(1)"},
                              headers=headers)
        assert refused.status_code == 503 and named in refused.json()["error"]["message"]
        assert client.post("/v1/sandboxes", json={}, headers=headers).status_code == 503
    left = docker_client.api.containers(all=True, filters={"label": f"aios.manager={name}"})
    assert left == [], "refused sandboxes are removed"


def test_the_hardened_default_passes_the_same_check(docker_client):
    settings = Settings(_env_file=None, manager_token=TOKEN,
                        manager_name="it-open-" + secrets.token_hex(3), pool_size=0)
    with TestClient(create_app(settings)) as client:
        assert client.get("/health").json()["checks"]["hardening"] == {"ok": True, "error": None}


def test_the_manager_refuses_to_start_without_a_token(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SANDBOX_")}
    env["PYTHONPATH"] = str(MANAGER_DIR)
    started = subprocess.run([sys.executable, "-c", "import main"], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=60)
    assert started.returncode != 0
    assert "SANDBOX_MANAGER_TOKEN" in started.stderr
    assert "Traceback" not in started.stderr
