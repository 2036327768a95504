"""How the web and the worker log: plain text (the default) or, with LOG_FORMAT=json, one
JSON object per line carrying the running task's fields; known secrets masked in both."""

import json
import logging
import time
from collections.abc import Mapping
from typing import Optional

from .tasks.logcontext import current_fields

MASK = "[redacted]"
# gunicorn's access log atoms, as fields of their own
ACCESS_FIELDS = {"method": "m", "path": "U", "status": "s", "duration_ms": "M"}
# LogRecord's own attributes: what a call's `extra=` adds is anything else
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One line of JSON: time, level, logger, message, the task's fields and any `extra`."""

    def format(self, record: logging.LogRecord) -> str:
        line = {"time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
                + f".{int(record.msecs):03d}Z",
                "level": record.levelname, "logger": record.name,
                "message": record.getMessage(), "process": record.process}
        line.update(current_fields())
        if isinstance(record.args, Mapping):
            line.update(_fields_of_args(record.name, record.args, line))
        line.update({key: value for key, value in vars(record).items()
                     if key not in _STANDARD and not key.startswith("_")})
        if record.exc_info:
            line["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(line, default=str)


def _fields_of_args(logger: str, args: Mapping, line: dict) -> dict:
    """gunicorn's access atoms; the task id of Celery's lines (its message id is ours)."""
    if logger == "gunicorn.access":
        return {name: _number(args[atom]) for name, atom in ACCESS_FIELDS.items()}
    if logger.startswith("celery") and "id" in args and "task_id" not in line:
        return {"task_id": args["id"]}
    return {}


def _number(value):
    return int(value) if isinstance(value, str) and value.isdigit() else value


class Redacting(logging.Formatter):
    """Wraps a formatter: each known secret value in its output becomes [redacted]."""

    def __init__(self, inner: logging.Formatter, secrets: list[str]):
        super().__init__()
        self.inner = inner
        # longest first (one may contain another); JSON-escaped forms too
        found = {s for secret in secrets if secret for s in (secret, json.dumps(secret)[1:-1])}
        self.secrets = sorted(found, key=len, reverse=True)

    def format(self, record: logging.LogRecord) -> str:
        text = self.inner.format(record)
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        return text


def _handlers() -> list[logging.Handler]:
    loggers = [logging.getLogger()] + [logger for logger in
                                       logging.root.manager.loggerDict.values()
                                       if isinstance(logger, logging.Logger)]
    return [handler for logger in loggers for handler in logger.handlers]


def configure_logging(log_format: str, level: Optional[str], secrets: list[str]) -> None:
    """Every handler so far (root's, gunicorn's, Celery's) gets the format and the masking;
    the root logger gets a stderr handler if it has none. Called again, it does it again."""
    root = logging.getLogger()
    if level:
        root.setLevel(level)
    if not root.handlers:
        root.addHandler(logging.StreamHandler())
        root.handlers[0].setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.captureWarnings(log_format == "json")  # a warning is a JSON line too
    for handler in _handlers():
        inner = handler.formatter or logging.Formatter()
        if isinstance(inner, Redacting):
            inner = inner.inner
        if log_format == "json":
            inner = JsonFormatter()
        handler.setFormatter(Redacting(inner, secrets))


def secrets_of(settings: object) -> list[str]:
    """The values to mask: every secret setting, and any password inside a URL setting."""
    found = []
    for value in vars(settings).values():
        if hasattr(value, "get_secret_value"):
            found.append(value.get_secret_value())
        elif isinstance(value, str) and "://" in value:
            found.extend(_password(value))
    return [secret for secret in found if secret]


def _password(url: str) -> list[str]:
    """As written in the URL, and decoded."""
    from urllib.parse import unquote, urlsplit
    try:
        password = urlsplit(url).password or ""
    except ValueError:
        return []
    return [password, unquote(password)]


def log_as(settings, level: bool = True) -> None:
    """configure_logging as `settings` say (LOG_FORMAT, LOG_LEVEL, the secrets to mask)."""
    configure_logging(settings.log_format, settings.log_level if level else None,
                      secrets_of(settings))


class _ErrorsLog:
    """A wsgi.errors stream whose every write is a log record of `gunicorn.error`."""

    log = logging.getLogger("gunicorn.error")

    def write(self, text: str) -> None:
        if text.strip():
            self.log.warning("%s", text.strip())

    def writelines(self, lines) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        pass


class ErrorsToLog:
    """WSGI middleware: what libraries write to wsgi.errors (eventlet's WebSocket notices)
    becomes log lines, in the log format, instead of raw text on stderr."""

    def __init__(self, wsgi_app):
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        environ["wsgi.errors"] = _ErrorsLog()
        return self.wsgi_app(environ, start_response)
