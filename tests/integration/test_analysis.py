""""Analyze my spreadsheet and chart it", end to end on the real stack: an uploaded file
attached to an agent task, a scripted model (each provider's real SDK against the fake
server) that loads it with pandas, keeps `df` in the live interpreter and plots it; the
chart comes back as an artifact and to the model as an image; the conversation keeps its
sandbox until it has been idle too long. Also code tasks with attachments, and refusals."""

import io
import json

import httpx
import pytest

from ..fakes.llm_server import FakeLLM
from .stack import RedisServer, TaskListener, backend_env, rest_client, start_web, start_worker

SALES = "month,amount\nJan,100\nFeb,200\nMar,300\n"
IDLE_S = 4
LOAD = "import pandas as pd\ndf = pd.read_csv('sales.csv')\nprint(len(df), 'rows')"
PLOT = ("import matplotlib.pyplot as plt\ndf.plot(x='month', y='amount', title='Sales')\n"
        "plt.show()")
SCRIPTS = {
    "analyst": [{"tools": [("run_code", {"language": "python", "code": LOAD})]},
                {"tools": [("run_code", {"language": "python", "code": "df['amount'].sum()"})]},
                {"tools": [("run_code", {"language": "python", "code": PLOT})]},
                {"text": "Total sales: 600."},
                # the follow-up: df is still there, nothing is loaded again
                {"tools": [("run_code", {"language": "python", "code": "df['amount'].max()"})]},
                {"text": "The best month sold 300."},
                # after the sandbox went idle: df is gone, the model is told
                {"tools": [("run_code", {"language": "python", "code": "'df' in dir()"})]},
                {"text": "I need the file again."}],
    "sheet": [{"tools": [("run_code", {"language": "python", "code": (
        "import pandas as pd\npd.read_excel('book.xlsx')['total'].sum()")})]},
              {"text": "Done."}],
    "resetter": [{"tools": [("run_code", {"language": "python", "code": "x = 1"})]},
                 {"tools": [("run_code", {"language": "python", "code": "'x' in dir()",
                                          "reset": True})]},
                 {"text": "Fresh."}],
    "copier": [{"tools": [("copy_to_sandbox", {"path": "data/notes.txt", "name": "n.txt"}),
                          ("copy_to_sandbox", {"path": "/etc/passwd"})]},
               {"tools": [("run_code", {"language": "bash", "code": "cat n.txt"})]},
               {"text": "Copied."}],
}
PNG_BASE64 = "iVBORw0KGgo"  # how a PNG starts, base64-encoded


@pytest.fixture(scope="module")
def fake():
    server = FakeLLM(SCRIPTS).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    root = tmp_path_factory.mktemp("home")
    (root / "uploads").mkdir()
    return root


@pytest.fixture(scope="module")
def stack(manager, fake, home):
    redis = RedisServer().start()
    key = "sk-fake-analysis"
    env = backend_env(redis.url, manager, OPENAI_API_KEY=key, OPENAI_BASE_URL=fake.base_url,
                      ANTHROPIC_API_KEY=key, ANTHROPIC_BASE_URL=fake.groq_base_url,
                      GROQ_API_KEY=key, GROQ_BASE_URL=fake.groq_base_url, MISTRAL_API_KEY=key,
                      MISTRAL_BASE_URL=fake.mistral_base_url, AIOS_LLM_MAX_RETRIES="0",
                      AIOS_FILE_ROOTS=str(home), AIOS_UPLOAD_DIR=str(home / "uploads"),
                      AIOS_ARTIFACT_DIR=str(home / "artifacts"),
                      AIOS_ATTACHMENT_MAX_BYTES=str(1 << 20),
                      AIOS_AGENT_SANDBOX_IDLE_S=str(IDLE_S))
    worker = start_worker(env, "w-analysis")
    web = start_web(env, "web-analysis")
    yield web
    web.stop()
    worker.stop()
    redis.kill()


@pytest.fixture
def rest(stack):
    with rest_client(stack) as client:
        yield client


@pytest.fixture
def listener(stack):
    client = TaskListener(stack.url).connect()
    yield client
    client.close()


def upload(rest, name: str, data: bytes) -> str:
    response = rest.post("/api/files", files={"file": (name, data)})
    assert response.status_code == 201, response.text
    return response.json()["path"]


def agent(listener, timeout=90, **task_input):
    ack = listener.call("task:submit", {"kind": "agent", "input": {"tools": ["run_code"],
                                                                   **task_input}})
    assert "error" not in ack, ack
    status = listener.wait_final(ack["task_id"], timeout)
    return ack["task_id"], status, listener.of(ack["task_id"])


def of_type(events, type_) -> list:
    return [e["data"] for e in events if e["type"] == type_]


def requests_of(fake, model) -> list:
    return [r for r in fake.requests if r["model"] == model]


@pytest.mark.parametrize("provider", ["openai", "anthropic", "groq", "mistral"])
def test_analyze_my_spreadsheet_and_chart_it(rest, listener, fake, manager, provider):
    session = f"sales-{provider}"
    path = upload(rest, "sales.csv", SALES.encode())
    earlier = len(requests_of(fake, "script:analyst"))
    task_id, status, events = agent(listener, goal="How did sales go? Chart it.",
                                    provider=provider, model="script:analyst",
                                    session_id=session, attachments=[path])
    assert status == "succeeded", events
    result = of_type(events, "result")[0]
    assert result["text"] == "Total sales: 600."
    assert result["attachments"] == [{"path": path, "name": "sales.csv", "size": len(SALES)}]
    described = f"sales.csv ({len(SALES)} bytes, text/plain)"
    assert f"attached: {described}" in "".join(e["text"] for e in of_type(events, "log"))
    assert [c["name"] for c in of_type(events, "tool_call")] == ["run_code"] * 3
    assert "".join(e["text"] for e in of_type(events, "stdout")) == "3 rows\n"
    outputs = [json.loads(r["output"]) for r in of_type(events, "tool_result")]
    assert outputs[1]["execute_result"] == "np.int64(600)", "df was kept between calls"

    [chart] = of_type(events, "artifact")
    assert (chart["name"], chart["mime"]) == ("figure-1.png", "image/png")
    assert result["artifacts"] == [chart] and outputs[2]["artifacts"] == [
        {"name": "figure-1.png", "mime": "image/png", "size": chart["size"]}]
    png = rest.get(chart["url"])
    assert png.status_code == 200 and png.content[:8] == b"\x89PNG\r\n\x1a\n"
    from PIL import Image
    assert Image.open(io.BytesIO(png.content)).size[0] >= 320, "a real chart"

    # the model was told about the file, and saw its own chart in the next request
    sent = requests_of(fake, "script:analyst")[earlier:]
    assert described in json.dumps(sent[0]), "the model knows the file is there"
    assert PNG_BASE64 not in json.dumps(sent[2]) and PNG_BASE64 in json.dumps(sent[3])

    # a follow-up in the same conversation uses df as it is
    _, status, events = agent(listener, goal="And the best month?", provider=provider,
                              model="script:analyst", session_id=session)
    assert status == "succeeded" and of_type(events, "result")[0]["text"] == \
        "The best month sold 300."
    assert json.loads(of_type(events, "tool_result")[0]["output"])["execute_result"] == \
        "np.int64(300)"
    listed = {s["session_id"]: s for s in rest.get("/api/sessions").json()["sessions"]}
    assert listed[session]["title"] == "How did sales go? Chart it." and \
        listed[session]["turns"] == 2 and listed[session]["sandbox_id"]

    # unused for longer than the idle time, the sandbox goes; the next turn is told so
    owned = {"aios.owner": f"session:{session}"}
    assert len(manager.containers(**owned)) == 1
    manager.wait_for(lambda: not manager.containers(**owned), IDLE_S + 10,
                     "the idle sandbox to go")
    _, status, events = agent(listener, goal="Again?", provider=provider,
                              model="script:analyst", session_id=session)
    told = json.loads(of_type(events, "tool_result")[0]["output"])
    assert told["execute_result"] == "False" and "previous one was removed" in told["note"]

    # deleting the conversation removes its sandbox and its history
    assert rest.delete(f"/api/sessions/{session}").status_code == 204
    manager.wait_for(lambda: not manager.containers(**owned), 5, "the sandbox to go")
    assert session not in [s["session_id"] for s in rest.get("/api/sessions").json()["sessions"]]
    assert rest.delete(f"/api/sessions/{session}").status_code == 404


def test_an_xlsx_read_with_pandas(rest, listener, tmp_path):
    from openpyxl import Workbook
    book = Workbook()
    book.active.append(["item", "total"])
    for item, total in (("a", 1.5), ("b", 2.5)):
        book.active.append([item, total])
    data = io.BytesIO()
    book.save(data)
    path = upload(rest, "book.xlsx", data.getvalue())
    _, status, events = agent(listener, goal="sum it", model="script:sheet", attachments=[path])
    assert status == "succeeded", events
    assert json.loads(of_type(events, "tool_result")[0]["output"])["execute_result"] == \
        "np.float64(4.0)"


def test_a_code_task_with_attachments_and_a_name_clash(rest, listener, home):
    (home / "data").mkdir(exist_ok=True)
    (home / "data" / "notes.txt").write_bytes(b"from a folder\n")
    uploaded = upload(rest, "notes.txt", b"\x00\x01binary")
    ack = listener.call("task:submit", {"kind": "code", "input": {
        "language": "bash", "code": "cat notes.txt; od -An -c 'notes (2).txt' | tr -s ' '",
        "attachments": [str(home / "data" / "notes.txt"), uploaded]}})
    assert listener.wait_final(ack["task_id"]) == "succeeded"
    events = listener.of(ack["task_id"])
    result = of_type(events, "result")[0]
    assert [a["name"] for a in result["attachments"]] == ["notes.txt", "notes (2).txt"]
    assert "".join(e["text"] for e in of_type(events, "stdout")) == \
        "from a folder\n \\0 001 b i n a r y\n"


def test_bad_attachments_and_artifact_names_are_refused(rest, home):
    (home / "big.bin").write_bytes(b"x" * ((1 << 20) + 1))
    cases = [("/etc/passwd", "outside_roots"), ("../etc/passwd", "outside_roots"),
             ("big.bin", "too_large"), ("missing.csv", "not_found"), (str(home), "not_a_file")]
    for kind in ("code", "agent"):
        for path, reason in cases:
            task_input = {"language": "python", "code": "1"} if kind == "code" else \
                {"goal": "x", "tools": ["run_code"]}
            response = rest.post("/api/tasks", json={"kind": kind, "input": {
                **task_input, "attachments": [path]}})
            assert response.status_code == 422, (kind, path, response.text)
            assert f"attachments: Value error, {reason}" in response.json()["error"]["message"]
    no_run_code = rest.post("/api/tasks", json={"kind": "agent", "input": {
        "goal": "x", "tools": [], "attachments": ["big.bin"]}})
    assert no_run_code.status_code == 422
    task_id = rest.post("/api/tasks",
                        json={"kind": "echo", "input": {"text": "x"}}).json()["task_id"]
    # (httpx resolves a literal `..` itself: only encoded forms reach the server)
    for name in ("..%2F..%2Fetc%2Fpasswd", "%2E%2E", "x%2F..%2F..%2Fy", ".index.json"):
        assert rest.get(f"/api/tasks/{task_id}/artifacts/{name}").status_code == 404
    with httpx.Client(base_url=str(rest.base_url)) as anonymous:
        assert anonymous.get("/api/sessions").status_code == 401


def test_a_busy_session_cannot_be_deleted(rest, listener, fake):
    fake.scripts["slow"] = [{"tools": [("run_code", {"language": "bash",
                                                     "code": "echo go; sleep 30"})]}]
    ack = listener.call("task:submit", {"kind": "agent", "input": {
        "goal": "wait", "model": "script:slow", "tools": ["run_code"],
        "session_id": "busy-session"}})
    listener.wait_for(lambda got: any(e["type"] == "stdout" for e in got.of(ack["task_id"])), 30,
                      "the run to start")
    refused = rest.delete("/api/sessions/busy-session")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "session_busy"
    listener.call("task:cancel", {"task_id": ack["task_id"]})
    assert listener.wait_final(ack["task_id"], 10) == "cancelled"
    assert rest.delete("/api/sessions/busy-session").status_code == 204


def test_the_agent_copies_a_file_it_found_into_its_sandbox(listener, home):
    (home / "data").mkdir(exist_ok=True)
    (home / "data" / "notes.txt").write_bytes(b"from a folder\n")
    _, status, events = agent(listener, goal="use my notes", model="script:copier",
                              tools=["list_files", "copy_to_sandbox", "run_code"])
    assert status == "succeeded", events
    copied, refused, ran = of_type(events, "tool_result")
    assert json.loads(copied["output"]) == {"name": "n.txt", "size": 14,
                                            "media_type": "text/plain"}
    assert refused["is_error"] and refused["output"].startswith("outside_roots")
    assert json.loads(ran["output"])["stdout"] == "from a folder\n"


def test_run_code_can_reset_its_interpreter(listener, fake):
    _, status, events = agent(listener, goal="start over", model="script:resetter")
    assert status == "succeeded", events
    assert json.loads(of_type(events, "tool_result")[1]["output"])["execute_result"] == "False"
    offered = requests_of(fake, "script:resetter")[0]["tools"][0]["function"]["parameters"]
    assert "reset" in offered["properties"]
    assert "network" not in offered["properties"], "egress is off on this sandbox manager"
