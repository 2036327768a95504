"""The agent on the real pipeline: a scripted fake model (real SDKs, the providers' wire
protocols), real Celery workers and web server, the real sandbox manager on dockerd."""

import json
import time

import pytest

from ..fakes.llm_server import FakeLLM
from .stack import (RedisServer, TaskListener, agent_env, rest_client, start_web,
                    start_worker)

SCRIPTS = {
    # files written in one step are there in the next; then an answer
    "files": [{"tools": [("run_code", {"language": "python",
                                       "code": "open('n.txt', 'w').write('42')\nprint('wrote')"})]},
              {"tools": [("run_code", {"language": "bash", "code": "cat n.txt"})]},
              {"text": "The number is 42."}],
    # two calls in one turn: both run, results go back in order
    "parallel": [{"tools": [("run_code", {"language": "bash", "code": "echo first"}),
                            ("run_code", {"language": "bash", "code": "echo second"})]},
                 {"text": "Both ran."}],
    # tool errors come back to the model, which carries on
    "errors": [{"tools": [("no_such_tool", {"x": 1}),
                          ("run_code", {"language": "cobol", "code": "DISPLAY 1"}),
                          ("run_code", {"language": "python", "code": "raise SystemExit(3)"})]},
               {"text": "Recovered."}],
    "forever": [{"tools": [("run_code", {"language": "bash", "code": "echo again"})]}] * 50,
    "sleepy": [{"tools": [("run_code", {"language": "bash",
                                        "code": "echo started; sleep 60", "timeout_s": 120})]},
               {"text": "never reached"}],
    "chatty": [{"text": "Noted: your number is seven."}, {"text": "It was seven."}],
    "crash": [{"tools": [("run_code", {"language": "bash", "code": "echo before"})]},
              {"error": 401}],
}


@pytest.fixture(scope="module")
def fake():
    server = FakeLLM(SCRIPTS).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def agent_web(manager, fake):
    redis = RedisServer().start()
    env = agent_env(redis.url, manager, fake)
    worker = start_worker(env, "w-agent")
    web = start_web(env, "web-agent")
    yield web
    web.stop()
    worker.stop()
    redis.kill()


@pytest.fixture
def client(agent_web):
    listener = TaskListener(agent_web.url).connect()
    yield listener
    listener.close()


def run(listener, timeout=60, **task_input) -> tuple[str, str, list]:
    task_input.setdefault("tools", ["run_code"])
    ack = listener.call("task:submit", {"kind": "agent", "input": task_input})
    assert "error" not in ack, ack
    status = listener.wait_final(ack["task_id"], timeout)
    return ack["task_id"], status, listener.of(ack["task_id"])


def of_type(events, type_) -> list:
    return [e["data"] for e in events if e["type"] == type_]


def result_of(events) -> dict:
    return of_type(events, "result")[0]


def requests_for(fake, model) -> list:
    return [r for r in fake.requests if r["model"] == model]


def no_sandbox_left(manager, task_id):
    manager.wait_for(lambda: not manager.containers(**{"aios.owner": f"task:{task_id}"}), 5,
                     f"the sandboxes of {task_id} to go")


@pytest.mark.parametrize("provider", ["openai", "anthropic", "groq", "mistral"])
def test_tools_in_sequence_share_one_sandbox_and_the_answer_ends_it(client, fake, manager,
                                                                    provider):
    task_id, status, events = run(client, goal="what number?", provider=provider,
                                  model="script:files")
    assert status == "succeeded", events
    result = result_of(events)
    assert result["text"] == "The number is 42." == "".join(
        t["text"] for t in of_type(events, "token"))
    assert [s["step"] for s in result["steps"]] == [1, 2, 3]
    assert [c["output"] for s in result["steps"] for c in s["tool_calls"]] == [
        '{"exit_code": 0, "end_reason": "exited", "stdout": "wrote\\n", "stderr": ""}',
        '{"exit_code": 0, "end_reason": "exited", "stdout": "42", "stderr": ""}']
    assert result["usage"]["input_tokens"] == 3 * 7 and result["usage"]["output_tokens"] > 0
    assert (result["provider"], result["finish_reason"]) == (provider, "stop")
    calls, results = of_type(events, "tool_call"), of_type(events, "tool_result")
    assert [c["name"] for c in calls] == ["run_code", "run_code"]
    assert [r["id"] for r in results] == [c["id"] for c in calls]
    assert "".join(e["text"] for e in of_type(events, "stdout")) == "wrote\n42"
    # what the model saw last: both calls and both results, in its own wire format
    last = requests_for(fake, "script:files")[-1]["messages"]
    if provider == "anthropic":
        outputs = [b["content"] for m in last if m["role"] == "user" and
                   isinstance(m["content"], list) for b in m["content"]
                   if b["type"] == "tool_result"]
        asked = [b["input"] for m in last if m["role"] == "assistant"
                 for b in m["content"] if b["type"] == "tool_use"]
    else:
        outputs = [m["content"] for m in last if m["role"] == "tool"]
        asked = [json.loads(c["function"]["arguments"]) for m in last
                 if m["role"] == "assistant" for c in m["tool_calls"]]
    assert [a["language"] for a in asked] == ["python", "bash"]
    assert outputs == [c["output"] for s in result["steps"] for c in s["tool_calls"]]
    no_sandbox_left(manager, task_id)


def test_parallel_calls_all_run_and_their_results_go_back_in_order(client, fake, manager):
    task_id, status, events = run(client, goal="both", model="script:parallel")
    assert status == "succeeded"
    results = of_type(events, "tool_result")
    assert [r["id"] for r in results] == ["call_0_0", "call_0_1"]
    assert ["first" in results[0]["output"], "second" in results[1]["output"]] == [True, True]
    sent = requests_for(fake, "script:parallel")[-1]["messages"]
    tool_messages = [m for m in sent if m["role"] == "tool"]
    assert [m["tool_call_id"] for m in tool_messages] == ["call_0_0", "call_0_1"]
    assert "first" in tool_messages[0]["content"] and "second" in tool_messages[1]["content"]
    no_sandbox_left(manager, task_id)


def test_tool_errors_go_back_to_the_model_and_the_loop_goes_on(client, fake):
    _, status, events = run(client, goal="try", model="script:errors")
    assert status == "succeeded" and result_of(events)["text"] == "Recovered."
    results = of_type(events, "tool_result")
    assert [r["is_error"] for r in results] == [True, True, False]
    assert "there is no tool 'no_such_tool'" in results[0]["output"]
    assert "language 'python' or 'bash'" in results[1]["output"]
    assert '"exit_code": 3' in results[2]["output"]  # a failing program is a result, not an error
    sent = requests_for(fake, "script:errors")[-1]["messages"]
    assert [m["tool_call_id"] for m in sent if m["role"] == "tool"] == [
        "call_0_0", "call_0_1", "call_0_2"]


def test_max_steps_stops_the_loop(client, manager):
    task_id, status, events = run(client, goal="loop", model="script:forever", max_steps=3)
    assert status == "succeeded"
    result = result_of(events)
    assert result["stopped"] == "max_steps" and len(result["steps"]) == 3
    assert len(of_type(events, "tool_call")) == 3
    assert "maximum number of steps" in "".join(e["text"] for e in of_type(events, "log"))
    no_sandbox_left(manager, task_id)


def test_cancel_mid_run_stops_the_loop_and_leaves_no_container(client, manager):
    ack = client.call("task:submit", {"kind": "agent", "input": {
        "goal": "wait", "model": "script:sleepy", "tools": ["run_code"]}})
    task_id = ack["task_id"]
    client.wait_for(lambda got: any(e["type"] == "stdout" and "started" in e["data"]["text"]
                                    for e in got.of(task_id)), 30, "the sleep to start")
    sandboxes = manager.containers(**{"aios.owner": f"task:{task_id}"})
    # a worker that dies here leaves it to the reaper: it expires with the run's maximum
    assert float(sandboxes[0].labels["aios.expires_at"]) <= time.time() + 600 + 60 + 5
    started = time.monotonic()
    client.call("task:cancel", {"task_id": task_id})
    assert client.wait_final(task_id, timeout=10) == "cancelled"
    assert time.monotonic() - started < 2.0
    no_sandbox_left(manager, task_id)


def test_a_provider_failure_mid_run_fails_the_task_and_removes_its_sandbox(client, manager):
    task_id, status, events = run(client, goal="go", model="script:crash")
    assert status == "failed"
    assert [e["data"]["name"] for e in events if e["type"] == "tool_result"] == ["run_code"]
    assert of_type(events, "error")[0]["code"] == "authentication"
    no_sandbox_left(manager, task_id)


def test_a_follow_up_in_the_same_session_sees_the_earlier_turn(client, fake):
    session = "session-agent-1"
    _, status, _ = run(client, goal="Remember the number seven.", model="script:chatty",
                       session_id=session, tools=[])
    assert status == "succeeded"
    _, status, events = run(client, goal="Which number was it?", model="script:chatty",
                            session_id=session, tools=[])
    assert status == "succeeded" and result_of(events)["session_id"] == session
    assert result_of(events)["text"] == "It was seven."
    sent = requests_for(fake, "script:chatty")[-1]["messages"]
    assert [(m["role"], m["content"]) for m in sent] == [
        ("user", "Remember the number seven."),
        ("assistant", "Noted: your number is seven."),
        ("user", "Which number was it?")]


def test_bad_agent_input_is_refused_with_the_reason(agent_web):
    with rest_client(agent_web) as rest:
        for task_input, says in [({}, "either `goal`"),
                                 ({"goal": "x", "tools": ["format_disk"]}, "unknown tools"),
                                 ({"goal": "x", "max_steps": 1000}, "max_steps")]:
            response = rest.post("/api/tasks", json={"kind": "agent", "input": task_input})
            assert response.status_code == 422 and says in response.json()["error"]["message"]


@pytest.mark.parametrize("limit, script, extra", [
    ("max_seconds", "script:sleepy", {"AIOS_AGENT_MAX_SECONDS": "3"}),
    ("max_tokens", "script:forever", {"AIOS_AGENT_MAX_TOKENS": "12"}),
])
def test_wall_time_and_token_limits_stop_the_run(own_stack, manager, fake, limit, script, extra):
    own_stack.environment.update(agent_env(own_stack.redis.url, manager, fake, **extra))
    own_stack.worker("w-agent-limits")
    web = own_stack.web("web-agent-limits")
    listener = TaskListener(web.url).connect()
    started = time.monotonic()
    task_id, status, events = run(listener, goal="go", model=script)
    listener.close()
    assert status == "succeeded", events
    assert result_of(events)["stopped"] == limit
    if limit == "max_seconds":
        assert time.monotonic() - started < 8
    else:
        # the fake counts 7 input tokens a call (and none out for a tool call): 14 >= 12
        assert len(result_of(events)["steps"]) == 2
    no_sandbox_left(manager, task_id)


def test_a_task_cannot_ask_for_more_steps_than_the_operator_allows(own_stack, manager, fake):
    own_stack.environment.update(agent_env(own_stack.redis.url, manager, fake,
                                           AIOS_AGENT_MAX_STEPS="2"))
    own_stack.worker("w-agent-steps")
    web = own_stack.web("web-agent-steps")
    listener = TaskListener(web.url).connect()
    task_id, status, events = run(listener, goal="loop", model="script:forever", max_steps=5)
    listener.close()
    assert status == "succeeded"
    assert result_of(events)["stopped"] == "max_steps" and len(result_of(events)["steps"]) == 2
    no_sandbox_left(manager, task_id)
