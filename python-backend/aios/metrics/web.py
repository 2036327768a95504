"""The web's metrics hooks and its GET /metrics (bearer AIOS_METRICS_TOKEN, else the API
token). Everything counted stays in this process's memory: no Redis round trip per metric."""

import time

from flask import Blueprint, Flask, Response, current_app, g, request
from prometheus_client import generate_latest

from ..settings import Settings
from ..tokens import bearer_matches
from ..web.errors import error_response
from ..web.state import web_state
from . import CONTENT_TYPE, WebMetrics

KEY = "aios_metrics"  # its key in app.extensions
bp = Blueprint("metrics", __name__)


def install(app: Flask, settings: Settings, tasks, manager, socketio) -> WebMetrics | None:
    """Counts requests, submissions, sockets and delivery lag of `app`; None when
    AIOS_METRICS is off (no hook, no /metrics)."""
    if not settings.metrics_enabled:
        return None
    metrics = WebMetrics()
    app.extensions[KEY] = metrics
    app.before_request(_started)
    app.after_request(_counted)
    app.register_blueprint(bp)
    count_submissions(tasks, metrics)
    manager.on_live = lambda events: _lagged(metrics, events)
    metrics.watch_sockets(lambda: _sockets(socketio))
    return metrics


def count_submissions(tasks, metrics: WebMetrics) -> None:
    """Wraps tasks.submit: a task created counts once under its (validated) kind."""
    submit = tasks.submit

    def counted(kind, task_input, task_id=None):
        submitted = submit(kind, task_input, task_id)
        if submitted.created:
            metrics.submitted.labels(kind).inc()
        return submitted
    tasks.submit = counted


def _started() -> None:
    g.metrics_started = time.perf_counter()


def _counted(response: Response) -> Response:
    started = g.get("metrics_started")
    if started is not None:
        rule = request.url_rule
        current_app.extensions[KEY].request_done(
            rule.rule if rule else "unmatched", request.method, response.status_code,
            time.perf_counter() - started)
    return response


def _lagged(metrics: WebMetrics, events: list) -> None:
    ts = events[0].get("ts")
    if isinstance(ts, (int, float)):
        metrics.delivery_lag.observe(max(0.0, time.time() - ts))


def _sockets(socketio) -> int:
    server = getattr(socketio, "server", None)
    return len(server.eio.sockets) if server is not None else 0


@bp.get("/metrics")
def metrics():
    settings = web_state().settings
    if not bearer_matches(request.headers.get("Authorization", ""), settings.scrape_token):
        return error_response(401, "missing or invalid bearer token (Authorization: Bearer "
                                   "$AIOS_METRICS_TOKEN, or $AIOS_API_TOKEN when that is unset)")
    return Response(generate_latest(current_app.extensions[KEY].registry),
                    content_type=CONTENT_TYPE)
