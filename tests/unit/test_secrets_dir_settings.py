"""Compose's secrets volume (AIOS_SECRETS_DIR, written by docker-compose.yml's one-shot
`secrets`): both Settings read a secret from its file when the environment and .env lack it;
the environment and .env win; REDIS_PASSWORD goes into redis URLs that carry none."""
import os

import pytest

from aios.settings import load_settings, with_redis_password
from aios_sandbox.settings import load_settings as load_manager_settings

SECRETS = {"AIOS_API_TOKEN": "file-token-aaaaaaaaaa", "SECRET_KEY": "file-key-bbbbbbbbbbbb",
           "SANDBOX_MANAGER_TOKEN": "file-manager-cccccccccc",
           "REDIS_PASSWORD": "file-redis-dddddddddd"}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    for key in list(os.environ):
        if key.startswith(("AIOS_", "SANDBOX_", "REDIS_", "CELERY_")) or key == "SECRET_KEY":
            monkeypatch.delenv(key)
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)  # no developer's .env


@pytest.fixture
def secrets(tmp_path, monkeypatch):
    folder = tmp_path / "secrets"
    folder.mkdir()
    for name, value in SECRETS.items():
        (folder / name).write_text(value)  # as aios-make-secrets writes them: no newline
    monkeypatch.setenv("AIOS_SECRETS_DIR", str(folder))
    return folder


def test_secrets_come_from_the_folder_when_nothing_else_sets_them(secrets, monkeypatch):
    monkeypatch.setenv("REDIS_URL", "redis://redis:6379/0")
    monkeypatch.setenv("CELERY_BROKER_URL", "redis://redis:6379/1")
    settings = load_settings()
    assert settings.api_token.get_secret_value() == SECRETS["AIOS_API_TOKEN"]
    assert settings.secret_key.get_secret_value() == SECRETS["SECRET_KEY"]
    assert settings.sandbox_manager_token.get_secret_value() == SECRETS["SANDBOX_MANAGER_TOKEN"]
    assert settings.redis_url == "redis://:file-redis-dddddddddd@redis:6379/0"
    assert settings.broker_url == "redis://:file-redis-dddddddddd@redis:6379/1"
    assert settings.result_backend == settings.redis_url
    manager = load_manager_settings(_env_file=None)
    assert manager.manager_token.get_secret_value() == SECRETS["SANDBOX_MANAGER_TOKEN"]


def test_the_environment_and_dotenv_win_over_the_folder(secrets, monkeypatch):
    monkeypatch.setenv("AIOS_API_TOKEN", "env-token-eeeeeeeeeeee")
    monkeypatch.setenv("SANDBOX_MANAGER_TOKEN", "env-manager-ffffffffff")
    monkeypatch.setenv("REDIS_PASSWORD", "env-redis/gg@gggggg")
    monkeypatch.setenv("REDIS_URL", "redis://redis:6379/0")
    (secrets.parent / "cwd" / ".env").write_text("SECRET_KEY=dotenv-key-hhhhhhhhhh\n")
    settings = load_settings()
    assert settings.api_token.get_secret_value() == "env-token-eeeeeeeeeeee"
    assert settings.secret_key.get_secret_value() == "dotenv-key-hhhhhhhhhh"
    assert settings.redis_url == "redis://:env-redis%2Fgg%40gggggg@redis:6379/0"  # quoted
    manager = load_manager_settings(_env_file=None)
    assert manager.manager_token.get_secret_value() == "env-manager-ffffffffff"


def test_a_url_with_credentials_keeps_them(secrets, monkeypatch):
    monkeypatch.setenv("REDIS_URL", "redis://:own-password@redis:6379/0")
    assert load_settings().redis_url == "redis://:own-password@redis:6379/0"
    assert with_redis_password("redis://user:pw@h:1/0", "x") == "redis://user:pw@h:1/0"
    assert with_redis_password("rediss://h:1/0", "x") == "rediss://:x@h:1/0"
    assert with_redis_password("memory://", "x") == "memory://"


def test_without_a_secrets_folder_redis_urls_are_as_given(monkeypatch, tmp_path):
    # Natively (make run) REDIS_PASSWORD may name a password the redis at REDIS_URL does not
    # ask for: scripts/run.sh decides what goes into the URL, not the settings.
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")
    monkeypatch.setenv("AIOS_SECRETS_DIR", str(tmp_path / "missing"))  # no such folder
    assert load_settings().redis_url == "redis://127.0.0.1:6379/0"


def test_a_secret_missing_everywhere_is_still_named(secrets, monkeypatch):
    (secrets / "AIOS_API_TOKEN").unlink()
    with pytest.raises(SystemExit) as err:
        load_settings()
    assert "AIOS_API_TOKEN" in str(err.value)
    assert SECRETS["SECRET_KEY"] not in str(err.value)
