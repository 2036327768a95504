"""The worker's metrics exporter: `python -m aios.metrics.exporter --dir D --addr A --port P
--parent PID`, started by the worker's main process (worker.py). Serves GET /metrics, the
sum of the pool children's files in D, to a bearer of AIOS_EXPORTER_TOKEN; exits when its
parent does."""

import argparse
import json
import os
import signal
import threading
import time
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, generate_latest, multiprocess

from ..tokens import bearer_matches
from . import CONTENT_TYPE

BIND_PATIENCE_S = 5.0


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args):  # a scrape every few seconds is no news
        pass


def metrics_app(folder: str, token: str):
    """The WSGI app: /metrics for the token's bearer, a JSON error otherwise."""
    def app(environ, start_response):
        if environ.get("PATH_INFO") != "/metrics":
            return _error(start_response, "404 Not Found", "not_found", "only GET /metrics")
        if not bearer_matches(environ.get("HTTP_AUTHORIZATION", ""), token):
            return _error(start_response, "401 Unauthorized", "unauthorized",
                          "missing or invalid bearer token (Authorization: Bearer "
                          "$AIOS_METRICS_TOKEN, or $AIOS_API_TOKEN when that is unset)")
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=folder)
        start_response("200 OK", [("Content-Type", CONTENT_TYPE)])
        return [generate_latest(registry)]
    return app


def _error(start_response, status: str, code: str, message: str):
    start_response(status, [("Content-Type", "application/json")]
                   + ([("WWW-Authenticate", "Bearer")] if code == "unauthorized" else []))
    return [json.dumps({"error": {"code": code, "message": message}}).encode()]


def _exit_with(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1)
    os._exit(0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dir", required=True)
    parser.add_argument("--addr", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--parent", type=int, required=True)
    args = parser.parse_args()
    # Ctrl-C reaches the worker's whole process group: the worker stops this process itself
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    token = os.environ.pop("AIOS_EXPORTER_TOKEN", "")
    if not token:
        raise SystemExit("aios.metrics.exporter: AIOS_EXPORTER_TOKEN is not set")
    threading.Thread(target=_exit_with, args=(args.parent,), daemon=True).start()
    listen(args.addr, args.port, metrics_app(args.dir, token)).serve_forever()


def listen(addr: str, port: int, app, patience_s: float = BIND_PATIENCE_S) -> _Server:
    """The server, once the port is free: a restarted worker's port may still be held, for
    up to a second, by the exporter of the worker it replaces."""
    deadline = time.monotonic() + patience_s
    while True:
        try:
            return make_server(addr, port, app, _Server, _Quiet)
        except OSError as exc:  # another worker on this host has the port: no metrics here
            if time.monotonic() > deadline:
                raise SystemExit(f"aios.metrics.exporter: cannot listen on {addr}:{port}: "
                                 f"{exc} (set AIOS_WORKER_METRICS_PORT)") from None
            time.sleep(0.25)


if __name__ == "__main__":
    main()
