"""Bearer-token check for every route but /health."""

import hmac

from fastapi import Request

from ..errors import ServiceError


class Unauthorized(ServiceError):
    status, code = 401, "unauthorized"


def require_token(request: Request) -> None:
    token = request.app.state.settings.manager_token
    if token is None:  # insecure development mode, refused unless explicitly enabled
        return
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given:
        raise Unauthorized("missing bearer token (Authorization: Bearer $SANDBOX_MANAGER_TOKEN)")
    if not hmac.compare_digest(given.encode(), token.get_secret_value().encode()):
        raise Unauthorized("invalid token")
