"""Mistral's chat API on the official `mistralai` SDK (which retries nothing by default and
reports every HTTP error as one error class with a status code)."""

import json
from typing import Iterator

from .base import (AuthenticationFailed, BadRequest, ChatRequest, ContextTooLong, Finish,
                   ProviderError, ProviderTimeout, ProviderUnavailable, RateLimited,
                   SdkAdapter, StreamEvent, TextDelta, Usage)
from .parts import MediaLimits, mistral_messages
from .streaming import guarded_stream, openai_style_options, retry_after, tool_call


class MistralChat(SdkAdapter):
    def __init__(self, errors, client, default_model: str, models: list[str], media: MediaLimits):
        super().__init__("mistral", client, default_model, models, media)
        self.errors = errors  # mistralai.client.errors

    def stream(self, request: ChatRequest, on_open=None) -> Iterator[StreamEvent]:
        return guarded_stream(
            self.name, lambda: self.client.chat.stream(**self._arguments(request)),
            self._events, self.errors.MistralError, self._error, on_open)

    def _arguments(self, request: ChatRequest) -> dict:
        arguments = {"model": request.model,
                     "messages": mistral_messages(request.messages, self.media)}
        return dict(arguments, **openai_style_options(request))

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
                    call["args"] += (arguments if isinstance(arguments, str)
                                     else json.dumps(arguments))
                finish = choice.finish_reason or finish
        if finish is None:
            raise ProviderUnavailable("mistral: the stream ended before it finished", self.name)
        for index in sorted(calls):
            call = calls[index]
            yield tool_call(self.name, call["id"], call["name"], call["args"])
        yield Finish(str(finish))

    def _error(self, exc) -> ProviderError:
        status, message = exc.status_code, f"mistral: {exc.message}"[:2000]
        if status in (401, 403):
            return AuthenticationFailed(message, self.name)
        if status == 429:
            return RateLimited(message, self.name, retry_after(exc.headers))
        if status in (408, 504):
            return ProviderTimeout(message, self.name)
        if 400 <= status < 500:
            if "context" in message.lower() or "too long" in message.lower():
                return ContextTooLong(message, self.name)
            return BadRequest(message, self.name)
        return ProviderUnavailable(message, self.name)

    def close(self) -> None:
        pass  # the SDK's client holds no resource that needs closing
