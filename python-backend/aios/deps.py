"""What task kinds and tools work with: one typed object. In a worker it is the process's
`WorkerResources` (aios.resources), which makes each service on first use; the MCP server
makes one too; tests may hand in any object with these attributes."""

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # for the types only: the services' modules load when they are made
    import redis

    from .agent.sessions import AgentSessions
    from .files.reader import FileReader
    from .mcp.client import McpHub
    from .providers.cache import ChatCache
    from .providers.registry import ProviderSet
    from .sandbox.artifacts import ArtifactStore
    from .sandbox.pool import SandboxPool
    from .settings import Settings


class Deps(Protocol):
    settings: "Settings"
    redis: "redis.Redis"
    sandbox: "SandboxPool"
    artifacts: "ArtifactStore"
    files: "FileReader"
    providers: "ProviderSet"
    chat_cache: "ChatCache"
    agent_sessions: "AgentSessions"
    mcp: "McpHub"
