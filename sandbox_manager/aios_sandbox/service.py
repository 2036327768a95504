"""The sandbox service: one-shot runs, session sandboxes and their files, and upkeep."""

import asyncio
import base64
import logging
import time
from contextlib import aclosing, asynccontextmanager, contextmanager
from typing import AsyncIterator, Optional

from .browsers import BrowserService
from .errors import AtCapacity, Conflict, EgressDisabled, Invalid, NotFound, TooLarge, Unavailable
from .execution import RunnerRefused, SandboxLost, execute, request_reply
from .limits import Limits
from .metrics import ManagerMetrics
from .paths import BadPath
from .pool import WarmPool
from .sandbox import HardeningViolation, Launcher, Sandbox, SandboxUnavailable
from .settings import Settings

log = logging.getLogger(__name__)
STARTED = "started"  # first event of a run: a sandbox is ready, errors from now on are in-band
# A sandbox of another manager on the same engine is removed once it is this long past its
# expiry (its hard ceiling): its manager would have removed it by then unless it is gone for
# good, e.g. killed and never started again under its name
FOREIGN_GRACE_S = 600
FILE_ERRORS = {"not_found": NotFound, "too_large": TooLarge, "bad_path": BadPath}


class SandboxService:
    def __init__(self, launcher: Launcher, settings: Settings,
                 metrics: Optional[ManagerMetrics] = None):
        self.launcher = launcher
        self.settings = settings
        self.metrics = metrics or ManagerMetrics(settings.manager_name)
        launcher.egress.on_bytes = self.metrics.egress_ended  # each proxy's, at its removal
        self.pool = WarmPool(launcher, settings.pool_size, settings.pool_max_age_s,
                             on_failure=self._note_failure)
        self.sessions: dict[str, Sandbox] = {}
        self.browsers = BrowserService(launcher, settings)  # their own dict and cap
        self.creating = 0  # sessions being launched: they hold a place under the cap
        self.starting: set[str] = set()  # launched sessions whose interpreter is starting
        self.active_runs = 0
        self.refusal: Optional[str] = None  # why we refuse to serve (fail closed)
        self.unverified: Optional[str] = "not checked yet"  # why no probe has passed yet
        self._tasks: list[asyncio.Task] = []

    # --- lifecycle -----------------------------------------------------------

    async def start(self) -> None:
        await self.remove_orphans()
        await self.verify_hardening()
        self.pool.start()
        self._tasks.append(asyncio.create_task(self._reap_forever()))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.pool.close()
        await self.browsers.close()
        sessions, self.sessions = list(self.sessions.values()), {}
        await asyncio.gather(*(self._destroy(s) for s in sessions), return_exceptions=True)
        # Destroys handed to the loop (a one-shot run's, an expired pool container's) may
        # not have run yet: whatever this run of the manager still has goes now.
        try:
            await self._sweep(lambda labels: labels.get("aios.instance") == self.launcher.instance)
        except Exception:  # noqa: BLE001 - Docker gone: the next start removes them
            log.exception("final clean-up failed")

    async def verify_hardening(self) -> None:
        """Start one sandbox and check from inside that every restriction holds."""
        try:
            probe = await self.launcher.launch(self.settings.defaults, "probe", "manager", 60)
        except HardeningViolation as exc:
            self._note_failure(exc)
            log.error("refusing to serve: %s", exc)
            return
        except SandboxUnavailable as exc:
            self.unverified = f"not verified yet: {exc}"
            log.warning("hardening check postponed: %s", exc)
            return
        await self.launcher.destroy(probe)
        self.refusal = self.unverified = None

    def _note_failure(self, exc: Exception) -> None:
        if isinstance(exc, HardeningViolation):
            self.refusal = str(exc)

    async def remove_orphans(self) -> None:
        """Containers and networks of an earlier run of this manager are nobody's any more."""
        removed = await self._sweep(
            lambda labels: labels.get("aios.instance") != self.launcher.instance)
        if removed:
            log.info("removed %d orphaned container(s)", removed)

    async def _sweep(self, unwanted) -> int:
        """Removes this manager's containers and networks whose labels are unwanted."""
        containers = await asyncio.to_thread(self.launcher.labelled)
        gone = [c["Id"] for c in containers if unwanted(c["Labels"])]
        await asyncio.gather(*(self.launcher.remove(c) for c in gone))
        await self._remove_networks(lambda net: unwanted(net["Labels"]))
        return len(gone)

    async def _remove_networks(self, unwanted, any_manager: bool = False) -> None:
        networks = await asyncio.to_thread(self.launcher.labelled_networks, any_manager)
        gone = [n["Name"] for n in networks if unwanted(dict(n, Labels=n.get("Labels") or {}))]
        await asyncio.gather(*(asyncio.to_thread(self.launcher.egress.remove_network, n)
                               for n in gone))

    async def reap(self) -> None:
        now = time.time()
        for sandbox in [s for s in self.sessions.values() if s.expired(now)]:
            self.sessions.pop(sandbox.id, None)
            await self._destroy(sandbox)
        self.pool.drop_expired()
        await self.browsers.reap(now)
        known, live = self.browsers.known()
        known |= {s.container_id for s in self.sessions.values()}
        known |= {s.route.proxy_id for s in self.sessions.values() if s.route}
        starting = self.launcher.launching | self.starting  # however short their TTL

        def stale(labels: dict) -> bool:
            expires_at = int(labels.get("aios.expires_at", "0"))
            if labels.get("aios.manager") != self.settings.manager_name:
                # Another manager's: its own reaper's, unless that manager is gone for good
                # (killed under another name: nobody else would ever remove them)
                return expires_at < now - FOREIGN_GRACE_S
            return expires_at < now and labels.get("aios.id") not in starting

        containers = await asyncio.to_thread(self.launcher.labelled, any_manager=True)
        gone = [c["Id"] for c in containers if stale(c["Labels"]) and c["Id"] not in known]
        await asyncio.gather(*(self.launcher.remove(c) for c in gone))
        self.metrics.reaped.inc(len(gone))
        live |= {s.route.network for s in self.sessions.values() if s.route}
        await self._remove_networks(lambda net: stale(net["Labels"]) and net["Name"] not in live,
                                    any_manager=True)
        if self.refusal or self.unverified:
            await self.verify_hardening()

    async def _reap_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.reaper_interval_s)
            try:
                await self.reap()
            except Exception:  # noqa: BLE001 - upkeep must keep going
                log.exception("reaper pass failed")

    # --- one-shot runs -------------------------------------------------------

    def _ensure_serving(self, network: str = "none") -> None:
        if self.refusal:
            raise Unavailable(f"refusing to run code: {self.refusal}")
        if network == "egress" and not self.settings.allow_egress:
            raise EgressDisabled("network \"egress\" is off on this sandbox manager; the "
                                 "operator enables it with SANDBOX_ALLOW_EGRESS=1")

    @asynccontextmanager
    async def _run_slot(self, mode: str):
        # Check and take in one step, with no await between them: the event loop runs
        # nothing else in between, so concurrent runs cannot all pass the check.
        if self.active_runs >= self.settings.max_active_runs:
            raise AtCapacity(f"{self.active_runs} runs in progress (the cap); retry shortly")
        self.active_runs += 1
        started, ok = time.monotonic(), False
        try:
            yield
            ok = True
        finally:
            self.active_runs -= 1
            self.metrics.run_ended(mode, ok, time.monotonic() - started)

    async def run_once(self, request: dict, limits: Limits, owner: str,
                       network: str = "none") -> AsyncIterator:
        """STARTED once a sandbox is ready, output chunks, then the result.
        The container is destroyed whatever happens."""
        self._ensure_serving(network)
        async with self._run_slot("oneshot"):
            pooled = limits == self.settings.defaults and network == "none"
            sandbox = self.pool.take() if pooled else None
            if pooled and self.pool.size:
                self.metrics.pool_take(hit=sandbox is not None)
            if sandbox is None:
                sandbox = await self._launch(limits, "oneshot", owner, limits.timeout_s + 60,
                                             network)
            try:
                yield STARTED
                async with aclosing(execute(sandbox, request)) as events:
                    async for event in events:
                        yield event
            except SandboxLost:
                yield _lost_result(request)
            except RunnerRefused as exc:
                raise Invalid(str(exc)) from exc
            finally:
                asyncio.get_running_loop().create_task(self.launcher.destroy(sandbox))

    async def _launch(self, limits: Limits, kind: str, owner: str, ttl_s: float,
                      network: str = "none") -> Sandbox:
        try:
            return await self.launcher.launch(limits, kind, owner, ttl_s, network)
        except HardeningViolation as exc:
            self._note_failure(exc)
            raise Unavailable(f"refusing to run code: {exc}") from exc
        except SandboxUnavailable as exc:
            raise Unavailable(str(exc)) from exc

    # --- sessions ----------------------------------------------------------

    async def create_session(self, limits: Limits, ttl_s: Optional[float], owner: str,
                             network: str = "none",
                             idle_ttl_s: Optional[float] = None) -> Sandbox:
        """A sandbox that keeps its files, its live Python interpreter (started now, so the
        first exec finds it ready) and its shell state, until deleted or its TTL."""
        self._ensure_serving(network)
        ttl = ttl_s or self.settings.session_ttl_s
        if ttl > self.settings.max_session_ttl_s:
            raise Invalid(f"ttl_s must be at most {self.settings.max_session_ttl_s}")
        with self._session_slot():
            sandbox = await self._launch(limits, "session", owner, ttl, network)
            sandbox.idle_ttl_s = idle_ttl_s
            self.starting.add(sandbox.id)
            try:
                await request_reply(sandbox, {"op": "interpreter_start"})
            except BaseException as exc:  # cancelled too: the sandbox would be nobody's
                await asyncio.shield(self._destroy(sandbox))
                if isinstance(exc, (SandboxLost, RunnerRefused)):
                    raise Unavailable(f"the sandbox's interpreter did not start: {exc}") \
                        from exc
                raise
            finally:
                self.starting.discard(sandbox.id)
            self.sessions[sandbox.id] = sandbox
            return sandbox

    @contextmanager
    def _session_slot(self):
        """A place under the session cap, taken before the launch's awaits (so concurrent
        creates cannot all pass the check) and given back unless a session fills it."""
        taken = len(self.sessions) + self.creating
        if taken >= self.settings.max_sessions:
            raise AtCapacity(f"{len(self.sessions)} sandboxes exist and {self.creating} are "
                             f"being created (the cap is {self.settings.max_sessions}); "
                             "delete one or retry later", retry_after_s=5)
        self.creating += 1
        try:
            yield
        finally:
            self.creating -= 1

    def get(self, sandbox_id: str) -> Sandbox:
        sandbox = self.sessions.get(sandbox_id)
        if sandbox is None or sandbox.expired():
            raise NotFound(f"no sandbox {sandbox_id!r}")
        return sandbox

    async def destroy(self, sandbox_id: str) -> None:
        sandbox = self.get(sandbox_id)
        self.sessions.pop(sandbox_id, None)
        await self._destroy(sandbox)

    async def _destroy(self, sandbox: Sandbox) -> None:
        await self.launcher.destroy(sandbox)

    @asynccontextmanager
    async def _using(self, sandbox_id: str):
        sandbox = self.get(sandbox_id)
        if sandbox.lock.locked():
            raise Conflict(f"sandbox {sandbox_id!r} is busy with another request")
        async with sandbox.lock:
            sandbox.touch()
            try:
                yield sandbox
            finally:
                sandbox.touch()

    async def _forget(self, sandbox: Sandbox) -> None:
        self.sessions.pop(sandbox.id, None)
        await self._destroy(sandbox)

    async def exec(self, sandbox_id: str, request: dict,
                   network: Optional[bool] = None) -> AsyncIterator:
        """Like run_once, in a session sandbox; a sandbox that stops answering is destroyed.
        network: whether an egress sandbox is attached to its proxy for this exec."""
        async with self._run_slot("exec"), self._using(sandbox_id) as sandbox:
            if network and sandbox.route is None:
                raise Invalid("this sandbox has no network: create it with "
                              "\"network\": \"egress\" to give an exec the network")
            if network is not None:
                await self._connect(sandbox, network)
            yield STARTED
            try:
                async with aclosing(execute(sandbox, request)) as events:
                    async for event in events:
                        yield event
            except SandboxLost:
                await self._forget(sandbox)
                yield _lost_result(request)
            except RunnerRefused as exc:
                raise Invalid(str(exc)) from exc

    async def _connect(self, sandbox: Sandbox, network: bool) -> None:
        try:
            await self.launcher.connect(sandbox, network)
        except SandboxUnavailable as exc:
            raise Unavailable(str(exc)) from exc

    async def reset(self, sandbox_id: str) -> None:
        """A fresh interpreter and shell state; the files stay."""
        async with self._using(sandbox_id) as sandbox:
            await self._request(sandbox, {"op": "reset"})

    async def put_file(self, sandbox_id: str, path: str, data: bytes) -> None:
        async with self._using(sandbox_id) as sandbox:
            await self._request(sandbox, {"op": "put_file", "path": path,
                                               "data": base64.b64encode(data).decode()})

    async def get_file(self, sandbox_id: str, path: str) -> bytes:
        async with self._using(sandbox_id) as sandbox:
            reply = await self._request(sandbox, {"op": "get_file", "path": path,
                                                       "max_bytes": self.settings.max_file_bytes})
            return base64.b64decode(reply["data"])

    async def _request(self, sandbox: Sandbox, request: dict) -> dict:
        try:
            return await request_reply(sandbox, request)
        except SandboxLost as exc:
            await self._forget(sandbox)
            raise Unavailable(
                f"sandbox {sandbox.id!r} stopped answering and was destroyed") from exc
        except RunnerRefused as exc:
            raise FILE_ERRORS.get(exc.code, Invalid)(str(exc)) from exc


def _lost_result(request: dict) -> dict:
    """What a run that outlived the supervisor's own deadline reports (its sandbox is gone)."""
    return {"exit_code": None, "end_reason": "timeout", "signal": None, "timed_out": True,
            "oom_killed": False, "truncated": False,
            "duration_ms": round(request["timeout_s"] * 1000, 1), "cpu_time_ms": None,
            "peak_memory_bytes": None, "survivors": 0, "stdout": "", "stderr": "",
            "sandbox_lost": True}
