"""A file's type from its first bytes, not from its name."""

from typing import Optional

HEAD_BYTES = 4096

IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")
AUDIO_TYPES = ("audio/wav", "audio/mpeg", "audio/ogg", "audio/flac", "audio/mp4")
VIDEO_TYPES = ("video/mp4", "video/quicktime", "video/webm", "video/x-msvideo")
PDF = "application/pdf"
TEXT = "text/plain"


def media_type(head: bytes) -> Optional[str]:
    av = audio_or_video(head)
    if av:
        return av
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith(b"%PDF-"):
        return PDF
    if text_encoding(head):
        return TEXT
    return None


def audio_or_video(head: bytes) -> Optional[str]:
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio/wav"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "video/x-msvideo"
    if head[:3] == b"ID3" or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "audio/mpeg"
    if head[:4] == b"OggS":
        return "audio/ogg"
    if head[:4] == b"fLaC":
        return "audio/flac"
    if head[4:8] == b"ftyp":  # ISO base media: the brand tells audio (M4A) from video
        brand = head[8:12]
        if brand in (b"M4A ", b"M4B "):
            return "audio/mp4"
        return "video/quicktime" if brand == b"qt  " else "video/mp4"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "video/webm"
    return None


def looks_like_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    for cut in range(4):  # the head may end inside a multi-byte character
        try:
            head[:len(head) - cut].decode("utf-8")
            return True
        except UnicodeDecodeError:
            continue
    return False


def describe(head: bytes) -> str:
    """A hint for an unsupported type's error message."""
    return f"starts with {head[:8]!r}" if head else "is empty"


# Single-byte code pages of Latin-script text: guessers often cannot tell them apart on
# a short sample, and Windows-1252 is by far the most common of them on desktops.
LATIN_CODE_PAGES = {"cp1250", "cp1252", "cp1254", "cp1257", "latin_1", "iso8859_2",
                    "iso8859_3", "iso8859_4", "iso8859_9", "iso8859_10", "iso8859_13",
                    "iso8859_14", "iso8859_15", "iso8859_16", "mac_latin2", "mac_roman",
                    "mac_iceland", "cp775", "cp850", "cp437", "cp858"}


def text_encoding(data: bytes) -> Optional[str]:
    """The encoding text seems to be in: UTF-8 first, UTF-16 with a BOM, else the guess of
    charset-normalizer (Windows-1252 for Latin-script text that decodes as such); None
    for binary data."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    if looks_like_text(data):
        return "utf-8"
    if b"\x00" in data:
        return None
    from charset_normalizer import from_bytes
    best = from_bytes(data).best()
    if best is None or best.percent_chaos >= 20:
        return None
    if best.encoding in LATIN_CODE_PAGES:
        try:
            data.decode("cp1252")
            return "cp1252"
        except UnicodeDecodeError:
            pass
    return best.encoding
