"""The bodies of the messages the bot publishes (:mod:`deploybot_messages` has their
schemas), made from what the bot knows when it decides.

Each function returns a :class:`~deploybot.publish.BusMessage` for
:meth:`Core.publish <deploybot.core.Core.publish>`; times are UTC ISO 8601 with ``Z``,
lists are lists (empty, never null), a value that does not exist is null.  Text from
outside (a playbook's user and hosts, an incident's text) goes in as the bot recorded
it: the body is JSON, and the messages' texts clean every value they show.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from deploybot.config import Config
from deploybot.deployday.digest import Digest, Section
from deploybot.deployday.roster import firefight_channel
from deploybot.durations import iso_utc, whole_seconds
from deploybot.plans.model import Plan
from deploybot.publish import INFO, WARNING, BusMessage
from deploybot.store import Incident, Page

__all__ = [
    "deploy_finished",
    "deploy_started",
    "digest_posted",
    "incident_fixed",
    "incident_reported",
    "page_escalated",
]


def _seconds(span: timedelta) -> int:
    """A span as whole seconds, never negative (clocks are not always kind)."""
    return max(0, round(span.total_seconds()))


def _deployment(plan: Plan, config: Config) -> dict[str, Any]:
    return {
        "id": plan.id,
        "service": plan.service,
        "release": plan.release,
        "title": plan.title,
        "start": iso_utc(plan.when),
        "end": iso_utc(plan.end),
        "api_breaks": [
            {"endpoint": b.endpoint, "change": b.change, "migration": b.migration}
            for b in plan.api_breaks
        ],
        "owners": list(plan.owners),
        "firefight_channel": firefight_channel(plan, config),
    }


def deploy_started(
    plan: Plan, config: Config, *, user: str, playbook: str, at: datetime
) -> BusMessage:
    """``deploybot.deploy.start``: ``plan``'s playbook started at ``at`` (by ``user``,
    ``""`` when the message named nobody)."""
    return BusMessage(
        "deploybot.deploy.start",
        {
            "deployment": _deployment(plan, config),
            "playbook": playbook,
            "user": user or None,
            "started_at": iso_utc(at),
        },
    )


def deploy_finished(
    plan: Plan,
    config: Config,
    *,
    user: str,
    playbook: str,
    at: datetime,
    ok: bool,
    has_results: bool,
    failed_hosts: Sequence[str],
) -> BusMessage:
    """``deploybot.deploy.complete``: ``result`` ok, failed (``failed_hosts``) or unknown
    (no results reported); a failure is a WARNING."""
    result = "unknown" if not has_results else "ok" if ok else "failed"
    return BusMessage(
        "deploybot.deploy.complete",
        {
            "deployment": _deployment(plan, config),
            "playbook": playbook,
            "user": user or None,
            "finished_at": iso_utc(at),
            "result": result,
            "failed_hosts": list(failed_hosts),
        },
        WARNING if result == "failed" else INFO,
    )


def _incident(incident: Incident) -> dict[str, Any]:
    return {
        "number": incident.number,
        "service": incident.service,
        "deployment_id": incident.deploy_id,
        "text": incident.text,
        "reporter": incident.reporter_nick,
        "reporter_account": incident.reporter_account,
        "reported_at": iso_utc(incident.reported_at),
    }


def incident_reported(incident: Incident) -> BusMessage:
    """``deploybot.incident.new`` (a WARNING: something broke)."""
    return BusMessage(
        "deploybot.incident.new",
        {
            "incident": {
                **_incident(incident),
                "minutes_into_deploy": incident.minutes_into_deploy,
                "channel": incident.channel,
            }
        },
        WARNING,
    )


def incident_fixed(incident: Incident, *, account: str | None, note: str | None) -> BusMessage:
    """``deploybot.incident.fixed``; ``account`` is the fixer's services account (None:
    not logged in), ``note`` what they said with ``!fixed``."""
    assert incident.fixed_at is not None and incident.fixed_by is not None
    return BusMessage(
        "deploybot.incident.fixed",
        {
            "incident": {
                **_incident(incident),
                "owner": incident.owner,
                "fixed_by": incident.fixed_by,
                "fixed_by_account": account,
                "fixed_at": iso_utc(incident.fixed_at),
                "repair_seconds": _seconds(incident.fixed_at - incident.reported_at),
            },
            "note": note or None,
        },
    )


def page_escalated(page: Page, *, now: datetime, escalated_to: Sequence[str]) -> BusMessage:
    """``deploybot.page.escalated`` (a WARNING): ``page`` was not acknowledged; it was
    repeated and the nicks ``escalated_to`` were paged."""
    return BusMessage(
        "deploybot.page.escalated",
        {
            "page": {
                "number": page.number,
                "target": page.target_nick,
                "target_account": page.target_account,
                "team": page.team,
                "message": page.message,
                "sent_at": iso_utc(page.created_at),
                "deployment_id": page.plan_id,
                "incident": page.incident,
            },
            "escalated_at": iso_utc(now),
            "waited_seconds": _seconds(now - page.created_at),
            "escalated_to": list(escalated_to),
        },
        WARNING,
    )


def _section(section: Section) -> dict[str, Any]:
    return {
        "title": section.title,
        "deployment_id": section.deploy_id,
        "reported": section.reported,
        "fixed": section.fixed,
        "open": len(section.open),
        "median_ack_seconds": whole_seconds(section.median_ack),
        "median_repair_seconds": whole_seconds(section.median_repair),
    }


def digest_posted(digest: Digest) -> BusMessage:
    """``deploybot.digest``: the numbers of the day's digest (per deploy and in all)."""
    return BusMessage(
        "deploybot.digest",
        {
            "date": digest.day.isoformat(),
            "as_of": iso_utc(digest.as_of),
            "complete": digest.complete,
            "sections": [_section(section) for section in digest.sections],
            "totals": _section(digest.totals),
        },
    )
