"""``!status`` (issue 14): the active instance, since when, under which epoch, the standbys
seen in the last minute and each chat network, in one line; with SQLite the one instance."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from deploybot.commands.registry import build_registry
from deploybot.core import Core
from deploybot.health import HaStatus, IrcStatus
from tests.planfactory import utc
from tests.test_commands import Clock, make_core, say

NOW = utc(2026, 12, 15, 14, 5)


@pytest.fixture
def core(tmp_path: Path) -> Iterator[Core]:
    core = make_core(tmp_path, Clock(NOW), [])
    yield core
    core.store.close()


async def status(core: Core, line: str = "!status") -> list[str]:
    return await say(core, build_registry(), line, nick="carol", account=None)


async def test_status_names_the_active_its_epoch_the_standbys_and_each_network(core: Core) -> None:
    """Anyone may ask; two standbys, Matrix away for 3 minutes with its reason."""
    core.ha_status = lambda: HaStatus("postgresql", "b:2", utc(2026, 12, 15, 14, 2), 3, 2)
    core.network_status = lambda: {
        "irc": IrcStatus(True),
        "matrix": IrcStatus(False, "cannot sync: 502", 190.0),
    }
    assert await status(core) == [
        "active: b:2 since 14:02 UTC (epoch 3); 2 standbys seen in the last minute; "
        "irc: connected; matrix: down 3m (cannot sync: 502)"
    ]


async def test_status_with_sqlite_an_older_start_and_no_lease_yet(core: Core) -> None:
    """SQLite: the one instance since its start (another day: with its date); PostgreSQL
    before any lease was read: none known yet."""
    core.ha_status = lambda: HaStatus("sqlite", "a:1", utc(2026, 12, 14, 9))
    core.network_status = lambda: {"irc": IrcStatus(True)}
    assert await status(core) == [
        "single instance (SQLite) since Mon 2026-12-14 09:00 UTC; irc: connected"
    ]
    core.ha_status = lambda: HaStatus("postgresql")
    core.network_status = None
    assert await status(core) == ["active: none known yet; 0 standbys seen in the last minute"]


async def test_status_takes_no_arguments_and_says_when_nothing_is_known(core: Core) -> None:
    assert await status(core, "!status now") == [
        "!status takes no arguments, got 'now' — usage: !status"
    ]
    assert await status(core) == ["no status known here: this is not a running bot"]
