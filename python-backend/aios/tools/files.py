"""`list_files` and `read_file`: the user's files under the allowed roots, through the same
reader as chat attachments (text, images, PDFs, audio transcripts, video frames); and
`copy_to_sandbox`, which hands one of them to the run's code instead of to the model."""

from ..approvals.taint import mark_user_data
from ..deps import Deps
from ..files.reader import FileReader
from ..files.roots import FileRefused
from ..sandbox import attachments
from ..sandbox.artifacts import safe_name
from .base import ToolContext, ToolError, ToolOutput
from .sandbox import RunSandbox

PATH_HELP = ("absolute under one of the allowed folders, or relative to one of them "
             "(the first that has it)")


class ListFiles:
    name = "list_files"
    description = ("List the entries (files and folders) of one of the user's folders; "
                   "without a path, the allowed top-level folders.")
    parameters = {"type": "object", "properties": {
        "path": {"type": "string", "description": f"a folder: {PATH_HELP}"}}}

    def __init__(self, files: FileReader):
        self.files = files

    def run(self, arguments: dict, ctx: ToolContext) -> dict:
        try:
            listing = self.files.listing(arguments.get("path"))
        except FileRefused as exc:
            raise ToolError(f"{exc.code}: {exc}") from None
        mark_user_data(ctx, f"the listing of {arguments.get('path') or 'your folders'}")
        return listing


class ReadFile:
    name = "read_file"
    description = ("Read one of the user's files: text as text, PDFs as text per page, "
                   "images as images, audio as a transcript, video as a few frames and the "
                   "transcript of its sound.")
    parameters = {"type": "object", "properties": {
        "path": {"type": "string", "description": f"a file: {PATH_HELP}"}},
        "required": ["path"]}

    def __init__(self, files: FileReader):
        self.files = files

    def run(self, arguments: dict, ctx: ToolContext) -> ToolOutput:
        try:
            content = self.files.read(arguments.get("path"))
        except FileRefused as exc:
            raise ToolError(f"{exc.code}: {exc}") from None
        mark_user_data(ctx, f"the file {content.path}")
        header = f"{content.path} ({content.media_type}, {content.size} bytes)\n"
        return ToolOutput(header + content.text(), content.media())


class CopyToSandbox:
    name = "copy_to_sandbox"
    description = ("Copy one of the user's files (found with list_files) into the working "
                   "directory of your run_code sandbox, so that code can open it by name. "
                   "(read_file is for reading a file yourself.)")
    parameters = {"type": "object", "properties": {
        "path": {"type": "string", "description": f"a file: {PATH_HELP}"},
        "name": {"type": "string", "description": "its name in the sandbox (default: its "
                 "own); an existing file of that name is replaced"}},
        "required": ["path"]}

    def __init__(self, files: FileReader, run_sandbox: RunSandbox, upload_dir: str):
        self.files = files
        self.run_sandbox = run_sandbox
        self.upload_dir = upload_dir

    def run(self, arguments: dict, ctx: ToolContext) -> dict:
        try:
            [copied] = attachments.load(self.files, [arguments.get("path")], self.upload_dir)
        except FileRefused as exc:
            raise ToolError(f"{exc.code}: {exc}") from None
        mark_user_data(ctx, f"the file {copied.path}")  # the sandbox's code may send it out
        if isinstance(arguments.get("name"), str) and arguments["name"].strip():
            copied.name = safe_name(arguments["name"])
        self.run_sandbox.put(ctx, [copied])
        return {"name": copied.name, "size": len(copied.data), "media_type": copied.media_type}


def make_copy_to_sandbox(deps: Deps) -> CopyToSandbox:
    return CopyToSandbox(deps.files, RunSandbox(deps, deps.sandbox.egress_allowed()),
                         deps.settings.upload_dir)


def make_list_files(deps: Deps) -> ListFiles:
    return ListFiles(deps.files)


def make_read_file(deps: Deps) -> ReadFile:
    return ReadFile(deps.files)
