"""docker/entrypoint.sh's secrets (compose's one-shot `secrets` and every service's start):
missing ones generated once and kept, the env file's value wins, the design guide's
placeholder SECRET_KEY is no secret, a variable set even blank is left alone, the redis
password goes into URLs without credentials, and no value is ever printed."""
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ENTRYPOINT = Path(__file__).resolve().parents[2] / "docker" / "entrypoint.sh"
NAMES = ("AIOS_API_TOKEN", "SECRET_KEY", "SANDBOX_MANAGER_TOKEN", "FLOWER_BASIC_AUTH",
         "REDIS_PASSWORD")

# The image's `test` stage has no docker/ folder: these run on the host (make test).
pytestmark = pytest.mark.skipif(not ENTRYPOINT.exists() or not shutil.which("setpriv"),
                                reason="needs docker/entrypoint.sh and util-linux setpriv")


def run(folder: Path, *command: str, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in NAMES and not k.startswith(
        ("REDIS_", "CELERY_", "AIOS_"))}
    base.update(AIOS_SECRETS_DIR=str(folder), DOCKER_SOCKET="/nonexistent.sock",
                AIOS_USER=os.environ.get("USER") or "root", **env)
    return subprocess.run(["sh", str(ENTRYPOINT), *command], capture_output=True, text=True,
                          timeout=30, env=base)


def values(folder: Path) -> dict:
    return {name: (folder / name).read_text() for name in NAMES}


def test_generated_once_then_kept_and_the_env_file_wins(tmp_path):
    folder = tmp_path / "secrets"
    first = run(folder, "aios-make-secrets", SECRET_KEY="your-secret-key-here")
    assert first.returncode == 0, first.stderr
    assert f"generated: {' '.join(NAMES)}; kept: none; from the env file: none" in first.stdout
    made = values(folder)
    assert all(len(value) >= 43 for value in made.values())
    assert made["FLOWER_BASIC_AUTH"].startswith("admin:")
    assert made["SECRET_KEY"] != "your-secret-key-here"
    assert all((folder / name).stat().st_mode & 0o777 == 0o444 for name in NAMES)

    again = run(folder, "aios-make-secrets", AIOS_API_TOKEN="from-the-env-file-123456")
    assert "generated: none" in again.stdout and "from the env file: AIOS_API_TOKEN" in again.stdout
    kept = values(folder)
    assert kept["AIOS_API_TOKEN"] == "from-the-env-file-123456"
    assert {k: v for k, v in kept.items() if k != "AIOS_API_TOKEN"} == \
        {k: v for k, v in made.items() if k != "AIOS_API_TOKEN"}
    for value in kept.values():
        assert value not in first.stdout + first.stderr + again.stdout + again.stderr


def test_a_service_start_reads_unset_ones_and_puts_the_password_into_redis_urls(tmp_path):
    folder = tmp_path / "secrets"
    run(folder, "aios-make-secrets")
    made = values(folder)
    done = run(folder, "env", AIOS_API_TOKEN="", SECRET_KEY="your-secret-key-here",
               REDIS_URL="redis://redis:6379/0", CELERY_BROKER_URL="redis://:own@redis:6379/0")
    assert done.returncode == 0, done.stderr
    env = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    assert env["AIOS_API_TOKEN"] == ""  # set, even blank: the environment wins
    assert env["SECRET_KEY"] == made["SECRET_KEY"]  # the guide's placeholder: replaced
    assert env["SANDBOX_MANAGER_TOKEN"] == made["SANDBOX_MANAGER_TOKEN"]
    assert env["REDIS_URL"] == f"redis://:{made['REDIS_PASSWORD']}@redis:6379/0"
    assert env["CELERY_BROKER_URL"] == "redis://:own@redis:6379/0"


def test_the_web_says_where_the_token_is_never_what(tmp_path):
    folder = tmp_path / "secrets"
    run(folder, "aios-make-secrets")
    done = run(folder, "gunicorn", "--version")
    said = done.stdout + done.stderr
    assert f"read it with: docker-compose exec web cat {folder}/AIOS_API_TOKEN" in said
    assert values(folder)["AIOS_API_TOKEN"] not in said
