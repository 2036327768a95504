"""`agent`: a model that uses tools (run_code, browse, files, MCP) over several steps, in a
conversation that may go on in later tasks (a session: its messages and its sandbox)."""

from contextlib import nullcontext
from typing import Optional

from pydantic import Field, ValidationInfo, field_validator, model_validator

from ..approvals.gate import ApprovalGate
from ..approvals.policy import Policy, check_rules
from ..approvals.store import Approvals
from ..approvals.taint import mark_user_data
from ..deps import Deps
from ..agent.loop import AgentLimits, Stopped, clean_up, run_agent, tool_context
from ..agent.sessions import SessionBusy
from ..providers.base import ProviderError
from ..providers.engine import candidates
from ..sandbox import attachments
from ..tasks.context import RunContext
from ..tasks.errors import Cancelled, TaskFailed, failed
from ..tasks.kind import Kind, TaskInput
from ..tools.base import ToolError
from ..tools.registry import MCP_PREFIX, TOOLS, build_tools
from ..tools.run_code import ARTIFACTS
from .attachments import SandboxAttachments, announce, load_for_sandbox
from .chat import ChatMessage


class AgentInput(SandboxAttachments, TaskInput):
    goal: Optional[str] = Field(default=None, min_length=1)
    messages: Optional[list[ChatMessage]] = Field(default=None, min_length=1)
    provider: Optional[str] = None
    model: Optional[str] = None
    tools: Optional[list[str]] = None  # default: every built-in tool
    max_steps: Optional[int] = Field(default=None, ge=1, le=100)
    session_id: Optional[str] = Field(default=None, pattern=r"^[A-Za-z0-9_-]{8,64}$")
    temperature: Optional[float] = Field(default=None, ge=0, le=2)
    max_tokens: Optional[int] = Field(default=None, gt=0)
    # {tool or glob: auto|ask|deny}: stricter than the operator's only (looser: refused)
    tool_policy: Optional[dict[str, str]] = None

    @field_validator("tool_policy")
    @classmethod
    def _only_stricter(cls, rules: Optional[dict], info: ValidationInfo) -> Optional[dict]:
        if rules is None:  # given as null: as if left out
            return None
        rules = check_rules(rules)
        operator = (info.context or {}).get("tool_policy")
        looser = Policy(operator).widening(rules) if operator is not None else []
        if looser:
            raise ValueError(f"a task's tool_policy may only be stricter than the "
                             f"operator's: {', '.join(looser)}")
        return rules

    @field_validator("tools")
    @classmethod
    def _known_tools(cls, names: Optional[list[str]], info: ValidationInfo):
        if names is None:  # given as null: every built-in tool, as if left out
            return None
        # MCP tools (mcp__<server>__<tool>) are known to the workers that connect to their
        # servers; here the server must at least be configured (when the web says which are)
        servers = (info.context or {}).get("mcp_servers")

        def known(name: str) -> bool:
            if not name.startswith(MCP_PREFIX):
                return name in TOOLS.names()
            return servers is None or name[len(MCP_PREFIX):].split("__", 1)[0] in servers
        unknown = [n for n in names if not known(n)]
        if unknown:
            mcp = f", and mcp__<server>__<tool> of: {', '.join(servers)}" if servers else ""
            raise ValueError(f"unknown tools {unknown}; available: {', '.join(TOOLS.names())}{mcp}")
        return names

    @model_validator(mode="after")
    def _goal_or_messages(self) -> "AgentInput":
        if (self.goal is None) == (self.messages is None):
            raise ValueError("give either `goal` (a string) or `messages`, not both")
        if self.attachments and self.tools is not None and "run_code" not in self.tools:
            raise ValueError("attachments go into the run_code sandbox: enable run_code")
        return self


def run(ctx: RunContext, task_input: dict, deps: Deps) -> dict:
    try:
        return _run(ctx, task_input, deps)
    except Stopped as exc:
        raise Cancelled() from exc
    except SessionBusy as exc:
        raise TaskFailed("session_busy", str(exc)) from exc
    except KeyError as exc:  # an unknown tool name (the web checks too)
        raise TaskFailed("invalid_request", str(exc.args[0])) from exc
    except ProviderError as exc:
        raise failed(ctx, exc, exc.code) from exc


def _run(ctx: RunContext, task_input: dict, deps: Deps) -> dict:
    settings, sessions = deps.settings, deps.agent_sessions
    session_id = task_input.get("session_id")
    messages = task_input.get("messages") or [{"role": "user", "content": task_input["goal"]}]
    tools = build_tools(task_input.get("tools"), deps)
    pairs = candidates(task_input, list(settings.llm_fallback), deps.providers)
    # A task may ask for fewer steps than the operator allows, never more
    limits = AgentLimits(max_steps=min(task_input.get("max_steps", settings.agent_max_steps),
                                       settings.agent_max_steps),
                         max_seconds=settings.agent_max_seconds,
                         max_tokens=settings.agent_max_tokens)
    hold = sessions.running(session_id, ctx.task_id, ctx.attempt, settings.agent_max_seconds) \
        if session_id else nullcontext()
    policy = Policy(settings.tool_policy).narrowed(task_input.get("tool_policy") or {})
    tool_ctx = tool_context(ctx, session_id, policy,
                            ApprovalGate(Approvals(deps.redis), settings.approval_timeout_s))
    with hold:
        history = sessions.load(session_id) if session_id else []
        if any(m.get("role") == "tool" and m.get("name") in USER_DATA_TOOLS for m in history):
            mark_user_data(tool_ctx, "files read earlier in this conversation")
        try:
            attached = _attach(ctx, tool_ctx, tools, task_input.get("attachments"), deps)
        except BaseException:
            clean_up(tool_ctx)
            raise
        if attached:
            messages = with_note(messages, attachments.note_for_model(attached))
        result = run_agent(ctx, history + messages, pairs, tools, limits,
                           settings.llm_max_retries,
                           {k: task_input[k] for k in ("temperature", "max_tokens")
                            if k in task_input}, tool_ctx)
        conversation = result.pop("messages")
        if session_id:
            sessions.save(session_id, conversation)
    result["artifacts"] = tool_ctx.state.get(ARTIFACTS, [])
    if attached:
        result["attachments"] = [a.listed() for a in attached]
    return dict(result, **({"session_id": session_id} if session_id else {}))


def _attach(ctx: RunContext, tool_ctx, tools: list, paths, deps: Deps) -> list:
    """The task's attachments, in the run_code sandbox before the first model call."""
    if not paths:
        return []
    run_code = next((t for t in tools if t.name == "run_code"), None)
    if run_code is None:
        raise TaskFailed("invalid_request", "attachments go into the run_code sandbox: "
                                            "enable run_code")
    attached = load_for_sandbox(deps, paths)
    try:
        run_code.attach(tool_ctx, attached)
    except ToolError as exc:
        raise TaskFailed("sandbox_error", str(exc)) from exc
    announce(ctx, attached)
    for each in attached:
        mark_user_data(tool_ctx, f"the attachment {each.name}")
    return attached


USER_DATA_TOOLS = ("read_file", "list_files", "copy_to_sandbox")  # their results: user data


def with_note(messages: list[dict], note: str) -> list[dict]:
    """The messages with a note as a text part of its own after the last user message's."""
    last = max(i for i, m in enumerate(messages) if m["role"] == "user")
    content = messages[last]["content"]
    parts = [{"type": "text", "text": content}] if isinstance(content, str) else list(content)
    message = dict(messages[last], content=[*parts, {"type": "text", "text": f"[{note}]"}])
    return [*messages[:last], message, *messages[last + 1:]]


KIND = Kind(AgentInput, run)
