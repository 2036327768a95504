import pytest

from aios.kinds import KINDS
from aios.tasks.errors import BadTaskInput
from aios.tasks.kind import validate_input as validate_with


def validate_input(kind, task_input):
    return validate_with(KINDS, kind, task_input)


def test_valid_inputs_are_normalised():
    assert validate_input("agent", {"goal": "g", "tools": ["browse"]}) == {
        "goal": "g", "tools": ["browse"]}
    assert validate_input("echo", {"text": "hi"}) == {"text": "hi"}
    code = validate_input("code", {"language": "bash", "code": "ls"})
    assert code == {"language": "bash", "code": "ls", "stdin": "", "files": {},
                    "network": "none"}
    binary = validate_input("code", {"language": "python", "code": "1", "network": "egress",
                                     "files": {"a.txt": "text", "b.bin": {"data_base64": "AA=="}}})
    assert binary["files"] == {"a.txt": "text", "b.bin": {"data_base64": "AA=="}}
    assert binary["network"] == "egress"


def test_optional_agent_fields_may_be_null():
    # tools: null reached the tools check as None (a 500 found by schemathesis)
    agent = validate_input("agent", {"goal": "x", "tools": None, "tool_policy": None})
    assert "tools" not in agent and "tool_policy" not in agent


@pytest.mark.parametrize("kind, task_input, says", [
    ("nope", {}, "unknown task kind 'nope'"),
    ({}, {}, "unknown task kind {}"),  # not hashable: found by schemathesis, was a 500
    (["echo"], {"text": "x"}, "unknown task kind"),
    ("agent", {}, "either `goal`"),
    ("code", {"language": "python", "code": "1", "network": "host"}, "network"),
    ("agent", {"goal": "x", "messages": [{"role": "user", "content": "y"}]}, "not both"),
    ("agent", {"goal": "x", "tools": ["run_code", "rm_rf"]}, "unknown tools \\['rm_rf'\\]"),
    ("agent", {"goal": "x", "session_id": "../../etc"}, "session_id"),
    ("agent", {"goal": "x", "max_steps": 0}, "max_steps"),
    ("chat", {"messages": []}, "messages"),
    ("chat", {"messages": [{"role": "robot", "content": "x"}]}, "role"),
    ("echo", "text", "must be a JSON object"),
    ("echo", {}, "text: Field required"),
    ("echo", {"text": "x", "more": 1}, "more: Extra inputs are not permitted"),
    ("code", {"language": "ruby", "code": "1"}, "language"),
    ("code", {"language": "python", "code": "1", "timeout_s": 0}, "timeout_s"),
])
def test_bad_inputs_say_what_is_wrong(kind, task_input, says):
    with pytest.raises(BadTaskInput, match=says):
        validate_input(kind, task_input)
