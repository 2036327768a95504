"""Latency of a warm `browse` of a local page against plain Playwright on the same browser,
all measured in this run on this machine (Debian's Chromium, one browser per process).

  (a) the browse tool: guard, fresh context behind a GuardProxy, route checks, readable text
  (b) plain Playwright (its own Chromium, same binary and flags, launched here without our
      dead-end proxy): fresh context, page.goto + inner_text("body"), no guard
  (c) the same plain browser, one reused page: goto + inner_text (the floor)

Run: .venv/bin/python bench/browse_latency.py [--reps 30]
"""

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "python-backend")]

from playwright.sync_api import sync_playwright  # noqa: E402

from aios.settings import Settings  # noqa: E402
from aios.tools.base import ToolContext  # noqa: E402
from aios.tools.browse import Browse  # noqa: E402
from aios.tools.browser import CHROMIUM_ARGS, BrowserHost  # noqa: E402
from tests.integration.support import html_page  # noqa: E402

PAGE = ("<html><head><title>Bench page</title></head><body><main><h1>Hello</h1>"
        + "<p>Some words of an article, repeated. </p>" * 200 + "</main></body></html>").encode()
def timed(fn, reps: int, warmup: int = 3) -> list[float]:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(reps):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def plain_fresh_context(browser, url: str):
    def once():
        context = browser.new_context()
        try:
            page = context.new_page()
            page.goto(url)
            return page.inner_text("body")
        finally:
            context.close()
    return once


def plain_reused_page(browser, url: str):
    page = browser.new_context().new_page()

    def once():
        page.goto(url)
        return page.inner_text("body")
    return once


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=30)
    reps = parser.parse_args().reps
    with html_page(PAGE) as address:
        run(address, reps)


def run(address: str, reps: int) -> None:
    url = f"http://{address}/"
    settings = Settings(_env_file=None, api_token="b" * 16, secret_key="b" * 16,
                        sandbox_manager_token="b" * 16,
                        browse_allowlist=[address])
    host = BrowserHost(settings.chromium_path)
    tool = Browse(settings, host)
    ctx = ToolContext("bench", lambda *_: None, threading.Event(), lambda _: None)
    try:
        rows = [
            ("(a) browse tool (guard + proxy + routes), fresh context",
             timed(lambda: tool.run({"url": url}, ctx), reps)),
        ]
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=settings.chromium_path,
                                                 headless=True, args=CHROMIUM_ARGS)
            rows += [
                ("(b) plain Playwright: fresh context, goto + inner_text",
                 timed(plain_fresh_context(browser, url), reps)),
                ("(c) plain Playwright: reused page, goto + inner_text",
                 timed(plain_reused_page(browser, url), reps)),
            ]
            browser.close()
    finally:
        host.close()
    print(f"\nWarm browse of a local page ({len(PAGE)} bytes), {reps} calls each\n")
    print("| what | p50 ms | p90 ms |")
    print("|---|---:|---:|")
    for name, samples in rows:
        p90 = statistics.quantiles(samples, n=10)[-1]
        print(f"| {name} | {statistics.median(samples):.0f} | {p90:.0f} |")


if __name__ == "__main__":
    main()
