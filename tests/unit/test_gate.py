from aios.web.gate import SubscriptionGate


def ev(seq: int) -> dict:
    return {"task_id": "t", "seq": seq, "type": "stdout", "data": {"text": str(seq)}}


def seqs(events) -> list[int]:
    return [e["seq"] for e in events]


def gate_with_log(n: int) -> SubscriptionGate:
    return SubscriptionGate(fetch=lambda task_id, after: [ev(s) for s in range(after + 1, n + 1)])


def test_live_events_wait_while_the_replay_runs_and_nothing_doubles():
    gate = gate_with_log(5)
    gate.begin("s", "t", after=2)
    assert gate.live("s", "t", [ev(4)]) == []            # arrives during the replay: held
    assert seqs(gate.replayed("s", "t", [ev(3), ev(4)])) == [3, 4]
    assert gate.live("s", "t", [ev(5)]) == []
    assert seqs(gate.finish("s", "t")) == [5]          # 4 was replayed already
    assert seqs(gate.live("s", "t", [ev(5)])) == []      # a late duplicate
    assert seqs(gate.live("s", "t", [ev(6)])) == [6]


def test_a_gap_is_filled_from_the_log_in_order():
    gate = gate_with_log(9)
    gate.begin("s", "t", after=0)
    gate.finish("s", "t")
    assert seqs(gate.live("s", "t", [ev(1)])) == [1]
    assert seqs(gate.live("s", "t", [ev(4)])) == [2, 3, 4]  # 2 and 3 were lost in transit


def test_sockets_are_independent_and_forgotten_on_disconnect():
    gate = gate_with_log(3)
    for sid in ("a", "b"):
        gate.begin(sid, "t", after=0)
        gate.finish(sid, "t")
    assert seqs(gate.live("a", "t", [ev(1)])) == [1]
    assert seqs(gate.live("b", "t", [ev(1)])) == [1]
    gate.forget("a")
    assert gate.live("a", "t", [ev(2)]) == []
    assert seqs(gate.live("b", "t", [ev(2)])) == [2]


def test_a_closed_stream_takes_nothing_more_until_it_begins_again():
    gate = gate_with_log(3)
    gate.begin("s", "t", after=0)
    assert seqs(gate.replayed("s", "t", [ev(1), ev(2), ev(3)])) == [1, 2, 3]
    gate.close("s", "t")
    assert gate.finish("s", "t") == [] and gate.live("s", "t", [ev(4)]) == []
    gate.begin("s", "t", after=1)
    assert seqs(gate.replayed("s", "t", [ev(2), ev(3)])) == [2, 3]


def test_events_that_travel_together_are_delivered_one_by_one_in_order_without_doubles():
    gate = gate_with_log(6)
    gate.begin("s", "t", after=0)
    assert gate.live("s", "t", [ev(3), ev(4)]) == []      # held during the replay
    assert seqs(gate.replayed("s", "t", [ev(1), ev(2), ev(3)])) == [1, 2, 3]
    assert seqs(gate.finish("s", "t")) == [4]
    assert seqs(gate.live("s", "t", [ev(6), ev(5)])) == [5, 6]
    assert seqs(gate.live("s", "t", [ev(5), ev(6)])) == []
