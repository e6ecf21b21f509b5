"""The picture of a deploy's day (issue 13): a server-rendered SVG timeline, readable
without JavaScript, for the deploy page and the post-mortem draft.

:func:`timeline_svg` draws a :class:`~deploybot.deployday.record.DeployRecord`: a time
axis (hours in the configured zone), the deploy window as a band, the playbook's start
and finish and firefighting opened/closed as vertical marks, each page as a tick with a
line to its acknowledgement (the ack delay; an escalated page is marked), and each
incident as a bar from reported to fixed — an open one runs to ``now`` (dashed) — with
its number and text beside it.  Hovering shows a ``<title>`` with the details.

Every label is text from outside (plan files, IRC): it is escaped for XML
(:func:`html.escape` with quotes, after :func:`~deploybot.lines.one_line`), so a report
holding ``</svg><script>`` is shown as text.  The result is a standalone ``<svg>``
element (with its ``xmlns``) that parses as XML; embedded in a page it is marked safe.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from datetime import datetime, timedelta, tzinfo

from deploybot.deployday.record import DeployRecord
from deploybot.durations import format_duration
from deploybot.lines import one_line
from deploybot.store import Incident, Page

__all__ = ["MAX_LABEL", "timeline_svg"]

WIDTH = 960
LEFT = 70  # the row names ("pages", "#3") stand in the margin
RIGHT = 20
ROW = 22
#: About how wide a character of a 12px label is, to keep labels inside the picture.
CHAR_WIDTH = 6.6
#: A label is cut to this many characters (the whole text is in the bar's title).
MAX_LABEL = 70

_STYLE = (
    ".axis{stroke:#888;stroke-width:1}.grid{stroke:#ddd;stroke-width:1}"
    ".tick{font:11px sans-serif;fill:#555}.window{fill:#e8f0fe;stroke:#7aa7e0}"
    ".mark{stroke:#1a5fb4;stroke-width:2}.marklabel{font:11px sans-serif;fill:#1a5fb4}"
    ".page{stroke:#986a44;stroke-width:2}.ack{stroke:#986a44;stroke-width:1}"
    ".escalated{stroke:#c01c28;stroke-width:2}"
    ".incident.fixed{fill:#2ec27e}.incident.open{fill:#e01b24;opacity:.75}"
    ".label{font:12px sans-serif;fill:#222}.now{stroke:#c01c28;stroke-dasharray:4 3}"
)


def _e(text: str) -> str:
    return html.escape(one_line(text), quote=True)


def _short(text: str) -> str:
    text = one_line(text)
    return text if len(text) <= MAX_LABEL else text[: MAX_LABEL - 1] + "…"


def timeline_svg(record: DeployRecord, tz: tzinfo, now: datetime) -> str:
    """The SVG of ``record`` (see the module documentation); times in ``tz``."""
    plan = record.plan
    moments = [m.at for m in record.timeline if m.kind not in ("plan", "countdown")]
    start = min([plan.when, *moments])
    end = max([plan.end, *moments, *([now] if record.open_incidents else [])])
    span = max((end - start).total_seconds(), 60.0)
    start -= timedelta(seconds=span * 0.02)
    end += timedelta(seconds=span * 0.02)
    span = (end - start).total_seconds()
    usable = WIDTH - LEFT - RIGHT

    def x(moment: datetime) -> float:
        return round(LEFT + usable * (moment - start).total_seconds() / span, 1)

    rows = 2 + len(record.incidents)
    top = 60  # below the axis and the marks' labels
    height = top + rows * ROW + 10
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="timeline" width="{WIDTH}" '
        f'height="{height}" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-label="{_e(f"timeline of the deploy {plan.id}")}">',
        f"<title>{_e(f'The day of {plan.id}')}</title>",
        f"<style>{_STYLE}</style>",
    ]
    out += _axis(start, end, tz, x, height)
    out.append(
        f'<rect class="window" x="{x(plan.when)}" y="{top}" '
        f'width="{max(x(plan.end) - x(plan.when), 1)}" height="{rows * ROW}">'
        f"<title>{_e(f'deploy window: {format_duration(plan.duration)}')}</title></rect>"
    )
    marks = {
        "playbook-start": "start",
        "playbook-finish": "finish",
        "firefight-opened": "opened",
        "firefight-closed": "closed",
        "freeze-warning": "⚠ freeze",
    }
    shown = [(event, marks[event.kind]) for event in record.events if event.kind in marks]
    for index, (event, label) in enumerate(shown):
        at = x(event.at)
        out.append(
            f'<line class="mark" x1="{at}" y1="{top - 18}" x2="{at}" y2="{top + rows * ROW}">'
            f"<title>{_e(event.text)}</title></line>"
        )
        label_y = top - 20 if index % 2 == 0 else top - 8  # neighbours on two lines
        out.append(f'<text class="marklabel" x="{at + 2}" y="{label_y}">{_e(label)}</text>')
    page_y = top + 6
    out.append(f'<text class="label" x="4" y="{page_y + 10}">pages</text>')
    for page in record.pages:
        at = x(page.created_at)
        out.append(
            f'<line class="page" data-page="{page.number}" x1="{at}" y1="{page_y}" x2="{at}" '
            f'y2="{page_y + 12}"><title>{_e(_page_title(page, tz))}</title></line>'
        )
        if page.acked_at is not None:
            out.append(
                f'<line class="ack" x1="{at}" y1="{page_y + 6}" x2="{x(page.acked_at)}" '
                f'y2="{page_y + 6}"/>'
            )
        if page.escalated_at is not None:
            esc = x(page.escalated_at)
            out.append(
                f'<line class="escalated" x1="{esc}" y1="{page_y}" x2="{esc}" y2="{page_y + 12}"/>'
            )
    for row, incident in enumerate(record.incidents):
        y = top + (row + 2) * ROW
        until = incident.fixed_at or now
        state = "fixed" if incident.fixed_at is not None else "open"
        width = max(x(until) - x(incident.reported_at), 2)
        title = f"#{incident.number} {incident.service}: {incident.text} — reported by " + (
            f"{incident.reporter_nick} {incident.reported_at.astimezone(tz):%H:%M %Z}"
        )
        if incident.fixed_at is not None and incident.time_to_repair is not None:
            title += f", fixed by {incident.fixed_by} after {format_duration(_whole(incident))}"
        else:
            title += f", open (owner: {incident.owner or 'nobody'})"
        dash = ' stroke="#e01b24" stroke-dasharray="4 3"' if state == "open" else ""
        out.append(
            f'<rect class="incident {state}" data-incident="{incident.number}" '
            f'x="{x(incident.reported_at)}" y="{y - 12}" width="{round(width, 1)}" '
            f'height="14"{dash}><title>{_e(title)}</title></rect>'
        )
        label = f"#{incident.number} {_short(incident.text)}" + (
            "" if state == "fixed" else " (open)"
        )
        after = x(incident.reported_at) + width + 4
        if after + len(label) * CHAR_WIDTH <= WIDTH:
            where = f'x="{round(after, 1)}"'
        else:  # no room on the right: the label ends where the bar starts
            where = f'x="{max(x(incident.reported_at) - 4, LEFT)}" text-anchor="end"'
            room = int((x(incident.reported_at) - 4 - LEFT) / CHAR_WIDTH)
            label = label if len(label) <= room else label[: max(room - 1, 3)] + "…"
        out.append(f'<text class="label" {where} y="{y}">{_e(label)}</text>')
        out.append(f'<text class="label" x="4" y="{y}">#{incident.number}</text>')
    if record.open_incidents:
        at = x(now)
        out.append(
            f'<line class="now" x1="{at}" y1="{top}" x2="{at}" y2="{top + rows * ROW}">'
            "<title>now</title></line>"
        )
    out.append("</svg>")
    return "\n".join(out)


def _whole(incident: Incident) -> timedelta:
    repair = incident.time_to_repair or timedelta(0)
    return timedelta(seconds=int(repair.total_seconds()))


def _page_title(page: Page, tz: tzinfo) -> str:
    created, acked = page.created_at, page.acked_at
    text = f"page #{page.number} to {page.target_nick} at {created.astimezone(tz):%H:%M %Z}"
    if acked is not None:
        delay = timedelta(seconds=int((acked - created).total_seconds()))
        text += f", acknowledged after {format_duration(delay)}"
    else:
        text += ", not acknowledged"
    return text


#: The tick step for a span up to each limit (the last: 6 hours).
_STEPS = (
    (timedelta(minutes=12), timedelta(minutes=1)),
    (timedelta(hours=1), timedelta(minutes=5)),
    (timedelta(hours=3), timedelta(minutes=15)),
    (timedelta(hours=14), timedelta(hours=1)),
    (timedelta(hours=30), timedelta(hours=2)),
)


def _axis(
    start: datetime, end: datetime, tz: tzinfo, x: Callable[[datetime], float], height: int
) -> list[str]:
    """Hour ticks (or every 10 minutes for a short span, 6 hours for a long one) in ``tz``."""
    span = end - start
    step = next((step for limit, step in _STEPS if span <= limit), timedelta(hours=6))
    local = start.astimezone(tz)
    minutes = int(step.total_seconds() // 60)
    first = local.replace(minute=local.minute - local.minute % minutes if minutes < 60 else 0)
    first = first.replace(second=0, microsecond=0)
    ticks: list[datetime] = []
    moment = first
    while moment.astimezone(start.tzinfo) < end and len(ticks) < 60:
        if moment >= local:
            ticks.append(moment)
        moment = moment + step
    out = [f'<line class="axis" x1="{LEFT}" y1="28" x2="{WIDTH - RIGHT}" y2="28"/>']
    for tick in ticks:
        at = x(tick)
        out.append(f'<line class="grid" x1="{at}" y1="28" x2="{at}" y2="{height - 6}"/>')
        out.append(f'<text class="tick" x="{at + 2}" y="22">{_e(f"{tick:%H:%M}")}</text>')
    zone = local.tzname() or ""
    out.append(f'<text class="tick" x="{LEFT}" y="12">{_e(f"{local:%Y-%m-%d} ({zone})")}</text>')
    return out
