"""What the web's handlers use, built once by create_app: one typed record on the app."""

from dataclasses import dataclass
from typing import Optional

from celery import Celery
from flask import Flask, current_app
from redis import Redis

from ..agent.sessions import AgentSessions
from ..sandbox.artifacts import ArtifactStore
from ..sandbox.pool import SandboxPool
from ..settings import Settings
from ..tasks.service import TaskService
from .gate import SubscriptionGate

KEY = "aios"  # its key in app.extensions


@dataclass(frozen=True)
class WebState:
    settings: Settings
    celery: Celery
    redis: Redis
    tasks: TaskService
    artifacts: ArtifactStore
    sessions: AgentSessions
    sandbox: SandboxPool  # removes a deleted session's sandbox (on the manager holding it)
    gate: SubscriptionGate
    mcp_servers: list[str]  # the names of AIOS_MCP_CONFIG's servers (read at start)

    def attach(self, app: Flask) -> None:
        app.extensions[KEY] = self


def web_state(app: Optional[Flask] = None) -> WebState:
    """The state of `app`, or of the app handling the current request or socket event."""
    return (app or current_app).extensions[KEY]
