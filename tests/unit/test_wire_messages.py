"""Neutral tool turns in each provider's wire format."""

import json

from aios.providers.parts import (MediaLimits, anthropic_messages, mistral_messages,
                                  openai_messages)

LIMITS = MediaLimits(image_max_side=1024, image_max_bytes=1 << 20, native_documents=False)
CONVERSATION = [
    {"role": "user", "content": "go"},
    {"role": "assistant", "content": "", "tool_calls": [
        {"id": "c1", "name": "run_code", "arguments": {"language": "bash", "code": "ls"}},
        {"id": "c2", "name": "browse", "arguments": {"url": "http://127.0.0.1/"}}]},
    {"role": "tool", "tool_call_id": "c1", "name": "run_code", "content": "a.txt",
     "is_error": False},
    {"role": "tool", "tool_call_id": "c2", "name": "browse", "content": "refused",
     "is_error": True},
    {"role": "assistant", "content": "done"},
]


def test_openai_and_mistral_take_function_calls_and_tool_messages():
    for convert in (openai_messages, mistral_messages):
        out = convert(CONVERSATION, LIMITS)
        assert out[0] == CONVERSATION[0] and out[-1] == CONVERSATION[-1]
        call = out[1]["tool_calls"][0]
        assert call["type"] == "function" and call["id"] == "c1"
        assert json.loads(call["function"]["arguments"]) == {"language": "bash", "code": "ls"}
        assert [m["tool_call_id"] for m in out[2:4]] == ["c1", "c2"]
        assert all(m["role"] == "tool" for m in out[2:4])
    assert openai_messages(CONVERSATION, LIMITS)[1]["content"] is None  # no empty text
    assert mistral_messages(CONVERSATION, LIMITS)[2]["name"] == "run_code"


def test_anthropic_takes_tool_use_blocks_and_one_user_turn_of_results():
    out = anthropic_messages(CONVERSATION, LIMITS)
    assert [m["role"] for m in out] == ["user", "assistant", "user", "assistant"]
    assert out[1]["content"] == [
        {"type": "tool_use", "id": "c1", "name": "run_code",
         "input": {"language": "bash", "code": "ls"}},
        {"type": "tool_use", "id": "c2", "name": "browse", "input": {"url": "http://127.0.0.1/"}}]
    assert out[2]["content"] == [
        {"type": "tool_result", "tool_use_id": "c1", "content": "a.txt", "is_error": False},
        {"type": "tool_result", "tool_use_id": "c2", "content": "refused", "is_error": True}]
