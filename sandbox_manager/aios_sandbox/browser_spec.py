"""The hardened container a browser sandbox is created from, and the check of its hello.

Like a sandbox's (spec.py) with what Chromium needs (sandbox_manager/browser/README.md):
more memory, processes and open files, a seccomp profile that lets Chromium's own sandbox
make its namespaces, and the egress route always. Its environment says only where its proxy
is and whether Chromium's sandbox is required: no token, no key, nothing of the manager's."""

from typing import Optional

from docker.types import Ulimit

from .attestation import violations
from .egress import Route
from .limits import Limits
from .settings import Settings

MiB = 1 << 20
HOME = "/home/browser"


def browser_container_spec(settings: Settings, limits: Limits, labels: dict[str, str],
                           route: Optional[Route] = None) -> dict:
    """Keyword arguments for `containers.create`: nothing shared with the host, and the
    only network the browser's own, whose one peer is its proxy."""
    if route is None:
        raise ValueError("a browser is always created with its egress route")
    uid = settings.uid
    tmpfs_opts = "nosuid,nodev,noexec"  # Chromium runs from the image, never from these
    spec = dict(
        image=settings.browser_image,
        user=f"{uid}:{uid}",
        labels=labels,
        hostname="browser",
        stdin_open=True,           # the supervisor's control channel
        tty=False,
        cap_drop=["ALL"],
        security_opt=["no-new-privileges:true", *seccomp(settings)],
        read_only=True,
        tmpfs={
            HOME: f"size={limits.home_mb}m,uid={uid},gid={uid},mode=0700,{tmpfs_opts}",
            "/tmp": f"size={limits.tmp_mb}m,mode=1777,{tmpfs_opts}",
        },
        mem_limit=limits.memory_mb * MiB,
        memswap_limit=limits.memory_mb * MiB,
        nano_cpus=int(limits.cpus * 1e9),
        pids_limit=limits.pids,
        ulimits=[
            Ulimit(name="nofile", soft=limits.nofile, hard=limits.nofile),
            Ulimit(name="fsize", soft=limits.fsize_mb * MiB, hard=limits.fsize_mb * MiB),
            Ulimit(name="core", soft=0, hard=0),  # a renderer's crash writes no memory image
        ],
        log_config={"type": "none"},
        environment={"HOME": HOME, "AIOS_BROWSER_PROXY": route.proxy_url,
                     "AIOS_BROWSER_SANDBOX": settings.browser_chromium_sandbox},
        working_dir=HOME,
        network=route.network,
        detach=True,
    )
    if settings.runtime:
        spec["runtime"] = settings.runtime
    return spec


def seccomp(settings: Settings) -> list[str]:
    profile = settings.browser_seccomp_profile
    return [f"seccomp={profile}"] if profile else []


def browser_violations(report: dict, limits: Limits, network: str = "egress") -> list[str]:
    """Every hardening the engine failed to apply to a browser container (as a sandbox's,
    with its proxy's interface)."""
    return violations(report, limits, network)
