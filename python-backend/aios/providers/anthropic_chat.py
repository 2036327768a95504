"""Anthropic's Messages API on the official `anthropic` SDK."""

from typing import Iterator

from .base import (AuthenticationFailed, BadRequest, ChatRequest, ContextTooLong, Finish,
                   ProviderError, ProviderTimeout, ProviderUnavailable, RateLimited,
                   SdkAdapter, StreamEvent, TextDelta, Usage)
from .parts import MediaLimits, anthropic_messages
from .streaming import guarded_stream, retry_after, tool_call

STOP_REASONS = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length",
                "tool_use": "tool_calls", "refusal": "content_filter"}
DEFAULT_MAX_TOKENS = 4096  # the Messages API requires one


class AnthropicChat(SdkAdapter):
    def __init__(self, sdk, client, default_model: str, models: list[str], media: MediaLimits):
        super().__init__("anthropic", client, default_model, models, media)
        self.sdk = sdk

    def stream(self, request: ChatRequest, on_open=None) -> Iterator[StreamEvent]:
        return guarded_stream(
            self.name, lambda: self.client.messages.create(**self._arguments(request)),
            self._events, self.sdk.APIError, self._error, on_open)

    def _arguments(self, request: ChatRequest) -> dict:
        system = "\n\n".join(m["content"] for m in request.messages if m["role"] == "system")
        arguments = {"model": request.model, "stream": True,
                     "max_tokens": request.max_tokens or DEFAULT_MAX_TOKENS,
                     "messages": anthropic_messages(
                         [m for m in request.messages if m["role"] != "system"], self.media)}
        if system:
            arguments["system"] = system
        if request.tools:
            arguments["tools"] = [{"name": t["name"], "description": t.get("description", ""),
                                   "input_schema": t["parameters"]} for t in request.tools]
        if request.temperature is not None:
            # no longer an argument of messages.create; the API still takes it in the body
            arguments["extra_body"] = {"temperature": request.temperature}
        return arguments

    def _events(self, stream) -> Iterator[StreamEvent]:
        blocks: dict[int, dict] = {}
        input_tokens = output_tokens = 0
        stop = None
        for event in stream:
            if event.type == "message_start":
                input_tokens = event.message.usage.input_tokens
            elif event.type == "content_block_start" and event.content_block.type == "tool_use":
                blocks[event.index] = {"id": event.content_block.id,
                                       "name": event.content_block.name, "json": ""}
            elif event.type == "content_block_delta":
                if event.delta.type == "text_delta":
                    yield TextDelta(event.delta.text)
                elif event.delta.type == "input_json_delta":
                    blocks[event.index]["json"] += event.delta.partial_json
            elif event.type == "message_delta":
                stop = event.delta.stop_reason or stop
                output_tokens = event.usage.output_tokens
        if stop is None:
            raise ProviderUnavailable("anthropic: the stream ended before it finished", self.name)
        for index in sorted(blocks):
            block = blocks[index]
            yield tool_call(self.name, block["id"], block["name"], block["json"])
        yield Usage(input_tokens, output_tokens)
        yield Finish(STOP_REASONS.get(stop, stop))

    def _error(self, exc) -> ProviderError:
        sdk, message = self.sdk, f"anthropic: {getattr(exc, 'message', exc)}"
        if isinstance(exc, (sdk.AuthenticationError, sdk.PermissionDeniedError)):
            return AuthenticationFailed(message, self.name)
        if isinstance(exc, sdk.RateLimitError):
            return RateLimited(message, self.name, retry_after(exc.response.headers))
        if isinstance(exc, sdk.APITimeoutError):
            return ProviderTimeout(message, self.name)
        if isinstance(exc, sdk.APIStatusError) and exc.status_code < 500 \
                and exc.status_code != 429:
            if "prompt is too long" in message or "context" in message.lower():
                return ContextTooLong(message, self.name)
            return BadRequest(message, self.name)
        return ProviderUnavailable(message, self.name)
