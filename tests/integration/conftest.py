"""Fixtures: real sandbox managers (uvicorn subprocesses) on a real dockerd and image."""

from types import SimpleNamespace

import docker
import httpx
import pytest

from ..fakes.llm_server import FakeLLM
from .browser_site import Site, gateway_address
from .stack import (APPROVAL_TIMEOUT_S, CANARY, RedisServer, TaskListener, agent_env,
                    backend_env, rest_client, start_web, start_worker)
from .support import Manager, start_manager

@pytest.fixture(scope="session")
def docker_client():
    try:
        client = docker.from_env()
        client.ping()
        client.images.get("aios-sandbox")
    except docker.errors.DockerException as exc:
        pytest.fail(f"integration tests need dockerd and the aios-sandbox image "
                    f"(run them through `make test`): {exc}")
    yield client
    client.close()


@pytest.fixture
def spawn_manager(docker_client):
    """Start extra managers with their own settings; each is stopped and checked for leaks."""
    started = []

    def spawn(**env) -> Manager:
        manager = start_manager(docker_client, **env)
        started.append(manager)
        return manager

    yield spawn
    for manager in started:
        manager.stop()
        assert manager.containers() == [], f"manager {manager.name} left containers behind"


@pytest.fixture(scope="session")
def manager(docker_client):
    """The shared manager: warm pool of 2, fast reaper."""
    manager = start_manager(docker_client, pool_size=2)
    yield manager
    manager.stop()
    assert manager.containers() == [], "the shared manager left containers behind"


@pytest.fixture
def api(manager) -> httpx.Client:
    with manager.client() as client:
        yield client


@pytest.fixture
def session(api):
    """A session sandbox, destroyed afterwards."""
    created = api.post("/v1/sandboxes", json={"ttl_s": 300})
    assert created.status_code == 201, created.text
    sandbox_id = created.json()["id"]
    yield sandbox_id
    api.delete(f"/v1/sandboxes/{sandbox_id}")


# --- the task pipeline: redis-server, Celery worker, gunicorn+eventlet -------------------

@pytest.fixture(scope="session")
def redis_server():
    server = RedisServer().start()
    yield server
    server.kill()


@pytest.fixture(scope="session")
def stack_env(redis_server, manager):
    return backend_env(redis_server.url, manager)


@pytest.fixture(scope="session")
def worker(stack_env):
    service = start_worker(stack_env, "w-shared")
    yield service
    service.stop()


@pytest.fixture(scope="session")
def web(stack_env, worker):
    service = start_web(stack_env)
    yield service
    service.stop()


@pytest.fixture
def rest(web):
    with rest_client(web) as client:
        yield client


@pytest.fixture
def listener(web):
    client = TaskListener(web.url).connect()
    yield client
    client.close()


@pytest.fixture
def own_stack(manager, request):
    """A private redis-server, worker and web server, for tests that break things."""
    started = []
    server = RedisServer().start()
    env = backend_env(server.url, manager)

    class Stack:
        redis, environment = server, env

        def worker(self, name="w-own", **kw):
            service = start_worker(env, name, **kw)
            started.append(service)
            return service

        def web(self, name="web-own", **kw):
            service = start_web(env, name, **kw)
            started.append(service)
            return service

    yield Stack()
    for service in reversed(started):
        service.stop()
    server.kill()


# --- the agent with its browser and the user's say: one stack for their tests ------------

@pytest.fixture(scope="session")
def site(docker_client):
    """A website on this machine's Docker bridge address (browser_site.py), the only kind of
    address a browser sandbox (or an egress sandbox) can reach here."""
    site = Site(gateway_address(docker_client)).start()
    yield site
    site.stop()


@pytest.fixture(scope="session")
def agent_manager(docker_client, site):
    """Its proxies may reach the site (one of this machine's addresses: refused unless
    allowed) and nothing else of this machine; code sandboxes may ask for the network."""
    manager = start_manager(docker_client, allow_egress=1, egress_allow=site.host,
                            egress_ports=f"80,443,{site.server.server_port}")
    yield manager
    manager.stop()
    assert manager.containers() == [], "the agent stack's manager left containers behind"


@pytest.fixture(scope="session")
def agent_fake():
    server = FakeLLM().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def agent_stack(agent_manager, agent_fake, site, tmp_path_factory):
    """Redis, a worker and a web with the scripted fake model, the site allowlisted, a user
    folder holding a canary file, and a short approval timeout."""
    redis = RedisServer().start()
    files = tmp_path_factory.mktemp("user-files")
    (files / "secret.txt").write_text(CANARY)
    env = agent_env(redis.url, agent_manager, agent_fake, AIOS_BROWSE_ALLOWLIST=site.address,
                    AIOS_FILE_ROOTS=str(files), AIOS_UPLOAD_DIR=str(files / "uploads"),
                    AIOS_APPROVAL_TIMEOUT_S=str(APPROVAL_TIMEOUT_S))
    worker = start_worker(env, "w-agent-browser")
    web = start_web(env, "web-agent-browser")
    yield SimpleNamespace(web=web, worker=worker, files=files)
    web.stop()
    worker.stop()
    redis.kill()
