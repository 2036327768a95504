"""`run_code`: Python or bash in a sandbox with a live Python interpreter. It lives as long
as the agent run, or, with a session, as long as the conversation keeps using it. Output
streams as the task's stdout/stderr events; figures and ~/outputs files become the task's
artifacts, and the images among them go back to the model, so it sees its own charts."""

import json

from ..deps import Deps
from ..files.reader import image_part
from ..files.sniff import IMAGE_TYPES
from ..sandbox.artifacts import publish_outputs
from ..sandbox.capacity import waiting_for_capacity
from ..sandbox.client import SandboxError
from .base import ToolContext, ToolError, ToolOutput
from .sandbox import NOTE, RunSandbox

ARTIFACTS = "artifacts"  # every artifact of the run, for its result
DESCRIPTION = (
    "Run Python or bash in an isolated Linux sandbox (python3.11 with numpy, pandas, "
    "matplotlib, scipy, openpyxl, pyarrow; pip, git, curl, gcc). Python runs in a live "
    "interpreter: variables and imports stay from one call to the next. The working "
    "directory and its files stay too; files you write under ~/outputs/ and matplotlib "
    "figures you show come back to the user, and images back to you. Returns exit_code, "
    "stdout, stderr, and the value of a last bare expression (execute_result).")


def parameters(network: bool) -> dict:
    properties = {
        "language": {"type": "string", "enum": ["python", "bash"]},
        "code": {"type": "string", "description": "the program to run"},
        "timeout_s": {"type": "number", "description": "default 30, at most 300"},
        "reset": {"type": "boolean", "description": "restart the Python interpreter first "
                  "(variables and imports are lost; files stay)"},
    }
    if network:
        properties["network"] = {"type": "boolean", "description": (
            "give this call HTTP(S) access through a filtering proxy (e.g. pip install, "
            "git clone); off by default")}
    return {"type": "object", "properties": properties, "required": ["language", "code"]}


class RunCode:
    name = "run_code"
    description = DESCRIPTION

    def __init__(self, deps: Deps, network: bool):
        self.sandbox = deps.sandbox
        self.run_sandbox = RunSandbox(deps, network)
        self.artifacts = deps.artifacts
        self.max_output_chars = deps.settings.tool_result_max_chars
        self.network = network
        self.parameters = parameters(network)

    def run(self, arguments: dict, ctx: ToolContext) -> ToolOutput:
        body = self._body(arguments)
        if body.get("network"):
            ctx.approve("run_code.network", "this code gets HTTP(S) access to the internet "
                        "(through the filtering proxy): it could send data out",
                        {"language": body["language"], "code": body["code"]})
        try:
            sandbox_id = self.run_sandbox.of(ctx)
            if arguments.get("reset"):
                self.sandbox.reset(sandbox_id)
            result = waiting_for_capacity(lambda: self.sandbox.exec(
                sandbox_id, body, lambda stream, text: ctx.emit(stream, {"text": text}),
                register_close=ctx.on_cancel), ctx.emit, ctx.wait)
        except SandboxError as exc:
            raise ToolError(f"the sandbox failed: {exc}{self.run_sandbox.lost(ctx, exc)}") from exc
        published = publish_outputs(ctx, result, self.artifacts)
        ctx.state.setdefault(ARTIFACTS, []).extend(p.artifact for p in published)
        images = [image_part(p.artifact["name"], p.artifact["mime"], p.data)
                  for p in published if p.artifact["mime"] in IMAGE_TYPES]
        summary = self._summary(result, ctx)
        return ToolOutput(json.dumps(summary), images, summary)

    def _body(self, arguments: dict) -> dict:
        language, code = arguments.get("language"), arguments.get("code")
        if language not in ("python", "bash") or not isinstance(code, str) or not code:
            raise ToolError("run_code needs language 'python' or 'bash' and non-empty code")
        timeout_s = arguments.get("timeout_s", 30)
        if not isinstance(timeout_s, (int, float)) or not 0 < timeout_s <= 300:
            raise ToolError("timeout_s must be a number of seconds between 0 and 300")
        body = {"language": language, "code": code, "timeout_s": timeout_s}
        if arguments.get("network") and not self.network:
            raise ToolError("network access is not enabled on this AI-OS")
        if self.network:
            body["network"] = bool(arguments.get("network"))
        return body

    def _summary(self, result: dict, ctx: ToolContext) -> dict:
        """What the model reads: the run's essentials, and only what is worth saying."""
        summary = {"exit_code": result["exit_code"], "end_reason": result.get("end_reason"),
                   "stdout": self._cut(result["stdout"]), "stderr": self._cut(result["stderr"])}
        if result.get("execute_result") is not None:
            summary["execute_result"] = self._cut(result["execute_result"])
        if (result.get("interpreter") or {}).get("note"):
            summary["interpreter"] = result["interpreter"]["note"]
        if result["artifacts"]:
            summary["artifacts"] = [{k: a[k] for k in ("name", "mime", "size")}
                                    for a in result["artifacts"]]
        if result.get("outputs_truncated"):
            summary["outputs_dropped"] = result.get("outputs_dropped")
        if ctx.state.get(NOTE):
            summary["note"] = ctx.state.pop(NOTE)
        return summary

    def attach(self, ctx: ToolContext, attached: list) -> None:
        """Copies the task's attachments into the sandbox's working directory."""
        self.run_sandbox.put(ctx, attached)

    def _cut(self, text: str) -> str:
        if len(text) <= self.max_output_chars:
            return text
        return text[:self.max_output_chars] + f"\n[... cut at {self.max_output_chars} characters]"


def make_run_code(deps: Deps) -> RunCode:
    return RunCode(deps, network=deps.sandbox.egress_allowed())
