"""``!digest [YYYY-MM-DD]``: the full incident digest of a day, privately (SPEC §3)."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from deploybot.commands.base import Registry, Reply, Request, UsageError
from deploybot.deployday.digest import digest_for_day, full_lines

if TYPE_CHECKING:
    from deploybot.core import Core


def parse_day(text: str) -> date:
    """``YYYY-MM-DD`` → date, or a usage error saying what was wrong."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{text!r} is not a date; write it as YYYY-MM-DD") from None


def register(registry: Registry) -> None:
    """Add ``!digest`` to ``registry``."""

    @registry.command(
        "!digest [YYYY-MM-DD]",
        "the incident digest of a day (default: today): per deploy, reported, fixed, open "
        "with owners, times to acknowledge and to repair; sent privately",
        "!digest",
        "!digest 2026-12-15",
    )
    async def digest(core: Core, request: Request) -> Reply:
        words = request.args.split()
        if len(words) > 1:
            raise UsageError(f"one date only, got {len(words)} words")
        tz = core.config.timezone
        day = parse_day(words[0]) if words else request.now.astimezone(tz).date()
        result = digest_for_day(core.store, core.plans, day, tz, as_of=request.now)
        return Reply.say(*full_lines(result, tz), private=True)
