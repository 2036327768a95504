"""GET /health: redis, workers and the sandbox manager, checked side by side within 1 s."""

import threading
import time

import httpx
from flask import Blueprint, current_app, jsonify

from ..tasks.keys import WORKERS
from .state import web_state

bp = Blueprint("health", __name__)
DEADLINE_S = 0.9


def check_redis(app) -> dict:
    state = web_state(app)
    state.redis.ping()
    pressure = state.tasks.pressure
    ratio = pressure.ratio(fresh=True)
    if ratio is None:
        return {"ok": True}
    full = ratio >= pressure.high_water
    return {"ok": not full, "memory_used": round(ratio, 3),
            **({"error": f"Redis is {ratio:.0%} full (high-water mark "
                         f"{pressure.high_water:.0%}): new tasks are refused"} if full else {})}


def check_workers(app) -> dict:
    # Ping the workers that signed in recently; the ping returns as soon as they all answer.
    state = web_state(app)
    recent = state.redis.zrangebyscore(
        WORKERS, time.time() - 3 * state.settings.watchdog_interval_s, "+inf")
    replies = state.celery.control.ping(timeout=0.5, limit=len(recent) or None)
    workers = sorted(name for reply in replies for name in reply)
    if not workers:
        return {"ok": False, "error": "no Celery worker answered a ping"}
    return {"ok": True, "workers": workers}


def check_sandbox(app) -> dict:
    url = web_state(app).settings.sandbox_manager_url
    response = httpx.get(url + "/health", timeout=0.7)
    if response.status_code != 200:
        return {"ok": False, "error": f"sandbox manager answered {response.status_code}"}
    return {"ok": True}


CHECKS = {"redis": check_redis, "workers": check_workers, "sandbox_manager": check_sandbox}


@bp.get("/health")
def health():
    app = current_app._get_current_object()
    started = time.monotonic()
    results: dict[str, dict] = {}

    def run(name, check):
        try:
            results[name] = check(app)
        except Exception as exc:  # noqa: BLE001 - a failed check is named, never raised
            results[name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}

    threads = [threading.Thread(target=run, args=item, daemon=True) for item in CHECKS.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, DEADLINE_S - (time.monotonic() - started)))
    checks = {name: results.get(name, {"ok": False, "error": "no answer within the deadline"})
              for name in CHECKS}
    ok = all(check["ok"] for check in checks.values())
    body = {"status": "ok" if ok else "unavailable", "checks": checks,
            "elapsed_ms": round((time.monotonic() - started) * 1000, 1)}
    return jsonify(body), 200 if ok else 503
