"""The processes of a run: start them in a session of their own, reap them, stream their
output under a cap, and kill every one that is left when the run ends."""

import codecs
import ctypes
import fcntl
import json
import os
import select
import signal
import time

CHUNK = 65536
PR_SET_DUMPABLE = 4
LIBC = ctypes.CDLL(None)


def send(frame):
    """One frame to the manager: a JSON line on our stdout."""
    data = memoryview((json.dumps(frame, separators=(",", ":")) + "\n").encode())
    while data:
        data = data[os.write(1, data):]


class Reaper:
    """Reaps every exited child, adding up CPU time and peak memory of the run; the main
    process's own CPU time is kept apart (a live interpreter measures it per exec)."""

    def __init__(self, main_pid):
        self.main_pid = main_pid
        self.main_status = None
        self.main_cpu_s = 0.0
        self.cpu_s = 0.0
        self.max_rss_kb = 0

    def reap(self):
        while True:
            try:
                pid, status, usage = os.wait4(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            cpu_s = usage.ru_utime + usage.ru_stime
            self.max_rss_kb = max(self.max_rss_kb, usage.ru_maxrss)
            if pid == self.main_pid:
                self.main_status, self.main_cpu_s = status, cpu_s
            else:
                self.cpu_s += cpu_s


def _alive(pid):
    """False for a zombie: dead, waiting for a parent that is not us to reap it."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rpartition(b")")[2].split()[0] != b"Z"
    except (OSError, IndexError):
        return False


def other_pids(keep=()):
    """Live processes in the container but this one and those in keep."""
    me = os.getpid()
    pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
    return [p for p in pids if p != me and p not in keep and _alive(p)]


def kill_all(reaper, keep=()):
    """SIGKILL every process but this one (and keep) until none is left; True when none
    survived."""
    for _ in range(200):
        pids = other_pids(keep)
        if not pids:
            return True
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        reaper.reap()
        if other_pids(keep):
            time.sleep(0.005)
            reaper.reap()
    return not other_pids(keep)


def spawn(argv, env, cwd, fds=None):
    """Fork argv in a new session wired to fresh stdio pipes, plus fds (child fd -> our fd,
    dup'ed there and closed here). Returns pid, stdin writer, stdout and stderr readers."""
    fds = fds or {}
    pipes = [os.pipe() for _ in range(3)]
    pid = os.fork()
    if pid == 0:
        try:
            os.setsid()
            LIBC.prctl(PR_SET_DUMPABLE, 1)  # our own /proc files again, as after any exec
            with open("/proc/self/oom_score_adj", "w") as f:
                f.write("1000")  # the OOM killer takes user code, never the supervisor
            for sig in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT):
                signal.signal(sig, signal.SIG_DFL)
            wiring = [(0, pipes[0][0]), (1, pipes[1][1]), (2, pipes[2][1]), *fds.items()]
            # Out of the way first, so no dup2 overwrites a source a later one needs.
            wiring = [(target, fcntl.fcntl(source, fcntl.F_DUPFD, 100))
                      for target, source in wiring]
            for target, source in wiring:
                os.dup2(source, target)
            os.closerange(3 + len(fds), 65536)
            os.chdir(cwd)
            os.execvpe(argv[0], argv, env)
        except BaseException as exc:  # noqa: BLE001 - report anything that stops the exec
            os.write(2, f"aios: cannot start {argv[0]}: {exc}\n".encode())
        finally:
            os._exit(127)
    for fd in (pipes[0][0], pipes[1][1], pipes[2][1], *fds.values()):
        os.close(fd)
    return pid, pipes[0][1], pipes[1][0], pipes[2][0]


class Output:
    """stdout and stderr of one run, sent as they come, up to a byte cap."""

    def __init__(self, limit):
        self.limit = limit
        self.sent = 0
        self.truncated = False
        self.decoders = {1: codecs.getincrementaldecoder("utf-8")("replace"),
                         2: codecs.getincrementaldecoder("utf-8")("replace")}

    def emit(self, stream, data):
        """Send data; False once the cap is reached (the run must then be stopped)."""
        room = self.limit - self.sent
        if len(data) > room:
            data = data[:max(room, 0)]
            self.truncated = True
        self.sent += len(data)
        text = self.decoders[stream].decode(data, final=False)
        if text:
            send({"t": "o", "s": stream, "d": text})
        return not self.truncated

    def drain(self, fd, stream):
        """Everything already in a pipe, without waiting for more."""
        os.set_blocking(fd, False)
        try:
            while not self.truncated:
                data = os.read(fd, CHUNK)
                if not data:
                    return
                self.emit(stream, data)
        except BlockingIOError:
            pass
        finally:
            os.set_blocking(fd, True)

    def flush(self):
        for stream, decoder in self.decoders.items():
            text = decoder.decode(b"", final=True)
            if text:
                send({"t": "o", "s": stream, "d": text})


def exit_fields(status):
    """exit_code and signal of a wait status, as a shell reports them."""
    if status is None:
        return None, None
    if os.WIFEXITED(status):
        return os.WEXITSTATUS(status), None
    sig = os.WTERMSIG(status)
    return 128 + sig, signal.Signals(sig).name


def run_process(argv, env, cwd, req, control, output, keep=()):
    """Run argv to its end, the deadline, the output cap or a cancel; every process it
    started (every one but keep) is killed when it ends. Returns (reason or None, Reaper,
    duration_s, survived)."""
    started = time.monotonic()
    deadline = started + float(req.get("timeout_s", 10))
    pid, stdin_w, out_r, err_r = spawn(argv, env, cwd)
    reaper = Reaper(pid)
    pidfd = os.pidfd_open(pid)
    reason, ended = None, None
    stdin_data = memoryview((req.get("stdin") or "").encode())
    if not stdin_data:
        os.close(stdin_w)
        stdin_w = None
    else:
        os.set_blocking(stdin_w, False)
    readers = {out_r: 1, err_r: 2}
    try:
        while readers or ended is None:
            if ended is None:
                now = time.monotonic()
                if now >= deadline:
                    reason = reason or "timeout"
                if reason:
                    ended = now
                    kill_all(reaper, keep)
            wait = 0.5 if ended is not None else max(0.0, deadline - time.monotonic())
            watch = list(readers) + ([pidfd, 0] if ended is None else [])
            writers = [stdin_w] if stdin_w is not None and ended is None else []
            ready_r, ready_w, _ = select.select(watch, writers, [], wait)
            if not ready_r and not ready_w and ended is not None:
                break  # every writer is dead and the pipes stayed quiet: done
            for fd in ready_w:
                try:
                    stdin_data = stdin_data[os.write(fd, stdin_data[:CHUNK]):]
                except OSError:
                    stdin_data = memoryview(b"")
                if not stdin_data:
                    os.close(stdin_w)
                    stdin_w = None
            for fd in ready_r:
                if fd == pidfd:
                    ended = time.monotonic()
                    kill_all(reaper, keep)  # the run ends with its main process
                elif fd == 0:
                    if control.cancelled():
                        reason = reason or "cancelled"
                elif fd in readers:
                    data = os.read(fd, CHUNK)
                    if data and not output.truncated and not output.emit(readers[fd], data):
                        reason = reason or "output_limit"
                    if not data:
                        os.close(fd)
                        del readers[fd]
    finally:
        for fd in list(readers) + ([stdin_w] if stdin_w is not None else []):
            os.close(fd)
        os.close(pidfd)
    survived = not kill_all(reaper, keep)
    reaper.reap()
    output.flush()
    return reason, reaper, (ended or time.monotonic()) - started, survived
