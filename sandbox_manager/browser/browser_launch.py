"""Chromium's launch: Debian's binary, the proxy, and its own sandbox where the container
allows it.

Chromium's sandbox puts renderers in their own user, PID and network namespaces. Docker's
default seccomp profile forbids making namespaces without CAP_SYS_ADMIN, so the manager
starts this container with docker/seccomp-browser.json (the default plus clone/unshare
with namespace flags and chroot). Under that profile the sandbox starts; under the default
it cannot, and AIOS_BROWSER_SANDBOX=auto (the default) falls back to --no-sandbox. The
hello frame says which, measured from the renderers' namespaces, not assumed.
"""

import glob
import os
import time

from browser_proxy import launch_proxy

CHROMIUM = "/usr/bin/chromium"
# The flags the worker's browse tool used (python-backend/aios/tools/browser.py before
# issue #18), less --no-sandbox: whether Chromium's sandbox is on is decided below.
CHROMIUM_ARGS = [
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--disable-default-apps",
    "--disable-sync",
    "--disable-breakpad",
    "--disable-dev-shm-usage",  # /dev/shm is Docker's 64 MiB; /tmp is the sized tmpfs
    "--disable-gpu",
    "--dns-prefetch-disable",
    "--no-pings",
    "--no-first-run",
    "--metrics-recording-only",
    "--mute-audio",
    # WebRTC's UDP does not go through a proxy: allow none.
    "--force-webrtc-ip-handling-policy=disable_non_proxied_udp",
]
SANDBOX_MODES = ("auto", "on", "off")
VIEWPORT = {"width": 1280, "height": 800}


class LaunchFailed(RuntimeError):
    pass


def sandbox_mode(environ=os.environ) -> str:
    mode = environ.get("AIOS_BROWSER_SANDBOX", "auto").strip().lower() or "auto"
    if mode not in SANDBOX_MODES:
        raise LaunchFailed(f"AIOS_BROWSER_SANDBOX must be one of {', '.join(SANDBOX_MODES)}")
    return mode


def launch(playwright, timeout_s: float = 30.0, environ=os.environ):
    """(browser, sandbox_requested): with Chromium's sandbox if possible (or required)."""
    mode = sandbox_mode(environ)
    options = dict(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
                   proxy=launch_proxy(environ), timeout=timeout_s * 1000,
                   downloads_path="/tmp/aios-downloads")
    errors = []
    for sandbox in ((True, False) if mode == "auto" else (mode == "on",)):
        try:
            return playwright.chromium.launch(chromium_sandbox=sandbox, **options), sandbox
        except Exception as exc:  # noqa: BLE001 - reported in browser_failed
            errors.append(str(exc).split("\n")[0])
    raise LaunchFailed("Chromium did not start: " + " / ".join(errors))


def new_context(browser):
    """A context as the agent's and the read's pages get it: no service workers (their
    fetches would escape page.route and the response events), downloads on."""
    return browser.new_context(service_workers="block", accept_downloads=True,
                               viewport=VIEWPORT, java_script_enabled=True)


def renderer_pids() -> list[int]:
    """Chromium's renderer processes (by their command line)."""
    found = []
    for proc in glob.glob("/proc/[0-9]*"):
        try:
            with open(f"{proc}/cmdline", "rb") as f:
                if b"--type=renderer" in f.read():
                    found.append(int(proc.rsplit("/", 1)[1]))
        except (OSError, ValueError):
            continue
    return found


def renderers_sandboxed(wait_s: float = 3.0):
    """True when Chromium's renderers live in a user namespace other than ours (its
    sandbox is on), False when they share ours, None when no renderer is found."""
    own = os.readlink("/proc/self/ns/user")
    deadline = time.monotonic() + wait_s
    while True:
        found = []
        for pid in renderer_pids():
            try:
                found.append(os.readlink(f"/proc/{pid}/ns/user") != own)
            except OSError:
                continue
        if found or time.monotonic() >= deadline:
            return all(found) if found else None
        time.sleep(0.05)
