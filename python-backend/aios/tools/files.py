"""`list_files` and `read_file`: the user's files under the allowed roots, through the same
reader as chat attachments (text, images, PDFs, audio transcripts, video frames)."""

from ..files.reader import FileReader
from ..files.roots import FileRefused
from .base import ToolContext, ToolError, ToolOutput

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
            return self.files.listing(arguments.get("path"))
        except FileRefused as exc:
            raise ToolError(f"{exc.code}: {exc}") from None


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
        header = f"{content.path} ({content.media_type}, {content.size} bytes)\n"
        return ToolOutput(header + content.text(), content.media())


def make_list_files(resources) -> ListFiles:
    return ListFiles(resources.files)


def make_read_file(resources) -> ReadFile:
    return ReadFile(resources.files)
