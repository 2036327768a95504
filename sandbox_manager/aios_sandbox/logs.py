"""How the manager logs: plain text (the default) or, with LOG_FORMAT=json, one JSON object
per line, the same shape as the web's and worker's (python-backend/aios/logs.py), with the
`sandbox_id` of the request when its path names one; its token never appears."""

import json
import logging
import re
import time

MASK = "[redacted]"
_SANDBOX_PATH = re.compile(r"/v1/(?:sandboxes|browsers)/([A-Za-z0-9_.-]+)")
# LogRecord's own attributes, and uvicorn's coloured copy of the message: not fields
_STANDARD = (set(vars(logging.LogRecord("", 0, "", 0, "", None, None)))
             | {"message", "asctime", "color_message"})


class JsonFormatter(logging.Formatter):
    def __init__(self, secrets: list[str]):
        super().__init__()
        self.secrets = sorted({s for secret in secrets if secret
                               for s in (secret, json.dumps(secret)[1:-1])}, key=len, reverse=True)

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        line = {"time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
                + f".{int(record.msecs):03d}Z",
                "level": record.levelname, "logger": record.name, "message": message,
                "process": record.process}
        found = _SANDBOX_PATH.search(message)
        if found:
            line["sandbox_id"] = found.group(1)
        line.update({key: value for key, value in vars(record).items()
                     if key not in _STANDARD and not key.startswith("_")})
        if record.exc_info:
            line["exc_info"] = self.formatException(record.exc_info)
        return self.redact(json.dumps(line, default=str))

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        return text


class RedactingText(JsonFormatter):
    """The plain-text format, masked the same way."""

    text = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return self.redact(self.text.format(record))


def configure_logging(log_format: str, secrets: list[str]) -> None:
    """Every handler so far (root's, uvicorn's) gets the format; root gets one if it has none."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=logging.INFO)
    formatter = JsonFormatter(secrets) if log_format == "json" else None
    for logger in [root] + [logger for logger in logging.root.manager.loggerDict.values()
                            if isinstance(logger, logging.Logger)]:
        for handler in logger.handlers:
            handler.setFormatter(formatter or _masked(handler.formatter, secrets))


def _masked(formatter, secrets: list[str]) -> logging.Formatter:
    masked = RedactingText(secrets)
    if formatter is not None and not isinstance(formatter, JsonFormatter):
        masked.text = formatter  # uvicorn's own (colours, client address) kept
    elif isinstance(formatter, RedactingText):
        masked.text = formatter.text
    return masked
