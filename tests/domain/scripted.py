"""A scripted model: a plain object with the provider interface (aios/providers/base.py),
the test double at the provider boundary. No SDK, no HTTP: each call of `stream` plays the
next turn of its script."""

import copy
import threading
from typing import Optional

from aios.providers.base import (ChatRequest, Finish, NoProviderConfigured,
                                 ProviderUnavailable, TextDelta, ToolCall, Usage)

WAIT_LIMIT_S = 5.0  # a turn that waits for an abort never hangs a test longer than this


class Block:
    """A turn item: the stream waits here until it is aborted (the abort it handed to
    on_open was called), then fails the way a closed connection does."""


def answer(text: str, usage=(3, 5)) -> list:
    """The turn of a plain answer: its text in two deltas, usage, finish."""
    half = len(text) // 2
    return [TextDelta(text[:half]), TextDelta(text[half:]), Usage(*usage), Finish("stop")]


def tool_turn(*calls: tuple, text: str = "", usage=(3, 5)) -> list:
    """A turn asking for tools: calls are (id, name, arguments)."""
    return ([TextDelta(text)] if text else []) + [ToolCall(*call) for call in calls] + \
        [Usage(*usage), Finish("tool_calls")]


class ScriptedProvider:
    """script: one entry per `stream` call, a list of stream events and exceptions (raised
    where they stand), or a Block. Every request is kept (a deep copy: the agent loop goes on
    changing its conversation list)."""

    def __init__(self, name: str, script: list, default_model: str = "model-default",
                 models: Optional[list[str]] = None):
        self.name = name
        self.default_model = default_model
        self.models = models or [default_model]
        self.script = list(script)
        self.requests: list[ChatRequest] = []
        self.aborted = threading.Event()
        self.closed = False

    @property
    def calls(self) -> int:
        return len(self.requests)

    def stream(self, request: ChatRequest, on_open=None):
        self.requests.append(copy.deepcopy(request))
        if not self.script:
            raise AssertionError(f"{self.name}: no turn left in the script for call "
                                 f"{self.calls}")
        turn = self.script.pop(0)
        aborted = threading.Event()

        def abort() -> None:
            aborted.set()
            self.aborted.set()
        if on_open:
            on_open(abort)
        for item in turn:
            if isinstance(item, BaseException):
                raise item
            if item is Block or isinstance(item, Block):
                if not aborted.wait(WAIT_LIMIT_S):
                    raise AssertionError(f"{self.name}: the stream was never aborted")
                raise ProviderUnavailable(f"{self.name}: stream closed", self.name)
            yield item

    def close(self) -> None:
        self.closed = True


class ScriptedProviders:
    """What the engine asks of a ProviderSet (aios/providers/registry.py), over scripted
    providers: get(name), get(None) the first configured; an unknown name is
    NoProviderConfigured. (ProviderSet itself builds SDK adapters from Settings.)"""

    def __init__(self, *providers: ScriptedProvider):
        self.by_name = {p.name: p for p in providers}

    def get(self, name: Optional[str]) -> ScriptedProvider:
        if name is None:
            if not self.by_name:
                raise NoProviderConfigured("no LLM provider is configured")
            return next(iter(self.by_name.values()))
        if name not in self.by_name:
            raise NoProviderConfigured(f"unknown provider {name!r}")
        return self.by_name[name]
