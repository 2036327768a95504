"""Runs one task in a worker: claim, heartbeat, watch for cancel, execute, record. The
kinds it runs are handed to it (aios.kinds in the worker): the pipeline knows none."""

import logging
import socket
import threading
import time

import redis

from .context import RETRY_S, RunContext, transient
from .errors import Cancelled, TaskFailed
from .events import EventLog, LostOwnership, new_event
from .kind import Kinds
from .logcontext import log_fields
from .store import TaskStore
from .watcher import Watcher

log = logging.getLogger(__name__)


class TaskRunner:
    def __init__(self, store: TaskStore, events: EventLog, kinds: Kinds, deps: object,
                 heartbeat_interval_s: float, max_attempts: int = 3,
                 time_limit_errors: tuple[type[BaseException], ...] = (),
                 lease_s: float = 6.0, max_log_bytes: int = 8 << 20, on_end=None):
        self.message_for = None  # task id -> its Celery message, for a hand-back
        self.store = store
        self.events = events
        self.kinds = kinds
        self.deps = deps  # handed to each kind's run as it is (the worker's WorkerResources)
        self.max_attempts = max_attempts
        self.time_limit_errors = time_limit_errors
        self.max_log_bytes = max_log_bytes
        self.worker = f"{socket.gethostname()}:{threading.get_native_id()}"
        self.watcher = Watcher(store, self.worker, heartbeat_interval_s, lease_s)
        # on_end(kind, outcome, attempt, seconds) after each attempt run (the metrics)
        self.on_end = on_end

    def execute(self, task_id: str, message_for=None) -> str:
        """Runs the task unless another delivery already did or does; returns what happened.
        message_for(task_id): its Celery message, pushed again if the worker hands it back."""
        with log_fields(task_id=task_id, worker=self.worker):
            return self._execute(task_id, message_for)

    def _execute(self, task_id: str, message_for) -> str:
        self.message_for = message_for or self.message_for
        running = new_event(task_id, "status", {"status": "running"})
        claim = self._claim(task_id, running)
        if claim.outcome == "exhausted":
            self.events.stored_many(claim.events, claim.seq)
        if claim.outcome != "claimed":
            log.info("task %s not run: %s", task_id, claim.outcome)
            return claim.outcome
        with log_fields(kind=claim.kind, attempt=claim.attempt):
            return self._run(task_id, claim, running)

    def _run(self, task_id: str, claim, running: dict) -> str:
        attempt, kind, task_input = claim.attempt, claim.kind, claim.input
        ctx = RunContext(task_id, self.events, attempt, self.max_log_bytes)
        self.events.stored(running, claim.seq)
        self.watcher.add(ctx)
        log.info("task %s (%s) started, attempt %d", task_id, kind, attempt)
        started = time.monotonic()
        try:
            if attempt > 1:
                ctx.emit("log", {"text": f"restarted (attempt {attempt}) after a worker was "
                                         "lost\n"})
            outcome = self._outcome(ctx, kind, task_input)
        finally:
            self.watcher.remove(ctx)
        elapsed = time.monotonic() - started
        log.info("task %s (%s) %s in %.3f s", task_id, kind, outcome, elapsed)
        if self.on_end:
            self.on_end(kind, outcome, attempt, elapsed)
        return outcome

    def _claim(self, task_id: str, running: dict):
        """A claim that Redis refused for a moment is tried again: the message must not be
        acknowledged unclaimed (the task would stay queued for good)."""
        for delay in (*RETRY_S, None):
            try:
                return self.store.claim(task_id, self.worker, running, self.max_attempts)
            except redis.RedisError as exc:
                if delay is None or not transient(exc):
                    raise
                log.warning("task %s: the claim failed (%s); again in %s s", task_id, exc, delay)
                time.sleep(delay)

    def _outcome(self, ctx: RunContext, kind: str, task_input: dict) -> str:
        try:
            result = self.kinds[kind].run(ctx, task_input, self.deps)
            ctx.close()
            if ctx.cancelled.is_set():
                raise Cancelled()
            return self._end(ctx, "succeeded", "result", result)
        except Exception as exc:  # noqa: BLE001 - any failure is recorded, never lost
            if ctx.lost.is_set() or isinstance(exc, LostOwnership):
                log.warning("task %s: attempt %d stopped, the task is not its own any more",
                            ctx.task_id, ctx.attempt)
                return "superseded"  # writes nothing more: another attempt owns the task
            if ctx.released.is_set() and not ctx.cancelled.is_set():
                return self._hand_back(ctx)
            return self._failure(ctx, exc)

    def _hand_back(self, ctx: RunContext) -> str:
        """The worker stops: the task goes back to the queue, this attempt not counted."""
        try:
            ctx.close()  # what it printed stays in the log, before the requeue
        except Exception:  # noqa: BLE001 - handing the task back matters more
            log.warning("task %s: output lost", ctx.task_id, exc_info=True)
        events = [new_event(ctx.task_id, "log", {"text": "the worker is stopping: the task "
                                                         "goes back to the queue\n"}),
                  new_event(ctx.task_id, "status", {"status": "queued"})]
        seq = ctx.with_retries(lambda: self.store.release(
            ctx.task_id, ctx.attempt, self.message_for(ctx.task_id), events), patient=True)
        if not seq:
            return "superseded"
        self.events.stored_many(events, seq)
        log.warning("task %s handed back: its worker is stopping", ctx.task_id)
        return "requeued"

    def _failure(self, ctx: RunContext, exc: Exception) -> str:
        try:
            ctx.close()  # the output before the failure goes before its error
        except Exception:  # noqa: BLE001 - the failure is what matters now
            log.warning("task %s: output lost", ctx.task_id, exc_info=True)
        if isinstance(exc, Cancelled):
            return self._end(ctx, "cancelled", None, None)
        if isinstance(exc, TaskFailed):
            return self._end(ctx, "failed", "error", {"code": exc.code, "message": str(exc)})
        if isinstance(exc, self.time_limit_errors):
            return self._end(ctx, "failed", "error", {
                "code": "time_limit", "message": "the task ran past its soft time limit"})
        log.error("task %s failed", ctx.task_id, exc_info=exc)
        return self._end(ctx, "failed", "error",
                         {"code": type(exc).__name__, "message": str(exc)[:2000]})

    def _end(self, ctx: RunContext, status: str, field, value) -> str:
        """The result (or error) and the final status, logged with the record's change."""
        events = [new_event(ctx.task_id, field, value)] if field else []
        events.append(new_event(ctx.task_id, "status", {"status": status}))
        seq = ctx.with_retries(lambda: self.store.finish(
            ctx.task_id, ctx.attempt, status, field or "error", value, events), patient=True)
        if not seq:
            log.warning("task %s: attempt %d no longer owns the task", ctx.task_id, ctx.attempt)
            return "superseded"
        self.events.stored_many(events, seq)
        return status
