"""Provider-neutral messages in each wire format: content parts (text, image, document), an
assistant's tool calls, and tool results. Plain-string messages pass through unchanged.

Neutral tool turns:
  {"role": "assistant", "content": str, "tool_calls": [{"id", "name", "arguments": dict}]}
  {"role": "tool", "tool_call_id", "name", "content": str, "is_error": bool}
"""

import json
from dataclasses import dataclass

from ..files.images import fit


@dataclass(frozen=True)
class MediaLimits:
    image_max_side: int      # px; larger images are scaled down before sending
    image_max_bytes: int     # per image, encoded
    native_documents: bool   # PDFs as document parts; else their extracted text


def document_text(part: dict) -> dict:
    return {"type": "text", "text": f"[attached PDF {part['name']}]\n{part['text']}"}


def _data_url(part: dict, limits: MediaLimits) -> str:
    media_type, data = fit(part, limits.image_max_side, limits.image_max_bytes)
    return f"data:{media_type};base64,{data}"


def openai_messages(messages: list[dict], limits: MediaLimits) -> list[dict]:
    """OpenAI chat completions (also Groq and OpenAI-compatible servers)."""
    def part(p: dict) -> dict:
        if p["type"] == "image":
            return {"type": "image_url", "image_url": {"url": _data_url(p, limits)}}
        if p["type"] == "document":
            if not limits.native_documents:
                return document_text(p)
            return {"type": "file", "file": {
                "filename": p["name"], "file_data": f"data:{p['media_type']};base64,{p['data']}"}}
        return p

    def turn(m: dict) -> dict:
        if m["role"] == "tool":
            return {"role": "tool", "tool_call_id": m["tool_call_id"], "content": m["content"]}
        return {"role": "assistant", "content": m.get("content") or None,
                "tool_calls": [_function_call(c) for c in m["tool_calls"]]}
    return _convert(messages, part, turn)


def mistral_messages(messages: list[dict], limits: MediaLimits) -> list[dict]:
    def part(p: dict) -> dict:
        if p["type"] == "image":
            return {"type": "image_url", "image_url": _data_url(p, limits)}
        if p["type"] == "document":
            return document_text(p)
        return p

    def turn(m: dict) -> dict:
        if m["role"] == "tool":
            return {"role": "tool", "tool_call_id": m["tool_call_id"], "name": m["name"],
                    "content": m["content"]}
        return {"role": "assistant", "content": m.get("content") or "",
                "tool_calls": [_function_call(c) for c in m["tool_calls"]]}
    return _convert(messages, part, turn)


def anthropic_messages(messages: list[dict], limits: MediaLimits) -> list[dict]:
    def part(p: dict) -> dict:
        if p["type"] == "image":
            media_type, data = fit(p, limits.image_max_side, limits.image_max_bytes)
            return {"type": "image", "source": {"type": "base64", "media_type": media_type,
                                                "data": data}}
        if p["type"] == "document":
            if not limits.native_documents:
                return document_text(p)
            return {"type": "document", "title": p["name"], "source": {
                "type": "base64", "media_type": p["media_type"], "data": p["data"]}}
        return p

    out: list[dict] = []
    for m in messages:
        if m["role"] == "tool":  # results go back in a user turn; consecutive ones share it
            result = {"type": "tool_result", "tool_use_id": m["tool_call_id"],
                      "content": m["content"], "is_error": bool(m.get("is_error"))}
            if out and out[-1]["role"] == "user" and out[-1].get("tool_results"):
                out[-1]["content"].append(result)
            else:
                out.append({"role": "user", "content": [result], "tool_results": True})
        elif m.get("tool_calls"):
            blocks = [{"type": "text", "text": m["content"]}] if m.get("content") else []
            blocks += [{"type": "tool_use", "id": c["id"], "name": c["name"],
                        "input": c["arguments"]} for c in m["tool_calls"]]
            out.append({"role": "assistant", "content": blocks})
        else:
            out.append(m if isinstance(m["content"], str) else
                       dict(m, content=[part(p) for p in m["content"]]))
    return [{k: v for k, v in m.items() if k != "tool_results"} for m in out]


def _function_call(call: dict) -> dict:
    return {"id": call["id"], "type": "function",
            "function": {"name": call["name"], "arguments": json.dumps(call["arguments"])}}


def _convert(messages: list[dict], part, turn) -> list[dict]:
    def one(m: dict) -> dict:
        if m["role"] == "tool" or m.get("tool_calls"):
            return turn(m)
        if isinstance(m["content"], str):
            return m
        return dict(m, content=[part(p) for p in m["content"]])
    return [one(m) for m in messages]
