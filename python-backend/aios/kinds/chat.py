"""`chat`: one model's answer streamed as `token` events, with retries, fallback and a
cache for deterministic (temperature 0) answers."""

from typing import Literal, Optional

from pydantic import Field, ValidationInfo, field_validator

from ..deps import Deps
from ..files.attachments import attach
from ..files.reader import FileReader
from ..files.roots import FileRefused
from ..providers.base import ChatRequest, ProviderError
from ..providers.cache import ChatCache
from ..providers.engine import candidates, stream_answer, with_fallback
from ..providers.registry import ProviderSet
from ..tasks.context import RunContext
from ..tasks.errors import TaskFailed, failed
from ..tasks.kind import Kind, TaskInput
from .attachments import MAX_ATTACHMENTS, checked_attachments


class ChatMessage(TaskInput):
    role: Literal["system", "user", "assistant"]
    content: str


class ChatInput(TaskInput):
    provider: Optional[str] = None
    model: Optional[str] = None
    messages: list[ChatMessage] = Field(min_length=1)
    temperature: Optional[float] = Field(default=None, ge=0, le=2)
    max_tokens: Optional[int] = Field(default=None, gt=0)
    cache: bool = True  # temperature 0 answers may come from the cache; false: never
    attachments: list[str] = Field(default_factory=list, max_length=MAX_ATTACHMENTS)

    @field_validator("attachments")
    @classmethod
    def _files_exist_and_fit(cls, paths: list[str], info: ValidationInfo) -> list[str]:
        if paths and (info.context or {}).get("files") \
                and not any(m.role == "user" for m in info.data.get("messages", [])):
            raise ValueError("attachments need a user message to go with")
        return checked_attachments(paths, info, "inspect")  # for a model: a type it reads


def run(ctx: RunContext, task_input: dict, deps: Deps) -> dict:
    try:
        return run_chat(ctx, task_input, deps.providers, deps.settings.llm_max_retries,
                        deps.settings.llm_fallback, deps.chat_cache, deps.files)
    except FileRefused as exc:
        raise TaskFailed("bad_attachment", str(exc)) from exc
    except ProviderError as exc:
        raise failed(ctx, exc, exc.code) from exc


def run_chat(ctx, task_input: dict, providers: ProviderSet, max_retries: int,
             fallback: list[str] = (), cache: Optional[ChatCache] = None,
             files: Optional[FileReader] = None) -> dict:
    """Streams the answer as `token` events. A retryable failure before the first token is
    retried (honouring retry-after), then moves to the next fallback pair."""
    pairs = candidates(task_input, list(fallback), providers)
    paths = task_input.get("attachments") or []
    if paths:
        if files is None:
            raise FileRefused("unsupported_type", "attachments are not available here")
        parts = [part for path in paths for part in files.read(path).parts]
        # The request (and the cache key) carries the files' content, not just their names
        task_input = dict(task_input, messages=attach(task_input["messages"], parts))
    cached = cache is not None and ChatCache.applies(task_input)

    def answer_with(provider, model: str) -> dict:
        key = ChatCache.key(provider.name, model, task_input) if cached else None
        if cached:
            hit = cache.get(key)
            if hit:
                ctx.emit("token", {"text": hit["text"]})
                return dict(hit, cached=True)
        request = ChatRequest(model=model, messages=task_input["messages"],
                              temperature=task_input.get("temperature"),
                              max_tokens=task_input.get("max_tokens"))
        result = stream_answer(ctx, request, provider, max_retries)
        if cached:
            cache.put(key, result)
        return result
    return with_fallback(ctx, pairs, answer_with)


KIND = Kind(ChatInput, run)
