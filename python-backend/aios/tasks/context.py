"""What a running task's code may use: emit events, check for cancel, stop on cancel, pause.

Events go to the log only while this attempt owns the task (the attempt number fences every
write), their streamed output joined (output.py), and no more than `max_log_bytes` of them:
past that, one `log` event says so and the rest is dropped (the result is still recorded)."""

import json
import logging
import threading
import time
from typing import Callable, Optional

import redis

from .events import EventLog, LostOwnership, new_event
from .output import OutputCoalescer

log = logging.getLogger(__name__)
STREAMED = ("stdout", "stderr", "token")
RETRY_S = (0.2, 0.5, 1, 2, 4, 8, 15)  # a write that Redis refused is tried again after these
PATIENCE_S = 600  # how long a task's end waits for Redis to take it


class RunContext:
    def __init__(self, task_id: str, events: EventLog, attempt: int = 0,
                 max_log_bytes: int = 8 << 20):
        self.task_id = task_id
        self.events = events
        self.attempt = attempt
        self.max_log_bytes = max_log_bytes
        self.cancelled = threading.Event()
        self.lost = threading.Event()  # another attempt owns the task: stop, write nothing
        self.released = threading.Event()  # the worker stops: hand the task back
        self.deadline_reached = False  # set by a kind that enforces its own wall-time limit
        self._abort: Optional[Callable[[], None]] = None
        self._woken = threading.Event()  # a cancel, a loss or an interrupt ends a pause
        self._logged_bytes = 0
        self._capped = False
        self._output = OutputCoalescer(self._append)

    def emit(self, type_: str, data: dict) -> None:
        """Log and send an event; output is joined with what follows it for a moment."""
        if type_ in STREAMED and set(data) == {"text"}:
            self._output.add(type_, data["text"])
            return
        self._output.flush([(type_, data)])  # after what was printed before it

    def close(self) -> None:
        """Sends the output still waiting; raises what made an earlier send fail."""
        self._output.close()

    def _append(self, items: list[tuple[str, dict]]) -> None:
        events = [new_event(self.task_id, kind, data) for kind, data in self._within_cap(items)]
        if events:
            self.with_retries(lambda: self.events.append_owned(self.task_id, self.attempt,
                                                                events))

    def _within_cap(self, items: list[tuple[str, dict]]) -> list[tuple[str, dict]]:
        kept = []
        for kind, data in items:
            size = len(json.dumps(data))
            if self._capped:
                continue
            if self._logged_bytes + size > self.max_log_bytes:
                self._capped = True
                kept.append(("log", {"text": f"[the task's event log reached "
                                             f"{self.max_log_bytes} bytes: later output is "
                                             "not kept; the result will be]\n"}))
                continue
            self._logged_bytes += size
            kept.append((kind, data))
        return kept

    def with_retries(self, write: Callable[[], object], patient: bool = False):
        """Redis away or full for a while is waited out (with backoff), not a failure. A
        patient write (the task's end: the body is done, and the write is fenced) is tried
        for up to PATIENCE_S, even after the task was lost."""
        delays = (*RETRY_S, *([RETRY_S[-1]] * int(PATIENCE_S / RETRY_S[-1]) if patient else ()))
        for delay in (*delays, None):
            try:
                return write()
            except LostOwnership:
                self.lose()
                raise
            except redis.RedisError as exc:
                if delay is None or not transient(exc) or (self.lost.is_set() and not patient):
                    raise
                log.warning("task %s: Redis refused a write (%s); again in %s s",
                            self.task_id, exc, delay)
                time.sleep(delay)

    def on_cancel(self, abort: Callable[[], None]) -> None:
        """Call abort (from the watcher thread) when the task is cancelled."""
        self._abort = abort
        if self.cancelled.is_set() or self.lost.is_set():
            abort()

    def abort(self) -> None:
        self.cancelled.set()
        self.interrupt()

    def release(self) -> None:
        """The worker is stopping: stop what runs; the runner hands the task back."""
        self.released.set()
        self.interrupt()

    def lose(self) -> None:
        """This attempt no longer owns the task (or can no longer tell that it does): stop
        what runs, and write nothing more."""
        if not self.lost.is_set():
            log.warning("task %s: attempt %d lost the task; stopping it", self.task_id,
                        self.attempt)
        self.lost.set()
        self.interrupt()

    def interrupt(self) -> None:
        """Stop what blocks now (a stream, a sandbox run, a pause), without cancelling the
        task."""
        self._woken.set()
        if self._abort:
            self._abort()

    def pause(self, seconds: float) -> bool:
        """Wait, e.g. before a retry; True when a cancel, a loss or an interrupt came first."""
        return (self._woken.wait(seconds) or self.cancelled.is_set() or self.lost.is_set()
                or self.released.is_set())


TRANSIENT = (redis.ConnectionError, redis.TimeoutError, redis.exceptions.OutOfMemoryError,
             redis.exceptions.BusyLoadingError, redis.exceptions.ReadOnlyError,
             redis.exceptions.MasterDownError, redis.exceptions.TryAgainError)


def transient(exc: Exception) -> bool:
    """Connection trouble, or Redis full, loading or failing over: worth waiting for."""
    return isinstance(exc, TRANSIENT)
