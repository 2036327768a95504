"""Fail closed: compare what the supervisor sees from inside with what was asked for."""

from .limits import Limits

MiB = 1 << 20
ZERO_CAPS = "0000000000000000"


def _int(value) -> int | None:
    try:
        return int(str(value).split()[0])
    except (TypeError, ValueError, IndexError):
        return None


def _cpu_quota(report: dict) -> float | None:
    if report.get("cpu_max"):  # cgroup v2: "quota period"
        quota, _, period = report["cpu_max"].partition(" ")
        return None if quota == "max" else int(quota) / int(period)
    quota, period = _int(report.get("cpu_quota")), _int(report.get("cpu_period"))
    if quota is None or period is None or quota < 0:
        return None
    return quota / period


def _swap_ok(report: dict, memory: int) -> bool:
    if report.get("memsw_limit") is not None:
        return _int(report["memsw_limit"]) == memory
    if report.get("swap_max") is not None:
        return report["swap_max"] == "0"
    return report.get("swap_devices") == 0  # no swap limit, but no swap either


def violations(report: dict, limits: Limits, network: str = "none") -> list[str]:
    """Every hardening the engine failed to apply; empty when the sandbox is as requested.
    An egress sandbox has one interface besides loopback: its own network's, to its proxy."""
    memory = limits.memory_mb * MiB
    interfaces, beyond = (["eth0", "lo"], "loopback and its proxy's") if network == "egress" \
        else (["lo"], "loopback")
    checks = {
        "runs as root": report.get("uid") == 0 or report.get("euid") == 0,
        "has capabilities": any(report.get(k) != ZERO_CAPS
                                for k in ("cap_eff", "cap_prm", "cap_bnd", "cap_amb")),
        "no-new-privileges is off": report.get("no_new_privs") != "1",
        f"has a network interface besides {beyond}": report.get("interfaces") != interfaces,
        "root filesystem is writable": not report.get("root_read_only"),
        "memory limit not in force": _int(report.get("memory_limit")) != memory,
        "swap beyond the memory limit": not _swap_ok(report, memory),
        "pids limit not in force": _int(report.get("pids_max")) != limits.pids,
        "cpu quota not in force": _cpu_quota(report) is None
        or abs(_cpu_quota(report) - limits.cpus) > 0.01,
        "nofile limit not in force": report.get("nofile") != [limits.nofile, limits.nofile],
        "fsize limit not in force": report.get("fsize") != [limits.fsize_mb * MiB] * 2,
        "core dumps are not off": report.get("core") != [0, 0],
        "home is not the requested tmpfs": report.get("home_bytes") != limits.home_mb * MiB,
        "/tmp is not the requested tmpfs": report.get("tmp_bytes") != limits.tmp_mb * MiB,
        "docker socket is visible": bool(report.get("docker_socket")),
    }
    return [name for name, failed in checks.items() if failed]
