"""Provider-neutral message parts (text, image, document) in each wire format. Messages whose
content is a plain string pass through unchanged."""

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
    return _convert(messages, part)


def mistral_messages(messages: list[dict], limits: MediaLimits) -> list[dict]:
    def part(p: dict) -> dict:
        if p["type"] == "image":
            return {"type": "image_url", "image_url": _data_url(p, limits)}
        if p["type"] == "document":
            return document_text(p)
        return p
    return _convert(messages, part)


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
    return _convert(messages, part)


def _convert(messages: list[dict], part) -> list[dict]:
    return [m if isinstance(m["content"], str) else dict(m, content=[part(p) for p in m["content"]])
            for m in messages]
