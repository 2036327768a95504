"""Paths from clients, confined to the allowed roots (the mounted Downloads and Documents,
the project's tmp/). A path is accepted only if the file actually opened lies under a
root: `..` is refused outright, and symlinks may move within a root but not leave it."""

import os
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Optional


class FileRefused(ValueError):
    """A client's path that we will not read; `code` is stable, the message says why."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


@dataclass
class OpenedFile:
    fd: int
    path: Path   # the real path of what was opened
    size: int

    def read(self, limit: int) -> bytes:
        chunks, left = [], limit
        while left > 0:
            chunk = os.read(self.fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

    def close(self) -> None:
        os.close(self.fd)

    def __enter__(self) -> "OpenedFile":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class FileRoots:
    def __init__(self, roots: list[str]):
        self.roots = [Path(os.path.realpath(root)) for root in roots]

    def describe(self) -> str:
        return ", ".join(str(root) for root in self.roots)

    def open(self, path: object) -> OpenedFile:
        """Opens a regular file under a root for reading, or raises FileRefused."""
        for candidate in self._candidates(path):
            if not os.path.lexists(candidate):
                continue
            real = Path(os.path.realpath(candidate))
            if self._root_of(real) is None:
                raise FileRefused("outside_roots", f"{path!r} leads outside the allowed "
                                  f"folders ({self.describe()}) through a symbolic link")
            return self._open_regular(path, real)
        raise FileRefused("not_found", f"no file {path!r} in the allowed folders")

    def folder(self, path: object) -> Path:
        """The real path of a folder under a root, or FileRefused."""
        for candidate in self._candidates(path):
            if not os.path.lexists(candidate):
                continue
            real = Path(os.path.realpath(candidate))
            if not self.contains(real):
                raise FileRefused("outside_roots", f"{path!r} leads outside the allowed "
                                  f"folders ({self.describe()}) through a symbolic link")
            if not real.is_dir():
                raise FileRefused("not_a_folder", f"{path!r} is not a folder")
            return real
        raise FileRefused("not_found", f"no folder {path!r} in the allowed folders")

    def contains(self, real: Path) -> bool:
        return self._root_of(real) is not None

    def _candidates(self, path: object) -> list[Path]:
        if not isinstance(path, str) or not path.strip() or "\x00" in path:
            raise FileRefused("invalid_path", "a path must be a non-empty string")
        pure = PurePosixPath(path)
        if ".." in pure.parts:
            raise FileRefused("outside_roots", f"{path!r}: '..' is not allowed in paths")
        if pure.is_absolute():
            if self._root_of(Path(pure), lexical=True) is None:
                raise FileRefused("outside_roots", f"{path!r} is not under an allowed folder "
                                  f"({self.describe()})")
            return [Path(pure)]
        return [root / pure for root in self.roots]  # relative: the first root that has it

    def _root_of(self, path: Path, lexical: bool = False) -> Optional[Path]:
        for root in self.roots:
            if path == root or root in path.parents:
                return root
        if lexical:  # a root given through a symlinked parent (e.g. /tmp -> /private/tmp)
            return self._root_of(Path(os.path.realpath(path.parent)) / path.name)
        return None

    def _open_regular(self, asked: object, real: Path) -> OpenedFile:
        try:
            # O_NONBLOCK: opening a FIFO must not wait for a writer; O_NOFOLLOW: the last
            # component cannot have become a link since realpath looked.
            fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError:
            raise FileRefused("not_found", f"no file {asked!r}") from None
        except OSError as exc:
            raise FileRefused("unreadable", f"{asked!r} cannot be read: {exc.strerror}") from None
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                kind = "a folder" if stat.S_ISDIR(info.st_mode) else "not a regular file"
                raise FileRefused("not_a_file", f"{asked!r} is {kind}")
            opened = Path(os.readlink(f"/proc/self/fd/{fd}"))
            if self._root_of(opened) is None:  # a parent folder was swapped meanwhile
                raise FileRefused("outside_roots", f"{asked!r} left the allowed folders")
            os.set_blocking(fd, True)
            return OpenedFile(fd, opened, info.st_size)
        except BaseException:
            os.close(fd)
            raise
