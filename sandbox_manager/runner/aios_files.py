"""Files under the sandbox home, opened without following any symlink on the way."""

import os
import stat

HOME = os.environ.get("HOME", "/home/sandboxuser")
CHUNK = 65536


class RequestError(Exception):
    """A request the supervisor refuses; code and message go back to the manager."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


def path_parts(rel):
    if not isinstance(rel, str) or not rel or "\x00" in rel or rel.startswith("/"):
        raise RequestError("bad_path", "path must be a non-empty relative path")
    parts = rel.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise RequestError("bad_path", "path must not contain empty, '.' or '..' parts")
    return parts


def open_in_home(rel, write):
    """Open a regular file under HOME without following any symlink on the way."""
    parts = path_parts(rel)
    dir_flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
    dirfd = os.open(HOME, dir_flags)
    try:
        for part in parts[:-1]:
            try:
                nxt = os.open(part, dir_flags, dir_fd=dirfd)
            except FileNotFoundError:
                if not write:
                    raise RequestError("not_found", f"no such file: {rel}") from None
                os.mkdir(part, 0o700, dir_fd=dirfd)
                nxt = os.open(part, dir_flags, dir_fd=dirfd)
            except OSError:
                raise RequestError(
                    "bad_path", f"'{part}' in {rel} is not a directory (or is a symlink)") from None
            os.close(dirfd)
            dirfd = nxt
        flags = os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        flags |= (os.O_WRONLY | os.O_CREAT) if write else os.O_RDONLY
        try:
            fd = os.open(parts[-1], flags, 0o600, dir_fd=dirfd)
        except FileNotFoundError:
            raise RequestError("not_found", f"no such file: {rel}") from None
        except OSError as exc:
            raise RequestError("bad_path", f"cannot open {rel}: symlink or special file "
                                           f"({exc.strerror})") from None
    finally:
        os.close(dirfd)
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise RequestError("bad_path", f"{rel} is not a regular file")
    if info.st_nlink > 1:
        os.close(fd)
        raise RequestError("bad_path", f"{rel} is a hard link")
    return fd


def write_file(rel, data):
    fd = open_in_home(rel, write=True)
    try:
        os.ftruncate(fd, 0)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    except OSError as exc:
        raise RequestError("write_failed", f"cannot write {rel}: {exc.strerror}") from None
    finally:
        os.close(fd)


def read_file(rel, max_bytes):
    fd = open_in_home(rel, write=False)
    try:
        if os.fstat(fd).st_size > max_bytes:
            raise RequestError("too_large", f"{rel} is larger than {max_bytes} bytes")
        chunks, total = [], 0
        while True:
            chunk = os.read(fd, CHUNK)
            if not chunk:
                break
            total += len(chunk)
            if total > max_bytes:
                raise RequestError("too_large", f"{rel} is larger than {max_bytes} bytes")
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)
