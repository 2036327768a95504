"""python-backend/gunicorn.conf.py and the open-files limit, checked through gunicorn itself
(`--print-config` resolves the settings without serving) in a child process each."""

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BACKEND = ROOT / "python-backend"
GUNICORN = Path(sys.executable).parent / "gunicorn"
REQUIRED = {"AIOS_API_TOKEN": "a" * 16, "SECRET_KEY": "b" * 16, "SANDBOX_MANAGER_TOKEN": "c" * 16}


def gunicorn_config(tmp_path, *flags, **env) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items()
                   if not k.startswith(("AIOS_", "SANDBOX_", "REDIS_", "CELERY_"))}
    environment.update(REQUIRED, PYTHONPATH=str(BACKEND), **env)
    # An empty working directory, so no developer's .env is read: the file is named with -c.
    return subprocess.run([str(GUNICORN), "-c", str(BACKEND / "gunicorn.conf.py"),
                           "--print-config", *flags, "app:app"],
                          env=environment, cwd=tmp_path, capture_output=True, text=True,
                          timeout=60)


def resolved(output: str) -> dict:
    return {name.strip(): value.strip() for name, _, value in
            (line.partition("=") for line in output.splitlines()) if value}


def test_the_file_sets_the_eventlet_worker_by_default_and_many_connections(tmp_path):
    done = gunicorn_config(tmp_path)
    assert done.returncode == 0, done.stderr
    config = resolved(done.stdout)
    assert config["worker_class"] == "eventlet"
    assert config["workers"] == "1"
    assert config["worker_connections"] == "20000"  # gunicorn's own default is 1000
    assert config["bind"] == "['127.0.0.1:8765']"


def test_worker_connections_come_from_the_settings_and_flags_win(tmp_path):
    from_env = resolved(gunicorn_config(tmp_path, AIOS_WEB_WORKER_CONNECTIONS="1500").stdout)
    assert from_env["worker_connections"] == "1500"
    flagged = resolved(gunicorn_config(tmp_path, "--worker-connections", "7",
                                       "--bind", "0.0.0.0:9999",
                                       AIOS_WEB_WORKER_CONNECTIONS="1500").stdout)
    assert flagged["worker_connections"] == "7"
    assert flagged["bind"] == "['0.0.0.0:9999']"


def test_the_worker_class_comes_from_the_settings(tmp_path):
    done = gunicorn_config(tmp_path, AIOS_WEB_WORKER_CLASS="gevent")
    assert done.returncode == 0, done.stderr
    config = resolved(done.stdout)
    assert config["worker_class"] == "gevent"
    assert config["workers"] == "1" and config["worker_connections"] == "20000"


def test_a_worker_class_flag_that_disagrees_with_the_setting_is_refused_before_binding(
        tmp_path):
    environment = {k: v for k, v in os.environ.items()
                   if not k.startswith(("AIOS_", "SANDBOX_", "REDIS_", "CELERY_"))}
    environment.update(REQUIRED, PYTHONPATH=str(BACKEND))  # AIOS_WEB_WORKER_CLASS: eventlet
    done = subprocess.run([str(GUNICORN), "-c", str(BACKEND / "gunicorn.conf.py"),
                           "--worker-class", "gevent", "--bind", "127.0.0.1:0", "app:app"],
                          env=environment, cwd=tmp_path, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode != 0
    assert ("gunicorn --worker-class gevent, but AIOS_WEB_WORKER_CLASS is eventlet"
            in done.stderr), done.stderr
    assert "Booting worker" not in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("env, named", [({"AIOS_WEB_WORKER_CONNECTIONS": "0"},
                                         "AIOS_WEB_WORKER_CONNECTIONS"),
                                        ({"AIOS_WEB_WORKER_CLASS": "sync"},
                                         "AIOS_WEB_WORKER_CLASS"),
                                        ({"AIOS_API_TOKEN": "short"}, "AIOS_API_TOKEN")])
def test_a_bad_setting_stops_the_master_naming_it(tmp_path, env, named):
    done = gunicorn_config(tmp_path, **env)
    assert done.returncode != 0
    assert f"  {named}:" in done.stderr
    assert "Traceback" not in done.stderr


def limit_after_raising(clients: int, soft: int, hard: int) -> tuple[str, int]:
    """Call raise_open_files_limit in a child started with the given limits."""
    code = ("import resource, sys\n"
            "from aios.open_files import raise_open_files_limit\n"
            f"print(raise_open_files_limit({clients}))\n"
            "print(resource.getrlimit(resource.RLIMIT_NOFILE)[0])\n")
    done = subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(BACKEND)},
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard)),
        capture_output=True, text=True, timeout=30, check=True)
    warning, new_soft = done.stdout.strip().splitlines()
    return warning, int(new_soft)


def test_the_soft_open_files_limit_is_raised_to_fit_the_clients():
    assert limit_after_raising(1000, soft=300, hard=4096) == ("None", 1256)


def test_a_hard_limit_too_low_for_the_clients_is_named():
    warning, soft = limit_after_raising(1000, soft=300, hard=900)
    assert soft == 900
    assert "limited to 900" in warning and "AIOS_WEB_WORKER_CONNECTIONS" in warning


def test_a_limit_already_high_enough_is_left_alone():
    assert limit_after_raising(100, soft=2048, hard=4096) == ("None", 2048)
