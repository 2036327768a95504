"""What every adapter does around its SDK's stream: abort on cancel, one error family."""

import json
from typing import Callable, Iterator, Optional

from ..netutil import shut_down
from .base import (ChatRequest, ProviderError, ProviderTimeout, ProviderUnavailable,
                   StreamEvent, ToolCall)


def guarded_stream(name: str, open_stream: Callable, read: Callable[..., Iterator[StreamEvent]],
                   sdk_error: type, map_error: Callable[[Exception], ProviderError],
                   on_open=None) -> Iterator[StreamEvent]:
    """Opens the SDK's stream, hands on_open an abort for other threads, and turns every
    failure (the SDK's, or the transport's mid-stream) into a ProviderError."""
    try:
        stream = open_stream()
        if on_open:
            on_open(lambda: shut_down(stream.response))
        yield from read(stream)
    except sdk_error as exc:
        raise map_error(exc) from exc
    except ProviderError:
        raise
    except Exception as exc:  # noqa: BLE001 - httpx/httpx2 errors the SDK lets through
        failure = ProviderTimeout if is_timeout(exc) else ProviderUnavailable
        raise failure(f"{name}: stream failed: {exc!r}", name) from exc


def openai_style_options(request: ChatRequest) -> dict:
    """Tools, temperature and max_tokens as the chat-completions shape (OpenAI, Groq,
    Mistral) spells them."""
    options = {}
    if request.tools:
        options["tools"] = [{"type": "function", "function": tool} for tool in request.tools]
    if request.temperature is not None:
        options["temperature"] = request.temperature
    if request.max_tokens is not None:
        options["max_tokens"] = request.max_tokens
    return options


def is_timeout(exc: BaseException) -> bool:
    """httpx and httpx2 raise their own ReadTimeout mid-stream, unwrapped by the SDKs."""
    return any("Timeout" in cls.__name__ for cls in type(exc).__mro__) \
        or "timed out" in str(exc)


def tool_call(provider: str, call_id: str, name: str, arguments: str) -> ToolCall:
    try:
        return ToolCall(call_id, name, json.loads(arguments or "{}"))
    except json.JSONDecodeError as exc:
        raise ProviderUnavailable(f"{provider}: tool call {name!r} has arguments that are not "
                                  "JSON", provider) from exc


def retry_after(headers) -> Optional[float]:
    value = headers.get("retry-after")
    try:
        return float(value) if value else None
    except ValueError:
        return None  # an HTTP date: let the retry policy's backoff decide
