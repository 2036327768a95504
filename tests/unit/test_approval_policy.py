"""Tool policy levels: the operator's rules over the defaults, globs, variants, and a
task's rules that only ever make it stricter."""

import threading

import pytest

from aios.approvals.policy import DEFAULTS, Policy, check_rules, parse_rules
from aios.approvals.taint import check_navigation, mark_user_data, site
from aios.settings import load_settings
from aios.tools.base import ToolContext, ToolError


def test_the_defaults_ask_before_what_sends_data_out_and_let_reads_run():
    policy = Policy()
    for key in ("browser_type", "browser_click.submit", "browser_press.submit",
                "browser_navigate.tainted", "browse.tainted", "run_code.network"):
        assert policy.level(key) == "ask", key
    for key in ("read_file", "list_files", "browse", "browser_snapshot", "browser_click",
                "run_code", "mcp__files__read"):
        assert policy.level(key) == "auto", key


def test_operator_rules_override_the_defaults_exact_names_beat_globs():
    policy = Policy({"browser_*": "deny", "browser_snapshot": "auto", "run_code.network": "auto",
                     "mcp__*": "ask", "mcp__safe__*": "auto"})
    assert policy.level("browser_click") == "deny"
    assert policy.level("browser_snapshot") == "auto"
    assert policy.level("run_code.network") == "auto"  # the operator's word over the default
    assert policy.level("mcp__files__write") == "ask"
    assert policy.level("mcp__safe__read") == "auto"  # the longer glob is the more specific


def test_a_variant_is_the_strictest_of_its_tool_and_itself():
    assert Policy({"run_code": "deny"}).level("run_code.network") == "deny"
    assert Policy({"browse": "ask"}).level("browse.tainted") == "ask"
    assert Policy({"browse.tainted": "auto"}).level("browse.tainted") == "auto"
    assert Policy({"browse.tainted": "auto", "browse": "ask"}).level("browse.tainted") == "ask"
    assert Policy().level("browser_click.submit") == "ask"
    assert Policy().level("browser_click") == "auto"


def test_a_task_narrows_and_never_widens():
    operator = Policy({"browse": "deny"})
    task = operator.narrowed({"browse": "auto", "read_file": "ask", "run_code.network": "auto",
                              "mcp__*": "deny"})
    assert task.level("browse") == "deny"  # a looser task rule does not count
    assert task.level("read_file") == "ask"
    assert task.level("run_code.network") == "ask"
    assert task.level("mcp__x__y") == "deny"
    assert operator.widening({"browse": "ask", "read_file": "ask", "*": "ask",
                              "browse.tainted": "auto"}) == [
        "browse=ask (the operator's is deny)", "browse.tainted=auto (the operator's is deny)"]


def test_rules_are_parsed_and_bad_ones_refused():
    assert parse_rules(" browser_type=ask, mcp__*=ask ,browse=deny,") == {
        "browser_type": "ask", "mcp__*": "ask", "browse": "deny"}
    for bad, says in [("browse=maybe", "auto, ask or deny"), ("browse", "tool=level"),
                      ("bro wse=ask", "no tool name")]:
        with pytest.raises(ValueError, match=says):
            parse_rules(bad)
    with pytest.raises(ValueError):
        check_rules(["browse"])
    assert set(DEFAULTS.values()) == {"ask"}


def test_settings_read_the_policy_and_refuse_a_bad_one_naming_the_variable(monkeypatch):
    env = dict(AIOS_API_TOKEN="t" * 16, SECRET_KEY="s" * 16, SANDBOX_MANAGER_TOKEN="m" * 16)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AIOS_TOOL_POLICY", "browse=deny,mcp__*=ask")
    monkeypatch.setenv("AIOS_APPROVAL_TIMEOUT_S", "30")
    settings = load_settings(_env_file=None)
    assert settings.tool_policy == {"browse": "deny", "mcp__*": "ask"}
    assert settings.approval_timeout_s == 30
    monkeypatch.setenv("AIOS_TOOL_POLICY", "browse=sometimes")
    with pytest.raises(SystemExit, match="AIOS_TOOL_POLICY: .*auto, ask or deny"):
        load_settings(_env_file=None)
    monkeypatch.delenv("AIOS_TOOL_POLICY")
    monkeypatch.setenv("AIOS_APPROVAL_TIMEOUT_S", "0")
    with pytest.raises(SystemExit, match="AIOS_APPROVAL_TIMEOUT_S"):
        load_settings(_env_file=None)
    monkeypatch.delenv("AIOS_APPROVAL_TIMEOUT_S")
    assert load_settings(_env_file=None).approval_timeout_s == 120


def context(**options) -> ToolContext:
    return ToolContext("t-approvals", lambda *_: None, threading.Event(), lambda _: None,
                       **options)


def test_without_a_gate_ask_is_refused_deny_is_refused_auto_runs():
    ctx = context()
    ctx.approve("read_file", "reads")
    with pytest.raises(ToolError, match="needs the user's approval and there is no user"):
        ctx.approve("run_code.network", "net")
    with pytest.raises(ToolError, match="the policy denies browse"):
        context(policy=Policy({"browse": "deny"})).approve("browse", "why")
    context(policy=Policy({"*": "auto", "run_code.network": "auto"})).approve(
        "run_code.network", "net")


def test_navigation_asks_only_when_tainted_and_only_for_a_new_site():
    asked = []
    ctx = context()
    ctx.approve = lambda key, reason, arguments=None: asked.append((key, arguments))
    check_navigation(ctx, "browse", "https://www.example.org/a")
    assert asked == []  # not tainted: nothing to ask
    mark_user_data(ctx, "the file /home/u/secret.txt")
    # the page that asked for the data is new again once the data was read
    check_navigation(ctx, "browse", "https://example.org/b?d=x")
    check_navigation(ctx, "browse", "https://www.example.org/c")  # allowed since: the same site
    check_navigation(ctx, "browser_navigate", "http://127.0.0.1:9/?d=x")
    check_navigation(ctx, "browser_navigate", "http://127.0.0.1:9/other")
    mark_user_data(ctx, "the file /home/u/other.txt")  # already tainted: nothing forgotten
    check_navigation(ctx, "browse", "http://127.0.0.1:9/again")
    assert asked == [("browse.tainted", {"url": "https://example.org/b?d=x"}),
                     ("browser_navigate.tainted", {"url": "http://127.0.0.1:9/?d=x"})]
    assert site("HTTPS://WWW.Example.org:8443/x") == "https://example.org:8443"


def test_a_refused_navigation_is_not_recorded_as_visited():
    ctx = context()  # no gate: browse.tainted (ask) is refused
    mark_user_data(ctx, "the file a.txt")
    for _ in range(2):
        with pytest.raises(ToolError):
            check_navigation(ctx, "browse", "http://127.0.0.1:9/?d=1")


def test_a_yes_for_the_call_does_not_lift_a_deny_of_one_of_its_variants():
    ctx = context(policy=Policy({"browser_type.submit": "deny"}))
    ctx.call_id = "call-1"
    ctx.state["approvals.approved_calls"] = {"call-1"}  # the user allowed browser_type
    ctx.approve("browser_type", "typing")
    with pytest.raises(ToolError, match="the policy denies browser_type.submit"):
        ctx.approve("browser_type.submit", "and submitting")
