"""Filtered internet for the sandboxes that ask for it (`network: "egress"`).

Each such sandbox gets an internal Docker network of its own, created with no address on
the host's side of its bridge, so the sandbox has no route anywhere. The only other member
is a proxy sidecar (the sandbox image running `aios.net.egress`, the browse tool's address
guard and proxy: python-backend/aios/net), which reaches out through the default bridge and
dials only what the guard allows. The sandbox's HTTP_PROXY/HTTPS_PROXY point at it, so
pip, git, curl and urllib use it; traffic that ignores it has nowhere to go. Blocking
(Docker calls): run it in a thread.

What a sandbox moved is counted when its egress ends: just before the proxy is removed, its
outside interface's counters (Docker's stats; packet headers included) go to `on_bytes`."""

import ipaddress
import logging
import time
from dataclasses import dataclass
from typing import Callable, Optional

import docker
import psutil
from docker.errors import APIError, NotFound

from .settings import Settings

PROXY_PORT = 3128
# No gateway address on the host: the sandbox reaches neither the host nor, through it,
# anything else (Docker's `internal` alone still gives the host an address on the bridge).
NETWORK_OPTIONS = {"com.docker.network.bridge.inhibit_ipv4": "true"}
MiB = 1 << 20
# The proxy's interface on SANDBOX_EGRESS_BRIDGE, its outside: the network it is created on
# comes first; the sandbox's network is connected after it (eth1).
OUTSIDE_INTERFACE = "eth0"
log = logging.getLogger(__name__)


class EgressUnavailable(RuntimeError):
    """The network or the proxy of an egress sandbox could not be set up."""


@dataclass(frozen=True)
class Route:
    network: str
    proxy_id: str
    proxy_url: str
    kind: str = "sandbox"  # whose egress: "sandbox" or "browser" (the metric's label)
    sandbox_id: str = ""  # the sandbox it serves: its log lines name it

    def environment(self) -> dict[str, str]:
        proxy = {"HTTP_PROXY": self.proxy_url, "HTTPS_PROXY": self.proxy_url,
                 "NO_PROXY": "localhost,127.0.0.1,::1"}
        return {**proxy, **{k.lower(): v for k, v in proxy.items()}}  # curl reads lowercase


def own_addresses(client: docker.DockerClient) -> list[str]:
    """This machine's addresses and every Docker network's subnet: refused to the proxy
    unless allowlisted, whatever their range (a host with a public address included)."""
    found = {a.address.split("%")[0] for addrs in psutil.net_if_addrs().values()
             for a in addrs if a.family.name in ("AF_INET", "AF_INET6")}
    for network in client.networks.list():
        for pool in (network.attrs.get("IPAM") or {}).get("Config") or []:
            found.update(v for k, v in pool.items() if k in ("Subnet", "Gateway") and v)
    return sorted(str(ipaddress.ip_network(a, strict=False)) for a in found)


class Egress:
    def __init__(self, client: docker.DockerClient, settings: Settings):
        self.client = client
        self.settings = settings
        # on_bytes(kind, sent, received): a proxy's outside traffic, once, at its removal
        self.on_bytes: Optional[Callable[[str, int, int], None]] = None

    def proxy_command(self, max_bytes: int | None = None) -> list[str]:
        s = self.settings
        args = ["--listen", f"0.0.0.0:{PROXY_PORT}", "--ports", ",".join(map(str, s.egress_ports)),
                "--max-bytes", str(max_bytes or s.egress_max_bytes),
                "--max-connections", str(s.egress_max_connections),
                "--own", ",".join(own_addresses(self.client))]
        if s.egress_allow:
            args += ["--allow", ",".join(s.egress_allow)]
        if s.egress_deny:
            args += ["--deny", ",".join(s.egress_deny)]
        return args

    def open(self, name: str, labels: dict[str, str], max_bytes: int | None = None) -> Route:
        """The sandbox's network and its proxy, ready to serve; max_bytes: its byte budget
        (default SANDBOX_EGRESS_MAX_BYTES)."""
        try:
            network = self.client.networks.create(
                f"aios-net-{name}", driver="bridge", internal=True, options=NETWORK_OPTIONS,
                labels=labels, check_duplicate=True)
        except (APIError, OSError) as exc:
            raise EgressUnavailable(f"docker refused to create a network: {exc}") from exc
        proxy_id = None
        try:
            proxy = self.client.containers.create(
                name=f"aios-egress-{name}", **self._proxy_spec(dict(labels, **{
                    "aios.kind": "egress-proxy"}), max_bytes))
            proxy_id = proxy.id
            proxy.start()
            network.connect(proxy)  # after the bridge, which keeps the default route
            address = self._address(proxy_id, network.name)
            self._wait_listening(proxy)
            kind = "browser" if labels.get("aios.kind") == "browser" else "sandbox"
            return Route(network.name, proxy_id, f"http://{address}:{PROXY_PORT}", kind,
                         labels.get("aios.id", name))
        except BaseException as exc:
            self.close_parts(network.name, proxy_id)
            if isinstance(exc, EgressUnavailable):
                raise
            raise EgressUnavailable(f"the egress proxy did not start: {exc}") from exc

    def _proxy_spec(self, labels: dict[str, str], max_bytes: int | None) -> dict:
        s = self.settings
        return dict(
            image=s.image, entrypoint=["/usr/bin/python3.11", "-m", "aios.net.egress"],
            command=self.proxy_command(max_bytes), environment={"PYTHONPATH": "/opt/aios/lib"},
            user=f"{s.uid}:{s.uid}", labels=labels, network=s.egress_bridge,
            cap_drop=["ALL"], security_opt=["no-new-privileges:true"], read_only=True,
            mem_limit=64 * MiB, memswap_limit=64 * MiB,
            pids_limit=4 * s.egress_max_connections + 16,
            nano_cpus=int(1e9), log_config={"type": "json-file", "config": {"max-size": "1m"}},
            detach=True)

    def _address(self, proxy_id: str, network: str) -> str:
        attrs = self.client.api.inspect_container(proxy_id)
        address = attrs["NetworkSettings"]["Networks"][network]["IPAddress"]
        if not address:
            raise EgressUnavailable("the egress proxy got no address on the sandbox's network")
        return address

    def _wait_listening(self, proxy) -> None:
        deadline = time.monotonic() + self.settings.start_timeout_s
        while time.monotonic() < deadline:
            logs = proxy.logs()
            if b"listening on" in logs:
                return
            proxy.reload()
            if proxy.status != "running":
                raise EgressUnavailable("the egress proxy stopped: "
                                        + logs.decode(errors="replace")[-500:])
            time.sleep(0.02)
        raise EgressUnavailable("the egress proxy did not start in time")

    def close(self, route: Route) -> None:
        self._count(route)
        self.close_parts(route.network, route.proxy_id)

    def _count(self, route: Route) -> None:
        """Report the proxy's outside bytes; a failed read counts nothing and never fails
        the teardown. One call, usually ~10 ms; up to ~1 s when dockerd's stats collector
        has just sampled (it samples once a second while anyone reads)."""
        if self.on_bytes is None:
            return
        try:
            stats = self.client.api.stats(route.proxy_id, stream=False, one_shot=True)
            counted = outside_bytes(stats)
            if counted is None:
                log.info("egress proxy %s: no counters for %s, bytes not counted",
                         route.proxy_id[:12], OUTSIDE_INTERFACE,
                         extra={"sandbox_id": route.sandbox_id})
                return
            self.on_bytes(route.kind, *counted)
        except Exception as exc:  # noqa: BLE001 - a metric must not fail a teardown
            log.info("egress proxy %s: bytes not counted: %s", route.proxy_id[:12], exc,
                     extra={"sandbox_id": route.sandbox_id})

    def close_parts(self, network: str, proxy_id: str | None) -> None:
        if proxy_id:
            try:
                self.client.api.remove_container(proxy_id, force=True)
            except NotFound:
                pass
        self.remove_network(network)

    def remove_network(self, network: str) -> None:
        for _ in range(50):  # a container just removed may still hold its endpoint
            try:
                self.client.api.remove_network(network)
                return
            except NotFound:
                return
            except APIError:
                time.sleep(0.05)


def outside_bytes(stats: dict) -> Optional[tuple[int, int]]:
    """(sent, received) on the proxy's outside interface, from Docker's container stats:
    what it sends there is the sandbox's traffic out, what it receives, the answers. None
    when the stats have no such interface (the proxy stopped: its counters are gone)."""
    counters = (stats.get("networks") or {}).get(OUTSIDE_INTERFACE)
    if not isinstance(counters, dict):
        return None
    sent, received = counters.get("tx_bytes"), counters.get("rx_bytes")
    if not all(isinstance(n, int) and n >= 0 for n in (sent, received)):
        return None
    return sent, received
