"""``!digest [YYYY-MM-DD]``: the full incident digest of a day, privately (SPEC §3)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from deploybot.commands.base import Reply, Request, UsageError, command, example
from deploybot.deployday.digest import digest_for_day, full_lines
from deploybot.durations import parse_day
from deploybot.errors import DateError

if TYPE_CHECKING:
    from deploybot.core import Core


#: The reply of both examples below (the examples' day is 2026-12-15).
EXAMPLE_DIGEST = (
    "incident digest Tue 2026-12-15 (UTC) as of 13:25 UTC",
    "pkgdb2-2.0 (window Tue 2026-12-15 13:00 UTC to 21:00 UTC): 1 reported, 0 fixed, "
    "1 open at 13:25 UTC",
    "  time to acknowledge: no data (0 of 1 acknowledged)",
    "  time to repair: no data (0 of 1 fixed)",
    "  slowest: #1 pkgdb2: the acl page returns 500 — still open after 5m",
    "  reporters by team: other 1",
    "  open: #1 pkgdb2: the acl page returns 500 — no owner, open 5m "
    "(reported by alice 13:20 UTC, deploy pkgdb2-2.0)",
)


@command(
    "!digest [YYYY-MM-DD]",
    "the incident digest of a day (default: today): per deploy, reported, fixed, open "
    "with owners, times to acknowledge and to repair; sent privately",
    example("!digest", *EXAMPLE_DIGEST),
    example("!digest 2026-12-15", *EXAMPLE_DIGEST),
)
async def digest(core: Core, request: Request) -> Reply:
    """The day's digest as of now, in the configured time zone, always privately."""
    words = request.args.split()
    if len(words) > 1:
        raise UsageError(f"one date only, got {len(words)} words")
    tz = core.config.timezone
    try:
        day = parse_day(words[0]) if words else request.now.astimezone(tz).date()
    except DateError as error:
        raise UsageError(str(error)) from None
    plans, now = core.plans, request.now
    # off the loop: a big day's digest reads every incident of the day
    result = await core.read(lambda store: digest_for_day(store, plans, day, tz, as_of=now))
    return Reply.say(*full_lines(result, tz), private=True)


#: The commands of this module, in the order ``!help`` lists them.
COMMANDS = (digest,)
