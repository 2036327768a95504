"""Providers by name: which are configured, and building one (its SDK imported lazily)."""

from dataclasses import dataclass
from typing import Callable, Optional

from ..settings import Settings
from .base import NoProviderConfigured, Provider
from .parts import MediaLimits

MB = 1 << 20


@dataclass(frozen=True)
class ProviderSpec:
    """One provider, all in one row: its settings are `<name>_api_key` (or, with
    `enabled_by`, another field that turns it on), `<name>_base_url` and `<name>_model`."""
    name: str
    models: list[str]  # offered in GET /api/providers (none: the configured model)
    media: MediaLimits  # what it takes (its documented limits): larger images are scaled
    build: Callable[[Settings, "ProviderSpec"], Provider]  # its SDK imported inside
    enabled_by: str = "api_key"

    @property
    def variable(self) -> str:
        return f"{self.name}_{self.enabled_by}".upper()

    def configured(self, settings: Settings) -> bool:
        return getattr(settings, f"{self.name}_{self.enabled_by}") is not None

    def default_model(self, settings: Settings) -> str:
        return getattr(settings, f"{self.name}_model")


def _openai_client(api_key: Optional[str], base_url: Optional[str], settings: Settings):
    import openai
    return openai, openai.OpenAI(api_key=api_key or "unused", base_url=base_url,
                                 timeout=settings.llm_timeout_s, max_retries=0)


def _openai(settings: Settings, spec: ProviderSpec) -> Provider:
    from .openai_chat import OpenAIChat
    sdk, client = _openai_client(settings.openai_api_key.get_secret_value(),
                                 settings.openai_base_url, settings)
    return OpenAIChat(spec.name, sdk, client, settings.openai_model, spec.models, spec.media)


def _compatible(settings: Settings, spec: ProviderSpec) -> Provider:
    from .openai_chat import OpenAIChat
    key = settings.openai_compatible_api_key
    sdk, client = _openai_client(key.get_secret_value() if key else None,
                                 settings.openai_compatible_base_url, settings)
    return OpenAIChat(spec.name, sdk, client, settings.openai_compatible_model,
                      [settings.openai_compatible_model], spec.media)


def _groq(settings: Settings, spec: ProviderSpec) -> Provider:
    import groq

    from .openai_chat import OpenAIChat
    client = groq.Groq(api_key=settings.groq_api_key.get_secret_value(),
                       base_url=settings.groq_base_url, timeout=settings.llm_timeout_s,
                       max_retries=0)
    return OpenAIChat(spec.name, groq, client, settings.groq_model, spec.models, spec.media,
                      usage_option=False)


def _anthropic(settings: Settings, spec: ProviderSpec) -> Provider:
    import anthropic

    from .anthropic_chat import AnthropicChat
    client = anthropic.Anthropic(api_key=settings.anthropic_api_key.get_secret_value(),
                                 base_url=settings.anthropic_base_url,
                                 timeout=settings.llm_timeout_s, max_retries=0)
    return AnthropicChat(anthropic, client, settings.anthropic_model, spec.models, spec.media)


def _mistral(settings: Settings, spec: ProviderSpec) -> Provider:
    from mistralai.client import Mistral, errors

    from .mistral_chat import MistralChat
    client = Mistral(api_key=settings.mistral_api_key.get_secret_value(),
                     server_url=settings.mistral_base_url,
                     timeout_ms=int(settings.llm_timeout_s * 1000))
    return MistralChat(errors, client, settings.mistral_model, spec.models, spec.media)


PROVIDERS = {spec.name: spec for spec in (
    ProviderSpec("openai", ["gpt-4o-mini", "gpt-4o", "gpt-4.1", "gpt-4.1-mini", "o4-mini"],
                 MediaLimits(image_max_side=2048, image_max_bytes=20 * MB,
                             native_documents=True), _openai),
    ProviderSpec("anthropic", ["claude-sonnet-5-5", "claude-opus-5-5", "claude-haiku-5-5"],
                 MediaLimits(image_max_side=1568, image_max_bytes=5 * MB,
                             native_documents=True), _anthropic),
    ProviderSpec("groq", ["llama-3.3-70b-versatile", "llama-3.1-8b-instant",
                          "openai/gpt-oss-20b"],
                 MediaLimits(image_max_side=2048, image_max_bytes=3 * MB,
                             native_documents=False), _groq),
    ProviderSpec("mistral", ["mistral-large-latest", "mistral-small-latest", "codestral-latest"],
                 MediaLimits(image_max_side=2048, image_max_bytes=10 * MB,
                             native_documents=False), _mistral),
    # Ollama, LM Studio, llama.cpp: vision models vary; documents are text to them
    ProviderSpec("openai_compatible", [],
                 MediaLimits(image_max_side=2048, image_max_bytes=10 * MB,
                             native_documents=False), _compatible, enabled_by="base_url"),
)}
_keys = [spec.variable for spec in PROVIDERS.values() if spec.enabled_by == "api_key"]
_urls = [spec.variable for spec in PROVIDERS.values() if spec.enabled_by != "api_key"]
NO_KEY_HINT = (f"no LLM provider is configured: set {', '.join(_keys[:-1])} or {_keys[-1]}, "
               f"or {' or '.join(_urls)} for a local server such as Ollama, LM Studio or "
               "llama.cpp's server")


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
            self._built[name] = spec.build(self.settings, spec)
        return self._built[name]
