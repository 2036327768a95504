"""A run's outputs: the files under ~/outputs when it ends (figures land there too), sent
to the manager once and removed, within a count and byte caps."""

import base64
import os
import shutil
import stat

from aios_files import HOME
from aios_processes import send

OUTPUTS = os.path.join(HOME, "outputs")
SCAN_MAX = 10000  # entries looked at per run; past it the rest is dropped unseen
NAME_MAX = 255
DROPPED_LISTED = 100  # a result names at most this many dropped files


def display_name(rel):
    """A printable, UTF-8 name for a path whose bytes may be anything."""
    text = os.fsencode(rel).decode("utf-8", "replace")
    text = "".join("_" if ord(c) < 32 or ord(c) == 127 else c for c in text)
    return text[:NAME_MAX]


def _found():
    """(mtime, rel, dirfd, name, size) of regular files, oldest first; and whether the
    scan stopped early. Symlinks, FIFOs and devices are never opened."""
    files, seen = [], 0
    for dirpath, _dirnames, filenames, dirfd in os.fwalk(OUTPUTS):
        for name in filenames:
            seen += 1
            if seen > SCAN_MAX:
                return files, True
            try:
                info = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISREG(info.st_mode):
                rel = os.path.relpath(os.path.join(dirpath, name), OUTPUTS)
                files.append((info.st_mtime_ns, rel, info.st_size))
    files.sort()
    return files, False


def _read(rel, limit):
    fd = os.open(os.path.join(OUTPUTS, rel), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        chunks, total = [], 0
        while total <= limit:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def collect(max_count, max_file_bytes, max_total_bytes):
    """Send each output as an `out` frame; returns (dropped, truncated) for the result.
    ~/outputs is emptied whatever happens, so the next run returns only new files."""
    if not os.path.isdir(OUTPUTS) or os.path.islink(OUTPUTS):
        _reset()
        return [], False
    dropped, sent, total = [], 0, 0
    try:
        files, truncated = _found()
        for _, rel, size in files:
            name = display_name(rel)
            reason = ("count" if sent >= max_count else
                      "file_bytes" if size > max_file_bytes else
                      "total_bytes" if total + size > max_total_bytes else None)
            data = None if reason else _read_or_none(rel, max_file_bytes)
            if data is not None and (len(data) > max_file_bytes
                                     or total + len(data) > max_total_bytes):
                data, reason = None, "file_bytes"  # it grew after we looked
            if data is None:
                if len(dropped) < DROPPED_LISTED:
                    dropped.append({"name": name, "size": size, "reason": reason or "unreadable"})
                truncated = True
                continue
            send({"t": "out", "name": name, "size": len(data),
                  "data": base64.b64encode(data).decode()})
            sent += 1
            total += len(data)
    finally:
        _reset()
    return dropped, truncated


def _read_or_none(rel, limit):
    try:
        return _read(rel, limit)
    except OSError:
        return None  # replaced by a special file or removed meanwhile


def _reset():
    """An empty ~/outputs: everything in it goes, links and special files included."""
    if os.path.islink(OUTPUTS) or (os.path.exists(OUTPUTS) and not os.path.isdir(OUTPUTS)):
        os.unlink(OUTPUTS)
    os.makedirs(OUTPUTS, mode=0o755, exist_ok=True)
    with os.scandir(OUTPUTS) as entries:
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path)  # fd-based: never follows a link out
                else:
                    os.unlink(entry.path)
            except OSError:
                pass
