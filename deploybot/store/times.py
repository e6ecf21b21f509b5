"""How the store writes times: UTC ISO 8601 text with ``Z`` at whole seconds
(``2026-11-27T10:00:00Z``, fixed width, so text order is time order), read back as aware
UTC datetimes.  Shared by the tables (:mod:`.base`) and the errors' messages (:mod:`.errors`).
"""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["db_time", "floor", "from_db", "from_db_or_none"]


def floor(moment: datetime) -> datetime:
    """``moment`` in UTC without its sub-second part; ``ValueError`` if it is naive."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"the store needs timezone-aware datetimes, got {moment!r}")
    return moment.astimezone(UTC).replace(microsecond=0)


def db_time(moment: datetime) -> str:
    """``2026-11-27T10:00:00Z``: fixed width, so text order is time order."""
    return floor(moment).replace(tzinfo=None).isoformat() + "Z"


def from_db(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def from_db_or_none(text: str | None) -> datetime | None:
    return None if text is None else from_db(text)
