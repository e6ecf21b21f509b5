"""The records :class:`~deploybot.store.Store` returns, and how a database row becomes one.

Records are frozen and hold aware UTC datetimes; the ``*_from_row`` functions read the
columns the table mixins select (rows by column name, plain tuples for the lean
:class:`IncidentSummary`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, NamedTuple

from deploybot.store.base import Row, from_db, from_db_or_none

__all__ = [
    "BusHeaders",
    "CountdownClaim",
    "DeployEvent",
    "FreezeApproval",
    "FreezeBreak",
    "Incident",
    "IncidentState",
    "IncidentSummary",
    "Page",
    "RegisteredConsumer",
    "StoredBusMessage",
    "StoredPost",
    "TimelineEntry",
    "TimelineKind",
    "consumer_from_row",
    "incident_from_row",
    "page_from_row",
    "summaries_from_rows",
]

PostCommand = Literal["PRIVMSG", "TOPIC", "JOIN", "PART"]
#: AMQP headers as fedora-messaging writes them: text, integers and booleans.
BusHeaders = dict[str, str | int | bool]


@dataclass(frozen=True)
class StoredPost:
    """A post in the outbox: decided (committed with what caused it), not yet confirmed
    by the server.  ``text`` is the message, the topic or the part reason (empty for a
    JOIN); ``id`` gives the order the posts were decided in."""

    id: int
    queued_at: datetime
    command: PostCommand
    target: str
    text: str
    #: The networks that confirmed it already (the bot runs on several: it stays until
    #: all of them did).
    confirmed_by: frozenset[str] = frozenset()


@dataclass(frozen=True)
class StoredBusMessage:
    """A message in the bus outbox: decided (committed with what caused it), not yet
    confirmed by the broker.  ``routing_key`` is the full topic, ``headers`` the AMQP
    headers, ``body`` the JSON text published; ``id`` gives the order of the decisions,
    ``message_id`` is the AMQP message id (the same on every re-send)."""

    id: int
    queued_at: datetime
    message_id: str
    routing_key: str
    headers: BusHeaders
    body: str


@dataclass(frozen=True)
class QueuedEvent:
    """A webhook event a standby accepted, waiting in the inbox for the active instance:
    ``seq`` gives the order of arrival, ``body`` is the JSON text the client signed,
    ``source`` who sent it (``webhook ADDRESS``)."""

    seq: int
    received_at: datetime
    source: str
    id: str
    topic: str
    body: str


TimelineKind = Literal["reported", "taken", "note", "fixed", "ack"]
IncidentState = Literal["open", "fixed"]


@dataclass(frozen=True)
class TimelineEntry:
    """One event in an incident's life, in the order it was recorded."""

    at: datetime
    nick: str
    kind: TimelineKind
    text: str
    account: str | None = None


@dataclass(frozen=True)
class Incident:
    """An incident as recorded, with its whole timeline.

    ``acknowledged_at``/``acknowledged_by``: the first take, ack, note or fix by someone
    other than the reporter while the incident was open (the reporter's own actions do
    not count).  ``owner``: the last person who took it.
    """

    number: int
    service: str
    deploy_id: str | None
    minutes_into_deploy: int | None
    text: str
    reporter_nick: str
    reporter_account: str | None
    channel: str
    reported_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    owner: str | None
    fixed_at: datetime | None
    fixed_by: str | None
    timeline: tuple[TimelineEntry, ...]
    #: How many entries the whole timeline has, when ``timeline`` is only a part of it
    #: (read with a ``timeline_limit``); None: ``timeline`` is all of it.
    timeline_total: int | None = None

    @property
    def timeline_count(self) -> int:
        """How many entries the whole timeline has."""
        return len(self.timeline) if self.timeline_total is None else self.timeline_total

    @property
    def open(self) -> bool:
        return self.fixed_at is None

    @property
    def time_to_acknowledge(self) -> timedelta | None:
        if self.acknowledged_at is None:
            return None
        return self.acknowledged_at - self.reported_at

    @property
    def time_to_repair(self) -> timedelta | None:
        if self.fixed_at is None:
            return None
        return self.fixed_at - self.reported_at


class IncidentSummary(NamedTuple):
    """The columns of an incident that a digest reads, without its timeline.

    A tuple, so that building one per row stays cheap (a day's digest may read 100,000);
    the field names and types are those of :class:`Incident`.
    """

    number: int
    service: str
    deploy_id: str | None
    text: str
    reporter_nick: str
    owner: str | None
    reported_at: datetime
    acknowledged_at: datetime | None
    fixed_at: datetime | None


@dataclass(frozen=True)
class RegisteredConsumer:
    """Someone who said ``!uses SERVICE [what]``; ``updated_at`` is the latest ``!uses``."""

    service: str
    nick: str
    account: str | None
    what: str | None
    registered_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class CountdownClaim:
    key: str
    claimed_at: datetime
    late: bool
    skipped: bool


@dataclass(frozen=True)
class Page:
    """A page to one nick (a team page is one :class:`Page` per person, ``team`` set).

    ``escalate_at`` None: never escalated.  ``incident``: the incident it pages about;
    acknowledging the page acknowledges the incident too.  ``target_account``: the
    services account the target was logged in to when paged (None: not known then);
    only that account, or an admin, may acknowledge it.  ``acked_by``,
    ``acked_mask``, ``acked_account``: who acknowledged it (nick, ``nick!user@host``,
    account or None).
    """

    number: int
    target_nick: str
    team: str | None
    plan_id: str | None
    incident: int | None
    message: str
    sender_nick: str
    created_at: datetime
    escalate_at: datetime | None
    acked_at: datetime | None
    acked_by: str | None
    escalated_at: datetime | None
    target_account: str | None = None
    acked_mask: str | None = None
    acked_account: str | None = None

    @property
    def pending(self) -> bool:
        """Not acknowledged yet."""
        return self.acked_at is None


# -- rows to records --------------------------------------------------------------------


def incident_from_row(
    row: Row, timeline: tuple[TimelineEntry, ...], total: int | None = None
) -> Incident:
    return Incident(
        number=row["number"],
        service=row["service"],
        deploy_id=row["deploy_id"],
        minutes_into_deploy=row["minutes_into_deploy"],
        text=row["text"],
        reporter_nick=row["reporter_nick"],
        reporter_account=row["reporter_account"],
        channel=row["channel"],
        reported_at=from_db(row["reported_at"]),
        acknowledged_at=from_db_or_none(row["acknowledged_at"]),
        acknowledged_by=row["acknowledged_by"],
        owner=row["owner"],
        fixed_at=from_db_or_none(row["fixed_at"]),
        fixed_by=row["fixed_by"],
        timeline=timeline,
        timeline_total=total,
    )


def summaries_from_rows(rows: Iterable[tuple[Any, ...]]) -> Iterator[IncidentSummary]:
    """Plain tuples of the summary columns, in :class:`IncidentSummary` order."""
    parse = datetime.fromisoformat  # "...Z" gives an aware UTC datetime
    new = tuple.__new__
    for number, service, deploy, text, nick, owner, reported, acked, fixed in rows:
        yield new(
            IncidentSummary,
            (
                number,
                service,
                deploy,
                text,
                nick,
                owner,
                parse(reported),
                None if acked is None else parse(acked),
                None if fixed is None else parse(fixed),
            ),
        )


def consumer_from_row(row: Row) -> RegisteredConsumer:
    return RegisteredConsumer(
        service=row["service"],
        nick=row["nick"],
        account=row["account"],
        what=row["what"],
        registered_at=from_db(row["registered_at"]),
        updated_at=from_db(row["updated_at"]),
    )


def page_from_row(row: Row) -> Page:
    return Page(
        number=row["number"],
        target_nick=row["target_nick"],
        team=row["team"],
        plan_id=row["plan_id"],
        incident=row["incident"],
        message=row["message"],
        sender_nick=row["sender_nick"],
        created_at=from_db(row["created_at"]),
        escalate_at=from_db_or_none(row["escalate_at"]),
        acked_at=from_db_or_none(row["acked_at"]),
        acked_by=row["acked_by"],
        escalated_at=from_db_or_none(row["escalated_at"]),
        target_account=row["target_account"],
        acked_mask=row["acked_mask"],
        acked_account=row["acked_account"],
    )


@dataclass(frozen=True)
class FreezeApproval:
    """One admin's approval of a freeze break; ``person`` is who they count as."""

    person: str
    nick: str
    account: str | None
    mask: str
    at: datetime


@dataclass(frozen=True)
class FreezeBreak:
    """A request to deploy ``plan_id`` during ``freezes`` (their names), and its approvals."""

    number: int
    plan_id: str
    freezes: str
    reason: str
    requester_nick: str
    requester_account: str | None
    requester_mask: str
    requested_at: datetime
    approved_at: datetime | None
    approvals: tuple[FreezeApproval, ...] = ()

    @property
    def approved(self) -> bool:
        return self.approved_at is not None

    @property
    def approvers(self) -> tuple[str, ...]:
        """The approvers' nicks, in the order they approved."""
        return tuple(approval.nick for approval in self.approvals)


@dataclass(frozen=True)
class DeployEvent:
    """Something that happened to a deploy (:mod:`deploybot.store.deployevents`)."""

    at: datetime
    kind: str
    nick: str = ""
    text: str = ""
