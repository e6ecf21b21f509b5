"""The web pages of SPEC §6, rendered from Jinja2 templates (``templates/``, shipped as
package data).

* :func:`index_page` — ``/``: the running and upcoming deploys (when, countdown, ⚠ API
  breaks, readiness), each linked to its deploy page, and today's incidents.
* :func:`deployment_page` — ``/deployments/{id}``: one deploy: the plan, every readiness
  rule, the API breaks, the roster with who is on shift now, and the incidents reported
  during it.
* :func:`digest_page` — ``/digest/{date}``: a day's incident digest, a table per section,
  and the plain text of :func:`deploybot.deployday.digest.full_lines`.

:func:`front_page`, :func:`deployment_page_of` and :func:`digest_page_of` are those pages
for a :class:`~deploybot.core.Core` as of now: they decide what is shown (which
incidents, which day).  The rest are pure functions of their arguments (``now`` and the
display timezone ``tz`` are passed in).  Each returns a whole HTML5 document for the HTTP
layer to serve as ``text/html; charset=utf-8``.

The templates
    ``base.html`` is the one layout (head, style sheet, navigation); each page extends it
    and ``parts.html`` holds the pieces pages share (API breaks, readiness, the incident
    table).  Autoescaping is on for every template, so every value from outside (plan
    files, incidents, nicks) is escaped; values are never put in an attribute except a
    plan id in a link, quoted as a path segment (:func:`path_segment`); the style sheet
    is inline (nothing is fetched from anywhere).  Undefined names are errors
    (``StrictUndefined``).  Links are relative (``digest/…``, ``calendar.ics``,
    ``../``), so the pages work behind a path prefix too.  Times are shown in ``tz``, as
    on IRC (:mod:`deploybot.texts`), through the filters ``when``, ``clock``,
    ``elapsed``, ``duration``, ``countdown`` and ``shift_hours``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta, tzinfo
from typing import Any
from urllib.parse import quote

import jinja2
from markupsafe import Markup

from deploybot.core import Core
from deploybot.deployday.digest import (
    Digest,
    Section,
    by_number,
    digest_for_day,
    full_lines,
    slowest_text,
)
from deploybot.deployday.record import record_of
from deploybot.deployday.roster import firefight_channel, on_shift, shift_hours
from deploybot.drift.report import DriftRun
from deploybot.drift.runs import latest_run
from deploybot.durations import format_duration
from deploybot.plans.freezes import Freeze, FreezeStanding, frozen_at, next_freeze
from deploybot.plans.model import Plan, Shift
from deploybot.plans.policy import DEFAULT_NOTICE_DAYS, Readiness, assess
from deploybot.plans.schedule import day_bounds, describe_countdown, running, upcoming
from deploybot.store import Incident, Store
from deploybot.texts import clock_text, deploy_link, elapsed_text, when_text
from deploybot.web.timeline import timeline_svg

__all__ = [
    "MAX_PAGE_INCIDENTS",
    "deployment_page",
    "deployment_page_of",
    "digest_page",
    "digest_page_of",
    "front_page",
    "front_page_incidents",
    "index_page",
    "path_segment",
    "templates",
]

#: Incidents shown on the front page, and on a deploy page, at most (the newest).
MAX_PAGE_INCIDENTS = 500


def path_segment(value: str) -> str:
    """``value`` quoted as one URL path segment (``/`` too).

    >>> path_segment("pkgdb2-2.0"), path_segment("a/b c")
    ('pkgdb2-2.0', 'a%2Fb%20c')
    """
    return quote(value, safe="")


@jinja2.pass_context
def _when(context: jinja2.runtime.Context, moment: datetime) -> str:
    return when_text(moment, context["tz"])


@jinja2.pass_context
def _clock(context: jinja2.runtime.Context, moment: datetime, today: datetime | None = None) -> str:
    return clock_text(moment, context["tz"], today)


@jinja2.pass_context
def _shift_hours(context: jinja2.runtime.Context, shift: Shift) -> str:
    return shift_hours(shift, context["tz"])


def _elapsed(delta: timedelta | None) -> str:
    return elapsed_text(delta or timedelta(0))


@functools.cache
def templates() -> jinja2.Environment:
    """The page templates, read once (an environment holds no state of the bot: every
    value a page shows is passed to :meth:`~jinja2.Template.render`)."""
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("deploybot.web", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters.update(
        when=_when,
        clock=_clock,
        shift_hours=_shift_hours,
        elapsed=_elapsed,
        duration=format_duration,
        countdown=describe_countdown,
        deploy_link=deploy_link,
        segment=path_segment,
    )
    return environment


def _render(name: str, *, root: str, today: date, tz: tzinfo, **context: Any) -> str:
    """Template ``name``: ``root`` is the relative path back to ``/``, ``today`` the day
    the navigation's digest link names, ``tz`` the display timezone."""
    return templates().get_template(name).render(root=root, today=today, tz=tz, **context)


# -- / ----------------------------------------------------------------------------------


def index_page(
    plans: Sequence[Plan],
    incidents: Sequence[Incident],
    *,
    now: datetime,
    tz: tzinfo,
    notice_days: int = DEFAULT_NOTICE_DAYS,
    readiness: Callable[[Plan], Readiness] | None = None,
    freezes: Sequence[Freeze] = (),
) -> str:
    """``/``: the running deploys then the upcoming ones (by start time), each with its
    window in ``tz``, countdown, API breaks and readiness (:func:`deploybot.plans.policy.assess`
    with ``notice_days`` and ``drift``, plan id → its latest drift run's state: the
    verdict, and each missing rule with its reason), its name
    linking to its deploy page; then ``incidents`` (the caller passes today's), by number.
    Finished deploys are left out.  An empty part says so in one line.  Above them, the
    ``freezes`` in force now and the next one."""
    shown = running(plans, now) + upcoming(plans, now)
    return _render(
        "index.html",
        root="",
        today=now.astimezone(tz).date(),
        tz=tz,
        now=now,
        deploys=[(plan, _assessor(readiness, notice_days)(plan)) for plan in shown],
        frozen_now=frozen_at(freezes, now),
        next_freeze=next_freeze(freezes, now),
        incidents=sorted(incidents, key=by_number),
    )


# -- /deployments/{id} ----------------------------------------------------------------


def deployment_page(
    plan: Plan,
    incidents: Sequence[Incident],
    *,
    now: datetime,
    tz: tzinfo,
    channel: str | None,
    notice_days: int = DEFAULT_NOTICE_DAYS,
    readiness: Callable[[Plan], Readiness] | None = None,
    freeze: FreezeStanding | None = None,
    drift_run: DriftRun | None = None,
    picture: str = "",
) -> str:
    """``/deployments/{id}``: ``plan``'s window and status (upcoming with its countdown,
    running, finished), what the plan says (owners, teams, playbooks, staging and
    production, meetings, announcements, consumers), its API breaks, every readiness rule
    met or missing with its reason, the roster (firefighting ``channel``, each shift with
    its hours in ``tz`` and whether it covers ``now``, who is on shift now, escalation)
    and ``incidents`` (the caller passes the deploy's), by number; for a plan with probes,
    its latest drift run (``drift_run``, None: never run) with each probe's status and
    differences."""
    if plan.major and plan.leaf:
        kind = "major release, leaf service"
    elif plan.major:
        kind = "major release"
    else:
        kind = "minor release"
    if plan.essential:
        kind += ", essential service"
    return _render(
        "deployment.html",
        root="../",
        today=now.astimezone(tz).date(),
        tz=tz,
        now=now,
        plan=plan,
        kind=kind,
        readiness=_assessor(readiness, notice_days)(plan),
        freeze=freeze or FreezeStanding(plan.id),
        drift_run=drift_run,
        picture=Markup(picture),
        channel=channel,
        on_shift=on_shift(plan, now),
        incidents=sorted(incidents, key=by_number),
    )


def _assessor(
    readiness: Callable[[Plan], Readiness] | None, notice_days: int
) -> Callable[[Plan], Readiness]:
    """``readiness`` (a core's, with the freeze rule), else the policy with ``notice_days``."""
    return readiness or functools.partial(assess, notice_days=notice_days)


# -- /digest/{date} ---------------------------------------------------------------------


def digest_page(digest: Digest, *, tz: tzinfo) -> str:
    """``/digest/{date}``: the digest's header, then per section a table of its numbers
    and one of its open incidents, the totals when there is more than one section, and
    the whole digest as plain text (:func:`deploybot.deployday.digest.full_lines`)."""
    return _render(
        "digest.html",
        root="../",
        today=digest.as_of.astimezone(tz).date(),
        tz=tz,
        digest=digest,
        lines=full_lines(digest, tz),
        numbers=_section_numbers,
    )


def _section_numbers(section: Section) -> list[tuple[str, str]]:
    """The label and value rows of a digest section's table."""
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
    return rows


def _stats(median: timedelta | None, mean: timedelta | None, over: str) -> str:
    if median is None or mean is None:
        return f"no data ({over})"
    return f"median {elapsed_text(median)}, mean {elapsed_text(mean)} ({over})"


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
        readiness=core.readiness,
        freezes=core.freezes.freezes,
    )


def digest_page_of(core: Core, day: date) -> str:
    """``/digest/{date}``: :func:`digest_page` of ``day`` in the configured timezone, as of
    now (a past day is complete, a future one is empty)."""
    tz = core.config.timezone
    return digest_page(digest_for_day(core.store, core.plans, day, tz, as_of=core.now()), tz=tz)


def deployment_page_of(core: Core, plan_id: str) -> str | None:
    """``/deployments/{id}`` as of now: :func:`deployment_page` of the plan in force
    with that id and the newest :data:`MAX_PAGE_INCIDENTS` incidents reported during it;
    None when no plan has that id."""
    plan = core.book.get(plan_id)
    if plan is None:
        return None
    incidents = core.store.list_incidents(
        deploy_id=plan.id, limit=MAX_PAGE_INCIDENTS, newest_first=True
    )
    return deployment_page(
        plan,
        incidents,
        now=core.now(),
        tz=core.config.timezone,
        channel=firefight_channel(plan, core.config),
        notice_days=core.config.notice_days,
        readiness=core.readiness,
        freeze=core.freeze_standing(plan),
        drift_run=latest_run(core.store, plan.id) if plan.probes else None,
        picture=_picture(core, plan),
    )


def _picture(core: Core, plan: Plan) -> str:
    """The deploy's picture (:func:`~deploybot.web.timeline.timeline_svg`) once it has
    begun or has anything recorded; empty for a deploy still to come with nothing yet."""
    now = core.now()
    record = record_of(core, plan)
    if now < plan.when and not (record.events or record.pages or record.incidents):
        return ""
    return timeline_svg(record, core.config.timezone, now)
