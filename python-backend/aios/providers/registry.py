"""Providers by name: which are configured, and building one (its SDK imported lazily)."""

from dataclasses import dataclass
from typing import Callable, Optional

from ..settings import Settings
from .base import NoProviderConfigured, Provider
from .parts import MediaLimits

NO_KEY_HINT = ("no LLM provider is configured: set OPENAI_API_KEY, ANTHROPIC_API_KEY, "
               "GROQ_API_KEY or MISTRAL_API_KEY, or "
               "OPENAI_COMPATIBLE_BASE_URL for a local server such as Ollama, LM Studio or "
               "llama.cpp's server")


@dataclass
class ProviderSpec:
    name: str
    configured: Callable[[Settings], bool]
    default_model: Callable[[Settings], str]
    models: list[str]
    build: Callable[[Settings], Provider]


def _openai_client(api_key: Optional[str], base_url: Optional[str], settings: Settings):
    import openai
    return openai, openai.OpenAI(api_key=api_key or "unused", base_url=base_url,
                                 timeout=settings.llm_timeout_s, max_retries=0)


def _openai(settings: Settings) -> Provider:
    from .openai_chat import OpenAIChat
    sdk, client = _openai_client(settings.openai_api_key.get_secret_value(),
                                 settings.openai_base_url, settings)
    return OpenAIChat("openai", sdk, client, settings.openai_model, OPENAI_MODELS, OPENAI_MEDIA)


def _compatible(settings: Settings) -> Provider:
    from .openai_chat import OpenAIChat
    key = settings.openai_compatible_api_key
    sdk, client = _openai_client(key.get_secret_value() if key else None,
                                 settings.openai_compatible_base_url, settings)
    return OpenAIChat("openai_compatible", sdk, client, settings.openai_compatible_model,
                      [settings.openai_compatible_model], COMPATIBLE_MEDIA)


def _groq(settings: Settings) -> Provider:
    import groq

    from .openai_chat import OpenAIChat
    client = groq.Groq(api_key=settings.groq_api_key.get_secret_value(),
                       base_url=settings.groq_base_url, timeout=settings.llm_timeout_s,
                       max_retries=0)
    return OpenAIChat("groq", groq, client, settings.groq_model, GROQ_MODELS, GROQ_MEDIA,
                      usage_option=False)


def _anthropic(settings: Settings) -> Provider:
    import anthropic

    from .anthropic_chat import AnthropicChat
    client = anthropic.Anthropic(api_key=settings.anthropic_api_key.get_secret_value(),
                                 base_url=settings.anthropic_base_url,
                                 timeout=settings.llm_timeout_s, max_retries=0)
    return AnthropicChat(anthropic, client, settings.anthropic_model, ANTHROPIC_MODELS,
                         ANTHROPIC_MEDIA)


def _mistral(settings: Settings) -> Provider:
    from mistralai.client import Mistral, errors

    from .mistral_chat import MistralChat
    client = Mistral(api_key=settings.mistral_api_key.get_secret_value(),
                     server_url=settings.mistral_base_url,
                     timeout_ms=int(settings.llm_timeout_s * 1000))
    return MistralChat(errors, client, settings.mistral_model, MISTRAL_MODELS, MISTRAL_MEDIA)


MB = 1 << 20
# What each provider takes (their documented limits): larger images are scaled down here,
# so that an upload is not wasted on pixels the provider would drop, or refused outright.
OPENAI_MEDIA = MediaLimits(image_max_side=2048, image_max_bytes=20 * MB, native_documents=True)
ANTHROPIC_MEDIA = MediaLimits(image_max_side=1568, image_max_bytes=5 * MB, native_documents=True)
GROQ_MEDIA = MediaLimits(image_max_side=2048, image_max_bytes=3 * MB, native_documents=False)
MISTRAL_MEDIA = MediaLimits(image_max_side=2048, image_max_bytes=10 * MB, native_documents=False)
# Ollama, LM Studio, llama.cpp: vision models vary; documents are text to them
COMPATIBLE_MEDIA = MediaLimits(image_max_side=2048, image_max_bytes=10 * MB,
                               native_documents=False)
MISTRAL_MODELS = ["mistral-large-latest", "mistral-small-latest", "codestral-latest"]
ANTHROPIC_MODELS = ["claude-sonnet-5-5", "claude-opus-5-5", "claude-haiku-5-5"]
OPENAI_MODELS = ["gpt-4o-mini", "gpt-4o", "gpt-4.1", "gpt-4.1-mini", "o4-mini"]
GROQ_MODELS = ["llama-3.3-70b-versatile", "llama-3.1-8b-instant", "openai/gpt-oss-20b"]
PROVIDERS = {spec.name: spec for spec in (
    ProviderSpec("openai", lambda s: s.openai_api_key is not None,
                 lambda s: s.openai_model, OPENAI_MODELS, _openai),
    ProviderSpec("anthropic", lambda s: s.anthropic_api_key is not None,
                 lambda s: s.anthropic_model, ANTHROPIC_MODELS, _anthropic),
    ProviderSpec("groq", lambda s: s.groq_api_key is not None,
                 lambda s: s.groq_model, GROQ_MODELS, _groq),
    ProviderSpec("mistral", lambda s: s.mistral_api_key is not None,
                 lambda s: s.mistral_model, MISTRAL_MODELS, _mistral),
    ProviderSpec("openai_compatible", lambda s: s.openai_compatible_base_url is not None,
                 lambda s: s.openai_compatible_model, [], _compatible),
)}


def configured(settings: Settings) -> list[dict]:
    """What GET /api/providers shows: names and models, never a key."""
    return [{"name": spec.name, "default_model": spec.default_model(settings),
             "models": spec.models or [spec.default_model(settings)]}
            for spec in PROVIDERS.values() if spec.configured(settings)]


class ProviderSet:
    """The worker's providers, built on first use and kept for the process."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._built: dict[str, Provider] = {}

    def get(self, name: Optional[str]) -> Provider:
        if name is None:
            available = configured(self.settings)
            if not available:
                raise NoProviderConfigured(NO_KEY_HINT)
            name = available[0]["name"]
        spec = PROVIDERS.get(name)
        if spec is None:
            raise NoProviderConfigured(f"unknown provider {name!r}; known: {', '.join(PROVIDERS)}")
        if not spec.configured(self.settings):
            raise NoProviderConfigured(f"provider {name!r} is not configured; {NO_KEY_HINT}")
        if name not in self._built:
            self._built[name] = spec.build(self.settings)
        return self._built[name]
