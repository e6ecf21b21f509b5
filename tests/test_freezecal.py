"""deploybot_plugins.freezecal: the freeze calendar fetched from a real aiohttp server on
127.0.0.1 (in this process): freezes put in force, the last good copy kept (in memory and
on disk) when the feed fails, answers too slow cut by the timeout."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiohttp import web
from deploybot_plugins import freezecal
from deploybot_plugins.freezecal import FreezeCalendar

from deploybot.core import Core
from tests.planfactory import make_plan, utc
from tests.test_commands import Clock, make_core

FEED = (
    b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n"
    b"BEGIN:VEVENT\r\nUID:1\r\nSUMMARY:F42 Final Freeze\r\n"
    b"DTSTART;VALUE=DATE:20261208\r\nDTEND;VALUE=DATE:20261216\r\nEND:VEVENT\r\n"
    b"END:VCALENDAR\r\n"
)


class Feed:
    """What the server answers: ``status`` with ``body``, after ``delay`` seconds."""

    def __init__(self) -> None:
        self.status = 200
        self.body = FEED
        self.delay = 0.0

    async def handle(self, _request: web.Request) -> web.Response:
        await asyncio.sleep(self.delay)
        return web.Response(status=self.status, body=self.body, content_type="text/calendar")


@pytest.fixture
def core(tmp_path: Path) -> Iterator[Core]:
    core = make_core(tmp_path, Clock(utc(2026, 12, 1)), [make_plan()])
    yield core
    core.store.close()


@pytest.fixture
async def served() -> AsyncIterator[tuple[Feed, str]]:
    feed = Feed()
    app = web.Application()
    app.router.add_get("/freezes.ics", feed.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield feed, f"http://127.0.0.1:{port}/freezes.ics"
    await runner.cleanup()


async def test_freezes_come_from_the_feed_and_survive_its_failures(
    core: Core, served: tuple[Feed, str], tmp_path: Path
) -> None:
    """A good fetch puts the freezes in force (the plan misses the freeze rule) and saves
    a copy; a 500 or a body that is no calendar keeps the last good copy; a new process
    starts from the saved copy."""
    feed, url = served
    cache = tmp_path / "cache.ics"
    calendar = FreezeCalendar(core, url, cache)
    assert await calendar.refresh()
    assert [f.name for f in core.freezes.freezes] == ["F42 Final Freeze"]
    assert not core.readiness(core.plans[0]).ready
    assert cache.read_bytes() == FEED
    feed.status = 500
    assert not await calendar.refresh()
    assert calendar.last_error == "HTTP 500"
    feed.status, feed.body = 200, b"<html>not a calendar</html>"
    assert not await calendar.refresh()
    assert calendar.last_error is not None and "not an iCalendar feed" in calendar.last_error
    assert [f.name for f in core.freezes.freezes] == ["F42 Final Freeze"]
    assert cache.read_bytes() == FEED
    core.freezes.set_calendar([])
    assert FreezeCalendar(core, url, cache).load_cache() == 1
    assert [f.name for f in core.freezes.freezes] == ["F42 Final Freeze"]


async def test_a_feed_too_slow_is_cut_by_the_timeout(
    core: Core, served: tuple[Feed, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    feed, url = served
    feed.delay = 2.0
    monkeypatch.setattr(freezecal, "TOTAL_TIMEOUT", 0.3)
    calendar = FreezeCalendar(core, url)
    assert not await calendar.refresh()
    assert calendar.last_error is not None and "Timeout" in calendar.last_error
    assert core.freezes.freezes == ()
