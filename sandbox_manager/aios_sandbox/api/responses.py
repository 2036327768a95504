"""The error answers each route documents in /openapi.json (docs/api.md, "Errors")."""

from typing import Any

from pydantic import BaseModel, ConfigDict


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="allow")  # e.g. "limits": {field: max} on a 422

    code: str
    message: str


class ErrorOut(BaseModel):
    """Every error: {"error": {"code", "message"}}."""
    error: ErrorDetail


RETRY_AFTER = {"Retry-After": {"description": "seconds to wait before retrying",
                               "schema": {"type": "integer"}}}
WWW_AUTHENTICATE = {"WWW-Authenticate": {"description": "`Bearer`", "schema": {"type": "string"}}}

WHEN = {
    400: "`malformed_json`: the body is not JSON; `bad_path`: a file path that is absolute, "
         "has `..`/`.`/empty parts, a control character, or names what is not a plain file",
    401: "`unauthorized`: the bearer token is missing or wrong",
    403: "`egress_disabled`: `\"network\": \"egress\"` while SANDBOX_ALLOW_EGRESS is off; "
         "`browsers_disabled`: a browser while SANDBOX_ALLOW_BROWSERS is off",
    404: "`not_found`: no such sandbox or browser (or it expired), or no such file",
    409: "`busy`: the sandbox or browser is running another request",
    413: "`too_large`: the body, code, stdin, a file or the number of files over its cap",
    415: "`unsupported_media_type`: a body sent without `Content-Type: application/json`",
    422: "`invalid_request`: missing, unknown or invalid fields, an unknown language or "
         "browser action, limits above the server maxima",
    429: "`at_capacity`: as many runs, sandboxes or browsers as the caps allow; retry after "
         "Retry-After",
    503: "`unavailable`: Docker down, image missing (`make images`), a sandbox or browser "
         "that stopped answering (it is destroyed), a browser that did not start, or "
         "hardening not in force (the manager fails closed)",
}
HEADERS = {401: WWW_AUTHENTICATE, 429: RETRY_AFTER}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route or router: each status with the error body and its headers."""
    return {status: {"model": ErrorOut, "description": WHEN[status],
                     **({"headers": HEADERS[status]} if status in HEADERS else {})}
            for status in statuses}


# Any route behind the token: 401 without it; 413 from the body cap, whatever the route.
AUTHENTICATED = errors(401, 413)
JSON_BODY = errors(400, 415, 422)  # a route that reads a JSON body

NDJSON = {200: {"description": "the result; with `?stream=true`, NDJSON lines as output is "
                               "produced, then the result",
                "content": {"application/x-ndjson": {"schema": {"type": "string"}}}}}
