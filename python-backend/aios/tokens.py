"""Bearer tokens, compared in constant time: the API's, and /metrics' on the web and on the
worker's exporter. No imports beyond the standard library: the exporter process uses it."""

import hmac


def bearer(header: str) -> str:
    """The token of an `Authorization: Bearer <token>` header; "" for any other header."""
    scheme, _, token = (header or "").partition(" ")
    return token if scheme.lower() == "bearer" else ""


def same_token(given: object, expected: str) -> bool:
    return isinstance(given, str) and hmac.compare_digest(given.encode(), expected.encode())


def bearer_matches(header: str, expected: str) -> bool:
    return same_token(bearer(header), expected)
