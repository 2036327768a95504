"""The provider interface: requests, normalized stream events, and one error family."""

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterator, Optional, Protocol, Union

if TYPE_CHECKING:
    from .parts import MediaLimits


@dataclass
class ChatRequest:
    model: str
    messages: list[dict]          # {"role", "content": str | [{"type": "text", "text"}, ...]}
    tools: list[dict] = field(default_factory=list)  # {"name", "description", "parameters"}
    temperature: Optional[float] = None
    max_tokens: Optional[int] = None


@dataclass
class TextDelta:
    text: str


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: dict


@dataclass
class Usage:
    input_tokens: int
    output_tokens: int


@dataclass
class Finish:
    reason: str  # "stop", "length", "tool_calls", "content_filter", ...


StreamEvent = Union[TextDelta, ToolCall, Usage, Finish]


class ProviderError(Exception):
    """Every provider failure, whatever the SDK; `retryable` drives the fallback."""

    code = "provider_error"
    retryable = False
    after_first_token = False  # set by the chat loop: then no retry and no fallback

    def __init__(self, message: str, provider: str = ""):
        super().__init__(message)
        self.provider = provider


class AuthenticationFailed(ProviderError):
    code = "authentication"


class RateLimited(ProviderError):
    code, retryable = "rate_limited", True

    def __init__(self, message: str, provider: str = "", retry_after_s: Optional[float] = None):
        super().__init__(message, provider)
        self.retry_after_s = retry_after_s


class ProviderTimeout(ProviderError):
    code, retryable = "timeout", True


class BadRequest(ProviderError):
    code = "bad_request"


class ContextTooLong(BadRequest):
    code = "context_too_long"


class ProviderUnavailable(ProviderError):
    code, retryable = "provider_unavailable", True


class NoProviderConfigured(ProviderError):
    code = "no_provider"


class Provider(Protocol):
    name: str
    default_model: str
    models: list[str]

    def stream(self, request: ChatRequest, on_open=None) -> Iterator[StreamEvent]:
        """Yields events as they arrive. on_open receives a function that aborts the
        stream from another thread (cancel)."""

    def close(self) -> None: ...


class SdkAdapter:
    """What every adapter keeps: its name, its SDK's client (built with retries off: the
    retries are ours, one policy for every provider), its models and media limits."""

    def __init__(self, name: str, client, default_model: str, models: list[str],
                 media: "MediaLimits"):
        self.name = name
        self.client = client
        self.default_model = default_model
        self.models = models
        self.media = media

    def close(self) -> None:
        self.client.close()
