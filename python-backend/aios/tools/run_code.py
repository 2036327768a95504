"""`run_code`: Python or bash in a sandbox that lives as long as the agent run, so files one
step writes are there for the next. Output streams as the task's stdout/stderr events."""

from ..tasks.sandbox_client import SandboxClient, SandboxError
from .base import ToolContext, ToolError

SANDBOX = "run_code.sandbox"  # its id in the run's tool state


class RunCode:
    name = "run_code"
    description = ("Run Python or bash code in an isolated Linux sandbox without network "
                   "access. Files written in one call are there in the next call of this "
                   "conversation turn. Returns exit_code, stdout and stderr.")
    parameters = {
        "type": "object",
        "properties": {
            "language": {"type": "string", "enum": ["python", "bash"]},
            "code": {"type": "string", "description": "the program to run"},
            "timeout_s": {"type": "number", "description": "default 30, at most 300"},
        },
        "required": ["language", "code"],
    }

    def __init__(self, sandbox: SandboxClient, run_ttl_s: float, max_output_chars: int):
        self.sandbox = sandbox
        self.run_ttl_s = run_ttl_s
        self.max_output_chars = max_output_chars

    def run(self, arguments: dict, ctx: ToolContext) -> dict:
        language, code = arguments.get("language"), arguments.get("code")
        if language not in ("python", "bash") or not isinstance(code, str) or not code:
            raise ToolError("run_code needs language 'python' or 'bash' and non-empty code")
        timeout_s = arguments.get("timeout_s", 30)
        if not isinstance(timeout_s, (int, float)) or not 0 < timeout_s <= 300:
            raise ToolError("timeout_s must be a number of seconds between 0 and 300")
        try:
            result = self.sandbox.exec(self._sandbox_of(ctx), {
                "language": language, "code": code, "timeout_s": timeout_s},
                lambda stream, text: ctx.emit(stream, {"text": text}),
                register_close=ctx.on_cancel)
        except SandboxError as exc:
            raise ToolError(f"the sandbox failed: {exc}") from exc
        return {"exit_code": result["exit_code"], "end_reason": result.get("end_reason"),
                "stdout": self._cut(result["stdout"]), "stderr": self._cut(result["stderr"])}

    def _sandbox_of(self, ctx: ToolContext) -> str:
        if SANDBOX not in ctx.state:
            try:
                sandbox_id = self.sandbox.create_session(f"task:{ctx.task_id}", self.run_ttl_s,
                                                         timeout_s=30)
            except SandboxError as exc:
                raise ToolError(f"no sandbox available: {exc}") from exc
            ctx.state[SANDBOX] = sandbox_id
            ctx.cleanups.append(lambda: self.sandbox.destroy(sandbox_id))
        return ctx.state[SANDBOX]

    def _cut(self, text: str) -> str:
        if len(text) <= self.max_output_chars:
            return text
        return text[:self.max_output_chars] + f"\n[... cut at {self.max_output_chars} characters]"


def make_run_code(resources) -> RunCode:
    settings = resources.settings
    # The sandbox outlives a crashed worker by its TTL at most: the manager's reaper ends it
    return RunCode(resources.sandbox, settings.agent_max_seconds + 60,
                   settings.tool_result_max_chars)
