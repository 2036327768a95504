"""In-sandbox supervisor: PID 1 of every sandbox container (standard library only).

Protocol: one JSON request per line on stdin, JSON lines on stdout. At start it
sends a `hello` frame describing the confinement it finds itself in, so the
manager can refuse a container the engine did not harden.

A run is a process of its own (one-shot runs, and every exec but a session's Python), or
an exec in the session's live interpreter (aios_interpreter.py), which keeps its state
between execs. Each run's processes get their own session; when the run ends (exit,
timeout, output cap, cancel) every other process in the container but the interpreter is
killed and reaped, and the runner checks that none survived. Then the files under
~/outputs (figures land there too) go back to the manager and are removed. As PID 1 it
cannot be killed from inside, and it makes itself non-dumpable so code of the same uid
can neither ptrace it nor open its /proc entries (its stdio carries the protocol).
"""

import base64
import json
import os
import signal
import sys

sys.path.insert(0, "/opt/aios")  # -I leaves the script's folder off the path

from aios_attest import attest, oom_kills  # noqa: E402
from aios_files import HOME, RequestError, read_file, write_file  # noqa: E402
from aios_interpreter import Interpreter  # noqa: E402
from aios_outputs import collect, OUTPUTS  # noqa: E402
from aios_processes import LIBC, PR_SET_DUMPABLE, Output, exit_fields, run_process, send  # noqa: E402

RUN_DIR = "/tmp/.aios-run"
SESSION_BASH = "/opt/aios/aios_session.bash"
BASH_STATE = "/tmp/.aios-bash-state"
FIGURES_DROPPED = "/tmp/.aios-figures-dropped"
PASSED_THROUGH = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy",
                  "no_proxy")
CHILD_ENV = {
    "HOME": HOME,
    "PATH": f"{HOME}/.local/bin:" + os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
    "LANG": "C.UTF-8",
    "TMPDIR": "/tmp",
    "PYTHONUNBUFFERED": "1",
    "PYTHONDONTWRITEBYTECODE": "1",
    "MPLBACKEND": "module://aios_figures",  # figures come back as PNGs (aios_figures.py)
    "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    **{k: v for k, v in os.environ.items() if k in PASSED_THROUGH},  # egress sandboxes
}


class Control:
    """Line reader on stdin; keeps what arrives mid-run for later."""

    def __init__(self):
        self.buffer = bytearray()
        self.pending = []
        self.closed = False

    def _fill(self):
        data = os.read(0, 1 << 20)
        if not data:
            self.closed = True
        self.buffer += data

    def _lines(self):
        while b"\n" in self.buffer:
            line, _, rest = self.buffer.partition(b"\n")
            self.buffer = bytearray(rest)
            if line.strip():
                self.pending.append(json.loads(line))

    def cancelled(self):
        """Read what arrived; True when it asks to cancel the run in progress."""
        self._fill()
        self._lines()
        if self.closed:
            return True  # the manager is gone: nobody wants this run any more
        cancels = [r for r in self.pending if r.get("op") == "cancel"]
        self.pending = [r for r in self.pending if r.get("op") != "cancel"]
        return bool(cancels)

    def next_request(self):
        while not self.pending:
            if self.closed:
                return None
            self._fill()
            self._lines()
        return self.pending.pop(0)


class Supervisor:
    def __init__(self, control):
        self.control = control
        self.interpreter = Interpreter(CHILD_ENV)

    def run(self, req):
        for rel, data in (req.get("files") or {}).items():
            write_file(rel, base64.b64decode(data))
        output = Output(int(req.get("output_limit", 1 << 20)))
        env = dict(CHILD_ENV, AIOS_MAX_OUTPUTS=str(req.get("outputs", {}).get("max_count", 32)))
        if req.get("mode") == "interpreter":
            result = self.interpreter.execute(req, self.control, output)
        else:
            result = self._process(req, env, output)
        dropped, truncated = collect(**_caps(req))
        figures = _figures_not_drawn()
        if figures:
            dropped.append({"name": "figures not drawn", "count": figures, "reason": "count"})
        result.update(outputs_dropped=dropped, outputs_truncated=truncated or bool(figures))
        return dict(result, t="done")

    def _process(self, req, env, output):
        argv = list(req["argv"])
        code = req.get("code")
        if code is not None:
            os.makedirs(RUN_DIR, mode=0o700, exist_ok=True)
            path = os.path.join(RUN_DIR, req.get("filename", "main"))
            with open(path, "w") as f:
                f.write(code)
            argv = [a.replace("{file}", path) for a in argv]
        if req.get("mode") == "shell":
            argv = ["bash", SESSION_BASH, *argv[1:]]
        ooms_before = oom_kills()
        reason, reaper, duration_s, survived = run_process(
            argv, env, HOME, req, self.control, output, keep=self.interpreter.keep())
        exit_code, sig = exit_fields(reaper.main_status)
        if reason is None:
            oom = oom_kills() > ooms_before
            reason = "oom" if oom else ("signaled" if sig is not None else "exited")
        return {"exit_code": exit_code, "end_reason": reason, "signal": sig,
                "timed_out": reason == "timeout", "oom_killed": reason == "oom",
                "truncated": output.truncated, "duration_ms": round(duration_s * 1000, 1),
                "cpu_time_ms": round((reaper.cpu_s + reaper.main_cpu_s) * 1000, 1),
                "peak_memory_bytes": reaper.max_rss_kb * 1024,
                "survivors": 1 if survived else 0}

    def reset(self):
        """A fresh interpreter and a fresh shell state; files stay."""
        self.interpreter.stop()
        self.interpreter.start()
        if os.path.exists(BASH_STATE):
            os.unlink(BASH_STATE)
        return {"t": "ok"}

    def handle(self, req):
        op = req.get("op")
        if op == "run":
            return self.run(req)
        if op == "put_file":
            write_file(req["path"], base64.b64decode(req["data"]))
            return {"t": "ok"}
        if op == "get_file":
            data = read_file(req["path"], int(req.get("max_bytes", 1 << 24)))
            return {"t": "file", "data": base64.b64encode(data).decode()}
        if op == "interpreter_start":
            if self.interpreter.pid is None:
                self.interpreter.start()
            return {"t": "ok"}
        if op == "reset":
            return self.reset()
        if op == "attest":
            return {"t": "attest", "attest": attest()}
        if op == "cancel":
            return None  # nothing is running
        raise RequestError("bad_request", f"unknown op {op!r}")


def _caps(req):
    caps = req.get("outputs", {})
    return {"max_count": int(caps.get("max_count", 32)),
            "max_file_bytes": int(caps.get("max_file_bytes", 10 << 20)),
            "max_total_bytes": int(caps.get("max_total_bytes", 25 << 20))}


def _figures_not_drawn():
    try:
        with open(FIGURES_DROPPED) as f:
            count = sum(1 for _ in f)
        os.unlink(FIGURES_DROPPED)
        return count
    except OSError:
        return 0


def main():
    LIBC.prctl(PR_SET_DUMPABLE, 0)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    os.makedirs(OUTPUTS, mode=0o755, exist_ok=True)
    control = Control()
    supervisor = Supervisor(control)
    send({"t": "hello", "attest": attest()})
    while True:
        req = control.next_request()
        if req is None:
            return
        try:
            reply = supervisor.handle(req)
        except RequestError as exc:
            reply = {"t": "error", "code": exc.code, "message": exc.message}
        except Exception as exc:  # noqa: BLE001 - the supervisor must outlive any bad request
            reply = {"t": "error", "code": "runner_error",
                     "message": f"{type(exc).__name__}: {exc}"}
        if reply is not None:
            send(reply)


if __name__ == "__main__":
    sys.exit(main())
