"""The chat task: one provider stream, tokens coalesced into events, one retry policy."""

import threading
import time
from typing import Callable, Optional

from .providers.base import (ChatRequest, Finish, ProviderError, TextDelta, ToolCall, Usage)
from .chat_cache import ChatCache
from .files.attachments import attach
from .files.reader import FileReader
from .files.roots import FileRefused
from .providers.registry import ProviderSet


class TokenCoalescer:
    """Joins token text so a fast model yields at most `rate` events a second; the first
    token goes at once, a later one waits one interval at most, and nothing is lost or
    reordered. A sender thread emits, so that reading the provider's stream never waits on
    Redis (with it inline, a 2,000-token answer took a fifth longer through the pipeline)."""

    def __init__(self, emit: Callable[[str], None], rate: float = 30.0):
        self.emit = emit
        self.interval = 1.0 / rate
        self._buffer: list[str] = []
        self._closed = False
        self._failure: Optional[BaseException] = None
        self._wake = threading.Condition(threading.Lock())
        self._sender = threading.Thread(target=self._send, name="aios-token-sender",
                                        daemon=True)
        self._sender.start()

    def add(self, text: str) -> None:
        with self._wake:
            if self._failure:
                raise self._failure
            self._buffer.append(text)
            if len(self._buffer) == 1:
                self._wake.notify()

    def close(self) -> None:
        """Sends what is left; raises what made an emit fail, if one did."""
        with self._wake:
            self._closed = True
            self._wake.notify()
        self._sender.join()
        if self._failure:
            raise self._failure

    def _send(self) -> None:
        last = -self.interval
        while True:
            with self._wake:
                while not self._buffer and not self._closed:
                    self._wake.wait()
                if not self._buffer:
                    return  # closed, and everything was sent
                early = self.interval - (time.monotonic() - last)
                if early > 0 and not self._closed:
                    self._wake.wait(early)  # gather more until the interval is over
                text, self._buffer = "".join(self._buffer), []
            try:
                self.emit(text)
            except Exception as exc:  # noqa: BLE001 - handed to the reader, which fails the task
                with self._wake:
                    self._failure, self._buffer = exc, []
                return
            last = time.monotonic()


def candidates(task_input: dict, fallback: list[str], providers: ProviderSet) -> list:
    """(provider, model) pairs to try in order: the task's own choice, else the configured
    fallback list, else the first configured provider."""
    if task_input.get("provider") or task_input.get("model") or not fallback:
        provider = providers.get(task_input.get("provider"))
        return [(provider, task_input.get("model") or provider.default_model)]
    pairs = []
    for entry in fallback:
        name, _, model = entry.partition(":")
        provider = providers.get(name)
        pairs.append((provider, task_input.get("model") or model or provider.default_model))
    return pairs


def run_chat(ctx, task_input: dict, providers: ProviderSet, max_retries: int,
             fallback: list[str] = (), cache: Optional[ChatCache] = None,
             files: Optional[FileReader] = None, sleep=time.sleep) -> dict:
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
        result = stream_answer(ctx, request, provider, max_retries, sleep)
        if cached:
            cache.put(key, result)
        return result
    return with_fallback(ctx, pairs, answer_with)


def with_fallback(ctx, pairs: list, answer_with: Callable) -> dict:
    """answer_with(provider, model) for each pair in turn, while the failure is retryable
    and came before the first token."""
    for index, (provider, model) in enumerate(pairs):
        try:
            return answer_with(provider, model)
        except ProviderError as exc:
            last_pair = index == len(pairs) - 1
            if last_pair or not exc.retryable or exc.after_first_token or ctx.cancelled.is_set():
                raise
            ctx.emit("log", {"text": f"{provider.name}/{model} failed ({exc.code}): "
                                     "trying the next provider\n"})
    raise AssertionError("no candidate pairs")  # candidates() always gives one at least


def stream_answer(ctx, request: ChatRequest, provider, max_retries: int,
                  sleep=time.sleep) -> dict:
    """One answer of one provider, its text streamed as `token` events; retried while
    nothing was streamed yet."""
    for attempt in range(max_retries + 1):
        coalescer = TokenCoalescer(lambda text: ctx.emit("token", {"text": text}))
        parts, answer = [], {"usage": None, "finish_reason": None, "tool_calls": []}
        try:
            for event in provider.stream(request, on_open=ctx.on_cancel):
                if isinstance(event, TextDelta):
                    parts.append(event.text)
                    coalescer.add(event.text)
                elif isinstance(event, Usage):
                    answer["usage"] = {"input_tokens": event.input_tokens,
                                       "output_tokens": event.output_tokens}
                elif isinstance(event, ToolCall):
                    answer["tool_calls"].append(vars(event))
                elif isinstance(event, Finish):
                    answer["finish_reason"] = event.reason
        except ProviderError as exc:
            exc.after_first_token = bool(parts)
            if parts or not exc.retryable or attempt == max_retries or ctx.cancelled.is_set():
                raise
            sleep(getattr(exc, "retry_after_s", None) or min(2 ** attempt, 8))
            continue
        finally:
            coalescer.close()
        return {"text": "".join(parts), "usage": answer["usage"], "provider": provider.name,
                "model": request.model, "finish_reason": answer["finish_reason"],
                **({"tool_calls": answer["tool_calls"]} if answer["tool_calls"] else {})}
    raise AssertionError("unreachable: the last attempt returns or raises")
