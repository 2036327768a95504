"""GET /health: Docker reachable, image present, hardening verified, counts. Never hangs."""

import asyncio
import time

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

router = APIRouter(tags=["health"])
DOCKER_TIMEOUT_S = 0.8


def _docker_checks(client, image: str, browser_image: str | None) -> dict:
    """Each check by name; a failure is named, never raised. The browser image is reported
    apart (`browser_image`): its absence turns browsers off, not code runs."""
    try:
        client.ping()
    except Exception as exc:  # noqa: BLE001 - requests' errors too, when dockerd is gone
        return {"docker": {"ok": False, "error": str(exc)[:300]}}
    checks = {"docker": {"ok": True}, "image": _image_present(client, image)}
    if browser_image:
        checks["browser_image"] = _image_present(client, browser_image)
    return checks


def _image_present(client, image: str) -> dict:
    try:
        client.images.get(image)
    except Exception as exc:  # noqa: BLE001
        return {"ok": False, "name": image, "error": str(exc)[:300]}
    return {"ok": True, "name": image}


@router.get("/health", summary="Liveness and readiness (no token needed)", responses={
    503: {"description": "not ready: the same body, `status` \"unavailable\" and the failing "
                         "check named", "content": {"application/json": {"schema": {}}}}})
async def health(request: Request):
    state = request.app.state
    settings = state.settings
    started = time.perf_counter()
    try:
        checks = await asyncio.wait_for(
            asyncio.to_thread(_docker_checks, state.docker, settings.image,
                              settings.browser_image if settings.allow_browsers else None),
            DOCKER_TIMEOUT_S)
    except asyncio.TimeoutError:
        checks = {"docker": {"ok": False, "error": "docker did not answer in time"}}
    service = state.service
    problem = service.refusal or service.unverified
    checks["hardening"] = {"ok": problem is None, "error": problem}
    browser_image = checks.pop("browser_image", None)
    ok = all(c["ok"] for c in checks.values())
    body = {
        "status": "ok" if ok else "unavailable",
        "checks": checks,
        "name": settings.manager_name,  # its containers' aios.manager label
        "counts": {"sessions": len(service.sessions), "active_runs": service.active_runs,
                   "pool_ready": service.pool.ready, "pool_size": service.pool.size,
                   "browsers": len(service.browsers.browsers)},
        # the caps the counts run up to: a worker places work by what is left (free room)
        "capacity": {"max_active_runs": settings.max_active_runs,
                     "max_sessions": settings.max_sessions,
                     "max_browsers": settings.max_browsers if settings.allow_browsers else 0},
        # browsers: allowed, and their image is there (else `browser_image` says why not)
        "features": {"egress": settings.allow_egress,
                     "browsers": bool(browser_image and browser_image["ok"])},
        **({"browser_image": browser_image} if browser_image else {}),
        "elapsed_ms": round((time.perf_counter() - started) * 1000, 1),
    }
    return JSONResponse(body, status_code=200 if ok else 503)
