import threading
import time

import pytest

from aios.chat import TokenCoalescer


def test_a_fast_stream_is_batched_without_loss_or_reordering():
    emitted, lock = [], threading.Lock()

    def emit(text):
        with lock:
            emitted.append((time.monotonic(), text))
    coalescer = TokenCoalescer(emit, rate=30)
    started = time.monotonic()
    tokens = [f"t{i} " for i in range(3000)]
    for t in tokens:
        coalescer.add(t)
        time.sleep(0.0002)
    coalescer.close()
    elapsed = time.monotonic() - started
    assert "".join(text for _, text in emitted) == "".join(tokens)
    assert len(emitted) > 1
    assert len(emitted) <= 30 * elapsed + 2
    gaps = [b[0] - a[0] for a, b in zip(emitted, emitted[1:])]
    assert min(gaps[:-1]) >= 1 / 30 * 0.9  # never faster than the rate (close sends at once)


def test_the_first_token_goes_at_once_and_a_later_one_waits_one_interval_at_most():
    emitted = []
    coalescer = TokenCoalescer(lambda text: emitted.append((time.monotonic(), text)), rate=20)
    started = time.monotonic()
    coalescer.add("first")
    deadline = time.monotonic() + 1
    while not emitted and time.monotonic() < deadline:
        time.sleep(0.001)
    coalescer.add("second")
    time.sleep(0.2)
    coalescer.close()
    assert emitted[0][1] == "first" and emitted[0][0] - started < 0.02
    assert emitted[1][1] == "second"
    assert 0.045 <= emitted[1][0] - emitted[0][0] < 0.1


def test_the_reader_never_waits_for_a_slow_emit():
    coalescer = TokenCoalescer(lambda text: time.sleep(0.05), rate=1000)
    started = time.monotonic()
    for i in range(200):
        coalescer.add(f"{i} ")
    assert time.monotonic() - started < 0.04
    coalescer.close()


def test_a_failed_emit_reaches_the_reader():
    def emit(text):
        raise ConnectionError("redis is away")
    coalescer = TokenCoalescer(emit)
    coalescer.add("a")
    with pytest.raises(ConnectionError):
        for _ in range(1000):
            time.sleep(0.001)
            coalescer.add("b")
    with pytest.raises(ConnectionError):
        coalescer.close()
