"""Levels per tool: `auto` (run), `ask` (the user decides), `deny` (never). Keys are tool
names or `tool.variant` (browser_click.submit, run_code.network); rules may be globs
(`mcp__*`). The operator's rules sit over DEFAULTS; a task's rules only make it stricter."""

import fnmatch
import re
from dataclasses import dataclass, field

LEVELS = ("auto", "ask", "deny")  # from the loosest to the strictest
# Ask before what sends the user's data or actions out; reads run
DEFAULTS = {"browser_type": "ask", "browser_click.submit": "ask", "browser_press.submit": "ask",
            "browser_navigate.tainted": "ask", "browse.tainted": "ask",
            "run_code.network": "ask"}
PATTERN = re.compile(r"^[A-Za-z0-9_*?.\[\]-]{1,128}$")


def strictest(*levels: str) -> str:
    return max(levels, key=LEVELS.index)


def check_rules(rules: dict) -> dict:
    """The rules as {pattern: level}; ValueError naming the first bad entry."""
    if not isinstance(rules, dict):
        raise ValueError("a tool policy is an object {tool or glob: auto|ask|deny}")
    for pattern, level in rules.items():
        if not isinstance(pattern, str) or not PATTERN.match(pattern):
            raise ValueError(f"{pattern!r} is no tool name, tool.variant or glob")
        if level not in LEVELS:
            raise ValueError(f"{pattern}={level!r}: the level must be auto, ask or deny")
    return dict(rules)


def parse_rules(text: str) -> dict:
    """`browser_type=ask,mcp__*=ask,browse=deny` -> {pattern: level}; ValueError if bad."""
    rules = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        pattern, equals, level = (s.strip() for s in item.partition("="))
        if not equals:
            raise ValueError(f"{item!r}: write tool=level (auto, ask or deny)")
        rules[pattern] = level
    return check_rules(rules)


def _match(rules: dict, key: str):
    """The level of the most specific rule for `key` (an exact name, else the longest
    matching glob; on a tie the strictest), or None."""
    if key in rules:
        return rules[key]
    found = [(len(p), LEVELS.index(level), level) for p, level in rules.items()
             if fnmatch.fnmatchcase(key, p)]
    return max(found)[2] if found else None


@dataclass(frozen=True)
class Policy:
    """The operator's rules over DEFAULTS, narrowed by a task's (which never loosen)."""

    operator: dict = field(default_factory=dict)
    task: dict = field(default_factory=dict)

    def own_level(self, key: str) -> str:
        """The level of exactly this key (a tool or a variant), before the base tool's."""
        level = _match(self.operator, key) or _match(DEFAULTS, key) or "auto"
        return strictest(level, _match(self.task, key) or "auto")

    def level(self, key: str) -> str:
        """A variant (`tool.variant`) is the strictest of its tool's level and its own."""
        tool = key.split(".", 1)[0]
        return strictest(self.own_level(tool), self.own_level(key))

    def narrowed(self, task_rules: dict) -> "Policy":
        return Policy(self.operator, {**self.task, **task_rules})

    def widening(self, task_rules: dict) -> list[str]:
        """The task's rules that are looser than this policy for the key they name."""
        return [f"{pattern}={level} (the operator's is {self.level(pattern)})"
                for pattern, level in task_rules.items()
                if LEVELS.index(level) < LEVELS.index(self.level(pattern))]
