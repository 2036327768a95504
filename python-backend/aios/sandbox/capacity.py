"""A sandbox manager at capacity (429) or unavailable for a moment (503) is waited for, as
its Retry-After says, until the task's own time limit ends the wait (the soft time limit
interrupts it) or a cancel does; a `log` event says that the task waits."""

import time
from typing import Callable, TypeVar

from ..metrics import capacity_waited
from .client import SandboxError

T = TypeVar("T")
BACKOFF_S = (1, 2, 4, 8, 15)  # when the manager sends no Retry-After
SAY_AGAIN_S = 30.0


def waiting_for_capacity(call: Callable[[], T], emit: Callable[[str, dict], None],
                         pause: Callable[[float], bool]) -> T:
    """call(), again and again while the sandbox manager is busy. pause(s) -> True when the
    task was cancelled meanwhile: the last error is raised then."""
    said_at, tries, began = None, 0, time.monotonic()
    while True:
        try:
            result = call()
            if tries:
                capacity_waited(time.monotonic() - began)
            return result
        except SandboxError as exc:
            if not exc.busy:
                raise
            wait = exc.retry_after_s or BACKOFF_S[min(tries, len(BACKOFF_S) - 1)]
            tries += 1
            now = time.monotonic()
            if said_at is None or now - said_at >= SAY_AGAIN_S:
                emit("log", {"text": f"waiting for a sandbox: {exc} (trying again every "
                                     f"{wait:g} s)\n"})
                said_at = now
            if pause(wait):
                raise
