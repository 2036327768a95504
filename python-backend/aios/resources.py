"""Per-process clients (Redis, the Socket.IO emitter, the sandbox client), made on first
use: nothing connects at import time, and each forked worker child makes its own."""

import os
from functools import cached_property

import redis

from .providers.cache import ChatCache
from .providers.registry import ProviderSet
from .files.reader import FileReader, ReadLimits
from .files.roots import FileRoots
from .mcp.config import McpConfig, McpConfigError, load_config
from .metrics import worker_metrics
from .providers.transcription import Transcriber
from .settings import ConfigurationError, Settings
from .tasks.events import EventLog
from .tasks.keys import SOCKETIO_CHANNEL
from .tasks.runner import TaskRunner
from .sandbox.pool import SandboxPool
from .tasks.store import TaskStore


def redis_client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, decode_responses=True, socket_connect_timeout=2,
                                socket_timeout=10, health_check_interval=15,
                                retry_on_timeout=True)


def file_reader(settings: Settings) -> FileReader:
    """The user's files as the settings allow them (roots, sizes, media)."""
    return FileReader(FileRoots(settings.file_roots),
                      ReadLimits(settings.attachment_max_bytes, settings.attachment_max_text_chars,
                                 video_frames=settings.video_frames),
                      Transcriber(settings))


def mcp_config(settings: Settings) -> McpConfig:
    """The MCP servers of AIOS_MCP_CONFIG; a bad file stops the service at start, naming
    what is wrong (the web and the worker read it when they start)."""
    try:
        return load_config(settings.mcp_config_path)
    except McpConfigError as exc:
        raise ConfigurationError(f"AI-OS: bad configuration\n  AIOS_MCP_CONFIG: {exc}") from None


class WorkerResources:
    """The worker's dependencies (the `Deps` that kinds and tools are given), each made on
    first use."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.pid = os.getpid()

    @cached_property
    def redis(self) -> redis.Redis:
        return redis_client(self.settings.redis_url)

    @cached_property
    def store(self) -> TaskStore:
        return TaskStore(self.redis, self.settings.task_retention_s, self.settings.heartbeat_ttl_s)

    @cached_property
    def emitter(self):
        # Write-only, and threading mode: with eventlet installed Flask-SocketIO would pick
        # eventlet in this unpatched process, and warm shutdown could hang.
        from flask_socketio import SocketIO
        return SocketIO(message_queue=self.settings.redis_url, channel=SOCKETIO_CHANNEL,
                        async_mode="threading")

    @cached_property
    def events(self) -> EventLog:
        def emit(room: str, events: tuple) -> None:
            self.emitter.emit("task:event", events, to=room, namespace="/")
        return EventLog(self.redis, emit, self.settings.task_retention_s)

    @cached_property
    def sandbox(self) -> SandboxPool:
        return SandboxPool.from_settings(self.settings)

    @cached_property
    def artifacts(self):
        from .sandbox.artifacts import ArtifactStore
        return ArtifactStore(self.settings.artifact_dir, self.settings.task_retention_s)

    @cached_property
    def files(self) -> FileReader:
        return file_reader(self.settings)

    @cached_property
    def mcp(self):
        from .mcp.client import McpHub
        return McpHub(mcp_config(self.settings), call_timeout_s=self.settings.mcp_call_timeout_s,
                      max_result_chars=self.settings.tool_result_max_chars)

    @cached_property
    def agent_sessions(self):
        from .agent.sessions import AgentSessions
        return AgentSessions(self.redis, self.settings.agent_session_ttl_s)

    @cached_property
    def chat_cache(self) -> ChatCache:
        return ChatCache(self.redis, self.settings.llm_cache_ttl_s)

    @cached_property
    def providers(self) -> ProviderSet:
        return ProviderSet(self.settings)

    @cached_property
    def runner(self) -> TaskRunner:
        from celery.exceptions import SoftTimeLimitExceeded
        settings = self.settings
        from .kinds import KINDS
        metrics = worker_metrics()  # None unless the worker turned them on
        return TaskRunner(self.store, self.events, KINDS, self,
                          settings.heartbeat_interval_s, settings.task_max_attempts,
                          time_limit_errors=(SoftTimeLimitExceeded,),
                          lease_s=settings.heartbeat_ttl_s - settings.heartbeat_interval_s,
                          max_log_bytes=settings.task_max_log_bytes,
                          on_end=metrics.task_ended if metrics else None)


_per_process: dict[int, WorkerResources] = {}


def worker_resources(settings: Settings) -> WorkerResources:
    pid = os.getpid()
    if pid not in _per_process:
        _per_process.clear()  # a forked child must not reuse its parent's connections
        _per_process[pid] = WorkerResources(settings)
    return _per_process[pid]
