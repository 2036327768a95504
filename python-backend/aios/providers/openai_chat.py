"""The OpenAI chat-completions protocol on the official `openai` SDK: OpenAI itself and any
OpenAI-compatible server (Ollama, vLLM, LM Studio, llama.cpp) by base URL."""

import json
from typing import Iterator, Optional

import openai

from ..netutil import shut_down
from .base import (AuthenticationFailed, BadRequest, ChatRequest, ContextTooLong, Finish,
                   ProviderError, ProviderTimeout, ProviderUnavailable, RateLimited,
                   StreamEvent, TextDelta, ToolCall, Usage)


class OpenAIChat:
    def __init__(self, name: str, api_key: Optional[str], base_url: Optional[str],
                 default_model: str, models: list[str], timeout_s: float):
        self.name = name
        self.default_model = default_model
        self.models = models
        # Retries are ours (one policy for every provider), so the SDK makes none.
        self.client = openai.OpenAI(api_key=api_key or "unused", base_url=base_url,
                                    timeout=timeout_s, max_retries=0)

    def stream(self, request: ChatRequest, on_open=None) -> Iterator[StreamEvent]:
        try:
            stream = self.client.chat.completions.create(**self._arguments(request))
            if on_open:
                on_open(lambda: shut_down(stream.response))
            yield from self._events(stream)
        except openai.APIError as exc:
            raise self._error(exc) from exc
        except ProviderError:
            raise
        except Exception as exc:  # noqa: BLE001 - a transport failure mid-stream
            raise ProviderUnavailable(f"{self.name}: stream failed: {exc}", self.name) from exc

    def _arguments(self, request: ChatRequest) -> dict:
        arguments = {"model": request.model, "messages": request.messages, "stream": True,
                     "stream_options": {"include_usage": True}}
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
            if chunk.usage:  # the last chunk, with empty choices, when include_usage is on
                yield Usage(chunk.usage.prompt_tokens, chunk.usage.completion_tokens)
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

    def _error(self, exc: openai.APIError) -> ProviderError:
        name, message = self.name, f"{self.name}: {exc.message if hasattr(exc, 'message') else exc}"
        if isinstance(exc, (openai.AuthenticationError, openai.PermissionDeniedError)):
            return AuthenticationFailed(message, name)
        if isinstance(exc, openai.RateLimitError):
            retry_after = exc.response.headers.get("retry-after")
            return RateLimited(message, name, float(retry_after) if retry_after else None)
        if isinstance(exc, openai.APITimeoutError):
            return ProviderTimeout(message, name)
        if isinstance(exc, openai.APIStatusError) and exc.status_code < 500:
            if "context_length" in str(exc.body) or "context length" in message:
                return ContextTooLong(message, name)
            return BadRequest(message, name)
        return ProviderUnavailable(message, name)

    def close(self) -> None:
        self.client.close()
