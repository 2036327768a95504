"""One watcher per worker process, for every task the process runs: it keeps their
heartbeats alive for the watchdog, passes cancels on, and stops a task this attempt no
longer owns. A heartbeat refused (another attempt took the task) stops it at once; so does
a lease that ran out because Redis could not be reached: a worker cut off from Redis must
stop before the watchdog of another can requeue the task, or the two would both run it."""

import logging
import threading
import time
from typing import Optional

from .context import RunContext
from .store import TaskStore

log = logging.getLogger(__name__)


class Watcher:
    TICK_S = 0.1

    def __init__(self, store: TaskStore, worker: str, heartbeat_interval_s: float,
                 lease_s: float):
        self.store = store
        self.worker = worker
        self.heartbeat_interval_s = heartbeat_interval_s
        self.lease_s = lease_s  # since the last heartbeat that Redis took
        self._running: dict[str, RunContext] = {}
        self._renewed: dict[str, float] = {}
        self._lock = threading.Lock()
        self._threads: Optional[tuple[threading.Thread, threading.Thread]] = None

    def add(self, ctx: RunContext) -> None:
        with self._lock:
            self._running[ctx.task_id] = ctx
            self._renewed[ctx.task_id] = time.monotonic()  # the claim set the heartbeat
            if self._threads is None:
                # Two threads: the beater may hang in a Redis call; the guard never does
                self._threads = (self._thread(self._beat, "aios-task-heartbeat"),
                                 self._thread(self._guard, "aios-task-lease"))

    def remove(self, ctx: RunContext) -> None:
        with self._lock:
            self._running.pop(ctx.task_id, None)
            self._renewed.pop(ctx.task_id, None)

    @staticmethod
    def _thread(target, name: str) -> threading.Thread:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        return thread

    def _tasks(self) -> list[RunContext]:
        with self._lock:
            return list(self._running.values())

    def _beat(self) -> None:
        last_beat = 0.0
        while True:
            time.sleep(self.TICK_S)
            beat = time.monotonic() - last_beat >= self.heartbeat_interval_s
            for ctx in self._tasks():
                try:
                    if beat:
                        self._renew(ctx)
                    if not ctx.cancelled.is_set() and self.store.cancel_requested(ctx.task_id):
                        ctx.abort()
                    if not ctx.released.is_set() and \
                            self.store.release_requested(ctx.task_id):
                        ctx.release()
                except Exception:  # noqa: BLE001 - Redis away for a moment: the lease decides
                    log.warning("task watcher: Redis unavailable", exc_info=True)
            if beat:
                last_beat = time.monotonic()

    def _renew(self, ctx: RunContext) -> None:
        asked = time.monotonic()
        if self.store.heartbeat(ctx.task_id, ctx.attempt, self.worker):
            with self._lock:
                if ctx.task_id in self._renewed:
                    self._renewed[ctx.task_id] = asked
        else:
            ctx.lose()

    def _guard(self) -> None:
        while True:
            time.sleep(self.TICK_S)
            now = time.monotonic()
            with self._lock:
                expired = [self._running[t] for t, renewed in self._renewed.items()
                           if now - renewed > self.lease_s]
            for ctx in expired:
                ctx.lose()
