"""The API token, for REST (Bearer header) and Socket.IO (connect auth)."""

import hmac

from .state import web_state


def token_ok(given: object) -> bool:
    expected = web_state().settings.api_token.get_secret_value()
    return isinstance(given, str) and hmac.compare_digest(given.encode(), expected.encode())


def bearer(header: str) -> str:
    scheme, _, token = (header or "").partition(" ")
    return token if scheme.lower() == "bearer" else ""
