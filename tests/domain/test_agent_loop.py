"""The agent loop (run_agent) in-process: a scripted model (scripted.py) that asks for tools
and then answers, tiny tools defined here, a real RunContext over the real event log. What
tests/integration/test_agent.py checks through Celery, the sandbox and a fake LLM server,
here without them: calls, results back to the model, events, limits, errors, cancel."""

import json
import threading
import time

import pytest

from aios.agent.loop import AgentLimits, Stopped, run_agent
from aios.providers.base import AuthenticationFailed, ProviderUnavailable
from aios.tools.base import ToolContext, ToolError

from .conftest import closed_log
from .scripted import ScriptedProvider, answer, tool_turn

GOAL = [{"role": "user", "content": "What is 2 + 3?"}]
WAIT_S = 5


def limits(max_steps=10, max_seconds=30.0, max_tokens=100_000) -> AgentLimits:
    return AgentLimits(max_steps=max_steps, max_seconds=max_seconds, max_tokens=max_tokens)


class Add:
    """A tool: adds two numbers; its calls are kept."""
    name = "add"
    description = "Adds a and b."
    parameters = {"type": "object", "properties": {"a": {"type": "number"},
                                                   "b": {"type": "number"}},
                  "required": ["a", "b"]}

    def __init__(self):
        self.calls: list[dict] = []

    def run(self, arguments: dict, ctx: ToolContext):
        self.calls.append(arguments)
        if not all(isinstance(arguments.get(k), (int, float)) for k in ("a", "b")):
            raise ToolError("a and b must be numbers")
        return {"sum": arguments["a"] + arguments["b"]}


class Broken:
    name = "broken"
    description = "Always fails unexpectedly."
    parameters = {"type": "object", "properties": {}}

    def run(self, arguments: dict, ctx: ToolContext):
        raise ValueError("a bug in the tool")


class WaitsForCancel:
    """A tool that blocks until the run is cancelled, and leaves a cleanup for the loop."""
    name = "wait"
    description = "Waits."
    parameters = {"type": "object", "properties": {}}

    def __init__(self):
        self.started = threading.Event()
        self.cleaned = False

    def run(self, arguments: dict, ctx: ToolContext):
        ctx.cleanups.append(self._clean)
        self.started.set()
        if ctx.wait(WAIT_S):
            raise ToolError("cancelled")
        return "waited in vain"

    def _clean(self):
        self.cleaned = True


def of_type(log: list[dict], type_: str) -> list[dict]:
    return [e["data"] for e in log if e["type"] == type_]


def tool_messages(request) -> list[dict]:
    return [m for m in request.messages if m["role"] == "tool"]


def test_a_tool_call_runs_the_tool_and_its_result_goes_back_to_the_model(running_ctx):
    ctx = running_ctx("agent")
    model = ScriptedProvider("alpha", [
        tool_turn(("call-1", "add", {"a": 2, "b": 3}), text="Let me add."),
        answer("It is 5.")])
    add = Add()

    result = run_agent(ctx, GOAL, [(model, "m-1")], [add], limits(), max_retries=0)

    assert add.calls == [{"a": 2, "b": 3}]
    assert model.calls == 2
    assert model.requests[0].tools == [{"name": "add", "description": "Adds a and b.",
                                        "parameters": Add.parameters}]
    assert model.requests[0].messages == GOAL
    call = {"id": "call-1", "name": "add", "arguments": {"a": 2, "b": 3}}
    sent_back = [*GOAL,
                 {"role": "assistant", "content": "Let me add.", "tool_calls": [call]},
                 {"role": "tool", "tool_call_id": "call-1", "name": "add",
                  "content": json.dumps({"sum": 5}), "is_error": False}]
    assert model.requests[1].messages == sent_back
    assert result["text"] == "It is 5." and result["finish_reason"] == "stop"
    assert "stopped" not in result
    assert (result["provider"], result["model"]) == ("alpha", "m-1")
    assert result["usage"] == {"input_tokens": 6, "output_tokens": 10}
    assert result["steps"] == [
        {"step": 1, "text": "Let me add.",
         "tool_calls": [dict(call, output='{"sum": 5}', is_error=False)]},
        {"step": 2, "text": "It is 5.", "tool_calls": []}]
    assert result["messages"] == [*sent_back, {"role": "assistant", "content": "It is 5."}]

    log = closed_log(ctx)
    assert of_type(log, "tool_call") == [call]
    assert of_type(log, "tool_result") == [{"id": "call-1", "name": "add",
                                            "output": '{"sum": 5}', "is_error": False}]
    order = [(e["type"], e["data"].get("text")) for e in log
             if e["type"] in ("token", "tool_call", "tool_result")]
    assert order == [("token", "Let me add."), ("tool_call", None), ("tool_result", None),
                     ("token", "It is 5.")]


def test_calls_of_one_turn_all_run_and_their_results_go_back_in_order(running_ctx):
    model = ScriptedProvider("alpha", [
        tool_turn(("c1", "add", {"a": 1, "b": 1}), ("c2", "add", {"a": 2, "b": 2})),
        answer("2 and 4.")])
    add = Add()

    run_agent(running_ctx("agent"), GOAL, [(model, "m-1")], [add], limits(), 0)

    assert add.calls == [{"a": 1, "b": 1}, {"a": 2, "b": 2}]
    assert [(m["tool_call_id"], m["content"]) for m in tool_messages(model.requests[1])] == \
        [("c1", '{"sum": 2}'), ("c2", '{"sum": 4}')]


def test_tool_errors_go_back_to_the_model_as_error_results_and_the_loop_goes_on(running_ctx):
    ctx = running_ctx("agent")
    model = ScriptedProvider("alpha", [
        tool_turn(("c1", "no_such_tool", {"x": 1}), ("c2", "add", {"a": "two", "b": 3}),
                  ("c3", "broken", {})),
        answer("Recovered.")])

    result = run_agent(ctx, GOAL, [(model, "m-1")], [Add(), Broken()], limits(), 0)

    assert result["text"] == "Recovered." and "stopped" not in result
    sent = tool_messages(model.requests[1])
    assert [(m["tool_call_id"], m["is_error"]) for m in sent] == \
        [("c1", True), ("c2", True), ("c3", True)]
    assert sent[0]["content"] == "there is no tool 'no_such_tool'; the tools are: add, broken"
    assert sent[1]["content"] == "a and b must be numbers"
    assert sent[2]["content"] == "the tool failed unexpectedly: ValueError: a bug in the tool"
    log = closed_log(ctx)
    assert [c["name"] for c in of_type(log, "tool_call")] == ["no_such_tool", "add", "broken"]
    assert [r["is_error"] for r in of_type(log, "tool_result")] == [True, True, True]


def test_max_steps_stops_the_loop_with_stopped_max_steps(running_ctx):
    ctx = running_ctx("agent")
    model = ScriptedProvider("alpha", [tool_turn((f"c{n}", "add", {"a": n, "b": 1}))
                                       for n in range(5)])
    add = Add()

    result = run_agent(ctx, GOAL, [(model, "m-1")], [add], limits(max_steps=3), 0)

    assert model.calls == 3 and len(add.calls) == 3
    assert result["stopped"] == result["finish_reason"] == "max_steps"
    assert [s["step"] for s in result["steps"]] == [1, 2, 3]
    assert result["messages"][-1]["role"] == "tool"  # every call has its result
    log = closed_log(ctx)
    assert "agent stopped: it reached its maximum number of steps" in \
        "".join(e["text"] for e in of_type(log, "log"))


def test_the_token_budget_stops_the_loop(running_ctx):
    model = ScriptedProvider("alpha", [tool_turn(("c1", "add", {"a": 1, "b": 2}),
                                                 usage=(40, 20)), answer("never")])

    result = run_agent(running_ctx("agent"), GOAL, [(model, "m-1")], [Add()],
                       limits(max_tokens=50), 0)

    assert result["stopped"] == "max_tokens" and model.calls == 1


def test_the_run_keeps_the_pair_that_answered(running_ctx):
    alpha = ScriptedProvider("alpha", [[ProviderUnavailable("down")]])
    beta = ScriptedProvider("beta", [tool_turn(("c1", "add", {"a": 1, "b": 2})),
                                     answer("3.")])

    result = run_agent(running_ctx("agent"), GOAL, [(alpha, "a-1"), (beta, "b-1")],
                       [Add()], limits(), 0)

    assert (result["provider"], result["model"], result["text"]) == ("beta", "b-1", "3.")
    assert (alpha.calls, beta.calls) == (1, 2)


def test_a_cancel_during_a_tool_stops_the_loop_and_runs_the_cleanups(running_ctx):
    ctx = running_ctx("agent")
    model = ScriptedProvider("alpha", [tool_turn(("c1", "wait", {})), answer("never")])
    tool = WaitsForCancel()
    threading.Thread(target=lambda: tool.started.wait(WAIT_S) and ctx.abort(),
                     daemon=True).start()
    started = time.monotonic()

    with pytest.raises(Stopped):
        run_agent(ctx, GOAL, [(model, "m-1")], [tool], limits(), 0)

    assert time.monotonic() - started < 1.0
    assert model.calls == 1 and tool.cleaned
    assert of_type(closed_log(ctx), "tool_result") == []  # cut short: no result is sent


def test_a_provider_failure_mid_run_ends_the_run_with_it_after_the_cleanups(running_ctx):
    model = ScriptedProvider("alpha", [tool_turn(("c1", "add", {"a": 1, "b": 2})),
                                       [AuthenticationFailed("bad key")]])
    cleaned = []

    class Cleans(Add):
        def run(self, arguments, ctx):
            ctx.cleanups.append(lambda: cleaned.append(True))
            return super().run(arguments, ctx)

    with pytest.raises(AuthenticationFailed):
        run_agent(running_ctx("agent"), GOAL, [(model, "m-1")], [Cleans()], limits(), 0)
    assert cleaned == [True]
