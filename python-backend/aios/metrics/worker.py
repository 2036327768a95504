"""The worker's metrics in prometheus-client's multiprocess mode: each prefork child writes
its counts to files of its own in a folder of this worker (cleared at start, removed at
stop), and a small exporter process (exporter.py), started and watched by the worker's main
process, serves their sum at /metrics. A separate process rather than an HTTP thread in the
main process: a thread there could hold a lock at the moment a pool child is forked and
leave that child deadlocked (see the Watchdog in celery_app.py)."""

import logging
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Optional

from celery import signals
from prometheus_client import multiprocess, values

from ..settings import Settings
from . import WorkerMetrics, use_worker_metrics, worker_metrics

log = logging.getLogger(__name__)
BACKEND = Path(__file__).resolve().parents[2]  # python-backend/, for the exporter's imports
_exporter: Optional[subprocess.Popen] = None
_folder: Optional[Path] = None


def folder_of(settings: Settings) -> Path:
    """This worker's own folder: several workers may share a host and its base folder."""
    return Path(settings.worker_metrics_dir) / f"{socket.gethostname()}-{os.getpid()}"


def remove_dead_workers_folders(base: Path) -> None:
    """Folders of this host's workers that died without their stop (SIGKILL)."""
    host = socket.gethostname()
    for folder in base.glob(f"{host}-*"):
        pid = folder.name.rpartition("-")[2]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(folder, ignore_errors=True)


def turn_on(settings: Settings) -> Optional[WorkerMetrics]:
    """In the main process, before the pool forks: metrics into files, and the exporter."""
    global _folder
    if not settings.metrics_enabled:
        return None
    _folder = folder_of(settings)
    remove_dead_workers_folders(_folder.parent)
    shutil.rmtree(_folder, ignore_errors=True)
    _folder.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(_folder)  # the children inherit it
    values.ValueClass = values.MultiProcessValue()  # metrics made from now on use files
    metrics = WorkerMetrics()
    use_worker_metrics(metrics)
    if settings.worker_metrics_port:
        start_exporter(settings, _folder)
    return metrics


def start_exporter(settings: Settings, folder: Path) -> None:
    global _exporter
    env = dict(os.environ, AIOS_EXPORTER_TOKEN=settings.scrape_token,
               PYTHONPATH=os.pathsep.join(filter(None, [str(BACKEND),
                                                        os.environ.get("PYTHONPATH")])))
    _exporter = subprocess.Popen(
        [sys.executable, "-m", "aios.metrics.exporter", "--dir", str(folder),
         "--addr", settings.worker_metrics_addr, "--port", str(settings.worker_metrics_port),
         "--parent", str(os.getpid())], env=env, stdin=subprocess.DEVNULL)
    log.info("worker metrics at http://%s:%d/metrics (pid %d)", settings.worker_metrics_addr,
             settings.worker_metrics_port, _exporter.pid)


def turn_off() -> None:
    if _exporter and _exporter.poll() is None:
        _exporter.terminate()
        try:
            _exporter.wait(5)
        except subprocess.TimeoutExpired:
            _exporter.kill()
    if _folder:
        shutil.rmtree(_folder, ignore_errors=True)


@signals.worker_init.connect
def _on_worker_init(sender=None, **_):
    turn_on(sender.app.aios_settings)


@signals.worker_process_shutdown.connect
def _on_child_exit(pid=None, **_):
    # A pool child going: its live gauges leave the sum (its counters stay counted)
    if worker_metrics() is not None:
        multiprocess.mark_process_dead(pid or os.getpid())


@signals.worker_shutdown.connect
def _on_worker_shutdown(**_):
    turn_off()
