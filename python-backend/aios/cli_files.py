"""The CLI's files: local files attached to a task (uploaded first) and the artifacts a task
gave back (listed, or downloaded without ever overwriting a file)."""

import itertools
import os
import sys
from pathlib import Path

from .cli_api import Api, CliError, error_text

ATTACHABLE = ("code", "agent", "chat")


# --- attachments --------------------------------------------------------------------------

def check_attachments(kind: str, given: list[str]) -> list[Path]:
    """The local files of --attach, all checked before anything is sent."""
    if given and kind not in ATTACHABLE:
        raise CliError(f"--attach works with code, agent and chat tasks, not {kind}")
    files = [Path(name).expanduser() for name in given]
    for file in files:
        if not file.is_file():
            raise CliError(f"--attach {file}: {'not a file' if file.exists() else 'no such file'}")
        if not os.access(file, os.R_OK):
            raise CliError(f"--attach {file}: not readable")
    return files


def upload(api: Api, files: list[Path]) -> list[str]:
    """Each file through POST /api/files: the paths the server gave them, for attachments."""
    paths = []
    for file in files:
        try:
            with file.open("rb") as stream:
                body = api.json("POST", "/api/files", ok=(201,),
                                files={"file": (file.name, stream)})
        except OSError as exc:
            raise CliError(f"cannot read {file}: {exc.strerror}") from None
        except CliError as exc:
            raise CliError(f"uploading {file} failed: {exc}") from None
        paths.append(body["path"])
    return paths


def with_attachments(task_input: dict, paths: list[str]) -> dict:
    """The uploads join any attachments --input already names."""
    if not paths:
        return task_input
    given = task_input.get("attachments") or []
    if not isinstance(given, list):
        raise CliError("the input's attachments must be a list of paths")
    return {**task_input, "attachments": [*given, *paths]}


# --- artifacts ----------------------------------------------------------------------------

def artifact_line(artifact: dict, base_url: str) -> str:
    """`figure-1.png (image/png, 23,053 bytes) http://…/artifacts/figure-1.png`"""
    size = artifact.get("size")
    size = f"{size:,} bytes" if isinstance(size, int) else "? bytes"
    return f"{artifact.get('name')} ({artifact.get('mime')}, {size}) " \
           f"{base_url}{artifact.get('url', '')}"


def cmd_artifacts(args, api: Api) -> int:
    response = api.request("GET", f"/api/tasks/{args.task_id}/artifacts", ok=(200, 404))
    if response.status_code == 404:
        print(f"aios: error: no task {args.task_id} ({error_text(response)})", file=sys.stderr)
        return 1
    artifacts = response.json()["artifacts"]
    if not artifacts:
        print(f"task {args.task_id} has no artifacts", file=sys.stderr)
    if args.out is None:
        for artifact in artifacts:
            print(artifact_line(artifact, api.url))
        return 0
    folder = Path(args.out).expanduser()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CliError(f"cannot create {folder}: {exc.strerror}") from None
    failed = 0
    for artifact in artifacts:
        response = api.request("GET", artifact["url"], ok=(200, 404))
        if response.status_code == 404:  # expired since it was listed
            print(f"aios: error: {artifact['name']}: {error_text(response)}", file=sys.stderr)
            failed += 1
            continue
        print(save(folder, artifact["name"], response.content), flush=True)
    return 1 if failed else 0


def save(folder: Path, name: str, data: bytes) -> Path:
    """Writes `folder/name`, or `name (2).ext`, `name (3).ext`... if that exists."""
    name = Path(name.replace("\\", "/")).name  # one component, whatever the server sent
    if name in ("", ".", ".."):
        name = "artifact"
    stem, dot, suffix = name.rpartition(".")
    stem, suffix = (stem, dot + suffix) if stem else (name, "")
    for n in itertools.count(1):
        path = folder / (name if n == 1 else f"{stem} ({n}){suffix}")
        try:
            with path.open("xb") as out:  # exclusive: an existing file (or link) is kept
                out.write(data)
            return path
        except FileExistsError:
            continue
        except OSError as exc:
            raise CliError(f"cannot write {path}: {exc.strerror}") from None
