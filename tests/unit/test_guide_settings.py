"""The design guide's settings (DEBUG, GUNICORN_WORKERS, GUNICORN_TIMEOUT, PORT,
REDIS_MAXMEMORY, REDIS_MAXMEMORY_POLICY): each is honoured or stops the start with a message
that names it and says what to do instead; none is silently ignored."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from aios.settings import ConfigurationError, load_settings

from .test_web_server_config import BACKEND, GUNICORN, REQUIRED, gunicorn_config, resolved

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import supervise  # noqa: E402 - scripts/ is not a package

GUIDE = ("DEBUG", "GUNICORN_WORKERS", "GUNICORN_TIMEOUT", "PORT", "REDIS_MAXMEMORY",
         "REDIS_MAXMEMORY_POLICY")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    for key in list(os.environ):
        if key.startswith(("AIOS_", "SANDBOX_", "REDIS_", "CELERY_")) or key in GUIDE:
            monkeypatch.delenv(key)
    for key, value in REQUIRED.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)  # no developer's .env


@pytest.mark.parametrize("env, named, instead", [
    ({"DEBUG": "true"}, "DEBUG", "LOG_LEVEL=DEBUG"),
    ({"GUNICORN_WORKERS": "8"}, "GUNICORN_WORKERS", "sticky sessions"),
    ({"GUNICORN_WORKERS": "0"}, "GUNICORN_WORKERS", "set it to 1"),
    ({"REDIS_MAXMEMORY_POLICY": "allkeys-lru"}, "REDIS_MAXMEMORY_POLICY", "noeviction"),
    ({"REDIS_MAXMEMORY_POLICY": "volatile-ttl"}, "REDIS_MAXMEMORY_POLICY", "noeviction"),
    ({"REDIS_MAXMEMORY": "a lot"}, "REDIS_MAXMEMORY", "768mb"),
    ({"PORT": "9000", "AIOS_WEB_PORT": "9001"}, "PORT", "set one of them"),
    ({"PORT": "0"}, "PORT", "greater than or equal to 1"),
    ({"GUNICORN_TIMEOUT": "0"}, "GUNICORN_TIMEOUT", "greater than 0"),
    # under compose its command line and published ports decide: what would be ignored is
    # refused, with the variable compose reads instead
    ({"AIOS_DEPLOYMENT": "compose", "PORT": "9000"}, "PORT", "AIOS_WEB_PORT"),
    ({"AIOS_DEPLOYMENT": "compose", "REDIS_MAXMEMORY": "1gb"}, "REDIS_MAXMEMORY",
     "AIOS_REDIS_MAXMEMORY"),
    # retired with the browser's move into browser sandboxes: never silently ignored
    ({"AIOS_CHROMIUM_PATH": "/usr/bin/chromium"}, "AIOS_CHROMIUM_PATH", "SANDBOX_BROWSER_IMAGE"),
    ({"AIOS_BROWSE_MAX_PAGE_BYTES": "100"}, "AIOS_BROWSE_MAX_PAGE_BYTES",
     "SANDBOX_BROWSER_MAX_BYTES"),
])
def test_a_refused_guide_setting_stops_the_start_saying_what_to_use(monkeypatch, env, named,
                                                                    instead):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigurationError) as err:
        load_settings()
    message = str(err.value)
    assert message.startswith("AI-OS: bad configuration\n"), message
    assert f"\n  {named}: " in message and instead in message, message


@pytest.mark.parametrize("env", [
    {"DEBUG": "false"}, {"DEBUG": "0"}, {"GUNICORN_WORKERS": "1"}, {"REDIS_MAXMEMORY": ""},
    {"REDIS_MAXMEMORY_POLICY": "noeviction"}, {"REDIS_MAXMEMORY_POLICY": "NoEviction"},
    {"REDIS_MAXMEMORY": "1gb", "PORT": "8765", "AIOS_WEB_PORT": "8765"},
    {"AIOS_DEPLOYMENT": "compose", "PORT": "8765", "REDIS_MAXMEMORY": ""},
])
def test_the_values_that_agree_with_the_project_are_accepted(monkeypatch, env):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    load_settings()


def test_port_is_the_webs_port_unless_aios_web_port_names_it(monkeypatch):
    assert load_settings().listen_port == 8765
    monkeypatch.setenv("PORT", "9000")
    assert load_settings().listen_port == 9000
    monkeypatch.setenv("AIOS_WEB_PORT", "9000")
    assert load_settings().listen_port == 9000
    monkeypatch.delenv("PORT")
    monkeypatch.setenv("AIOS_WEB_PORT", "9100")
    assert load_settings().listen_port == 9100


def test_gunicorn_binds_port_and_takes_gunicorn_timeout(tmp_path):
    done = gunicorn_config(tmp_path, PORT="18999", GUNICORN_TIMEOUT="600")
    assert done.returncode == 0, done.stderr
    config = resolved(done.stdout)
    assert config["bind"] == "['127.0.0.1:18999']"
    assert config["timeout"] == "600"
    assert config["workers"] == "1"
    assert resolved(gunicorn_config(tmp_path).stdout)["timeout"] == "30"  # gunicorn's default


def test_gunicorn_workers_stops_the_master_naming_it(tmp_path):
    done = gunicorn_config(tmp_path, GUNICORN_WORKERS="8")
    assert done.returncode != 0
    assert "  GUNICORN_WORKERS: GUNICORN_WORKERS=8 is refused" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_more_than_one_worker_on_the_command_line_is_refused_before_binding(tmp_path):
    environment = {k: v for k, v in os.environ.items()
                   if not k.startswith(("AIOS_", "SANDBOX_", "REDIS_", "CELERY_"))
                   and k not in GUIDE}
    environment.update(REQUIRED, PYTHONPATH=str(BACKEND))
    done = subprocess.run([str(GUNICORN), "-c", str(BACKEND / "gunicorn.conf.py"), "-w", "4",
                           "--bind", "127.0.0.1:0", "app:app"], env=environment, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "AI-OS: bad configuration\n  gunicorn -w 4: the web runs one worker" in done.stderr
    assert "Booting worker" not in done.stderr and "Traceback" not in done.stderr


def test_make_run_gives_redis_maxmemory_to_the_redis_it_starts():
    redis = supervise.commands({"REDIS_MAXMEMORY": " 1gb "}, "6379", "/tmp/redis")["redis"][1]
    assert redis[-2:] == ["--maxmemory", "1gb"]
    assert redis[redis.index("--maxmemory-policy") + 1] == "noeviction"
    unset = supervise.commands({}, "6379", "/tmp/redis")["redis"][1]
    assert "--maxmemory" not in unset  # redis's default: no limit


def test_the_guides_placeholder_keys_count_as_no_key(monkeypatch):
    """Its .env ships placeholders: a chat then says which variable to set (NO_KEY_HINT),
    rather than failing upstream with a 401."""
    for name, value in {"OPENAI_API_KEY": "sk-your-openai-key-here",
                        "GROQ_API_KEY": "your-groq-key-here",
                        "ANTHROPIC_API_KEY": "your-anthropic-key-here",
                        "MISTRAL_API_KEY": "your-mistral-key-here"}.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    assert [settings.openai_api_key, settings.groq_api_key, settings.anthropic_api_key,
            settings.mistral_api_key] == [None] * 4
    from aios.providers.registry import configured
    assert configured(settings) == []
    monkeypatch.setenv("OPENAI_API_KEY", "sk-a-real-looking-key")
    assert load_settings().openai_api_key.get_secret_value() == "sk-a-real-looking-key"
