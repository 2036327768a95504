"""Hostile code against the real sandbox: each attack is contained and reported."""

import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from .support import exec_in, run

LIST_PROCESSES = "import os; print(sorted(int(p) for p in os.listdir('/proc') if p.isdigit()))"


@pytest.fixture(scope="module", autouse=True)
def health_stays_fast(manager):
    """Polls /health through the whole module; every answer must come within 1 s."""
    latencies, stop = [], threading.Event()

    def poll():
        with httpx.Client(base_url=manager.url, timeout=5) as client:
            while not stop.is_set():
                started = time.monotonic()
                status = client.get("/health").status_code
                latencies.append((time.monotonic() - started, status))
                stop.wait(0.2)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    yield
    stop.set()
    poller.join()
    assert len(latencies) > 20
    slowest = max(latencies)
    assert slowest[0] < 1.0, f"/health took {slowest[0]:.2f} s during the attacks"
    assert all(status == 200 for _, status in latencies)


def only_the_supervisor_is_left(api, sandbox_id):
    pids = exec_in(api, sandbox_id, language="python", code=LIST_PROCESSES)["stdout"]
    assert len(eval(pids)) == 2, f"processes besides the supervisor and this check: {pids}"


def test_fork_bomb_is_capped_and_killed(api, session):
    bomb = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass"
    result = exec_in(api, session, language="python", code=bomb, timeout_s=4)
    assert result["timed_out"] and result["end_reason"] == "timeout"
    assert result["survivors"] == 0 and result["duration_ms"] < 6000
    only_the_supervisor_is_left(api, session)
    result = exec_in(api, session, language="bash", code="bomb() { bomb | bomb & }; bomb; sleep 30",
                     timeout_s=3)
    assert result["timed_out"] and result["survivors"] == 0
    only_the_supervisor_is_left(api, session)


def test_the_pids_limit_holds(api, session):
    code = """
import subprocess
started = []
try:
    for _ in range(200):
        started.append(subprocess.Popen(['sleep', '30']))
except OSError as exc:
    print('refused', exc.strerror)
print(len(started))
"""
    result = exec_in(api, session, language="python", code=code, timeout_s=10)
    refused, count = result["stdout"].splitlines()
    assert refused == "refused Resource temporarily unavailable"
    assert int(count) < 64
    only_the_supervisor_is_left(api, session)


def test_memory_bomb_is_oom_killed_and_the_sandbox_survives(api, session):
    bomb = "chunks = []\nwhile True:\n    chunks.append(bytearray(16 << 20))"
    result = exec_in(api, session, language="python", code=bomb, timeout_s=20)
    assert result["oom_killed"] and result["end_reason"] == "oom"
    assert result["exit_code"] == 137 and not result["timed_out"]
    assert result["peak_memory_bytes"] <= 260 << 20
    assert exec_in(api, session, language="python", code="print('alive')")["stdout"] == "alive\n"


def test_infinite_loop_times_out_and_nothing_survives(api, session):
    result = exec_in(api, session, language="python", code="while True: pass", timeout_s=2)
    assert result["timed_out"] and result["exit_code"] == 137 and result["signal"] == "SIGKILL"
    assert 1900 <= result["duration_ms"] < 3500
    assert result["cpu_time_ms"] > 500, "the loop really ran"
    only_the_supervisor_is_left(api, session)


def test_background_processes_do_not_outlive_their_run(api, session):
    code = """
nohup sleep 1000 >/dev/null 2>&1 &
setsid sleep 1000 >/dev/null 2>&1 &
python3 -c 'import os, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        time.sleep(1000)' &
sleep 0.3
echo started
"""
    result = exec_in(api, session, language="bash", code=code)
    assert result["stdout"] == "started\n" and result["survivors"] == 0
    only_the_supervisor_is_left(api, session)


def test_disk_fill_is_contained(api):
    code = """
dd if=/dev/zero of=big bs=1M count=500 2>/dev/null; echo "dd exit $?"
for i in 1 2 3; do head -c 60M /dev/zero > part$i 2>/dev/null; done
du -sm ~ | cut -f1
touch /usr/evil 2>/dev/null || echo "root is read-only"
touch /evil 2>/dev/null || echo "/ is read-only"
"""
    result = run(api, code, language="bash", timeout_s=30)
    lines = result["stdout"].splitlines()
    assert lines[0] == "dd exit 153", "dd is stopped by the file-size limit (SIGXFSZ)"
    assert int(lines[1]) <= 128, "the home tmpfs caps the total"
    assert lines[2:] == ["root is read-only", "/ is read-only"]


def host_addresses() -> list[str]:
    addresses = subprocess.run(["hostname", "-I"], capture_output=True, text=True).stdout.split()
    return [a for a in addresses if ":" not in a]


def bridge_gateway(docker_client) -> str:
    """The host's address on Docker's default bridge (IPAM often leaves Gateway out)."""
    bridge = docker_client.networks.get("bridge").attrs["Options"][
        "com.docker.network.bridge.name"]
    shown = subprocess.run(["ip", "-4", "-o", "addr", "show", bridge], capture_output=True,
                           text=True, check=True).stdout
    return shown.split(" inet ")[1].split("/")[0]


def test_no_network_egress(api, manager, docker_client):
    targets = [("deb.debian.org", 80), (bridge_gateway(docker_client), 80),
               (bridge_gateway(docker_client), 2375)]
    targets += [(address, 22) for address in host_addresses()]
    port = int(manager.url.rsplit(":", 1)[1])
    targets.append(("127.0.0.1", port))  # the manager's port: not the sandbox's loopback
    code = f"""
import os, socket
print(sorted(os.listdir('/sys/class/net')))
for host, port in {targets!r}:
    try:
        socket.create_connection((host, port), timeout=2).close()
        print('CONNECTED', host, port)
    except OSError as exc:
        print('refused', host, port, type(exc).__name__)
"""
    result = run(api, code, timeout_s=30)
    lines = result["stdout"].splitlines()
    assert lines[0] == "['lo']"
    assert len(lines) == len(targets) + 1
    assert not [line for line in lines if line.startswith("CONNECTED")]


def test_host_files_and_manager_secrets_are_out_of_reach(api, manager, tmp_path):
    marker = Path("/tmp") / f"aios-host-marker-{tmp_path.name}"
    marker.write_text("host secret")
    try:
        code = f"""
import os, glob
print(os.path.exists({str(marker)!r}), os.path.exists('/var/run/docker.sock'),
      os.path.exists('/run/docker.sock'))
try:
    open('/proc/1/environ').read(); print('environ readable')
except OSError as exc:
    print('environ', type(exc).__name__)
seen = ''
for path in glob.glob('/proc/*/environ'):
    try: seen += open(path).read()
    except OSError: pass
print({manager.token!r} in seen + str(os.environ))
try:
    open('/etc/shadow').read(); print('shadow readable')
except OSError as exc:
    print('shadow', type(exc).__name__)
"""
        lines = run(api, code)["stdout"].splitlines()
    finally:
        marker.unlink()
    assert lines == ["False False False", "environ PermissionError", "False",
                     "shadow PermissionError"]


def test_no_privilege_escalation(api):
    code = """
id -u
grep -E '^(CapEff|CapBnd|NoNewPrivs)' /proc/self/status | tr -s '\\t ' ' '
stat -c '%a %U' /bin/su
su -c 'id -u' root </dev/null >/dev/null 2>&1 && echo 'su worked' || echo 'su refused'
command -v sudo >/dev/null && echo 'sudo present' || echo 'no sudo'
python3 -c 'import os; os.setuid(0)' 2>/dev/null && echo 'setuid worked' || echo 'setuid refused'
mount -t tmpfs none /tmp 2>/dev/null && echo 'mounted' || echo 'mount refused'
"""
    lines = run(api, code, language="bash")["stdout"].splitlines()
    assert lines[0] != "0"
    assert lines[1:4] == ["CapEff: 0000000000000000", "CapBnd: 0000000000000000",
                          "NoNewPrivs: 1"]
    assert lines[4] == "4755 root", "su is setuid root, so the next line means something"
    assert lines[5:] == ["su refused", "no sudo", "setuid refused", "mount refused"]


def test_a_crash_leaves_no_core_dump(api):
    code = """
ulimit -c unlimited 2>/dev/null && echo 'raised' || echo 'refused'
echo "$(ulimit -c) $(ulimit -Hc)"
python3 -c 'import os, signal; os.kill(os.getpid(), signal.SIGSEGV)' 2>/dev/null
echo "crashed $?"
find . /tmp -maxdepth 1 -name 'core*' | wc -l
"""
    lines = run(api, code, language="bash")["stdout"].splitlines()
    assert lines == ["refused", "0 0", "crashed 139", "0"], \
        "RLIMIT_CORE is 0, soft and hard: a crash writes no memory image to the home"


@pytest.mark.parametrize("code", ["import sys\nwhile True: sys.stdout.write('x' * 4096)",
                                  "import sys\nwhile True: sys.stderr.write('é' * 4096)"])
def test_output_flood_is_capped(api, code):
    started = time.monotonic()
    result = run(api, code, timeout_s=30)
    assert result["truncated"] and result["end_reason"] == "output_limit"
    assert len((result["stdout"] + result["stderr"]).encode()) <= (1 << 20) + 4
    assert time.monotonic() - started < 10


def test_streamed_flood_is_capped_too(api):
    total = 0
    with api.stream("POST", "/v1/run?stream=true",
                    json={"language": "bash", "code": "yes"}) as response:
        for line in response.iter_lines():
            event = httpx.Response(200, content=line).json()
            if event["type"] == "stdout":
                total += len(event["text"])
            else:
                assert event["result"]["truncated"]
    assert 0 < total <= 1 << 20


@pytest.fixture
def booby_trapped(api, session):
    exec_in(api, session, language="bash", code="""
echo secret > a; ln a hard; ln -s /etc/passwd link; ln -s /tmp dirlink; ln -s a innerlink
ln -s /dev/zero zero; mkfifo fifo; mkdir -p sub; echo ok > sub/ok
head -c 11M /dev/zero > big
""")
    return session


@pytest.mark.parametrize("path, status", [
    ("link", 400), ("dirlink/x", 400), ("innerlink", 400), ("zero", 400), ("fifo", 400),
    ("hard", 400), ("sub", 400), ("../etc/passwd", 400), ("/etc/passwd", 400),
    ("sub/../a", 400), ("", 400), ("missing", 404), ("big", 413), ("sub/ok", 200),
])
def test_file_download_refuses_what_leaves_a_plain_file(api, booby_trapped, path, status):
    response = api.get(f"/v1/sandboxes/{booby_trapped}/files", params={"path": path}, timeout=10)
    assert response.status_code == status, response.text
    if status == 200:
        assert response.content == b"ok\n"
    else:
        assert response.json()["error"]["message"]


@pytest.mark.parametrize("path, status", [
    ("dirlink/x", 400), ("link", 400), ("hard", 400), ("fifo", 400), ("../x", 400),
    ("/tmp/x", 400), ("new/dir/file", 204),
])
def test_file_upload_refuses_the_same(api, booby_trapped, path, status):
    response = api.put(f"/v1/sandboxes/{booby_trapped}/files", params={"path": path},
                       content=b"data", timeout=10)
    assert response.status_code == status, response.text
    passwd = exec_in(api, booby_trapped, cmd=["head", "-c", "4", "/etc/passwd"])["stdout"]
    assert passwd == "root", "nothing was written through a link"


def test_oversize_upload_is_413(api, session):
    response = api.put(f"/v1/sandboxes/{session}/files", params={"path": "x"},
                       content=b"\0" * (11 << 20))
    assert response.status_code == 413
