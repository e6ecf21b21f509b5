"""The web pages of SPEC §6, rendered with the standard library only.

* :func:`index_page` — ``/``: the running and upcoming deploys (when, countdown, ⚠ API
  breaks, readiness) and today's incidents.
* :func:`digest_page` — ``/digest/{date}``: a day's incident digest, a table per section,
  and the plain text of :func:`deploybot.deployday.digest.full_lines`.

:func:`front_page` and :func:`digest_page_of` are those pages for a
:class:`~deploybot.core.Core` as of now: they decide what is shown (which incidents,
which day).  The rest are pure functions of their arguments (``now`` and the display
timezone ``tz`` are passed in).  Each returns a whole HTML5 document for the HTTP layer
to serve as ``text/html; charset=utf-8``.  Every value that does not come from this
module (plan files, incidents, nicks) goes through :func:`html.escape`; nothing from
outside is ever put in an attribute or in the style sheet.  Links are relative
(``digest/…``, ``calendar.ics``, ``../``), so the pages work behind a path prefix too.
Times are shown in ``tz``, as on IRC (:mod:`deploybot.texts`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta, tzinfo
from html import escape

from deploybot.core import Core
from deploybot.deployday.digest import (
    Digest,
    IncidentFacts,
    Section,
    by_number,
    digest_for_day,
    full_lines,
    slowest_text,
)
from deploybot.durations import format_duration
from deploybot.plans.model import Plan
from deploybot.plans.policy import DEFAULT_NOTICE_DAYS, Readiness, assess
from deploybot.plans.schedule import day_bounds, describe_countdown, running, upcoming
from deploybot.store import Incident, Store
from deploybot.texts import clock_text, deploy_link, elapsed_text, when_text

__all__ = [
    "MAX_PAGE_INCIDENTS",
    "digest_page",
    "digest_page_of",
    "front_page",
    "front_page_incidents",
    "index_page",
]

#: Incidents shown on the front page at most (the newest).
MAX_PAGE_INCIDENTS = 500

_CSS = """\
body { font: 15px/1.45 system-ui, sans-serif; color: #222; max-width: 72em;
       margin: 1.5em auto; padding: 0 1em; }
table { border-collapse: collapse; width: 100%; margin: .5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: .3em .5em; text-align: left; vertical-align: top; }
th { background: #f2f2f2; }
ul { margin: .2em 0; padding-left: 1.2em; }
.warn, .missing { color: #a40000; }
.warn { font-weight: bold; }
.met { color: #2e6b00; }
.quiet { color: #666; font-style: italic; }
nav { margin-bottom: 1em; }"""


def _e(value: object) -> str:
    """``value`` as HTML text: ``&``, ``<``, ``>`` and both quotes escaped."""
    return escape(str(value), quote=True)


def _page(title: str, body: Iterable[str]) -> str:
    """A whole document; ``title`` is escaped here, ``body`` is HTML already."""
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{_e(title)}</title>",
            f"<style>\n{_CSS}\n</style>",
            "</head>",
            "<body>",
            *body,
            "</body>",
            "</html>",
            "",
        ]
    )


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """A table; ``headers`` are plain text, the cells of ``rows`` are HTML already."""
    out = [
        "<table>",
        "<thead><tr>" + "".join(f"<th>{_e(h)}</th>" for h in headers) + "</tr></thead>",
    ]
    out.append("<tbody>")
    out += ["<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows]
    out += ["</tbody>", "</table>"]
    return out


def _quiet(text: str) -> str:
    return f'<p class="quiet">{_e(text)}</p>'


# -- / ----------------------------------------------------------------------------------


def index_page(
    plans: Sequence[Plan],
    incidents: Sequence[Incident],
    *,
    now: datetime,
    tz: tzinfo,
    notice_days: int = DEFAULT_NOTICE_DAYS,
) -> str:
    """``/``: the running deploys then the upcoming ones (by start time), each with its
    window in ``tz``, countdown, API breaks and readiness (:func:`deploybot.plans.policy.assess`
    with ``notice_days``: the verdict, and each missing rule with its reason); then
    ``incidents`` (the caller passes today's), by number.  Finished deploys are left
    out.  An empty part says so in one line."""
    local_day = now.astimezone(tz).date()
    body = [
        "<h1>deploybot</h1>",
        f'<nav><a href="digest/{local_day.isoformat()}">today\'s digest</a> · '
        '<a href="calendar.ics">calendar</a></nav>',
        f"<p>As of {_e(when_text(now, tz))}.</p>",
        "<h2>Deploys</h2>",
    ]
    shown = running(plans, now) + upcoming(plans, now)
    if shown:
        body += _table(
            ("deploy", "window", "countdown", "API breaks", "readiness"),
            (_plan_row(plan, now, tz, assess(plan, notice_days)) for plan in shown),
        )
    else:
        body.append(_quiet("no upcoming deploys"))
    body.append("<h2>Today's incidents</h2>")
    if incidents:
        body += _table(
            ("#", "service", "summary", "state", "reporter", "owner", "reported", "age"),
            (_incident_row(incident, now, tz) for incident in sorted(incidents, key=by_number)),
        )
    else:
        body.append(_quiet("no incidents today"))
    return _page("deploybot — deploys and incidents", body)


def _plan_row(plan: Plan, now: datetime, tz: tzinfo, readiness: Readiness) -> list[str]:
    name = f"<strong>{_e(plan.service)} {_e(plan.release)}</strong>"
    if plan.title:
        name += f"<br>{_e(plan.title)}"
    name += f"<br><small>{_e(plan.id)}</small>"
    window = (
        f"{_e(when_text(plan.when, tz))}<br>to {_e(clock_text(plan.end, tz, plan.when))} "
        f"({_e(format_duration(plan.duration))})"
    )
    if plan.running_at(now):
        countdown = (
            f'<span class="warn">running</span>: {_e(describe_countdown(plan.when - now))}, '
            f"ends {_e(clock_text(plan.end, tz, now))}"
        )
    else:
        countdown = _e(describe_countdown(plan.when - now))
    return [name, window, countdown, _breaks_cell(plan), _readiness_cell(readiness, tz)]


def _breaks_cell(plan: Plan) -> str:
    if not plan.api_breaks:
        return "none"
    items = "".join(
        f"<li><code>{_e(b.endpoint)}</code> — {_e(b.change)}<br>"
        + (f"migration: {_e(b.migration)}" if b.migration else "no migration note")
        + "</li>"
        for b in plan.api_breaks
    )
    return f'<span class="warn">⚠ API BREAK</span><ul>{items}</ul>'


def _readiness_cell(readiness: Readiness, tz: tzinfo) -> str:
    if not readiness.under_policy:
        return f"exempt: {_e(readiness.exemption)}"
    counted = f"({readiness.met_count} of {len(readiness.checks)} rules met)"
    if readiness.ready:
        return f'<span class="met">✔ READY</span> {counted}'
    missing = "".join(
        f'<li class="missing">✘ {_e(check.title)}: {_e(check.reason_in(tz))}</li>'
        for check in readiness.missing
    )
    return f'<span class="missing">✘ NOT READY</span> {counted}<ul>{missing}</ul>'


def _incident_row(incident: Incident, now: datetime, tz: tzinfo) -> list[str]:
    link = deploy_link(incident)
    service = _e(incident.service) + (f"<br><small>{_e(link)}</small>" if link else "")
    if incident.open:
        state = '<span class="missing">open</span>'
        age = f"open {_e(elapsed_text(now - incident.reported_at))}"
    else:
        state = '<span class="met">fixed</span>'
        repair = incident.time_to_repair or timedelta(0)
        age = f"fixed after {_e(elapsed_text(repair))}"
        if incident.fixed_by:
            age += f" by {_e(incident.fixed_by)}"
    if incident.time_to_acknowledge is not None:
        age += f"<br>acknowledged after {_e(elapsed_text(incident.time_to_acknowledge))}"
    else:
        age += "<br>not acknowledged"
    return [
        f"#{incident.number}",
        service,
        _e(incident.text),
        state,
        _e(incident.reporter_nick),
        _e(incident.owner) if incident.owner else "nobody",
        _e(clock_text(incident.reported_at, tz, now)),
        age,
    ]


# -- /digest/{date} ---------------------------------------------------------------------


def digest_page(digest: Digest, *, tz: tzinfo) -> str:
    """``/digest/{date}``: the digest's header, then per section a table of its numbers
    and one of its open incidents, the totals when there is more than one section, and
    the whole digest as plain text (:func:`deploybot.deployday.digest.full_lines`)."""
    lines = full_lines(digest, tz)
    body = ['<nav><a href="../">deploys and incidents</a></nav>', f"<h1>{_e(lines[0])}</h1>"]
    if digest.empty:
        body.append(_quiet("no deploys, no incidents"))
    else:
        for section in digest.sections:
            body += _section(section, digest, tz, with_open=True)
        if len(digest.sections) > 1:
            body += _section(digest.totals, digest, tz, with_open=False)
    body += [
        "<details>",
        "<summary>as text</summary>",
        "<pre>" + "\n".join(_e(line) for line in lines) + "</pre>",
        "</details>",
    ]
    return _page(f"incident digest {digest.day.isoformat()}", body)


def _section(section: Section, digest: Digest, tz: tzinfo, *, with_open: bool) -> list[str]:
    heading = _e(section.title)
    if section.window is not None:
        begin, finish = section.window
        heading += (
            f" <small>window {_e(when_text(begin, tz))} to "
            f"{_e(clock_text(finish, tz, begin))}</small>"
        )
    out = [f"<h2>{heading}</h2>"]
    if section.quiet:
        return [*out, _quiet("no incidents")]
    rows = [
        ("reported", str(section.reported)),
        ("fixed", str(section.fixed)),
        ("open", str(len(section.open))),
    ]
    if section.reported:
        rows += [
            (
                "time to acknowledge",
                _stats(
                    section.median_ack,
                    section.mean_ack,
                    f"{section.acknowledged} of {section.reported} acknowledged",
                ),
            ),
            (
                "time to repair",
                _stats(
                    section.median_repair,
                    section.mean_repair,
                    f"{section.repaired} of {section.reported} fixed",
                ),
            ),
        ]
        if section.slowest is not None:
            rows.append(("slowest", slowest_text(section.slowest)))
        rows.append(("reporters by team", ", ".join(f"{t} {n}" for t, n in section.teams)))
    out += ["<table>", "<tbody>"]
    out += [f"<tr><th>{_e(label)}</th><td>{_e(value)}</td></tr>" for label, value in rows]
    out += ["</tbody>", "</table>"]
    if with_open:
        if section.open:
            out.append("<h3>open</h3>")
            out += _table(
                ("#", "service", "summary", "owner", "open for", "reported by", "deploy"),
                (_open_row(incident, digest, tz) for incident in section.open),
            )
        else:
            out.append(_quiet("open: none"))
    return out


def _stats(median: timedelta | None, mean: timedelta | None, over: str) -> str:
    if median is None or mean is None:
        return f"no data ({over})"
    return f"median {elapsed_text(median)}, mean {elapsed_text(mean)} ({over})"


def _open_row(incident: IncidentFacts, digest: Digest, tz: tzinfo) -> list[str]:
    reported = clock_text(incident.reported_at, tz, digest.start)
    return [
        f"#{incident.number}",
        _e(incident.service),
        _e(incident.text),
        _e(incident.owner) if incident.owner else "nobody",
        _e(elapsed_text(digest.as_of - incident.reported_at)),
        f"{_e(incident.reporter_nick)} {_e(reported)}",
        _e(incident.deploy_id or "—"),
    ]


# -- the pages of a core, as of now ---------------------------------------------------


def front_page_incidents(store: Store, now: datetime, tz: tzinfo) -> tuple[Incident, ...]:
    """The front page's incidents: today's (in ``tz``), and the ones still open from
    earlier days (not fixed is news); the newest :data:`MAX_PAGE_INCIDENTS`, by number."""
    start, _ = day_bounds(now, tz)
    today = store.list_incidents(since=start, limit=MAX_PAGE_INCIDENTS, newest_first=True)
    still_open = store.list_incidents(state="open", limit=MAX_PAGE_INCIDENTS, newest_first=True)
    shown = {incident.number: incident for incident in (*today, *still_open)}
    return tuple(shown[number] for number in sorted(shown)[-MAX_PAGE_INCIDENTS:])


def front_page(core: Core) -> str:
    """``/`` as of now: :func:`index_page` of the plans in force and
    :func:`front_page_incidents`, in the configured timezone and notice."""
    now = core.now()
    tz = core.config.timezone
    return index_page(
        core.plans,
        front_page_incidents(core.store, now, tz),
        now=now,
        tz=tz,
        notice_days=core.config.notice_days,
    )


def digest_page_of(core: Core, day: date) -> str:
    """``/digest/{date}``: :func:`digest_page` of ``day`` in the configured timezone, as of
    now (a past day is complete, a future one is empty)."""
    tz = core.config.timezone
    return digest_page(digest_for_day(core.store, core.plans, day, tz, as_of=core.now()), tz=tz)
