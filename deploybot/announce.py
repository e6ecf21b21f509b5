"""The announcement e-mails of a plan (``deploybot announce``, SPEC §8).

The post-mortem asks for three separate messages, and this module writes each from the
plan, so that what people read matches what the bot will do on the day:

``call-for-testing``
    to the infrastructure list (and devel for an essential service): test the release in
    staging; when the release breaks the API, the call says so first and lists the breaks
    ("be clear that the new deployment means API breaks in every call for testing").
``api-break``
    the loud, separate notice: what breaks, how to migrate, the known consumers, how to
    register as one (``!uses``), and where to report on deploy day.
``outage``
    Fedora's standard outage notice (to devel-announce and infrastructure), in UTC with
    the ``date -d`` line people use to convert it.

Every value from the plan is put on one line (:func:`~deploybot.lines.one_line`): a plan
value with a line break can neither add a mail header nor a line that looks like one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, tzinfo
from typing import Literal, get_args

from deploybot.deployday.roster import shift_hours
from deploybot.durations import plural
from deploybot.errors import DeploybotError
from deploybot.lines import one_line
from deploybot.plans.model import Plan
from deploybot.texts import when_text

__all__ = ["KINDS", "Email", "Kind", "announcement", "default_kind", "list_address"]

Kind = Literal["call-for-testing", "api-break", "outage"]
KINDS: tuple[Kind, ...] = get_args(Kind)

#: The mailing lists' domain: a list named ``devel`` in a plan is devel@ this.
LIST_DOMAIN = "lists.fedoraproject.org"
ADMIN_CHANNEL_HINT = "#fedora-admin"


class AnnounceError(DeploybotError):
    """The plan cannot make this announcement (e.g. a call for testing without staging)."""


@dataclass(frozen=True)
class Email:
    """One announcement: recipients, subject and body lines (plain text, UTF-8)."""

    to: tuple[str, ...]
    subject: str
    body: tuple[str, ...]

    def as_text(self) -> str:
        """The message as ``To:``/``Subject:`` headers, a blank line and the body."""
        head = [f"To: {', '.join(self.to)}", f"Subject: {self.subject}", ""]
        return "\n".join([*head, *self.body]) + "\n"


def list_address(name: str) -> str:
    """``devel`` → ``devel@lists.fedoraproject.org`` (an address stays as it is)."""
    name = one_line(name)
    return name if "@" in name else f"{name}@{LIST_DOMAIN}"


def default_kind(plan: Plan) -> Kind:
    """``api-break`` for a plan that breaks its API (the notice that must not be missed),
    else ``outage``."""
    return "api-break" if plan.api_breaks else "outage"


def announcement(plan: Plan, kind: Kind, *, tz: tzinfo, firefight_channel: str) -> Email:
    """The ``kind`` announcement of ``plan``; times in ``tz`` (the outage notice: UTC).

    :class:`AnnounceError` when the plan lacks what the announcement needs: an API-break
    notice for a plan without ``api_breaks``, a call for testing without ``staging.url``.
    """
    if kind == "api-break":
        return _api_break(plan, tz, firefight_channel)
    if kind == "call-for-testing":
        return _call_for_testing(plan, tz)
    if kind == "outage":
        return _outage(plan, firefight_channel)
    raise AnnounceError(f"unknown announcement kind {kind!r}; valid: {', '.join(KINDS)}")


# --- the three messages ------------------------------------------------------------------


def _api_break(plan: Plan, tz: tzinfo, channel: str) -> Email:
    if not plan.api_breaks:
        raise AnnounceError(
            f"{plan.id} has no api_breaks: there is no API break to announce "
            "(use --kind outage or call-for-testing)"
        )
    name = _name(plan)
    count = len(plan.api_breaks)
    subject = (
        f"[API BREAK] {name} on {when_text(plan.when, tz)}: "
        f"{plural(count, 'API change')} that break clients"
    )
    body = [
        f"{name}{_title(plan)} goes to production on {when_text(plan.when, tz)}",
        f"(window {_hours(plan)}, until {when_text(plan.end, tz)}).",
        "It BREAKS the API: code that calls the endpoints below must be changed before then.",
        "",
        "What breaks, and how to migrate:",
        "",
        *_break_lines(plan),
        *_staging_lines(plan),
        "",
        *_consumer_lines(plan),
        "",
        *_deploy_day_lines(plan, tz, channel),
        "",
        "This notice is separate from the outage announcement, which follows nearer the day.",
        *_signature(plan),
    ]
    return Email(_lists(plan), subject, tuple(body))


def _call_for_testing(plan: Plan, tz: tzinfo) -> Email:
    if not plan.staging.url:
        raise AnnounceError(f"{plan.id} has no staging.url: a call for testing needs one")
    name = _name(plan)
    warning = "[API BREAK] " if plan.api_breaks else ""
    subject = f"{warning}Call for testing: {name} in staging before {when_text(plan.when, tz)}"
    body = [
        f"{name}{_title(plan)} is in staging: {one_line(plan.staging.url)}",
        f"It goes to production on {when_text(plan.when, tz)} (window {_hours(plan)}).",
        "Please test what you run against staging now, and report problems before that day.",
    ]
    if plan.api_breaks:
        body += [
            "",
            f"⚠ This release BREAKS the API ({plural(len(plan.api_breaks), 'change')}):",
            "",
            *_break_lines(plan),
        ]
    body += ["", *_consumer_lines(plan), *_signature(plan)]
    return Email(_lists(plan), subject, tuple(body))


def _outage(plan: Plan, channel: str) -> Email:
    when = plan.when.astimezone(UTC)
    stamp = f"{when:%Y-%m-%d %H:%M} UTC"
    subject = f"Planned Outage: {one_line(plan.service)} - {stamp}"
    reason = f"{_name(plan)}{_title(plan)}."
    if plan.api_breaks:
        breaks = len(plan.api_breaks)
        reason += (
            f" This release breaks the API ({plural(breaks, 'change')}), announced separately."
        )
    production = f" - {one_line(plan.production.url)}" if plan.production.url else ""
    body = [
        subject,
        "",
        f"There will be an outage starting at {stamp}, which will last approximately "
        f"{_hours(plan)}.",
        "",
        "To convert UTC to your local time, run:",
        "",
        f"date -d '{stamp}'",
        "",
        "Reason for outage:",
        "",
        reason,
        "",
        "Affected Services:",
        "",
        f"{one_line(plan.service)}{production}",
        "",
        f"Contact: {ADMIN_CHANNEL_HINT} on IRC; during the window the firefighting channel"
        f" is {one_line(channel)}.",
        *_signature(plan),
    ]
    to = (list_address("devel-announce"), list_address("infrastructure"))
    return Email(to, subject, tuple(body))


# --- pieces ------------------------------------------------------------------------------


def _name(plan: Plan) -> str:
    return one_line(f"{plan.service} {plan.release}")


def _title(plan: Plan) -> str:
    return f" ({one_line(plan.title)})" if plan.title else ""


def _hours(plan: Plan) -> str:
    """``8 hours``, ``90 minutes``, ``2 days``: the window for a reader."""
    minutes = int(plan.duration.total_seconds() // 60)
    if minutes % (24 * 60) == 0 and minutes >= 24 * 60:
        days = minutes // (24 * 60)
        return plural(days, "day")
    if minutes % 60 == 0:
        hours = minutes // 60
        return plural(hours, "hour")
    return plural(minutes, "minute")


def _lists(plan: Plan) -> tuple[str, ...]:
    """Infrastructure always; devel too for an essential service (policy rule 2)."""
    names = ["infrastructure", *(["devel"] if plan.essential else [])]
    return tuple(list_address(name) for name in names)


def _break_lines(plan: Plan) -> list[str]:
    lines: list[str] = []
    for number, api_break in enumerate(plan.api_breaks, 1):
        lines += [
            f"  {number}. {one_line(api_break.endpoint)}",
            f"     change:    {one_line(api_break.change)}",
            f"     migration: {one_line(api_break.migration) or '(none given: ask the owners)'}",
        ]
    return lines


def _staging_lines(plan: Plan) -> list[str]:
    if not plan.staging.url:
        return []
    since = (
        f" (call for testing since {plan.staging.call_for_testing.isoformat()})"
        if plan.staging.call_for_testing
        else ""
    )
    lines = ["", f"Test against staging now: {one_line(plan.staging.url)}{since}."]
    if plan.production.url:
        lines.append(f"Production: {one_line(plan.production.url)}")
    return lines


def _consumer_lines(plan: Plan) -> list[str]:
    service = one_line(plan.service)
    register = [
        f'If you run anything else that calls it, say "!uses {service} what-you-run"',
        f"in {ADMIN_CHANNEL_HINT} on IRC: you will be paged on deploy day.",
    ]
    if not plan.consumers:
        return ["No consumers of this API are known.", *register]
    lines = ["Known consumers of this API:"]
    for consumer in plan.consumers:
        who = ", ".join(
            part
            for part in (
                one_line(consumer.team),
                one_line(consumer.contact) and f"contact {one_line(consumer.contact)}",
            )
            if part
        )
        lines.append(f"  - {one_line(consumer.name)}" + (f" ({who})" if who else ""))
    return [*lines, *register]


def _deploy_day_lines(plan: Plan, tz: tzinfo, channel: str) -> list[str]:
    service = one_line(plan.service)
    lines = [
        f"On deploy day the firefighting channel is {one_line(channel)}: report what breaks",
        f'there with "!broke {service} what broke".',
    ]
    if plan.roster.shifts:
        lines.append("On the roster:")
        lines += [
            f"  - {one_line(shift.team)}: {one_line(', '.join(shift.people)) or 'nobody'}"
            f" ({shift_hours(shift, tz)})"
            for shift in plan.roster.shifts
        ]
    if plan.teams:
        lines.append(f"Teams asked to be ready: {one_line(', '.join(plan.teams))}.")
    return lines


def _signature(plan: Plan) -> list[str]:
    if not plan.owners:
        return []
    return ["", "-- ", f"{one_line(', '.join(plan.owners))}, for {one_line(plan.service)}"]
