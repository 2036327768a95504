"""Browser sandboxes through the manager's API, on a real dockerd and the aios-browser image.
Pages are served on the Docker bridge's gateway address (this machine's own, refused by the
proxy unless allowlisted), so the browser reaches them only through its egress proxy."""

import re
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from fastapi.testclient import TestClient

from aios_sandbox.api import create_app
from aios_sandbox.browser_spec import browser_container_spec
from aios_sandbox.settings import Settings

from .support import start_manager

PAGES = {
    "/": b"<title>Home</title><h1>Welcome</h1><a href='/next'>Next page</a>"
         b"<button onclick=\"document.title='pressed'\">Press me</button>",
    "/next": b"<title>Next</title><p>the second page</p>",
}
SLOW_S = 4


class Site(BaseHTTPRequestHandler):
    seen: list[str] = []

    def do_GET(self):
        Site.seen.append(self.path)
        if self.path == "/slow":
            time.sleep(SLOW_S)
        body = PAGES.get(self.path, b"<title>Slow</title>slow" if self.path == "/slow" else None)
        self.send_response(200 if body else 404)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body or b"")))
        self.end_headers()
        self.wfile.write(body or b"")

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def browser_image(docker_client):
    try:
        docker_client.images.get("aios-browser")
    except Exception as exc:  # noqa: BLE001
        pytest.fail(f"these tests need the aios-browser image (run `make images`): {exc}")


@pytest.fixture(scope="module")
def gateway(docker_client) -> str:
    return docker_client.networks.get("bridge").attrs["IPAM"]["Config"][0]["Gateway"]


@pytest.fixture(scope="module")
def site(gateway):
    server = ThreadingHTTPServer((gateway, 0), Site)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"{gateway}:{server.server_port}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browsers(docker_client, browser_image, site):
    """A manager whose proxies let browsers reach the site, at most two browsers."""
    manager = start_manager(docker_client, egress_allow=site, max_browsers=2,
                            egress_ports=f"80,443,{site.split(':')[1]}")
    yield manager
    manager.stop()
    assert manager.containers() == [], "browsers and their proxies are all removed"
    assert networks_of(docker_client, manager.name) == [], "and their networks"


def networks_of(docker_client, manager_name: str, **labels) -> list:
    wanted = [f"aios.manager={manager_name}"] + [f"{k}={v}" for k, v in labels.items()]
    return docker_client.api.networks(filters={"label": wanted})


@pytest.fixture
def api(browsers):
    return browsers.client(timeout=120)


@pytest.fixture
def browser(api):
    created = api.post("/v1/browsers", json={"owner": "task-it", "ttl_s": 300})
    assert created.status_code == 201, created.text
    yield created.json()
    api.delete(f"/v1/browsers/{created.json()['id']}")


def act(api, browser_id: str, action: str, /, **args) -> dict:
    response = api.post(f"/v1/browsers/{browser_id}/actions",
                        json={"action": action, "args": args})
    assert response.status_code == 200, response.text
    return response.json()


def test_a_browser_navigates_snapshots_and_clicks_through_its_proxy(api, browser, site,
                                                                      browsers):
    assert browser["kind"] == "browser" and browser["owner"] == "task-it"
    assert browser["browser"]["version"], browser
    assert api.get(f"/v1/browsers/{browser['id']}").json()["id"] == browser["id"]
    assert [b["id"] for b in api.get("/v1/browsers").json()["browsers"]] == [browser["id"]]
    opened = act(api, browser["id"], "navigate", url=f"http://{site}/")
    assert opened["ok"] and opened["result"]["title"] == "Home", opened
    snapshot = act(api, browser["id"], "snapshot")["result"]["snapshot"]
    link = re.search(r'link "Next page" \[ref=(\w+)\]', snapshot)
    assert link, snapshot
    clicked = act(api, browser["id"], "click", ref=link.group(1))
    assert clicked["ok"] and clicked["result"]["url"] == f"http://{site}/next", clicked
    assert "/next" in Site.seen
    health = api.get("/health").json()
    assert health["features"]["browsers"] is True and health["counts"]["browsers"] == 1


def test_errors_of_the_page_are_answers_and_bad_requests_are_refused(api, browser, gateway):
    stale = act(api, browser["id"], "click", ref="e999")
    assert stale["ok"] is False and stale["error"]["code"] in ("not_found", "stale_ref"), stale
    refused = act(api, browser["id"], "navigate", url="file:///etc/passwd")
    assert refused == {"ok": False, "error": refused["error"]}
    assert refused["error"]["code"] in ("refused", "invalid"), refused
    not_allowed = act(api, browser["id"], "navigate", url=f"http://{gateway}:8089/")
    assert not_allowed["ok"] is False and not_allowed["error"]["code"] == "refused", not_allowed
    unknown = api.post(f"/v1/browsers/{browser['id']}/actions", json={"action": "eval"})
    assert unknown.status_code == 422 and unknown.json()["error"]["code"] == "invalid_request"
    assert api.post("/v1/browsers/nope/actions", json={"action": "back"}).status_code == 404
    assert api.delete("/v1/browsers/nope").status_code == 404


@pytest.mark.parametrize("action, args", [
    ("navigate", {}), ("navigate", {"url": 5}), ("click", {"ref": None}),
    ("scroll", {"direction": "left"}), ("tabs", {"action": "switch", "index": 99}),
    ("type", {"ref": "e1"}), ("select", {"ref": "e1", "values": "a"}),
])
def test_bad_arguments_are_the_pages_answer_and_the_browser_stays(api, browser, action, args):
    answer = act(api, browser["id"], action, **args)
    assert answer["ok"] is False and answer["error"]["code"] in ("invalid", "not_found"), answer
    assert api.get(f"/v1/browsers/{browser['id']}").status_code == 200


def test_one_action_at_a_time(api, browser, site):
    slow = threading.Thread(target=act, args=(api, browser["id"], "navigate"),
                            kwargs={"url": f"http://{site}/slow"})
    slow.start()
    try:
        deadline = time.monotonic() + 10
        while "/slow" not in Site.seen and time.monotonic() < deadline:
            time.sleep(0.05)
        busy = api.post(f"/v1/browsers/{browser['id']}/actions", json={"action": "snapshot"})
        assert busy.status_code == 409 and busy.json()["error"]["code"] == "busy", busy.text
    finally:
        slow.join()
    assert act(api, browser["id"], "snapshot")["ok"], "free again once the action ended"


def test_the_cap_answers_429_with_retry_after(api, browser):
    second = api.post("/v1/browsers", json={})
    assert second.status_code == 201, second.text
    try:
        third = api.post("/v1/browsers", json={})
        assert third.status_code == 429 and third.headers["Retry-After"] == "5", third.text
    finally:
        api.delete(f"/v1/browsers/{second.json()['id']}")


def test_destroy_leaves_no_container_network_or_proxy(api, browsers, docker_client):
    created = api.post("/v1/browsers", json={}).json()
    labels = {"aios.id": created["id"]}
    kinds = sorted(c.labels["aios.kind"] for c in browsers.containers(**labels))
    assert kinds == ["browser", "egress-proxy"]
    assert len(networks_of(docker_client, browsers.name, **labels)) == 1
    assert api.delete(f"/v1/browsers/{created['id']}").status_code == 204
    assert browsers.containers(**labels) == []
    assert networks_of(docker_client, browsers.name, **labels) == []
    assert api.get(f"/v1/browsers/{created['id']}").status_code == 404


def test_an_idle_browser_is_reaped(api, browsers):
    created = api.post("/v1/browsers", json={"idle_ttl_s": 1}).json()
    browsers.wait_for(lambda: api.get(f"/v1/browsers/{created['id']}").status_code == 404,
                      timeout=10, what="the idle browser to be reaped")
    browsers.wait_for(lambda: browsers.containers(**{"aios.id": created["id"]}) == [],
                      timeout=10, what="its container and proxy to go")


def test_a_browser_that_stops_answering_is_destroyed_with_503(api, browsers, docker_client):
    created = api.post("/v1/browsers", json={}).json()
    labels = {"aios.id": created["id"]}
    [container] = browsers.containers(**labels, **{"aios.kind": "browser"})
    docker_client.api.kill(container.id)  # Chromium and its supervisor die at once
    lost = api.post(f"/v1/browsers/{created['id']}/actions", json={"action": "snapshot"})
    assert lost.status_code == 503 and "stopped answering" in lost.json()["error"]["message"]
    assert api.get(f"/v1/browsers/{created['id']}").status_code == 404
    assert browsers.containers(**labels) == [], "its proxy is gone with it"
    assert networks_of(docker_client, browsers.name, **labels) == []


def test_the_browser_container_is_hardened_and_holds_no_secret(api, browser, browsers,
                                                               docker_client):
    [container] = browsers.containers(**{"aios.id": browser["id"], "aios.kind": "browser"})
    attrs = docker_client.api.inspect_container(container.id)
    host = attrs["HostConfig"]
    assert attrs["Config"]["User"] == "10001:10001"
    assert host["CapDrop"] == ["ALL"] and not host["CapAdd"] and not host["Privileged"]
    assert not host["Binds"] and attrs["Mounts"] == [], "no host folder, no docker socket"
    assert host["ReadonlyRootfs"] and host["PidsLimit"] and host["Memory"]
    env = dict(e.split("=", 1) for e in attrs["Config"]["Env"])
    assert not [k for k in env if k.startswith("SANDBOX_")
                or re.search("TOKEN|KEY|SECRET|PASSWORD", k)], env
    assert browsers.token not in " ".join(attrs["Config"]["Env"])
    assert set(k for k in env if k.startswith("AIOS_")) <= {"AIOS_BROWSER_PROXY",
                                                           "AIOS_BROWSER_SANDBOX"}
    processes = docker_client.api.top(container.id, ps_args="-o pid,uid,comm")["Processes"]
    assert len(processes) > 1 and {p[1] for p in processes} == {"10001"}, processes


def test_a_missing_browser_image_is_503_naming_make_images(spawn_manager, docker_client):
    manager = spawn_manager(browser_image="aios-no-such-browser")
    api = manager.client()
    assert api.get("/health").json()["features"]["browsers"] is False
    refused = api.post("/v1/browsers", json={})
    assert refused.status_code == 503 and "make images" in refused.json()["error"]["message"]
    assert networks_of(docker_client, manager.name) == [], "its network and proxy are gone"


def test_browsers_can_be_turned_off(spawn_manager):
    api = spawn_manager(allow_browsers=0).client()
    refused = api.post("/v1/browsers", json={})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "browsers_disabled"


def test_a_killed_managers_browsers_are_removed_by_its_successor(docker_client, browser_image):
    first = start_manager(docker_client)
    try:
        created = first.client(timeout=120).post("/v1/browsers", json={})
        assert created.status_code == 201, created.text
    finally:
        first.stop(signal.SIGKILL)
    assert len(first.containers()) == 2, "the browser and its proxy outlive the kill"
    successor = start_manager(docker_client, name=first.name)
    try:
        assert successor.containers() == [] and networks_of(docker_client, first.name) == []
    finally:
        successor.stop()


def test_a_browser_the_engine_did_not_harden_is_refused_and_removed(docker_client,
                                                                    browser_image):
    def engine_dropping_cap_drop(settings, limits, labels, route=None):
        spec = browser_container_spec(settings, limits, labels, route)
        spec.pop("cap_drop")
        return spec
    token, name = "browser-closed-token-0123", "it-brw-closed-" + str(int(time.time()))
    settings = Settings(_env_file=None, manager_token=token, manager_name=name, pool_size=0)
    app = create_app(settings, browser_spec_builder=engine_dropping_cap_drop)
    headers = {"Authorization": f"Bearer {token}"}
    with TestClient(app) as client:
        refused = client.post("/v1/browsers", json={}, headers=headers)
        assert refused.status_code == 503, refused.text
        assert "browser hardening not in force: has capabilities" in refused.text
        ran = client.post("/v1/run", json={"language": "python", "code": "print(1)"},
                          headers=headers)
        assert ran.status_code == 200, "code runs are not the browser's hardening's business"
    left = docker_client.api.containers(all=True, filters={"label": f"aios.manager={name}"})
    assert left == [] and networks_of(docker_client, name) == []
