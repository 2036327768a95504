"""Filtered internet for sandboxes that ask for it, on a real dockerd. Tests may only reach
this machine's own addresses, so the "internet" is a server on the Docker bridge's gateway
address: refused by default (it is one of this machine's addresses), reachable when
allowlisted, where it serves a tiny package index and a git repository."""

import functools
import subprocess
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from .support import exec_in, run, tiny_wheel


def serve(directory: Path, host: str):
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = ThreadingHTTPServer((host, 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def gateway(docker_client) -> str:
    """The Docker bridge's gateway: this machine's own address, seen from containers."""
    return docker_client.networks.get("bridge").attrs["IPAM"]["Config"][0]["Gateway"]


@pytest.fixture(scope="module")
def internet(gateway, tmp_path_factory):
    """A package index and a git repository served on the gateway address."""
    root = tmp_path_factory.mktemp("internet")
    wheel = tiny_wheel("aios_hello", "GREETING = 'installed over egress'\n")
    (root / "simple" / "aios-hello").mkdir(parents=True)
    (root / "simple" / "aios-hello" / wheel.name).write_bytes(wheel.data)
    (root / "simple" / "aios-hello" / "index.html").write_text(
        f'<html><body><a href="{wheel.name}">{wheel.name}</a></body></html>')
    _git_repository(root / "repo.git")
    (root / "big.bin").write_bytes(b"x" * (2 * BUDGET))
    (root / "metered.bin").write_bytes(b"m" * METERED)
    server = serve(root, gateway)
    yield f"{gateway}:{server.server_port}"
    server.shutdown()
    server.server_close()


BUDGET = 400_000  # bytes each egress sandbox may move: more than any test but the cap's
METERED = 150_000  # the download whose bytes the manager's metrics must show


def _git_repository(bare: Path) -> None:
    """A bare repository with one commit, served by plain HTTP (git's dumb protocol)."""
    work = bare.parent / "work"
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "init.defaultBranch=main"]
    subprocess.run([*git, "init", "-q", str(work)], check=True)
    (work / "README").write_text("cloned over egress\n")
    subprocess.run([*git, "-C", str(work), "add", "README"], check=True)
    subprocess.run([*git, "-C", str(work), "commit", "-qm", "one"], check=True)
    subprocess.run([*git, "clone", "-q", "--bare", str(work), str(bare)], check=True)
    subprocess.run(["git", "-C", str(bare), "update-server-info"], check=True)


@pytest.fixture(scope="module")
def own_server(gateway, tmp_path_factory):
    """Another server on this machine: its port is allowed, its address is not."""
    server = serve(tmp_path_factory.mktemp("own"), gateway)
    yield f"{gateway}:{server.server_port}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def egress_manager(docker_client, internet, own_server):
    from .support import start_manager
    ports = f"80,443,{own_server.split(':')[1]}"
    manager = start_manager(docker_client, allow_egress=1, egress_allow=internet,
                            egress_ports=ports, egress_max_bytes=BUDGET)
    yield manager
    manager.stop()
    assert manager.containers() == [], "egress sandboxes and proxies are all removed"
    networks = docker_client.api.networks(filters={"label": f"aios.manager={manager.name}"})
    assert networks == [], "and their networks"


@pytest.fixture
def egress_session(egress_manager):
    api = egress_manager.client()
    created = api.post("/v1/sandboxes", json={"ttl_s": 300, "network": "egress",
                                              "timeout_s": 60})
    assert created.status_code == 201, created.text
    assert created.json()["network"] == "egress"
    yield api, created.json()["id"]
    api.delete(f"/v1/sandboxes/{created.json()['id']}")


def sh(api, sandbox_id, code) -> dict:
    return exec_in(api, sandbox_id, language="bash", code=code)


def test_pip_installs_from_an_allowlisted_index(egress_session, internet):
    api, sandbox_id = egress_session
    host = internet.split(":")[0]
    result = sh(api, sandbox_id, f"pip install -q --index-url http://{internet}/simple "
                                 f"--trusted-host {host} aios-hello 2>&1\n"
                                 "python3 -c 'import aios_hello; print(aios_hello.GREETING)'")
    assert result["stdout"].endswith("installed over egress\n"), result["stdout"]


def test_git_clones_from_an_allowlisted_host(egress_session, internet):
    api, sandbox_id = egress_session
    result = sh(api, sandbox_id, f"git clone -q http://{internet}/repo.git && cat repo/README")
    assert result["stdout"] == "cloned over egress\n", result["stderr"]


def test_urllib_goes_through_the_proxy_too(egress_session, internet):
    api, sandbox_id = egress_session
    code = ("import urllib.request\n"
            f"urllib.request.urlopen('http://{internet}/repo.git/HEAD').read()")
    result = exec_in(api, sandbox_id, language="python", code=code)
    assert result["execute_result"] == "b'ref: refs/heads/main\\n'", result["stderr"]


def test_an_own_address_not_allowlisted_is_refused_with_a_reason(egress_session, own_server,
                                                                 gateway):
    api, sandbox_id = egress_session
    result = sh(api, sandbox_id, f"curl -sS -D - -o /dev/null http://{own_server}/")
    assert result["stdout"].startswith("HTTP/1.1 403"), result
    refusal = next(line for line in result["stdout"].splitlines()
                   if line.lower().startswith("x-aios-refused"))
    assert f"refused: {gateway} is" in refusal, refusal
    tunnel = sh(api, sandbox_id, f"curl -sS -p -o /dev/null -w '%{{http_code}}' "
                                 f"http://{own_server}/; echo \" exit $?\"")
    assert tunnel["stdout"].startswith("403") or "exit 56" in tunnel["stdout"], tunnel


def test_traffic_that_ignores_the_proxy_has_no_route(egress_session, internet):
    api, sandbox_id = egress_session
    result = sh(api, sandbox_id, f"curl -sS --noproxy '*' --max-time 3 http://{internet}/ "
                                 "-o /dev/null; echo \"exit $?\"")
    assert result["stdout"].strip() in ("exit 7", "exit 28"), result  # unreachable, timed out
    python = exec_in(api, sandbox_id, language="python", code=(
        "import socket\ntry:\n    socket.create_connection(('" + internet.split(":")[0] + "', "
        + internet.split(":")[1] + "), 3)\n    'connected'\nexcept OSError as e:\n"
        "    type(e).__name__"))
    assert python["execute_result"] != "'connected'"


def test_a_one_shot_egress_run_and_its_cleanup(egress_manager, internet, docker_client):
    api = egress_manager.client()
    wheel = run(api, f"curl -sS http://{internet}/simple/aios-hello/ | grep -c whl",
                language="bash", network="egress", timeout_s=30)
    assert wheel["stdout"] == "1\n", wheel
    assert httpx.get(egress_manager.url + "/health", timeout=1).status_code == 200
    egress_manager.wait_for(lambda: egress_manager.containers(**{"aios.kind": "egress-proxy"})
                            == [], what="the run's proxy to go")


def egress_bytes(api) -> dict[str, float]:
    """The manager's aios_sandbox_egress_bytes_total of code sandboxes, by direction."""
    found = {"sent": 0.0, "received": 0.0}
    for family in text_string_to_metric_families(api.get("/metrics").text):
        for sample in family.samples:
            if sample.name == "aios_sandbox_egress_bytes_total" \
                    and sample.labels["kind"] == "sandbox":
                found[sample.labels["direction"]] = sample.value
    return found


def test_the_bytes_of_an_egress_run_are_counted_when_it_ends(egress_manager, internet):
    api = egress_manager.client()
    before = egress_bytes(api)
    got = run(api, f"curl -sS -o m.bin http://{internet}/metered.bin; wc -c < m.bin",
              language="bash", network="egress", timeout_s=30)
    assert got["stdout"] == f"{METERED}\n", got
    egress_manager.wait_for(lambda: egress_bytes(api)["received"] > before["received"],
                            what="the run's egress to be counted")
    after = egress_bytes(api)
    received, sent = (after[d] - before[d] for d in ("received", "sent"))
    assert received >= METERED, "the download, as the proxy received it from outside"
    assert 0 < sent < METERED, "the request and acknowledgements out, not the download"


def test_egress_sandboxes_are_still_hardened_and_see_only_their_proxy(egress_session):
    api, sandbox_id = egress_session
    result = sh(api, sandbox_id, "id -u; cat /proc/net/dev | tail -n +3 | cut -d: -f1 | "
                                 "tr -d ' ' | sort | tr '\\n' ' '; echo; "
                                 "echo $HTTP_PROXY | grep -c ':3128'")
    uid, interfaces, proxied = result["stdout"].splitlines()
    assert uid == "10001" and interfaces.split() == ["eth0", "lo"] and proxied == "1"


def test_a_bad_setting_fails_the_start_naming_it(docker_client):
    from .support import start_manager
    with pytest.raises(AssertionError, match="SANDBOX_EGRESS_PORTS"):
        start_manager(docker_client, allow_egress=1, egress_ports="http")



def test_a_sandbox_past_its_byte_budget_is_cut_off(egress_session, internet):
    api, sandbox_id = egress_session
    result = sh(api, sandbox_id,
                f"curl -sS -o big.bin http://{internet}/big.bin; echo \"exit $?\"; "
                "wc -c < big.bin; "
                f"curl -sS -D - -o /dev/null http://{internet}/simple/")
    lines = result["stdout"].splitlines()
    assert lines[0] != "exit 0" and int(lines[1]) < 2 * BUDGET, "the download was cut"
    assert lines[2].startswith("HTTP/1.1 403"), result
    assert any("byte budget" in line for line in lines), "later requests say why"


def test_an_exec_has_the_network_only_when_it_asks(egress_session, internet):
    api, sandbox_id = egress_session
    fetch = f"curl -sS --max-time 5 -o /dev/null -w '%{{http_code}}' http://{internet}/repo.git/HEAD"
    offline = exec_in(api, sandbox_id, language="bash", code=fetch, network=False)
    assert not offline["stdout"].startswith("200"), "detached: not even its proxy"
    online = exec_in(api, sandbox_id, language="bash", code=fetch, network=True)
    assert online["stdout"] == "200"
    assert exec_in(api, sandbox_id, language="bash", code=fetch)["stdout"] == "200", \
        "as the previous exec"


def test_network_on_a_sandbox_without_egress_is_refused(egress_manager):
    api = egress_manager.client()
    sandbox_id = api.post("/v1/sandboxes", json={}).json()["id"]
    try:
        refused = api.post(f"/v1/sandboxes/{sandbox_id}/exec",
                           json={"language": "bash", "code": "true", "network": True})
        assert refused.status_code == 422 and "egress" in refused.json()["error"]["message"]
        assert httpx.get(egress_manager.url + "/health").json()["features"]["egress"] is True
    finally:
        api.delete(f"/v1/sandboxes/{sandbox_id}")
