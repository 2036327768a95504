"""Chat attachments: files under the allowed roots turned into provider-neutral message
parts. Images and PDFs keep their bytes (each adapter fits them to its provider); a PDF also
carries its text, for providers that take no documents; text files become text."""

import base64
import io
from dataclasses import dataclass

from . import sniff
from .roots import FileRefused, FileRoots

SUPPORTED = "images (PNG, JPEG, GIF, WebP), PDFs and UTF-8 text"


@dataclass
class AttachmentLimits:
    max_bytes: int            # per file, as stored on disk
    max_text_chars: int       # text of a text file or a PDF, beyond which it is cut


def inspect(roots: FileRoots, path: str, limits: AttachmentLimits) -> str:
    """Cheap checks when a task is submitted: confined, a regular file, not too large, of a
    supported type. Returns the media type."""
    with roots.open(path) as opened:
        if opened.size > limits.max_bytes:
            raise FileRefused("too_large", f"{path!r} is {opened.size} bytes; attachments "
                              f"may be at most {limits.max_bytes} bytes")
        head = opened.read(sniff.HEAD_BYTES)
    media_type = sniff.media_type(head)
    if media_type is None:
        raise FileRefused("unsupported_type", f"{path!r} {sniff.describe(head)}: not a type "
                          f"chat can attach ({SUPPORTED})")
    return media_type


def load(roots: FileRoots, path: str, limits: AttachmentLimits) -> dict:
    """The message part for one attachment (in the worker, which has the same mounts)."""
    media_type = inspect(roots, path, limits)
    with roots.open(path) as opened:
        data = opened.read(limits.max_bytes + 1)
        name = opened.path.name
    if len(data) > limits.max_bytes:
        raise FileRefused("too_large", f"{path!r} grew past {limits.max_bytes} bytes")
    if media_type in sniff.IMAGE_TYPES:
        check_image(path, data)
        return {"type": "image", "media_type": media_type, "name": name,
                "data": base64.b64encode(data).decode()}
    if media_type == sniff.PDF:
        return {"type": "document", "media_type": media_type, "name": name,
                "data": base64.b64encode(data).decode(),
                "text": pdf_text(path, data, limits.max_text_chars)}
    text = data.decode("utf-8", errors="replace")
    return {"type": "text", "text": f"[attached file {name}]\n{cut(text, limits.max_text_chars)}"}


def check_image(path: str, data: bytes) -> None:
    from PIL import Image, UnidentifiedImageError
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise FileRefused("unreadable", f"{path!r} is not a readable image: {exc}") from None


def pdf_text(path: str, data: bytes, max_chars: int) -> str:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError
    try:
        reader = PdfReader(io.BytesIO(data))
        pages, total = [], 0
        for number, page in enumerate(reader.pages, 1):
            text = page.extract_text() or ""
            pages.append(f"[page {number}]\n{text}")
            total += len(text)
            if total > max_chars:
                break
    except (PdfReadError, ValueError, KeyError, TypeError) as exc:
        raise FileRefused("unreadable", f"{path!r} is not a readable PDF: {exc}") from None
    return cut("\n\n".join(pages), max_chars)


def cut(text: str, max_chars: int) -> str:
    if len(text) <= max_chars:
        return text
    return text[:max_chars] + f"\n[... cut at {max_chars} characters]"


def attach(messages: list[dict], parts: list[dict]) -> list[dict]:
    """The messages with the parts added to the last user message (its text first)."""
    if not parts:
        return messages
    last_user = max((i for i, m in enumerate(messages) if m["role"] == "user"), default=None)
    if last_user is None:
        raise FileRefused("invalid_path", "attachments need a user message to go with")
    message = messages[last_user]
    content = [{"type": "text", "text": message["content"]}, *parts]
    return [*messages[:last_user], dict(message, content=content), *messages[last_user + 1:]]


class Attachments:
    """The allowed roots and limits together: what the web checks and the worker reads."""

    def __init__(self, roots: FileRoots, limits: AttachmentLimits):
        self.roots = roots
        self.limits = limits

    def inspect(self, path: str) -> str:
        return inspect(self.roots, path, self.limits)

    def load(self, path: str) -> dict:
        return load(self.roots, path, self.limits)
