"""Every error is JSON: {"error": {"code", "message"}}; never a traceback."""

import logging

import redis
from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

from ..tasks.errors import BadTaskInput
from ..tasks.pressure import StorageFull
from ..tasks.service import TaskNotFound

log = logging.getLogger(__name__)
REDIS_RETRY_AFTER_S = 2
CODES = {400: "bad_request", 401: "unauthorized", 404: "not_found", 405: "method_not_allowed",
         409: "conflict", 413: "too_large", 415: "unsupported_media_type",
         422: "invalid_request", 429: "rate_limited", 431: "headers_too_large",
         503: "unavailable"}


class ApiError(Exception):
    def __init__(self, status: int, message: str, code: str = ""):
        super().__init__(message)
        self.status, self.message, self.code = status, message, code or CODES.get(status, "error")


def error_response(status: int, message: str, code: str = ""):
    response = jsonify({"error": {"code": code or CODES.get(status, "error"), "message": message}})
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = "Bearer"
    return response


def register(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def api_error(exc: ApiError):
        return error_response(exc.status, exc.message, exc.code)

    @app.errorhandler(BadTaskInput)
    def bad_input(exc: BadTaskInput):
        return error_response(exc.status, str(exc))

    @app.errorhandler(TaskNotFound)
    def not_found(exc: TaskNotFound):
        return error_response(404, str(exc))

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        return error_response(exc.code or 500, exc.description or exc.name)

    @app.errorhandler(StorageFull)
    def storage_full(exc: StorageFull):
        response = error_response(503, str(exc), "storage_full")
        response.headers["Retry-After"] = str(exc.retry_after_s)
        return response

    @app.errorhandler(redis.RedisError)
    def redis_down(exc: redis.RedisError):
        log.warning("Redis refused a request: %s", exc)
        response = error_response(503, f"Redis is unavailable or full for now ({exc}); "
                                       "retry later", "unavailable")
        response.headers["Retry-After"] = str(REDIS_RETRY_AFTER_S)
        return response

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        log.exception("unhandled error")
        return error_response(500, "internal error; see the server log", "internal")
