"""Each adapter through its real SDK (`openai`, `groq`, `anthropic`, `mistralai`) against
the fake server's wire protocols."""

import base64
import io
import time

import pytest
from PIL import Image

from aios.providers.base import (AuthenticationFailed, ChatRequest, ContextTooLong, Finish,
                                 ProviderTimeout, ProviderUnavailable, RateLimited, TextDelta,
                                 ToolCall, Usage)
from aios.files.attachments import attach
from aios.files.reader import FileReader, ReadLimits
from aios.files.roots import FileRoots
from aios.providers.anthropic_chat import AnthropicChat
from aios.providers.mistral_chat import MistralChat
from aios.providers.openai_chat import OpenAIChat
from aios.providers.registry import PROVIDERS

from ..fakes.llm_server import FakeLLM
from ..files import pdf, png

OPENAI_MEDIA, ANTHROPIC_MEDIA, GROQ_MEDIA, MISTRAL_MEDIA = (
    PROVIDERS[name].media for name in ("openai", "anthropic", "groq", "mistral"))

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
        adapter = OpenAIChat("openai", openai, client, "text", [], OPENAI_MEDIA)
    elif request.param == "mistral":
        from mistralai.client import Mistral, errors
        client = Mistral(api_key="sk-test-key", server_url=fake.mistral_base_url,
                         timeout_ms=1500)
        adapter = MistralChat(errors, client, "text", [], MISTRAL_MEDIA)
    elif request.param == "anthropic":
        import anthropic
        client = anthropic.Anthropic(api_key="sk-test-key", base_url=fake.groq_base_url,
                                     timeout=1.5, max_retries=0)
        adapter = AnthropicChat(anthropic, client, "text", [], ANTHROPIC_MEDIA)
    else:
        import groq
        client = groq.Groq(api_key="sk-test-key", base_url=fake.groq_base_url, timeout=1.5,
                           max_retries=0)
        adapter = OpenAIChat("groq", groq, client, "text", [], GROQ_MEDIA,
                             usage_option=False)
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
    adapter = AnthropicChat(anthropic, client, "text", [], ANTHROPIC_MEDIA)
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


def test_attachments_reach_each_provider_in_its_own_wire_format(provider, fake, tmp_path):
    png(tmp_path / "photo.png", (3000, 1000))
    pdf(tmp_path / "report.pdf", ["Revenue grew"])
    files = FileReader(FileRoots([str(tmp_path)]), ReadLimits(1 << 24, 10_000))
    messages = attach([{"role": "user", "content": "what is in these?"}],
                      [files.read("photo.png").parts[0], files.read("report.pdf").parts[0]])
    got = list(provider.stream(ChatRequest(model="text", messages=messages)))
    assert got[-1] == Finish("stop")  # the real SDK sent it, the server answered
    text, image, document = fake.requests[-1]["messages"][-1]["content"]
    assert text == {"type": "text", "text": "what is in these?"}
    if provider.name == "anthropic":
        assert image["type"] == "image" and image["source"]["media_type"] == "image/png"
        encoded = image["source"]["data"]
        assert document["type"] == "document"
        assert document["source"]["data"] == files.read("report.pdf").parts[0]["data"]
    else:
        url = image["image_url"] if provider.name == "mistral" else image["image_url"]["url"]
        assert image["type"] == "image_url" and url.startswith("data:image/png;base64,")
        encoded = url.split(",", 1)[1]
        if provider.name == "openai":  # takes PDFs natively; the others get their text
            assert document["type"] == "file" and document["file"]["filename"] == "report.pdf"
        else:
            assert document == {"type": "text",
                                 "text": "[attached PDF report.pdf]\n[page 1]\nRevenue grew"}
    with Image.open(io.BytesIO(base64.b64decode(encoded))) as sent_image:
        assert max(sent_image.size) == provider.media.image_max_side  # scaled to its limit
