"""A task's artifacts: the figures and ~/outputs files its sandbox runs gave back, kept
under tmp/artifacts/<task_id>/ for the task's retention time and served by the web with the
token. The sandbox manager typed each by its content; that type is kept in an index beside
them, and only names in the index are ever served (no path reaches the disk from a URL)."""

import base64
import json
import os
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional
from urllib.parse import quote

from ..files.uploads import sweep

INDEX = ".index.json"
NAME_MAX = 120
_UNSAFE = re.compile(r"[^\w .()+,=@-]")  # \w is Unicode letters and digits: names stay readable
SWEEP_EVERY_S = 60.0


@dataclass(frozen=True)
class Artifact:
    name: str
    mime: str
    size: int

    def public(self, task_id: str) -> dict:
        return dict(asdict(self), url=f"/api/tasks/{task_id}/artifacts/{quote(self.name)}")


def safe_name(name: str) -> str:
    """One path component a user would recognize: `plots/a b.png` -> `plots_a b.png`."""
    flat = _UNSAFE.sub("_", name.replace("/", "_")).strip(" .") or "artifact"
    if len(flat) > NAME_MAX:
        _, dot, suffix = flat.rpartition(".")
        keep = "." + suffix[:16] if dot else ""
        flat = flat[:NAME_MAX - len(keep)].rstrip(" .") + keep
    return flat


def unique_name(name: str, taken) -> str:
    """`name`, or `stem (2).ext`, `stem (3).ext`... when it is taken."""
    if name not in taken:
        return name
    stem, dot, suffix = name.rpartition(".")
    stem, suffix = (stem, dot + suffix) if stem else (name, "")
    n = 2
    while f"{stem} ({n}){suffix}" in taken:
        n += 1
    return f"{stem} ({n}){suffix}"


class ArtifactStore:
    def __init__(self, root: Path, retention_s: float):
        self.root = Path(root)
        self.retention_s = retention_s
        self._swept_at = 0.0

    def save(self, task_id: str, name: str, data: bytes, mime: str) -> Artifact:
        self._sweep_now_and_then()
        folder = self.root / task_id
        folder.mkdir(parents=True, exist_ok=True)
        index = self._index(folder)
        final = unique_name(safe_name(name), index)
        # O_EXCL|O_NOFOLLOW: never through a link, never over another file
        fd = os.open(folder / final, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o640)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        index[final] = {"mime": mime, "size": len(data)}
        partial = folder / (INDEX + ".partial")
        partial.write_text(json.dumps(index))
        partial.replace(folder / INDEX)
        return Artifact(final, mime, len(data))

    def find(self, task_id: str, name: str) -> Optional[tuple[Path, Artifact]]:
        """The file of an artifact named in the task's index, or None."""
        folder = self.root / task_id
        meta = self._index(folder).get(name) if folder.is_dir() else None
        if meta is None or name.startswith("."):
            return None
        path = folder / name
        if not path.is_file() or path.is_symlink():
            return None
        return path, Artifact(name, meta["mime"], meta["size"])

    def listing(self, task_id: str) -> list[Artifact]:
        index = self._index(self.root / task_id)
        return [Artifact(n, m["mime"], m["size"]) for n, m in index.items()]

    def _index(self, folder: Path) -> dict:
        try:
            return json.loads((folder / INDEX).read_text())
        except (OSError, ValueError):
            return {}

    def _sweep_now_and_then(self) -> None:
        now = time.monotonic()
        if now - self._swept_at >= SWEEP_EVERY_S:
            self._swept_at = now
            self.sweep()

    def sweep(self) -> int:
        """Removes the artifacts of tasks older than the retention; returns how many tasks."""
        return sweep(self.root, self.retention_s)


@dataclass
class Published:
    artifact: dict  # {name, mime, size, url}
    data: bytes


def publish_outputs(ctx, result: dict, store: ArtifactStore) -> list[Published]:
    """A sandbox result's outputs become the task's artifacts: saved, each announced by an
    `artifact` event, and listed in the result (`artifacts`) in place of their bytes."""
    published = []
    for output in result.pop("outputs", None) or []:
        data = base64.b64decode(output["data_base64"])
        artifact = store.save(ctx.task_id, output["name"], data, output["mime"])
        public = artifact.public(ctx.task_id)
        ctx.emit("artifact", public)
        published.append(Published(public, data))
    result["artifacts"] = [p.artifact for p in published]
    return published
