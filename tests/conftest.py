"""How `make test` shares the suite among pytest-xdist's processes (`-n N --dist loadfile`).

A file's tests run on one process, in file order, so its module fixtures start once; each
process starts its own session fixtures (managers, redis-servers, stacks), on free ports and
under names of their own, so no leak check sees another process's containers. Changes to
plain loadfile: files that share an expensive session fixture go to one process (it starts
once); a file whose module-scoped parameter doubles it is split by that parameter (both
halves run at once); test_chaos's tests, which share no module fixture, go one by one. The
longest units are handed out first, so none starts last.
(xdist's own `--dist loadgroup` does not work with pytest 9: it never sees the groups.)"""

import pytest

from .socket_leaks import SocketLeaks

# file -> the unit it joins
SHARED = {"test_approvals.py": "agent_stack", "test_browser_agent.py": "agent_stack"}
# file -> the values of its module-scoped parameter, each a unit of its own
SPLIT = {"test_pipeline.py": ("eventlet", "gevent")}
# files whose tests share no module fixture: each test a unit of its own (their stacks are
# their own or the process's session one)
EACH = {"test_chaos.py"}
# The longest units first, measured 2026-11-30; the rest in collection order, the short
# unit and domain tests last.
LONGEST_FIRST = ("test_pipeline", "test_chaos", "test_run_script", "agent_stack",
                 "test_web_schemathesis", "test_schemathesis", "test_agent", "test_analysis",
                 "test_adversarial", "test_browser_manager", "test_api", "test_interpreter")


def unit_of(nodeid: str) -> str:
    """The unit of work a test belongs to, from its node id."""
    path, _, rest = nodeid.partition("::")
    name = path.rsplit("/", 1)[-1]
    if name in EACH:
        return nodeid
    for value in SPLIT.get(name, ()):
        if f"[{value}-" in rest or f"[{value}]" in rest:
            return f"{name.removesuffix('.py')}[{value}]"
    return SHARED.get(name, name.removesuffix(".py"))


def rank(nodeid: str) -> int:
    name = nodeid.partition("::")[0].rsplit("/", 1)[-1]
    unit = name.removesuffix(".py") if name in EACH else unit_of(nodeid).split("[")[0]
    if unit in LONGEST_FIRST:
        return LONGEST_FIRST.index(unit)
    return len(LONGEST_FIRST) + (0 if "/integration/" in nodeid else 1)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    if config.getoption("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class Units(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return unit_of(nodeid)

    config.option.loadscopereorder = False  # keep the order the processes collected
    return Units(config, log)


def pytest_configure(config):
    leaks = SocketLeaks()
    leaks.install()
    config.pluginmanager.register(leaks, "socket-leaks")


def pytest_collection_modifyitems(config, items):
    if hasattr(config, "workerinput"):  # an xdist process: its order is the hand-out order
        items.sort(key=lambda item: rank(item.nodeid))  # stable: files keep their own order
