"""The agent's own cost: a scripted model asks for `run_code` five times, then answers.

  agent:     submit over Socket.IO -> `result` event, through the whole pipeline
  baseline:  the same work measured alone, in the same run: the six model calls read
             directly with the `openai` SDK from the same fake server (its own process),
             plus creating a session sandbox, the five execs and its removal, straight
             against the sandbox manager's API
Target: agent p50 <= 1.25 x baseline p50.

Run: make bench   (or: scripts/with-services.sh .venv/bin/python bench/agent.py)
"""

import argparse
import statistics
import time

import httpx
import openai
from stack import bench_stack

from tests.fakes.llm_server import SCRIPTS
from tests.integration.stack import TaskListener

MODEL = "script:code5"
RUNS = [turn["tools"][0][1] for turn in SCRIPTS["code5"] if "tools" in turn]


def model_calls_alone(client: openai.OpenAI) -> float:
    """The six calls of one conversation, each with the history the agent would send."""
    messages, total = [{"role": "user", "content": "run it"}], 0.0
    for step in range(len(RUNS) + 1):
        started = time.perf_counter()
        calls = []
        for chunk in client.chat.completions.create(model=MODEL, messages=messages,
                                                    stream=True):
            for choice in chunk.choices:
                calls += choice.delta.tool_calls or []
        total += time.perf_counter() - started
        if step < len(RUNS):
            call_id = f"call_{step}_0"
            messages += [{"role": "assistant", "content": None, "tool_calls": [
                {"id": call_id, "type": "function",
                 "function": {"name": "run_code", "arguments": "{}"}}]},
                {"role": "tool", "tool_call_id": call_id, "content": "{}"}]
    return total


def sandbox_runs_alone(manager) -> float:
    with httpx.Client(base_url=manager.url, timeout=60,
                      headers={"Authorization": f"Bearer {manager.token}"}) as api:
        started = time.perf_counter()
        sandbox = api.post("/v1/sandboxes", json={"ttl_s": 300}).json()["id"]
        for run in RUNS:
            result = api.post(f"/v1/sandboxes/{sandbox}/exec", params={"stream": "true"},
                              json=dict(run, timeout_s=30))
            assert result.status_code == 200 and '"exit_code": 0' in result.text, result.text
        api.delete(f"/v1/sandboxes/{sandbox}")
        return time.perf_counter() - started


def agent_run(listener: TaskListener) -> float:
    started = time.perf_counter()
    ack = listener.call("task:submit", {"kind": "agent", "input": {
        "goal": "run it", "model": MODEL, "tools": ["run_code"]}})
    assert listener.wait_final(ack["task_id"], 60) == "succeeded"
    elapsed = time.perf_counter() - started
    result = [e for e in listener.of(ack["task_id"]) if e["type"] == "result"][0]["data"]
    assert len(result["steps"]) == 6 and result["text"] == "Five runs done."
    assert [c["output"] for s in result["steps"] for c in s["tool_calls"]] == [
        f'{{"exit_code": 0, "end_reason": "exited", "stdout": "{i * 7}\\n", "stderr": ""}}'
        for i in range(5)]
    return elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=10)
    reps = parser.parse_args().reps
    baseline, models, sandboxes, agent = [], [], [], []
    with bench_stack("agent") as stack:
        client = openai.OpenAI(api_key="sk-bench", base_url=stack.llm_base_url, max_retries=0)
        listener = TaskListener(stack.web.url).connect()
        for i in range(reps + 1):  # alternated, so that drift affects both alike
            model_s, sandbox_s = model_calls_alone(client), sandbox_runs_alone(stack.manager)
            agent_s = agent_run(listener)
            if i:  # the first round warms every process up
                models.append(model_s * 1000)
                sandboxes.append(sandbox_s * 1000)
                baseline.append((model_s + sandbox_s) * 1000)
                agent.append(agent_s * 1000)
        listener.close()
    med = statistics.median
    print(f"\nAgent: 5 x run_code + a final answer, {reps} repetitions (ms, p50)\n")
    print("| | p50 | target |\n|---|---:|---|")
    print(f"| six model calls alone (openai SDK) | {med(models):.1f} | |")
    print(f"| session sandbox + five execs + removal alone | {med(sandboxes):.1f} | |")
    print(f"| baseline: their sum | {med(baseline):.1f} | |")
    print(f"| the agent task, submit -> result event | {med(agent):.1f} | |")
    print(f"| overhead | {(med(agent) / med(baseline) - 1) * 100:.1f} % | <= 25 % |")


if __name__ == "__main__":
    main()
