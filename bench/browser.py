"""The agent's browser against plain Playwright, all measured in this run on this machine.

  start:     POST /v1/browsers -> 201: a browser sandbox (container, its network and guard
             proxy, Chromium launched inside, hardening checked) ready for actions
  agent:     browser_snapshot + browser_click of one turn, as the agent runs them: from the
             snapshot's `tool_call` event to the click's `tool_result` event (the worker's
             clock): policy, the manager's API, the container's supervisor, Playwright there,
             the page's traffic through the guard proxy, artifacts and events
  baseline:  the same snapshot and click with plain Playwright in this process against a
             local Chromium (Debian's, the same version), on the same page
Target: agent p50 <= 1.5 x baseline p50.

Run: make bench   (or: scripts/with-services.sh .venv/bin/python bench/browser.py)
"""

import argparse
import json
import re
import statistics
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import docker
import httpx
import stack  # noqa: F401 - puts the repository on sys.path

from tests.fakes.llm_server import FakeLLM  # noqa: E402
from tests.integration.browser_site import gateway_address  # noqa: E402
from tests.integration.stack import (RedisServer, TaskListener, backend_env,  # noqa: E402
                                     start_web, start_worker)
from tests.integration.support import start_manager  # noqa: E402

PAGE = ("<html><head><title>Counter</title></head><body><main><h1>Counter</h1>"
        "<p id=n>0</p><button onclick=\"n.textContent = +n.textContent + 1\">Count</button>"
        "<nav>" + "".join(f"<a href='/p{i}'>Link {i}</a> " for i in range(40)) + "</nav>"
        + "".join(f"<p>Paragraph {i} of the page, with a few words.</p>" for i in range(40))
        + "</main></body></html>").encode()


def serve(host: str) -> ThreadingHTTPServer:
    class Page(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(PAGE)))
            self.end_headers()
            self.wfile.write(PAGE)

        def log_message(self, *args):
            pass
    server = ThreadingHTTPServer((host, 0), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def button_ref(snapshot: str) -> str:
    return re.search(r'button "Count"[^\n]*\[ref=(\w+)\]', snapshot).group(1)


def start_times(manager, reps: int) -> list[float]:
    with httpx.Client(base_url=manager.url, timeout=120,
                      headers={"Authorization": f"Bearer {manager.token}"}) as api:
        samples = []
        for _ in range(reps):
            started = time.perf_counter()
            created = api.post("/v1/browsers", json={"owner": "bench", "ttl_s": 300})
            samples.append((time.perf_counter() - started) * 1000)
            assert created.status_code == 201, created.text
            api.delete(f"/v1/browsers/{created.json()['id']}")
        return samples


def plain_playwright(url: str, rounds: int) -> list[float]:
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", headless=True)
        page = browser.new_page()
        page.goto(url)
        samples = []
        for _ in range(rounds + 2):
            started = time.perf_counter()
            ref = button_ref(page.aria_snapshot(mode="ai"))  # what the supervisor sends
            page.get_by_ref(ref).click()
            samples.append((time.perf_counter() - started) * 1000)
        browser.close()
    return samples[2:]  # the first rounds warm up


def agent_rounds(listener: TaskListener, fake: FakeLLM, url: str, rounds: int) -> list[float]:
    def snapshot_and_click(messages):
        snapshots = [json.loads(m["content"])["snapshot"] for m in messages
                     if m.get("role") == "tool" and '"snapshot"' in (m.get("content") or "")]
        ref = button_ref(snapshots[-1])
        return {"tools": [("browser_snapshot", {}), ("browser_click", {"ref": ref})]}
    first = {"tools": [("browser_navigate", {"url": url}), ("browser_snapshot", {})]}
    fake.scripts["bench"] = [first] + [snapshot_and_click] * (rounds + 2) + [{"text": "done"}]
    ack = listener.call("task:submit", {"kind": "agent", "input": {
        "goal": "count", "model": "script:bench", "provider": "openai",
        "max_steps": rounds + 4, "tools": ["browser_navigate", "browser_snapshot",
                                           "browser_click"]}})
    assert listener.wait_final(ack["task_id"], 300) == "succeeded"
    events = listener.of(ack["task_id"])
    calls = {e["data"]["id"]: e for e in events if e["type"] == "tool_call"}
    results = [e for e in events if e["type"] == "tool_result"]
    assert not [r for r in results if r["data"]["is_error"]], results
    clicks = [r for r in results if r["data"]["name"] == "browser_click"]
    samples = []
    for click in clicks:
        turn = click["data"]["id"].rsplit("_", 1)[0]  # call_<turn>_<i>
        snapshot_call = calls[f"{turn}_0"]
        samples.append((click["ts"] - snapshot_call["ts"]) * 1000)
    return samples[2:]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--starts", type=int, default=5)
    args = parser.parse_args()
    client = docker.from_env()
    host = gateway_address(client)
    site = serve(host)
    url = f"http://{host}:{site.server_port}/"
    fake = FakeLLM().start()
    stopping = []
    try:
        redis = RedisServer(fsync="everysec").start()
        stopping.append(redis.kill)
        manager = start_manager(client, pool_size=0, name="bench-browser", egress_allow=host,
                                egress_ports=str(site.server_port))
        stopping.append(manager.stop)
        env = backend_env(redis.url, manager, OPENAI_API_KEY="sk-bench",
                          OPENAI_BASE_URL=fake.base_url,
                          AIOS_BROWSE_ALLOWLIST=f"{host}:{site.server_port}")
        worker = start_worker(env, "w-bench-browser")
        stopping.append(worker.stop)
        web = start_web(env, "web-bench-browser")
        stopping.append(web.stop)
        starts = start_times(manager, args.starts)
        listener = TaskListener(web.url).connect()
        agent = agent_rounds(listener, fake, url, args.rounds)
        listener.close()
        plain = plain_playwright(url, args.rounds)
    finally:
        for stop in reversed(stopping):
            stop()
        fake.stop()
        site.shutdown()
    med = statistics.median
    print(f"\nBrowser: snapshot + click, {args.rounds} rounds; start, {args.starts} "
          "(ms, p50)\n")
    print("| | p50 | target |\n|---|---:|---|")
    print(f"| a browser sandbox's start (POST /v1/browsers -> 201) | {med(starts):.0f} | |")
    print(f"| plain Playwright, local Chromium: snapshot + click | {med(plain):.1f} | |")
    print(f"| through the agent: browser_snapshot + browser_click | {med(agent):.1f} | |")
    print(f"| ratio | {med(agent) / med(plain):.2f} x | <= 1.5 x |")


if __name__ == "__main__":
    main()
