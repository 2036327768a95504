"""The task pipeline against raw Celery and raw Socket.IO baselines, all in this run.

  (a) raw Celery apply_async().get() of a no-op task
  (b) REST submit -> `result` event at a Socket.IO client, `echo` kind
  (c) throughput: 500 tasks submitted through the API vs 500 raw apply_async, alternated rounds
  (d) idle WebSocket clients held by one web worker (1,000 / 5,000 / 10,000), its RSS,
      and an active client's round trip meanwhile
  (e) latency of a task event from a worker-side emitter to a client

(a), (b), (d) and (e) are measured for each web worker class (AIOS_WEB_WORKER_CLASS: eventlet,
then gevent, one web at a time, on the same Redis and Celery worker); (c) for the first one.

Run: make bench   (or: scripts/with-services.sh .venv/bin/python bench/pipeline.py)
"""

import argparse
import http.client
import json
import statistics
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import docker

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "python-backend")]

from tests.integration.stack import (API_TOKEN, IdleSockets, RedisServer,  # noqa: E402
                                     TaskListener, backend_env, start_web, start_worker)
from tests.integration.support import start_manager  # noqa: E402


def p50(samples):
    return statistics.median(samples)


def p90(samples):
    return sorted(samples)[int(0.9 * (len(samples) - 1))]


def raw_round_trip(celery) -> float:
    started = time.perf_counter()
    celery.send_task("aios.noop").get(timeout=10)
    return (time.perf_counter() - started) * 1000


def rest_round_trip(rest: "EchoSubmitter", listener: TaskListener) -> float:
    task_id = uuid.uuid4().hex
    started = time.perf_counter()
    rest.submit(task_id)
    listener.call("task:subscribe", {"task_id": task_id, "after": 0})
    listener.wait_for(lambda got: any(e["type"] == "result" for e in got.of(task_id)), 10)
    return (time.perf_counter() - started) * 1000


def round_trips(celery, web, reps, block=20, warmup=5):
    """(a) and (b) in alternated blocks of `block` samples: each block runs back to back (a
    tight loop: the fastest either can be), and alternating the blocks makes a slow moment of
    the shared machine weigh on both alike."""
    listener = TaskListener(web.url).connect()
    rest = EchoSubmitter(web.url)
    for _ in range(warmup):
        raw_round_trip(celery), rest_round_trip(rest, listener)
    raw, through_api = [], []
    while len(raw) < reps:
        n = min(block, reps - len(raw))
        raw += [raw_round_trip(celery) for _ in range(n)]
        through_api += [rest_round_trip(rest, listener) for _ in range(n)]
    rest.close()
    listener.close()
    return raw, through_api


class EchoSubmitter:
    """POST /api/tasks over one keep-alive connection with http.client: the lightest real
    HTTP client, as the machine's two cores are shared with the server being measured."""

    def __init__(self, url: str):
        address = urlsplit(url)
        self.connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
        self.headers = {"Authorization": f"Bearer {API_TOKEN}",
                        "Content-Type": "application/json"}

    def submit(self, task_id: str) -> None:
        body = json.dumps({"kind": "echo", "input": {"text": "x"}, "task_id": task_id})
        try:
            response = self._post(body)
        except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
            # gunicorn closes a keep-alive connection idle past its keepalive (2 s): on a busy
            # machine a pause between samples can be that long. Sent again on a new
            # connection: a task_id submitted twice is accepted once.
            self.connection.close()
            response = self._post(body)
        assert response.status == 202, response.status

    def _post(self, body: str):
        self.connection.request("POST", "/api/tasks", body, self.headers)
        response = self.connection.getresponse()
        response.read()
        return response

    def close(self) -> None:
        self.connection.close()


def throughput_api(web, redis_url, n, threads=8):
    """Submit n echo tasks from client threads, each on its own keep-alive connection (enough
    of them to keep the server busy: this measures its capacity, not one client's round
    trips); done when Redis says all succeeded (read directly, every 20 ms, so that polling does not
    load the server being measured)."""
    import redis as redis_lib
    store = redis_lib.Redis.from_url(redis_url, decode_responses=True)
    ids = [uuid.uuid4().hex for _ in range(n)]
    started = time.perf_counter()

    def submit(chunk):
        rest = EchoSubmitter(web.url)
        for task_id in chunk:
            rest.submit(task_id)
        rest.close()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(submit, [ids[i::threads] for i in range(threads)]))
    pending = ids
    while pending:
        pipe = store.pipeline()
        for task_id in pending:
            pipe.hget(f"aios:task:{task_id}", "status")
        pending = [t for t, status in zip(pending, pipe.execute(), strict=True)
                   if status != "succeeded"]
        time.sleep(0.02)
    return n / (time.perf_counter() - started)


def throughput_raw(celery, n):
    started = time.perf_counter()
    results = [celery.send_task("aios.noop") for _ in range(n)]
    for result in results:
        result.get(timeout=60)
    return n / (time.perf_counter() - started)


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024


def ping_rtt(listener, reps=50):
    samples = []
    for _ in range(reps):
        started = time.perf_counter()
        listener.call("ping", {})
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def hold_clients(web, levels):
    idle = IdleSockets(web.url)
    active = TaskListener(web.url).connect()
    pid = web.child_pid()
    rows = []
    try:
        for level in levels:
            try:
                idle.open(level - len(idle.sockets))
                time.sleep(1)
                rtt = p50(ping_rtt(active))
            except Exception as exc:  # noqa: BLE001 - the level is reported as far as it got
                print(f"(d) at {level} clients: {exc!r}", file=sys.stderr)
                rows.append((level, idle.held(), rss_mib(pid), float("nan")))
                break
            rows.append((level, idle.held(), rss_mib(pid), rtt))
    finally:
        for close in (active.close, idle.close):
            try:
                close()
            except Exception as exc:  # noqa: BLE001 - a client already dropped
                print(f"(d) closing: {exc!r}", file=sys.stderr)
    return rows


def event_latency(web, env, reps):
    from aios.resources import WorkerResources
    from aios.settings import Settings
    settings = Settings(_env_file=None, api_token=env["AIOS_API_TOKEN"],
                        secret_key=env["SECRET_KEY"], redis_url=env["REDIS_URL"],
                        sandbox_manager_token=env["SANDBOX_MANAGER_TOKEN"])
    events = WorkerResources(settings).events
    listener = TaskListener(web.url).connect()
    # A task that stays running, so the client stays subscribed while events are appended
    # from outside, as a worker would; it is cancelled afterwards.
    ack = listener.call("task:submit", {"kind": "code", "input": {
        "language": "bash", "code": "sleep 60", "timeout_s": 90}})
    task_id = ack["task_id"]
    listener.wait_for(lambda got: any(e["type"] == "status" and e["data"]["status"] == "running"
                                      for e in got.of(task_id)), 20)
    seq = len(listener.of(task_id))
    samples = []
    for i in range(reps):
        started = time.perf_counter()
        events.append(task_id, "log", {"text": f"{i}\n"})
        listener.wait_for(lambda got, n=seq + i + 1: len(got.of(task_id)) >= n, 10)
        samples.append((time.perf_counter() - started) * 1000)
    listener.call("task:cancel", {"task_id": task_id})
    listener.wait_final(task_id)
    listener.close()
    return samples


def measure_web(env, worker_class: str, celery, args, throughput: bool) -> dict:
    """Every measurement of one web worker class, on a web of its own."""
    web = start_web(dict(env, AIOS_WEB_WORKER_CLASS=worker_class), f"web-bench-{worker_class}")
    try:
        found = {"round_trips": round_trips(celery, web, args.reps)}
        if throughput:  # alternated, so that a slow moment of the machine hits both sides alike
            found["rates"] = [(throughput_api(web, env["REDIS_URL"], args.tasks),
                               throughput_raw(celery, args.tasks)) for _ in range(args.rounds)]
        found["latency"] = event_latency(web, env, args.reps)
        found["held"] = hold_clients(web, [int(n) for n in args.clients.split(",")])
    finally:
        web.stop()
    return found


def report(args, measured: dict) -> None:
    print(f"\nTask pipeline, {args.reps} repetitions per latency row, (a) and (b) in alternated "
          "blocks of 20 (ms), per web worker class\n")
    print("| case | web | p50 | p90 | target |\n|---|---|---:|---:|---|")
    for worker_class, found in measured.items():
        raw, rest = found["round_trips"]
        print(f"| (a) raw Celery apply_async().get(), no-op | {worker_class} | {p50(raw):.2f} | "
              f"{p90(raw):.2f} | |")
        print(f"| (b) REST submit -> result event (echo) | {worker_class} | {p50(rest):.2f} | "
              f"{p90(rest):.2f} | <= 3 x (a): {p50(rest) / p50(raw):.2f} x |")
        latency = found["latency"]
        print(f"| (e) worker emit -> client | {worker_class} | {p50(latency):.2f} | "
              f"{p90(latency):.2f} | <= 5 ms |")
    for worker_class, found in measured.items():
        if "rates" not in found:
            continue
        api_rates, raw_rates = zip(*found["rates"], strict=True)
        ratios = [api / raw for api, raw in found["rates"]]
        print(f"\n| throughput ({args.tasks} tasks, {args.rounds} alternated rounds, web: "
              f"{worker_class}) | median tasks/s | rounds |\n|---|---:|---|")
        print(f"| (c) through the API (echo, REST submit from 8 threads) | {p50(api_rates):.0f} "
              f"| {', '.join(f'{r:.0f}' for r in api_rates)} |")
        print(f"| raw apply_async (no-op) | {p50(raw_rates):.0f} | "
              f"{', '.join(f'{r:.0f}' for r in raw_rates)} |")
        print(f"| ratio (target >= 0.7) | {p50(ratios):.2f} | "
              f"{', '.join(f'{r:.2f}' for r in ratios)} |")
    print("\n| (d) idle WebSocket clients | web | held | worker RSS MiB | active RTT p50 ms |")
    print("|---:|---|---:|---:|---:|")
    for worker_class, found in measured.items():
        for level, alive, rss, rtt in found["held"]:
            print(f"| {level} | {worker_class} | {alive} | {rss:.0f} | {rtt:.2f} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=100)
    parser.add_argument("--tasks", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5, help="of (c), API and raw alternated")
    parser.add_argument("--clients", default="1000,5000,10000")
    parser.add_argument("--worker-classes", default="eventlet,gevent",
                        help="the web's, measured one after the other; (c) for the first")
    args = parser.parse_args()
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    redis = RedisServer(fsync="everysec").start()
    manager = start_manager(docker.from_env(), pool_size=0, name="bench-pipeline")
    env = backend_env(redis.url, manager)
    worker = start_worker(env, "w-bench")
    measured = {}
    try:
        from celery import Celery
        celery = Celery(broker=env["REDIS_URL"], backend=env["REDIS_URL"])
        for i, worker_class in enumerate(args.worker_classes.split(",")):
            measured[worker_class] = measure_web(env, worker_class, celery, args,
                                                 throughput=i == 0)
    finally:
        worker.stop()
        manager.stop()
        redis.kill()
    report(args, measured)


if __name__ == "__main__":
    main()
