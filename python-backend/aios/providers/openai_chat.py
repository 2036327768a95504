"""The OpenAI chat-completions protocol, on the official SDKs that share its shape: `openai`
(OpenAI itself, and any OpenAI-compatible server by base URL: Ollama, vLLM, LM Studio,
llama.cpp) and `groq`."""

from typing import Iterator

from .base import (AuthenticationFailed, BadRequest, ChatRequest, ContextTooLong, Finish,
                   ProviderError, ProviderTimeout, ProviderUnavailable, RateLimited,
                   SdkAdapter, StreamEvent, TextDelta, Usage)
from .parts import MediaLimits, openai_messages
from .streaming import guarded_stream, openai_style_options, retry_after, tool_call


class OpenAIChat(SdkAdapter):
    """`sdk` is the SDK module (its exception classes)."""

    def __init__(self, name: str, sdk, client, default_model: str, models: list[str],
                 media: MediaLimits, usage_option: bool = True):
        super().__init__(name, client, default_model, models, media)
        self.sdk = sdk
        self.usage_option = usage_option  # Groq reports usage in x_groq without asking

    def stream(self, request: ChatRequest, on_open=None) -> Iterator[StreamEvent]:
        return guarded_stream(
            self.name, lambda: self.client.chat.completions.create(**self._arguments(request)),
            self._events, self.sdk.APIError, self._error, on_open)

    def _arguments(self, request: ChatRequest) -> dict:
        arguments = {"model": request.model, "stream": True,
                     "messages": openai_messages(request.messages, self.media)}
        if self.usage_option:
            arguments["stream_options"] = {"include_usage": True}
        return dict(arguments, **openai_style_options(request))

    def _events(self, stream) -> Iterator[StreamEvent]:
        calls: dict[int, dict] = {}
        finish = None
        in_x_groq = not self.usage_option
        for chunk in stream:
            usage = chunk.usage
            if in_x_groq and not usage:  # looked up only for Groq: a missing attribute of an
                # SDK model is an exception inside, dear at 2,000 chunks an answer
                usage = getattr(getattr(chunk, "x_groq", None), "usage", None)
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
            call = calls[index]
            yield tool_call(self.name, call["id"], call["name"], call["args"])
        yield Finish(finish)

    def _error(self, exc) -> ProviderError:
        sdk, name = self.sdk, self.name
        message = f"{name}: {getattr(exc, 'message', exc)}"
        if isinstance(exc, (sdk.AuthenticationError, sdk.PermissionDeniedError)):
            return AuthenticationFailed(message, name)
        if isinstance(exc, sdk.RateLimitError):
            return RateLimited(message, name, retry_after(exc.response.headers))
        if isinstance(exc, sdk.APITimeoutError):
            return ProviderTimeout(message, name)
        if isinstance(exc, sdk.APIStatusError) and exc.status_code < 500:
            if "context_length" in str(exc.body) or "context length" in message:
                return ContextTooLong(message, name)
            return BadRequest(message, name)
        return ProviderUnavailable(message, name)

