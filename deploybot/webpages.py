"""The web pages of SPEC §6: ``/`` (upcoming deploys, today's incidents) and
``/digest/{date}``, rendered with the standard library only."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, tzinfo
from html import escape

from deploybot.digest import Digest, full_lines
from deploybot.plans import Plan
from deploybot.store import Incident

__all__ = ["digest_page", "index_page"]


def _page(title: str, body: list[str]) -> str:
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en">',
            '<head><meta charset="utf-8">',
            f"<title>{escape(title)}</title></head>",
            "<body>",
            *body,
            "</body>",
            "</html>",
            "",
        ]
    )


def index_page(
    plans: Sequence[Plan],
    incidents: Sequence[Incident],
    *,
    now: datetime,
    tz: tzinfo,
    notice_days: int = 14,
) -> str:
    """``/`` (minimal version)."""
    body = ["<h1>deploybot</h1>", "<h2>Deploys</h2>"]
    shown = sorted((p for p in plans if p.end > now), key=lambda p: (p.when, p.id))
    if shown:
        body.append("<ul>")
        body += [f"<li>{escape(p.id)} {escape(p.service)} {escape(p.release)}</li>" for p in shown]
        body.append("</ul>")
    else:
        body.append("<p>no upcoming deploys</p>")
    body.append("<h2>Today's incidents</h2>")
    if incidents:
        body.append("<ul>")
        body += [f"<li>#{i.number} {escape(i.service)}: {escape(i.text)}</li>" for i in incidents]
        body.append("</ul>")
    else:
        body.append("<p>no incidents today</p>")
    return _page("deploybot", body)


def digest_page(digest: Digest, *, tz: tzinfo) -> str:
    """``/digest/{date}`` (minimal version: the full digest text)."""
    text = "\n".join(full_lines(digest, tz))
    return _page(f"digest {digest.day}", [f"<pre>{escape(text)}</pre>"])
