"""Streaming a 2,000-token answer: read directly with the `openai` SDK vs. through the whole
pipeline (REST/Socket.IO submit -> Celery worker -> provider -> token events -> client),
against the same fake server (its own process, streaming as fast as it can), in one run.

Run: make bench   (or: scripts/with-services.sh .venv/bin/python bench/chat_stream.py)
"""

import argparse
import statistics
import time

import openai
from stack import bench_stack

from tests.integration.stack import TaskListener

MODEL = "long-2000"
FULL_TEXT = "".join(f"t{i} " for i in range(2000))
MESSAGES = [{"role": "user", "content": "count"}]


def direct(base_url: str, reps: int):
    client = openai.OpenAI(api_key="sk-bench", base_url=base_url, max_retries=0)
    first, last = [], []
    for i in range(reps + 2):
        started = time.perf_counter()
        t_first, parts = None, []
        for chunk in client.chat.completions.create(model=MODEL, messages=MESSAGES,
                                                    stream=True):
            for choice in chunk.choices:
                if choice.delta.content:
                    t_first = t_first or time.perf_counter()
                    parts.append(choice.delta.content)
        ended = time.perf_counter()
        assert "".join(parts) == FULL_TEXT
        if i >= 2:
            first.append((t_first - started) * 1000)
            last.append((ended - started) * 1000)
    return first, last


def pipeline(web_url: str, reps: int):
    listener = TaskListener(web_url).connect()
    first, last = [], []
    for i in range(reps + 2):
        started = time.perf_counter()
        ack = listener.call("task:submit", {"kind": "chat", "input": {
            "messages": MESSAGES, "model": MODEL}})
        task_id = ack["task_id"]
        listener.wait_for(lambda got, task_id=task_id: any(
            e["type"] == "token" for e in got.of(task_id)), 30)
        t_first = time.perf_counter()
        listener.wait_for(lambda got, task_id=task_id: any(
            e["type"] == "result" for e in got.of(task_id)), 60)
        ended = time.perf_counter()
        tokens = [e["data"]["text"] for e in listener.of(task_id) if e["type"] == "token"]
        assert "".join(tokens) == FULL_TEXT, "token events must add up to the full text"
        if i >= 2:
            first.append((t_first - started) * 1000)
            last.append((ended - started) * 1000)
    listener.close()
    return first, last, len(tokens)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=20)
    reps = parser.parse_args().reps
    with bench_stack("chat") as stack:
        d_first, d_last = direct(stack.llm_base_url, reps)
        p_first, p_last, events = pipeline(stack.web.url, reps)
    med = statistics.median
    print(f"\n2,000 streamed tokens, {reps} repetitions (ms, p50)\n")
    print("| | direct (openai SDK) | through the pipeline | ratio | target |")
    print("|---|---:|---:|---:|---|")
    print(f"| time to last token / result event | {med(d_last):.1f} | {med(p_last):.1f} | "
          f"{med(p_last) / med(d_last):.2f} | <= 1.2 |")
    print(f"| time to first token | {med(d_first):.1f} | {med(p_first):.1f} | "
          f"{med(p_first) / med(d_first):.2f} | |")
    print(f"\ntoken events per answer at the client: {events} (coalesced; their text adds up "
          "to the full answer)")


if __name__ == "__main__":
    main()
