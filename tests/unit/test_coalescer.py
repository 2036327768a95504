import threading
import time

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
    assert len(emitted) <= 30 * elapsed + 2


def test_the_first_token_goes_at_once_and_a_lone_token_waits_one_interval_at_most():
    emitted = []
    coalescer = TokenCoalescer(lambda text: emitted.append((time.monotonic(), text)), rate=20)
    started = time.monotonic()
    coalescer.add("first")
    coalescer.add("second")
    time.sleep(0.2)
    coalescer.close()
    assert emitted[0][1] == "first" and emitted[0][0] - started < 0.01
    assert emitted[1][1] == "second" and emitted[1][0] - started < 0.12
