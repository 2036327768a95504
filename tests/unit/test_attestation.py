import pytest

from aios_sandbox.attestation import ZERO_CAPS, violations
from aios_sandbox.limits import Limits

LIMITS = Limits()
MiB = 1 << 20


def good_report() -> dict:
    return {
        "uid": 10001, "euid": 10001, "cap_eff": ZERO_CAPS, "cap_prm": ZERO_CAPS,
        "cap_bnd": ZERO_CAPS, "cap_amb": ZERO_CAPS, "no_new_privs": "1",
        "interfaces": ["lo"], "root_read_only": True,
        "memory_limit": str(LIMITS.memory_mb * MiB), "memsw_limit": str(LIMITS.memory_mb * MiB),
        "pids_max": str(LIMITS.pids), "cpu_quota": "100000", "cpu_period": "100000",
        "nofile": [LIMITS.nofile] * 2, "fsize": [LIMITS.fsize_mb * MiB] * 2,
        "core": [0, 0],
        "home_bytes": LIMITS.home_mb * MiB, "tmp_bytes": LIMITS.tmp_mb * MiB,
        "swap_devices": 0, "docker_socket": False,
    }


def test_a_fully_hardened_sandbox_passes():
    assert violations(good_report(), LIMITS) == []


@pytest.mark.parametrize("change, named", [
    ({"uid": 0, "euid": 0}, "runs as root"),
    ({"cap_eff": "00000000a80425fb"}, "has capabilities"),
    ({"no_new_privs": "0"}, "no-new-privileges is off"),
    ({"interfaces": ["eth0", "lo"]}, "has a network interface besides loopback"),
    ({"root_read_only": False}, "root filesystem is writable"),
    ({"memory_limit": "9223372036854771712"}, "memory limit not in force"),
    ({"memsw_limit": "9223372036854771712"}, "swap beyond the memory limit"),
    ({"pids_max": "max"}, "pids limit not in force"),
    ({"cpu_quota": "-1"}, "cpu quota not in force"),
    ({"nofile": [1048576, 1048576]}, "nofile limit not in force"),
    ({"fsize": [-1, -1]}, "fsize limit not in force"),
    ({"core": [0, -1]}, "core dumps are not off"),  # soft 0 only: code could raise it again
    ({"core": [-1, -1]}, "core dumps are not off"),
    ({"core": None}, "core dumps are not off"),  # a supervisor that does not report it
    ({"home_bytes": 12 * 1024 * MiB}, "home is not the requested tmpfs"),
    ({"docker_socket": True}, "docker socket is visible"),
])
def test_each_missing_restriction_is_named(change, named):
    assert violations({**good_report(), **change}, LIMITS) == [named]


def test_without_swap_accounting_no_swap_device_is_required():
    report = {**good_report(), "memsw_limit": None}
    assert violations(report, LIMITS) == []
    assert violations({**report, "swap_devices": 1}, LIMITS) == ["swap beyond the memory limit"]


def test_cgroup_v2_files_are_understood():
    report = {**good_report(), "cpu_quota": None, "cpu_period": None, "cpu_max": "100000 100000",
              "memsw_limit": None, "swap_max": "0"}
    assert violations(report, LIMITS) == []
