"""Schemathesis against the web's own OpenAPI document (/api/openapi.json), on a real stack:
redis-server, a Celery worker, gunicorn+eventlet. No request may get a server error, and every
answer must be what the document says (status, content type, body). The Socket.IO schema is
checked against a real server's acks and events beside it.

The CLI runs through schemathesis_run.py, as for the manager. The tasks it submits are real:
a private Redis and worker, so that none of them waits in the shared stack's queue; `agent`
and `chat` fail at once (no provider), `echo` and `code` run."""

import httpx
import pytest
from jsonschema.validators import Draft202012Validator
from playwright.sync_api import expect, sync_playwright

from .schemathesis_run import fuzz
from .stack import API_TOKEN, RedisServer, TaskListener, backend_env, start_web, start_worker
from .test_console import ARGS, CHROMIUM, connect, console_page

MAX_EXAMPLES = 25  # per operation: ~1,000 requests in all, ~40 s here
SCHEMATHESIS_TIMEOUT_S = 240
CHECKS = ["not_a_server_error", "status_code_conformance", "content_type_conformance",
          "response_schema_conformance", "response_headers_conformance"]


@pytest.fixture(scope="module")
def fuzzed_web(manager, tmp_path_factory):
    """A web with its own Redis and worker; uploads go to a temporary folder."""
    redis = RedisServer().start()
    folder = tmp_path_factory.mktemp("web-schemathesis")
    env = backend_env(redis.url, manager, AIOS_FILE_ROOTS=str(folder),
                      AIOS_UPLOAD_DIR=str(folder / "uploads"),
                      AIOS_ARTIFACT_DIR=str(folder / "artifacts"))
    worker = start_worker(env, "w-schemathesis", concurrency=1)
    web = start_web(env, "web-schemathesis")
    yield web
    web.stop()
    worker.stop()
    redis.kill()


@pytest.mark.timeout(SCHEMATHESIS_TIMEOUT_S + 60)
def test_every_answer_conforms_to_the_document(fuzzed_web, tmp_path):
    fuzzed = fuzz(f"{fuzzed_web.url}/api/openapi.json", API_TOKEN, CHECKS, MAX_EXAMPLES,
                  tmp_path, SCHEMATHESIS_TIMEOUT_S)
    fuzzed.assert_clean(min_operations=15, min_cases=300)
    assert "Traceback" not in fuzzed_web.log.read_text()


def test_socketio_acks_and_events_conform_to_their_schema(fuzzed_web):
    with httpx.Client(base_url=fuzzed_web.url, timeout=30,
                      headers={"Authorization": f"Bearer {API_TOKEN}"}) as rest:
        schema = rest.get("/api/socketio-schema.json").json()

    def check(instance, event, part):
        section = schema["clientToServer"].get(event) or schema["serverToClient"][event]
        Draft202012Validator({**section[part], "$defs": schema["$defs"]}).validate(instance)

    listener = TaskListener(fuzzed_web.url).connect()
    try:
        submit = {"kind": "echo", "input": {"text": "hi"}}
        check(submit, "task:submit", "data")
        ack = listener.call("task:submit", submit)
        check(ack, "task:submit", "ack")
        task_id = ack["task_id"]
        assert listener.wait_final(task_id) == "succeeded"
        for event, data in [("task:subscribe", {"task_id": task_id, "after": 1}),
                            ("task:subscribe", {"task_id": task_id, "after": -1}),
                            ("task:cancel", {"task_id": task_id}),
                            ("task:cancel", {"task_id": "no-such-task"}),
                            ("task:approve", {"task_id": task_id, "call_id": "c-1",
                                              "approved": True}),
                            ("task:approve", {"task_id": task_id, "call_id": "c-1",
                                              "approved": "yes"}),
                            ("task:submit", {"kind": "cobol", "input": {}})]:
            check(listener.call(event, data), event, "ack")
        # Past any seq Redis can index: refused as the negative one is, not a Redis error
        huge = listener.call("task:subscribe", {"task_id": task_id, "after": 2 ** 70})
        assert huge["error"]["code"] == "invalid_request", huge
        check(listener.call("ping", {"x": 1}), "ping", "ack")
        events = listener.of(task_id)
        assert {"status", "result"} <= {e["type"] for e in events}  # the replay doubles some
        for event in events:
            check(event, "task:event", "data")
    finally:
        listener.close()


def test_the_console_shows_the_reference_with_its_token(fuzzed_web):
    """/console/api.html: no library, no CDN; it fetches both documents with the token the
    console keeps in the tab."""
    with httpx.Client(base_url=fuzzed_web.url, timeout=30,
                      headers={"Authorization": f"Bearer {API_TOKEN}"}) as rest:
        paths = rest.get("/api/openapi.json").json()["paths"]
    operations = sum(len(item) for item in paths.values())
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            with console_page(browser, fuzzed_web.url) as page:
                connect(page)
                expect(page.locator("#connection")).to_have_text("connected", timeout=15_000)
                page.click("text=API reference")
                expect(page.locator("details.operation")).to_have_count(operations)
                expect(page.locator("#operations")).to_contain_text("POST /api/tasks")
                expect(page.locator("#socketio")).to_contain_text("task:submit")
                page.goto(fuzzed_web.url + "/console/api.html")
                expect(page.locator("#error")).to_be_hidden()  # the token stays in the tab
        finally:
            browser.close()
