"""Checks of each action's arguments, before anything touches the browser."""

import re
from urllib.parse import urlsplit

from browser_errors import ActionError

ALLOWED_SCHEMES = ("http", "https")
URL_MAX = 8192
TEXT_MAX = 100_000
REF = re.compile(r"^(?:f\d{1,6})?e\d{1,9}$")  # Playwright's AI snapshot refs: e12, f1e3
# A key or chord as Playwright's keyboard.press spells it: Enter, ArrowDown, Control+A, a.
KEY = re.compile(r"^(?:[A-Za-z][A-Za-z0-9]{0,20}\+){0,3}(?:[A-Za-z0-9]{1,20}|[^\sA-Za-z0-9])$")
SNAPSHOT_MAX_CHARS = 20_000
SNAPSHOT_CEILING = 200_000
READ_MAX_CHARS = 50_000
DOWNLOAD_MAX_BYTES = 20 * 1024 * 1024
DOWNLOAD_CEILING = 100 * 1024 * 1024
SCROLL_PIXELS_MAX = 100_000
TIMEOUT_DEFAULT_S = 30.0
TIMEOUT_MAX_S = 300.0


def _invalid(message: str) -> ActionError:
    return ActionError("invalid", message)


def check_known(args: dict, allowed: tuple[str, ...], action: str) -> None:
    if not isinstance(args, dict):
        raise _invalid(f"{action}: args must be an object")
    unknown = sorted(set(args) - set(allowed))
    if unknown:
        raise _invalid(f"{action}: unknown argument(s) {', '.join(unknown)}")


def flag(args: dict, name: str, default: bool = False) -> bool:
    value = args.get(name, default)
    if not isinstance(value, bool):
        raise _invalid(f"{name} must be true or false")
    return value


def integer(args: dict, name: str, default: int, low: int, high: int) -> int:
    value = args.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _invalid(f"{name} must be an integer from {low} to {high}")
    return value


def text(args: dict, name: str, limit: int = TEXT_MAX) -> str:
    value = args.get(name)
    if not isinstance(value, str):
        raise _invalid(f"{name} must be a string")
    if len(value) > limit:
        raise _invalid(f"{name} is longer than {limit} characters")
    return value


def ref(args: dict) -> str:
    value = args.get("ref")
    if not isinstance(value, str) or not REF.fullmatch(value):
        raise _invalid("ref must be an element ref from the latest snapshot, like e12")
    return value


def key(args: dict) -> str:
    value = args.get("key")
    if not isinstance(value, str) or not KEY.fullmatch(value):
        raise _invalid("key must be a key name such as Enter, Tab, ArrowDown or Control+A")
    return value


def url(args: dict) -> str:
    """An absolute http(s) URL; any other scheme is refused (file:, data:, chrome:, ...)."""
    value = args.get("url")
    if not isinstance(value, str) or not value.strip():
        raise _invalid("url must be a non-empty string")
    value = value.strip()
    if len(value) > URL_MAX:
        raise _invalid(f"url is longer than {URL_MAX} characters")
    parts = urlsplit(value)
    scheme = parts.scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        shown = f"{scheme}:" if scheme else "a URL without a scheme"
        raise ActionError("refused", f"only http and https pages may be opened, not {shown}")
    if not parts.hostname:
        raise _invalid("url must name a host")
    return value


def values(args: dict) -> list[str]:
    value = args.get("values")
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or \
            not all(isinstance(v, str) and len(v) <= 1000 for v in value) or len(value) > 100:
        raise _invalid("values must be a non-empty list of option values or labels")
    return value


def timeout(request: dict) -> float:
    value = request.get("timeout_s", TIMEOUT_DEFAULT_S)
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not 0 < value <= TIMEOUT_MAX_S:
        raise _invalid(f"timeout_s must be a number above 0 and at most {TIMEOUT_MAX_S:g}")
    return float(value)
