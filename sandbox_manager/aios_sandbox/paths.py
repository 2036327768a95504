"""Client-supplied sandbox paths: relative, inside the sandbox home, nothing clever."""

from .errors import ServiceError

MAX_PATH = 1024


class BadPath(ServiceError):
    status, code = 400, "bad_path"


def check_relative_path(path: str) -> str:
    """The path unchanged if it is a plain relative path; BadPath otherwise.

    The supervisor checks again inside the sandbox, without following symlinks."""
    if not path:
        raise BadPath("path is empty")
    if len(path) > MAX_PATH or "\x00" in path:
        raise BadPath("path is too long or contains a NUL byte")
    if any(ord(c) < 32 or ord(c) == 127 for c in path):
        raise BadPath(f"path {path!r} contains a control character")
    if "\ufffd" in path:  # what the URL's undecodable bytes became
        raise BadPath(f"path {path!r} is not valid UTF-8")
    if path.startswith("/"):
        raise BadPath(f"path {path!r} is absolute; give it relative to the sandbox home")
    if any(part in ("", ".", "..") for part in path.split("/")):
        raise BadPath(f"path {path!r} has an empty, '.' or '..' part")
    return path
