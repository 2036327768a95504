"""Reading the user's files for models, by type decided from content: text (encoding
guessed), images (kept whole: each provider adapter fits them to its limits), PDFs (a
document part that carries its text per page too), audio (a transcript), video (a few
frames and the transcript of its sound). Behind chat attachments and the file tools."""

import base64
import io
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from . import media, sniff
from .roots import FileRefused, FileRoots

SUPPORTED = "text, images (PNG, JPEG, GIF, WebP), PDFs, audio (WAV, MP3, OGG, FLAC, M4A) " \
            "and video (MP4, MOV, WebM, AVI)"


@dataclass
class ReadLimits:
    max_bytes: int            # per file, as stored on disk
    max_text_chars: int       # text of a text file, a PDF or a transcript, beyond which it is cut
    video_frames: int = 4
    frame_max_side: int = 1024


@dataclass
class FileContent:
    path: str                 # the real path that was read
    name: str
    media_type: str
    size: int
    parts: list[dict] = field(default_factory=list)  # provider-neutral message parts

    def text(self) -> str:
        """The text parts, and a note for each media part (which go separately)."""
        texts = [p["text"] if p["type"] == "text" else
                 f"[{'PDF' if p['type'] == 'document' else 'image'} {p['name']}: "
                 "attached after the tool results]" for p in self.parts]
        return "\n\n".join(texts)

    def media(self) -> list[dict]:
        """Images and PDFs (a provider without native documents gets a PDF's text)."""
        return [p for p in self.parts if p["type"] in ("image", "document")]


class FileReader:
    def __init__(self, roots: FileRoots, limits: ReadLimits, transcriber=None):
        self.roots = roots
        self.limits = limits
        self.transcriber = transcriber  # .transcribe(audio: bytes, filename) -> str

    def inspect(self, path: str) -> str:
        """Cheap checks (when a task is submitted): confined, a regular file, not too
        large, of a supported type. Returns the media type."""
        with self.roots.open(path) as opened:
            self._check_size(path, opened.size)
            return self._media_type(path, opened.read(sniff.HEAD_BYTES))

    def check(self, path: str) -> int:
        """The same confinement and size checks as `inspect`, any type (a file for a
        sandbox, not for a model). Returns its size."""
        with self.roots.open(path) as opened:
            self._check_size(path, opened.size)
            return opened.size

    def read_bytes(self, path: str) -> tuple[Path, bytes]:
        """The real path and the bytes of a confined file within the size cap."""
        with self.roots.open(path) as opened:
            self._check_size(path, opened.size)
            data = opened.read(self.limits.max_bytes + 1)
            real = opened.path
        self._check_size(path, len(data))  # it may have grown since
        return real, data

    def read(self, path: str) -> FileContent:
        with self.roots.open(path) as opened:
            self._check_size(path, opened.size)
            data = opened.read(self.limits.max_bytes + 1)
            real = opened.path
        self._check_size(path, len(data))  # it may have grown since
        media_type = self._media_type(path, data[:sniff.HEAD_BYTES])
        content = FileContent(str(real), real.name, media_type, len(data))
        if media_type in sniff.IMAGE_TYPES:
            check_image(path, data)
            content.parts = [image_part(real.name, media_type, data)]
        elif media_type == sniff.PDF:
            content.parts = [{"type": "document", "media_type": media_type, "name": real.name,
                              "data": base64.b64encode(data).decode(),
                              "text": pdf_text(path, data, self.limits.max_text_chars)}]
        elif media_type in sniff.AUDIO_TYPES:
            content.parts = [self._transcript(real.name, data)]
        elif media_type in sniff.VIDEO_TYPES:
            info = media.probe(data)
            frames = media.frames(data, self.limits.video_frames, self.limits.frame_max_side,
                                  info.duration_s)
            content.parts = [image_part(f"{real.name} frame {i + 1}/{len(frames)}",
                                        "image/jpeg", frame) for i, frame in enumerate(frames)]
            if info.has_audio:
                content.parts.append(self._transcript(real.name, media.sound_track(data)))
        else:
            encoding = sniff.text_encoding(data) or "utf-8"
            text = data.decode(encoding, errors="replace")
            content.parts = [{"type": "text", "text": f"[file {real.name}]\n"
                                                      f"{cut(text, self.limits.max_text_chars)}"}]
        return content

    def listing(self, path: Optional[str] = None) -> dict:
        """A folder's entries (name, kind, size, modified); without a path, the roots."""
        if path is None or path in ("", "/"):
            return {"path": None, "entries": [
                {"name": str(root), "kind": "folder"} for root in self.roots.roots
                if root.is_dir()]}
        folder = self.roots.folder(path)
        entries = []
        with os.scandir(folder) as found:
            for entry in sorted(found, key=lambda e: e.name):
                try:
                    real = Path(os.path.realpath(entry.path))
                    if not self.roots.contains(real):
                        continue  # a link that leaves the roots is not shown
                    info = real.stat()
                except OSError:
                    continue
                kind = "folder" if stat.S_ISDIR(info.st_mode) else \
                    "file" if stat.S_ISREG(info.st_mode) else None
                if kind:
                    entries.append({"name": entry.name, "kind": kind,
                                    **({"size": info.st_size} if kind == "file" else {}),
                                    "modified": int(info.st_mtime)})
        return {"path": str(folder), "entries": entries}

    @staticmethod
    def _media_type(path: str, head: bytes) -> str:
        media_type = sniff.media_type(head)
        if media_type is None:
            raise FileRefused("unsupported_type", f"{path!r} {sniff.describe(head)}: not a "
                              f"type that can be read ({SUPPORTED})")
        return media_type

    def _check_size(self, path: str, size: int) -> None:
        if size > self.limits.max_bytes:
            raise FileRefused("too_large", f"{path!r} is {size} bytes or more; files may be at "
                              f"most {self.limits.max_bytes} bytes")

    def _transcript(self, name: str, audio: bytes) -> dict:
        if self.transcriber is None:
            raise FileRefused("unsupported_type", "audio cannot be transcribed here")
        try:
            text = self.transcriber.transcribe(audio, name if "." in name else name + ".wav")
        except RuntimeError as exc:  # TranscriptionUnavailable: no provider, or it failed
            raise FileRefused("transcription_failed", str(exc)) from None
        return {"type": "text", "text": f"[transcript of {name}]\n"
                                        f"{cut(text, self.limits.max_text_chars)}"}


def image_part(name: str, media_type: str, data: bytes) -> dict:
    return {"type": "image", "media_type": media_type, "name": name,
            "data": base64.b64encode(data).decode()}


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
