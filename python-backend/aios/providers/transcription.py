"""Speech to text through the configured provider's whisper endpoint (OpenAI, else Groq),
on its official SDK."""

from typing import Optional

from ..settings import Settings


class TranscriptionUnavailable(RuntimeError):
    pass


class Transcriber:
    def __init__(self, settings: Settings):
        self.settings = settings
        self._client = None

    @property
    def provider(self) -> Optional[str]:
        if self.settings.openai_api_key:
            return "openai"
        if self.settings.groq_api_key:
            return "groq"
        return None

    def transcribe(self, audio: bytes, filename: str) -> str:
        name = self.provider
        if name is None:
            raise TranscriptionUnavailable(
                "audio needs a speech-to-text provider: set OPENAI_API_KEY or GROQ_API_KEY")
        client, errors = self._sdk(name)
        model = self.settings.transcription_model or DEFAULT_MODELS[name]
        try:
            return client.audio.transcriptions.create(model=model, file=(filename, audio)).text
        except errors as exc:
            raise TranscriptionUnavailable(f"{name} could not transcribe {filename}: "
                                           f"{getattr(exc, 'message', exc)}") from None

    def _sdk(self, name: str):
        s = self.settings
        if self._client is None:
            if name == "openai":
                import openai
                self._client = (openai.OpenAI(api_key=s.openai_api_key.get_secret_value(),
                                              base_url=s.openai_base_url,
                                              timeout=s.llm_timeout_s, max_retries=2),
                                openai.APIError)
            else:
                import groq
                self._client = (groq.Groq(api_key=s.groq_api_key.get_secret_value(),
                                          base_url=s.groq_base_url,
                                          timeout=s.llm_timeout_s, max_retries=2), groq.APIError)
        return self._client


DEFAULT_MODELS = {"openai": "whisper-1", "groq": "whisper-large-v3-turbo"}
