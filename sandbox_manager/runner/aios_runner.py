"""In-sandbox supervisor: PID 1 of every sandbox container (standard library only).

Protocol: one JSON request per line on stdin, JSON lines on stdout. At start it
sends a `hello` frame describing the confinement it finds itself in, so the
manager can refuse a container the engine did not harden.

Each run gets its own session; when the run ends (exit, timeout, output cap,
cancel) every other process in the container is killed and reaped, and the
runner checks that none survived. As PID 1 of its PID namespace it cannot be
killed from inside, and it makes itself non-dumpable so code of the same uid
can neither ptrace it nor open its /proc entries (its stdio carries the protocol).
"""

import base64
import codecs
import ctypes
import json
import os
import resource
import select
import signal
import stat
import sys
import time

HOME = os.environ.get("HOME", "/home/sandboxuser")
RUN_DIR = "/tmp/.aios-run"
CHUNK = 65536
PR_SET_DUMPABLE = 4
LIBC = ctypes.CDLL(None)
CHILD_ENV = {
    "HOME": HOME,
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "LANG": "C.UTF-8",
    "TMPDIR": "/tmp",
    "PYTHONUNBUFFERED": "1",
    "PYTHONDONTWRITEBYTECODE": "1",
}
CGROUP_FILES = {
    "memory_limit": ["/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory.max"],
    "memsw_limit": ["/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes"],
    "swap_max": ["/sys/fs/cgroup/memory.swap.max"],
    "pids_max": ["/sys/fs/cgroup/pids/pids.max", "/sys/fs/cgroup/pids.max"],
    "cpu_quota": ["/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us"],
    "cpu_period": ["/sys/fs/cgroup/cpu/cpu.cfs_period_us", "/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us"],
    "cpu_max": ["/sys/fs/cgroup/cpu.max"],
}
OOM_FILES = ["/sys/fs/cgroup/memory/memory.oom_control", "/sys/fs/cgroup/memory.events"]


class RequestError(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


# --- output -----------------------------------------------------------------

def send(frame):
    data = memoryview((json.dumps(frame, separators=(",", ":")) + "\n").encode())
    while data:
        data = data[os.write(1, data):]


# --- confinement report -------------------------------------------------------

def read_first(paths):
    for path in paths:
        try:
            with open(path) as f:
                return f.read().strip()
        except OSError:
            continue
    return None


def proc_status():
    fields = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return fields


def interfaces():
    with open("/proc/net/dev") as f:
        return sorted(line.split(":")[0].strip() for line in f.readlines()[2:])


def attest():
    status = proc_status()
    root = os.statvfs("/")
    home, tmp = os.statvfs(HOME), os.statvfs("/tmp")
    with open("/proc/swaps") as f:
        swap_devices = len(f.readlines()) - 1
    report = {
        "uid": os.getuid(), "euid": os.geteuid(), "gid": os.getgid(),
        "cap_eff": status.get("CapEff"), "cap_prm": status.get("CapPrm"),
        "cap_bnd": status.get("CapBnd"), "cap_amb": status.get("CapAmb"),
        "no_new_privs": status.get("NoNewPrivs"), "seccomp": status.get("Seccomp"),
        "interfaces": interfaces(),
        "root_read_only": bool(root.f_flag & os.ST_RDONLY),
        "home_bytes": home.f_blocks * home.f_frsize, "tmp_bytes": tmp.f_blocks * tmp.f_frsize,
        "swap_devices": swap_devices,
        "docker_socket": any(os.path.exists(p) for p in ("/var/run/docker.sock", "/run/docker.sock")),
        "nofile": list(resource.getrlimit(resource.RLIMIT_NOFILE)),
        "fsize": list(resource.getrlimit(resource.RLIMIT_FSIZE)),
    }
    for key, paths in CGROUP_FILES.items():
        report[key] = read_first(paths)
    return report


def oom_kills():
    text = read_first(OOM_FILES) or ""
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key == "oom_kill":
            return int(value)
    return 0


# --- paths --------------------------------------------------------------------

def path_parts(rel):
    if not isinstance(rel, str) or not rel or "\x00" in rel or rel.startswith("/"):
        raise RequestError("bad_path", "path must be a non-empty relative path")
    parts = rel.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise RequestError("bad_path", "path must not contain empty, '.' or '..' parts")
    return parts


def open_in_home(rel, write):
    """Open a regular file under HOME without following any symlink on the way."""
    parts = path_parts(rel)
    dir_flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
    dirfd = os.open(HOME, dir_flags)
    try:
        for part in parts[:-1]:
            try:
                nxt = os.open(part, dir_flags, dir_fd=dirfd)
            except FileNotFoundError:
                if not write:
                    raise RequestError("not_found", f"no such file: {rel}")
                os.mkdir(part, 0o700, dir_fd=dirfd)
                nxt = os.open(part, dir_flags, dir_fd=dirfd)
            except OSError:
                raise RequestError("bad_path", f"'{part}' in {rel} is not a directory (or is a symlink)")
            os.close(dirfd)
            dirfd = nxt
        flags = os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        flags |= (os.O_WRONLY | os.O_CREAT) if write else os.O_RDONLY
        try:
            fd = os.open(parts[-1], flags, 0o600, dir_fd=dirfd)
        except FileNotFoundError:
            raise RequestError("not_found", f"no such file: {rel}")
        except OSError as exc:
            raise RequestError("bad_path", f"cannot open {rel}: symlink or special file ({exc.strerror})")
    finally:
        os.close(dirfd)
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise RequestError("bad_path", f"{rel} is not a regular file")
    if info.st_nlink > 1:
        os.close(fd)
        raise RequestError("bad_path", f"{rel} is a hard link")
    return fd


def write_file(rel, data):
    fd = open_in_home(rel, write=True)
    try:
        os.ftruncate(fd, 0)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    except OSError as exc:
        raise RequestError("write_failed", f"cannot write {rel}: {exc.strerror}")
    finally:
        os.close(fd)


def read_file(rel, max_bytes):
    fd = open_in_home(rel, write=False)
    try:
        if os.fstat(fd).st_size > max_bytes:
            raise RequestError("too_large", f"{rel} is larger than {max_bytes} bytes")
        chunks, total = [], 0
        while True:
            chunk = os.read(fd, CHUNK)
            if not chunk:
                break
            total += len(chunk)
            if total > max_bytes:
                raise RequestError("too_large", f"{rel} is larger than {max_bytes} bytes")
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


# --- processes ----------------------------------------------------------------

class Reaper:
    """Reaps every exited process, adding up CPU time and peak memory of the run."""

    def __init__(self, main_pid):
        self.main_pid = main_pid
        self.main_status = None
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
            self.cpu_s += usage.ru_utime + usage.ru_stime
            self.max_rss_kb = max(self.max_rss_kb, usage.ru_maxrss)
            if pid == self.main_pid:
                self.main_status = status


def other_pids():
    me = os.getpid()
    return [int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) != me]


def kill_all(reaper):
    """SIGKILL every process but this one until none is left; True when none survived."""
    for _ in range(200):
        pids = other_pids()
        if not pids:
            return True
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        reaper.reap()
        if other_pids():
            time.sleep(0.005)
            reaper.reap()
    return not other_pids()


def spawn(argv, env):
    """Fork the run's main process in a new session, wired to fresh pipes."""
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
            os.dup2(pipes[0][0], 0)
            os.dup2(pipes[1][1], 1)
            os.dup2(pipes[2][1], 2)
            os.closerange(3, 65536)
            os.chdir(HOME)
            os.execvpe(argv[0], argv, env)
        except BaseException as exc:  # noqa: BLE001 - report anything that stops the exec
            os.write(2, f"aios: cannot start {argv[0]}: {exc}\n".encode())
        finally:
            os._exit(127)
    os.close(pipes[0][0])
    os.close(pipes[1][1])
    os.close(pipes[2][1])
    return pid, pipes[0][1], pipes[1][0], pipes[2][0]


class Run:
    def __init__(self, req, control):
        self.req = req
        self.control = control
        self.limit = int(req.get("output_limit", 1 << 20))
        self.out_bytes = 0
        self.reason = None
        self.truncated = False
        self.decoders = {1: codecs.getincrementaldecoder("utf-8")("replace"),
                         2: codecs.getincrementaldecoder("utf-8")("replace")}

    def emit(self, stream, data):
        room = self.limit - self.out_bytes
        if len(data) > room:
            data = data[:max(room, 0)]
            self.truncated = True
            self.reason = self.reason or "output_limit"
        self.out_bytes += len(data)
        text = self.decoders[stream].decode(data, final=False)
        if text:
            send({"t": "o", "s": stream, "d": text})

    def flush(self):
        for stream, decoder in self.decoders.items():
            text = decoder.decode(b"", final=True)
            if text:
                send({"t": "o", "s": stream, "d": text})

    def execute(self):
        req = self.req
        for rel, content in (req.get("files") or {}).items():
            write_file(rel, content.encode())
        argv = list(req["argv"])
        code = req.get("code")
        if code is not None:
            os.makedirs(RUN_DIR, mode=0o700, exist_ok=True)
            path = os.path.join(RUN_DIR, req.get("filename", "main"))
            with open(path, "w") as f:
                f.write(code)
            argv = [a.replace("{file}", path) for a in argv]
        env = dict(CHILD_ENV, **(req.get("env") or {}))
        ooms_before = oom_kills()
        started = time.monotonic()
        deadline = started + float(req.get("timeout_s", 10))
        pid, stdin_w, out_r, err_r = spawn(argv, env)
        reaper = Reaper(pid)
        pidfd = os.pidfd_open(pid)
        ended = None
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
                        self.reason = self.reason or "timeout"
                    if self.reason:
                        ended = now
                        kill_all(reaper)
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
                        kill_all(reaper)  # the run ends with its main process
                    elif fd == 0:
                        if "cancel" in self.control.read_ops():
                            self.reason = self.reason or "cancelled"
                    elif fd in readers:
                        data = os.read(fd, CHUNK)
                        if data and not self.truncated:
                            self.emit(readers[fd], data)
                        if not data:
                            os.close(fd)
                            del readers[fd]
                        elif self.truncated and ended is None:
                            ended = time.monotonic()
                            kill_all(reaper)
        finally:
            for fd in list(readers) + ([stdin_w] if stdin_w is not None else []):
                os.close(fd)
            os.close(pidfd)
        survived = not kill_all(reaper)
        reaper.reap()
        self.flush()
        return self.result(reaper, started, ended, oom_kills() > ooms_before, survived)

    def result(self, reaper, started, ended, oom, survived):
        status = reaper.main_status
        exit_code, sig = None, None
        if status is not None:
            if os.WIFEXITED(status):
                exit_code = os.WEXITSTATUS(status)
            elif os.WIFSIGNALED(status):
                sig = os.WTERMSIG(status)
                exit_code = 128 + sig
        reason = self.reason
        if reason is None:
            reason = "oom" if oom else ("signaled" if sig is not None else "exited")
        return {
            "t": "done", "exit_code": exit_code, "end_reason": reason,
            "signal": signal.Signals(sig).name if sig else None,
            "timed_out": reason == "timeout", "oom_killed": oom, "truncated": self.truncated,
            "duration_ms": round((ended - started) * 1000, 1),
            "cpu_time_ms": round(reaper.cpu_s * 1000, 1),
            "peak_memory_bytes": reaper.max_rss_kb * 1024,
            "survivors": len(other_pids()) if survived else 0,
        }


# --- control channel ------------------------------------------------------------

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

    def read_ops(self):
        self._fill()
        self._lines()
        if self.closed:
            return ["cancel"]  # the manager is gone: nobody wants this run any more
        ops = [r.get("op") for r in self.pending if r.get("op") == "cancel"]
        self.pending = [r for r in self.pending if r.get("op") != "cancel"]
        return ops

    def next_request(self):
        while not self.pending:
            if self.closed:
                return None
            self._fill()
            self._lines()
        return self.pending.pop(0)


def handle(req, control):
    op = req.get("op")
    if op == "run":
        return Run(req, control).execute()
    if op == "put_file":
        write_file(req["path"], base64.b64decode(req["data"]))
        return {"t": "ok"}
    if op == "get_file":
        data = read_file(req["path"], int(req.get("max_bytes", 1 << 24)))
        return {"t": "file", "data": base64.b64encode(data).decode()}
    if op == "attest":
        return {"t": "attest", "attest": attest()}
    if op == "cancel":
        return None  # nothing is running
    raise RequestError("bad_request", f"unknown op {op!r}")


def main():
    LIBC.prctl(PR_SET_DUMPABLE, 0)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    control = Control()
    send({"t": "hello", "attest": attest()})
    while True:
        req = control.next_request()
        if req is None:
            return
        try:
            reply = handle(req, control)
        except RequestError as exc:
            reply = {"t": "error", "code": exc.code, "message": exc.message}
        except Exception as exc:  # noqa: BLE001 - the supervisor must outlive any bad request
            reply = {"t": "error", "code": "runner_error", "message": f"{type(exc).__name__}: {exc}"}
        if reply is not None:
            send(reply)


if __name__ == "__main__":
    sys.exit(main())
