"""Files a user attaches to a `code` or `agent` task: read from the allowed folders (the
same rules as chat attachments, any type) and copied into the sandbox's working directory
under their own names; a clash is resolved visibly (`sales (2).csv`)."""

import mimetypes
import re
from dataclasses import dataclass
from pathlib import Path

from ..files import sniff
from ..files.reader import FileReader
from .artifacts import safe_name, unique_name

UPLOAD_PREFIX = re.compile(r"^[0-9a-f]{16}-")  # what POST /api/files puts before a name


@dataclass
class Attachment:
    path: str  # as the client gave it
    name: str  # in the sandbox's working directory
    data: bytes

    @property
    def media_type(self) -> str:
        return sniff.media_type(self.data[:sniff.HEAD_BYTES]) \
            or mimetypes.guess_type(self.name)[0] or "application/octet-stream"

    def describe(self) -> str:
        return f"{self.name} ({len(self.data):,} bytes, {self.media_type})"

    def listed(self) -> dict:
        return {"path": self.path, "name": self.name, "size": len(self.data)}


def load(files: FileReader, paths: list[str], upload_dir: str, taken=()) -> list[Attachment]:
    """Reads each file (FileRefused for one we may not read) and names it for the sandbox."""
    names, attached = set(taken), []
    uploads = Path(upload_dir).resolve()
    for path in paths:
        real, data = files.read_bytes(path)
        name = real.name
        if real.parent == uploads:
            name = UPLOAD_PREFIX.sub("", name) or name  # the name the user uploaded
        name = unique_name(safe_name(name), names)
        names.add(name)
        attached.append(Attachment(path, name, data))
    return attached


def note_for_model(attached: list[Attachment]) -> str:
    return ("Files attached by the user, in the working directory of your run_code sandbox: "
            + "; ".join(a.describe() for a in attached) + ".")
