import pytest

from aios_sandbox.limits import LimitExceeded, LimitOverrides, Limits, resolve

DEFAULTS = Limits()
MAXIMA = Limits(memory_mb=512, cpus=2, pids=128, timeout_s=60, output_bytes=1 << 22,
                nofile=1024, fsize_mb=128, home_mb=256, tmp_mb=256)


def test_no_overrides_gives_the_defaults():
    assert resolve(DEFAULTS, MAXIMA) == DEFAULTS


def test_overrides_and_timeout_apply():
    limits = resolve(DEFAULTS, MAXIMA, LimitOverrides(memory_mb=384, pids=100), timeout_s=30)
    assert (limits.memory_mb, limits.pids, limits.timeout_s) == (384, 100, 30)
    assert limits.cpus == DEFAULTS.cpus


def test_anything_over_a_maximum_is_refused_and_named():
    with pytest.raises(LimitExceeded) as err:
        resolve(DEFAULTS, MAXIMA, LimitOverrides(memory_mb=4096, cpus=1), timeout_s=61)
    assert err.value.fields == {"memory_mb": 512, "timeout_s": 60}
    assert "memory_mb (max 512)" in str(err.value)


def test_overrides_reject_unknown_fields_and_nonsense():
    with pytest.raises(ValueError):
        LimitOverrides(network=True)
    with pytest.raises(ValueError):
        LimitOverrides(memory_mb=1)


@pytest.mark.parametrize("cpus", [0.001, 1e-300, 0.0099])
def test_a_cpu_share_docker_would_not_enforce_is_refused(cpus):
    # Docker's smallest quota is 0.01 CPU; below it nano_cpus rounds to 0, which means
    # "no limit": the sandbox would fail the hardening check and the manager stop serving.
    with pytest.raises(ValueError):
        LimitOverrides(cpus=cpus)
    with pytest.raises(ValueError):
        Limits(cpus=cpus)
    assert LimitOverrides(cpus=0.01).cpus == 0.01


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan")])
def test_limits_are_finite_numbers(value):
    with pytest.raises(ValueError):
        LimitOverrides(cpus=value)
    with pytest.raises(ValueError):
        Limits(timeout_s=value)
