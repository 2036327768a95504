"""Paths confined to the allowed roots, types by content, attachments as message parts."""

import base64
import io
import os

import pytest
from PIL import Image

from aios.files.attachments import AttachmentLimits, Attachments, attach
from aios.files.images import fit
from aios.files.roots import FileRefused, FileRoots
from aios.providers.parts import MediaLimits, anthropic_messages, mistral_messages, openai_messages

from ..files import pdf, png

LIMITS = AttachmentLimits(max_bytes=1 << 20, max_text_chars=10_000)


@pytest.fixture
def roots(tmp_path):
    downloads, documents, elsewhere = (tmp_path / n for n in ("downloads", "documents", "else"))
    for folder in (downloads, documents, elsewhere):
        folder.mkdir()
    return downloads, documents, elsewhere


@pytest.fixture
def files(roots):
    downloads, documents, _ = roots
    return Attachments(FileRoots([str(downloads), str(documents)]), LIMITS)


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
        files.load("broken.png")
    (downloads / "broken.pdf").write_bytes(b"%PDF-1.4\nnot really")
    with pytest.raises(FileRefused, match="not a readable PDF"):
        files.load("broken.pdf")


def test_attachments_become_parts_of_the_last_user_message(files, roots):
    downloads, documents, _ = roots
    png(downloads / "a.png")
    pdf(documents / "report.pdf", ["Quarterly numbers", "Second page"])
    (documents / "n.md").write_text("# notes\nsome text")
    parts = [files.load(p) for p in ("a.png", "report.pdf", "n.md")]
    assert parts[0]["type"] == "image" and parts[0]["media_type"] == "image/png"
    assert base64.b64decode(parts[0]["data"]) == (downloads / "a.png").read_bytes()
    assert parts[1]["type"] == "document" and parts[1]["name"] == "report.pdf"
    assert "[page 1]\nQuarterly numbers" in parts[1]["text"] and "Second page" in parts[1]["text"]
    assert parts[2] == {"type": "text", "text": "[attached file n.md]\n# notes\nsome text"}
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
    files = Attachments(FileRoots([str(downloads)]), AttachmentLimits(1 << 20, 100))
    text = files.load("long.txt")["text"]
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
    assert openai[2] == {"type": "file", "file": {"filename": "r.pdf",
                                                  "file_data": "data:application/pdf;base64,JVBERi0="}}
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
