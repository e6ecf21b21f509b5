"""The ``/calendar.ics`` feed (SPEC §6): one iCalendar (RFC 5545) VEVENT per plan."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from deploybot.plans import Plan

__all__ = ["calendar_feed"]


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _text(value: str) -> str:
    cleaned = "".join(ch for ch in value if ch == "\n" or (ch >= " " and ch != "\x7f"))
    return (
        cleaned.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")
    )


def calendar_feed(plans: Sequence[Plan], *, now: datetime, notice_days: int = 14) -> str:
    """The feed of ``plans`` as of ``now`` (minimal version: structure and summaries)."""
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//deploybot//deploy calendar//EN",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
    ]
    for plan in sorted(plans, key=lambda p: (p.when, p.id)):
        summary = f"deploy {plan.service} {plan.release}"
        if plan.api_breaks:
            summary = "⚠ API BREAK: " + summary
        lines += [
            "BEGIN:VEVENT",
            f"UID:{_text(plan.id)}@deploybot",
            f"DTSTAMP:{_utc(now)}",
            f"DTSTART:{_utc(plan.when)}",
            f"DTEND:{_utc(plan.end)}",
            f"SUMMARY:{_text(summary)}",
            "END:VEVENT",
        ]
    lines.append("END:VCALENDAR")
    return "".join(line + "\r\n" for line in lines)
