"""One headless Chromium per process, launched on first use and driven from its own thread:
Playwright's sync objects belong to the thread that made them, and that thread has no asyncio
loop. A process that forks (Celery prefork) never inherits it: a child whose pid differs
starts its own. Closed by `close()` or at process exit (multiprocessing's finalizers, which
billiard's pool children run; atexit alone would not)."""

import concurrent.futures
import os
import queue
import socket
import threading
from multiprocessing.util import Finalize
from typing import Callable, Optional, TypeVar

T = TypeVar("T")

# Playwright already passes most of these; repeated so the policy reads in one place.
CHROMIUM_ARGS = [
    "--no-sandbox",  # containers without user namespaces; the page is guarded by the proxy
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--disable-default-apps",
    "--disable-sync",
    "--disable-breakpad",
    "--disable-dev-shm-usage",
    "--disable-gpu",
    "--dns-prefetch-disable",
    "--no-pings",
    "--no-first-run",
    "--metrics-recording-only",
    "--mute-audio",
    # WebRTC's UDP does not go through a proxy: allow none.
    "--force-webrtc-ip-handling-policy=disable_non_proxied_udp",
]


class BrowserUnavailable(Exception):
    """Chromium could not be started."""


class BrowserHost:
    def __init__(self, executable_path: str = "/usr/bin/chromium", args=CHROMIUM_ARGS):
        self.executable_path, self.args = executable_path, list(args)
        self._lock = threading.Lock()
        self._worker: Optional[_Worker] = None
        self._pid = os.getpid()

    def run(self, job: Callable[..., T], timeout: float) -> T:
        """job(browser) on the browser thread. Past `timeout` the browser counts as stuck:
        TimeoutError, and the next call gets a new one (the stuck one ends after its job)."""
        worker = self._current()
        try:
            return worker.submit(job).result(timeout)
        except concurrent.futures.TimeoutError:
            self._discard(worker)
            raise TimeoutError(f"the browser did not finish within {timeout:.0f} s") from None

    def close(self) -> None:
        with self._lock:
            worker, self._worker = self._worker, None
        if worker is not None and self._pid == os.getpid():
            worker.stop(wait=10.0)

    def _current(self) -> "_Worker":
        with self._lock:
            if self._pid != os.getpid():  # forked: the parent's thread did not come along
                self._pid, self._worker = os.getpid(), None
            if self._worker is None:
                self._worker = _Worker(self.executable_path, self.args)
                self._worker.start()
                Finalize(self, _Worker.stop, args=(self._worker, 10.0), exitpriority=10)
            return self._worker

    def _discard(self, worker: "_Worker") -> None:
        with self._lock:
            if self._worker is worker:
                self._worker = None
        worker.stop(wait=0)


class _Worker(threading.Thread):
    """Owns Playwright, the browser and a loopback port nothing listens on."""

    def __init__(self, executable_path: str, args: list[str]):
        super().__init__(name="aios-browser", daemon=True)
        self.executable_path, self.args = executable_path, args
        self.jobs: queue.SimpleQueue = queue.SimpleQueue()

    def submit(self, job: Callable) -> concurrent.futures.Future:
        future: concurrent.futures.Future = concurrent.futures.Future()
        self.jobs.put((job, future))
        return future

    def stop(self, wait: float) -> None:
        self.jobs.put(None)
        if wait and self.is_alive() and threading.current_thread() is not self:
            self.join(wait)

    def run(self) -> None:
        playwright = browser = None
        # Requests outside our contexts' proxies (none are expected) go to a bound port that
        # nothing listens on: refused at once, never out to the network.
        with socket.socket() as blackhole:
            blackhole.bind(("127.0.0.1", 0))
            try:
                while (item := self.jobs.get()) is not None:
                    job, future = item
                    if not future.set_running_or_notify_cancel():
                        continue
                    try:
                        if browser is None or not browser.is_connected():
                            playwright = playwright or _start_playwright()
                            browser = self._launch(playwright, blackhole.getsockname()[1])
                        future.set_result(job(browser))
                    except BaseException as exc:  # noqa: BLE001 - handed to the caller
                        future.set_exception(exc)
            finally:
                _quietly(browser and browser.close)
                _quietly(playwright and playwright.stop)

    def _launch(self, playwright, blackhole_port: int):
        from playwright.sync_api import Error
        try:
            return playwright.chromium.launch(
                executable_path=self.executable_path, headless=True, args=self.args,
                proxy={"server": f"http://127.0.0.1:{blackhole_port}", "bypass": "<-loopback>"},
                handle_sigint=False, handle_sigterm=False, handle_sighup=False)
        except Error as exc:
            raise BrowserUnavailable(f"Chromium ({self.executable_path}) did not start: "
                                     f"{str(exc).splitlines()[0]}") from exc


def _start_playwright():
    from playwright.sync_api import sync_playwright
    return sync_playwright().start()


def _quietly(close) -> None:
    if close:
        try:
            close()
        except Exception:  # noqa: BLE001 - best effort at shutdown
            pass
