"""The agent loop: call the model with the enabled tools, run what it asks for, feed the
results back, until it answers without tools or a limit (steps, wall time, tokens) is hit."""

import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import Optional

from ..providers.engine import stream_answer, with_fallback
from ..providers.base import ChatRequest
from ..tasks.events import LostOwnership
from ..tools.base import Tool, ToolContext, ToolError, ToolOutput, spec
from ..tools.sandbox import SANDBOX

log = logging.getLogger(__name__)


@dataclass
class AgentLimits:
    max_steps: int
    max_seconds: float
    max_tokens: int


class Stopped(Exception):
    """The run was cancelled (the caller turns it into the `cancelled` status)."""


def run_agent(ctx, messages: list[dict], pairs: list, tools: list[Tool], limits: AgentLimits,
              max_retries: int, options: Optional[dict] = None,
              tool_ctx: Optional[ToolContext] = None) -> dict:
    """Returns {text, steps, usage, provider, model, finish_reason, stopped?} and the whole
    conversation (for the session) as `messages`. ctx is the task's RunContext; tool_ctx
    what the tools share (its cleanups run when the loop ends, however it ends)."""
    by_name = {tool.name: tool for tool in tools}
    tool_ctx = tool_ctx or tool_context(ctx)
    conversation = list(messages)
    steps, usage = [], {"input_tokens": 0, "output_tokens": 0}
    deadline = Deadline(limits.max_seconds, ctx)
    tool_ctx.ends_at = time.monotonic() + limits.max_seconds  # approvals wait no longer
    answer, stopped = None, None
    try:
        for step in range(1, limits.max_steps + 1):
            answer = _model_turn(ctx, conversation, pairs, tools, max_retries, options or {})
            pairs = [(p, m) for p, m in pairs if p.name == answer["provider"]
                     and m == answer["model"]] or pairs  # the run keeps the pair that answered
            for key in usage:
                usage[key] += (answer.get("usage") or {}).get(key, 0)
            calls = answer.get("tool_calls", [])
            conversation.append({"role": "assistant", "content": answer["text"],
                                 **({"tool_calls": calls} if calls else {})})
            steps.append({"step": step, "text": answer["text"], "tool_calls": []})
            if not calls:
                break
            media: list[dict] = []
            for index, call in enumerate(calls):
                try:
                    _check(ctx)
                    output, is_error = _run_tool(by_name, call, tool_ctx, ctx, media)
                except DeadlineReached:
                    # Every call gets its result, or the conversation cannot go on later
                    for skipped in calls[index:]:
                        conversation.append(_tool_message(skipped, NOT_RUN, True))
                    raise
                steps[-1]["tool_calls"].append(dict(call, output=output, is_error=is_error))
                conversation.append(_tool_message(call, output, is_error))
            if media:  # what tools read (images, PDFs) follows their results, for the model
                conversation.append({"role": "user", "content": [
                    {"type": "text", "text": "(the files the tools read)"}, *media]})
            if usage["input_tokens"] + usage["output_tokens"] >= limits.max_tokens:
                stopped = "max_tokens"
                break
            _check(ctx)
        else:
            stopped = "max_steps"
    except DeadlineReached:
        stopped = "max_seconds"
    finally:
        deadline.cancel()
        clean_up(tool_ctx)
    if stopped:
        ctx.emit("log", {"text": f"agent stopped: {LIMIT_TEXT[stopped]}\n"})
    return {"text": answer["text"] if answer else "",
            "steps": steps, "usage": usage,
            "provider": answer["provider"] if answer else None,
            "model": answer["model"] if answer else None,
            "finish_reason": answer["finish_reason"] if answer and not stopped else stopped,
            **({"stopped": stopped} if stopped else {}),
            "messages": conversation}


NOT_RUN = "not run: the agent ran out of time"


def _tool_message(call: dict, output: str, is_error: bool) -> dict:
    return {"role": "tool", "tool_call_id": call["id"], "name": call["name"],
            "content": output, "is_error": is_error}


LIMIT_TEXT = {"max_steps": "it reached its maximum number of steps",
              "max_seconds": "it ran out of time",
              "max_tokens": "it used up its token budget"}


def _model_turn(ctx, conversation, pairs, tools, max_retries, options) -> dict:
    def answer_with(provider, model):
        request = ChatRequest(model=model, messages=conversation,
                              tools=[spec(tool) for tool in tools],
                              temperature=options.get("temperature"),
                              max_tokens=options.get("max_tokens"))
        return stream_answer(ctx, request, provider, max_retries)
    try:
        return with_fallback(ctx, pairs, answer_with)
    except Exception:
        if ctx.deadline_reached:
            raise DeadlineReached() from None
        raise


def _run_tool(by_name: dict, call: dict, tool_ctx: ToolContext, ctx,
              media: list) -> tuple[str, bool]:
    ctx.emit("tool_call", {"id": call["id"], "name": call["name"],
                           "arguments": call["arguments"]})
    tool = by_name.get(call["name"])
    ctx.on_cancel(lambda: None)  # a tool that blocks registers its own abort
    try:
        if tool is None:
            raise ToolError(f"there is no tool {call['name']!r}; the tools are: "
                            f"{', '.join(by_name) or 'none'}")
        tool_ctx.call_id, tool_ctx.call_arguments = call["id"], call["arguments"]
        # the tool's own level first (deny, or the user's say); its variants it asks itself
        tool_ctx.approve(call["name"], f"the policy asks before each {call['name']} call")
        result = tool.run(call["arguments"], tool_ctx)
        if isinstance(result, ToolOutput):
            media += result.parts
            result = result.text
        output, is_error = result if isinstance(result, str) else json.dumps(result), False
    except ToolError as exc:
        output, is_error = str(exc), True
    except Exception as exc:  # noqa: BLE001 - a broken tool must not end the run
        log.exception("tool %s failed", call["name"],  # its sandbox, if it has one
                      extra={"sandbox_id": tool_ctx.state[SANDBOX]} if SANDBOX in tool_ctx.state
                      else None)
        output, is_error = f"the tool failed unexpectedly: {type(exc).__name__}: {exc}", True
    _check(ctx)
    ctx.emit("tool_result", {"id": call["id"], "name": call["name"], "output": output,
                             "is_error": is_error})
    return output, is_error


def _check(ctx) -> None:
    """Between steps and calls: a cancel, the loss of the task or the wall-time limit ends
    the loop here."""
    if ctx.lost.is_set():
        raise LostOwnership(f"task {ctx.task_id}: another attempt owns it")
    if ctx.cancelled.is_set():
        raise Stopped()
    if ctx.deadline_reached:
        raise DeadlineReached()


def tool_context(ctx, session_id: Optional[str] = None, policy=None,
                 gate=None) -> ToolContext:
    """What the run's tools share; `policy` and `gate` (approvals/) decide what needs the
    user's say and ask for it (without a gate, `ask` is `deny`)."""
    return ToolContext(ctx.task_id, ctx.emit, ctx.cancelled, ctx.on_cancel,
                       session_id=session_id, pause=ctx.pause, policy=policy, gate=gate)


def clean_up(tool_ctx: ToolContext) -> None:
    for cleanup in reversed(tool_ctx.cleanups):
        try:
            cleanup()
        except Exception:  # noqa: BLE001 - the others still run; the reaper is the backstop
            log.warning("agent cleanup failed", exc_info=True)


class DeadlineReached(Exception):
    pass


class Deadline:
    """At the wall-time limit, interrupts whatever blocks (a model stream, a sandbox run)
    the way a cancel does, but the run ends as stopped, not cancelled."""

    def __init__(self, seconds: float, ctx):
        self.ctx = ctx
        self.timer = threading.Timer(seconds, self._reached)
        self.timer.daemon = True
        self.timer.start()

    def _reached(self) -> None:
        self.ctx.deadline_reached = True
        self.ctx.interrupt()

    def cancel(self) -> None:
        self.timer.cancel()
