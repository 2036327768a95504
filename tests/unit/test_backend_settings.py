import os

import pytest

from aios.celery_app import create_celery
from aios.resources import mcp_config
from aios.settings import ConfigurationError, load_settings

REQUIRED = {"AIOS_API_TOKEN": "a" * 16, "SECRET_KEY": "b" * 16, "SANDBOX_MANAGER_TOKEN": "c" * 16}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    for key in list(os.environ):
        if key.startswith(("AIOS_", "SANDBOX_", "REDIS_", "CELERY_")) or key == "SECRET_KEY":
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


def test_each_missing_secret_is_named(monkeypatch):
    with pytest.raises(ConfigurationError) as err:
        load_settings()
    for name in REQUIRED:
        assert name in str(err.value)


def test_environment_wins_over_dotenv_and_lists_parse(monkeypatch, tmp_path):
    (tmp_path / ".env").write_text("".join(f"{k}={v}\n" for k, v in REQUIRED.items())
                                   + "REDIS_URL=redis://from-dotenv:1/0\n")
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6390/0")
    monkeypatch.setenv("AIOS_CORS_ORIGINS", "file://, app://x")
    monkeypatch.setenv("AIOS_HEARTBEAT_TTL_S", "9")
    settings = load_settings()
    assert settings.redis_url == "redis://127.0.0.1:6390/0"
    assert settings.broker_url == settings.result_backend == settings.redis_url
    assert settings.cors_origins == ["file://", "app://x"]
    assert settings.heartbeat_ttl_s == 9


def test_a_heartbeat_ttl_too_short_for_its_interval_is_refused(monkeypatch):
    for key, value in REQUIRED.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AIOS_HEARTBEAT_TTL_S", "4")  # the interval is 2: a lease of 2 s
    with pytest.raises(ConfigurationError, match="AIOS_HEARTBEAT_TTL_S must be at least twice"):
        load_settings()


def test_defaults_allow_electron_origins(monkeypatch):
    for key, value in REQUIRED.items():
        monkeypatch.setenv(key, value)
    assert {"file://", "null", "app://."} <= set(load_settings().cors_origins)


def test_secrets_never_show_in_repr(monkeypatch):
    for key, value in REQUIRED.items():
        monkeypatch.setenv(key, value)
    assert "aaaaaaaaaaaaaaaa" not in repr(load_settings())


def test_a_bad_mcp_file_or_upload_folder_stops_the_start_naming_the_variable(monkeypatch,
                                                                              tmp_path):
    for key, value in REQUIRED.items():
        monkeypatch.setenv(key, value)
    # the MCP file is read by the services as they start (the web and the worker)
    monkeypatch.setenv("AIOS_MCP_CONFIG", str(tmp_path / "missing.json"))
    with pytest.raises(ConfigurationError, match="AIOS_MCP_CONFIG"):
        create_celery(load_settings())
    (tmp_path / "mcp.json").write_text('{"mcpServers": {"s": {"command": 1}}}')
    monkeypatch.setenv("AIOS_MCP_CONFIG", str(tmp_path / "mcp.json"))
    with pytest.raises(ConfigurationError, match="server 's'"):
        mcp_config(load_settings())
    monkeypatch.delenv("AIOS_MCP_CONFIG")
    monkeypatch.setenv("AIOS_FILE_ROOTS", str(tmp_path / "files"))
    monkeypatch.setenv("AIOS_UPLOAD_DIR", "/var/tmp/elsewhere")
    with pytest.raises(ConfigurationError, match="AIOS_UPLOAD_DIR"):
        load_settings()
