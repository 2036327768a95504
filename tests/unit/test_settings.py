import pytest

from aios_sandbox.settings import ConfigurationError, Settings, load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    for key in list(__import__("os").environ):
        if key.startswith("SANDBOX_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)  # no .env of the developer's


def test_missing_token_stops_start_with_the_variable_named():
    with pytest.raises(ConfigurationError) as err:
        load_settings()
    assert "SANDBOX_MANAGER_TOKEN" in str(err.value)


def test_insecure_mode_must_be_explicit(monkeypatch):
    monkeypatch.setenv("SANDBOX_INSECURE_NO_TOKEN", "1")
    assert load_settings().manager_token is None


def test_short_token_is_refused(monkeypatch):
    monkeypatch.setenv("SANDBOX_MANAGER_TOKEN", "short")
    with pytest.raises(ConfigurationError, match="SANDBOX_MANAGER_TOKEN"):
        load_settings()


def test_env_wins_over_dotenv_and_nested_limits_merge(monkeypatch, tmp_path):
    (tmp_path / ".env").write_text("SANDBOX_MANAGER_TOKEN=from-dotenv-0123456789\n"
                                   "SANDBOX_POOL_SIZE=5\n")
    monkeypatch.setenv("SANDBOX_POOL_SIZE", "3")
    monkeypatch.setenv("SANDBOX_MAXIMA__MEMORY_MB", "4096")
    settings = load_settings()
    assert settings.manager_token.get_secret_value() == "from-dotenv-0123456789"
    assert settings.pool_size == 3
    assert settings.maxima.memory_mb == 4096 and settings.maxima.pids == 512


def test_defaults_above_maxima_are_refused(monkeypatch):
    monkeypatch.setenv("SANDBOX_MANAGER_TOKEN", "x" * 20)
    monkeypatch.setenv("SANDBOX_DEFAULTS__MEMORY_MB", "8192")
    with pytest.raises(ConfigurationError, match="memory_mb"):
        load_settings()


def test_token_never_shows_in_repr():
    settings = Settings(manager_token="secret-token-value-123")
    assert "secret-token-value-123" not in repr(settings)
