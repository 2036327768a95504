"""The agent's browser on the real stack: a scripted fake model (real OpenAI SDK), Celery
worker and web, the sandbox manager starting a browser sandbox (Chromium in its own
container) on a real dockerd, the page's traffic through its guard proxy to a site on this
machine's Docker bridge address, and the user answering approvals over REST."""

import json
import re
from pathlib import Path

import psutil
import pytest

from .browser_site import REPORT
from .stack import CANARY, rest_client
from .agent_fixtures import client, fake, stack  # noqa: F401 - fixtures
from .test_agent import of_type, result_of


@pytest.fixture
def browser_manager(agent_manager):
    return agent_manager


def snapshot_of(messages: list[dict]) -> str:
    """The latest browser_snapshot the model was given."""
    for message in reversed(messages):
        if message.get("role") == "tool" and '"snapshot"' in (message.get("content") or ""):
            return json.loads(message["content"])["snapshot"]
    raise AssertionError("no snapshot in the conversation")


def ref(role: str, name: str):
    """A scripted turn's argument: the ref of `role "name"` in the latest snapshot."""
    def find(messages):
        snapshot = snapshot_of(messages)
        found = re.search(rf'{role} "{re.escape(name)}"[^\n]*\[ref=(\w+)\]', snapshot)
        assert found, f'no {role} "{name}" in:\n{snapshot}'
        return found.group(1)
    return find


def turn(*calls):
    """A turn of tool calls whose arguments may be functions of the conversation."""
    def make(messages):
        return {"tools": [(name, {k: v(messages) if callable(v) else v
                                  for k, v in arguments.items()}) for name, arguments in calls]}
    return make


def run(listener, stack, script, approve=lambda data: True, timeout=90, **task_input):
    """Runs an agent task, answering each approval it asks for with approve(data)."""
    task_input.setdefault("tools", ["browser_navigate", "browser_snapshot", "browser_click",
                                    "browser_type", "browser_select", "browser_press",
                                    "browser_back", "browser_tabs", "browser_screenshot",
                                    "browser_download", "browse", "read_file"])
    ack = listener.call("task:submit", {"kind": "agent", "input": dict(
        goal="go", model=f"script:{script}", provider="openai", **task_input)})
    assert "error" not in ack, ack
    task_id, answered = ack["task_id"], set()
    with rest_client(stack.web) as rest:
        def answer(listener):
            for event in listener.of(task_id):
                data = event["data"]
                if event["type"] == "approval_required" and data["call_id"] not in answered:
                    answered.add(data["call_id"])
                    reply = rest.post(f"/api/tasks/{task_id}/approvals/{data['call_id']}",
                                      json={"approved": approve(data)})
                    assert reply.status_code == 200, reply.text
            return any(e["type"] == "status" and e["data"]["status"] in
                       ("succeeded", "failed", "cancelled") for e in listener.of(task_id))
        listener.wait_for(answer, timeout, f"task {task_id} to end")
    return task_id, listener.of(task_id)


def outputs(events) -> list[tuple[str, bool, str]]:
    return [(r["name"], r["is_error"], r["output"]) for r in of_type(events, "tool_result")]


def test_log_in_through_a_form_then_read_the_page_behind_it(client, fake, stack, site,
                                                            browser_manager):
    fake.scripts["login"] = [
        {"tools": [("browser_navigate", {"url": site.url("/login")}),
                   ("browser_snapshot", {})]},
        turn(("browser_type", {"ref": ref("textbox", "User"), "text": "ada"}),
             ("browser_type", {"ref": ref("textbox", "Password"), "text": "lovelace"}),
             ("browser_click", {"ref": ref("button", "Log in")}),
             ("browser_snapshot", {})),
        {"text": "You have 42 coins."}]
    task_id, events = run(client, stack, "login")
    assert result_of(events)["text"] == "You have 42 coins.", events
    results = outputs(events)
    assert [error for _, error, _ in results] == [False] * 6, results
    assert "Balance: 42 coins" in json.loads(results[-1][2])["snapshot"]
    # typing asked (it sends the user's words to the site), and so did the form's submit
    asked = of_type(events, "approval_required")
    assert [a["tool"] for a in asked] == ["browser_type", "browser_type", "browser_click"]
    assert "/login" in asked[2]["reason"]
    assert "POST /login" in [f"POST {p}" for p in site.requests if p == "/login"] or \
        site.requests.count("/login") >= 2
    # the run's browser is gone with the run
    browser_manager.wait_for(lambda: not browser_manager.containers(
        **{"aios.owner": f"task:{task_id}"}), 15, "the run's browser to go")


def test_a_denied_submit_is_a_tool_error_and_nothing_is_sent(client, fake, stack, site):
    fake.scripts["denied"] = [
        {"tools": [("browser_navigate", {"url": site.url("/login")}),
                   ("browser_snapshot", {})]},
        turn(("browser_click", {"ref": ref("button", "Log in")})),
        {"text": "The user said no."}]
    posts_before = len(site.requests)
    _, events = run(client, stack, "denied", approve=lambda data: False)
    name, is_error, output = outputs(events)[-1]
    assert (name, is_error) == ("browser_click", True) and "denied" in output
    assert "/login" not in site.requests[posts_before + 1:]  # the GET was before; no POST
    assert result_of(events)["text"] == "The user said no."


def test_pick_from_a_select_and_an_old_ref_is_stale(client, fake, stack, site):
    fake.scripts["pick"] = [
        {"tools": [("browser_navigate", {"url": site.url("/pick")}),
                   ("browser_snapshot", {})]},
        turn(("browser_select", {"ref": ref("combobox", "Colour"), "values": ["green"]}),
             ("browser_snapshot", {})),
        turn(("browser_click", {"ref": ref("button", "Clear the page")}),
             ("browser_select", {"ref": ref("combobox", "Colour"), "values": ["red"]})),
        {"text": "Green."}]
    _, events = run(client, stack, "pick")
    results = outputs(events)
    assert "You picked: green" in json.loads(results[3][2])["snapshot"], results
    name, is_error, output = results[-1]
    assert (name, is_error) == ("browser_select", True)
    assert "browser_snapshot" in output  # it says how to recover: a new snapshot


def test_a_download_becomes_an_artifact_and_a_screenshot_reaches_the_model(client, fake,
                                                                          stack, site):
    fake.scripts["download"] = [
        {"tools": [("browser_navigate", {"url": site.url("/files")}),
                   ("browser_snapshot", {})]},
        turn(("browser_download", {"ref": ref("link", "Download the report")}),
             ("browser_screenshot", {})),
        {"text": "Saved."}]
    task_id, events = run(client, stack, "download")
    artifacts = of_type(events, "artifact")
    assert [a["name"] for a in artifacts] == ["report.csv", "screenshot.png"], outputs(events)[2]
    with rest_client(stack.web) as rest:
        assert rest.get(artifacts[0]["url"]).content == REPORT
        assert rest.get(artifacts[1]["url"]).content[:8] == b"\x89PNG\r\n\x1a\n"
    assert [a["name"] for a in result_of(events)["artifacts"]] == ["report.csv",
                                                                   "screenshot.png"]
    last = [r for r in fake.requests if r["model"] == "script:download"][-1]["messages"]
    images = [p for m in last if m["role"] == "user" and isinstance(m["content"], list)
              for p in m["content"] if p.get("type") == "image_url"]
    assert len(images) == 1  # the screenshot, for the model to see


def test_browse_reads_an_allowed_page_and_is_refused_another(client, fake, stack, site):
    fake.scripts["web"] = [{"tools": [("browse", {"url": site.url("/pick")}),
                                      ("browse", {"url": "http://127.0.0.1:9/admin"})]},
                           {"text": "Colours."}]
    _, events = run(client, stack, "web", tools=["browse"])
    results = outputs(events)
    assert results[0][1] is False and "Nothing yet" in json.loads(results[0][2])["text"]
    assert results[1][1] is True and "refused" in results[1][2]


def test_refused_navigations_are_tool_errors(client, fake, stack, site):
    fake.scripts["refused"] = [
        {"tools": [("browser_navigate", {"url": "http://127.0.0.1:9/admin"}),
                   ("browser_navigate", {"url": "file:///etc/passwd"}),
                   # allowed by the worker's list, but the proxy allows only the site's port
                   ("browser_navigate", {"url": f"http://{site.host}:9/"})]},
        {"text": "Refused."}]
    # the third is the proxy's own refusal: the worker's allowlist names that host and port
    _, events = run(client, stack, "refused")
    results = outputs(events)
    assert [error for _, error, _ in results] == [True, True, True], results
    assert all("refused" in output or "not allowed" in output for _, _, output in results)


def chromium_of(container_id: str) -> list:
    """The Chromium processes of a container, as this machine sees them."""
    found = []
    for proc in psutil.process_iter(["name"]):
        try:
            if "chrom" in (proc.info["name"] or "") and \
                    container_id in Path(f"/proc/{proc.pid}/cgroup").read_text():
                found.append(proc)
        except (OSError, psutil.Error):
            continue
    return found


def test_a_session_keeps_its_page_and_the_browser_is_isolated_from_the_worker(
        client, fake, stack, site, browser_manager):
    """Chromium runs in the browser sandbox: not under the worker, with none of its
    variables, no user folder reachable through file://; the conversation's page stays
    between its runs and goes with the session."""
    web, worker, files = stack.web, stack.worker, stack.files
    fake.scripts["first"] = [
        {"tools": [("browser_navigate", {"url": site.url("/pick")}),
                   ("browser_navigate", {"url": f"file://{files}/secret.txt"})]},
        {"text": "ok"}]
    session = "browser-session-1"
    _, events = run(client, stack, "first", session_id=session)
    results = outputs(events)
    assert [error for _, error, _ in results] == [False, True], results
    assert CANARY not in json.dumps(events)

    browsers = browser_manager.containers(**{"aios.owner": f"session:{session}",
                                             "aios.kind": "browser"})
    assert len(browsers) == 1  # kept for the conversation, with its page
    chromium = chromium_of(browsers[0].id)
    assert chromium, "no Chromium in the browser sandbox"
    worker_tree = {p.pid for p in psutil.Process(worker.proc.pid).children(recursive=True)}
    assert not worker_tree & {p.pid for p in chromium}
    secrets = {k: v for k, v in psutil.Process(worker.proc.pid).environ().items()
               if k.endswith(("_API_KEY", "_TOKEN", "_URL")) or k == "SECRET_KEY"}
    assert "OPENAI_API_KEY" in secrets  # the worker has them: what the browser must not
    for proc in chromium:
        environ = proc.environ()  # (Debian's chromium wrapper sets its own GOOGLE_API_KEY)
        assert not set(secrets) & set(environ), environ
        assert not set(secrets.values()) & set(environ.values()), environ
        assert proc.uids().real != 0

    # turns count over the whole conversation: run one had two
    fake.scripts["second"] = [{}, {}, {"tools": [("browser_snapshot", {})]}, {"text": "same page"}]
    _, events = run(client, stack, "second", session_id=session)
    assert "Colour" in json.loads(outputs(events)[0][2])["snapshot"]  # the page of run one
    with rest_client(web) as rest:
        assert rest.delete(f"/api/sessions/{session}").status_code == 204
    browser_manager.wait_for(lambda: not browser_manager.containers(
        **{"aios.owner": f"session:{session}"}), 15, "the session's browser to go")
