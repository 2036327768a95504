"""The model-calling engine and the chat kind in-process: retries before the first token
(retry-after honoured through ctx.pause), never after it, a cancel that stops at once, the
fallback over (provider, model) pairs, their order, and the answer cache over a real Redis.

The providers are scripted (scripted.py: plain objects with the provider interface). The
ProviderSet stand-in, scripted.ScriptedProviders, is a small object with `get(name)` (None:
the first configured): the real ProviderSet builds SDK adapters from Settings. The ctx is a
real RunContext over the real event log (conftest.running_ctx); RecordingContext only
records what ctx.pause was asked to wait."""

import threading
import time
from types import SimpleNamespace

import pytest

from aios.kinds.chat import KIND as CHAT_KIND, run_chat
from aios.providers.base import (AuthenticationFailed, ChatRequest, ContextTooLong,
                                 NoProviderConfigured, ProviderTimeout, ProviderUnavailable,
                                 RateLimited, TextDelta)
from aios.providers.cache import ChatCache
from aios.providers.engine import MAX_RETRY_AFTER_S, candidates, stream_answer, with_fallback
from aios.tasks.context import RunContext

from .conftest import closed_log, logged, make_runner, make_service
from .scripted import Block, ScriptedProvider, ScriptedProviders, answer

HELLO = [{"role": "user", "content": "Say hello"}]


class RecordingContext(RunContext):
    """A RunContext that records each pause; `instant` ones return at once (to see the
    backoff without spending its seconds)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.pauses: list[float] = []
        self.instant = False

    def pause(self, seconds: float) -> bool:
        self.pauses.append(seconds)
        return super().pause(0 if self.instant else seconds)


@pytest.fixture
def ctx(running_ctx):
    return running_ctx(context_class=RecordingContext)


def request(model: str = "model-x") -> ChatRequest:
    return ChatRequest(model=model, messages=HELLO)


def texts(log: list[dict], type_: str) -> str:
    return "".join(e["data"]["text"] for e in log if e["type"] == type_)


def cancel_soon(ctx, after_s: float = 0.1) -> threading.Timer:
    timer = threading.Timer(after_s, ctx.abort)  # what the task watcher does on a cancel
    timer.daemon = True
    timer.start()
    return timer


# --- stream_answer: retries ---------------------------------------------------------------

def test_a_retryable_failure_before_the_first_token_is_retried_after_its_retry_after(ctx):
    model = ScriptedProvider("alpha", [[RateLimited("slow down", retry_after_s=0.05)],
                                       answer("Hello there")])

    result = stream_answer(ctx, request(), model, max_retries=2)

    assert result == {"text": "Hello there", "usage": {"input_tokens": 3, "output_tokens": 5},
                      "provider": "alpha", "model": "model-x", "finish_reason": "stop"}
    assert model.calls == 2 and ctx.pauses == [0.05]
    log = closed_log(ctx)
    assert texts(log, "token") == "Hello there"
    assert "alpha: slow down; retrying in 0.05 s" in texts(log, "log")
    assert [e["type"] for e in log].index("log") < [e["type"] for e in log].index("token")


def test_without_a_retry_after_the_wait_backs_off(ctx):
    ctx.instant = True
    model = ScriptedProvider("alpha", [[ProviderTimeout("slow")]] * 4 + [answer("late")])

    assert stream_answer(ctx, request(), model, max_retries=4)["text"] == "late"
    assert ctx.pauses == [1, 2, 4, 8]


def test_retries_end_after_max_retries_with_the_last_failure(ctx):
    model = ScriptedProvider("alpha", [[RateLimited(f"no {n}", retry_after_s=0.01)]
                                       for n in range(3)])

    with pytest.raises(RateLimited, match="no 2"):
        stream_answer(ctx, request(), model, max_retries=2)
    assert model.calls == 3 and ctx.pauses == [0.01, 0.01]


def test_a_retry_after_over_the_maximum_is_given_up_at_once(ctx):
    model = ScriptedProvider("alpha", [[RateLimited("come back tomorrow",
                                                    retry_after_s=MAX_RETRY_AFTER_S + 1)],
                                       answer("never")])
    cancel_soon(ctx, 2.0)  # were it to wait after all, the test fails in 2 s, not 61
    started = time.monotonic()

    with pytest.raises(RateLimited):
        stream_answer(ctx, request(), model, max_retries=3)
    assert time.monotonic() - started < 0.5
    assert model.calls == 1 and ctx.pauses == []


def test_a_non_retryable_failure_is_not_retried(ctx):
    model = ScriptedProvider("alpha", [[ContextTooLong("too long")], answer("never")])

    with pytest.raises(ContextTooLong):
        stream_answer(ctx, request(), model, max_retries=3)
    assert model.calls == 1 and ctx.pauses == []


def test_a_failure_after_the_first_token_is_never_retried(ctx):
    model = ScriptedProvider("alpha", [[TextDelta("Hel"), ProviderUnavailable("cut")],
                                       answer("Hello")])

    with pytest.raises(ProviderUnavailable) as failure:
        stream_answer(ctx, request(), model, max_retries=3)
    assert failure.value.after_first_token
    assert model.calls == 1 and ctx.pauses == []
    assert texts(closed_log(ctx), "token") == "Hel"  # what was streamed stays


# --- stream_answer: cancel ------------------------------------------------------------------

def test_a_cancel_during_the_wait_before_a_retry_stops_at_once(ctx):
    model = ScriptedProvider("alpha", [[RateLimited("slow down", retry_after_s=30)],
                                       answer("never")])
    cancel_soon(ctx)
    started = time.monotonic()

    with pytest.raises(RateLimited):
        stream_answer(ctx, request(), model, max_retries=3)
    assert time.monotonic() - started < 1.0
    assert model.calls == 1 and ctx.pauses == [30]


@pytest.mark.parametrize("before", [[], [TextDelta("Hal")]], ids=["silent", "mid-answer"])
def test_a_cancel_aborts_the_open_stream_and_nothing_is_retried(ctx, before):
    model = ScriptedProvider("alpha", [[*before, Block()], answer("never")])
    cancel_soon(ctx)
    started = time.monotonic()

    with pytest.raises(ProviderUnavailable):
        stream_answer(ctx, request(), model, max_retries=3)
    assert time.monotonic() - started < 1.0
    assert model.aborted.is_set()  # the abort it handed to on_open was called
    assert model.calls == 1 and ctx.pauses == []


# --- with_fallback and candidates -----------------------------------------------------------

def fallback_answer(ctx, pairs, max_retries=0):
    return with_fallback(ctx, pairs, lambda provider, model: stream_answer(
        ctx, request(model), provider, max_retries))


def test_a_retryable_failure_moves_to_the_next_pair(ctx):
    alpha = ScriptedProvider("alpha", [[ProviderUnavailable("down")]])
    beta = ScriptedProvider("beta", [answer("From beta")])

    result = fallback_answer(ctx, [(alpha, "a-1"), (beta, "b-1")])

    assert (result["text"], result["provider"], result["model"]) == ("From beta", "beta", "b-1")
    assert (alpha.calls, beta.calls) == (1, 1)
    assert beta.requests[0].model == "b-1"
    assert "alpha/a-1 failed (provider_unavailable): trying the next provider" in \
        texts(closed_log(ctx), "log")


def test_retries_come_before_the_fallback(ctx):
    alpha = ScriptedProvider("alpha", [[RateLimited("busy", retry_after_s=0.01)]] * 2)
    beta = ScriptedProvider("beta", [answer("From beta")])

    assert fallback_answer(ctx, [(alpha, "a-1"), (beta, "b-1")], max_retries=1)["text"] == \
        "From beta"
    assert (alpha.calls, beta.calls) == (2, 1)


@pytest.mark.parametrize("turn", [
    [AuthenticationFailed("bad key")],
    [ContextTooLong("too long")],
    [TextDelta("Half an answer"), ProviderUnavailable("cut")],
], ids=["authentication", "bad-request", "after-the-first-token"])
def test_no_fallback_on_a_non_retryable_failure_or_after_the_first_token(ctx, turn):
    alpha = ScriptedProvider("alpha", [turn])
    beta = ScriptedProvider("beta", [answer("never")])

    with pytest.raises(type(turn[-1])):
        fallback_answer(ctx, [(alpha, "a-1"), (beta, "b-1")])
    assert beta.calls == 0


def test_the_last_pairs_failure_is_the_answer_when_every_pair_fails(ctx):
    alpha = ScriptedProvider("alpha", [[ProviderUnavailable("alpha down")]])
    beta = ScriptedProvider("beta", [[ProviderTimeout("beta slow")]])

    with pytest.raises(ProviderTimeout, match="beta slow"):
        fallback_answer(ctx, [(alpha, "a-1"), (beta, "b-1")])


def test_no_fallback_after_a_cancel(ctx):
    alpha = ScriptedProvider("alpha", [[Block()]])
    beta = ScriptedProvider("beta", [answer("never")])
    cancel_soon(ctx)

    with pytest.raises(ProviderUnavailable):
        fallback_answer(ctx, [(alpha, "a-1"), (beta, "b-1")])
    assert beta.calls == 0


ALPHA = ScriptedProvider("alpha", [], default_model="a-default")
BETA = ScriptedProvider("beta", [], default_model="b-default")


@pytest.mark.parametrize("task_input, fallback, expected", [
    ({"provider": "beta", "model": "b-9"}, ["alpha:a-1"], [("beta", "b-9")]),
    ({"provider": "beta"}, ["alpha:a-1"], [("beta", "b-default")]),
    ({"model": "m-9"}, ["beta:b-1"], [("alpha", "m-9")]),  # the first configured provider
    ({}, ["beta:b-1", "alpha"], [("beta", "b-1"), ("alpha", "a-default")]),
    ({}, [], [("alpha", "a-default")]),
], ids=["own-pair", "own-provider", "own-model", "fallback-list", "first-configured"])
def test_candidates_order(task_input, fallback, expected):
    pairs = candidates(task_input, fallback, ScriptedProviders(ALPHA, BETA))
    assert [(provider.name, model) for provider, model in pairs] == expected


def test_a_candidate_that_is_not_configured_is_no_provider():
    with pytest.raises(NoProviderConfigured):
        candidates({}, ["gamma:g-1"], ScriptedProviders(ALPHA, BETA))


# --- run_chat and the cache -------------------------------------------------------------------

@pytest.fixture
def cache(redis_client):
    return ChatCache(redis_client, ttl_s=60)


def test_a_temperature_0_answer_comes_from_the_cache_the_second_time(
        running_ctx, cache, redis_client):
    model = ScriptedProvider("alpha", [answer("Deterministic")])
    providers = ScriptedProviders(model)
    task_input = {"messages": HELLO, "temperature": 0}

    first = run_chat(running_ctx(), task_input, providers, 0, [], cache)
    again_ctx = running_ctx()
    again = run_chat(again_ctx, task_input, providers, 0, [], cache)

    assert model.calls == 1
    assert first["text"] == again["text"] == "Deterministic"
    assert again["cached"] is True and "cached" not in first
    assert texts(closed_log(again_ctx), "token") == "Deterministic"  # streamed all the same
    assert len(redis_client.keys("aios:chatcache:*")) == 1


@pytest.mark.parametrize("task_input", [
    {"messages": HELLO, "temperature": 0, "cache": False},
    {"messages": HELLO, "temperature": 0.7},
    {"messages": HELLO},
], ids=["asked-not-to", "warm", "default-temperature"])
def test_other_answers_never_come_from_the_cache(running_ctx, cache, redis_client,
                                                 task_input):
    model = ScriptedProvider("alpha", [answer("One"), answer("Two")])
    providers = ScriptedProviders(model)

    assert run_chat(running_ctx(), task_input, providers, 0, [], cache)["text"] == "One"
    assert run_chat(running_ctx(), task_input, providers, 0, [], cache)["text"] == "Two"
    assert redis_client.keys("aios:chatcache:*") == []


def test_run_chat_falls_back_through_the_configured_list(running_ctx):
    alpha = ScriptedProvider("alpha", [[ProviderUnavailable("down")]])
    beta = ScriptedProvider("beta", [answer("Beta here")])

    result = run_chat(running_ctx(), {"messages": HELLO}, ScriptedProviders(alpha, beta), 0,
                      ["alpha:a-1", "beta:b-1"])

    assert (result["text"], result["provider"], result["model"]) == ("Beta here", "beta", "b-1")
    assert alpha.requests[0].messages == HELLO == beta.requests[0].messages


# --- the chat kind in the task pipeline ------------------------------------------------------

def chat_deps(*providers, max_retries=0, fallback=(), cache=None):
    return SimpleNamespace(providers=ScriptedProviders(*providers), chat_cache=cache,
                           files=None, settings=SimpleNamespace(
                               llm_max_retries=max_retries, llm_fallback=list(fallback)))


@pytest.mark.parametrize("turn, status, error", [
    (answer("Hi!"), "succeeded", None),
    ([AuthenticationFailed("bad key")], "failed", {"code": "authentication",
                                                   "message": "bad key"}),
    ([TextDelta("Hi"), Block()], "cancelled", None),
], ids=["answer", "provider-error", "cancel"])
def test_the_chat_kind_ends_its_task_by_what_the_provider_did(
        store, events, messages, turn, status, error):
    model = ScriptedProvider("alpha", [turn])
    kinds = {"chat": CHAT_KIND}
    service = make_service(store, events, kinds, messages, lambda task_id: None)
    runner = make_runner(store, events, kinds, chat_deps(model))
    task_id = service.submit("chat", {"messages": HELLO}).task["task_id"]
    if status == "cancelled":
        threading.Timer(0.2, store.request_cancel, [task_id]).start()

    assert runner.execute(task_id) == status

    record = store.get(task_id)
    assert record["error"] == error
    if status == "succeeded":
        assert record["result"]["text"] == "Hi!"
        assert texts(logged(events, task_id), "token") == "Hi!"
