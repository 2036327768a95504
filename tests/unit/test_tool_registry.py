"""The one table of tools (aios.tools.registry): every factory it names exists, and the
browser's tools are exactly its actions."""

import importlib

from aios.tools import browser_tools
from aios.tools.registry import TOOLS


def test_every_factory_the_registry_names_can_be_called():
    for name, factory in TOOLS.factories.items():
        module, _, function = factory.partition(":")
        assert callable(getattr(importlib.import_module(module), function)), name


def test_the_registry_has_one_tool_per_browser_action_and_each_makes_its_own():
    in_registry = [name for name, factory in TOOLS.factories.items()
                   if factory.startswith("aios.tools.browser_tools:")]
    assert in_registry == [action.name for action in browser_tools.ACTIONS]
    made = browser_tools.make_browser_click
    assert made.func is browser_tools.make_browser_tool and made.args == ("browser_click",)


def test_an_unknown_factory_is_an_attribute_error():
    assert not hasattr(browser_tools, "make_browser_fly")
    assert not hasattr(browser_tools, "browser_click")
