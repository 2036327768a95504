"""`python -m aios` as a subprocess against the real stack (web, worker, sandbox manager).

Exit codes under test: 0 the task succeeded (a program that exits non-zero still ran: its
task succeeded), 1 the task failed, 2 the command could not be carried out, 130 Ctrl-C."""

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
from urllib.parse import urlsplit

import httpx
import pytest

from .stack import API_TOKEN, BACKEND, spawn, wait_for_task, web_command
from .support import wait_until

SLEEPER = "import time; print('go', flush=True); time.sleep(60)"
CHART = ("import matplotlib.pyplot as plt\nplt.plot([1, 2, 3]); plt.show()\n"
         "open('outputs/t.csv', 'w').write('a,b\\n1,2\\n')")


def cli_env(web, token: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIOS_")}
    env.update(AIOS_URL=web.url, AIOS_API_TOKEN=token, PYTHONPATH=str(BACKEND),
               PYTHONUNBUFFERED="1")
    return env


def aios(web, *args, token: str = API_TOKEN, stdin: str = "", timeout: float = 90):
    """Run the CLI from an empty folder (no .env there) and wait for it."""
    return subprocess.run([sys.executable, "-m", "aios", *args], env=cli_env(web, token),
                          cwd=tempfile.mkdtemp(prefix="aios-cli-"), input=stdin,
                          capture_output=True, text=True, timeout=timeout)


def submit_rest(rest, code: str) -> str:
    response = rest.post("/api/tasks", json={"kind": "code", "input": {
        "language": "python", "code": code}})
    assert response.status_code == 202, response.text
    return response.json()["task_id"]


def wait_printing(rest, task_id: str) -> None:
    def printed():
        events = rest.get(f"/api/tasks/{task_id}/events").json()["events"]
        return any(e["type"] == "stdout" for e in events)
    wait_until(printed, 60, f"task {task_id} to print")


def test_health_prints_the_checks(web):
    done = aios(web, "health", token="")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "ok"


def test_providers_lists_none_with_a_hint(web):
    done = aios(web, "providers")
    assert done.returncode == 0, done.stderr
    body = json.loads(done.stdout)
    assert body["providers"] == [] and "OPENAI_API_KEY" in body["hint"]


def test_submit_code_streams_the_program_output_and_exits_0(web):
    done = aios(web, "submit", "code", "--text", "print(6*7)")
    assert (done.returncode, done.stdout) == (0, "42\n"), done.stderr
    assert "[status] succeeded" in done.stderr
    assert re.search(r"\[result\] exit_code=0 end_reason=exited", done.stderr)


def test_submit_code_from_a_file_or_stdin(web, tmp_path):
    script = tmp_path / "count.sh"
    script.write_text("for i in 1 2 3; do echo $i; done\necho oops >&2\n")
    done = aios(web, "submit", "code", "--code", str(script))  # bash, from the suffix
    assert (done.returncode, done.stdout) == (0, "1\n2\n3\n"), done.stderr
    assert "oops\n" in done.stderr
    done = aios(web, "submit", "code", "--code", "-", stdin="print('from stdin')")
    assert (done.returncode, done.stdout) == (0, "from stdin\n"), done.stderr


def test_a_failing_program_is_a_task_that_succeeded(web):
    done = aios(web, "submit", "code", "--text",
                "import sys; print('before'); print('bad', file=sys.stderr); sys.exit(3)")
    assert (done.returncode, done.stdout) == (0, "before\n"), done.stderr
    assert "bad\n" in done.stderr and "exit_code=3" in done.stderr


def test_a_failed_task_exits_1_and_names_the_error(web):
    done = aios(web, "submit", "chat", "--text", "hi")  # no provider is configured
    assert done.returncode == 1, done.stderr
    assert "[error] no_provider:" in done.stderr and "[status] failed" in done.stderr


def test_submit_echo_prints_the_text(web):
    done = aios(web, "submit", "echo", "--text", "hello there")
    assert (done.returncode, done.stdout) == (0, "hello there\n"), done.stderr
    done = aios(web, "submit", "echo", "--input", '{"text": "raw"}', "--json")
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert [e["data"] for e in events if e["type"] == "result"] == [{"text": "raw"}]
    assert events[-1]["data"] == {"status": "succeeded"}


def test_submit_no_wait_prints_the_id(web, rest):
    done = aios(web, "submit", "echo", "--text", "later", "--no-wait")
    assert done.returncode == 0, done.stderr
    task = wait_for_task(rest, done.stdout.strip())
    assert (task["status"], task["result"]) == ("succeeded", {"text": "later"})


@pytest.mark.parametrize("args", [["status", "nope-1234"], ["submit", "echo", "--text", "x"],
                                  ["events", "nope-1234"], ["providers"]])
def test_a_bad_token_exits_2_with_a_clear_message(web, args):
    done = aios(web, *args, token="wrong-token-0123456789")
    assert done.returncode == 2
    assert "refused the API token (401" in done.stderr and "Traceback" not in done.stderr


def test_usage_errors_exit_2_with_a_clear_message(web):
    done = aios(web, "submit", "echo", "--input", "{not json")
    assert done.returncode == 2 and "--input is not valid JSON" in done.stderr
    done = aios(web, "submit", "code", "--input", '{"language": "cobol", "code": "x"}')
    assert done.returncode == 2 and "invalid_request" in done.stderr
    done = aios(web, "status", "no-such-task")
    assert done.returncode == 2 and "404" in done.stderr
    done = subprocess.run([sys.executable, "-m", "aios", "--url", "http://127.0.0.1:9",
                           "health"], env=cli_env(web, API_TOKEN), capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 2 and "cannot reach the AI-OS server" in done.stderr


def test_artifacts_are_announced_listed_and_downloaded_without_overwriting(web, rest,
                                                                           tmp_path):
    done = aios(web, "submit", "code", "--text", CHART)
    assert done.returncode == 0, done.stderr
    base = re.escape(web.url)
    assert re.search(rf"\[artifact\] t\.csv \(text/csv, 8 bytes\) {base}/api/tasks/\S+/"
                     rf"artifacts/t\.csv\n", done.stderr)
    assert re.search(rf"\[artifact\] (\S+)\.png \(image/png, [\d,]+ bytes\) {base}/",
                     done.stderr)
    task_id = re.search(r"\[task\] (\S+)", done.stderr).group(1)
    artifacts = rest.get(f"/api/tasks/{task_id}").json()["result"]["artifacts"]

    done = aios(web, "artifacts", task_id)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"{a['name']} ({a['mime']}, {a['size']:,} bytes) {web.url}{a['url']}" for a in artifacts]
    png = next(a["name"] for a in artifacts if a["mime"] == "image/png")

    out = tmp_path / "new" / "folder"  # created
    done = aios(web, "artifacts", task_id, "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [str(out / a["name"]) for a in artifacts]
    assert (out / png).read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert (out / "t.csv").read_bytes() == b"a,b\n1,2\n"
    (out / "t.csv").write_text("mine")
    done = aios(web, "artifacts", task_id, "--out", str(out))  # the same folder again
    assert done.returncode == 0, done.stderr
    stem = png.removesuffix(".png")
    assert sorted(done.stdout.splitlines()) == [str(out / f"{stem} (2).png"),
                                                str(out / "t (2).csv")]
    assert (out / "t.csv").read_text() == "mine"  # never overwritten
    assert (out / "t (2).csv").read_bytes() == b"a,b\n1,2\n"


def test_artifacts_of_an_unknown_task_exit_1(web):
    done = aios(web, "artifacts", "no-such-task")
    assert done.returncode == 1 and "no task no-such-task" in done.stderr
    assert done.stdout == "" and "Traceback" not in done.stderr


def test_submit_attach_uploads_local_files_into_the_sandbox(web, rest, tmp_path):
    local = tmp_path / "local.csv"
    local.write_text("x,y\n3,4\n")
    done = aios(web, "submit", "code", "--attach", str(local),
                "--text", "print(open('local.csv').read())")
    assert (done.returncode, done.stdout) == (0, "x,y\n3,4\n\n"), done.stderr

    # --attach repeated, merged with attachments --input already names
    uploaded = rest.post("/api/files", files={"file": ("a.txt", b"A")}).json()["path"]
    (tmp_path / "b.txt").write_text("B")
    code = "print(open('a.txt').read() + open('b.txt').read() + open('local.csv').read())"
    done = aios(web, "submit", "code", "--attach", str(tmp_path / "b.txt"),
                "--attach", str(local), "--input", json.dumps(
                    {"language": "python", "code": code, "attachments": [uploaded]}))
    assert (done.returncode, done.stdout) == (0, "ABx,y\n3,4\n\n"), done.stderr


def test_a_missing_attachment_is_a_usage_error_before_anything_is_sent(web, tmp_path):
    done = aios(web, "submit", "code", "--attach", str(tmp_path / "nope.csv"),
                "--text", "print(1)")
    assert done.returncode == 2 and "nope.csv: no such file" in done.stderr
    assert "[task]" not in done.stderr and done.stdout == ""
    done = aios(web, "submit", "echo", "--attach", str(tmp_path), "--text", "x")
    assert done.returncode == 2 and "--attach works with code, agent and chat" in done.stderr


def test_events_replays_a_finished_task(web, rest):
    task_id = submit_rest(rest, "print('a'); print('b')")
    assert wait_for_task(rest, task_id)["status"] == "succeeded"
    done = aios(web, "events", task_id)
    assert (done.returncode, done.stdout) == (0, "a\nb\n"), done.stderr
    assert "[status] succeeded" in done.stderr
    stored = rest.get(f"/api/tasks/{task_id}/events").json()["events"]
    done = aios(web, "events", task_id, "--after", "1", "--json")
    assert [json.loads(line) for line in done.stdout.splitlines()] == stored[1:]


def test_events_follows_a_running_task_until_it_ends(web, rest):
    task_id = submit_rest(rest, "import time\nfor i in range(3):\n"
                                "    print(i, flush=True); time.sleep(0.5)")
    done = aios(web, "events", task_id)
    assert (done.returncode, done.stdout) == (0, "0\n1\n2\n"), done.stderr


def test_cancel_stops_a_running_task(web, rest):
    task_id = submit_rest(rest, SLEEPER)
    wait_printing(rest, task_id)
    done = aios(web, "cancel", task_id)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[0] == task_id
    assert wait_for_task(rest, task_id, timeout=15)["status"] == "cancelled"
    done = aios(web, "status", task_id)
    assert json.loads(done.stdout)["status"] == "cancelled"


def test_ctrl_c_cancels_the_task_and_exits_130(web, rest):
    proc = subprocess.Popen([sys.executable, "-m", "aios", "submit", "code", "--text", SLEEPER],
                            env=cli_env(web, API_TOKEN), cwd=tempfile.mkdtemp(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "go\n"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    task_id = re.search(r"\[task\] (\S+)", err).group(1)
    assert "[cancel] cancelling" in err and "[status] cancelled" in err
    assert rest.get(f"/api/tasks/{task_id}").json()["status"] == "cancelled"


def test_submit_resumes_the_stream_after_the_web_server_restarts(own_stack):
    own_stack.worker()
    web = own_stack.web()
    counter = "import time\nfor i in range(12):\n    print(i, flush=True); time.sleep(0.5)"
    proc = subprocess.Popen([sys.executable, "-m", "aios", "submit", "code", "--text", counter],
                            env=cli_env(web, API_TOKEN), cwd=tempfile.mkdtemp(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    again = None
    try:
        seen = [proc.stdout.readline() for _ in range(3)]
        web.kill()  # SIGKILL: the CLI's socket drops mid-stream
        again = spawn(web_command(urlsplit(web.url).port), own_stack.environment, "web-again")
        wait_until(lambda: healthy(web.url), 60, "the restarted web server")
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        if again:
            again.stop()
    assert proc.returncode == 0, err
    assert "".join(seen) + out == "".join(f"{i}\n" for i in range(12))  # nothing lost or doubled


def healthy(url: str) -> bool:
    try:
        return httpx.get(url + "/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
