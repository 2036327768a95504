"""`make run`'s supervisor (started by scripts/run.sh, which prepares the environment):
starts each service in a session of its own, restarts one that ends (in 1, 2, 4 ... 30 s
while it keeps dying; 1 s again once it ran 60 s), and on Ctrl-C or SIGTERM stops them all,
the doors first. Usage: supervise.py BANNER SERVICE...; redis's requirepass line comes in
RUN_REDIS_CONF and is taken out of the environment before anything starts."""

import os
import signal
import subprocess
import sys
import time

RESTART_MAX_S, STABLE_S, STOP_GRACE_S, BANNER_AFTER_S = 30, 60, 10, 3
# The worker lets its running tasks go on for AIOS_WORKER_GRACE_S after SIGTERM, then hands
# them back to the queue (python-backend/aios/celery_app.py): it gets that long and then some.
WORKER_GRACE_S = float(os.environ.get("AIOS_WORKER_GRACE_S") or 20)
# Celery's warning to a worker started as root ("specify a different user using the --uid
# option"), which a user of make run cannot follow: as root, run.sh's banner says instead why
# the worker stays root and what runs it as a user (compose).
ROOT_WORKER_WARNING = "ignore:You're running the worker with superuser privileges"
PORTS = {"AIOS_WEB_PORT": "8765", "AIOS_SANDBOX_MANAGER_PORT": "8000",
         "AIOS_FLOWER_PORT": "5555"}  # run.sh's defaults, should it not pass them on


def commands(env, redis_port: str, redis_dir: str, as_root: bool | None = None) -> dict:
    """name: (working directory, command)."""
    port = {name: env.get(name) or default for name, default in PORTS.items()}
    bin_ = os.path.abspath(".venv/bin")
    as_root = os.geteuid() == 0 if as_root is None else as_root
    python = [f"{bin_}/python", "-W", ROOT_WORKER_WARNING] if as_root else []
    # REDIS_MAXMEMORY (the design guide's; checked by aios/settings.py): none by default
    maxmemory = (env.get("REDIS_MAXMEMORY") or "").strip()
    return {
        # AOF and noeviction: accepted tasks survive a restart, and the broker never drops keys
        "redis": (".", ["redis-server", "-", "--port", redis_port, "--bind", "127.0.0.1",
                        "--dir", redis_dir, "--appendonly", "yes", "--maxmemory-policy",
                        "noeviction", "--save", ""]
                  + (["--maxmemory", maxmemory] if maxmemory else [])),
        "sandbox-manager": ("sandbox_manager", [
            f"{bin_}/uvicorn", "main:app", "--host", "127.0.0.1",
            "--port", port["AIOS_SANDBOX_MANAGER_PORT"]]),
        "worker": ("python-backend", [*python, f"{bin_}/celery", "-A", "app.celery", "worker",
                                      "--loglevel", "INFO"]),
        # The design's command, on loopback, with run.sh's AIOS_WEB_WORKER_CLASS (the
        # settings'); python-backend/gunicorn.conf.py adds the rest.
        "web": ("python-backend", [f"{bin_}/gunicorn", "--worker-class",
                                   env.get("AIOS_WEB_WORKER_CLASS") or "eventlet", "-w", "1",
                                   "--bind", f"127.0.0.1:{port['AIOS_WEB_PORT']}", "app:app"]),
        # FLOWER_BASIC_AUTH from the environment, checked by python-backend/flowerconfig.py.
        "flower": ("python-backend", [f"{bin_}/celery", "-A", "app.celery", "flower",
                                      "--address=127.0.0.1",
                                      f"--port={port['AIOS_FLOWER_PORT']}"]),
    }


def say(text):
    print(f"run.sh: {text}", file=sys.stderr, flush=True)


def launch(name):
    cwd, argv = COMMANDS[name]
    stdin = subprocess.PIPE if name == "redis" else subprocess.DEVNULL
    procs[name] = subprocess.Popen(argv, cwd=cwd, stdin=stdin, start_new_session=True)
    started[name] = time.monotonic()
    if name == "redis":  # its configuration (requirepass) on stdin: on no command line
        procs[name].stdin.write(redis_conf)
        procs[name].stdin.close()


def kill_group(proc, sig):
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def status(code):
    return 128 - code if code < 0 else code  # as a shell says it: 137 for SIGKILL


def stop_wave(wave):
    """TERM to each (Celery's warm shutdown, gunicorn's graceful one), then KILL what is left
    after its grace period, or at once on one more Ctrl-C."""
    running = {name: procs.pop(name) for name in wave if name in procs}
    start, asked = time.monotonic(), len(signals)  # one more signal: this wave at once
    deadline = {name: start + STOP_GRACE_S + (WORKER_GRACE_S if name == "worker" else 0)
                for name in running}
    for proc in running.values():
        proc.send_signal(signal.SIGTERM)
    told = False
    while any(p.poll() is None for p in running.values()):
        now = time.monotonic()
        waiting = [name for name, proc in running.items() if proc.poll() is None]
        if not told and now - start > 3 and "worker" in waiting:
            say(f"the worker lets its running tasks finish for up to {WORKER_GRACE_S:g} s "
                "(AIOS_WORKER_GRACE_S), then hands them back to the queue; Ctrl-C again "
                "stops at once")
            told = True
        for name in waiting:
            if now > deadline[name] or len(signals) > asked:
                if len(signals) == asked:
                    say(f"{name} did not stop in time: killing it")
                kill_group(running[name], signal.SIGKILL)
                deadline[name] = float("inf")
        time.sleep(0.05)
    for proc in running.values():
        kill_group(proc, signal.SIGKILL)  # what is left of its group


if __name__ == "__main__":
    banner, names = sys.argv[1], sys.argv[2:]
    redis_conf = os.environ.pop("RUN_REDIS_CONF").encode()
    COMMANDS = commands(os.environ, os.environ.pop("RUN_REDIS_PORT"),
                        os.environ.pop("RUN_REDIS_DIR"))
    procs, started, delay, due = {}, {}, {name: 1 for name in names}, {}
    signals = []
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda number, frame: signals.append(number))
    failed = False
    try:
        for name in names:
            launch(name)
    except OSError as exc:
        say(f"{name} did not start: {exc}")
        failed = True
        signals.append(0)  # stop what did
    banner_at = time.monotonic() + BANNER_AFTER_S
    while not signals:
        now = time.monotonic()
        if banner_at and now >= banner_at:
            print(banner, flush=True)
            banner_at = 0
        for name, proc in list(procs.items()):
            if proc.poll() is None:
                continue
            del procs[name]
            kill_group(proc, signal.SIGKILL)  # what is left of its group (a worker's pool)
            if now - started[name] >= STABLE_S:
                delay[name] = 1
            say(f"{name} exited (status {status(proc.returncode)}); restarting in {delay[name]} s")
            due[name] = now + delay[name]
            delay[name] = min(delay[name] * 2, RESTART_MAX_S)
        for name, when in list(due.items()):
            if now >= when:
                del due[name]
                try:
                    launch(name)
                except OSError as exc:  # e.g. its program is gone: try again later
                    say(f"{name} did not start ({exc}); trying again in {delay[name]} s")
                    started[name], due[name] = now, now + delay[name]
                    delay[name] = min(delay[name] * 2, RESTART_MAX_S)
        time.sleep(0.1)
    # The doors first; the worker may still need the sandbox manager and redis to finish.
    stop_wave(["web", "flower", "worker"])
    stop_wave(["sandbox-manager", "redis"])
    say("stopped")
    sys.exit(1 if failed else 0)
