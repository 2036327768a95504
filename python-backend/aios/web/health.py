"""GET /health: redis, workers and the sandbox manager, checked side by side within 1 s."""

import threading
import time
from typing import Optional

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
    """Every manager side by side; ok while at least one is healthy (work goes there), each
    down one named."""
    clients = web_state(app).sandbox.clients
    answers = ask_each(clients) if len(clients) > 1 else {
        key: client.health(0.7) for key, client in clients.items()}  # a lone one: from here
    managers = [manager_health(key, *answers.get(key, (0, None, "no answer in time")))
                for key in clients]
    down = [m for m in managers if not m["ok"]]
    check = {"ok": len(down) < len(managers), "managers": managers}
    if down:  # all down: the check's error; some: named, the check still ok
        check["error" if len(down) == len(managers) else "degraded"] = "; ".join(
            f"{m['key']}: {m['error']}" for m in down)
    return check


def ask_each(clients: dict) -> dict[str, tuple]:
    """Every manager's /health, side by side."""
    answers: dict[str, tuple] = {}
    threads = [threading.Thread(target=lambda k=key, c=client: answers.__setitem__(
        k, c.health(0.7)), daemon=True) for key, client in clients.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(0.8)
    return answers


def manager_health(key: str, status: int, body: Optional[dict], error: str) -> dict:
    if status != 200:
        return {"key": key, "ok": False,
                "error": error or f"sandbox manager answered {status}"}
    body = body or {}
    return {"key": key, "ok": True, "name": body.get("name"), "counts": body.get("counts"),
            "capacity": body.get("capacity")}


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
