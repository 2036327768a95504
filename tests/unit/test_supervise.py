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


def test_as_root_celerys_uid_advice_is_replaced_by_run_shs_note():
    """Celery's SecurityWarning asks for --uid, which make run's user cannot give: as root the
    worker's interpreter ignores that one warning (run.sh's banner says why it is root)."""
    worker = supervise.commands({}, "6379", "/tmp/redis", as_root=True)["worker"][1]
    assert worker[1:3] == ["-W", supervise.ROOT_WORKER_WARNING]
    assert worker[0].endswith("/python") and worker[3].endswith("/celery")
    assert " ".join(worker).endswith("app.celery worker --loglevel INFO")
    user = supervise.commands({}, "6379", "/tmp/redis", as_root=False)["worker"][1]
    assert user[0].endswith("/celery") and "-W" not in user
