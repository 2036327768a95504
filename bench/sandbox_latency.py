"""Latency of `print(1)` in Python: the sandbox manager against raw Docker SDK baselines,
all measured in this run on this machine.

  (a) raw SDK cold run: create, start, wait, logs, remove, with the same hardening
  (b) raw SDK exec_run into a running hardened container
  (c) POST /v1/run, pool off
  (d) POST /v1/run, pool warm (each request waits until the pool is full again:
      this is the latency a client sees when a warm container is available)
  (e) POST /v1/sandboxes/{id}/exec in an existing session sandbox (its live interpreter)

Run: make bench   (or: scripts/with-services.sh .venv/bin/python bench/sandbox_latency.py)
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import docker
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "sandbox_manager")]

from aios_sandbox.limits import Limits  # noqa: E402
from aios_sandbox.settings import Settings  # noqa: E402
from aios_sandbox.spec import container_spec  # noqa: E402
from tests.integration.support import start_manager  # noqa: E402

PRINT_1 = ["python3", "-c", "print(1)"]
RUN_BODY = {"language": "python", "code": "print(1)"}


def hardened_spec(**changes) -> dict:
    settings = Settings(_env_file=None, manager_token="bench" * 4, manager_name="bench")
    spec = container_spec(settings, Limits(), {"aios.sandbox": "1", "aios.manager": "bench"})
    spec.update(changes)
    return spec


def timed(fn, reps: int, warmup: int = 3, before=None) -> list[float]:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(reps):
        if before:
            before()
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def raw_cold_run(client):
    # The same hardening; only the log driver differs, since `logs` needs one.
    spec = hardened_spec(entrypoint=PRINT_1, stdin_open=False, log_config={"type": "json-file"})

    def once():
        container = client.containers.create(**spec)
        container.start()
        container.wait()
        assert container.logs() == b"1\n"
        container.remove(force=True)
    return once


def raw_exec(client):
    container = client.containers.create(**hardened_spec())
    container.start()

    def once():
        result = container.exec_run(PRINT_1, user="10001:10001")
        assert result.output == b"1\n"
    return once, container


def api_call(http, path, body):
    def once():
        response = http.post(path, json=body)
        assert response.status_code == 200 and response.json()["stdout"] == "1\n", response.text
    return once


def pool_full(manager_url, size):
    def wait():
        deadline = time.monotonic() + 30
        while httpx.get(manager_url + "/health").json()["counts"]["pool_ready"] < size:
            if time.monotonic() > deadline:
                raise RuntimeError("pool did not refill")
            time.sleep(0.01)
        time.sleep(0.05)  # let the used container's removal finish too
    return wait


def quantiles(samples):
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[int(0.9 * (len(ordered) - 1))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=30)
    reps = parser.parse_args().reps
    client = docker.from_env()
    results = {}

    results["a"] = timed(raw_cold_run(client), reps)
    once, container = raw_exec(client)
    try:
        results["b"] = timed(once, reps)
    finally:
        container.remove(force=True)

    cold = start_manager(client, pool_size=0, name="bench-cold")
    try:
        with cold.client() as http:
            results["c"] = timed(api_call(http, "/v1/run", RUN_BODY), reps)
            sandbox = http.post("/v1/sandboxes", json={}).json()["id"]
            results["e"] = timed(api_call(http, f"/v1/sandboxes/{sandbox}/exec", RUN_BODY), reps)
    finally:
        cold.stop()

    warm = start_manager(client, pool_size=2, name="bench-warm")
    try:
        with warm.client() as http:
            results["d"] = timed(api_call(http, "/v1/run", RUN_BODY), reps,
                                 before=pool_full(warm.url, 2))
    finally:
        warm.stop()

    labels = {
        "a": "raw SDK cold run (create/start/wait/logs/remove)",
        "b": "raw SDK exec_run into a running container",
        "c": "POST /v1/run, pool off",
        "d": "POST /v1/run, pool warm",
        "e": "exec in an existing session sandbox (live interpreter)",
    }
    p50 = {k: quantiles(v)[0] for k, v in results.items()}
    print(f"\nprint(1) in Python, {reps} repetitions each (ms)\n")
    print("| case | p50 | p90 |\n|---|---:|---:|")
    for key in "abcde":
        median, p90 = quantiles(results[key])
        print(f"| ({key}) {labels[key]} | {median:.1f} | {p90:.1f} |")
    print("\n| ratio (p50) | value | target |\n|---|---:|---|")
    print(f"| (c)/(a) | {p50['c'] / p50['a']:.2f} | <= 1.2 |")
    print(f"| (d)/(b) | {p50['d'] / p50['b']:.2f} | <= 0.5 |")
    print(f"| (e)/(b) | {p50['e'] / p50['b']:.2f} | <= 0.1 |")


if __name__ == "__main__":
    main()
