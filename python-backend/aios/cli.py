"""`python -m aios`: submit tasks, follow their events and fetch their artifacts from a terminal.

Exit codes: 0 the task succeeded (or the command worked), 1 the task failed (or /health is
unavailable, or the task whose artifacts were asked for is unknown), 2 the command could not
be carried out (bad arguments or JSON, a missing file, a refused token, an unreachable
server, a refused request), 130 the task was cancelled or Ctrl-C.
"""

import argparse
import json
import os
import queue
import sys
import time
from pathlib import Path
from typing import Iterator, Optional

import socketio

from .cli_api import DEFAULT_URL, Api, CliError, find_token
from .cli_approvals import Answerer, mode_for
from .cli_files import artifact_line, check_attachments, cmd_artifacts, upload, with_attachments

FINAL = ("succeeded", "failed", "cancelled")
EXIT = {"succeeded": 0, "failed": 1, "cancelled": 130}
EXIT_ERROR, EXIT_INTERRUPTED = 2, 130
RECONNECTED = object()  # an inbox marker: the socket (re)connected
GAP_WAIT_S = 1.5  # an event missing this long is fetched over REST


# --- Socket.IO ----------------------------------------------------------------------------

class Follower:
    """One task's events over Socket.IO, yielded in seq order and exactly once, also across
    reconnects (python-socketio runs each handler in its own thread: order is restored here)."""

    def __init__(self, api: Api):
        self.api, self.inbox = api, queue.Queue()
        self.sio = socketio.Client(reconnection=True, handle_sigint=False)
        self.sio.on("task:event", self.inbox.put)
        self.sio.on("connect", lambda: self.inbox.put(RECONNECTED))
        self.task_id, self.last, self.pending, self.connects = "", 0, {}, 0

    def connect(self) -> "Follower":
        try:
            self.sio.connect(self.api.url, auth={"token": self.api.token},
                             transports=["websocket"], wait_timeout=10)
        except socketio.exceptions.ConnectionError as exc:
            self.api.request("GET", "/api/providers")  # names the cause: token or network
            raise CliError(f"the Socket.IO connection failed: {exc}") from None
        return self

    def call(self, event: str, data: dict) -> dict:
        try:
            ack = self.sio.call(event, data, timeout=15)
        except socketio.exceptions.SocketIOError as exc:
            raise CliError(f"no answer to {event}: {exc or 'timed out'}") from None
        if isinstance(ack, dict) and "error" in ack:
            raise CliError(f"{event} refused: {ack['error']['code']}: {ack['error']['message']}")
        return ack

    def watch(self, task_id: str, after: int) -> None:
        self.task_id, self.last, self.pending = task_id, after, {}

    def events(self, deadline: Optional[float] = None) -> Iterator[dict]:
        """Until the task's final status (or the deadline, as time.monotonic())."""
        gap_since = None
        while deadline is None or time.monotonic() < deadline:
            try:
                self.take(self.inbox.get(timeout=0.25))
            except queue.Empty:
                pass
            if self.pending and gap_since and time.monotonic() - gap_since > GAP_WAIT_S:
                self.fetch_missing()
                gap_since = time.monotonic()
            while self.last + 1 in self.pending:
                event = self.pending.pop(self.last + 1)
                self.last = event["seq"]
                yield event
                if event["type"] == "status" and event["data"].get("status") in FINAL:
                    return
            gap_since = (gap_since or time.monotonic()) if self.pending else None

    def take(self, item) -> None:
        if item is RECONNECTED:
            self.connects += 1
            if self.connects > 1 and self.task_id:  # resume where the stream stopped
                self.sio.emit("task:subscribe", {"task_id": self.task_id, "after": self.last})
        elif isinstance(item, dict) and item.get("task_id") == self.task_id:
            if item.get("seq", 0) > self.last:
                self.pending.setdefault(item["seq"], item)

    def fetch_missing(self) -> None:
        try:
            for event in logged_events(self.api, self.task_id, self.last):
                self.take(event)
        except CliError:
            return  # the server is away: the resubscribe after the reconnect fills the gap

    def close(self) -> None:
        if self.sio.connected:
            self.sio.disconnect()


def logged_events(api: Api, task_id: str, after: int):
    """Every logged event after `after`, a page at a time."""
    while after is not None:
        page = api.json("GET", f"/api/tasks/{task_id}/events", params={"after": after})
        yield from page["events"]
        after = page["next_after"]


# --- printing events ----------------------------------------------------------------------

def clip(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit] + "…"


def summary(data) -> str:
    """A result in one line: a program's exit and flags, else the scalar fields, else JSON."""
    if not isinstance(data, dict):
        return clip(json.dumps(data))
    if "exit_code" in data:  # a code run: its stdout and stderr were streamed already
        flags = [key for key in ("timed_out", "oom_killed", "truncated") if data.get(key)]
        return " ".join([f"exit_code={data['exit_code']}", f"end_reason={data.get('end_reason')}",
                         f"duration_ms={data.get('duration_ms')}", *flags])
    fields = [f"{key}={value}" for key, value in data.items()
              if isinstance(value, (int, float, str)) and key != "text"]
    return clip(" ".join(fields) if fields else json.dumps(data, ensure_ascii=False))


SHORT = {
    "status": lambda d: d.get("status", ""),
    "log": lambda d: clip(d.get("text", "")),
    "result": summary,
    "error": lambda d: f"{d.get('code')}: {d.get('message')}",
    "tool_call": lambda d: f"{d.get('name')} {clip(json.dumps(d.get('arguments')), 200)}",
    "tool_result": lambda d: f"{d.get('name')}{' (error)' if d.get('is_error') else ''}: "
                             f"{clip(d.get('output', ''), 200)}",
}


class Printer:
    """stdout/token text raw on stdout, stderr raw on stderr, the rest as short lines on
    stderr; with --json, each event as one JSON line on stdout. `base_url` makes artifact
    URLs whole."""

    def __init__(self, as_json: bool = False, base_url: str = ""):
        self.as_json, self.base_url = as_json, base_url
        self.wrote_stdout, self.at_line_start = False, True

    def write(self, stream, text: str) -> None:
        if text:
            stream.write(text)
            stream.flush()
            self.at_line_start = text.endswith("\n")

    def line(self, label: str, text: str) -> None:
        if not self.as_json:
            self.write(sys.stderr, ("" if self.at_line_start else "\n") + f"[{label}] {text}\n")

    def show(self, event: dict) -> None:
        kind, data = event["type"], event.get("data") or {}
        if self.as_json:
            self.write(sys.stdout, json.dumps(event, ensure_ascii=False) + "\n")
        elif kind in ("stdout", "token"):
            self.wrote_stdout = self.wrote_stdout or bool(data.get("text"))
            self.write(sys.stdout, data.get("text", ""))
        elif kind == "stderr":
            self.write(sys.stderr, data.get("text", ""))
        elif kind == "artifact":
            self.line(kind, artifact_line(data, self.base_url))
        else:
            self.line(kind, SHORT.get(kind, lambda d: clip(json.dumps(d)))(data))
            if kind == "result" and not self.wrote_stdout and isinstance(data.get("text"), str):
                self.write(sys.stdout, data["text"] + ("" if data["text"].endswith("\n") else "\n"))

    def play(self, events) -> str:
        """Show events until the last; its status, if it was a final one."""
        status = ""
        for event in events:
            self.show(event)
            if event["type"] == "status":
                status = event["data"].get("status", "")
        return status


# --- commands -----------------------------------------------------------------------------

def read_text(source: str, what: str) -> str:
    if source == "-":
        return sys.stdin.read()
    try:
        return Path(source).read_text()
    except OSError as exc:
        raise CliError(f"cannot read {what} {source}: {exc.strerror}") from None


def parse_input(text: str) -> dict:
    source = read_text(text[1:], "the input file") if text.startswith("@") else text
    try:
        value = json.loads(source)
    except json.JSONDecodeError as exc:
        raise CliError(f"--input is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise CliError("--input must be a JSON object, e.g. '{\"text\": \"hi\"}'")
    return value


def task_input(args) -> dict:
    if args.input is not None:
        return parse_input(args.input)
    if args.code is not None:
        shell = Path(args.code).suffix in (".sh", ".bash")
        language = args.language or ("bash" if shell else "python")
        return {"language": language, "code": read_text(args.code, "the code file")}
    if args.text is None:
        raise CliError(f"give the {args.kind} task's input: --text, --input or (code) --code")
    extra = {k: v for k, v in (("provider", args.provider), ("model", args.model)) if v}
    from_text = {"echo": {"text": args.text},
                 "code": {"language": args.language or "python", "code": args.text},
                 "chat": {"messages": [{"role": "user", "content": args.text}], **extra},
                 "agent": {"goal": args.text, **extra}}
    if args.kind not in from_text:
        raise CliError(f"give the {args.kind} task's input with --input (--text is for "
                       f"{', '.join(from_text)})")
    return from_text[args.kind]


def answering(events, answer):
    """The events, each answered (approval requests) after it was shown."""
    for event in events:
        yield event
        answer(event)


def follow(follower: Follower, printer: Printer, cancel_on_interrupt: bool,
           mode: str = "watch") -> int:
    """Print the task's events until it ends, answering its approval requests as `mode`
    says (cli_approvals.py); its exit code. Ctrl-C cancels it if asked."""
    answer = Answerer(follower.api, mode, printer.line)
    try:
        return EXIT.get(printer.play(answering(follower.events(), answer)), EXIT_ERROR)
    except KeyboardInterrupt:
        if not cancel_on_interrupt:
            return EXIT_INTERRUPTED
    printer.line("cancel", f"cancelling {follower.task_id}")
    try:
        # Over REST, which works even while the socket is reconnecting.
        follower.api.json("POST", f"/api/tasks/{follower.task_id}/cancel")
        printer.play(follower.events(deadline=time.monotonic() + 10))
    except (KeyboardInterrupt, CliError):
        pass
    return EXIT_INTERRUPTED


def cmd_submit(args, api: Api) -> int:
    files = check_attachments(args.kind, args.attach)
    payload = {"kind": args.kind, "input": task_input(args)}
    payload["input"] = with_attachments(payload["input"], upload(api, files))
    if args.task_id:
        payload["task_id"] = args.task_id
    if not args.wait:
        print(api.json("POST", "/api/tasks", json=payload)["task_id"])
        return 0
    follower, printer = Follower(api).connect(), Printer(args.json, api.url)
    try:
        ack = follower.call("task:submit", payload)
        follower.watch(ack["task_id"], 0)
        printer.line("task", ack["task_id"])
        return follow(follower, printer, cancel_on_interrupt=True,
                      mode=mode_for(args, "submit"))
    finally:
        follower.close()


def cmd_events(args, api: Api) -> int:
    task, printer = api.json("GET", f"/api/tasks/{args.task_id}"), Printer(args.json, api.url)
    if task["status"] in FINAL or not args.follow:
        for event in logged_events(api, args.task_id, args.after):
            printer.show(event)
        return EXIT.get(task["status"], 0)
    follower = Follower(api).connect()
    try:
        follower.watch(args.task_id, args.after)
        follower.call("task:subscribe", {"task_id": args.task_id, "after": args.after})
        return follow(follower, printer, cancel_on_interrupt=False,
                      mode=mode_for(args, "events"))
    finally:
        follower.close()


def cmd_cancel(args, api: Api) -> int:
    body = api.json("POST", f"/api/tasks/{args.task_id}/cancel")
    print(f"{body['task_id']} {body['status']}")
    return 0


def cmd_status(args, api: Api) -> int:
    print(json.dumps(api.json("GET", f"/api/tasks/{args.task_id}"), indent=2))
    return 0


def cmd_health(args, api: Api) -> int:
    response = api.request("GET", "/health", ok=(200, 503))
    print(json.dumps(response.json(), indent=2))
    return 0 if response.status_code == 200 else 1


def cmd_providers(args, api: Api) -> int:
    print(json.dumps(api.json("GET", "/api/providers"), indent=2))
    return 0


# --- arguments ----------------------------------------------------------------------------

EXAMPLES = """examples:
  python -m aios health
  python -m aios submit code --text 'print(6*7)'
  python -m aios submit code --code script.sh          # bash, from the suffix
  python -m aios submit chat --text 'Hello' --provider openai
  python -m aios submit echo --input '{"text": "hi"}' --json
  python -m aios submit agent --text 'List my downloads' --no-wait
  python -m aios submit code --attach sales.csv --text "print(open('sales.csv').read())"
  python -m aios submit agent --text 'Fetch the page' --yes   # allow every approval request
  python -m aios events TASK_ID --after 3
  python -m aios artifacts TASK_ID --out results/    # figures and files the task made
  python -m aios cancel TASK_ID
"""


YES_HELP = ("allow every approval request of the agent (default: ask on the terminal; "
            "without one, submit denies them and events leaves them to other clients)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m aios", description=__doc__,
                                     epilog=EXAMPLES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=os.environ.get("AIOS_URL") or DEFAULT_URL,
                        help=f"the web server (env AIOS_URL, default {DEFAULT_URL})")
    parser.add_argument("--token", help="the API token (default: env AIOS_API_TOKEN, else .env)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    submit = commands.add_parser("submit", help="submit a task and stream its events")
    # any kind the server has (it names them when one is unknown); --text knows the built-in
    submit.add_argument("kind", help="echo, code, chat, agent, or another kind of the server")
    given = submit.add_mutually_exclusive_group()
    given.add_argument("--input", help="the input as a JSON object (@FILE reads a file)")
    given.add_argument("--code", metavar="FILE", help="code kind: the program (- for stdin)")
    given.add_argument("--text", help="echo text, code, chat prompt or agent goal")
    submit.add_argument("--language", choices=["python", "bash"],
                        help="code kind (default: bash for .sh files, else python)")
    submit.add_argument("--provider", help="chat/agent with --text: the provider")
    submit.add_argument("--model", help="chat/agent with --text: the model")
    submit.add_argument("--attach", metavar="PATH", action="append", default=[],
                        help="code/agent/chat: upload a local file and attach it (repeat "
                             "for more); code sees it in its working directory by name")
    submit.add_argument("--task-id", help="your own id (8-64 of A-Za-z0-9_-): idempotent")
    submit.add_argument("--wait", action=argparse.BooleanOptionalAction, default=True,
                        help="stream the events until the task ends (default) or print its id")
    submit.add_argument("--json", action="store_true", help="print each event as a JSON line")
    submit.add_argument("--yes", action="store_true", help=YES_HELP)

    events = commands.add_parser("events", help="replay a task's events and follow it")
    events.add_argument("task_id")
    events.add_argument("--after", type=int, default=0, help="only events after this seq")
    events.add_argument("--follow", action=argparse.BooleanOptionalAction, default=True,
                        help="keep following a running task (default)")
    events.add_argument("--json", action="store_true", help="print each event as a JSON line")
    events.add_argument("--yes", action="store_true", help=YES_HELP)

    artifacts = commands.add_parser("artifacts", help="list or download a task's artifacts")
    artifacts.add_argument("task_id")
    artifacts.add_argument("--out", metavar="DIR", help="download them into DIR (created if "
                           "missing; an existing file is kept and `name (2).ext` written)")

    for name, text in (("cancel", "cancel a task"), ("status", "show a task")):
        commands.add_parser(name, help=text).add_argument("task_id")
    commands.add_parser("health", help="the server's health checks (no token needed)")
    commands.add_parser("providers", help="the configured LLM providers")
    return parser


COMMANDS = {"submit": cmd_submit, "events": cmd_events, "cancel": cmd_cancel,
            "status": cmd_status, "health": cmd_health, "providers": cmd_providers,
            "artifacts": cmd_artifacts}


def main(argv: Optional[list[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    for stream in (sys.stdout, sys.stderr):
        stream.reconfigure(errors="replace")
    try:
        token = "" if args.command == "health" else find_token(args.token)
        return COMMANDS[args.command](args, Api(args.url, token))
    except CliError as exc:
        print(f"aios: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
