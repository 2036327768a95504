"""The `agent` task kind: its input, the session around the loop, the result."""

from contextlib import nullcontext

from ..chat import candidates
from ..tools.registry import build_tools
from .loop import AgentLimits, run_agent
from .sessions import AgentSessions


def agent_task(ctx, task_input: dict, deps, sessions: AgentSessions) -> dict:
    settings = deps.settings
    session_id = task_input.get("session_id")
    messages = task_input.get("messages") or [{"role": "user", "content": task_input["goal"]}]
    tools = build_tools(task_input.get("tools"), deps)
    pairs = candidates(task_input, list(settings.aios_llm_fallback), deps.providers)
    limits = AgentLimits(max_steps=task_input.get("max_steps", settings.agent_max_steps),
                         max_seconds=settings.agent_max_seconds,
                         max_tokens=settings.agent_max_tokens)
    hold = sessions.running(session_id, ctx.task_id, settings.agent_max_seconds) \
        if session_id else nullcontext()
    with hold:
        history = sessions.load(session_id) if session_id else []
        result = run_agent(ctx, history + messages, pairs, tools, limits,
                           settings.llm_max_retries,
                           {k: task_input[k] for k in ("temperature", "max_tokens")
                            if k in task_input})
        conversation = result.pop("messages")
        if session_id:
            sessions.save(session_id, conversation)
    return dict(result, **({"session_id": session_id} if session_id else {}))
