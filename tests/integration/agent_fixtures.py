"""The short names the agent-stack tests use (test_browser_agent, test_approvals) for the
session's agent stack (conftest.py), and a listener and REST client on it. Import them into
a test module to use them."""

import pytest

from .stack import TaskListener, rest_client


@pytest.fixture
def fake(agent_fake):
    return agent_fake


@pytest.fixture
def stack(agent_stack):
    return agent_stack


@pytest.fixture
def client(stack):
    listener = TaskListener(stack.web.url).connect()
    yield listener
    listener.close()


@pytest.fixture
def rest(stack):
    with rest_client(stack.web) as client:
        yield client
