"""The API token, for REST (Bearer header) and Socket.IO (connect auth)."""

from ..tokens import same_token
from .state import web_state


def token_ok(given: object) -> bool:
    return same_token(given, web_state().settings.api_token.get_secret_value())
