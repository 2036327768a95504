"""make run's supervisor: the commands it starts, from what run.sh leaves in the environment."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

import supervise  # noqa: E402 - scripts/ is not a package


def test_the_design_ports_when_none_is_given():
    commands = supervise.commands({}, "6379", "/tmp/redis")
    assert commands["web"][1][-2:] == ["127.0.0.1:8765", "app:app"]
    assert commands["sandbox-manager"][1][-1] == "8000"
    assert commands["flower"][1][-1] == "--port=5555"
    assert commands["redis"][1][1:4] == ["-", "--port", "6379"]


def test_ports_from_the_environment():
    commands = supervise.commands({"AIOS_WEB_PORT": "18765", "AIOS_FLOWER_PORT": "15555"},
                                  "16379", "/tmp/redis")
    assert "127.0.0.1:18765" in commands["web"][1]
    assert commands["flower"][1][-1] == "--port=15555"
