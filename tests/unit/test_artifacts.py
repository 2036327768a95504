"""Artifact names and the store on a real folder; attachments' names."""

import os
import time

import pytest

from aios.sandbox.artifacts import ArtifactStore, safe_name, unique_name


@pytest.mark.parametrize("name, safe", [
    ("figure-1.png", "figure-1.png"), ("plots/sales by month.png", "plots_sales by month.png"),
    ("données.csv", "données.csv"), ("../../etc/passwd", "_.._etc_passwd"),
    (".hidden", "hidden"), ("a\nb<script>.html", "a_b_script_.html"), ("", "artifact"),
    ("x" * 300 + ".png", "x" * 116 + ".png")])
def test_safe_names_stay_readable_and_one_component(name, safe):
    assert safe_name(name) == safe
    assert "/" not in safe and not safe.startswith(".")


def test_a_taken_name_gets_a_visible_number():
    assert unique_name("a.csv", {"b.csv"}) == "a.csv"
    assert unique_name("a.csv", {"a.csv"}) == "a (2).csv"
    assert unique_name("a.csv", {"a.csv", "a (2).csv"}) == "a (3).csv"
    assert unique_name("README", {"README"}) == "README (2)"


def test_the_store_serves_only_what_it_listed(tmp_path):
    store = ArtifactStore(tmp_path, retention_s=60)
    first = store.save("task1", "out/chart.png", b"\x89PNG...", "image/png")
    second = store.save("task1", "out/chart.png", b"again", "image/png")
    assert (first.name, second.name) == ("out_chart.png", "out_chart (2).png")
    path, artifact = store.find("task1", "out_chart.png")
    assert path.read_bytes() == b"\x89PNG..." and artifact.mime == "image/png"
    assert first.public("task1")["url"] == "/api/tasks/task1/artifacts/out_chart.png"
    (tmp_path / "task1" / "planted.txt").write_text("not listed")
    for name in ("planted.txt", ".index.json", "../task1/out_chart.png", "nope"):
        assert store.find("task1", name) is None
    assert store.find("task2", "out_chart.png") is None
    assert [a.name for a in store.listing("task1")] == ["out_chart.png", "out_chart (2).png"]


def test_old_tasks_are_swept(tmp_path):
    store = ArtifactStore(tmp_path, retention_s=60)
    store.save("old", "a.txt", b"a", "text/plain")
    store.save("new", "b.txt", b"b", "text/plain")
    past = time.time() - 120
    os.utime(tmp_path / "old", (past, past))
    assert store.sweep() == 1
    assert not (tmp_path / "old").exists() and (tmp_path / "new").exists()
