from aios_sandbox.languages import LANGUAGES, UnknownLanguage, get_language
from aios_sandbox.limits import Limits
from aios_sandbox.settings import Settings
from aios_sandbox.spec import container_spec

import pytest


def spec(**settings):
    return container_spec(Settings(manager_token="t" * 20, **settings), Limits(), {"a": "b"})


def test_every_hardening_is_asked_for():
    s = spec()
    assert s["user"] == "10001:10001"
    assert s["network_disabled"] is True and "network_mode" not in s
    assert s["cap_drop"] == ["ALL"] and "cap_add" not in s
    assert s["security_opt"] == ["no-new-privileges:true"]
    assert s["read_only"] is True and set(s["tmpfs"]) == {"/home/sandboxuser", "/tmp"}
    assert s["mem_limit"] == s["memswap_limit"] == 256 << 20
    assert s["pids_limit"] == 64 and s["nano_cpus"] == 10**9
    assert {u["Name"] for u in s["ulimits"]} == {"nofile", "fsize", "core"}
    assert "volumes" not in s and "mounts" not in s and "privileged" not in s
    assert "runtime" not in s


def test_core_dumps_are_off_and_cannot_be_turned_back_on():
    core = [u for u in spec()["ulimits"] if u["Name"] == "core"]
    assert [(u["Soft"], u["Hard"]) for u in core] == [(0, 0)], "soft and hard both 0"


def test_optional_oci_runtime():
    assert spec(runtime="runsc")["runtime"] == "runsc"


def test_language_registry():
    assert {"python", "bash"} <= set(LANGUAGES)
    assert "{file}" in get_language("python").command()
    with pytest.raises(UnknownLanguage, match="known: bash, python"):
        get_language("cobol")
