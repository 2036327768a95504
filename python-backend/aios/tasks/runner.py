"""Runs one task in a worker: claim, heartbeat, watch for cancel, execute, record."""

import base64
import logging
import socket
import threading
import time

import redis

from . import attachments
from .artifacts import publish_outputs
from .capacity import waiting_for_capacity
from .context import RETRY_S, RunContext, transient
from .events import EventLog, LostOwnership, new_event
from ..chat import run_chat
from ..files.roots import FileRefused
from ..providers.base import ProviderError
from .sandbox_client import SandboxError
from .store import TaskStore
from .watcher import Watcher

log = logging.getLogger(__name__)


class Cancelled(Exception):
    pass


class TaskFailed(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


def run_echo(ctx: RunContext, task_input: dict, deps) -> dict:
    return {"text": task_input["text"]}


def failed(ctx: RunContext, exc, code: str) -> Exception:
    """What a failure of a kind's dependency becomes: `cancelled` when it came from a
    cancel (the stream or run was cut on purpose), else a failure with its code."""
    return Cancelled() if ctx.cancelled.is_set() else TaskFailed(code, str(exc))


def run_code(ctx: RunContext, task_input: dict, deps) -> dict:
    def output(stream: str, text: str) -> None:
        ctx.emit(stream, {"text": text})
    body = dict(task_input)
    attached = _attach(ctx, body, deps)
    try:
        result = waiting_for_capacity(
            lambda: deps.sandbox.run(body, output, owner=f"task:{ctx.task_id}",
                                     register_close=ctx.on_cancel), ctx.emit, ctx.pause)
    except SandboxError as exc:
        raise failed(ctx, exc, exc.code) from exc
    publish_outputs(ctx, result, deps.artifacts)
    return dict(result, **({"attachments": [a.listed() for a in attached]} if attached else {}))


def _attach(ctx: RunContext, body: dict, deps) -> list:
    """The task's attachments join its files, under names that clash with none of them."""
    paths = body.pop("attachments", None)
    if not paths:
        return []
    try:
        attached = attachments.load(deps.files, paths, deps.settings.aios_upload_dir,
                                    taken=body.get("files", {}))
    except FileRefused as exc:
        raise TaskFailed("bad_attachment", str(exc)) from exc
    body["files"] = {**body.get("files", {}), **{
        a.name: {"data_base64": base64.b64encode(a.data).decode()} for a in attached}}
    ctx.emit("log", {"text": "attached: " + ", ".join(a.describe() for a in attached) + "\n"})
    return attached


def run_chat_task(ctx: RunContext, task_input: dict, deps) -> dict:
    try:
        settings = deps.settings
        return run_chat(ctx, task_input, deps.providers, settings.llm_max_retries,
                        settings.aios_llm_fallback, deps.chat_cache, deps.files)
    except FileRefused as exc:
        raise TaskFailed("bad_attachment", str(exc)) from exc
    except ProviderError as exc:
        raise failed(ctx, exc, exc.code) from exc


def run_agent_task(ctx: RunContext, task_input: dict, deps) -> dict:
    from ..agent.loop import Stopped
    from ..agent.sessions import SessionBusy
    from ..agent.task import agent_task
    try:
        return agent_task(ctx, task_input, deps, deps.agent_sessions)
    except Stopped as exc:
        raise Cancelled() from exc
    except SessionBusy as exc:
        raise TaskFailed("session_busy", str(exc)) from exc
    except KeyError as exc:  # an unknown tool name (the web checks too)
        raise TaskFailed("invalid_request", str(exc.args[0])) from exc
    except ProviderError as exc:
        raise failed(ctx, exc, exc.code) from exc


RUNNERS = {"echo": run_echo, "code": run_code, "chat": run_chat_task, "agent": run_agent_task}


class TaskRunner:
    def __init__(self, store: TaskStore, events: EventLog, deps,
                 heartbeat_interval_s: float, max_attempts: int = 3,
                 time_limit_errors: tuple[type[BaseException], ...] = (),
                 lease_s: float = 6.0, max_log_bytes: int = 8 << 20):
        self.message_for = None  # task id -> its Celery message, for a hand-back
        self.store = store
        self.events = events
        self.deps = deps  # what kinds use: .sandbox, .providers, .settings
        self.max_attempts = max_attempts
        self.time_limit_errors = time_limit_errors
        self.max_log_bytes = max_log_bytes
        self.worker = f"{socket.gethostname()}:{threading.get_native_id()}"
        self.watcher = Watcher(store, self.worker, heartbeat_interval_s, lease_s)

    def execute(self, task_id: str, message_for=None) -> str:
        """Runs the task unless another delivery already did or does; returns what happened.
        message_for(task_id): its Celery message, pushed again if the worker hands it back."""
        self.message_for = message_for or self.message_for
        running = new_event(task_id, "status", {"status": "running"})
        claim = self._claim(task_id, running)
        if claim.outcome == "exhausted":
            self.events.stored_many(claim.events, claim.seq)
        if claim.outcome != "claimed":
            log.info("task %s not run: %s", task_id, claim.outcome)
            return claim.outcome
        attempt, kind, task_input = claim.attempt, claim.kind, claim.input
        ctx = RunContext(task_id, self.events, attempt, self.max_log_bytes)
        self.events.stored(running, claim.seq)
        self.watcher.add(ctx)
        try:
            if attempt > 1:
                ctx.emit("log", {"text": f"restarted (attempt {attempt}) after a worker was "
                                         "lost\n"})
            return self._outcome(ctx, kind, task_input)
        finally:
            self.watcher.remove(ctx)

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
            result = RUNNERS[kind](ctx, task_input, self.deps)
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
