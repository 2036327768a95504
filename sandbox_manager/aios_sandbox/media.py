"""The media type of a run's output file, decided by its content: a name can say `.png` of
an HTML page. The name only refines text into one of the text types it names."""

import io
import json
import zipfile

OCTET = "application/octet-stream"
MAGIC = [  # (offset, bytes, type), first match wins
    (0, b"\x89PNG\r\n\x1a\n", "image/png"),
    (0, b"\xff\xd8\xff", "image/jpeg"),
    (0, b"GIF87a", "image/gif"),
    (0, b"GIF89a", "image/gif"),
    (8, b"WEBP", "image/webp"),
    (0, b"%PDF-", "application/pdf"),
    (0, b"PAR1", "application/vnd.apache.parquet"),
    (0, b"ARROW1", "application/vnd.apache.arrow.file"),
    (0, b"\x1f\x8b", "application/gzip"),
    (0, b"BM", "image/bmp"),
    (0, b"II*\x00", "image/tiff"),
    (0, b"MM\x00*", "image/tiff"),
]
OFFICE = {  # a zip's first folder tells an Office file from a plain archive
    "xl/": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "word/": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "ppt/": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
}
TEXT_BY_SUFFIX = {".csv": "text/csv", ".tsv": "text/tab-separated-values",
                  ".md": "text/markdown"}


def media_type(data: bytes, name: str = "") -> str:
    for offset, magic, kind in MAGIC:
        if data[offset:offset + len(magic)] == magic:
            return kind
    if data.startswith(b"PK\x03\x04"):
        return _zip_type(data)
    text = _text(data)
    if text is None:
        return OCTET
    return _text_type(text, name)


def _zip_type(data: bytes) -> str:
    try:
        names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    except (zipfile.BadZipFile, ValueError):
        return OCTET
    for prefix, kind in OFFICE.items():
        if any(n.startswith(prefix) for n in names):
            return kind
    return "application/zip"


def _text(data: bytes):
    if b"\x00" in data[:8192]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _text_type(text: str, name: str) -> str:
    head = text.lstrip()[:512].lower()
    if head.startswith("<svg") or (head.startswith("<?xml") and "<svg" in head):
        return "image/svg+xml"
    if head.startswith(("<!doctype html", "<html")):
        return "text/html"
    if head.startswith(("{", "[")):
        try:
            json.loads(text)
            return "application/json"
        except ValueError:
            pass
    suffix = name[name.rfind("."):].lower() if "." in name else ""
    return TEXT_BY_SUFFIX.get(suffix, "text/plain")
