"""``!status`` (issue 14): which instance of the bot is active and since when, how many
standbys renewed their presence in the last minute, and whether each chat network is
connected — what ``/healthz`` says, in one line."""

from __future__ import annotations

from datetime import datetime, timedelta, tzinfo
from typing import TYPE_CHECKING

from deploybot.commands.base import Reply, Request, command, example
from deploybot.commands.deploys import no_arguments
from deploybot.durations import plural
from deploybot.health import HaStatus, IrcStatus, NetworkStatuses
from deploybot.texts import clock_text, elapsed_text

if TYPE_CHECKING:
    from deploybot.core import Core


def ha_text(status: HaStatus, tz: tzinfo, now: datetime) -> str:
    """``active: host:1234 since 13:00 UTC (epoch 2); 1 standby seen in the last minute``;
    with SQLite ``single instance (SQLite) since 13:00 UTC``."""
    since = "" if status.since is None else f" since {clock_text(status.since, tz, now)}"
    if status.backend == "sqlite":
        return f"single instance (SQLite){since}"
    if status.active is None:
        active = "active: none known yet"
    else:
        epoch = "" if status.epoch is None else f" (epoch {status.epoch})"
        active = f"active: {status.active}{since}{epoch}"
    standbys = plural(status.standbys_last_minute, "standby", "standbys")
    return f"{active}; {standbys} seen in the last minute"


def network_text(name: str, status: IrcStatus) -> str:
    """``irc: connected``, or ``irc: down 3m (connection lost: …)``."""
    if status.connected:
        return f"{name}: connected"
    down = elapsed_text(timedelta(seconds=status.down_seconds))
    return f"{name}: down {down}" + (f" ({status.why})" if status.why else "")


@command(
    "!status",
    "which instance of the bot is active and since when, how many standbys it has, and "
    "whether it is connected to each chat network",
    example(
        "!status",
        "active: bot1.example.org:4242 since 13:00 UTC (epoch 2); 1 standby seen in the "
        "last minute; irc: connected",
    ),
)
async def status(core: Core, request: Request) -> Reply:
    """One line: the pair's state, then each network's."""
    no_arguments(request)
    parts: list[str] = []
    if core.ha_status is not None:
        parts.append(ha_text(core.ha_status(), core.config.timezone, request.now))
    networks: NetworkStatuses = core.network_status() if core.network_status else {}
    parts.extend(network_text(name, state) for name, state in networks.items())
    if not parts:
        return Reply.say("no status known here: this is not a running bot")
    return Reply.say("; ".join(parts))


COMMANDS = (status,)
