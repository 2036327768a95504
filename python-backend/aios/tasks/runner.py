"""Runs one task in a worker: claim, heartbeat, watch for cancel, execute, record."""

import base64
import logging
import socket
import threading
import time
from typing import Callable, Optional

from . import attachments
from .artifacts import publish_outputs
from .events import EventLog, new_event
from ..chat import run_chat
from ..files.roots import FileRefused
from ..providers.base import ProviderError
from .sandbox_client import SandboxError
from .store import TaskStore

log = logging.getLogger(__name__)


class Cancelled(Exception):
    pass


class TaskFailed(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


class RunContext:
    """What a kind's implementation may use: emit events, check for cancel, stop on cancel."""

    def __init__(self, task_id: str, events: EventLog, cancelled: threading.Event):
        self.task_id = task_id
        self.events = events
        self.cancelled = cancelled
        self.deadline_reached = False  # set by a kind that enforces its own wall-time limit
        self._abort: Optional[Callable[[], None]] = None

    def emit(self, type_: str, data: dict) -> None:
        self.events.append(self.task_id, type_, data)

    def on_cancel(self, abort: Callable[[], None]) -> None:
        """Call abort (from the watcher thread) when the task is cancelled."""
        self._abort = abort
        if self.cancelled.is_set():
            abort()

    def abort(self) -> None:
        self.cancelled.set()
        self.interrupt()

    def interrupt(self) -> None:
        """Stop what blocks now (a stream, a sandbox run), without cancelling the task."""
        if self._abort:
            self._abort()


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
        result = deps.sandbox.run(body, output, owner=f"task:{ctx.task_id}",
                                  register_close=ctx.on_cancel)
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
                 time_limit_errors: tuple[type[BaseException], ...] = ()):
        self.store = store
        self.events = events
        self.deps = deps  # what kinds use: .sandbox, .providers, .settings
        self.max_attempts = max_attempts
        self.time_limit_errors = time_limit_errors
        self.worker = f"{socket.gethostname()}:{threading.get_native_id()}"
        self.watcher = Watcher(store, self.worker, heartbeat_interval_s)

    def execute(self, task_id: str) -> str:
        """Runs the task unless another delivery already did or does; returns what happened."""
        running = new_event(task_id, "status", {"status": "running"})
        claim = self.store.claim(task_id, self.worker, running, self.max_attempts)
        if claim.outcome == "exhausted":
            self.events.stored_many(claim.events, claim.seq)
        if claim.outcome != "claimed":
            log.info("task %s not run: %s", task_id, claim.outcome)
            return claim.outcome
        attempt, kind, task_input = claim.attempt, claim.kind, claim.input
        ctx = RunContext(task_id, self.events, threading.Event())
        self.events.stored(running, claim.seq)
        if attempt > 1:
            ctx.emit("log", {"text": f"restarted (attempt {attempt}) after a worker was lost\n"})
        self.watcher.add(ctx)
        try:
            result = RUNNERS[kind](ctx, task_input, self.deps)
            if ctx.cancelled.is_set():
                raise Cancelled()
            return self._end(ctx, attempt, "succeeded", "result", result)
        except Cancelled:
            return self._end(ctx, attempt, "cancelled", None, None)
        except TaskFailed as exc:
            return self._end(ctx, attempt, "failed", "error", {"code": exc.code,
                                                               "message": str(exc)})
        except self.time_limit_errors:
            return self._end(ctx, attempt, "failed", "error", {
                "code": "time_limit", "message": "the task ran past its soft time limit"})
        except Exception as exc:  # noqa: BLE001 - any failure is recorded, never lost
            log.exception("task %s failed", task_id)
            return self._end(ctx, attempt, "failed", "error",
                             {"code": type(exc).__name__, "message": str(exc)[:2000]})
        finally:
            self.watcher.remove(ctx)

    def _end(self, ctx: RunContext, attempt: int, status: str, field, value) -> str:
        """The result (or error) and the final status, logged with the record's change."""
        events = [new_event(ctx.task_id, field, value)] if field else []
        events.append(new_event(ctx.task_id, "status", {"status": status}))
        seq = self.store.finish(ctx.task_id, attempt, status, field or "error", value, events)
        if not seq:
            log.warning("task %s: attempt %d no longer owns the task", ctx.task_id, attempt)
            return "superseded"
        self.events.stored_many(events, seq)
        return status


class Watcher:
    """One thread per worker process: heartbeats for the watchdog, and the cancel flag,
    for every task this process runs."""

    TICK_S = 0.1

    def __init__(self, store: TaskStore, worker: str, heartbeat_interval_s: float):
        self.store = store
        self.worker = worker
        self.heartbeat_interval_s = heartbeat_interval_s
        self._running: dict[str, RunContext] = {}
        self._lock = threading.Lock()
        self._thread: Optional[threading.Thread] = None

    def add(self, ctx: RunContext) -> None:
        with self._lock:
            self._running[ctx.task_id] = ctx
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="aios-task-watcher",
                                                daemon=True)
                self._thread.start()

    def remove(self, ctx: RunContext) -> None:
        with self._lock:
            self._running.pop(ctx.task_id, None)

    def _loop(self) -> None:
        last_beat = 0.0
        while True:
            time.sleep(self.TICK_S)
            with self._lock:
                running = list(self._running.values())
            beat = time.monotonic() - last_beat >= self.heartbeat_interval_s
            try:
                for ctx in running:
                    if beat:
                        self.store.heartbeat(ctx.task_id, self.worker)
                    if not ctx.cancelled.is_set() and self.store.cancel_requested(ctx.task_id):
                        ctx.abort()
            except Exception:  # noqa: BLE001 - Redis away for a moment: try next tick
                log.warning("task watcher: Redis unavailable", exc_info=True)
            if beat:
                last_beat = time.monotonic()
