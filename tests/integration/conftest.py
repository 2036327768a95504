"""Fixtures: real sandbox managers (uvicorn subprocesses) on a real dockerd and image."""

import docker
import httpx
import pytest

from .stack import (RedisServer, TaskListener, backend_env, rest_client, start_web,
                    start_worker)
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
