"""The hardened container definition every sandbox is created from."""

from typing import Optional

from docker.types import Ulimit

from .egress import Route
from .limits import Limits
from .settings import Settings

MiB = 1 << 20


def container_spec(settings: Settings, limits: Limits, labels: dict[str, str],
                   route: Optional[Route] = None) -> dict:
    """Keyword arguments for `containers.create`: nothing is shared with the host. With a
    route (egress), the only network is the sandbox's own, whose one peer is its proxy."""
    uid = settings.uid
    # exec: compiled programs and the native parts of pip-installed packages run from here
    # (Docker mounts a tmpfs noexec unless told); nosuid and nodev stay.
    tmpfs_opts = "exec,nosuid,nodev"
    spec = dict(
        image=settings.image,
        user=f"{uid}:{uid}",
        labels=labels,
        hostname="sandbox",
        stdin_open=True,           # the supervisor's control channel
        tty=False,
        cap_drop=["ALL"],
        security_opt=["no-new-privileges:true"],
        read_only=True,
        tmpfs={
            settings.home: f"size={limits.home_mb}m,uid={uid},gid={uid},mode=0700,{tmpfs_opts}",
            "/tmp": f"size={limits.tmp_mb}m,mode=1777,{tmpfs_opts}",
        },
        mem_limit=limits.memory_mb * MiB,
        memswap_limit=limits.memory_mb * MiB,  # equal to mem_limit: no extra swap
        nano_cpus=int(limits.cpus * 1e9),
        pids_limit=limits.pids,
        ulimits=[
            Ulimit(name="nofile", soft=limits.nofile, hard=limits.nofile),
            Ulimit(name="fsize", soft=limits.fsize_mb * MiB, hard=limits.fsize_mb * MiB),
            # No core dumps: a crash must not write the process's memory into the home
            # tmpfs (or fill it); hard 0 too, so code inside cannot raise it again.
            Ulimit(name="core", soft=0, hard=0),
        ],
        log_config={"type": "none"},  # output travels over the attached stream only
        environment={"HOME": settings.home, **(route.environment() if route else {})},
        working_dir=settings.home,
        detach=True,
    )
    if route:
        spec["network"] = route.network
    else:
        spec["network_disabled"] = True  # only loopback; starts faster than network_mode="none"
    if settings.runtime:
        spec["runtime"] = settings.runtime
    return spec
