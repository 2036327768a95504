"""The CLI's answers to a followed task's approval requests (approval_required events):
asked on the terminal (y/N), all allowed with --yes, or, without a terminal, denied by
`submit` (nobody can be asked) and left to other clients by `events`."""

import json
import sys
from typing import Callable

from .cli_api import Api, CliError

MODES = ("ask", "yes", "deny", "watch")


def mode_for(args, command: str, interactive: Callable[[], bool] = sys.stdin.isatty) -> str:
    if getattr(args, "yes", False):
        return "yes"
    if interactive():
        return "ask"
    return "deny" if command == "submit" else "watch"


def ask_terminal(prompt: str) -> str:
    """The user's line; the prompt on stderr, so that stdout keeps only the task's output."""
    sys.stderr.write(prompt)
    sys.stderr.flush()
    line = sys.stdin.readline()
    if not line:
        raise EOFError
    return line


class Answerer:
    """Called with each event shown; answers approval_required as its mode says."""

    def __init__(self, api: Api, mode: str, line: Callable[[str, str], None],
                 ask: Callable[[str], str] = ask_terminal):
        self.api, self.mode, self.line, self.ask = api, mode, line, ask

    def __call__(self, event: dict) -> None:
        if event.get("type") != "approval_required" or self.mode == "watch":
            return
        task_id, data = event["task_id"], event.get("data") or {}
        if not self._still_pending(task_id, data.get("call_id")):
            return  # answered already (a replayed log), timed out, or by another client
        if self.mode == "ask":
            approved = self._ask_user(data)
            note = None if approved else "denied on the terminal"
        else:
            approved = self.mode == "yes"
            note = "--yes" if approved else "the CLI had no terminal to ask on (use --yes)"
        self._answer(task_id, data["call_id"], approved, note)

    def _still_pending(self, task_id: str, call_id) -> bool:
        try:
            task = self.api.json("GET", f"/api/tasks/{task_id}")
        except CliError:
            return True  # let the answer itself say what is wrong
        return any(p.get("call_id") == call_id for p in task.get("pending_approvals", []))

    def _ask_user(self, data: dict) -> bool:
        arguments = json.dumps(data.get("arguments") or {}, ensure_ascii=False)
        self.line("approval", f"{data.get('key') or data.get('tool')} wants to run: "
                              f"{data.get('reason', '')}\n  arguments: {arguments[:600]}\n"
                              f"  (no answer within {data.get('timeout_s', '?')} s: denied)")
        try:
            reply = self.ask("Allow it? [y/N] ")
        except EOFError:
            reply = ""
        return reply.strip().lower() in ("y", "yes")

    def _answer(self, task_id: str, call_id: str, approved: bool, note) -> None:
        response = self.api.request(
            "POST", f"/api/tasks/{task_id}/approvals/{call_id}", ok=(200, 404, 409),
            json={"approved": approved, **({"note": note} if note else {})})
        if response.status_code == 200:
            self.line("approval", f"{'allowed' if approved else 'denied'} ({call_id})")
        else:
            self.line("approval", f"not counted: {response.json()['error']['message']}")
