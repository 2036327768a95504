"""MCP both ways, with real processes on 127.0.0.1: the hub against tiny real MCP servers
(stdio and streamable HTTP, crashing and hanging ones), and AI-OS's own MCP server (run_code
on the real sandbox manager, read_file) called by the SDK's own client."""

import asyncio
import multiprocessing
import os
import secrets
import sys
import threading
import time
from pathlib import Path

import httpx
import httpx2
import pytest
from PIL import Image
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from aios.mcp.client import McpHub
from aios.mcp.config import McpConfigError, load_config, parse_config
from aios.tools.base import ToolContext, ToolError

from .stack import API_TOKEN, backend_env, spawn
from .support import free_port, wait_until

FAKES = Path(__file__).resolve().parents[1] / "fakes" / "mcp_servers.py"
UNUSED_REDIS = "redis://127.0.0.1:9/0"  # the served tools never touch Redis


def test_config_errors_name_the_server_and_the_field(tmp_path):
    path = tmp_path / "mcp.json"
    path.write_text('{"mcpServers": {"ok": {"command": "x", "env": {"K": "v"}},'
                    ' "web": {"url": "http://127.0.0.1:1/mcp", "headers": {"A": "b"}}}}')
    config = load_config(str(path))
    assert config.servers["ok"].env == {"K": "v"} and config.servers["web"].transport == "http"
    assert load_config(None).servers == {}
    with pytest.raises(McpConfigError) as bad:
        parse_config({"mcpServers": {"a b": {"command": "x"}, "args": {"command": "x",
                                     "args": "-v"}, "both": {"command": "x", "url": "y"},
                                     "ftp": {"url": "ftp://h"}, "typo": {"comand": "x"}}})
    message = str(bad.value)
    assert "server 'a b': the name must match" in message
    assert "server 'args': field 'args': Input should be a valid list" in message
    assert "server 'both': needs either" in message and "server 'typo': needs either" in message
    assert "server 'ftp': field 'url'" in message
    path.write_text("{not json")
    with pytest.raises(McpConfigError, match="mcp.json: not valid JSON"):
        load_config(str(path))


def fake(mode: str, **extra) -> dict:
    return {"command": sys.executable, "args": [str(FAKES), mode], **extra}


def tool_ctx() -> ToolContext:
    return ToolContext("t-mcp", lambda type_, data: None, threading.Event(), lambda abort: None)


def by_name(hub: McpHub) -> dict:
    return {s["name"]: s for s in hub.status()}


@pytest.fixture(scope="module")
def web_fake():
    """The fake over streamable HTTP; it wants an X-Fake-Key header."""
    port, key = free_port(), "key-" + secrets.token_hex(8)
    service = spawn([sys.executable, str(FAKES), "http", str(port), key], dict(os.environ),
                    "mcp-fake-http")
    url = f"http://127.0.0.1:{port}/mcp"
    wait_until(lambda: _answers(url, service), 30, "the fake HTTP MCP server")
    yield {"url": url, "headers": {"X-Fake-Key": key}}
    service.stop()


def _answers(url: str, service) -> bool:
    assert service.proc.poll() is None, service.log.read_text()
    try:
        return httpx.get(url, timeout=1).status_code == 403
    except httpx.HTTPError:
        return False


@pytest.fixture
def make_hub():
    hubs = []

    def make(servers: dict, **options) -> McpHub:
        hubs.append(McpHub(parse_config({"mcpServers": servers}), **options))
        return hubs[-1]
    yield make
    for hub in hubs:
        hub.close()


def test_hub_lists_and_calls_stdio_and_http_tools(make_hub, web_fake, monkeypatch):
    monkeypatch.setenv("MCP_TEST_NOT_PASSED", "leaked")
    hub = make_hub({"local": fake("stdio", env={"MCP_TEST_SECRET": "s3cret"}),
                    "web": web_fake})
    status = by_name(hub)
    assert {(s["name"], s["transport"], s["state"]) for s in status.values()} == {
        ("local", "stdio", "ready"), ("web", "http", "ready")}
    assert {"name": "add", "agent_name": "mcp__local__add",
            "description": "Add two integers."} in status["local"]["tools"]
    tools = {tool.name: tool for tool in hub.tools()}
    assert {"mcp__local__add", "mcp__local__echo_env", "mcp__web__add"} <= set(tools)
    add = tools["mcp__local__add"]
    assert add.description == "Add two integers."
    assert add.parameters["type"] == "object" and set(add.parameters["required"]) == {"a", "b"}

    assert add.run({"a": 2, "b": 3}, tool_ctx()) == "5"
    assert tools["mcp__web__add"].run({"a": 40, "b": 2}, tool_ctx()) == "42"
    echo = tools["mcp__local__echo_env"]
    assert echo.run({"name": "MCP_TEST_SECRET"}, tool_ctx()) == "s3cret"  # from the config
    assert echo.run({"name": "MCP_TEST_NOT_PASSED"}, tool_ctx()) == "<unset>"
    with pytest.raises(ToolError, match="no good"):
        tools["mcp__local__fail"].run({"message": "no good"}, tool_ctx())
    with pytest.raises(ToolError):
        hub.call("local", "no_such_tool", {})
    assert by_name(hub)["local"]["state"] == "ready"  # a tool's error is not the server's


def test_failing_servers_are_reported_and_the_others_work(make_hub, web_fake):
    hub = make_hub({"local": fake("stdio"), "web": web_fake,
                    "refuses": fake("exit-at-start"),
                    "missing": {"command": "/nonexistent/mcp-server"},
                    "wrongkey": dict(web_fake, headers={"X-Fake-Key": "wrong"})},
                   retry_after_s=600)
    status = by_name(hub)
    assert status["local"]["state"] == status["web"]["state"] == "ready"
    for name in ("refuses", "missing", "wrongkey"):
        assert status[name]["state"] == "failed" and status[name]["tools"] == []
    assert "refusing to start" in status["refuses"]["error"]  # the tail of its stderr
    assert "No such file" in status["missing"]["error"]
    assert status["wrongkey"]["error"]
    assert {t.name.split("__")[1] for t in hub.tools()} == {"local", "web"}
    with pytest.raises(ToolError, match="mcp server refuses is not available: .*refusing"):
        hub.call("refuses", "add", {"a": 1, "b": 1})
    assert hub.call("local", "add", {"a": 1, "b": 1}) == "2"


def test_a_hanging_server_times_out_and_is_reported(make_hub, web_fake):
    hub = make_hub({"local": fake("stdio"), "web": web_fake, "hangs": fake("hang")},
                   connect_timeout_s=6, call_timeout_s=1, retry_after_s=0)
    started = time.monotonic()
    status = by_name(hub)
    assert time.monotonic() - started < 15
    assert status["hangs"] == {"name": "hangs", "transport": "stdio", "state": "failed",
                               "error": "no answer within 6 s while connecting", "tools": []}
    assert status["local"]["state"] == "ready"

    # a call that hangs: the server is reported, the others keep working
    with pytest.raises(ToolError, match="mcp server local is not available: "
                                        "sleep got no answer within 1 s"):
        hub.call("local", "sleep", {"seconds": 30})
    assert hub.call("web", "add", {"a": 1, "b": 2}) == "3"
    assert by_name(hub)["local"]["state"] in ("ready", "failed")  # ready again once restarted
    assert hub.call("local", "add", {"a": 2, "b": 2}) == "4"


def test_a_server_dying_mid_run_is_reported_and_restarted(make_hub, web_fake):
    hub = make_hub({"local": fake("stdio"), "web": web_fake}, retry_after_s=0.5)
    first_pid = int(hub.call("local", "pid", {}))
    with pytest.raises(ToolError, match="mcp server local is not available: "
                                        "the connection closed"):
        hub.call("local", "die", {})
    assert hub.call("web", "add", {"a": 1, "b": 1}) == "2"
    with pytest.raises(ToolError, match="not available"):  # not retried before retry_after_s
        hub.call("local", "add", {"a": 1, "b": 1})
    time.sleep(0.6)
    assert int(hub.call("local", "pid", {})) != first_pid  # restarted on the next use
    assert by_name(hub)["local"]["state"] == "ready"


def test_a_cancelled_call_returns_at_once(make_hub):
    hub = make_hub({"local": fake("stdio")})
    assert hub.call("local", "add", {"a": 1, "b": 1}) == "2"  # connected
    aborts = []  # what the agent's watcher thread calls when the task is cancelled
    ctx = ToolContext("t-mcp", lambda type_, data: None, threading.Event(), aborts.append)
    timer = threading.Timer(0.5, lambda: aborts[-1]())
    timer.start()
    started = time.monotonic()
    with pytest.raises(ToolError, match="cancelled"):
        hub.call("local", "sleep", {"seconds": 30}, ctx)
    timer.join()
    assert time.monotonic() - started < 5
    assert hub.call("local", "add", {"a": 1, "b": 1}) == "2"  # the server was not blamed


def test_close_stops_stdio_servers(make_hub):
    hub = make_hub({"local": fake("stdio")})
    pid = int(hub.call("local", "pid", {}))
    hub.close()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert hub.call("local", "add", {"a": 1, "b": 1}) == "2"  # a later use starts again


def _call_in_child(hub: McpHub, queue) -> None:
    try:
        queue.put(hub.call("local", "pid", {}))
    finally:
        hub.close()


def test_a_forked_child_makes_its_own_sessions(make_hub):
    """As in a Celery prefork child: the parent's loop thread is not there."""
    hub = make_hub({"local": fake("stdio")})
    parent_server = hub.call("local", "pid", {})
    fork = multiprocessing.get_context("fork")
    queue = fork.Queue()
    child = fork.Process(target=_call_in_child, args=(hub, queue))
    child.start()
    child_server = queue.get(timeout=60)
    child.join(30)
    queue.close()
    assert child.exitcode == 0 and child_server != parent_server
    assert hub.call("local", "pid", {}) == parent_server  # the parent's session goes on


def test_a_hub_without_servers_starts_nothing():
    hub = McpHub(parse_config({"mcpServers": {}}))
    assert hub.status() == [] and hub.tools() == []
    assert not [t for t in threading.enumerate() if t.name == "mcp-hub"]
    hub.close()


# --- AI-OS's own tools over MCP -------------------------------------------------------

def served_tools() -> list[str]:
    return ["run_code", "read_file", "browse"]


@pytest.fixture
def files(tmp_path) -> Path:
    root = tmp_path / "files"
    root.mkdir()
    (root / "notes.txt").write_text("the answer is 42\n")
    Image.new("RGB", (8, 8), "red").save(root / "dot.png")
    return root


@pytest.fixture
def aios_env(manager, files) -> dict:
    return backend_env(UNUSED_REDIS, manager, file_roots=str(files),
                       upload_dir=str(files / "uploads"))


def server_argv(*transport: str) -> list[str]:
    return ["-m", "aios.mcp.server", *transport, "--tools", ",".join(served_tools())]


async def exercise(client: Client) -> None:
    listed = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert set(listed) == set(served_tools())
    assert listed["run_code"].input_schema["required"] == ["language", "code"]

    ran = await client.call_tool("run_code", {"language": "python", "code": "print(6 * 7)"})
    assert not ran.is_error, ran
    assert ran.structured_content["exit_code"] == 0
    assert ran.structured_content["stdout"] == "42\n"

    read = await client.call_tool("read_file", {"path": "notes.txt"})
    assert not read.is_error and "the answer is 42" in read.content[0].text
    refused = await client.call_tool("read_file", {"path": "/etc/passwd"})
    assert refused.is_error and "outside_roots" in refused.content[0].text
    # browse's own check, before any browser sandbox is asked for
    local = await client.call_tool("browse", {"url": "http://127.0.0.1:9/"})
    assert local.is_error and "loopback" in local.content[0].text
    image = await client.call_tool("read_file", {"path": "dot.png"})
    assert [part.type for part in image.content] == ["text", "image"]
    assert image.content[1].mime_type == "image/png"


def no_mcp_sandboxes_left(manager) -> None:
    def gone():
        return not [c for c in manager.containers()
                    if c.labels.get("aios.owner", "").startswith("task:mcp-")]
    manager.wait_for(gone, 10, "the MCP calls' sandboxes to be destroyed")


def test_aios_tools_over_stdio(aios_env, files, manager):
    params = StdioServerParameters(command=sys.executable, args=server_argv("--stdio"),
                                   env=aios_env, cwd=str(files.parent))

    async def main():
        async with Client(params) as client:
            await exercise(client)
    asyncio.run(main())
    no_mcp_sandboxes_left(manager)


@pytest.fixture
def aios_http(aios_env):
    port = free_port()
    service = spawn([sys.executable, *server_argv("--http", "--host", "127.0.0.1",
                                                  "--port", str(port))], aios_env, "mcp-aios")
    service.url = f"http://127.0.0.1:{port}/mcp"

    def refusing():
        assert service.proc.poll() is None, service.log.read_text()
        try:
            return httpx.post(service.url, json={}, timeout=1).status_code == 401
        except httpx.HTTPError:
            return False
    wait_until(refusing, 60, "AI-OS's MCP server")
    yield service
    service.stop()


def test_aios_tools_over_http_with_the_token(aios_http, files, manager):
    async def main():
        headers = {"Authorization": f"Bearer {API_TOKEN}"}
        async with httpx2.AsyncClient(headers=headers) as http:
            async with Client(streamable_http_client(aios_http.url, http_client=http)) as client:
                await exercise(client)
    asyncio.run(main())
    no_mcp_sandboxes_left(manager)


def test_aios_http_refuses_without_the_token(aios_http):
    for headers in ({}, {"Authorization": "Bearer wrong-token-0123456789"},
                    {"Authorization": API_TOKEN}):
        refused = httpx.post(aios_http.url, headers=headers, timeout=5,
                             json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
        assert refused.status_code == 401, refused.text
        assert refused.headers["www-authenticate"].startswith("Bearer")

    async def main():
        async with Client(aios_http.url) as client:  # the SDK's client, no token
            await client.list_tools()
    with pytest.raises(Exception) as refused:
        asyncio.run(main())
    assert "Server returned an error response" in repr(refused.value)


def test_the_hub_uses_aios_own_server(make_hub, aios_env, files):
    """Both halves together: AI-OS's tools through the hub, as mcp__aios__*."""
    env = {k: aios_env[k] for k in ("PYTHONPATH", "AIOS_API_TOKEN", "SECRET_KEY",
                                    "SANDBOX_MANAGER_URL", "SANDBOX_MANAGER_TOKEN",
                                    "AIOS_FILE_ROOTS", "AIOS_UPLOAD_DIR")}
    hub = make_hub({"aios": {"command": sys.executable, "args": server_argv("--stdio"),
                             "env": env, "cwd": str(files.parent)}})
    tools = {tool.name: tool for tool in hub.tools()}
    assert {"mcp__aios__run_code", "mcp__aios__read_file"} <= set(tools)
    text = tools["mcp__aios__read_file"].run({"path": "notes.txt"}, tool_ctx())
    assert "the answer is 42" in text
    with pytest.raises(ToolError, match="outside_roots"):
        tools["mcp__aios__read_file"].run({"path": "/etc/passwd"}, tool_ctx())


# --- through the pipeline: GET /api/mcp and an agent that calls an MCP tool ---------------

def test_the_agent_calls_mcp_tools_and_the_web_lists_the_servers(own_stack, manager, tmp_path):
    import json as json_lib

    from ..fakes.llm_server import FakeLLM
    from .stack import TaskListener, rest_client
    config = tmp_path / "mcp.json"
    config.write_text(json_lib.dumps({"mcpServers": {
        "calc": fake("stdio", env={"FAKE_SECRET": "from-config"}),
        "broken": fake("exit-at-start")}}))
    llm = FakeLLM({"mcp": [{"tools": [("mcp__calc__add", {"a": 2, "b": 40}),
                                      ("mcp__calc__echo_env", {"name": "FAKE_SECRET"}),
                                      ("mcp__broken__anything", {})]},
                           {"text": "42"}]}).start()
    try:
        own_stack.environment.update(backend_env(
            own_stack.redis.url, manager, OPENAI_API_KEY="sk-fake-mcp",
            OPENAI_BASE_URL=llm.base_url, AIOS_MCP_CONFIG=str(config)))
        own_stack.worker("w-mcp")
        web = own_stack.web("web-mcp")
        with rest_client(web) as rest:
            servers = {s["name"]: s for s in rest.get("/api/mcp").json()["servers"]}
            assert servers["calc"]["state"] == "ready" and servers["broken"]["state"] == "failed"
            assert "add" in [t["name"] for t in servers["calc"]["tools"]]
            refused = rest.post("/api/tasks", json={"kind": "agent", "input": {
                "goal": "x", "tools": ["mcp__nope__add"]}})
            assert refused.status_code == 422 and "mcp__<server>__<tool> of: broken, calc" \
                in refused.json()["error"]["message"]
        listener = TaskListener(web.url).connect()
        ack = listener.call("task:submit", {"kind": "agent", "input": {
            "goal": "add", "model": "script:mcp",
            "tools": ["mcp__calc__add", "mcp__calc__echo_env"]}})
        assert listener.wait_final(ack["task_id"], 60) == "succeeded"
        results = [e["data"] for e in listener.of(ack["task_id"]) if e["type"] == "tool_result"]
        listener.close()
        assert [(r["output"], r["is_error"]) for r in results[:2]] == [
            ("42", False), ("from-config", False)]
        assert results[2]["is_error"] and "no tool 'mcp__broken__anything'" in results[2]["output"]
    finally:
        llm.stop()
