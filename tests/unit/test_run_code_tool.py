"""run_code's arguments and what it offers the model, without a server."""

from types import SimpleNamespace

import pytest

from aios.tools.base import ToolError
from aios.tools.run_code import RunCode


def run_code(network: bool) -> RunCode:
    settings = SimpleNamespace(agent_max_seconds=600, agent_session_ttl_s=86400,
                               agent_sandbox_idle_s=1800, tool_result_max_chars=100)
    resources = SimpleNamespace(settings=settings, sandbox=None, artifacts=None,
                                agent_sessions=None)
    return RunCode(resources, network)


def test_network_is_offered_only_when_the_manager_allows_egress():
    assert "network" not in run_code(False).parameters["properties"]
    assert "network" in run_code(True).parameters["properties"]
    assert "reset" in run_code(False).parameters["properties"]


def test_the_body_asks_for_the_network_only_when_the_call_does():
    with_egress = run_code(True)
    assert with_egress._body({"language": "bash", "code": "ls"})["network"] is False
    assert with_egress._body({"language": "bash", "code": "ls", "network": True})["network"]
    assert "network" not in run_code(False)._body({"language": "bash", "code": "ls"})
    with pytest.raises(ToolError, match="network access is not enabled"):
        run_code(False)._body({"language": "bash", "code": "ls", "network": True})


@pytest.mark.parametrize("arguments, says", [
    ({"language": "cobol", "code": "x"}, "language 'python' or 'bash'"),
    ({"language": "python", "code": ""}, "non-empty code"),
    ({"language": "python", "code": "1", "timeout_s": 301}, "between 0 and 300"),
])
def test_bad_arguments_are_tool_errors(arguments, says):
    with pytest.raises(ToolError, match=says):
        run_code(False)._body(arguments)


def test_long_output_is_cut_with_a_note():
    assert run_code(False)._cut("x" * 150) == "x" * 100 + "\n[... cut at 100 characters]"
