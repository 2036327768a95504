"""Gunicorn reads this file from the directory it runs in, so the design's command,
`gunicorn --worker-class eventlet -w 1 --bind 0.0.0.0:8765 app:app` from python-backend/,
gets these settings unchanged. Flags on the command line win over them."""

# Only light modules here: the master forks the eventlet worker, which must import Flask and
# the app itself, after eventlet has patched the standard library.
from aios.open_files import raise_open_files_limit
from aios.settings import load_settings

# Validated here too: a missing or bad variable stops the master with its name, instead of
# a worker that fails to boot again and again.
_settings = load_settings()

# Flask-SocketIO on eventlet: one worker process holds every client (a second worker
# would need sticky sessions); more web processes share clients through Redis.
worker_class = "eventlet"
workers = 1
bind = ["127.0.0.1:8765"]
# gunicorn's default, 1000, silently hangs client 1,001 and every health check after it.
worker_connections = _settings.web_worker_connections
loglevel = _settings.log_level.lower()


def on_starting(server):
    warning = raise_open_files_limit(worker_connections)
    if warning:
        server.log.warning(warning)
