"""The supervisor's handle on a session's live interpreter (aios_kernel.py): start it, give
it an exec, stream its output, and replace it when it dies or an exec must be stopped.
A stopped exec (timeout, output cap, cancel) kills the interpreter: user code is in an
unknown state then, and a fresh one is what the next exec gets, with a note saying so."""

import json
import os
import select
import time

from aios_attest import oom_kills
from aios_files import HOME
from aios_processes import CHUNK, Reaper, exit_fields, kill_all, spawn

KERNEL = "/opt/aios/aios_kernel.py"
TICKS = os.sysconf("SC_CLK_TCK")
LOST = {"timeout": "the previous exec timed out", "oom": "the previous exec ran out of memory",
        "output_limit": "the previous exec passed the output cap",
        "cancelled": "the previous exec was cancelled"}


class Interpreter:
    def __init__(self, env):
        self.env = env
        self.pid = None
        self.lost = None  # why the state is gone, told to the next exec
        self.execs = 0

    def start(self):
        req_r, self.requests = os.pipe()
        self.replies, rep_w = os.pipe()
        self.pid, stdin_w, out_r, err_r = spawn(["python3", "-u", KERNEL], self.env, HOME,
                                                fds={3: req_r, 4: rep_w})
        os.close(stdin_w)  # input() reads the exec's own stdin, given with the request
        self.readers = {out_r: 1, err_r: 2}
        self.pidfd = os.pidfd_open(self.pid)
        self.reaper = Reaper(self.pid)
        self.pending = b""
        self.execs = 0

    def stop(self, lost=None):
        """Kill it and everything else in the container; the next exec starts afresh."""
        if self.pid is None:
            return
        kill_all(self.reaper)
        self.reaper.reap()
        for fd in [self.requests, self.replies, self.pidfd, *self.readers]:
            os.close(fd)
        self.pid = None
        self.lost = lost

    def keep(self):
        return {self.pid} if self.pid is not None else set()

    def _status_note(self):
        if self.pid is not None and select.select([self.pidfd], [], [], 0)[0]:
            self.stop("the interpreter stopped between execs")
        if self.pid is None:
            self.start()
        note = {"state": "new" if self.execs == 0 else "kept"}
        if self.lost:
            note = {"state": "restarted",
                    "note": f"state was lost: {self.lost}; this exec ran in a fresh interpreter"}
            self.lost = None
        self.execs += 1
        return note

    def _cpu_s(self):
        try:
            with open(f"/proc/{self.pid}/stat", "rb") as f:
                fields = f.read().rpartition(b")")[2].split()
            return (int(fields[11]) + int(fields[12])) / TICKS
        except (OSError, IndexError, ValueError):
            return 0.0

    def _peak_rss(self):
        try:
            with open(f"/proc/{self.pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) * 1024
        except OSError:
            pass
        return 0

    def execute(self, req, control, output):
        """Run one exec to its reply, death, deadline, output cap or cancel; the result's
        fields but outputs."""
        interpreter = self._status_note()
        ooms_before, cpu_before, children_before = oom_kills(), self._cpu_s(), self.reaper.cpu_s
        started = time.monotonic()
        deadline = started + float(req.get("timeout_s", 10))
        request = {"code": req.get("code", ""), "stdin": req.get("stdin") or "",
                   "max_outputs": req.get("outputs", {}).get("max_count", 32)}
        os.write(self.requests, (json.dumps(request) + "\n").encode())
        reply, reason, died = None, None, False
        while reply is None and reason is None and not died:
            wait = deadline - time.monotonic()
            ready = select.select([*self.readers, self.replies, self.pidfd, 0], [], [],
                                  max(wait, 0))[0] if wait > 0 else []
            if not ready:
                reason = "timeout"
            for fd in ready:
                if fd in self.readers:
                    if not self._pump(fd, output):
                        reason = reason or "output_limit"
                elif fd == self.replies:
                    reply = self._read_reply()
                elif fd == self.pidfd:
                    died = True
                elif fd == 0 and control.cancelled():
                    reason = reason or "cancelled"
        for fd, stream in list(self.readers.items()):
            output.drain(fd, stream)
        output.flush()
        ended = time.monotonic()
        cpu_s, peak = self._cpu_s() - cpu_before, self._peak_rss()
        result = {"execute_result": None, "interpreter": interpreter, "survivors": 0,
                  "duration_ms": round((ended - started) * 1000, 1)}
        if reply is not None and reply.get("exit_code") is not None:
            survived = not kill_all(self.reaper, keep=self.keep())  # the exec's subprocesses
            self.reaper.reap()
            result.update(exit_code=reply["exit_code"], signal=None, end_reason="exited",
                          execute_result=reply.get("execute_result"),
                          survivors=1 if survived else 0)
        else:
            self.stop()
            oom = oom_kills() > ooms_before
            exit_code, sig = exit_fields(self.reaper.main_status)
            if reason is None:
                reason = "oom" if oom else ("signaled" if sig else "exited")
            self.lost = LOST.get(reason) or (
                f"the interpreter ended during the previous exec ({sig or f'exit {exit_code}'})")
            result.update(exit_code=exit_code, signal=sig, end_reason=reason)
        result.update(timed_out=result["end_reason"] == "timeout",
                      oom_killed=result["end_reason"] == "oom", truncated=output.truncated,
                      cpu_time_ms=round((cpu_s + self.reaper.cpu_s - children_before) * 1000, 1),
                      peak_memory_bytes=max(peak, self.reaper.max_rss_kb * 1024))
        return result

    def _pump(self, fd, output):
        data = os.read(fd, CHUNK)
        if not data:  # the interpreter closed its stdout or stderr: nothing more comes
            os.close(fd)
            del self.readers[fd]
            return True
        return output.emit(self.readers[fd], data)

    def _read_reply(self):
        self.pending += os.read(self.replies, CHUNK)
        line, newline, rest = self.pending.partition(b"\n")
        if not newline:
            return None
        self.pending = rest
        try:
            return json.loads(line)
        except ValueError:
            return {}  # garbled by user code writing to our fd: treat the exec as ended
