"""The fields a task's log lines carry (task_id, kind, attempt, worker, sandbox_id): set here
by the runner and whoever learns more (the sandbox client), read by the log formatter."""

from contextlib import contextmanager
from contextvars import ContextVar
from typing import Optional

FIELDS: ContextVar[Optional[dict]] = ContextVar("aios_log_fields", default=None)


def current_fields() -> dict:
    return FIELDS.get() or {}


@contextmanager
def log_fields(**fields):
    """Adds `fields` to every log line of this thread (or coroutine) until the block ends."""
    token = FIELDS.set({**current_fields(), **fields})
    try:
        yield
    finally:
        FIELDS.reset(token)
