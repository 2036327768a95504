"""Mistral's chat API on the official `mistralai` SDK (which retries nothing by default and
reports every HTTP error as one error class with a status code)."""

import json
from typing import Iterator

from ..netutil import shut_down
from .base import (AuthenticationFailed, BadRequest, ChatRequest, ContextTooLong, Finish,
                   ProviderError, ProviderTimeout, ProviderUnavailable, RateLimited,
                   StreamEvent, TextDelta, ToolCall, Usage)
from .openai_chat import _is_timeout


class MistralChat:
    def __init__(self, errors, client, default_model: str, models: list[str]):
        self.name = "mistral"
        self.errors = errors  # mistralai.client.errors
        self.client = client
        self.default_model = default_model
        self.models = models

    def stream(self, request: ChatRequest, on_open=None) -> Iterator[StreamEvent]:
        try:
            stream = self.client.chat.stream(**self._arguments(request))
            if on_open:
                on_open(lambda: shut_down(stream.response))
            yield from self._events(stream)
        except self.errors.MistralError as exc:
            raise self._error(exc) from exc
        except ProviderError:
            raise
        except Exception as exc:  # noqa: BLE001 - transport failures, NoResponseError
            failure = ProviderTimeout if _is_timeout(exc) or "timed out" in str(exc) \
                else ProviderUnavailable
            raise failure(f"mistral: stream failed: {exc!r}", self.name) from exc

    @staticmethod
    def _arguments(request: ChatRequest) -> dict:
        arguments = {"model": request.model, "messages": request.messages}
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
        for event in stream:
            chunk = event.data
            if chunk.usage:
                yield Usage(chunk.usage.prompt_tokens or 0, chunk.usage.completion_tokens or 0)
            for choice in chunk.choices:
                content = choice.delta.content
                if isinstance(content, str) and content:
                    yield TextDelta(content)
                for fragment in choice.delta.tool_calls or []:
                    call = calls.setdefault(fragment.index or 0, {"id": "", "name": "", "args": ""})
                    if fragment.id and fragment.id != "null":  # the SDK's default for "absent"
                        call["id"] = fragment.id
                    call["name"] = fragment.function.name or call["name"]
                    arguments = fragment.function.arguments
                    call["args"] += arguments if isinstance(arguments, str) else json.dumps(arguments)
                finish = choice.finish_reason or finish
        if finish is None:
            raise ProviderUnavailable("mistral: the stream ended before it finished", self.name)
        for index in sorted(calls):
            call = calls[index]
            try:
                yield ToolCall(call["id"], call["name"], json.loads(call["args"] or "{}"))
            except json.JSONDecodeError as exc:
                raise ProviderUnavailable(f"mistral: tool call {call['name']!r} has arguments "
                                          "that are not JSON", self.name) from exc
        yield Finish(str(finish))

    def _error(self, exc) -> ProviderError:
        status, message = exc.status_code, f"mistral: {exc.message}"[:2000]
        if status in (401, 403):
            return AuthenticationFailed(message, self.name)
        if status == 429:
            retry_after = exc.headers.get("retry-after")
            return RateLimited(message, self.name, float(retry_after) if retry_after else None)
        if status in (408, 504):
            return ProviderTimeout(message, self.name)
        if 400 <= status < 500:
            if "context" in message.lower() or "too long" in message.lower():
                return ContextTooLong(message, self.name)
            return BadRequest(message, self.name)
        return ProviderUnavailable(message, self.name)

    def close(self) -> None:
        pass  # the SDK's client holds no resource that needs closing
