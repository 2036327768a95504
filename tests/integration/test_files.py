"""The user's files end to end: transcription through the real SDKs against the fake
provider, uploads through the web server, and the file tools in an agent run."""

import pytest

from aios.files.reader import FileReader, ReadLimits
from aios.files.roots import FileRoots
from aios.providers.transcription import Transcriber
from aios.settings import Settings

from ..fakes.llm_server import FakeLLM
from ..files import mp4, png, wav
from .stack import TaskListener, backend_env, rest_client


@pytest.fixture(scope="module")
def fake():
    server = FakeLLM({"files": [
        {"tools": [("list_files", {})]},
        {"tools": [("list_files", {"path": "pictures"}),
                   ("read_file", {"path": "pictures/chart.png"}),
                   ("read_file", {"path": "/etc/hostname"})]},
        {"text": "A red chart."}]}).start()
    yield server
    server.stop()


def settings_for(tmp_path, **keys) -> Settings:
    return Settings(_env_file=None, api_token="t" * 20, secret_key="s" * 20,
                    sandbox_manager_token="m" * 20, file_roots=[str(tmp_path)],
                    upload_dir=str(tmp_path / "uploads"), **keys)


@pytest.mark.parametrize("provider", ["openai", "groq"])
def test_audio_and_video_are_transcribed_by_the_configured_provider(fake, tmp_path, provider):
    keys = {"openai_api_key": "sk-fake-stt", "openai_base_url": fake.base_url} \
        if provider == "openai" else \
        {"groq_api_key": "gsk-fake-stt", "groq_base_url": fake.groq_base_url}
    settings = settings_for(tmp_path, **keys)
    files = FileReader(FileRoots([str(tmp_path)]), ReadLimits(1 << 24, 10_000, video_frames=2),
                       Transcriber(settings))
    wav(tmp_path / "memo.wav", seconds=1.5)
    assert files.read("memo.wav").parts == [
        {"type": "text", "text": "[transcript of memo.wav]\na recording of 1.5 seconds"}]
    sent = fake.transcribed[-1]
    assert sent["model"] == ("whisper-1" if provider == "openai" else "whisper-large-v3-turbo")
    assert sent["filename"] == "memo.wav" and "fake-stt" in sent["authorization"]
    mp4(tmp_path / "clip.mp4", seconds=2.0)
    video = files.read("clip.mp4")
    assert [p["type"] for p in video.parts] == ["image", "image", "text"]
    assert video.parts[-1]["text"] == "[transcript of clip.mp4]\na recording of 2.0 seconds"
    assert fake.transcribed[-1]["filename"] == "clip.mp4"


def test_a_provider_error_is_a_clear_transcription_failure(fake, tmp_path):
    from aios.files.roots import FileRefused
    settings = settings_for(tmp_path, openai_api_key="sk-fake-stt", openai_base_url=fake.base_url,
                            transcription_model="fail-401")
    files = FileReader(FileRoots([str(tmp_path)]), ReadLimits(1 << 24, 10_000),
                       Transcriber(settings))
    wav(tmp_path / "memo.wav")
    with pytest.raises(FileRefused, match="openai could not transcribe memo.wav") as caught:
        files.read("memo.wav")
    assert caught.value.code == "transcription_failed"


@pytest.fixture
def files_web(own_stack, manager, fake, tmp_path):
    home = tmp_path / "home"
    (home / "pictures").mkdir(parents=True)
    own_stack.environment.update(backend_env(
        own_stack.redis.url, manager, OPENAI_API_KEY="sk-fake-files",
        OPENAI_BASE_URL=fake.base_url, AIOS_FILE_ROOTS=str(home),
        AIOS_UPLOAD_DIR=str(home / "uploads"), AIOS_UPLOAD_MAX_BYTES=str(1 << 20)))
    own_stack.worker("w-files")
    return own_stack.web("web-files"), home


def test_upload_then_attach_the_uploaded_file(files_web, fake, tmp_path):
    web, home = files_web
    picture = png(tmp_path / "shot.png")
    with rest_client(web) as rest:
        with picture.open("rb") as f:
            response = rest.post("/api/files", files={"file": ("my shot (1).png", f, "image/png")})
        assert response.status_code == 201, response.text
        path = response.json()["path"]
        assert path.startswith(str(home / "uploads")) and path.endswith("-my_shot_1.png")
        listener = TaskListener(web.url).connect()
        task_id = rest.post("/api/tasks", json={"kind": "chat", "input": {
            "messages": [{"role": "user", "content": "what is this?"}],
            "attachments": [path]}}).json()["task_id"]
        listener.call("task:subscribe", {"task_id": task_id, "after": 0})
        assert listener.wait_final(task_id) == "succeeded"
        listener.close()
        image = fake.requests[-1]["messages"][-1]["content"][1]
        assert image["image_url"]["url"].startswith("data:image/png;base64,")

        too_big = rest.post("/api/files", files={"file": ("big.bin", b"x" * (2 << 20))})
        assert too_big.status_code == 413 and too_big.json()["error"]["code"] == "too_large"
        assert rest.post("/api/files", files={"other": ("a.txt", b"a")}).status_code == 400
        assert sorted(p.name for p in (home / "uploads").iterdir()) == [path.rsplit("/", 1)[1]]
    with rest_client(web, token=None) as anonymous:
        assert anonymous.post("/api/files", files={"file": ("a.txt", b"a")}).status_code == 401


def test_the_agent_lists_and_reads_files_and_sees_the_image(files_web, fake):
    web, home = files_web
    png(home / "pictures" / "chart.png")
    listener = TaskListener(web.url).connect()
    ack = listener.call("task:submit", {"kind": "agent", "input": {
        "goal": "describe my chart", "model": "script:files",
        "tools": ["list_files", "read_file"]}})
    assert listener.wait_final(ack["task_id"]) == "succeeded"
    results = [e["data"] for e in listener.of(ack["task_id"]) if e["type"] == "tool_result"]
    listener.close()
    assert [r["is_error"] for r in results] == [False, False, False, True]
    assert str(home) in results[0]["output"]                     # the roots
    assert '"name": "chart.png"' in results[1]["output"]
    assert results[2]["output"].startswith(str(home / "pictures" / "chart.png") + " (image/png")
    assert "outside_roots" in results[3]["output"]
    sent = [r for r in fake.requests if r["model"] == "script:files"][-1]["messages"]
    assert [m["role"] for m in sent[-5:]] == ["assistant", "tool", "tool", "tool", "user"]
    attached = sent[-1]["content"]
    assert attached[0]["type"] == "text" and attached[1]["type"] == "image_url"
