"""Each adapter through its real SDK (`openai`, `groq`, `anthropic`, `mistralai`) against
the fake server's wire protocols."""

import time

import pytest

from aios.providers.base import (AuthenticationFailed, ChatRequest, ContextTooLong, Finish,
                                 ProviderTimeout, ProviderUnavailable, RateLimited, TextDelta,
                                 ToolCall, Usage)
from aios.providers.anthropic_chat import AnthropicChat
from aios.providers.mistral_chat import MistralChat
from aios.providers.openai_chat import OpenAIChat

from ..fakes.llm_server import FakeLLM

HELLO = [{"role": "user", "content": "hello"}]


@pytest.fixture(scope="module")
def fake():
    server = FakeLLM().start()
    yield server
    server.stop()


@pytest.fixture(params=["openai", "groq", "anthropic", "mistral"])
def provider(fake, request):
    if request.param == "openai":
        import openai
        client = openai.OpenAI(api_key="sk-test-key", base_url=fake.base_url, timeout=1.5,
                               max_retries=0)
        adapter = OpenAIChat("openai", openai, client, "text", [])
    elif request.param == "mistral":
        from mistralai.client import Mistral, errors
        client = Mistral(api_key="sk-test-key", server_url=fake.mistral_base_url,
                         timeout_ms=1500)
        adapter = MistralChat(errors, client, "text", [])
    elif request.param == "anthropic":
        import anthropic
        client = anthropic.Anthropic(api_key="sk-test-key", base_url=fake.groq_base_url,
                                     timeout=1.5, max_retries=0)
        adapter = AnthropicChat(anthropic, client, "text", [])
    else:
        import groq
        client = groq.Groq(api_key="sk-test-key", base_url=fake.groq_base_url, timeout=1.5,
                           max_retries=0)
        adapter = OpenAIChat("groq", groq, client, "text", [], usage_option=False)
    yield adapter
    adapter.close()


def events(provider, model, **kw):
    return list(provider.stream(ChatRequest(model=model, messages=HELLO, **kw)))


def test_streamed_text_usage_and_finish(provider, fake):
    got = events(provider, "text", temperature=0.0, max_tokens=5)
    assert "".join(e.text for e in got if isinstance(e, TextDelta)) == "Hello world"
    assert [e for e in got if isinstance(e, Usage)] == [Usage(7, 4)]
    assert got[-1] == Finish("stop")
    sent = fake.requests[-1]
    assert sent["stream"] is True
    assert sent.get("stream_options") == ({"include_usage": True}
                                          if provider.name == "openai" else None)
    assert (sent["temperature"], sent["max_tokens"]) == (0.0, 5)
    assert "sk-test-key" in f"{sent['authorization']} {sent.get('x-api-key')}"


def test_system_messages_become_anthropics_system_field(fake):
    import anthropic
    client = anthropic.Anthropic(api_key="k", base_url=fake.groq_base_url, max_retries=0)
    adapter = AnthropicChat(anthropic, client, "text", [])
    list(adapter.stream(ChatRequest(model="text", messages=[
        {"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}])))
    sent = fake.requests[-1]
    assert sent["system"] == "be brief" and sent["messages"] == [{"role": "user",
                                                                   "content": "hi"}]
    assert sent["max_tokens"] > 0
    adapter.close()


def test_tool_call_fragments_are_assembled(provider):
    tools = [{"name": "get_weather", "description": "weather", "parameters": {"type": "object"}}]
    got = events(provider, "tools", tools=tools)
    assert [e for e in got if isinstance(e, ToolCall)] == [
        ToolCall("call_1", "get_weather", {"city": "Paris", "unit": "celsius"}),
        ToolCall("call_2", "get_time", {"timezone": "Europe/Paris"})]
    assert got[-1] == Finish("tool_calls")


@pytest.mark.parametrize("model, error", [
    ("fail-401", AuthenticationFailed), ("fail-500", ProviderUnavailable),
    ("too-long", ContextTooLong), ("cut", ProviderUnavailable), ("stall", ProviderTimeout),
])
def test_failures_map_to_one_error_family(provider, model, error):
    with pytest.raises(error) as raised:
        events(provider, model)
    assert raised.value.provider == provider.name


def test_rate_limit_carries_retry_after(provider, fake):
    before = fake.counts.get("fail-429", 0)
    with pytest.raises(RateLimited) as raised:
        events(provider, "fail-429")
    assert raised.value.retry_after_s == 1.0 and raised.value.retryable
    assert fake.counts["fail-429"] == before + 1, "the SDK itself retries nothing"


def test_a_stall_times_out_promptly(provider):
    started = time.monotonic()
    with pytest.raises(ProviderTimeout):
        events(provider, "stall")
    assert time.monotonic() - started < 5
