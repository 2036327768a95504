"""What confinement the supervisor finds itself in, reported so the manager can refuse a
container the engine did not harden."""

import os
import resource

from aios_files import HOME

CGROUP_FILES = {
    "memory_limit": ["/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory.max"],
    "memsw_limit": ["/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes"],
    "swap_max": ["/sys/fs/cgroup/memory.swap.max"],
    "pids_max": ["/sys/fs/cgroup/pids/pids.max", "/sys/fs/cgroup/pids.max"],
    "cpu_quota": ["/sys/fs/cgroup/cpu/cpu.cfs_quota_us",
                  "/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us"],
    "cpu_period": ["/sys/fs/cgroup/cpu/cpu.cfs_period_us",
                   "/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us"],
    "cpu_max": ["/sys/fs/cgroup/cpu.max"],
}
OOM_FILES = ["/sys/fs/cgroup/memory/memory.oom_control", "/sys/fs/cgroup/memory.events"]


def read_first(paths):
    for path in paths:
        try:
            with open(path) as f:
                return f.read().strip()
        except OSError:
            continue
    return None


def proc_status():
    fields = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return fields


def interfaces():
    with open("/proc/net/dev") as f:
        return sorted(line.split(":")[0].strip() for line in f.readlines()[2:])


def attest():
    status = proc_status()
    root = os.statvfs("/")
    home, tmp = os.statvfs(HOME), os.statvfs("/tmp")
    with open("/proc/swaps") as f:
        swap_devices = len(f.readlines()) - 1
    report = {
        "uid": os.getuid(), "euid": os.geteuid(), "gid": os.getgid(),
        "cap_eff": status.get("CapEff"), "cap_prm": status.get("CapPrm"),
        "cap_bnd": status.get("CapBnd"), "cap_amb": status.get("CapAmb"),
        "no_new_privs": status.get("NoNewPrivs"), "seccomp": status.get("Seccomp"),
        "interfaces": interfaces(),
        "root_read_only": bool(root.f_flag & os.ST_RDONLY),
        "home_bytes": home.f_blocks * home.f_frsize, "tmp_bytes": tmp.f_blocks * tmp.f_frsize,
        "swap_devices": swap_devices,
        "docker_socket": any(os.path.exists(p)
                             for p in ("/var/run/docker.sock", "/run/docker.sock")),
        "nofile": list(resource.getrlimit(resource.RLIMIT_NOFILE)),
        "fsize": list(resource.getrlimit(resource.RLIMIT_FSIZE)),
        "core": list(resource.getrlimit(resource.RLIMIT_CORE)),
    }
    for key, paths in CGROUP_FILES.items():
        report[key] = read_first(paths)
    return report


def oom_kills():
    text = read_first(OOM_FILES) or ""
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key == "oom_kill":
            return int(value)
    return 0
