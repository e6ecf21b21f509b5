"""The freeze calendar (``freeze_calendar = URL``): an iCalendar feed whose events named
like a freeze are freezes (issue 13).

:class:`FreezeCalendar` fetches the feed with aiohttp at start and every
``freeze_calendar_refresh``, with timeouts (:data:`CONNECT_TIMEOUT`, :data:`TOTAL_TIMEOUT`)
and a size limit (:data:`MAX_BYTES`), parses it with the icalendar library in a worker
thread (:func:`deploybot.plans.freezes.freezes_from_ical`) and hands the freezes to the
core's :class:`~deploybot.plans.freezes.FreezeBook`.  A fetch or parse that fails changes
nothing: the last good copy stays in force (in memory, and on disk beside the database,
``<database>.freeze-calendar.ics``, so that a restart while the feed is down still knows
the freezes); the failure is logged as a WARNING.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import aiohttp

from deploybot.core import Core
from deploybot.plans.freezes import Freeze, freezes_from_ical

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 10.0
TOTAL_TIMEOUT = 30.0
#: A feed larger than this is refused (Fedora's release calendar is some 100 KiB).
MAX_BYTES = 4 * 1024 * 1024


class FreezeCalendarError(Exception):
    """The feed could not be fetched or read; the message says why."""


class FreezeCalendar:
    """Keeps ``core.freezes``' calendar part up to date from ``url``."""

    def __init__(self, core: Core, url: str, cache: Path | None = None) -> None:
        self.core = core
        self.url = url
        self.cache = cache
        #: Why the last fetch failed (None: it worked, or none yet).
        self.last_error: str | None = None

    def load_cache(self) -> int:
        """Put the last good copy saved on disk in force; how many freezes it held."""
        if self.cache is None or not self.cache.is_file():
            return 0
        try:
            freezes = freezes_from_ical(self.cache.read_bytes(), self.core.config.timezone)
        except (OSError, ValueError) as error:
            log.warning("freeze calendar: the saved copy %s is unusable: %s", self.cache, error)
            return 0
        self.core.freezes.set_calendar(freezes)
        return len(freezes)

    async def fetch(self) -> tuple[Freeze, ...]:
        """Fetch and parse the feed once; raises :class:`FreezeCalendarError`."""
        timeout = aiohttp.ClientTimeout(total=TOTAL_TIMEOUT, sock_connect=CONNECT_TIMEOUT)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.get(self.url, headers={"Accept": "text/calendar"}) as response,
            ):
                if response.status != 200:
                    raise FreezeCalendarError(f"HTTP {response.status}")
                data = await response.content.read(MAX_BYTES + 1)
        except (aiohttp.ClientError, TimeoutError) as error:
            raise FreezeCalendarError(f"{type(error).__name__}: {error}") from None
        if len(data) > MAX_BYTES:
            raise FreezeCalendarError(f"larger than {MAX_BYTES // 1024 // 1024} MiB")
        tz = self.core.config.timezone
        try:
            freezes = await asyncio.to_thread(freezes_from_ical, data, tz)
        except ValueError as error:
            raise FreezeCalendarError(str(error)) from None
        if self.cache is not None:
            try:
                self.cache.write_bytes(data)
            except OSError as error:
                log.warning("freeze calendar: cannot save a copy to %s: %s", self.cache, error)
        return freezes

    async def refresh(self) -> bool:
        """One fetch; on success the freezes are in force.  False (logged) on failure."""
        try:
            freezes = await self.fetch()
        except FreezeCalendarError as error:
            self.last_error = str(error)
            log.warning(
                "freeze calendar %s: %s; the last good copy stays in force", self.url, error
            )
            return False
        self.last_error = None
        self.core.freezes.set_calendar(freezes)
        log.info("freeze calendar: %d freezes from %s", len(freezes), self.url)
        return True

    async def run(self) -> None:
        """Refresh now and every ``freeze_calendar_refresh``, until cancelled."""
        interval = self.core.config.freeze_calendar_refresh.total_seconds()
        while True:
            await self.refresh()
            await asyncio.sleep(interval)
