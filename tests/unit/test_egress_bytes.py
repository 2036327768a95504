"""The egress byte counts: read off the proxy's outside interface in Docker's stats, and
counted by kind and direction. The real read (dockerd, a proxy) is in
tests/integration/test_egress.py."""

from prometheus_client import generate_latest

from aios_sandbox.egress import outside_bytes
from aios_sandbox.metrics import ManagerMetrics

# The shape dockerd 20.10 answers for a proxy: eth0 on the bridge, eth1 the sandbox's side.
STATS = {"networks": {
    "eth0": {"rx_bytes": 302899, "rx_packets": 29, "tx_bytes": 1304, "tx_packets": 18},
    "eth1": {"rx_bytes": 1042, "rx_packets": 11, "tx_bytes": 301000, "tx_packets": 20}}}


def test_only_the_outside_interface_counts_tx_as_sent_and_rx_as_received():
    assert outside_bytes(STATS) == (1304, 302899)


def test_stats_without_the_interface_or_with_bad_counters_count_nothing():
    assert outside_bytes({}) is None  # a stopped container: no "networks"
    assert outside_bytes({"networks": None}) is None
    assert outside_bytes({"networks": {"eth1": STATS["networks"]["eth1"]}}) is None
    assert outside_bytes({"networks": {"eth0": {"rx_bytes": 5}}}) is None
    assert outside_bytes({"networks": {"eth0": {"rx_bytes": -1, "tx_bytes": 3}}}) is None
    assert outside_bytes({"networks": {"eth0": "?"}}) is None


def test_the_counter_is_exported_by_direction_and_kind():
    metrics = ManagerMetrics("m1")
    metrics.egress_ended("sandbox", 10, 300)
    metrics.egress_ended("sandbox", 5, 700)
    metrics.egress_ended("browser", 1, 2)
    text = generate_latest(metrics.registry).decode()
    assert 'aios_sandbox_egress_bytes_total{direction="sent",kind="sandbox"} 15.0' in text
    assert 'aios_sandbox_egress_bytes_total{direction="received",kind="sandbox"} 1000.0' in text
    assert 'aios_sandbox_egress_bytes_total{direction="received",kind="browser"} 2.0' in text
