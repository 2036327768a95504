"""Fitting an image to a provider's limits: longest side and encoded size."""

import base64
import io

KEEP_FORMAT = {"image/png": "PNG", "image/jpeg": "JPEG", "image/webp": "WEBP"}


def fit(part: dict, max_side: int, max_bytes: int) -> tuple[str, str]:
    """(media_type, base64 data) of an image part, scaled down and re-encoded only when it
    exceeds the limits; a GIF is sent as its first frame when it must change."""
    data = base64.b64decode(part["data"])
    from PIL import Image
    with Image.open(io.BytesIO(data)) as image:
        if max(image.size) <= max_side and len(data) <= max_bytes:
            return part["media_type"], part["data"]
        image.load()
        if max(image.size) > max_side:
            image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
        media_type = part["media_type"] if part["media_type"] in KEEP_FORMAT else "image/png"
        encoded = _encode(image, media_type)
        quality = 85
        while len(encoded) > max_bytes:  # too large still: JPEG, lower quality, then smaller
            media_type = "image/jpeg"
            if quality > 40:
                quality -= 15
            else:
                image.thumbnail((image.width * 3 // 4, image.height * 3 // 4))
            encoded = _encode(image, media_type, quality)
    return media_type, base64.b64encode(encoded).decode()


def _encode(image, media_type: str, quality: int = 85) -> bytes:
    out = io.BytesIO()
    if media_type == "image/jpeg" and image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    image.save(out, KEEP_FORMAT[media_type], **({"quality": quality}
                                                if media_type != "image/png" else {}))
    return out.getvalue()
