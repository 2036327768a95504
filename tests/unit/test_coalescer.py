"""A task's streamed output joined into few events: nothing lost, nothing reordered."""

import threading
import time

import pytest

from aios.tasks.output import OutputCoalescer, joined


def collecting():
    emitted, lock = [], threading.Lock()

    def emit(events):
        with lock:
            emitted.append((time.monotonic(), events))
    return emitted, emit


def test_a_fast_stream_is_batched_without_loss_or_reordering():
    emitted, emit = collecting()
    coalescer = OutputCoalescer(emit, rate=30)
    started = time.monotonic()
    tokens = [f"t{i} " for i in range(3000)]
    for t in tokens:
        coalescer.add("token", t)
        time.sleep(0.0002)
    coalescer.close()
    elapsed = time.monotonic() - started
    assert "".join(data["text"] for _, events in emitted for _, data in events) == "".join(tokens)
    assert 1 < len(emitted) <= 30 * elapsed + 2
    gaps = [b[0] - a[0] for a, b in zip(emitted, emitted[1:], strict=False)]
    assert min(gaps[:-1]) >= 1 / 30 * 0.9  # never faster than the rate (close sends at once)


def test_interleaved_streams_keep_their_order():
    assert joined([("stdout", "a"), ("stdout", "b"), ("stderr", "c"), ("stdout", "d")]) == [
        ("stdout", {"text": "ab"}), ("stderr", {"text": "c"}), ("stdout", {"text": "d"})]
    emitted, emit = collecting()
    coalescer = OutputCoalescer(emit, rate=5)
    for i in range(300):
        coalescer.add("stdout" if i % 3 else "stderr", str(i % 10))
    coalescer.flush([("tool_call", {"id": 1})])  # another event: after what came before it
    coalescer.close()
    events = [e for _, batch in emitted for e in batch]
    assert events[-1] == ("tool_call", {"id": 1})
    assert "".join(d["text"] for _, d in events[:-1]) == "".join(str(i % 10) for i in range(300))
    # Within one batch, adjacent chunks of a stream are joined (a chunk that arrives after a
    # batch was sent starts the next one, whatever its stream: that depends on timing)
    for _, batch in emitted:
        texts = [e for e in batch if e[0] != "tool_call"]
        assert all(a[0] != b[0] for a, b in zip(texts, texts[1:], strict=False)), (
            "adjacent joined")


def test_the_first_chunk_goes_at_once_and_a_later_one_waits_one_interval_at_most():
    emitted, emit = collecting()
    coalescer = OutputCoalescer(emit, rate=20)
    started = time.monotonic()
    coalescer.add("token", "first")
    deadline = time.monotonic() + 1
    while not emitted and time.monotonic() < deadline:
        time.sleep(0.001)
    coalescer.add("token", "second")
    time.sleep(0.2)
    coalescer.close()
    assert emitted[0][1] == [("token", {"text": "first"})] and emitted[0][0] - started < 0.02
    assert emitted[1][1] == [("token", {"text": "second"})]
    assert 0.045 <= emitted[1][0] - emitted[0][0] < 0.1


def test_the_reader_never_waits_for_a_slow_emit():
    coalescer = OutputCoalescer(lambda events: time.sleep(0.05), rate=1000)
    started = time.monotonic()
    for i in range(200):
        coalescer.add("stdout", f"{i} ")
    assert time.monotonic() - started < 0.04
    coalescer.close()


def test_a_failed_emit_reaches_the_reader():
    def emit(events):
        raise ConnectionError("redis is away")
    coalescer = OutputCoalescer(emit)
    coalescer.add("stdout", "a")
    with pytest.raises(ConnectionError):
        for _ in range(1000):
            time.sleep(0.001)
            coalescer.add("stdout", "b")
    with pytest.raises(ConnectionError):
        coalescer.close()
