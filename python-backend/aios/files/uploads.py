"""Files the desktop app uploads (so a user can attach a file that is not under a mounted
folder): saved under the upload folder with a sanitized, unique name, size-capped, and
removed after a retention time."""

import os
import secrets
import shutil
import time
from pathlib import Path
from typing import BinaryIO

from werkzeug.utils import secure_filename

from .roots import FileRefused

CHUNK = 1 << 20


def save_upload(stream: BinaryIO, filename: str, folder: Path, max_bytes: int) -> Path:
    """Copies at most max_bytes; a larger upload leaves nothing behind."""
    name = secure_filename(filename or "")[-100:] or "upload"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{secrets.token_hex(8)}-{name}"
    written = 0
    try:
        # O_EXCL|O_NOFOLLOW: never through a link planted in the folder, never over a file
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as out:
            while chunk := stream.read(CHUNK):
                written += len(chunk)
                if written > max_bytes:
                    raise FileRefused("too_large", f"uploads may be at most {max_bytes} bytes")
                out.write(chunk)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return target


def sweep(folder: Path, max_age_s: float) -> int:
    """Removes the entries of `folder` (files, or folders with all they hold) not changed
    for max_age_s; returns how many."""
    if not folder.is_dir():
        return 0
    cutoff, removed = time.time() - max_age_s, 0
    for entry in os.scandir(folder):
        try:
            if entry.is_symlink() or entry.stat().st_mtime >= cutoff:
                continue
            if entry.is_dir():
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
            removed += 1
        except FileNotFoundError:
            continue  # another process swept it
    return removed
