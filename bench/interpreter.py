"""The code interpreter against raw Docker baselines, all measured in this run.

  (f) a 1,000-point pandas line chart returned as PNG: exec in a warm session (the live
      interpreter has pandas and matplotlib imported already) vs the same code through raw
      SDK exec_run of `python3 -c` into a running container of the same image and hardening
      (which imports them every time, as any fresh process must)
  (g) 50 idle session sandboxes, each with its live interpreter: memory per session
      (cgroup working set, and resident memory), with nothing imported and after
      `import pandas, matplotlib`; the manager's /health latency meanwhile

Run: make bench   (or: scripts/with-services.sh .venv/bin/python bench/interpreter.py)
"""

import argparse
import base64
import concurrent.futures
import statistics
import sys
import time
from pathlib import Path

import docker
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from sandbox_latency import hardened_spec, quantiles, timed  # noqa: E402
from tests.integration.support import start_manager  # noqa: E402

CHART = ("import pandas as pd, matplotlib.pyplot as plt\n"
         "pd.Series(range(1000)).cumsum().plot()\n")
SESSION_CHART = CHART + "plt.show()\n"  # the sandbox's backend returns shown figures
RAW_CHART = CHART + ("import io, sys\nbuffer = io.BytesIO()\nplt.savefig(buffer, format='png')\n"
                     "plt.close('all')\nsys.stdout.buffer.write(buffer.getvalue())\n")
PNG = b"\x89PNG\r\n\x1a\n"
MiB = 1 << 20


def raw_chart(client):
    container = client.containers.create(**hardened_spec())
    container.start()

    def once():
        result = container.exec_run(["python3", "-c", RAW_CHART], user="10001:10001",
                                    environment={"MPLBACKEND": "Agg", "HOME": "/home/sandboxuser"})
        assert result.exit_code == 0 and result.output.startswith(PNG), result.output[-500:]
    return once, container


def session_chart(http, sandbox_id):
    def once():
        body = http.post(f"/v1/sandboxes/{sandbox_id}/exec", json={
            "language": "python", "code": SESSION_CHART, "timeout_s": 60}).json()
        [figure] = body["outputs"]
        assert figure["mime"] == "image/png" and base64.b64decode(figure["data_base64"])[:8] == PNG
    return once


def chart_case(client, reps):
    once, container = raw_chart(client)
    try:
        raw = timed(once, reps, warmup=1)
    finally:
        container.remove(force=True)
    manager = start_manager(client, name="bench-chart")
    try:
        with manager.client() as http:
            sandbox_id = http.post("/v1/sandboxes", json={}).json()["id"]
            session = timed(session_chart(http, sandbox_id), reps, warmup=1)
    finally:
        manager.stop()
    return raw, session


def memory(container_id: str) -> tuple[int, int]:
    """(working set, resident) of a container's cgroup: usage less inactive file pages, as
    `docker stats` reports it, and anonymous resident memory."""
    for root in (f"/sys/fs/cgroup/memory/docker/{container_id}",
                 f"/sys/fs/cgroup/system.slice/docker-{container_id}.scope"):
        stat_path = Path(root) / "memory.stat"
        if stat_path.exists():
            break
    else:
        raise RuntimeError(f"no memory cgroup for {container_id}")
    stat = dict(line.split() for line in stat_path.read_text().splitlines())
    if (Path(root) / "memory.usage_in_bytes").exists():  # cgroup v1
        usage = int((Path(root) / "memory.usage_in_bytes").read_text())
        return usage - int(stat["total_inactive_file"]), int(stat["total_rss"])
    usage = int((Path(root) / "memory.current").read_text())
    return usage - int(stat["inactive_file"]), int(stat["anon"])


def health_ms(url: str, times: int = 20) -> list[float]:
    samples = []
    for _ in range(times):
        started = time.perf_counter()
        assert httpx.get(url + "/health", timeout=5).status_code == 200
        samples.append((time.perf_counter() - started) * 1000)
        time.sleep(0.05)
    return samples


def per_session(manager, ids) -> tuple[float, float]:
    containers = {c.labels.get("aios.owner"): c.id for c in manager.containers(
        **{"aios.kind": "session"})}
    measured = [memory(containers[f"bench-{i}"]) for i in range(len(ids))]
    return (statistics.median(m[0] for m in measured) / MiB,
            statistics.median(m[1] for m in measured) / MiB)


def idle_sessions_case(client, count):
    manager = start_manager(client, name="bench-idle", max_sessions=count + 5)
    rows = {}
    try:
        with manager.client(timeout=120) as http:
            ids = [http.post("/v1/sandboxes",
                             json={"owner": f"bench-{i}", "ttl_s": 900}).json()["id"]
                   for i in range(count)]
            time.sleep(2)  # let every interpreter settle
            rows["nothing imported"] = (*per_session(manager, ids), health_ms(manager.url))

            def imports(sandbox_id):
                body = http.post(f"/v1/sandboxes/{sandbox_id}/exec", json={
                    "language": "python", "code": "import pandas, matplotlib.pyplot",
                    "timeout_s": 120}).json()
                assert body["exit_code"] == 0, body
            with concurrent.futures.ThreadPoolExecutor(4) as pool:
                list(pool.map(imports, ids))
            time.sleep(2)
            rows["after import pandas, matplotlib"] = (*per_session(manager, ids),
                                                        health_ms(manager.url))
    finally:
        manager.stop()
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--sessions", type=int, default=50)
    args = parser.parse_args()
    client = docker.from_env()

    raw, session = chart_case(client, args.reps)
    (raw50, raw90), (s50, s90) = quantiles(raw), quantiles(session)
    print(f"\n(f) 1,000-point pandas line chart returned as PNG, {args.reps} repetitions (ms)\n")
    print("| case | p50 | p90 |\n|---|---:|---:|")
    print(f"| raw SDK exec_run of python3 -c (imports each time) | {raw50:.1f} | {raw90:.1f} |")
    print(f"| exec in a warm session (live interpreter) | {s50:.1f} | {s90:.1f} |")
    print(f"\n| ratio (p50) | value | goal |\n|---|---:|---|\n"
          f"| session / raw exec_run | {s50 / raw50:.2f} | <= 1.1 |")

    rows = idle_sessions_case(client, args.sessions)
    print(f"\n(g) {args.sessions} idle session sandboxes, each with a live interpreter\n")
    print("| state | working set per session (p50) | resident per session (p50) | "
          "/health p50 | /health max | target |\n|---|---:|---:|---:|---:|---|")
    for state, (working, resident, health) in rows.items():
        target = "<= 40 MiB, /health < 1 s" if state == "nothing imported" else "/health < 1 s"
        print(f"| {state} | {working:.1f} MiB | {resident:.1f} MiB | "
              f"{statistics.median(health):.1f} ms | {max(health):.1f} ms | {target} |")


if __name__ == "__main__":
    main()
