"""The FastAPI application factory: settings, Docker client and service live on app.state."""

import logging
import secrets
from contextlib import asynccontextmanager
from typing import Optional

import docker
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import AtCapacity, ServiceError
from ..browser_spec import browser_container_spec
from ..sandbox import Launcher, SpecBuilder
from ..service import SandboxService
from ..settings import Settings, load_settings
from ..spec import container_spec
from .. import metrics
from . import browsers, health, runs, sandboxes
from .auth import require_token
from .responses import AUTHENTICATED
from .schemas import document_settings

log = logging.getLogger("aios_sandbox")
ROUTERS = (health.router, runs.router, sandboxes.router, browsers.router)


def error_body(code: str, message: str, **extra) -> dict:
    return {"error": {"code": code, "message": message, **extra}}


def create_app(settings: Optional[Settings] = None,
               spec_builder: SpecBuilder = container_spec,
               browser_spec_builder: SpecBuilder = browser_container_spec) -> FastAPI:
    settings = settings or load_settings()
    if settings.manager_token is None:
        log.warning("SANDBOX_INSECURE_NO_TOKEN is on: the API accepts requests without a token")

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        client = docker.from_env(timeout=30, max_pool_size=32)
        launcher = Launcher(client, settings, secrets.token_hex(6), spec_builder,
                            browser_spec_builder)
        app.state.docker = client
        app.state.service = SandboxService(launcher, settings, app.state.metrics)
        await app.state.service.start()
        try:
            yield
        finally:
            await app.state.service.close()
            client.close()

    app = FastAPI(title="AI-OS sandbox manager", version="1.0", lifespan=lifespan)
    app.state.settings = settings
    app.state.metrics = metrics.ManagerMetrics(settings.manager_name)
    app.state.metrics.watch(lambda: getattr(app.state, "service", None))
    app.include_router(health.router)
    for router in (*ROUTERS[1:], metrics.router):
        app.include_router(router, dependencies=[Depends(require_token)],
                           responses=AUTHENTICATED)
    install_error_handlers(app)
    install_body_cap(app, settings.max_request_bytes)
    generate_openapi = app.openapi

    def openapi() -> dict:  # FastAPI's, with this server's maxima and languages written in
        fresh = app.openapi_schema is None
        schema = generate_openapi()
        if fresh:
            document_settings(schema, settings)
        return schema
    app.openapi = openapi
    return app


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def service_error(request: Request, exc: ServiceError):
        headers = {}
        if isinstance(exc, AtCapacity):
            headers["Retry-After"] = str(exc.retry_after_s)
            request.app.state.metrics.at_capacity.labels(metrics.route_of(request)).inc()
        if exc.status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        return JSONResponse(error_body(exc.code, exc.message, **exc.extra), exc.status, headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        errors = exc.errors()
        content_type = request.headers.get("content-type", "")
        about_the_body = any(e["loc"][:1] == ("body",) for e in errors)
        if about_the_body and not content_type.startswith("application/json"):
            return JSONResponse(
                error_body("unsupported_media_type",
                           "send the body as JSON (Content-Type: application/json)"),
                415)
        if any(e.get("type") == "json_invalid" for e in errors):
            return JSONResponse(error_body("malformed_json", "the body is not valid JSON"), 400)
        problems = ["/".join(str(p) for p in e["loc"] if p != "body") + ": " + e["msg"]
                    for e in errors]
        return JSONResponse(error_body("invalid_request", "; ".join(problems)[:2000]), 422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        headers = dict(exc.headers or {})
        methods = allowed_methods(request) if exc.status_code == 405 else []
        if methods:  # RFC 9110: a 405's Allow lists every method the path has
            headers["Allow"] = ", ".join(methods)
        return JSONResponse(error_body(code, str(exc.detail)), exc.status_code, headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse(error_body("internal", "internal error; see the manager's log"), 500)


def allowed_methods(request: Request) -> list[str]:
    """The methods of every route whose path matches (Starlette names only the first's)."""
    path = request.scope["path"]
    return sorted({method for router in ROUTERS for route in router.routes
                   if isinstance(route, APIRoute) and route.path_regex.match(path)
                   for method in route.methods})


def install_body_cap(app: FastAPI, limit: int) -> None:
    app.add_middleware(BodyCap, limit=limit)


class BodyCap:
    """Refuses a declared body over the cap before anything reads it (pure ASGI, so
    streaming and disconnect detection are untouched)."""

    def __init__(self, app, limit: int):
        self.app = app
        self.limit = limit

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            length = dict(scope["headers"]).get(b"content-length", b"")
            if length.isdigit() and int(length) > self.limit:
                body = error_body("too_large", f"request body over {self.limit} bytes")
                return await JSONResponse(body, 413)(scope, receive, send)
        await self.app(scope, receive, send)
