"""The browser container's definition, the check of its hello, and its settings."""

import pytest

from aios_sandbox.browser_spec import HOME, browser_container_spec
from aios_sandbox.egress import Route
from aios_sandbox.sandbox import Blueprint, HardeningViolation, SandboxUnavailable, _check_hello
from aios_sandbox.settings import ConfigurationError, Settings, load_settings

ROUTE = Route("aios-net-abc", "proxy-id", "http://10.1.2.3:3128")
MiB = 1 << 20


def settings(**overrides) -> Settings:
    return Settings(_env_file=None, manager_token="t" * 20, **overrides)


def spec(**overrides):
    s = settings(**overrides)
    return browser_container_spec(s, s.browser_limits, {"aios.kind": "browser"}, ROUTE)


def test_the_browser_is_hardened_like_a_sandbox():
    s = spec()
    assert s["image"] == "aios-browser" and s["user"] == "10001:10001"
    assert s["cap_drop"] == ["ALL"] and "cap_add" not in s and "privileged" not in s
    assert s["security_opt"][0] == "no-new-privileges:true"
    assert s["read_only"] is True and set(s["tmpfs"]) == {HOME, "/tmp"}
    assert s["mem_limit"] == s["memswap_limit"] == 1024 * MiB
    assert s["pids_limit"] == 512 and s["nano_cpus"] == 10**9
    core = [u for u in s["ulimits"] if u["Name"] == "core"]
    assert [(u["Soft"], u["Hard"]) for u in core] == [(0, 0)]
    assert "volumes" not in s and "mounts" not in s and "devices" not in s
    assert s["log_config"] == {"type": "none"}


def test_its_only_network_is_its_own_and_its_environment_only_names_the_proxy():
    s = spec()
    assert s["network"] == "aios-net-abc" and "network_mode" not in s
    assert s["environment"] == {"HOME": HOME, "AIOS_BROWSER_PROXY": "http://10.1.2.3:3128",
                                "AIOS_BROWSER_SANDBOX": "auto"}
    with pytest.raises(ValueError, match="egress route"):
        browser_container_spec(settings(), settings().browser_limits, {}, None)


def test_the_seccomp_profile_is_sent_as_its_content(tmp_path):
    profile = tmp_path / "p.json"
    profile.write_text('{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": []}')
    assert spec(browser_seccomp=str(profile))["security_opt"][1] == \
        'seccomp={"defaultAction":"SCMP_ACT_ERRNO","syscalls":[]}'
    assert spec(browser_seccomp="default")["security_opt"] == ["no-new-privileges:true"]
    assert spec()["security_opt"][1].startswith("seccomp={"), "the repository's by default"
    profile.write_text("not json")
    with pytest.raises(ValueError, match="SANDBOX_BROWSER_SECCOMP"):
        settings(browser_seccomp=str(profile))


def test_browser_limits_come_from_their_settings():
    limits = settings(browser_memory_mb=2048, browser_pids=256, browser_home_mb=64,
                      browser_tmp_mb=128, browser_nofile=2048).browser_limits
    assert (limits.memory_mb, limits.pids, limits.home_mb, limits.tmp_mb, limits.nofile) \
        == (2048, 256, 64, 128, 2048)
    assert spec(runtime="runsc")["runtime"] == "runsc"


def test_a_default_above_its_maximum_is_refused_naming_both(monkeypatch, tmp_path):
    for key in list(__import__("os").environ):
        if key.startswith("SANDBOX_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SANDBOX_MANAGER_TOKEN", "t" * 20)
    monkeypatch.setenv("SANDBOX_BROWSER_TTL_S", "90000")
    with pytest.raises(ConfigurationError, match="SANDBOX_BROWSER_TTL_S exceeds "
                                                 "SANDBOX_BROWSER_MAX_TTL_S"):
        load_settings()
    monkeypatch.setenv("SANDBOX_BROWSER_TTL_S", "60")
    monkeypatch.setenv("SANDBOX_MAX_BROWSERS", "-1")
    with pytest.raises(ConfigurationError, match="SANDBOX_MAX_BROWSERS"):
        load_settings()


BLUEPRINT = Blueprint("browser", "aios-browser", browser_container_spec,
                      lambda report, limits, network: report.get("problems", []), 60.0)


def test_a_browser_that_could_not_start_chromium_is_unavailable_with_its_reason():
    hello = {"t": "error", "code": "browser_failed", "message": "chromium exited with 1"}
    with pytest.raises(SandboxUnavailable, match="browser did not start: browser_failed: "
                                                 "chromium exited with 1") as failed:
        _check_hello(hello, settings().browser_limits, "egress", BLUEPRINT)
    assert not isinstance(failed.value, HardeningViolation), "not a hardening failure"


def test_a_browser_hello_missing_a_restriction_fails_closed():
    hello = {"t": "hello", "attest": {"problems": ["runs as root"]}, "browser": {}}
    with pytest.raises(HardeningViolation, match="browser hardening not in force: runs as root"):
        _check_hello(hello, settings().browser_limits, "egress", BLUEPRINT)
    _check_hello({"t": "hello", "attest": {}}, settings().browser_limits, "egress", BLUEPRINT)

