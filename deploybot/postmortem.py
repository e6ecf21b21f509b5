"""The post-mortem draft of a deploy (issue 13): ``deploybot postmortem ID``,
``GET /deployments/{id}/postmortem`` (HTML) and ``…/postmortem.md`` (Markdown).

The 2014 pkgdb2 post-mortem was written by hand from memory and logs; the bot has it all
recorded.  :func:`draft_markdown` and :func:`draft_html` write the same draft from a
:class:`~deploybot.deployday.record.DeployRecord`:

1. a title and a summary line (service, release, window, how it went, the freeze);
2. the **timeline**, every recorded moment in order, times in the configured zone with
   UTC beside (``15:20 CET (14:20 UTC)``), days alone for what the plan dates;
3. the **numbers**: incidents reported, fixed and open, median times to acknowledge and
   to repair, pages sent, acknowledged (median delay) and escalated;
4. **API breaks declared vs observed** (a declared break is observed when an incident
   names its endpoint; incidents naming none are listed: an undeclared break?);
5. **who was affected**: incidents by the reporter's team, by consumer, ``!uses``
   registrations;
6. the **open incidents** with their owners;
7. empty sections for people: "What went well", "What went wrong", "Lessons".

Hostile text (a report holding Markdown headers, backticks, ``</svg><script>``) cannot
change either format: in Markdown every value is one line, HTML-escaped (``&``, ``<``,
``>``) and its Markdown punctuation backslash-escaped (:func:`md`), and it never starts a
line; the HTML is a Jinja2 template with autoescaping, and its SVG escapes every label.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, tzinfo

from markupsafe import Markup

from deploybot.deployday.record import DeployRecord, Moment, summary_line
from deploybot.durations import format_duration, plural
from deploybot.lines import one_line
from deploybot.plans.model import Plan
from deploybot.web.pages import templates
from deploybot.web.timeline import timeline_svg

__all__ = ["draft_html", "draft_markdown", "md", "moment_time", "postmortem_sections"]

#: The punctuation Markdown reads inside a line (emphasis, code, links, tables,
#: strikethrough), escaped with a backslash in every value; ``( ) ! #`` need nothing once
#: ``[ ]`` are escaped and no value starts a line, but a value that would start one
#: (a summary line) has its first character made inert too (:data:`_LINE_START`).
_MD_PUNCTUATION = re.compile(r"([\\`*_\[\]|~])")
_LINE_START = re.compile(r"^(?:(\d+)([.)])|([#+=>-]))")
TO_FILL = "(to be written by the people who were there)"


def md(text: str, *, starts_line: bool = True) -> str:
    """``text`` as inert Markdown: one line, ``& < >`` as entities (no raw HTML), the
    punctuation Markdown reads backslash-escaped, and — unless ``starts_line`` is false
    (the value follows other text on its line) — a first character that would start a
    block (``#``, ``-``, ``1.``) escaped too.

    >>> print(md("## `rm -rf` <b>*x*</b>"))
    \\## \\`rm -rf\\` &lt;b&gt;\\*x\\*&lt;/b&gt;
    >>> print(md("1. not a list"))
    1\\. not a list
    """
    text = one_line(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _MD_PUNCTUATION.sub(r"\\\1", text)
    if not starts_line:
        return text
    return _LINE_START.sub(
        lambda m: f"{m[1]}\\{m[2]}" if m[1] is not None else f"\\{m[3]}", text, count=1
    )


def moment_time(at: datetime, tz: tzinfo, *, day_only: bool = False) -> str:
    """``2026-12-15 15:20 CET (14:20 UTC)``; in UTC only ``2026-12-15 14:20 UTC``; a day
    alone for ``day_only``."""
    if day_only:
        return f"{at:%Y-%m-%d}"
    local = at.astimezone(tz)
    utc = at.astimezone(UTC)
    if local.utcoffset() == timedelta(0) and local.tzname() in ("UTC", "GMT", None):
        return f"{utc:%Y-%m-%d %H:%M} UTC"
    zone = local.tzname() or local.strftime("%z")
    same_day = "" if local.date() == utc.date() else f"{utc:%Y-%m-%d} "
    return f"{local:%Y-%m-%d %H:%M} {zone} ({same_day}{utc:%H:%M} UTC)"


def _span(delta: timedelta | None) -> str:
    if delta is None:
        return "no data"
    return format_duration(timedelta(seconds=int(delta.total_seconds()))) or "0s"


def postmortem_sections(record: DeployRecord, tz: tzinfo) -> dict[str, list[str]]:
    """The draft's sections as plain lines (values not yet escaped): what both formats
    say.  Keys in order: summary, numbers, breaks, affected, open."""
    plan, numbers = record.plan, record.numbers
    window = f"{moment_time(plan.when, tz)} to {moment_time(plan.end, tz)}"
    summary = [f"{summary_line(record)}.", f"Window: {window}."]
    if record.started is not None:
        started = next(e for e in record.events if e.kind == "playbook-start")
        by = f" by {started.nick}" if started.nick else ""
        summary.append(f"Playbook started{by} at {moment_time(started.at, tz)}.")
    if record.finished is not None:
        finished = [e for e in record.events if e.kind == "playbook-finish"][-1]
        summary.append(f"Playbook: {finished.text} at {moment_time(finished.at, tz)}.")
    if record.freeze.in_freeze:
        marker = record.freeze.marker() or ""
        summary.append(marker.removeprefix("⚠ ") + ".")
        if any(e.kind == "freeze-warning" for e in record.events):
            summary.append("⚠ The deploy ran during the freeze without an approved freeze break.")
    summary.append(f"Drafted by deploybot as of {moment_time(record.as_of, tz)}.")
    numbers_lines = [
        f"Incidents: {numbers.incidents} reported, {numbers.fixed} fixed, {numbers.open} open.",
        f"Time to acknowledge (median): {_span(numbers.median_ack)} "
        f"({numbers.acknowledged} of {numbers.incidents} acknowledged).",
        f"Time to repair (median): {_span(numbers.median_repair)} "
        f"({numbers.repaired} of {numbers.incidents} fixed).",
        f"Pages: {numbers.pages} sent, {numbers.pages_acked} acknowledged "
        f"(median after {_span(numbers.median_page_ack)}), {numbers.escalated} escalated.",
    ]
    breaks: list[str] = []
    for seen in record.breaks_seen:
        where = (
            "observed: incident " + ", ".join(f"#{n}" for n in seen.incidents)
            if seen.incidents
            else "no incident names it"
        )
        breaks.append(f"Declared: {seen.endpoint} — {seen.change} — {where}.")
    if not plan.api_breaks:
        breaks.append("No API break was declared.")
    for incident in record.unmatched:
        breaks.append(
            f"Not a declared break (undeclared?): #{incident.number} {incident.service}: "
            f"{incident.text}"
        )
    breaks.append("(Observed means an incident names the endpoint; read the incidents to be sure.)")
    affected = [f"By team: {team}: {plural(count, 'incident')}." for team, count in record.by_team]
    if not record.by_team:
        affected.append("By team: no incidents reported.")
    for name, numbers_of in record.by_consumer:
        shown = ", ".join(f"#{n}" for n in numbers_of) or "no incident"
        affected.append(f"Consumer {name}: {shown}.")
    if record.registered:
        affected.append(f"Registered with !uses {plan.service}: {', '.join(record.registered)}.")
    open_lines = [
        f"#{i.number} {i.service} (owner: {i.owner or 'nobody'}, open for "
        f"{_span(record.as_of - i.reported_at)}): {i.text}"
        for i in record.open_incidents
    ] or ["No incident is open."]
    return {
        "summary": summary,
        "numbers": numbers_lines,
        "breaks": breaks,
        "affected": affected,
        "open": open_lines,
    }


def _timeline_line(moment: Moment, tz: tzinfo) -> tuple[str, str, str]:
    return (moment_time(moment.at, tz, day_only=moment.day_only), moment.who, moment.text)


def _title(plan: Plan) -> str:
    return f"Post-mortem draft: {plan.service} {plan.release} ({plan.id})".replace("  ", " ")


def draft_markdown(record: DeployRecord, tz: tzinfo) -> str:
    """The draft in Markdown (see the module documentation)."""
    sections = postmortem_sections(record, tz)
    out = [f"# {md(_title(record.plan))}", ""]
    if record.plan.title:
        out += [f"_{md(record.plan.title)}_", ""]
    out += ["## Summary", "", *(f"- {md(line)}" for line in sections["summary"]), ""]
    out += ["## Timeline", ""]
    for when, who, what in (_timeline_line(m, tz) for m in record.timeline):
        by = f" — {md(who, starts_line=False)}:" if who else " —"
        out.append(f"- **{md(when)}**{by} {md(what, starts_line=False)}")
    if not record.timeline:
        out.append("- nothing was recorded")
    if not record.drift:
        out += ["", "_No drift findings recorded for this deploy._"]
    titles = (
        ("numbers", "Numbers"),
        ("breaks", "API breaks: declared vs observed"),
        ("affected", "Who was affected"),
        ("open", "Open incidents"),
    )
    for key, title in titles:
        out += ["", f"## {title}", "", *(f"- {md(line)}" for line in sections[key])]
    for title in ("What went well", "What went wrong", "Lessons"):
        out += ["", f"## {title}", "", f"_{md(TO_FILL)}_"]
    return "\n".join(out) + "\n"


def draft_html(record: DeployRecord, tz: tzinfo, now: datetime, *, root: str = "../../") -> str:
    """The draft as an HTML page on the web pages' base layout, with the picture of the
    day (:func:`~deploybot.web.timeline.timeline_svg`)."""
    sections = postmortem_sections(record, tz)
    return (
        templates()
        .get_template("postmortem.html")
        .render(
            root=root,
            today=now.astimezone(tz).date(),
            tz=tz,
            title=_title(record.plan),
            plan=record.plan,
            record=record,
            sections=sections,
            timeline=[_timeline_line(m, tz) for m in record.timeline],
            svg=Markup(timeline_svg(record, tz, now)),
            to_fill=TO_FILL,
        )
    )
