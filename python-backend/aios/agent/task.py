"""The `agent` task kind: its input, the session around the loop, the result."""

from contextlib import nullcontext

from ..chat import candidates
from ..files.roots import FileRefused
from ..tasks import attachments
from ..tools.registry import build_tools
from ..tools.base import ToolError
from ..tools.run_code import ARTIFACTS
from .loop import AgentLimits, clean_up, run_agent, tool_context
from .sessions import AgentSessions


def agent_task(ctx, task_input: dict, deps, sessions: AgentSessions) -> dict:
    settings = deps.settings
    session_id = task_input.get("session_id")
    messages = task_input.get("messages") or [{"role": "user", "content": task_input["goal"]}]
    tools = build_tools(task_input.get("tools"), deps)
    pairs = candidates(task_input, list(settings.aios_llm_fallback), deps.providers)
    # A task may ask for fewer steps than the operator allows, never more
    limits = AgentLimits(max_steps=min(task_input.get("max_steps", settings.agent_max_steps),
                                       settings.agent_max_steps),
                         max_seconds=settings.agent_max_seconds,
                         max_tokens=settings.agent_max_tokens)
    hold = sessions.running(session_id, ctx.task_id, ctx.attempt, settings.agent_max_seconds) \
        if session_id else nullcontext()
    tool_ctx = tool_context(ctx, session_id)
    with hold:
        history = sessions.load(session_id) if session_id else []
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


def _attach(ctx, tool_ctx, tools: list, paths, deps) -> list:
    """The task's attachments, in the run_code sandbox before the first model call."""
    if not paths:
        return []
    from ..tasks.runner import TaskFailed
    run_code = next((t for t in tools if t.name == "run_code"), None)
    if run_code is None:
        raise TaskFailed("invalid_request", "attachments go into the run_code sandbox: "
                                            "enable run_code")
    try:
        attached = attachments.load(deps.files, paths, deps.settings.aios_upload_dir)
    except FileRefused as exc:
        raise TaskFailed("bad_attachment", str(exc)) from exc
    try:
        run_code.attach(tool_ctx, attached)
    except ToolError as exc:
        raise TaskFailed("sandbox_error", str(exc)) from exc
    ctx.emit("log", {"text": "attached: " + ", ".join(a.describe() for a in attached) + "\n"})
    return attached


def with_note(messages: list[dict], note: str) -> list[dict]:
    """The messages with a note as a text part of its own after the last user message's."""
    last = max(i for i, m in enumerate(messages) if m["role"] == "user")
    content = messages[last]["content"]
    parts = [{"type": "text", "text": content}] if isinstance(content, str) else list(content)
    message = dict(messages[last], content=[*parts, {"type": "text", "text": f"[{note}]"}])
    return [*messages[:last], message, *messages[last + 1:]]
