"""The MCP servers AI-OS connects to, from a JSON file in the common format:
{"mcpServers": {name: {"command", "args"?, "env"?, "cwd"?} | {"url", "headers"?}}}."""

import json
import os
import re
from typing import ClassVar, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError

CONFIG_ENV = "AIOS_MCP_CONFIG"
NAME = re.compile(r"[A-Za-z0-9_-]{1,32}")


class McpConfigError(ValueError):
    """A bad config file: the message names the file, the server and the field."""


class StdioServer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Optional[Literal["stdio"]] = None
    command: str = Field(min_length=1)
    args: list[str] = Field(default_factory=list)
    # The child gets only HOME, PATH, SHELL, TERM, USER, LOGNAME besides these
    env: dict[str, str] = Field(default_factory=dict)
    cwd: Optional[str] = None

    transport: ClassVar[str] = "stdio"


class HttpServer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Optional[Literal["http", "streamable-http", "streamableHttp"]] = None
    url: str = Field(pattern=r"^https?://\S+$")
    headers: dict[str, str] = Field(default_factory=dict)

    transport: ClassVar[str] = "http"


ServerConfig = Union[StdioServer, HttpServer]


class McpConfig(BaseModel):
    servers: dict[str, ServerConfig] = Field(default_factory=dict)


def config_path_from_env(environ=os.environ) -> Optional[str]:
    return environ.get(CONFIG_ENV) or None


def load_config(path: Optional[str]) -> McpConfig:
    """The servers of the file at path; no path, no servers."""
    if not path:
        return McpConfig()
    try:
        with open(path, encoding="utf-8") as file:
            data = json.load(file)
    except OSError as exc:
        raise McpConfigError(f"MCP config {path}: cannot read it: {exc.strerror}") from None
    except ValueError as exc:
        raise McpConfigError(f"MCP config {path}: not valid JSON: {exc}") from None
    return parse_config(data, source=f"MCP config {path}")


def parse_config(data, source: str = "MCP config") -> McpConfig:
    servers = data.get("mcpServers") if isinstance(data, dict) else None
    if not isinstance(servers, dict):
        raise McpConfigError(f'{source}: needs an object "mcpServers": {{name: server}}')
    parsed, problems = {}, []
    for name, raw in servers.items():
        try:
            parsed[name] = _server(name, raw)
        except McpConfigError as exc:
            problems.append(f"  {exc}")
    if problems:
        raise McpConfigError(f"{source}:\n" + "\n".join(problems))
    return McpConfig(servers=parsed)


def _server(name: str, raw) -> ServerConfig:
    if not NAME.fullmatch(name):
        raise McpConfigError(f"server {name!r}: the name must match ^[A-Za-z0-9_-]{{1,32}}$")
    if not isinstance(raw, dict) or ("command" in raw) == ("url" in raw):
        raise McpConfigError(f"server {name!r}: needs either \"command\" (stdio) or \"url\" "
                             "(streamable HTTP)")
    model = StdioServer if "command" in raw else HttpServer
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        fields = "; ".join(f"field {'.'.join(str(p) for p in e['loc'])!r}: {e['msg']}"
                           for e in exc.errors())
        raise McpConfigError(f"server {name!r}: {fields}") from None
