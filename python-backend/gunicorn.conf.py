"""Gunicorn reads this file from the directory it runs in, so the design's command,
`gunicorn --worker-class eventlet -w 1 --bind 0.0.0.0:8765 app:app` from python-backend/,
gets these settings unchanged. Flags on the command line win over them."""

import json
import logging
import subprocess
import sys
import warnings

# Only light modules here: the master forks the eventlet (or gevent) worker, which must import
# Flask and the app itself, after eventlet (gevent) has patched the standard library. Not even
# pydantic: eventlet's monkey_patch() walks every object the master left it, and pydantic's
# BaseModel answers that walk with an error that eventlet prints as a traceback at every start.
from aios.open_files import raise_open_files_limit

# Validated here too (in a process of its own, for the reason above): a missing or bad
# variable stops the master with its name, instead of a worker that fails to boot again and
# again.
_checked = subprocess.run(
    [sys.executable, "-c", "import json; from aios.settings import load_settings; "
     "s = load_settings(); print(json.dumps([s.web_worker_connections, s.log_level, "
     "s.listen_port, s.gunicorn_timeout, s.log_format, s.web_worker_class]))"],
    capture_output=True, text=True)
if _checked.returncode:
    sys.stderr.write(_checked.stderr)
    sys.exit(_checked.returncode)
_connections, _log_level, _port, _timeout, _log_format, _worker_class = json.loads(
    _checked.stdout.splitlines()[-1])

# Flask-SocketIO on eventlet (or gevent): one worker process holds every client (a second
# worker would need sticky sessions); more web processes share clients through Redis. The
# design guide's GUNICORN_WORKERS is refused unless 1 (aios/settings.py), and so is `-w N`.
# AIOS_WEB_WORKER_CLASS comes through the settings, like the rest: validated once, .env read
# as the app reads it, and the app's Socket.IO async mode (app.py) is the same value.
worker_class = _worker_class
workers = 1
bind = [f"127.0.0.1:{_port}"]  # AIOS_WEB_PORT or the guide's PORT; --bind wins
timeout = _timeout  # GUNICORN_TIMEOUT; --timeout wins
# gunicorn's default, 1000, silently hangs client 1,001 and every health check after it.
worker_connections = _connections
loglevel = _log_level.lower()
if _log_format == "json":
    # gunicorn's error and access logs go to the root logger, whose one handler writes JSON
    # lines (aios/logs.py); the worker then adds the masking of secrets to it (app.py)
    logconfig_dict = {
        "root": {"level": _log_level, "handlers": ["json"]},
        "loggers": {"gunicorn.error": {"level": _log_level, "handlers": [], "propagate": True},
                    "gunicorn.access": {"level": "INFO", "handlers": [], "propagate": True}},
        "handlers": {"json": {"class": "logging.StreamHandler", "formatter": "json",
                              "stream": "ext://sys.stderr"}},
        "formatters": {"json": {"()": "aios.logs.JsonFormatter"}},
    }
# On SIGTERM, open WebSockets would hold the worker for gunicorn's 30 s default: clients
# reconnect and resume from their last event anyway, so a restart waits 5 s at most.
graceful_timeout = 5


# The design runs eventlet on gunicorn < 26 (pinned); their deprecation notices say nothing a
# user of this project can act on, so they are kept out of a healthy start.
warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")


class _NoEventletNotice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("The eventlet worker is DEPRECATED")


def post_fork(server, worker):
    server.log.error_log.addFilter(_NoEventletNotice())


def on_starting(server):
    if server.cfg.workers != 1:  # `-w N` on the command line (the guide's Dockerfile says 4)
        sys.exit(f"AI-OS: bad configuration\n  gunicorn -w {server.cfg.workers}: the web runs "
                 "one worker (Flask-SocketIO on eventlet: a client's requests must reach one "
                 "process, and gunicorn's workers have no sticky sessions); give -w 1, or run "
                 "more web processes behind a load balancer with sticky sessions")
    if server.cfg.worker_class_str != worker_class:  # `--worker-class` (the design's command)
        sys.exit(f"AI-OS: bad configuration\n  gunicorn --worker-class "
                 f"{server.cfg.worker_class_str}, but AIOS_WEB_WORKER_CLASS is {worker_class}: "
                 "Socket.IO's async mode follows AIOS_WEB_WORKER_CLASS (eventlet or gevent); "
                 "set it to the worker class you give, or give none")
    warning = raise_open_files_limit(worker_connections)
    if warning:
        server.log.warning(warning)
