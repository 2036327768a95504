"""Calling a model: which (provider, model) pairs to try, one answer streamed as `token`
events, retries before the first token (honouring retry-after), and falling back to the
next pair. The chat kind and the agent loop both call models through it.

`ctx` is the run's context as the task pipeline hands it: `emit(type, data)`, `cancelled`
(an Event), `pause(seconds) -> bool` (True when cancelled meanwhile), `on_cancel(close)`."""

from typing import Callable

from .base import ChatRequest, Finish, ProviderError, TextDelta, ToolCall, Usage
from .registry import ProviderSet


def candidates(task_input: dict, fallback: list[str], providers: ProviderSet) -> list:
    """(provider, model) pairs to try in order: the task's own choice, else the configured
    fallback list, else the first configured provider."""
    if task_input.get("provider") or task_input.get("model") or not fallback:
        provider = providers.get(task_input.get("provider"))
        return [(provider, task_input.get("model") or provider.default_model)]
    pairs = []
    for entry in fallback:
        name, _, model = entry.partition(":")
        provider = providers.get(name)
        pairs.append((provider, task_input.get("model") or model or provider.default_model))
    return pairs


def with_fallback(ctx, pairs: list, answer_with: Callable) -> dict:
    """answer_with(provider, model) for each pair in turn, while the failure is retryable
    and came before the first token."""
    for index, (provider, model) in enumerate(pairs):
        try:
            return answer_with(provider, model)
        except ProviderError as exc:
            last_pair = index == len(pairs) - 1
            if last_pair or not exc.retryable or exc.after_first_token or ctx.cancelled.is_set():
                raise
            ctx.emit("log", {"text": f"{provider.name}/{model} failed ({exc.code}): "
                                     "trying the next provider\n"})
    raise AssertionError("no candidate pairs")  # candidates() always gives one at least


MAX_RETRY_AFTER_S = 60.0  # a provider that asks to wait longer is given up on (next pair)


def stream_answer(ctx, request: ChatRequest, provider, max_retries: int) -> dict:
    """One answer of one provider, its text streamed as `token` events; retried while
    nothing was streamed yet. A wait before a retry ends at once on a cancel or a deadline."""
    for attempt in range(max_retries + 1):
        parts, answer = [], {"usage": None, "finish_reason": None, "tool_calls": []}
        try:
            for event in provider.stream(request, on_open=ctx.on_cancel):
                if isinstance(event, TextDelta):
                    parts.append(event.text)
                    ctx.emit("token", {"text": event.text})  # joined by the task's output
                elif isinstance(event, Usage):
                    answer["usage"] = {"input_tokens": event.input_tokens,
                                       "output_tokens": event.output_tokens}
                elif isinstance(event, ToolCall):
                    answer["tool_calls"].append(vars(event))
                elif isinstance(event, Finish):
                    answer["finish_reason"] = event.reason
        except ProviderError as exc:
            exc.after_first_token = bool(parts)
            if parts or not exc.retryable or attempt == max_retries or ctx.cancelled.is_set():
                raise
            wait = getattr(exc, "retry_after_s", None) or min(2 ** attempt, 8)
            if wait > MAX_RETRY_AFTER_S:
                raise
            ctx.emit("log", {"text": f"{provider.name}: {exc}; retrying in {wait:g} s\n"})
            if ctx.pause(wait):
                raise
            continue
        return {"text": "".join(parts), "usage": answer["usage"], "provider": provider.name,
                "model": request.model, "finish_reason": answer["finish_reason"],
                **({"tool_calls": answer["tool_calls"]} if answer["tool_calls"] else {})}
    raise AssertionError("unreachable: the last attempt returns or raises")
