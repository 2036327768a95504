"""Session sandboxes keep a live Python interpreter and a shell's state; every run gives
back its figures and the files it writes under ~/outputs. On a real dockerd and image."""

import base64
import time

import httpx

from .support import exec_in, run, tiny_wheel


def py(api, sandbox_id, code, **extra) -> dict:
    return exec_in(api, sandbox_id, language="python", code=code, **extra)


def sh(api, sandbox_id, code, **extra) -> dict:
    return exec_in(api, sandbox_id, language="bash", code=code, **extra)


def decoded(output: dict) -> bytes:
    return base64.b64decode(output["data_base64"])


def test_variables_imports_and_the_last_expression_carry_over(api, session):
    first = py(api, session, "x = 41\nimport json")
    assert first["interpreter"] == {"state": "new"} and first["execute_result"] is None
    second = py(api, session, "print(x + 1)\njson.dumps({'x': x})")
    assert second["stdout"] == "42\n"
    assert second["execute_result"] == "'{\"x\": 41}'"
    assert second["interpreter"] == {"state": "kept"}
    assert (second["exit_code"], second["end_reason"]) == (0, "exited")
    assert py(api, session, "_")["execute_result"] == "'{\"x\": 41}'", "`_` is the last value"
    assert py(api, session, "import os\nos.getcwd()")["execute_result"] == "'/home/sandboxuser'"


def test_an_exception_is_a_traceback_and_the_state_stays(api, session):
    py(api, session, "y = 'kept'")
    failed = py(api, session, "def f():\n    return 1 / 0\nf()")
    assert failed["exit_code"] == 1 and failed["end_reason"] == "exited"
    assert "ZeroDivisionError: division by zero" in failed["stderr"]
    assert 'File "<exec 2>", line 2, in f' in failed["stderr"], "the user's code, by line"
    assert "aios_kernel" not in failed["stderr"], "no frame of ours"
    assert py(api, session, "import sys\nsys.exit(3)")["exit_code"] == 3
    syntax = py(api, session, "x = = 1")
    assert syntax["exit_code"] == 1 and "SyntaxError" in syntax["stderr"]
    assert py(api, session, "y")["execute_result"] == "'kept'"


def test_input_comes_from_the_exec_stdin(api, session):
    assert py(api, session, "input().upper()", stdin="hello\n")["execute_result"] == "'HELLO'"


def test_output_streams_while_an_interpreter_exec_runs(api, session):
    started = time.monotonic()
    arrivals = []
    body = {"language": "python", "code": "import time\nprint('first')\ntime.sleep(1.5)\n"
                                          "print('second')"}
    with api.stream("POST", f"/v1/sandboxes/{session}/exec?stream=true", json=body) as response:
        for line in response.iter_lines():
            arrivals.append((time.monotonic() - started, line))
    first = next(t for t, line in arrivals if "first" in line)
    last = arrivals[-1][0]
    assert last - first > 1.2, "the first line came long before the end"


def test_a_timeout_kills_the_interpreter_and_the_next_exec_is_told(api, session):
    py(api, session, "z = 1")
    stopped = py(api, session, "import time\ntime.sleep(30)", timeout_s=1)
    assert stopped["end_reason"] == "timeout" and stopped["timed_out"] is True
    assert stopped["duration_ms"] < 3000
    fresh = py(api, session, "'z' in dir()")
    assert fresh["execute_result"] == "False"
    assert fresh["interpreter"]["state"] == "restarted"
    assert "timed out" in fresh["interpreter"]["note"]
    assert py(api, session, "1")["interpreter"] == {"state": "kept"}


def test_out_of_memory_and_a_crash_are_reported_and_survived(api):
    created = api.post("/v1/sandboxes", json={"ttl_s": 120, "limits": {"memory_mb": 128}})
    sandbox_id = created.json()["id"]
    try:
        oom = py(api, sandbox_id, "blocks = []\nwhile True:\n    blocks.append(bytearray(1 << 24))")
        assert oom["end_reason"] == "oom" and oom["oom_killed"] is True
        after_oom = py(api, sandbox_id, "2 + 2")
        assert after_oom["execute_result"] == "4"
        assert "out of memory" in after_oom["interpreter"]["note"]
        crash = py(api, sandbox_id, "import os\nos._exit(7)")
        assert (crash["end_reason"], crash["exit_code"]) == ("exited", 7)
        assert "exit 7" in py(api, sandbox_id, "1")["interpreter"]["note"]
    finally:
        api.delete(f"/v1/sandboxes/{sandbox_id}")


def test_reset_restarts_the_interpreter_and_keeps_the_files(api, session):
    py(api, session, "v = 5\nopen('kept.txt', 'w').write('still here')")
    sh(api, session, "cd /tmp; export GONE=1")
    reset = api.post(f"/v1/sandboxes/{session}/reset")
    assert reset.status_code == 200 and reset.json()["id"] == session
    after = py(api, session, "print(open('kept.txt').read())\n'v' in dir()")
    assert after["stdout"] == "still here\n" and after["execute_result"] == "False"
    assert after["interpreter"] == {"state": "new"}
    assert sh(api, session, 'echo "$PWD ${GONE:-unset}"')["stdout"] == "/home/sandboxuser unset\n"
    assert api.post("/v1/sandboxes/nope/reset").status_code == 404


def test_bash_keeps_its_directory_and_exports_like_a_terminal(api, session):
    sh(api, session, "mkdir -p work && cd work && export GREETING='hello world' && LOCAL=1")
    kept = sh(api, session, 'echo "$PWD|$GREETING|${LOCAL:-}"')
    assert kept["stdout"] == "/home/sandboxuser/work|hello world|\n"
    failed = sh(api, session, "cd /tmp; exit 4")
    assert failed["exit_code"] == 4
    assert sh(api, session, "pwd")["stdout"] == "/tmp\n", "saved however the exec ended"
    one_shot = run(api, "pwd; echo ${GREETING:-none}", language="bash")
    assert one_shot["stdout"] == "/home/sandboxuser\nnone\n", "one-shot runs keep nothing"


def test_processes_an_exec_starts_are_killed_but_the_interpreter_lives(api, session):
    started = py(api, session, "import subprocess\n"
                               "p = subprocess.Popen(['sleep', '300'])\nkept = 'yes'\np.pid")
    assert started["survivors"] == 0
    pid = started["execute_result"]
    alive = py(api, session, f"import os\nos.path.exists('/proc/{pid}/cmdline') and "
                             f"open('/proc/{pid}/stat').read().split()[2] != 'Z'")
    assert alive["execute_result"] == "False"
    assert py(api, session, "kept")["execute_result"] == "'yes'"


def test_one_shot_runs_stay_one_process_and_return_shown_figures(api):
    code = ("import matplotlib.pyplot as plt\n"
            "plt.plot(range(1000))\nplt.show()\n"
            "plt.figure(); plt.bar([1, 2], [3, 4])  # left open: saved when the script ends\n")
    result = run(api, code, timeout_s=60)
    assert result["exit_code"] == 0, result["stderr"]
    assert "interpreter" not in result
    names = [o["name"] for o in result["outputs"]]
    assert names == ["figure-1.png", "figure-2.png"]
    for output in result["outputs"]:
        assert output["mime"] == "image/png" and decoded(output)[:8] == b"\x89PNG\r\n\x1a\n"
        assert output["size"] == len(decoded(output))
    assert result["outputs_truncated"] is False and result["outputs_dropped"] == []


def test_figures_left_open_come_back_once_per_change(api, session):
    drawn = py(api, session, "import matplotlib.pyplot as plt\nfig, ax = plt.subplots()\n"
                             "ax.plot([1, 2, 3])", timeout_s=60)
    assert [o["mime"] for o in drawn["outputs"]] == ["image/png"]
    assert py(api, session, "len(plt.get_fignums())")["outputs"] == [], "unchanged: not again"
    changed = py(api, session, "ax.set_title('again')\nplt.get_fignums()")
    assert changed["execute_result"] == "[1]", "the figure stays open"
    assert len(changed["outputs"]) == 1 and changed["outputs"][0]["name"] != \
        drawn["outputs"][0]["name"]


def test_files_under_outputs_come_back_once_typed_by_content(api, session):
    code = ("mkdir -p outputs/tables\n"
            "printf 'a,b\\n1,2\\n' > outputs/tables/data.csv\n"
            "printf '<html><body>hi</body></html>' > outputs/not-an-image.png\n"
            "printf '{\"k\": [1]}' > outputs/result.txt\n"
            "head -c 100 /dev/urandom > outputs/blob\n"
            "ln -s /etc/passwd outputs/link\nmkfifo outputs/fifo\n"
            "printf x > \"outputs/$(printf 'bad\\001\\377name')\"\n")
    result = sh(api, session, code)
    by_name = {o["name"]: o for o in result["outputs"]}
    assert by_name["tables/data.csv"]["mime"] == "text/csv"
    assert decoded(by_name["tables/data.csv"]) == b"a,b\n1,2\n"
    assert by_name["not-an-image.png"]["mime"] == "text/html", "the content decides"
    assert by_name["result.txt"]["mime"] == "application/json"
    assert by_name["blob"]["mime"] == "application/octet-stream"
    assert "bad_\ufffdname" in by_name, "junk bytes in a name become printable"
    assert "link" not in by_name and "fifo" not in by_name, "only regular files"
    again = sh(api, session, "ls -A outputs | wc -l")
    assert again["outputs"] == [] and again["stdout"] == "0\n", "moved out: nothing is left"


def test_binary_files_go_in_and_come_back(api, session):
    payload = bytes(range(256)) * 64
    result = run(api, "data = open('in.bin', 'rb').read()\n"
                      "open('outputs/out.bin', 'wb').write(data[::-1])\nlen(data)",
                 files={"in.bin": {"data_base64": base64.b64encode(payload).decode()},
                        "note.txt": "text stays text"})
    assert result["exit_code"] == 0, result["stderr"]
    assert decoded(result["outputs"][0]) == payload[::-1]
    bad = api.post("/v1/run", json={"language": "python", "code": "1",
                                    "files": {"x.bin": {"data_base64": "%%%"}}})
    assert bad.status_code == 422 and "x.bin" in bad.json()["error"]["message"]
    put = api.put(f"/v1/sandboxes/{session}/files", params={"path": "raw.bin"}, content=payload)
    assert put.status_code == 204
    got = api.get(f"/v1/sandboxes/{session}/files", params={"path": "raw.bin"})
    assert got.content == payload
    for junk in ("%FF%01x", "a%0Ab", "%C3%28"):
        refused = api.put(f"/v1/sandboxes/{session}/files?path={junk}", content=b"x")
        assert refused.status_code == 400 and refused.json()["error"]["code"] == "bad_path"


def test_the_design_guides_toolbox_and_the_data_layer(api):
    code = ("import numpy, pandas, matplotlib, PIL, scipy, openpyxl, pyarrow, sys\n"
            "print(sys.version_info[:2])\n"
            "df = pandas.DataFrame({'a': [1, 2]})\n"
            "df.to_excel('outputs/t.xlsx'); df.to_parquet('outputs/t.parquet')\n")
    result = run(api, code, timeout_s=60)
    assert result["exit_code"] == 0, result["stderr"]
    assert result["stdout"] == "(3, 11)\n"
    assert {o["mime"] for o in result["outputs"]} == {
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/vnd.apache.parquet"}
    tools = run(api, "for t in pip git curl gcc make; do command -v $t >/dev/null || echo "
                     "missing $t; done\nprintf '#include <stdio.h>\\nint main(){puts(\"built\");}'"
                     " > m.c && gcc m.c -o m && ./m", language="bash", timeout_s=60)
    assert tools["stdout"] == "built\n", tools["stderr"]


def test_pip_installs_as_the_sandbox_user(api):
    wheel = tiny_wheel("aios_hello", "GREETING = 'hello from a wheel'\n")
    result = run(api, "pip install -q --no-index ./" + wheel.name + " 2>&1 && "
                      "python3 -c 'import aios_hello; print(aios_hello.GREETING)'",
                 language="bash", timeout_s=60,
                 files={wheel.name: {"data_base64": base64.b64encode(wheel.data).decode()}})
    assert result["stdout"].endswith("hello from a wheel\n"), result["stdout"] + result["stderr"]


def test_bad_network_values_and_egress_while_disabled(api, manager):
    for body in ({"language": "python", "code": "1", "network": "host"},
                 {"language": "python", "code": "1", "network": ""}):
        refused = api.post("/v1/run", json=body)
        assert refused.status_code == 422 and "network" in refused.json()["error"]["message"]
    assert api.post("/v1/sandboxes", json={"network": "bridge"}).status_code == 422
    for path, body in (("/v1/run", {"language": "python", "code": "1", "network": "egress"}),
                       ("/v1/sandboxes", {"network": "egress"})):
        refused = api.post(path, json=body)
        assert refused.status_code == 403, refused.text
        error = refused.json()["error"]
        assert error["code"] == "egress_disabled" and "SANDBOX_ALLOW_EGRESS=1" in error["message"]
    assert httpx.get(manager.url + "/health").status_code == 200


def test_output_caps_cut_visibly_and_leave_nothing(spawn_manager):
    manager = spawn_manager(max_outputs=3, max_output_file_bytes=1000, max_outputs_bytes=2500)
    api = manager.client()
    many = run(api, "for i, size in enumerate([900, 900, 900, 100, 100]):\n"
                    "    open(f'outputs/f{i}.txt', 'w').write('x' * size)")
    assert [o["name"] for o in many["outputs"]] == ["f0.txt", "f1.txt", "f3.txt"]
    assert many["outputs_truncated"] is True
    assert [(d["name"], d["reason"]) for d in many["outputs_dropped"]] == [
        ("f2.txt", "total_bytes"), ("f4.txt", "count")]
    big = run(api, "open('outputs/big.bin', 'wb').write(b'x' * 5000)")
    assert big["outputs"] == [] and big["outputs_dropped"] == [
        {"name": "big.bin", "size": 5000, "reason": "file_bytes"}]
    bomb = run(api, "import matplotlib.pyplot as plt\nfor i in range(10000):\n    plt.figure()\n"
                    "plt.show()", timeout_s=120, limits={"memory_mb": 768})
    assert bomb["exit_code"] == 0, bomb["stderr"][-2000:]
    assert len(bomb["outputs"]) <= 3 and bomb["outputs_truncated"] is True
    assert any(d.get("count", 0) > 9000 for d in bomb["outputs_dropped"]), "not drawn at all"
    assert httpx.get(manager.url + "/health", timeout=1).status_code == 200


def test_a_gigabyte_output_file_is_capped_by_the_sandbox_and_dropped(api, session):
    result = sh(api, session, "head -c 1073741824 /dev/zero > outputs/huge.bin; echo $?",
                timeout_s=60)
    assert result["stdout"] != "0\n", "the file-size limit stops the write"
    assert result["outputs"] == [] and result["outputs_truncated"] is True
    assert result["outputs_dropped"][0]["name"] == "huge.bin"
    left = sh(api, session, "ls -A outputs | wc -l")
    assert left["stdout"] == "0\n", "dropped outputs are removed too"


def test_a_session_unused_for_its_idle_time_goes(api, manager):
    created = api.post("/v1/sandboxes", json={"ttl_s": 300, "idle_ttl_s": 1.5,
                                              "owner": "idle-test"}).json()
    assert created["idle_ttl_s"] == 1.5
    sandbox_id = created["id"]
    for _ in range(3):  # each use counts as activity
        time.sleep(0.8)
        assert py(api, sandbox_id, "1")["exit_code"] == 0
    manager.wait_for(lambda: api.get(f"/v1/sandboxes/{sandbox_id}").status_code == 404, 5,
                     "the idle session to go")
    manager.wait_for(lambda: not manager.containers(**{"aios.owner": "idle-test"}), 5,
                     "its container to go")
    assert httpx.get(manager.url + "/health").json()["features"]["egress"] is False
