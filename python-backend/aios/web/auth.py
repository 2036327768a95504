"""The API token, for REST (Bearer header) and Socket.IO (connect auth)."""

import hmac

from flask import current_app


def token_ok(given: object) -> bool:
    expected = current_app.extensions["aios.settings"].aios_api_token.get_secret_value()
    return isinstance(given, str) and hmac.compare_digest(given.encode(), expected.encode())


def bearer(header: str) -> str:
    scheme, _, token = (header or "").partition(" ")
    return token if scheme.lower() == "bearer" else ""
