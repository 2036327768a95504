"""Prometheus metrics of the web and the worker: their definitions, on prometheus-client.
Labels stay bounded: route templates (never raw paths), kinds from the KINDS table, task
outcomes; never a task id, a token or user input. Hooks live beside: web.py (Flask),
worker.py (Celery signals, the exporter process)."""

from typing import Optional

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Seconds: from a Redis round trip (1 ms) to a long agent task (15 min)
FAST_BUCKETS = (.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10)
TASK_BUCKETS = (.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class WebMetrics:
    """One web process's metrics, on a registry of its own (an app per test, no clash)."""

    def __init__(self, registry: Optional[CollectorRegistry] = None):
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.http_requests = Counter("aios_http_requests", "HTTP requests by route template, "
                                     "method and status", ["route", "method", "status"],
                                     registry=r)
        self.http_seconds = Histogram("aios_http_request_duration_seconds", "HTTP request "
                                      "time by route template", ["route"], registry=r,
                                      buckets=FAST_BUCKETS)
        self.submitted = Counter("aios_tasks_submitted", "Tasks accepted, by kind", ["kind"],
                                 registry=r)
        self.delivery_lag = Histogram("aios_event_delivery_lag_seconds", "From the worker's "
                                      "emit of a live task event (its ts) to the web's send",
                                      registry=r, buckets=FAST_BUCKETS)

    def request_done(self, route: str, method: str, status: int, seconds: float) -> None:
        self.http_requests.labels(route, method, str(status)).inc()
        self.http_seconds.labels(route).observe(seconds)

    def watch_sockets(self, count) -> None:
        """count(): the connected sockets, read at scrape time (nothing on the hot path)."""
        Gauge("aios_sockets_connected", "Connected Socket.IO clients",
              registry=self.registry).set_function(count)


class WorkerMetrics:
    """A worker's metrics, in prometheus-client's multiprocess mode when the worker runs its
    exporter (see worker.py): each pool child writes its own file, the exporter sums them.
    A per-manager metric (several sandbox managers) is one more here, labelled `manager`
    with a name from SANDBOX_MANAGER_URLS (bounded), never a raw URL with credentials."""

    def __init__(self, registry: Optional[CollectorRegistry] = None):
        r = registry  # None: not registered; the multiprocess collector reads the files
        self.tasks = Counter("aios_tasks", "Tasks run to an end, by kind and final status "
                             "(succeeded, failed, cancelled; requeued: handed back; "
                             "superseded: another attempt owns it)", ["kind", "status"],
                             registry=r)
        self.task_seconds = Histogram("aios_task_duration_seconds", "Run time of a task "
                                      "attempt, by kind", ["kind"], registry=r,
                                      buckets=TASK_BUCKETS)
        self.retries = Counter("aios_task_retries", "Attempts after the first (a lost "
                               "worker's task run again), by kind", ["kind"], registry=r)
        self.capacity_wait = Histogram("aios_sandbox_capacity_wait_seconds", "Time a task "
                                       "waited for the sandbox manager's capacity (429/503)",
                                       registry=r, buckets=TASK_BUCKETS)
        # Per sandbox manager (host:port of SANDBOX_MANAGER_URLS: a bounded set)
        self.manager_up = Gauge("aios_sandbox_manager_up", "1 while the worker's processes "
                                "find the sandbox manager healthy (0 once one finds it down)",
                                ["manager"], registry=r, multiprocess_mode="livemin")
        self.manager_in_flight = Gauge("aios_sandbox_manager_in_flight", "Runs, and sessions "
                                       "or browsers being made, the worker has in flight on "
                                       "the manager", ["manager"], registry=r,
                                       multiprocess_mode="livesum")

    def task_ended(self, kind: str, status: str, attempt: int, seconds: float) -> None:
        self.tasks.labels(kind, status).inc()
        self.task_seconds.labels(kind).observe(seconds)
        if attempt > 1:
            self.retries.labels(kind).inc()


# The worker process's metrics once worker.py turned them on; None (no metrics) otherwise.
# Module state, as prometheus-client's own registry is: the sandbox layer reports its
# capacity waits here without a dependency threaded through every tool.
_worker: Optional[WorkerMetrics] = None


def use_worker_metrics(metrics: Optional[WorkerMetrics]) -> None:
    global _worker
    _worker = metrics


def worker_metrics() -> Optional[WorkerMetrics]:
    return _worker


def capacity_waited(seconds: float) -> None:
    if _worker is not None:
        _worker.capacity_wait.observe(seconds)


def sandbox_manager_seen(manager: str, up: bool, in_flight: int) -> None:
    if _worker is not None:
        _worker.manager_up.labels(manager).set(1 if up else 0)
        _worker.manager_in_flight.labels(manager).set(in_flight)
