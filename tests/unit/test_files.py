"""Paths confined to the allowed roots, types by content, attachments as message parts."""

import base64
import io
import os

import pytest
from PIL import Image

from aios.files.attachments import attach
from aios.files.reader import FileReader, ReadLimits
from aios.files.images import fit
from aios.files.roots import FileRefused, FileRoots
from aios.providers.parts import MediaLimits, anthropic_messages, mistral_messages, openai_messages

from ..files import pdf, png

LIMITS = ReadLimits(max_bytes=1 << 20, max_text_chars=10_000)


@pytest.fixture
def roots(tmp_path):
    downloads, documents, elsewhere = (tmp_path / n for n in ("downloads", "documents", "else"))
    for folder in (downloads, documents, elsewhere):
        folder.mkdir()
    return downloads, documents, elsewhere


@pytest.fixture
def files(roots):
    downloads, documents, _ = roots
    return FileReader(FileRoots([str(downloads), str(documents)]), LIMITS)


def refused(files, path) -> str:
    with pytest.raises(FileRefused) as caught:
        files.inspect(path)
    return caught.value.code


def test_absolute_and_relative_paths_under_a_root_are_read(files, roots):
    downloads, documents, _ = roots
    png(downloads / "a.png")
    (documents / "notes").mkdir()
    (documents / "notes" / "n.txt").write_text("hello")
    assert files.inspect(str(downloads / "a.png")) == "image/png"
    assert files.inspect("notes/n.txt") == "text/plain"   # relative: the root that has it
    assert files.inspect("a.png") == "image/png"


def test_paths_that_leave_the_roots_are_refused(files, roots):
    downloads, _, elsewhere = roots
    (elsewhere / "secret.txt").write_text("no")
    assert refused(files, str(elsewhere / "secret.txt")) == "outside_roots"
    assert refused(files, str(downloads / ".." / "else" / "secret.txt")) == "outside_roots"
    assert refused(files, "../else/secret.txt") == "outside_roots"
    assert refused(files, "/etc/passwd") == "outside_roots"
    (downloads / "link.txt").symlink_to(elsewhere / "secret.txt")
    assert refused(files, str(downloads / "link.txt")) == "outside_roots"
    (downloads / "dir").symlink_to(elsewhere)
    assert refused(files, "dir/secret.txt") == "outside_roots"


def test_a_link_within_a_root_is_followed(files, roots):
    downloads, _, _ = roots
    png(downloads / "real.png")
    (downloads / "alias.png").symlink_to(downloads / "real.png")
    assert files.inspect(str(downloads / "alias.png")) == "image/png"


def test_missing_folders_fifos_devices_and_bad_values_are_refused(files, roots):
    downloads, _, _ = roots
    assert refused(files, str(downloads / "nope.png")) == "not_found"
    assert refused(files, "nope.png") == "not_found"
    assert refused(files, str(downloads)) == "not_a_file"
    os.mkfifo(downloads / "pipe")
    assert refused(files, str(downloads / "pipe")) == "not_a_file"  # and does not hang
    os.mknod(downloads / "null", 0o600 | 0o020000, os.makedev(1, 3))  # a character device
    assert refused(files, str(downloads / "null")) == "not_a_file"
    for bad in ("", "   ", "a\x00b", None, 42):
        assert refused(files, bad) == "invalid_path"


def test_size_cap_and_type_by_content_not_name(files, roots):
    downloads, _, _ = roots
    (downloads / "big.txt").write_bytes(b"x" * (LIMITS.max_bytes + 1))
    assert refused(files, "big.txt") == "too_large"
    (downloads / "program.png").write_bytes(b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)))
    assert refused(files, "program.png") == "unsupported_type"   # an executable named .png
    png(downloads / "picture.pdf")
    assert files.inspect("picture.pdf") == "image/png"            # a PNG named .pdf
    (downloads / "fake.jpg").write_text("just text")
    assert files.inspect("fake.jpg") == "text/plain"
    (downloads / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    with pytest.raises(FileRefused, match="not a readable image"):
        files.read("broken.png")
    (downloads / "broken.pdf").write_bytes(b"%PDF-1.4\nnot really")
    with pytest.raises(FileRefused, match="not a readable PDF"):
        files.read("broken.pdf")


def test_attachments_become_parts_of_the_last_user_message(files, roots):
    downloads, documents, _ = roots
    png(downloads / "a.png")
    pdf(documents / "report.pdf", ["Quarterly numbers", "Second page"])
    (documents / "n.md").write_text("# notes\nsome text")
    parts = [files.read(p).parts[0] for p in ("a.png", "report.pdf", "n.md")]
    assert parts[0]["type"] == "image" and parts[0]["media_type"] == "image/png"
    assert base64.b64decode(parts[0]["data"]) == (downloads / "a.png").read_bytes()
    assert parts[1]["type"] == "document" and parts[1]["name"] == "report.pdf"
    assert "[page 1]\nQuarterly numbers" in parts[1]["text"] and "Second page" in parts[1]["text"]
    assert parts[2] == {"type": "text", "text": "[file n.md]\n# notes\nsome text"}
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "look"},
                {"role": "assistant", "content": "ok"}, {"role": "user", "content": "and this?"}]
    out = attach(messages, parts)
    assert out[:3] == messages[:3]
    assert out[3]["content"] == [{"type": "text", "text": "and this?"}, *parts]
    with pytest.raises(FileRefused):
        attach([{"role": "system", "content": "x"}], parts)


def test_long_text_is_cut_with_a_note(roots):
    downloads, _, _ = roots
    (downloads / "long.txt").write_text("y" * 500)
    files = FileReader(FileRoots([str(downloads)]), ReadLimits(1 << 20, 100))
    text = files.read("long.txt").parts[0]["text"]
    assert text.endswith("[... cut at 100 characters]") and text.count("y") == 100


def image_size(media_type: str, data: str) -> tuple[int, int]:
    with Image.open(io.BytesIO(base64.b64decode(data))) as image:
        assert image.format.lower() == media_type.split("/")[1]
        return image.size


def test_images_are_fitted_to_the_providers_limits(tmp_path):
    big = {"type": "image", "media_type": "image/png", "name": "b.png",
           "data": base64.b64encode(png(tmp_path / "b.png", (4000, 3000)).read_bytes()).decode()}
    assert fit(big, 5000, 1 << 30) == ("image/png", big["data"])      # within limits: as is
    media_type, data = fit(big, 1568, 1 << 30)
    assert media_type == "image/png" and image_size(media_type, data) == (1568, 1176)
    noisy = Image.effect_noise((1500, 1500), 100).convert("RGB")
    out = io.BytesIO()
    noisy.save(out, "PNG")
    part = dict(big, data=base64.b64encode(out.getvalue()).decode())
    media_type, data = fit(part, 2048, 200_000)                     # too many bytes: JPEG
    assert media_type == "image/jpeg" and len(base64.b64decode(data)) <= 200_000


def test_each_wire_format_carries_images_and_documents_its_own_way(tmp_path):
    image = {"type": "image", "media_type": "image/png", "name": "a.png",
             "data": base64.b64encode(png(tmp_path / "a.png", (3000, 100)).read_bytes()).decode()}
    document = {"type": "document", "media_type": "application/pdf", "name": "r.pdf",
                "data": "JVBERi0=", "text": "[page 1]\nhello"}
    messages = [{"role": "user", "content": [{"type": "text", "text": "see"}, image, document]},
                {"role": "assistant", "content": "plain strings pass through"}]
    native = MediaLimits(image_max_side=1000, image_max_bytes=1 << 20, native_documents=True)
    text_only = MediaLimits(image_max_side=1000, image_max_bytes=1 << 20, native_documents=False)

    openai = openai_messages(messages, native)[0]["content"]
    assert openai[0] == {"type": "text", "text": "see"}
    url = openai[1]["image_url"]["url"]
    assert openai[1]["type"] == "image_url" and url.startswith("data:image/png;base64,")
    assert image_size("image/png", url.split(",", 1)[1]) == (1000, 33)
    assert openai[2] == {"type": "file", "file": {
        "filename": "r.pdf", "file_data": "data:application/pdf;base64,JVBERi0="}}
    assert openai_messages(messages, text_only)[0]["content"][2] == {
        "type": "text", "text": "[attached PDF r.pdf]\n[page 1]\nhello"}

    anthropic = anthropic_messages(messages, native)[0]["content"]
    assert anthropic[1]["type"] == "image" and anthropic[1]["source"]["type"] == "base64"
    assert anthropic[2] == {"type": "document", "title": "r.pdf", "source": {
        "type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}}

    mistral = mistral_messages(messages, native)[0]["content"]
    assert mistral[1]["image_url"].startswith("data:image/png;base64,")
    assert mistral[2]["type"] == "text" and "hello" in mistral[2]["text"]
    for convert in (openai_messages, anthropic_messages, mistral_messages):
        assert convert(messages, native)[1] == messages[1]


class ScriptedTranscriber:
    """Stands in for the provider here; the real SDK path is tested against the fake server
    in tests/integration/test_files.py."""

    def __init__(self):
        self.calls = []

    def transcribe(self, audio: bytes, filename: str) -> str:
        self.calls.append((filename, audio[:4], len(audio)))
        return "hello from the recording"


def test_text_in_another_encoding_is_guessed(files, roots):
    downloads, _, _ = roots
    french = "Café crème, déjà vu — à la française. Le garçon a été très aimable."
    (downloads / "latin.txt").write_bytes(french.encode("cp1252"))
    assert files.inspect("latin.txt") == "text/plain"
    assert french in files.read("latin.txt").parts[0]["text"]
    russian = "Привет, мир! Это простой текст в старой кодировке Windows для проверки."
    (downloads / "cyrillic.txt").write_bytes(russian.encode("cp1251"))
    assert russian in files.read("cyrillic.txt").parts[0]["text"]


def test_audio_becomes_a_transcript_and_video_frames_plus_transcript(roots):
    from ..files import mp4, wav
    downloads, _, _ = roots
    transcriber = ScriptedTranscriber()
    files = FileReader(FileRoots([str(downloads)]), ReadLimits(1 << 24, 10_000, video_frames=3),
                       transcriber)
    wav(downloads / "voice.dat", seconds=1.0)           # the type comes from the content
    assert files.inspect("voice.dat") == "audio/wav"
    assert files.read("voice.dat").parts == [
        {"type": "text", "text": "[transcript of voice.dat]\nhello from the recording"}]
    assert transcriber.calls[0][1] == b"RIFF"
    mp4(downloads / "clip.mp4", seconds=3.0, size="2000x1000")
    video = files.read("clip.mp4")
    assert video.media_type == "video/mp4"
    frames = [p for p in video.parts if p["type"] == "image"]
    assert len(frames) == 3 and all(p["media_type"] == "image/jpeg" for p in frames)
    assert image_size("image/jpeg", frames[0]["data"]) == (1024, 512)  # scaled for models
    assert video.parts[-1]["text"].startswith("[transcript of clip.mp4]")
    filename, head, size = transcriber.calls[-1]
    assert head == b"RIFF" and 3 * 16000 * 2 * 0.9 < size < 3 * 16000 * 2 * 1.1  # 16 kHz mono
    mp4(downloads / "silent.mp4", seconds=1.0, audio=False)
    assert all(p["type"] == "image" for p in files.read("silent.mp4").parts)
    (downloads / "fake.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 200)
    with pytest.raises(FileRefused, match="not a readable audio or video"):
        files.read("fake.mp4")


def test_without_a_speech_provider_audio_is_refused_clearly(roots):
    from aios.providers.transcription import Transcriber
    from aios.settings import Settings

    from ..files import wav
    downloads, _, _ = roots
    settings = Settings(_env_file=None, api_token="t" * 20, secret_key="s" * 20,
                        sandbox_manager_token="m" * 20, file_roots=[str(downloads)],
                        upload_dir=str(downloads / "up"))
    files = FileReader(FileRoots([str(downloads)]), LIMITS, Transcriber(settings))
    wav(downloads / "a.wav")
    with pytest.raises(FileRefused, match="OPENAI_API_KEY or GROQ_API_KEY") as caught:
        files.read("a.wav")
    assert caught.value.code == "transcription_failed"


def test_listing_shows_the_roots_and_stays_inside_them(files, roots):
    downloads, documents, elsewhere = roots
    assert files.listing()["entries"] == [{"name": str(downloads), "kind": "folder"},
                                          {"name": str(documents), "kind": "folder"}]
    (downloads / "sub").mkdir()
    (downloads / "a.txt").write_text("hello")
    (downloads / "out").symlink_to(elsewhere)                  # leaves the roots: not shown
    (downloads / "alias.txt").symlink_to(downloads / "a.txt")  # stays inside: shown
    listed = files.listing(str(downloads))
    assert [(e["name"], e["kind"], e.get("size")) for e in listed["entries"]] == [
        ("a.txt", "file", 5), ("alias.txt", "file", 5), ("sub", "folder", None)]
    for path, code in [(str(elsewhere), "outside_roots"), ("out", "outside_roots"),
                       ("../else", "outside_roots"), ("a.txt", "not_a_folder"),
                       ("nope", "not_found")]:
        with pytest.raises(FileRefused) as caught:
            files.listing(path)
        assert caught.value.code == code, path


def test_uploads_are_sanitized_capped_and_swept(tmp_path):
    from aios.files.uploads import save_upload, sweep
    saved = save_upload(io.BytesIO(b"data"), "../../etc/pass wd", tmp_path, 10)
    assert saved.parent == tmp_path and saved.name.endswith("-etc_pass_wd")
    assert saved.read_bytes() == b"data" and oct(saved.stat().st_mode & 0o777) == "0o600"
    with pytest.raises(FileRefused, match="at most 10 bytes"):
        save_upload(io.BytesIO(b"x" * 11), "big.bin", tmp_path, 10)
    assert [p.name for p in tmp_path.iterdir()] == [saved.name]  # nothing left of it
    os.utime(saved, (1, 1))
    assert sweep(tmp_path, 3600) == 1 and not saved.exists()
