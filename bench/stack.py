"""The whole stack for a benchmark, as the tests run it: redis-server (everysec, Redis's
default), a sandbox manager (no pool), a Celery worker, the web server, and a fake LLM
server in its own process that the OpenAI provider is pointed at."""

import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import docker

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "python-backend")]

from tests.integration.stack import (RedisServer, backend_env, start_web,  # noqa: E402
                                     start_worker)
from tests.integration.support import start_manager  # noqa: E402


@contextmanager
def bench_stack(name: str):
    fake = subprocess.Popen([sys.executable, "-m", "tests.fakes.llm_server"], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)
    started = []
    try:
        base_url = fake.stdout.readline().strip()
        redis = RedisServer(fsync="everysec").start()
        started.append(redis.kill)
        manager = start_manager(docker.from_env(), pool_size=0, name=f"bench-{name}")
        started.append(manager.stop)
        env = backend_env(redis.url, manager, OPENAI_API_KEY="sk-bench",
                          OPENAI_BASE_URL=base_url)
        worker = start_worker(env, f"w-bench-{name}")
        started.append(worker.stop)
        web = start_web(env, f"web-bench-{name}")
        started.append(web.stop)
        yield SimpleNamespace(llm_base_url=base_url, manager=manager, web=web)
    finally:
        for stop in reversed(started):
            stop()
        fake.kill()
