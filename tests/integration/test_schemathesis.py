"""Schemathesis against a real sandbox manager's OpenAPI: no request may get a server error.
How the CLI is run, and why that way: schemathesis_run.py."""

import json

import pytest

from .schemathesis_run import fuzz
from .support import wait_until

MAX_EXAMPLES = 100  # fuzzing cases per operation: ~1,300 requests in all, ~35 s here
SCHEMATHESIS_TIMEOUT_S = 300
# Operations on one sandbox: they target a real one (random ids would only meet 404s).
ON_THE_TARGET = ["GET /v1/sandboxes/{sandbox_id}", "POST /v1/sandboxes/{sandbox_id}/exec",
                 "POST /v1/sandboxes/{sandbox_id}/reset", "PUT /v1/sandboxes/{sandbox_id}/files",
                 "GET /v1/sandboxes/{sandbox_id}/files"]
CONFIG = """
[[operations]]
include-name = {on_the_target}
parameters = {{ "path.sandbox_id" = "{target}" }}

# DELETE meets only an id that does not exist: otherwise it deletes the target (an id it
# learnt from a response) and every later case on it is a 404.
[[operations]]
include-name = "DELETE /v1/sandboxes/{{sandbox_id}}"
parameters = {{ "path.sandbox_id" = "no-such-sandbox" }}

# The coverage phase's valid cases would start ~140 sandboxes at the smallest limits
# (cpus 0.01 takes seconds to start): it sends the invalid ones; fuzzing sends both.
[[operations]]
include-name = ["POST /v1/run", "POST /v1/sandboxes"]
phases.coverage.generation.mode = "negative"
"""


@pytest.mark.timeout(SCHEMATHESIS_TIMEOUT_S + 60)
def test_no_request_gets_a_server_error(spawn_manager, tmp_path):
    # Runs of at most 2 s; sessions that go within 5 s unless a TTL is asked for, and few.
    # Maxima below any host's: a request within them never meets Docker's own refusal.
    # Browsers off (403): a fuzzed navigate must not send a browser to the internet; their
    # routes are still fuzzed (bodies, ids); test_browser_manager drives real ones.
    manager = spawn_manager(max_sessions=8, session_ttl_s=5, max_session_ttl_s=300,
                            defaults__timeout_s=1, maxima__timeout_s=2, maxima__cpus=1,
                            allow_browsers=0)
    api = manager.client()
    target = api.post("/v1/sandboxes", json={"ttl_s": 300, "owner": "schemathesis-target"})
    assert target.status_code == 201, target.text
    (tmp_path / "schemathesis.toml").write_text(CONFIG.format(
        on_the_target=json.dumps(ON_THE_TARGET), target=target.json()["id"]))

    fuzzed = fuzz(f"{manager.url}/openapi.json", manager.token, ["not_a_server_error"],
                  MAX_EXAMPLES, tmp_path, SCHEMATHESIS_TIMEOUT_S)
    fuzzed.assert_clean(min_operations=10, min_cases=500)
    assert api.get(f"/v1/sandboxes/{target.json()['id']}").status_code == 200, \
        "the target outlived the run, so the cases on it reached a sandbox"

    # What it made goes now; the fixture then checks that nothing is left behind.
    for sandbox in api.get("/v1/sandboxes").json()["sandboxes"]:
        api.delete(f"/v1/sandboxes/{sandbox['id']}")
    wait_until(lambda: not manager.containers(), 30, "every sandbox schemathesis made to go")
