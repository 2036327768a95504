"""The supervisor's error codes, and how Playwright's failures map onto them."""

import re

CODES = ("invalid", "stale_ref", "not_found", "refused", "timeout", "too_large",
         "needs_approval", "failed")
MESSAGE_MAX = 300


class ActionError(Exception):
    """An action's failure: code and one clear sentence go back to the manager."""

    def __init__(self, code: str, message: str):
        assert code in CODES, code
        super().__init__(message)
        self.code = code
        self.message = message

    def frame(self) -> dict:
        return {"t": "error", "code": self.code, "message": self.message}


# Chromium's net errors that mean "the proxy would not take us there": a refused CONNECT
# (HTTPS) ends as a failed tunnel; no proxy at all (the black hole) as a proxy failure.
TUNNEL_FAILED = "ERR_TUNNEL_CONNECTION_FAILED"
PROXY_DOWN = ("ERR_PROXY_CONNECTION_FAILED", "ERR_NO_SUPPORTED_PROXIES")
_NET_ERROR = re.compile(r"net::(ERR_[A-Z_]+)")
_CALL_LOG = "\nCall log:"


def net_error(message: str) -> str | None:
    """Chromium's net::ERR_... name in a Playwright error message, if any."""
    found = _NET_ERROR.search(message or "")
    return found.group(1) if found else None


def first_line(message: str) -> str:
    """Playwright's messages carry a call log and sometimes a stack: keep the first line."""
    text = (message or "").split(_CALL_LOG)[0].strip().splitlines()
    line = text[0] if text else "unknown error"
    return line[:MESSAGE_MAX]


def from_playwright(exc: BaseException, what: str, timeout_s: float) -> ActionError:
    """An ActionError for a Playwright exception raised while doing `what`."""
    message = str(exc)
    if type(exc).__name__ == "TimeoutError" or re.search(r"Timeout \d+ms exceeded", message):
        return ActionError("timeout", f"{what} did not finish within {timeout_s:g} s")
    error = net_error(message)
    if error in PROXY_DOWN:
        return ActionError("refused", f"{what} failed: the browser's proxy is not reachable "
                                      f"({error}); nothing may leave this browser")
    if error:
        return ActionError("failed", f"{what} failed: {error}")
    if "Element is not attached to the DOM" in message or "element was detached" in message:
        return ActionError("stale_ref", f"{what} failed: the element is gone from the page; "
                                        "take a new snapshot")
    if "Unknown key" in message:
        return ActionError("invalid", first_line(message))
    if "crash" in message.lower():
        return ActionError("failed", f"{what} failed: the tab crashed (out of memory?) and is "
                                     "closed; open the page again")
    if "has been closed" in message:
        return ActionError("failed", f"{what} failed: the tab was closed")
    return ActionError("failed", f"{what} failed: {first_line(message)}")
