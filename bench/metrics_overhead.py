"""What the Prometheus metrics cost the task pipeline: bench/pipeline.py's (b) and (c) on two
stacks at once, metrics on (AIOS_METRICS=true, the worker's exporter running, both /metrics
scraped every second (--scrape-every), 15 times docker/prometheus.yml's rate) and off
(AIOS_METRICS=false), in alternated rounds (each round's order swapped), so that a slow
moment of the shared machine weighs on both alike. Target: each within 5 % of off.

  (b) REST submit -> `result` event at a Socket.IO client, `echo` kind (ms, median)
  (c) throughput: echo tasks submitted through the API from 8 threads (tasks/s, median)

Each stack has its own redis-server and Celery worker (prefork -c2) and web; one sandbox
manager serves both (echo never uses it).

Run: make bench   (or: scripts/with-services.sh .venv/bin/python bench/metrics_overhead.py)
"""

import argparse
import os
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

import docker
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench"), str(ROOT / "python-backend")]

from pipeline import EchoSubmitter, p50, rest_round_trip, throughput_api  # noqa: E402
from tests.integration.stack import (API_TOKEN, RedisServer, TaskListener,  # noqa: E402
                                     backend_env, start_web, start_worker)
from tests.integration.support import free_port, start_manager, wait_until  # noqa: E402



def start_stack(manager, metrics: bool, started: list) -> SimpleNamespace:
    redis = RedisServer(fsync="everysec").start()
    started.append(redis.kill)
    port = free_port()
    env = backend_env(redis.url, manager, metrics=str(metrics).lower(),
                      worker_metrics_port=port)
    name = "on" if metrics else "off"
    worker = start_worker(env, f"w-metrics-{name}")
    started.append(worker.stop)
    web = start_web(env, f"web-metrics-{name}")
    started.append(web.stop)
    scrape = [web.url + "/metrics", f"http://127.0.0.1:{port}/metrics"] if metrics else []
    for url in scrape:  # the exporter is up: on stays on, and off is truly off
        wait_until(lambda u=url: _scraped(u), 15, url)
    if not metrics:
        assert httpx.get(web.url + "/metrics").status_code == 404, "metrics are not off"
    listener = TaskListener(web.url).connect()
    started.append(listener.close)
    return SimpleNamespace(name=name, web=web, redis_url=redis.url, scrape=scrape,
                           listener=listener, b=[], c=[])


def _scraped(url: str) -> bool:
    try:
        return httpx.get(url, headers={"Authorization": f"Bearer {API_TOKEN}"},
                         timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def scrape_forever(urls: list[str], every_s: float, stop: threading.Event,
                   failures: list) -> None:
    """Prometheus's part, meanwhile: every /metrics of the stack that has them."""
    with httpx.Client(headers={"Authorization": f"Bearer {API_TOKEN}"}, timeout=5) as client:
        while every_s and not stop.wait(every_s):
            for url in urls:
                try:
                    if client.get(url).status_code != 200:
                        failures.append(url)
                except httpx.HTTPError as exc:
                    failures.append(f"{url}: {exc}")


def round_trips(stack, reps: int, warmup: int = 3) -> list[float]:
    """(b) back to back on a fresh keep-alive connection (gunicorn closes one idle for 2 s,
    as each is while the other stack is measured); the first few uncounted."""
    rest = EchoSubmitter(stack.web.url)
    try:
        samples = [rest_round_trip(rest, stack.listener) for _ in range(warmup + reps)]
    finally:
        rest.close()
    return samples[warmup:]


def measure(stacks: list, rounds: int, reps: int, tasks: int) -> None:
    for stack in stacks:  # warm-up, uncounted
        round_trips(stack, 10)
        throughput_api(stack.web, stack.redis_url, tasks // 4)
    for number in range(rounds):
        order = stacks if number % 2 == 0 else stacks[::-1]
        for stack in order:
            stack.b.append(round_trips(stack, reps))
        for stack in order:
            stack.c.append(throughput_api(stack.web, stack.redis_url, tasks))


def hook_cost(n: int = 20000) -> tuple[float, float]:
    """The hooks' own CPU time per echo task (µs), in this process and without the noise of a
    shared machine's scheduling: the web's (a POST counted, a submission, three live
    deliveries) and the worker's (the end of a task, in multiprocess mode: mmap'd files)."""
    import tempfile
    import time

    from prometheus_client import values

    from aios.metrics import WebMetrics, WorkerMetrics
    web = WebMetrics()
    started = time.process_time()
    for _ in range(n):
        web.request_done("/api/tasks", "POST", 202, 0.001)
        web.submitted.labels("echo").inc()
        for _ in range(3):
            web.delivery_lag.observe(0.002)
    web_us = (time.process_time() - started) / n * 1e6
    with tempfile.TemporaryDirectory() as folder:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
        values.ValueClass = values.MultiProcessValue()
        worker = WorkerMetrics()
        started = time.process_time()
        for _ in range(n):
            worker.task_ended("echo", "succeeded", 1, 0.004)
        worker_us = (time.process_time() - started) / n * 1e6
    return web_us, worker_us


def report(on, off, args) -> None:
    # As bench/pipeline.py's (c): the median of each round's on/off ratio (a round's two
    # sides ran within seconds of each other; the machine's load drifts more between rounds)
    b_ratio = p50([p50(a) / p50(b) for a, b in zip(on.b, off.b, strict=True)])
    c_ratio = p50([a / b for a, b in zip(on.c, off.c, strict=True)])
    b_on, b_off = [x for block in on.b for x in block], [x for block in off.b for x in block]
    print(f"\nMetrics overhead: {args.rounds} alternated rounds, {args.reps} round trips and "
          f"{args.tasks} tasks per round and side\n")
    print("| case | metrics off | metrics on | on / off | target |\n|---|---:|---:|---:|---|")
    print(f"| (b) REST submit -> result event, p50 ms | {p50(b_off):.2f} | {p50(b_on):.2f} | "
          f"{b_ratio:.3f} (rounds' median) | <= 1.05: "
          f"{'met' if b_ratio <= 1.05 else 'MISSED'} |")
    print(f"| (c) throughput through the API, median tasks/s | {p50(off.c):.0f} | "
          f"{p50(on.c):.0f} | {c_ratio:.3f} (rounds' median) | >= 0.95: "
          f"{'met' if c_ratio >= 0.95 else 'MISSED'} |")
    print(f"\n(b) ratio of the pooled medians {p50(b_on) / p50(b_off):.3f}; rounds' on/off: "
          + ", ".join(f"{p50(a) / p50(b):.2f}" for a, b in zip(on.b, off.b, strict=True)))
    print(f"(c) rounds, off: {', '.join(f'{r:.0f}' for r in off.c)}; "
          f"on: {', '.join(f'{r:.0f}' for r in on.c)}; ratio of the medians "
          f"{p50(on.c) / p50(off.c):.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--reps", type=int, default=40, help="(b) samples per round and side")
    parser.add_argument("--tasks", type=int, default=300, help="(c) tasks per round and side")
    parser.add_argument("--scrape-every", type=float, default=1.0,
                        help="seconds between scrapes of the metrics side (0: none)")
    args = parser.parse_args()
    started, failures = [], []
    stop = threading.Event()
    try:
        manager = start_manager(docker.from_env(), pool_size=0, name="bench-metrics")
        started.append(manager.stop)
        on = start_stack(manager, True, started)
        off = start_stack(manager, False, started)
        scraper = threading.Thread(target=scrape_forever, daemon=True,
                                   args=(on.scrape, args.scrape_every, stop, failures))
        scraper.start()
        measure([on, off], args.rounds, args.reps, args.tasks)
        stop.set()
        scraper.join(10)
    finally:
        stop.set()
        for close in reversed(started):
            close()
    report(on, off, args)
    web_us, worker_us = hook_cost()
    print(f"hooks' CPU per echo task, measured in process: web {web_us:.1f} µs, worker "
          f"{worker_us:.1f} µs ({(web_us + worker_us) / 1e4 * p50(off.c):.2f} % of one core "
          f"at the off side's median throughput)")
    print(f"scrapes meanwhile: every {args.scrape_every:g} s (0: none), {len(failures)} failed"
          + (f" (first: {failures[0]})" if failures else ""))


if __name__ == "__main__":
    main()
