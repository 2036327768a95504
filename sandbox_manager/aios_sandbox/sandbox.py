"""A live sandbox container and the hardened launch that produces one."""

import asyncio
import contextlib
import itertools
import secrets
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import docker
from docker.errors import APIError, ImageNotFound, NotFound

from .attestation import violations
from .browser_spec import browser_container_spec, browser_violations
from .channel import ChannelClosed, RunnerChannel
from .egress import Egress, EgressUnavailable, Route
from .limits import Limits
from .settings import Settings
from .spec import container_spec

LABEL = "aios.sandbox"
SpecBuilder = Callable[..., dict]  # (settings, limits, labels, route) -> create() kwargs
Check = Callable[[dict, Limits, str], list[str]]  # (attest report, limits, network) -> problems


class SandboxUnavailable(RuntimeError):
    """The engine could not give us a sandbox (Docker down, image missing, ...)."""


class HardeningViolation(SandboxUnavailable):
    def __init__(self, problems: list[str], what: str = "sandbox"):
        self.problems = problems
        self.what = what
        super().__init__(f"{what} hardening not in force: " + "; ".join(problems))


@dataclass(frozen=True)
class Blueprint:
    """What one kind of container (code sandbox, browser) is created from and checked with."""
    what: str  # in names and messages
    image: str
    spec: SpecBuilder
    check: Check
    start_timeout_s: float
    max_bytes: Optional[int] = None  # its egress proxy's byte budget (None: the setting's)


@dataclass
class Sandbox:
    id: str
    container_id: str
    kind: str
    owner: str
    limits: Limits
    created_at: float
    expires_at: float
    channel: RunnerChannel
    route: Optional[Route] = None  # egress sandboxes: their network and proxy
    idle_ttl_s: Optional[float] = None  # destroyed after this long without a request
    details: dict = field(default_factory=dict)  # its hello beyond the attest (a browser's)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def __post_init__(self) -> None:
        self.last_used_at = self.created_at
        self.connected = self.route is not None  # to its proxy, for this exec

    @property
    def network(self) -> str:
        return "egress" if self.route else "none"

    def touch(self) -> None:
        self.last_used_at = time.time()

    def expired(self, now: float | None = None) -> bool:
        now = now or time.time()
        idle = self.idle_ttl_s is not None and not self.lock.locked() \
            and now - self.last_used_at >= self.idle_ttl_s
        return now >= self.expires_at or idle

    def describe(self) -> dict:
        return {"id": self.id, "kind": self.kind, "owner": self.owner, "busy": self.lock.locked(),
                "created_at": self.created_at, "expires_at": self.expires_at,
                "idle_ttl_s": self.idle_ttl_s, "last_used_at": self.last_used_at,
                "network": self.network, "limits": self.limits.model_dump()}


class Launcher:
    """Creates, starts and verifies sandboxes; removes them. Docker calls run in threads."""

    def __init__(self, client: docker.DockerClient, settings: Settings, instance: str,
                 spec_builder: SpecBuilder = container_spec,
                 browser_spec_builder: SpecBuilder = browser_container_spec):
        self.client = client
        self.settings = settings
        self.instance = instance
        self.sandbox = Blueprint("sandbox", settings.image, spec_builder, violations,
                                 settings.start_timeout_s)
        self.browser = Blueprint("browser", settings.browser_image, browser_spec_builder,
                                 browser_violations, settings.browser_start_timeout_s,
                                 settings.browser_max_bytes)
        self.egress = Egress(client, settings)
        self._serial = itertools.count()
        # Sandboxes being launched: the reaper leaves their containers and network alone,
        # however short their TTL (a start can take longer than it).
        self.launching: set[str] = set()

    def labels(self, kind: str, owner: str, expires_at: float,
               sandbox_id: str = "") -> dict[str, str]:
        return {LABEL: "1", "aios.manager": self.settings.manager_name,
                "aios.instance": self.instance, "aios.kind": kind, "aios.id": sandbox_id,
                "aios.owner": owner[:128], "aios.expires_at": str(int(expires_at))}

    async def launch(self, limits: Limits, kind: str, owner: str, ttl_s: float,
                     network: str = "none") -> Sandbox:
        sandbox_id = secrets.token_hex(8)
        self.launching.add(sandbox_id)
        try:
            return await self._launch(sandbox_id, limits, kind, owner, ttl_s, network)
        finally:
            self.launching.discard(sandbox_id)

    def blueprint(self, kind: str) -> Blueprint:
        return self.browser if kind == "browser" else self.sandbox

    async def _launch(self, sandbox_id: str, limits: Limits, kind: str, owner: str,
                      ttl_s: float, network: str) -> Sandbox:
        now, blueprint = time.time(), self.blueprint(kind)
        labels = self.labels(kind, owner, now + ttl_s, sandbox_id)
        container_id, sock, route = await self._in_thread_cleaning_up_on_cancel(
            sandbox_id, limits, labels, network, blueprint)
        channel = None
        try:
            channel = await RunnerChannel.open(sock)
            hello = await asyncio.wait_for(channel.receive(), blueprint.start_timeout_s)
            _check_hello(hello, limits, network, blueprint)
        except BaseException as exc:
            if channel is not None:
                channel.close()
            else:
                sock.close()
            await self.remove(container_id, route)
            if isinstance(exc, asyncio.TimeoutError):
                raise SandboxUnavailable(f"{blueprint.what} did not start within "
                                         f"{blueprint.start_timeout_s:g} s") from exc
            if isinstance(exc, ChannelClosed):
                raise SandboxUnavailable(f"{blueprint.what} did not start: {exc}") from exc
            raise
        details = {k: v for k, v in hello.items() if k not in ("t", "attest")}
        return Sandbox(sandbox_id, container_id, kind, owner, limits, now, now + ttl_s, channel,
                       route, details=details)

    async def _in_thread_cleaning_up_on_cancel(self, sandbox_id: str, limits: Limits,
                                               labels: dict, network: str,
                                               blueprint: Blueprint):
        work = asyncio.ensure_future(asyncio.to_thread(
            self._create_attach_start, sandbox_id, limits, labels, network, blueprint))
        try:
            return await asyncio.shield(work)
        except asyncio.CancelledError:
            # The thread goes on regardless: remove what it creates, then stop.
            with contextlib.suppress(Exception):
                container_id, sock, route = await work
                sock.close()
                await self.remove(container_id, route)
            raise

    def _open_route(self, sandbox_id: str, labels: dict, network: str,
                    max_bytes: Optional[int]) -> Optional[Route]:
        if network != "egress":
            return None
        try:
            return self.egress.open(sandbox_id, labels, max_bytes)
        except EgressUnavailable as exc:
            raise SandboxUnavailable(str(exc)) from exc

    def _create_attach_start(self, sandbox_id: str, limits: Limits, labels: dict, network: str,
                             blueprint: Blueprint):
        route = self._open_route(sandbox_id, labels, network, blueprint.max_bytes)
        what = blueprint.what
        try:
            spec = blueprint.spec(self.settings, limits, labels, route)
            prefix = "aios-sbx" if what == "sandbox" else f"aios-{what}"
            container = self.client.containers.create(name=f"{prefix}-{sandbox_id}", **spec)
        except BaseException as exc:
            if route:
                self.egress.close(route)
            if isinstance(exc, ImageNotFound):
                raise SandboxUnavailable(f"{what} image {blueprint.image!r} is missing: "
                                         "run `make images`") from exc
            if isinstance(exc, (APIError, docker.errors.DockerException, OSError)):
                raise SandboxUnavailable(f"docker refused to create a {what}: {exc}") from exc
            raise
        sock = None
        try:
            # Attach before start, so the supervisor's first frame cannot be missed.
            attached = self.client.api.attach_socket(
                container.id, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1})
            raw = attached._sock
            sock = raw.dup()  # ours alone, whatever becomes of docker-py's objects
            attached.close()  # the SocketIO first: it holds a reference that defers the close
            raw.close()
            container.start()
            return container.id, sock, route
        except BaseException as exc:
            if sock is not None:
                sock.close()
            self._remove(container.id, route)
            raise SandboxUnavailable(f"docker could not start a {what}: {exc}") from exc

    async def connect(self, sandbox: Sandbox, connected: bool) -> None:
        """Attach an egress sandbox to its network (its way to its proxy), or detach it:
        an exec that did not ask for the network has none."""
        if sandbox.route is None or sandbox.connected == connected:
            return
        api = self.client.api
        change = api.connect_container_to_network if connected \
            else api.disconnect_container_from_network
        try:
            await asyncio.to_thread(change, sandbox.container_id, sandbox.route.network)
        except (APIError, docker.errors.DockerException) as exc:
            raise SandboxUnavailable(f"docker could not change the sandbox's network: {exc}") \
                from exc
        sandbox.connected = connected

    async def destroy(self, sandbox: Sandbox) -> None:
        sandbox.channel.close()
        await self.remove(sandbox.container_id, sandbox.route)

    async def remove(self, container_id: str, route: Optional[Route] = None) -> None:
        await asyncio.to_thread(self._remove, container_id, route)

    def _remove(self, container_id: str, route: Optional[Route] = None) -> None:
        try:
            self.client.api.remove_container(container_id, force=True)
        except NotFound:
            pass
        except APIError as exc:
            if exc.status_code != 409:  # 409: removal already in progress
                raise
        if route:
            self.egress.close(route)

    def labelled(self, any_manager: bool = False, **labels: str) -> list[dict]:
        """Containers of this manager (any run of it), or of every manager on the engine,
        as Docker lists them."""
        wanted = self._wanted(any_manager) + [f"{k}={v}" for k, v in labels.items()]
        return self.client.api.containers(all=True, filters={"label": wanted})

    def labelled_networks(self, any_manager: bool = False) -> list[dict]:
        """Egress networks of this manager (any run of it), or of every manager."""
        return self.client.api.networks(filters={"label": self._wanted(any_manager)})

    def _wanted(self, any_manager: bool) -> list[str]:
        own = [] if any_manager else [f"aios.manager={self.settings.manager_name}"]
        return [f"{LABEL}=1", *own]


def _check_hello(hello: dict, limits: Limits, network: str, blueprint: Blueprint) -> None:
    """Fail closed: a supervisor that could not start (a browser whose Chromium failed) or
    reports a restriction not in force gives no sandbox."""
    if hello.get("t") == "error":
        raise SandboxUnavailable(f"{blueprint.what} did not start: "
                                 f"{hello.get('code', 'failed')}: {hello.get('message', '')}")
    problems = blueprint.check(hello.get("attest", {}), limits, network)
    if problems:
        raise HardeningViolation(problems, blueprint.what)
