"""The FastAPI application factory: settings, Docker client and service live on app.state."""

import logging
import secrets
from contextlib import asynccontextmanager
from typing import Optional

import docker
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import AtCapacity, ServiceError
from ..sandbox import Launcher, SpecBuilder
from ..service import SandboxService
from ..settings import Settings, load_settings
from ..spec import container_spec
from . import health, runs, sandboxes
from .auth import require_token

log = logging.getLogger("aios_sandbox")


def error_body(code: str, message: str, **extra) -> dict:
    return {"error": {"code": code, "message": message, **extra}}


def create_app(settings: Optional[Settings] = None,
               spec_builder: SpecBuilder = container_spec) -> FastAPI:
    settings = settings or load_settings()
    if settings.manager_token is None:
        log.warning("SANDBOX_INSECURE_NO_TOKEN is on: the API accepts requests without a token")

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        client = docker.from_env(timeout=30, max_pool_size=32)
        launcher = Launcher(client, settings, secrets.token_hex(6), spec_builder)
        app.state.docker = client
        app.state.service = SandboxService(launcher, settings)
        await app.state.service.start()
        try:
            yield
        finally:
            await app.state.service.close()
            client.close()

    app = FastAPI(title="AI-OS sandbox manager", version="1.0", lifespan=lifespan)
    app.state.settings = settings
    app.include_router(health.router)
    app.include_router(runs.router, dependencies=[Depends(require_token)])
    app.include_router(sandboxes.router, dependencies=[Depends(require_token)])
    install_error_handlers(app)
    install_body_cap(app, settings.max_request_bytes)
    return app


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def service_error(request: Request, exc: ServiceError):
        headers = {}
        if isinstance(exc, AtCapacity):
            headers["Retry-After"] = str(exc.retry_after_s)
        if exc.status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        return JSONResponse(error_body(exc.code, exc.message, **exc.extra), exc.status, headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        errors = exc.errors()
        content_type = request.headers.get("content-type", "")
        if request.method in ("POST", "PUT") and not content_type.startswith("application/json"):
            return JSONResponse(error_body("unsupported_media_type",
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
        return JSONResponse(error_body(code, str(exc.detail)), exc.status_code)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse(error_body("internal", "internal error; see the manager's log"), 500)


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
