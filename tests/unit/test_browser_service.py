"""The browser service's rules, on a fake launcher: no Docker, no image."""

import asyncio
import time

import pytest

from aios_sandbox.browsers import ACTIONS, BrowsersDisabled, BrowserService, describe
from aios_sandbox.channel import ChannelClosed
from aios_sandbox.errors import AtCapacity, Conflict, Invalid, NotFound, Unavailable
from aios_sandbox.sandbox import Sandbox, SandboxUnavailable
from aios_sandbox.settings import Settings


class FakeChannel:
    """Answers each request with the next scripted frame; None: never answers."""

    def __init__(self, replies=()):
        self.replies = list(replies)
        self.sent = []
        self.closed = False

    async def send(self, request):
        self.sent.append(request)

    async def receive(self):
        reply = self.replies.pop(0) if self.replies else None
        if reply is None:
            await asyncio.sleep(3600)
        if isinstance(reply, Exception):
            raise reply
        return reply

    def close(self):
        self.closed = True


class FakeLauncher:
    def __init__(self, fail=None):
        self.fail = fail
        self.launched, self.destroyed = [], []
        self.launching = set()

    async def launch(self, limits, kind, owner, ttl_s, network="none"):
        if self.fail:
            raise self.fail
        now = time.time()
        sandbox = Sandbox(f"b{len(self.launched)}", "c", kind, owner, limits, now, now + ttl_s,
                          FakeChannel(), details={"browser": {"version": "156.0",
                                                              "chromium_sandbox": True}})
        self.launched.append((kind, network, limits))
        return sandbox

    async def destroy(self, sandbox):
        self.destroyed.append(sandbox.id)


def service(fail=None, **overrides) -> BrowserService:
    settings = Settings(_env_file=None, manager_token="t" * 20, **overrides)
    return BrowserService(FakeLauncher(fail), settings)


def run(coroutine):
    return asyncio.run(coroutine)


def test_a_browser_is_launched_with_the_egress_route_and_the_browser_limits():
    async def scenario():
        browsers = service(browser_memory_mb=2048)
        browser = await browsers.create("task-1")
        assert browsers.launcher.launched == [("browser", "egress",
                                               browsers.settings.browser_limits)]
        assert browsers.settings.browser_limits.memory_mb == 2048
        assert browser.idle_ttl_s == 600, "the default idle TTL"
        described = describe(browser)
        assert described["kind"] == "browser" and described["owner"] == "task-1"
        assert described["browser"] == {"version": "156.0", "chromium_sandbox": True}
        assert "limits" not in described and "network" not in described
    run(scenario())


def test_an_action_is_sent_with_its_timeout_and_its_result_comes_back():
    async def scenario():
        browsers = service()
        browser = await browsers.create("o")
        browser.channel.replies = [{"t": "result", "result": {"url": "http://x/", "title": "X"}}]
        outcome = await browsers.action(browser.id, "navigate", {"url": "http://x/"})
        assert outcome == {"ok": True, "result": {"url": "http://x/", "title": "X"}}
        assert browser.channel.sent == [{"op": "action", "action": "navigate",
                                         "args": {"url": "http://x/"}, "timeout_s": 30.0}]
    run(scenario())


def test_an_error_of_the_page_is_an_answer_not_a_failure():
    async def scenario():
        browsers = service()
        browser = await browsers.create("o")
        browser.channel.replies = [{"t": "error", "code": "stale_ref",
                                    "message": "ref e4 is from an older snapshot."}]
        outcome = await browsers.action(browser.id, "click", {"ref": "e4"})
        assert outcome == {"ok": False, "error": {"code": "stale_ref",
                                                  "message": "ref e4 is from an older snapshot."}}
        assert browser.id in browsers.browsers, "the browser stays"
    run(scenario())


def test_unknown_actions_and_long_timeouts_are_refused_before_the_container_sees_them():
    async def scenario():
        browsers = service()
        browser = await browsers.create("o")
        with pytest.raises(Invalid, match="unknown action 'eval'"):
            await browsers.action(browser.id, "eval", {})
        with pytest.raises(Invalid, match="at most 300"):
            await browsers.action(browser.id, "snapshot", {}, timeout_s=301)
        assert browser.channel.sent == []
    run(scenario())
    assert "navigate" in ACTIONS and "download" in ACTIONS


def test_a_download_is_capped_by_the_manager():
    async def scenario():
        browsers = service(browser_max_download_bytes=1000)
        browser = await browsers.create("o")
        with pytest.raises(Invalid, match="max_bytes must be at most 1000"):
            await browsers.action(browser.id, "download", {"ref": "e1", "max_bytes": 1001})
        browser.channel.replies = [{"t": "error", "code": "too_large", "message": "big."}]
        await browsers.action(browser.id, "download", {"ref": "e1"})
        assert browser.channel.sent[0]["args"] == {"ref": "e1", "max_bytes": 1000}
    run(scenario())


def test_one_action_at_a_time():
    async def scenario():
        browsers = service()
        browser = await browsers.create("o")
        browser.channel.replies = [None]  # the first action never ends
        first = asyncio.create_task(browsers.action(browser.id, "snapshot", {}, timeout_s=60))
        await asyncio.sleep(0.01)
        with pytest.raises(Conflict, match="busy"):
            await browsers.action(browser.id, "snapshot", {})
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        assert browsers.launcher.destroyed == [browser.id], \
            "cancelled mid-action: its late reply would answer the next action"
    run(scenario())


def test_a_browser_that_stops_answering_is_destroyed():
    async def scenario():
        browsers = service()
        browser = await browsers.create("o")
        browser.channel.replies = [ChannelClosed("gone")]
        with pytest.raises(Unavailable, match="stopped answering and was destroyed"):
            await browsers.action(browser.id, "snapshot", {})
        assert browsers.launcher.destroyed == [browser.id]
        with pytest.raises(NotFound):
            browsers.get(browser.id)
    run(scenario())


def test_the_cap_answers_at_capacity_with_a_retry_after():
    async def scenario():
        browsers = service(max_browsers=1)
        await browsers.create("o")
        with pytest.raises(AtCapacity) as refused:
            await browsers.create("o")
        assert refused.value.retry_after_s == 5 and "cap is 1" in refused.value.message
    run(scenario())


def test_browsers_can_be_turned_off_and_ttls_are_bounded():
    async def scenario():
        with pytest.raises(BrowsersDisabled, match="SANDBOX_ALLOW_BROWSERS"):
            await service(allow_browsers=False).create("o")
        with pytest.raises(Invalid, match="at most 86400"):
            await service().create("o", ttl_s=86401)
    run(scenario())


def test_a_browser_that_cannot_start_is_unavailable_naming_why():
    async def scenario():
        missing = SandboxUnavailable("browser image 'aios-browser' is missing: run `make images`")
        browsers = service(fail=missing)
        with pytest.raises(Unavailable, match="make images"):
            await browsers.create("o")
        assert browsers.creating == 0, "the place under the cap is given back"
    run(scenario())


def test_idle_and_expired_browsers_are_reaped_and_close_destroys_the_rest():
    async def scenario():
        browsers = service()
        idle = await browsers.create("o", idle_ttl_s=1)
        kept = await browsers.create("o", idle_ttl_s=100)
        await browsers.reap(time.time() + 2)
        assert browsers.launcher.destroyed == [idle.id]
        assert browsers.known()[0] == {kept.container_id}
        await browsers.close()
        assert browsers.launcher.destroyed == [idle.id, kept.id] and browsers.browsers == {}
    run(scenario())
