"""LOG_FORMAT: the JSON lines of the web and worker (aios/logs.py) and of the sandbox manager
(aios_sandbox/logs.py): one object per line, the task's fields, secrets masked."""

import io
import json
import logging
from types import SimpleNamespace

import pytest
from pydantic import SecretStr

from aios.logs import JsonFormatter, Redacting, configure_logging, secrets_of
from aios.settings import ConfigurationError, load_settings
from aios.tasks.logcontext import current_fields, log_fields
from aios_sandbox import logs as manager_logs
from aios_sandbox.egress import Egress, Route
from aios_sandbox.settings import ConfigurationError as ManagerConfigurationError
from aios_sandbox.settings import load_settings as manager_settings

SECRET = "tok-" + "x" * 20


def emit(formatter: logging.Formatter, name="aios.test", *args, **kwargs) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    logger = logging.getLogger(name)
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning(*args, **kwargs)
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    return stream.getvalue()


def test_a_line_is_one_json_object_with_the_task_fields():
    with log_fields(task_id="t-1", worker="host:7"):
        with log_fields(kind="code", attempt=2):
            text = emit(JsonFormatter(), "aios.test", "ran %s\nover two lines", "it",
                        extra={"sandbox_id": "sb-9"})
        assert current_fields() == {"task_id": "t-1", "worker": "host:7"}
    assert current_fields() == {}
    assert text.count("\n") == 1
    line = json.loads(text)
    assert line["message"] == "ran it\nover two lines" and line["level"] == "WARNING"
    assert line["logger"] == "aios.test" and line["time"].endswith("Z")
    assert {k: line[k] for k in ("task_id", "kind", "attempt", "worker", "sandbox_id")} == {
        "task_id": "t-1", "kind": "code", "attempt": 2, "worker": "host:7", "sandbox_id": "sb-9"}


def test_outside_a_task_there_are_no_task_fields():
    line = json.loads(emit(JsonFormatter(), "aios.test", "idle"))
    assert not {"task_id", "kind", "attempt", "worker"} & set(line)


def test_secrets_are_masked_in_messages_arguments_and_tracebacks():
    formatter = Redacting(JsonFormatter(), [SECRET, 'quo"te-secret'])
    try:
        raise RuntimeError(f"failed with {SECRET}")
    except RuntimeError:
        text = emit(formatter, "aios.test", "token %s and quo\"te-secret", SECRET, exc_info=True)
    assert SECRET not in text and "quo" not in text
    line = json.loads(text)
    assert line["message"] == "token [redacted] and [redacted]"
    assert "failed with [redacted]" in line["exc_info"]


def test_text_stays_text_and_is_masked_too():
    text = emit(Redacting(logging.Formatter("%(levelname)s %(message)s"), [SECRET]),
                "aios.test", "key=%s", SECRET)
    assert text == "WARNING key=[redacted]\n"


def test_gunicorn_access_lines_carry_the_request_and_celery_lines_the_task_id():
    atoms = {"m": "GET", "U": "/health", "s": "200", "M": 3, "r": "GET /health HTTP/1.1"}
    line = json.loads(emit(JsonFormatter(), "gunicorn.access", "%(r)s %(s)s", atoms))
    assert (line["message"], line["method"], line["path"], line["status"],
            line["duration_ms"]) == ("GET /health HTTP/1.1 200", "GET", "/health", 200, 3)
    line = json.loads(emit(JsonFormatter(), "celery.app.trace", "Task %(name)s[%(id)s] ok",
                           {"name": "aios.run_task", "id": "t-5"}))
    assert line["task_id"] == "t-5"


def test_the_secrets_are_every_secret_setting_and_url_passwords():
    class Fake:
        api_token = SecretStr("api-token-value")
        groq_api_key = None
        redis_url = "redis://:p%40ss@redis:6379/0"
        sandbox_manager_url = "http://127.0.0.1:8000"
        log_level = "INFO"

    settings = Fake()
    settings.__dict__.update({k: v for k, v in vars(Fake).items() if not k.startswith("_")})
    assert sorted(secrets_of(settings)) == ["api-token-value", "p%40ss", "p@ss"]


@pytest.fixture
def restored_logging():
    """configure_logging changes every handler: put them back as they were."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    formatters = {h: h.formatter for h in handlers}
    yield
    logging.captureWarnings(False)
    root.handlers[:] = handlers
    root.setLevel(level)
    for handler, formatter in formatters.items():
        handler.setFormatter(formatter)


def test_configure_logging_reformats_every_handler(restored_logging):
    stream = io.StringIO()
    logging.getLogger().addHandler(logging.StreamHandler(stream))
    configure_logging("json", "INFO", [SECRET])
    configure_logging("json", None, [SECRET])  # again (Celery's signals): not wrapped twice
    logging.getLogger("aios.test").info("secret %s", SECRET)
    assert json.loads(stream.getvalue())["message"] == "secret [redacted]"


@pytest.mark.parametrize("load,error", [(load_settings, ConfigurationError),
                                        (manager_settings, ManagerConfigurationError)])
def test_a_bad_log_format_stops_the_start_naming_it(monkeypatch, tmp_path, load, error):
    monkeypatch.chdir(tmp_path)
    for name, value in {"AIOS_API_TOKEN": "a" * 16, "SECRET_KEY": "b" * 16,
                        "SANDBOX_MANAGER_TOKEN": "c" * 16, "LOG_FORMAT": "xml"}.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(error) as err:
        load()
    assert "LOG_FORMAT" in str(err.value)
    monkeypatch.setenv("LOG_FORMAT", "json")
    assert load().log_format == "json"


def test_the_managers_lines_name_the_sandbox_of_the_request_and_mask_its_token():
    formatter = manager_logs.JsonFormatter([SECRET])
    text = emit(formatter, "uvicorn.access", '%s - "%s %s HTTP/%s" %d', "127.0.0.1:5", "POST",
                "/v1/sandboxes/abc123/exec?stream=true", "1.1", 200)
    line = json.loads(text)
    assert line["sandbox_id"] == "abc123" and line["logger"] == "uvicorn.access"
    text = emit(formatter, "aios_sandbox", "Bearer %s", SECRET)
    assert json.loads(text)["message"] == "Bearer [redacted]" and "sandbox_id" not in text
    text = emit(manager_logs.RedactingText([SECRET]), "aios_sandbox", "Bearer %s", SECRET)
    assert text.endswith("aios_sandbox: Bearer [redacted]\n")


def test_an_egress_proxys_line_names_the_sandbox_it_serves(caplog):
    class Stats:  # dockerd's stats call failing: the line that says the bytes went uncounted
        def stats(self, *args, **kwargs):
            raise OSError("stats refused")

    egress = Egress(SimpleNamespace(api=Stats()), settings=None)
    egress.on_bytes = lambda *counted: None
    route = Route("aios-net-sb-1", "proxy" * 4, "http://10.0.0.2:3128", "sandbox", "sb-1")
    with caplog.at_level(logging.INFO, logger="aios_sandbox.egress"):
        egress._count(route)
    [record] = [r for r in caplog.records if "bytes not counted" in r.getMessage()]
    line = json.loads(manager_logs.JsonFormatter([]).format(record))
    assert line["sandbox_id"] == "sb-1"
