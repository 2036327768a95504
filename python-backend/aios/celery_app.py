"""The Celery application: reliable delivery settings, the task functions, the watchdog."""

import logging
import sys
import threading
import time

from celery import Celery, bootsteps, shared_task, signals

from . import worker_logs  # noqa: F401 - connects its signals: Celery's output as LOG_FORMAT says
from .broker_patch import survive_a_full_redis
from .metrics import worker as _worker_metrics  # noqa: F401 - connects its signals (exporter)
from .resources import mcp_config, worker_resources
from .settings import Settings
from .tasks.broker import TaskMessages
from .tasks.keys import WORKERS
from .tasks.watchdog import redrive_stale, requeue_orphans

log = logging.getLogger(__name__)

RUN_TASK = "aios.run_task"


def create_celery(settings: Settings) -> Celery:
    survive_a_full_redis()
    mcp_config(settings)  # read now: a bad AIOS_MCP_CONFIG stops the worker at its start
    celery = Celery("aios", broker=settings.broker_url, backend=settings.result_backend,
                    set_as_current=True)
    celery.conf.update(
        task_acks_late=True,                 # a task is acked when it ends, not when taken
        task_reject_on_worker_lost=True,     # a killed pool child requeues its task at once
        worker_prefetch_multiplier=1,
        task_soft_time_limit=settings.task_soft_time_limit_s,
        task_time_limit=settings.task_time_limit_s,
        # Longer than any task, so the broker itself never runs a live task twice; a dead
        # worker's tasks come back through the heartbeat watchdog instead.
        broker_transport_options={"visibility_timeout": settings.task_time_limit_s + 600},
        result_expires=settings.task_retention_s,
        broker_connection_retry_on_startup=True,
        worker_cancel_long_running_tasks_on_connection_loss=False,
        task_serializer="json", accept_content=["json"], result_serializer="json",
        worker_hijack_root_logger=False,
    )
    celery.aios_settings = settings
    celery.steps["worker"].add(Watchdog)
    return celery


@shared_task(name=RUN_TASK, bind=True, ignore_result=True)
def run_task(self, task_id: str) -> str:
    """Transport only: the run itself lives in TaskRunner."""
    return worker_resources(self.app.aios_settings).runner.execute(
        task_id, TaskMessages(self.app, RUN_TASK))


@signals.worker_shutting_down.connect
def _hand_back_after_the_grace_time(sender=None, **_):
    """SIGTERM (a deploy, `docker-compose restart`): Celery stops taking tasks and waits
    for the running ones; those still running after AIOS_WORKER_GRACE_S are handed back to
    the queue, their attempt not counted, so that the worker stops in time. (Called in the
    main process's signal handler: only a timer is started here.)"""
    from celery import current_app
    settings = current_app.aios_settings
    timer = threading.Timer(settings.worker_grace_s, _hand_back_running, (settings,))
    timer.daemon = True
    timer.start()


def _hand_back_running(settings: Settings) -> None:
    from celery.worker import state
    store = worker_resources(settings).store
    for request in list(state.active_requests):
        try:
            store.request_release(request.id)  # the task's runner sees it within 0.1 s
            log.warning("task %s still running at the end of the grace time: handed back",
                        request.id)
        except Exception:  # noqa: BLE001 - Redis away: the watchdog requeues it later
            log.warning("task %s could not be handed back", request.id, exc_info=True)


@signals.worker_process_init.connect
def _hand_the_gil_over_sooner(**_):
    """A task's helper threads (the token sender, the cancel watcher) wait on Redis while the
    task's own thread parses a provider's stream without pause. With Python's default 5 ms
    switch interval each of their waits costs up to 5 ms more to get the GIL back; at 1 ms,
    tokens reach the client sooner and the stream reads no slower."""
    sys.setswitchinterval(0.001)


MCP_STATUS = "aios.mcp_status"


@shared_task(name=MCP_STATUS, bind=True)
def mcp_status(self) -> list[dict]:
    """The MCP servers as this worker sees them (connecting them if need be): the web asks,
    as it keeps no MCP connections of its own (they do not belong in an eventlet process)."""
    return worker_resources(self.app.aios_settings).mcp.status()


@shared_task(name="aios.noop")
def noop() -> None:
    """The cheapest round trip through broker, worker and result backend (benchmarks)."""


class Watchdog(bootsteps.StartStopStep):
    """Requeues tasks whose worker died, and signs this worker in for /health. It runs on the
    worker's own timer, in the main loop: a thread in this process could hold a lock at the
    moment a pool child is forked, and leave that child deadlocked."""

    requires = {"celery.worker.components:Timer"}

    def __init__(self, worker, **kwargs):
        super().__init__(worker, **kwargs)
        self.tref = None

    def start(self, worker):
        settings = worker.app.aios_settings
        self.tref = worker.timer.call_repeatedly(settings.watchdog_interval_s, self.sweep,
                                                 (worker,), priority=10)
        self.sweep(worker)

    def stop(self, worker):
        if self.tref:
            self.tref.cancel()

    def sweep(self, worker) -> None:
        resources = worker_resources(worker.app.aios_settings)
        try:
            resources.redis.zadd(WORKERS, {worker.hostname: time.time()})
            messages = TaskMessages(worker.app, RUN_TASK)
            requeue_orphans(resources.store, resources.events, messages)
            redrive_stale(resources.store, messages, worker.app.aios_settings.redrive_after)
        except Exception:  # noqa: BLE001 - Redis may be away for a while: next time
            log.warning("watchdog sweep failed", exc_info=True)
