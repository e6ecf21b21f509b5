"""Readiness of a plan against the deployment policy (SPEC §2, from the pkgdb2 post-mortem).

:func:`assess` is a pure function of the plan and ``notice_days``; it reads no clock.

Scope
    A plan is *under policy* when it has API breaks or is ``major``, unless it is ``leaf``.
    A plan that is not under policy is *exempt* and gets no checks: a plan that is neither
    major nor breaks an API is exempt as "minor release without API breaks" (checked
    first, since it holds whatever the plan is); otherwise a ``leaf`` plan is exempt as a
    leaf service.

Rules (each gives one :class:`Check`, always all six, in this order; then the freeze rule
when it applies, and ``no-undeclared-drift`` for a plan with ``probes``)
    ``api-break-announcement``  an announcement to ``infrastructure`` with
    ``api_break: true`` dated on or before the deadline (see below);
    ``devel-announcement``  the same to ``devel`` when the plan is ``essential`` — for a
    plan that is not essential this check is *met*, with the reason "not essential: devel
    list not required", so a checklist always has six lines;
    ``meeting``  at least one meeting dated strictly before the deploy date;
    ``staging-call``  ``staging.call_for_testing`` on or before the deadline;
    ``roster-coverage``  the union of the shifts (those with people) covers the whole
    window ``[when, end)`` and every team in ``teams`` has a shift with at least one person;
    ``consumer-contacts``  every consumer has a contact (met when there are no consumers);
    ``no-undeclared-drift``  (only for a plan with ``probes``, after the freeze rule, never
    for an exempt plan) the latest drift run, given
    as a :class:`DriftState`, found no undeclared API break and every probe ran; missing,
    with the endpoints, when it found some, and "not checked yet" when there is no run.

The freeze rule (``freeze``)
    A plan whose window overlaps an infrastructure freeze (:mod:`.freezes`, passed in as a
    :class:`~deploybot.plans.freezes.FreezeStanding`) gets a seventh check, also when it is
    otherwise exempt (a freeze covers every change): met when the plan is
    ``freeze_exempt`` (an outage fix) or has an approved freeze break, missing otherwise.
    An exempt plan missing it is ``NOT READY``.  Out of every freeze there is no such
    check.

Dates
    All date comparisons use the UTC calendar date of ``when`` (plans store ``when`` in
    UTC; announcement, meeting and call-for-testing dates are plain dates).  The deadline
    is that date minus ``notice_days`` days.

Times in reasons
    Roster gaps carry real datetimes (:class:`Span`); :attr:`Check.reason` renders them in
    UTC and :meth:`Check.reason_in` / :func:`format_readiness` in a configured timezone.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo

from deploybot.durations import plural
from deploybot.plans.freezes import FreezeStanding
from deploybot.plans.model import Announcement, Plan

DEFAULT_NOTICE_DAYS = 14

LEAF_EXEMPTION = "exempt: leaf service (policy may be skipped)"
MINOR_EXEMPTION = "exempt: minor release without API breaks"


@dataclass(frozen=True)
class Span:
    """A stretch of time ``[start, end)`` inside a reason; rendered in the reader's zone."""

    start: datetime
    end: datetime
    #: Show the start's date too (``2026-04-07 00:00–2026-04-22 00:00 CEST``).
    dated: bool = False

    def render(self, tz: tzinfo) -> str:
        """``21:00–23:00 UTC``; a date is added to a time on another day than ``start``."""
        start = self.start.astimezone(tz)
        end = self.end.astimezone(tz)
        end_text = end.strftime("%H:%M" if end.date() == start.date() else "%Y-%m-%d %H:%M")
        start_text = start.strftime("%Y-%m-%d %H:%M" if self.dated else "%H:%M")
        return f"{start_text}–{end_text} {start.tzname()}"


@dataclass(frozen=True)
class At:
    """A moment inside a reason; rendered in the reader's zone."""

    moment: datetime

    def render(self, tz: tzinfo) -> str:
        """``2014-05-20 10:00 UTC``."""
        local = self.moment.astimezone(tz)
        return f"{local:%Y-%m-%d %H:%M} {local.tzname()}"


@dataclass(frozen=True)
class DriftState:
    """What the latest drift run of a plan found (:mod:`deploybot.drift.report` makes it)."""

    checked_at: datetime
    #: How many probes the run asked.
    probes: int
    #: The probes (paths) with an undeclared API break.
    undeclared: tuple[str, ...] = ()
    #: The probes (paths) that could not run.
    failed: tuple[str, ...] = ()


@dataclass(frozen=True)
class Check:
    """One policy rule, met or missing, with a one-line reason a person can act on.

    ``key`` is the dotted plan key the rule is about (for ``plan.source.line_of(key)``).
    ``parts`` is the reason as text and :class:`Span` pieces; use :attr:`reason` (UTC) or
    :meth:`reason_in` rather than reading it.
    """

    rule: str
    title: str
    met: bool
    key: str
    parts: tuple[str | Span | At, ...]

    @property
    def reason(self) -> str:
        """The reason with times in UTC."""
        return self.reason_in(UTC)

    def reason_in(self, tz: tzinfo) -> str:
        """The reason with times in ``tz``."""
        return "".join(part if isinstance(part, str) else part.render(tz) for part in self.parts)


@dataclass(frozen=True)
class Readiness:
    """The verdict for one plan: exempt (and why), or the six checks."""

    plan_id: str
    under_policy: bool
    exempt_reason: str | None
    checks: tuple[Check, ...]
    notice_days: int = DEFAULT_NOTICE_DAYS

    @property
    def ready(self) -> bool:
        """Exempt, or every rule met (the freeze rule holds for an exempt plan too)."""
        return all(check.met for check in self.checks)

    @property
    def missing(self) -> tuple[Check, ...]:
        """The checks not met (empty when exempt)."""
        return tuple(check for check in self.checks if not check.met)

    @property
    def met_count(self) -> int:
        """How many of the checks are met."""
        return sum(check.met for check in self.checks)

    @property
    def verdict(self) -> str:
        """``EXEMPT``, ``READY`` or ``NOT READY``: what every view of a plan shows first."""
        if self.ready:
            return "READY" if self.under_policy else "EXEMPT"
        return "NOT READY"

    @property
    def exemption(self) -> str:
        """Why the plan is exempt, without the ``exempt:`` prefix (for an exempt plan)."""
        return (self.exempt_reason or "not under policy").removeprefix("exempt: ")


def assess(
    plan: Plan,
    notice_days: int = DEFAULT_NOTICE_DAYS,
    freeze: FreezeStanding | None = None,
    drift: DriftState | None = None,
) -> Readiness:
    """Check ``plan`` against the policy (and, with ``freeze``, the freeze rule); see the
    module docstring for scope and rules.

    ``drift`` is what the plan's latest drift run found (None: never run); it matters only
    for a plan with probes.
    """
    if notice_days < 0:
        raise ValueError(f"notice_days must not be negative, got {notice_days}")
    frozen = (freeze_check(plan, freeze),) if freeze is not None and freeze.in_freeze else ()
    if not plan.major and not plan.breaks_api:
        return Readiness(plan.id, False, MINOR_EXEMPTION, frozen, notice_days)
    if plan.leaf:
        return Readiness(plan.id, False, LEAF_EXEMPTION, frozen, notice_days)
    deploy_day = plan.when.astimezone(UTC).date()
    deadline = deploy_day - timedelta(days=notice_days)
    checks: tuple[Check, ...] = (
        _announcement_check(plan, "infrastructure", deploy_day, deadline, notice_days),
        _devel_check(plan, deploy_day, deadline, notice_days),
        _meeting_check(plan, deploy_day),
        _staging_check(plan, deploy_day, deadline, notice_days),
        _roster_check(plan),
        _consumers_check(plan),
        *frozen,
    )
    if plan.probes:
        checks += (_drift_check(drift),)
    return Readiness(plan.id, True, None, checks, notice_days)


def format_readiness(readiness: Readiness, tz: tzinfo) -> list[str]:
    """Lines for people: a verdict line, then one ``✔``/``✘`` line per rule.

    >>> format_readiness(Readiness("nuancier-1.3", False, LEAF_EXEMPTION, ()), UTC)
    ['nuancier-1.3: EXEMPT — leaf service (policy may be skipped)']
    """
    if not readiness.under_policy:
        head = f"{readiness.plan_id}: {readiness.verdict} — {readiness.exemption}"
        return [head, *(_check_line(check, tz) for check in readiness.checks)]
    counted = f"{readiness.met_count}/{len(readiness.checks)}"
    lines = [f"{readiness.plan_id}: {readiness.verdict} ({counted})"]
    lines += [_check_line(check, tz) for check in readiness.checks]
    return lines


def _check_line(check: Check, tz: tzinfo) -> str:
    return f"  {'✔' if check.met else '✘'} {check.rule}: {check.reason_in(tz)}"


def freeze_check(plan: Plan, standing: FreezeStanding) -> Check:
    """The ``freeze`` rule of a plan whose window overlaps a freeze (module docstring)."""
    rule, title = "freeze", "an approved freeze break, or exempt as an outage fix"
    spans: list[str | Span] = []
    for index, freeze in enumerate(standing.freezes):
        spans += [
            ", " if index else "",
            f"{freeze.name} (",
            Span(freeze.start, freeze.end, True),
            ")",
        ]
    head: tuple[str | Span, ...] = ("in the ", *spans)
    if plan.freeze_exempt is not None:
        text = f": exempt as an outage fix ({plan.freeze_exempt.reason})"
        return Check(rule, title, True, "freeze_exempt", (*head, text))
    if standing.approved_break is not None:
        who = ", ".join(standing.approvers)
        text = f": freeze break #{standing.approved_break} approved by {who}"
        return Check(rule, title, True, "when", (*head, text))
    if standing.open_break is not None:
        got = len(standing.open_approvers)
        by = f" ({', '.join(standing.open_approvers)})" if got else ""
        text = (
            f": freeze break #{standing.open_break} has {got} of 2 approvals{by}; "
            f"admins approve it with !approve {plan.id}"
        )
        return Check(rule, title, False, "when", (*head, text))
    text = (
        f" without an approved freeze break; request one with !freezebreak {plan.id} REASON "
        "(two admins must !approve it), or move the window"
    )
    return Check(rule, title, False, "when", (*head, text))


# --- the rules ----------------------------------------------------------------------------


def _announcement_check(
    plan: Plan, to: str, deploy_day: date, deadline: date, notice_days: int
) -> Check:
    rule = f"{'api-break' if to == 'infrastructure' else to}-announcement"
    title = f"API-break announcement to the {to} list"
    on_list = [a for a in plan.announcements if a.list == to]
    breaking = sorted((a for a in on_list if a.api_break), key=lambda a: a.date)
    in_time = [a for a in breaking if a.date <= deadline]
    key = _announcement_key(plan, breaking[0] if breaking else None)
    if in_time:
        first = in_time[0].date
        ahead = (deploy_day - first).days
        return Check(
            rule,
            title,
            True,
            key,
            (f"announced to {to} on {first} ({plural(ahead, 'day')} ahead)",),
        )
    due = f"by {deadline} ({plural(notice_days, 'day')} before the deploy)"
    need = f"{due}; send one separate from the outage notice"
    if breaking:
        late = breaking[0].date
        ahead = (deploy_day - late).days
        text = (
            f"the API-break announcement to {to} on {late} is only {plural(ahead, 'day')} ahead; "
            f"it was due {due}"
            if ahead >= 0
            else f"the API-break announcement to {to} on {late} is after the deploy; "
            f"one was needed {need}"
        )
    elif on_list:
        text = (
            f"the announcement to {to} on {on_list[0].date} does not say api_break; "
            f"an API-break announcement was needed {need}"
        )
    else:
        text = f"no API-break announcement to the {to} list {need}"
    return Check(rule, title, False, key, (text,))


def _announcement_key(plan: Plan, announcement: Announcement | None) -> str:
    if announcement is None:
        return "announcements"
    return f"announcements[{plan.announcements.index(announcement)}]"


def _devel_check(plan: Plan, deploy_day: date, deadline: date, notice_days: int) -> Check:
    if not plan.essential:
        return Check(
            "devel-announcement",
            "API-break announcement to the devel list",
            True,
            "essential",
            ("not essential: devel list not required",),
        )
    return _announcement_check(plan, "devel", deploy_day, deadline, notice_days)


def _meeting_check(plan: Plan, deploy_day: date) -> Check:
    rule, title = "meeting", "discussed in a weekly infrastructure meeting"
    before = sorted(d for d in plan.meetings if d < deploy_day)
    if before:
        return Check(
            rule, title, True, "meetings", (f"discussed at the weekly meeting on {before[-1]}",)
        )
    if plan.meetings:
        text = (
            f"no meeting before the deploy day {deploy_day} (listed: "
            f"{', '.join(str(d) for d in sorted(plan.meetings))}); "
            "put it on the agenda of a weekly infrastructure meeting before then"
        )
    else:
        text = (
            "not discussed in any weekly infrastructure meeting; put it on the agenda of "
            f"one before {deploy_day}"
        )
    return Check(rule, title, False, "meetings", (text,))


def _staging_check(plan: Plan, deploy_day: date, deadline: date, notice_days: int) -> Check:
    rule, title = "staging-call", "call for testing in staging"
    key = "staging.call_for_testing"
    called = plan.staging.call_for_testing
    need = f"by {deadline} ({plural(notice_days, 'day')} before the deploy)"
    if called is not None and called <= deadline:
        ahead = (deploy_day - called).days
        text = f"call for testing in staging sent on {called} ({plural(ahead, 'day')} ahead)"
        return Check(rule, title, True, key, (text,))
    if called is None:
        text = f"no call for testing in staging; send one {need}"
        if plan.breaks_api:
            text += ", saying the API breaks"
    else:
        ahead = (deploy_day - called).days
        text = (
            f"the call for testing on {called} is only {plural(ahead, 'day')} ahead; "
            f"it was due {need}"
            if ahead >= 0
            else f"the call for testing on {called} is after the deploy; one was needed {need}"
        )
    return Check(rule, title, False, key, (text,))


def coverage_gaps(
    shifts: Iterable[tuple[datetime, datetime]], start: datetime, end: datetime
) -> tuple[Span, ...]:
    """The parts of ``[start, end)`` covered by none of ``shifts`` (each ``[from, to)``)."""
    gaps: list[Span] = []
    cursor = start
    for shift_start, shift_end in sorted(shifts):
        if shift_end <= cursor:
            continue
        if shift_start >= end:
            break
        if shift_start > cursor:
            gaps.append(Span(cursor, shift_start))
        cursor = max(cursor, shift_end)
        if cursor >= end:
            break
    if cursor < end:
        gaps.append(Span(cursor, end))
    return tuple(gaps)


def _roster_check(plan: Plan) -> Check:
    rule, title = "roster-coverage", "firefighting roster covers the window and the teams"
    staffed = [
        s for s in plan.roster.shifts if s.people and s.start < plan.end and s.end > plan.when
    ]
    gaps = coverage_gaps(((s.start, s.end) for s in staffed), plan.when, plan.end)
    present = {s.team for s in staffed}
    absent = [team for team in plan.teams if team not in present]
    if not gaps and not absent:
        people = len({person for s in staffed for person in s.people})
        parts: tuple[str | Span, ...] = (
            "window ",
            Span(plan.when, plan.end),
            f" covered by {plural(people, 'person', 'people')}",
        )
        if plan.teams:
            parts += (f"; every team present ({', '.join(plan.teams)})",)
        return Check(rule, title, True, "roster.shifts", parts)
    problems: list[str | Span] = []
    if gaps:
        problems.append("nobody on shift ")
        for i, gap in enumerate(gaps):
            if i:
                problems.append(", ")
            problems.append(gap)
    if absent:
        if problems:
            problems.append("; ")
        problems.append(f"no one on the roster for {', '.join(absent)}")
    problems.append("; add shifts to the roster")
    return Check(rule, title, False, "roster.shifts" if gaps else "teams", tuple(problems))


def _consumers_check(plan: Plan) -> Check:
    rule, title = "consumer-contacts", "every consumer has a contact"
    without = [(i, c) for i, c in enumerate(plan.consumers) if not c.contact.strip()]
    if not plan.consumers:
        return Check(rule, title, True, "consumers", ("no consumers listed",))
    if not without:
        n = len(plan.consumers)
        text = "the consumer has a contact" if n == 1 else f"all {n} consumers have a contact"
        return Check(rule, title, True, "consumers", (text,))
    names = ", ".join(c.name for _, c in without)
    return Check(
        rule,
        title,
        False,
        f"consumers[{without[0][0]}].contact",
        (f"no contact for {names}; add who to warn for each",),
    )


def _drift_check(drift: DriftState | None) -> Check:
    rule, title, key = "no-undeclared-drift", "no undeclared drift on staging", "probes"
    if drift is None:
        text = (
            "not checked yet: no drift probe has run (deploybot drift ID or !drift ID; the bot "
            "runs it before each countdown of a day or more)"
        )
        return Check(rule, title, False, key, (text,))
    probed = ("probed ", At(drift.checked_at))
    if drift.undeclared:
        where = ", ".join(drift.undeclared)
        return Check(
            rule,
            title,
            False,
            key,
            (
                f"⚠ UNDECLARED API BREAK on {where} (",
                *probed,
                "); declare it in api_breaks or fix staging",
            ),
        )
    if drift.failed:
        where = ", ".join(drift.failed)
        text = f"not checked: {plural(len(drift.failed), 'probe')} could not run ({where}; "
        return Check(rule, title, False, key, (text, *probed, ")"))
    text = f"no undeclared drift on {plural(drift.probes, 'probe')} ("
    return Check(rule, title, True, key, (text, *probed, ")"))
