"""Several sandbox managers behind the one client interface the worker uses (SandboxClient's
methods): new work goes where Placement says; a session's or browser's calls go to the
manager that holds it, named in its id ("<id>@<host:port>") when there are several."""

import logging
import threading
import time
from typing import TYPE_CHECKING, Callable, Optional
from urllib.parse import urlsplit

from ..metrics import sandbox_manager_seen
from .client import OnOutput, SandboxClient, SandboxError
from .placement import Placement

if TYPE_CHECKING:
    from ..settings import Settings

log = logging.getLogger(__name__)
PROBE_TIMEOUT_S = 1.0
AT = "@"  # between a sandbox's id and its manager's key
Note = Callable[[str], None]  # what the task's log is told


def manager_key(url: str) -> str:
    return urlsplit(url).netloc


class Closer:
    """register_close, remembering whether the caller cut the call (a cancel, a lost lease):
    a stream broken on purpose says nothing about the manager and is never run again."""

    def __init__(self, register_close):
        self.register_close, self.used = register_close, False

    def __call__(self, abort: Callable[[], None]) -> None:
        def closing() -> None:
            self.used = True
            abort()
        self.register_close(closing)

    @staticmethod
    def of(register_close) -> Optional["Closer"]:
        return Closer(register_close) if register_close else None


def cut(closer: Optional[Closer]) -> bool:
    return bool(closer and closer.used)


class SandboxPool:
    def __init__(self, clients: dict[str, SandboxClient], placement: Placement,
                 rerun_lost: int = 1):
        self.clients = clients  # by key, in the configured order (bare ids: the first)
        self.placement = placement
        self.rerun_lost = rerun_lost
        self._probing = threading.Lock()

    @classmethod
    def of(cls, urls: list[str], token: str, rerun_lost: int = 1) -> "SandboxPool":
        clients = {manager_key(url): SandboxClient(url, token) for url in urls}
        return cls(clients, Placement(clients, time.monotonic), rerun_lost)

    @classmethod
    def from_settings(cls, settings: "Settings") -> "SandboxPool":
        """The managers of SANDBOX_MANAGER_URLS, as the worker and the web both reach them."""
        return cls.of(settings.manager_urls, settings.sandbox_manager_token.get_secret_value(),
                      settings.sandbox_rerun_lost_runs)

    # --- placement -------------------------------------------------------------------

    def refresh(self, wait: bool = False) -> None:
        """Asks the managers whose state is stale for their /health, in a thread of its own
        (one at a time) unless wait: a run never waits for a probe."""
        if not self.placement.stale() or not self._probing.acquire(blocking=False):
            return
        if wait:
            self._probe()
        else:
            threading.Thread(target=self._probe, daemon=True, name="sandbox-probe").start()

    def _probe(self) -> None:
        try:
            stale = self.placement.stale()
            answers: dict[str, tuple] = {}
            threads = [threading.Thread(target=lambda k=key: answers.__setitem__(
                k, self.clients[k].health(PROBE_TIMEOUT_S)), daemon=True) for key in stale]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(PROBE_TIMEOUT_S + 1)
            for key in stale:
                status, body, error = answers.get(key, (0, None, "no answer in time"))
                was_down = self.placement.is_down(key)
                self.placement.observe(key, status, body, error)
                self._report(key)
                if was_down and status == 200:
                    log.info("sandbox manager %s is healthy again", key)
        finally:
            self._probing.release()

    def _place(self, kind: str, network: str, call: Callable[[str], object],
               closer: Optional[Closer] = None):
        """call(key) on the chosen manager; a refusal (nothing of it ran) or an unreachable
        manager sends it to the next one; the last refusal is raised when none is left."""
        self.refresh()
        tried: list[str] = []
        last: Optional[SandboxError] = None
        while True:
            key = self.placement.choose(kind, network, exclude=tried)
            if key is None:
                raise last or SandboxError("unavailable", "no sandbox manager is configured")
            tried.append(key)
            self.placement.started(key, kind)
            self._report(key)
            try:
                return key, call(key)
            except SandboxError as exc:
                exc.manager = key
                if cut(closer):
                    raise
                self._note(key, kind, exc)
                if not exc.refused or not (exc.busy or exc.host_failed):
                    raise
                last = exc
            finally:
                self.placement.ended(key, kind)
                self._report(key)

    def _note(self, key: str, kind: str, exc: SandboxError) -> None:
        if exc.code == "at_capacity":
            self.placement.full(key, kind)
        elif exc.host_failed or exc.code == "unavailable":
            if not self.placement.is_down(key):
                log.warning("sandbox manager %s marked down: %s", key, exc)
            self.placement.failed(key, str(exc))

    def _report(self, key: str) -> None:
        state = self.placement.managers[key]
        sandbox_manager_seen(key, state.up is not False, sum(state.in_flight.values()))

    # --- one-shot runs --------------------------------------------------------------------

    def run(self, body: dict, on_output: OnOutput, owner: str, register_close=None,
            on_note: Optional[Note] = None) -> dict:
        """As SandboxClient.run, on a manager chosen for it. A run without network whose
        manager was lost after it started runs again elsewhere (rerun_lost times at most),
        said through on_note: what it did stayed in the lost sandbox."""
        network = body.get("network", "none")
        lost: list[str] = []
        closer = Closer.of(register_close)
        while True:
            try:
                return self._place("run", network, lambda key: self.clients[key].run(
                    body, on_output, owner, closer), closer)[1]
            except SandboxError as exc:
                key = getattr(exc, "manager", "?")
                again = (exc.host_failed and not exc.refused and network == "none"
                         and not cut(closer)
                         and len(lost) < self.rerun_lost and len(self.clients) > 1)
                if not again:
                    raise
                lost.append(key)
                if on_note:
                    on_note(f"the sandbox host {key} was lost while the code ran ({exc}); "
                            "running it again from the start on another host\n")

    # --- sessions and browsers: the manager that holds them ------------------------------

    def create_session(self, *args, **kwargs) -> str:
        network = kwargs.get("network", "none")
        key, sandbox_id = self._place("session", network, lambda k: self.clients[k].create_session(
            *args, **kwargs))
        return self._named(sandbox_id, key)

    def create_browser(self, *args, **kwargs) -> dict:
        key, described = self._place("browser", "none", lambda k: self.clients[k].create_browser(
            *args, **kwargs))
        return dict(described, id=self._named(described["id"], key))

    def exists(self, sandbox_id: str) -> bool:
        return self._held(sandbox_id, lambda client, raw: client.exists(raw))

    def put_file(self, sandbox_id: str, path: str, data: bytes) -> None:
        self._held(sandbox_id, lambda client, raw: client.put_file(raw, path, data))

    def reset(self, sandbox_id: str) -> None:
        self._held(sandbox_id, lambda client, raw: client.reset(raw))

    def exec(self, sandbox_id: str, body: dict, on_output: OnOutput, register_close=None) -> dict:
        closer = Closer.of(register_close)
        return self._held(sandbox_id, lambda client, raw: client.exec(
            raw, body, on_output, closer), closer)

    def destroy(self, sandbox_id: str) -> None:
        self._held(sandbox_id, lambda client, raw: client.destroy(raw))

    def browser_exists(self, browser_id: str) -> bool:
        return self._held(browser_id, lambda client, raw: client.browser_exists(raw))

    def browser_action(self, browser_id: str, action: str, args: dict, timeout_s: float,
                       register_close=None) -> dict:
        closer = Closer.of(register_close)
        return self._held(browser_id, lambda client, raw: client.browser_action(
            raw, action, args, timeout_s, closer), closer)

    def destroy_browser(self, browser_id: str) -> None:
        self._held(browser_id, lambda client, raw: client.destroy_browser(raw))

    def egress_allowed(self) -> bool:
        """Whether sandboxes may ask for the network: a run that does goes to a manager that
        allows it (Placement)."""
        return any(client.egress_allowed() for key, client in self.clients.items()
                   if not self.placement.is_down(key))  # a down one would cost its timeout

    def _named(self, resource_id: str, key: str) -> str:
        return resource_id if len(self.clients) == 1 else f"{resource_id}{AT}{key}"

    def _held(self, resource_id: str, call, closer: Optional[Closer] = None):
        """call(client, its own id) on the manager holding the resource; a manager that
        cannot be reached is the clear `sandbox_host_unavailable`."""
        raw, _, key = resource_id.partition(AT)
        key = key or next(iter(self.clients))  # a bare id: from when one manager was known
        client = self.clients.get(key)
        if client is None:
            raise SandboxError("sandbox_host_unavailable", f"the sandbox host {key} that holds "
                               f"{raw} is no longer configured (SANDBOX_MANAGER_URLS)")
        try:
            return call(client, raw)
        except SandboxError as exc:
            if not exc.host_failed or cut(closer):
                raise
            self._note(key, "session", exc)
            raise SandboxError("sandbox_host_unavailable",
                               f"the session's sandbox host {key} is unavailable: {exc}",
                               exc.retry_after_s, refused=exc.refused, host_failed=True) from exc

    def close(self) -> None:
        for client in self.clients.values():
            client.close()
