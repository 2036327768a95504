"""The OpenAI chat-completions protocol, on the official SDKs that share its shape: `openai`
(OpenAI itself, and any OpenAI-compatible server by base URL: Ollama, vLLM, LM Studio,
llama.cpp) and `groq`."""

import json
from typing import Iterator, Optional

from ..netutil import shut_down
from .base import (AuthenticationFailed, BadRequest, ChatRequest, ContextTooLong, Finish,
                   ProviderError, ProviderTimeout, ProviderUnavailable, RateLimited,
                   StreamEvent, TextDelta, ToolCall, Usage)


class OpenAIChat:
    """`sdk` is the SDK module (its exception classes), `client` its client, built with
    max_retries=0: retries are ours, one policy for every provider."""

    def __init__(self, name: str, sdk, client, default_model: str, models: list[str],
                 usage_option: bool = True):
        self.name = name
        self.sdk = sdk
        self.client = client
        self.default_model = default_model
        self.models = models
        self.usage_option = usage_option  # Groq reports usage in x_groq without asking

    def stream(self, request: ChatRequest, on_open=None) -> Iterator[StreamEvent]:
        try:
            stream = self.client.chat.completions.create(**self._arguments(request))
            if on_open:
                on_open(lambda: shut_down(stream.response))
            yield from self._events(stream)
        except self.sdk.APIError as exc:
            raise self._error(exc) from exc
        except ProviderError:
            raise
        except Exception as exc:  # noqa: BLE001 - a transport failure mid-stream
            # httpx and httpx2 raise their own ReadTimeout mid-stream, unwrapped by the SDK
            failure = ProviderTimeout if _is_timeout(exc) else ProviderUnavailable
            raise failure(f"{self.name}: stream failed: {exc!r}", self.name) from exc

    def _arguments(self, request: ChatRequest) -> dict:
        arguments = {"model": request.model, "messages": request.messages, "stream": True}
        if self.usage_option:
            arguments["stream_options"] = {"include_usage": True}
        if request.tools:
            arguments["tools"] = [{"type": "function", "function": tool} for tool in request.tools]
        if request.temperature is not None:
            arguments["temperature"] = request.temperature
        if request.max_tokens is not None:
            arguments["max_tokens"] = request.max_tokens
        return arguments

    def _events(self, stream) -> Iterator[StreamEvent]:
        calls: dict[int, dict] = {}
        finish = None
        for chunk in stream:
            usage = chunk.usage or getattr(getattr(chunk, "x_groq", None), "usage", None)
            if usage:  # OpenAI: a last chunk with empty choices; Groq: x_groq.usage
                yield Usage(usage.prompt_tokens, usage.completion_tokens)
            for choice in chunk.choices:
                if choice.delta.content:
                    yield TextDelta(choice.delta.content)
                for fragment in choice.delta.tool_calls or []:
                    call = calls.setdefault(fragment.index, {"id": "", "name": "", "args": ""})
                    call["id"] = fragment.id or call["id"]
                    if fragment.function:
                        call["name"] = fragment.function.name or call["name"]
                        call["args"] += fragment.function.arguments or ""
                finish = choice.finish_reason or finish
        if finish is None:
            raise ProviderUnavailable(f"{self.name}: the stream ended before it finished",
                                      self.name)
        for index in sorted(calls):
            yield self._tool_call(calls[index])
        yield Finish(finish)

    def _tool_call(self, call: dict) -> ToolCall:
        try:
            arguments = json.loads(call["args"] or "{}")
        except json.JSONDecodeError as exc:
            raise ProviderUnavailable(f"{self.name}: tool call {call['name']!r} has arguments "
                                      "that are not JSON", self.name) from exc
        return ToolCall(call["id"], call["name"], arguments)

    def _error(self, exc) -> ProviderError:
        sdk, name = self.sdk, self.name
        message = f"{name}: {getattr(exc, 'message', exc)}"
        if isinstance(exc, (sdk.AuthenticationError, sdk.PermissionDeniedError)):
            return AuthenticationFailed(message, name)
        if isinstance(exc, sdk.RateLimitError):
            retry_after = exc.response.headers.get("retry-after")
            return RateLimited(message, name, float(retry_after) if retry_after else None)
        if isinstance(exc, sdk.APITimeoutError):
            return ProviderTimeout(message, name)
        if isinstance(exc, sdk.APIStatusError) and exc.status_code < 500:
            if "context_length" in str(exc.body) or "context length" in message:
                return ContextTooLong(message, name)
            return BadRequest(message, name)
        return ProviderUnavailable(message, name)

    def close(self) -> None:
        self.client.close()


def _is_timeout(exc: BaseException) -> bool:
    return any("Timeout" in cls.__name__ for cls in type(exc).__mro__)
