"""The data-analysis agent task against its parts, all measured in this run: a scripted
model loads a CSV the user attached with pandas, describes it, charts it (three `run_code`
calls), then answers.

  agent:     submit over Socket.IO -> `result` event through the whole pipeline: the file
             copied into a fresh sandbox, the three execs in its live interpreter, the chart
             stored as an artifact (and its event) and sent back to the model as an image
  baseline:  the same work alone: a session sandbox, the file uploaded, the same three execs
             and its removal, straight against the sandbox manager; then the four model
             calls read directly with the `openai` SDK, the last one carrying the chart
Target: agent p50 <= 1.2 x baseline p50.

Run: make bench   (or: scripts/with-services.sh .venv/bin/python bench/analysis.py)
"""

import argparse
import statistics
import time

import httpx
import openai
from stack import ROOT, bench_stack

from tests.fakes.llm_server import ANALYSIS_STEPS
from tests.integration.stack import TaskListener

MODEL = "script:analysis"
SALES = "month,amount\n" + "".join(f"{m},{100 + 10 * i}\n" for i, m in enumerate(
    ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]))


def sandbox_alone(manager) -> tuple[float, str]:
    """Seconds, and the chart (base64 PNG) the last exec gave back."""
    with httpx.Client(base_url=manager.url, timeout=60,
                      headers={"Authorization": f"Bearer {manager.token}"}) as api:
        started = time.perf_counter()
        sandbox = api.post("/v1/sandboxes", json={"ttl_s": 300}).json()["id"]
        api.put(f"/v1/sandboxes/{sandbox}/files", params={"path": "sales.csv"},
                content=SALES.encode())
        for code in ANALYSIS_STEPS:
            result = api.post(f"/v1/sandboxes/{sandbox}/exec", params={"stream": "true"},
                              json={"language": "python", "code": code, "timeout_s": 60})
            assert result.status_code == 200 and '"exit_code": 0' in result.text, result.text
        chart = result.text.split('"data_base64": "')[1].split('"')[0]
        api.delete(f"/v1/sandboxes/{sandbox}")
        return time.perf_counter() - started, chart


def model_alone(client: openai.OpenAI, chart: str) -> float:
    """The four calls of the conversation, each with the history the agent would send."""
    messages, total = [{"role": "user", "content": "How did sales go? Chart it."}], 0.0
    for step in range(len(ANALYSIS_STEPS) + 1):
        started = time.perf_counter()
        for _ in client.chat.completions.create(model=MODEL, messages=messages, stream=True):
            pass
        total += time.perf_counter() - started
        if step < len(ANALYSIS_STEPS):
            call_id = f"call_{step}_0"
            messages += [{"role": "assistant", "content": None, "tool_calls": [
                {"id": call_id, "type": "function",
                 "function": {"name": "run_code", "arguments": "{}"}}]},
                {"role": "tool", "tool_call_id": call_id, "content": "{}"}]
        if step == len(ANALYSIS_STEPS) - 1:  # the chart follows its result, as the agent sends it
            messages.append({"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{chart}"}}]})
    return total


def agent_run(listener: TaskListener, path: str) -> float:
    started = time.perf_counter()
    ack = listener.call("task:submit", {"kind": "agent", "input": {
        "goal": "How did sales go? Chart it.", "model": MODEL, "tools": ["run_code"],
        "attachments": [path]}})
    assert listener.wait_final(ack["task_id"], 120) == "succeeded"
    elapsed = time.perf_counter() - started
    events = listener.of(ack["task_id"])
    result = [e for e in events if e["type"] == "result"][0]["data"]
    assert result["text"] == "Sales grew every month." and len(result["artifacts"]) == 1
    return elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=10)
    reps = parser.parse_args().reps
    folder = ROOT / "tmp" / "bench"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sales.csv").write_text(SALES)
    baseline, models, sandboxes, agent = [], [], [], []
    with bench_stack("analysis") as stack:
        client = openai.OpenAI(api_key="sk-bench", base_url=stack.llm_base_url, max_retries=0)
        listener = TaskListener(stack.web.url).connect()
        for i in range(reps + 1):  # alternated, so that drift affects both alike
            sandbox_s, chart = sandbox_alone(stack.manager)
            model_s = model_alone(client, chart)
            agent_s = agent_run(listener, str(folder / "sales.csv"))
            if i:  # the first round warms every process up
                models.append(model_s * 1000)
                sandboxes.append(sandbox_s * 1000)
                baseline.append((model_s + sandbox_s) * 1000)
                agent.append(agent_s * 1000)
        listener.close()
    med = statistics.median
    print(f"\nData analysis: a CSV attached, 3 x run_code (load, describe, chart) + an answer, "
          f"{reps} repetitions (ms, p50)\n")
    print("| | p50 | target |\n|---|---:|---|")
    print(f"| session sandbox + the file + three execs + removal alone | {med(sandboxes):.1f} | |")
    print(f"| four model calls alone (openai SDK) | {med(models):.1f} | |")
    print(f"| baseline: their sum | {med(baseline):.1f} | |")
    print(f"| the agent task, submit -> result event | {med(agent):.1f} | |")
    print(f"| overhead | {(med(agent) / med(baseline) - 1) * 100:.1f} % | <= 20 % |")


if __name__ == "__main__":
    main()
