"""The sandbox manager's Prometheus metrics and its GET /metrics (behind the manager's
token, as every route but /health). Counters are bumped by the service; what can be read
off its state (pool, sessions, runs in progress) is read at scrape time, off the hot path.
Every sample carries no label a client chose: modes, results and route templates only."""

from typing import Callable, Optional

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
RUN_BUCKETS = (.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
router = APIRouter(tags=["metrics"])


class ManagerMetrics:
    """One manager's metrics, on a registry of its own (an app per test, no clash)."""

    def __init__(self, manager_name: str, registry: Optional[CollectorRegistry] = None):
        self.registry = r = registry or CollectorRegistry()
        self.manager_name = manager_name
        self.runs = Counter("aios_sandbox_runs", "Code runs, by mode (oneshot, exec) and "
                            "result (ok; error: refused or failed before its result)",
                            ["mode", "result"], registry=r)
        self.run_seconds = Histogram("aios_sandbox_run_duration_seconds", "Time a run held "
                                     "its slot, by mode", ["mode"], registry=r,
                                     buckets=RUN_BUCKETS)
        self.pool_takes = Counter("aios_sandbox_pool_takes", "One-shot runs that could use "
                                  "the warm pool: hit (a ready container) or miss",
                                  ["result"], registry=r)
        self.at_capacity = Counter("aios_sandbox_at_capacity", "Requests refused with 429 "
                                   "at_capacity, by route template", ["route"], registry=r)
        self.reaped = Counter("aios_sandbox_containers_reaped", "Stale containers the reaper "
                              "removed", registry=r)
        self.egress_bytes = Counter(
            "aios_sandbox_egress_bytes", "Bytes on egress proxies' outside interface (packet "
            "headers included), by direction (sent: from the sandbox out to the internet; "
            "received: back in) and kind (sandbox, browser); counted when a sandbox's egress "
            "ends", ["direction", "kind"], registry=r)

    def run_ended(self, mode: str, ok: bool, seconds: float) -> None:
        self.runs.labels(mode, "ok" if ok else "error").inc()
        self.run_seconds.labels(mode).observe(seconds)

    def pool_take(self, hit: bool) -> None:
        self.pool_takes.labels("hit" if hit else "miss").inc()

    def egress_ended(self, kind: str, sent: int, received: int) -> None:
        self.egress_bytes.labels("sent", kind).inc(sent)
        self.egress_bytes.labels("received", kind).inc(received)

    def watch(self, state: Callable[[], object]) -> None:
        """state(): the SandboxService (made in the app's lifespan), or None before."""
        self.registry.register(ServiceGauges(self.manager_name, state))


class ServiceGauges:
    """Gauges read off the service when Prometheus scrapes. A per-manager gauge (several
    managers placed side by side) goes here too, labelled with `manager`."""

    def __init__(self, manager_name: str, state: Callable[[], object]):
        self.manager_name, self.state = manager_name, state

    def collect(self):
        info = GaugeMetricFamily("aios_sandbox_manager_info", "This manager's name (always 1)",
                                 labels=["manager"])
        info.add_metric([self.manager_name], 1)
        yield info
        service = self.state()
        if service is None:
            return
        for name, doc, value in (
                ("pool_ready", "Started containers waiting in the warm pool", service.pool.ready),
                ("pool_size", "The warm pool's target size", service.pool.size),
                ("sessions", "Session sandboxes alive", len(service.sessions)),
                ("active_runs", "Runs in progress", service.active_runs),
                ("browsers", "Browser sandboxes alive", len(service.browsers.browsers))):
            yield GaugeMetricFamily(f"aios_sandbox_{name}", doc, value=value)

    def describe(self):
        return []


def route_of(request: Request) -> str:
    route = request.scope.get("route")
    return getattr(route, "path", "unmatched")


@router.get("/metrics", summary="Prometheus metrics (text exposition format)",
            response_class=Response,
            responses={200: {"content": {CONTENT_TYPE: {"schema": {"type": "string"}}},
                             "description": "the metrics"}})
async def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.metrics.registry),
                    media_type=CONTENT_TYPE)
