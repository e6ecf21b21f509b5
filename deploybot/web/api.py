"""The HTTP API's documents (SPEC §6), built from the core as plain JSON-ready data.

This module is the contract of ``/api/v1``; the HTTP adapter (``deploybot_plugins.web``)
only routes requests here and serialises what comes back.  It imports no HTTP library.

Rules every document follows (the pkgdb2 post-mortem was about an API that returned
``null`` instead of ``[]``):

* every key listed below is always present; a list is always a list (``[]`` when
  empty, never ``null``); ``null`` only means "this value does not exist" (no owner
  yet, not fixed yet, no staging URL given);
* times are UTC ISO 8601 at whole seconds with ``Z`` (``2026-12-15T13:00:00Z``); plain
  dates are ``YYYY-MM-DD``; durations are whole seconds in keys ending ``_seconds``;
* adding a key is a compatible change; removing or renaming one, or changing its type,
  needs a new version (``/api/v2``).

Version 1 shapes
    ``GET /api/v1/`` → ``{"version": 1, "routes": [{"method", "path", "schema"}],
    "schemas": {name: path}}`` (:func:`index_document`): every route with the path of
    the JSON Schema of its answer, and every schema by name.  The schemas are the files
    of ``docs/api/`` (shipped in the package as ``deploybot/web/schemas/``), served at
    ``GET /api/v1/schemas/{name}.schema.json`` (:func:`schema_bytes`); refs between them
    are relative, so a client resolves them against the path it fetched.  Each schema
    lists every key of its shape as required and allows no other: a change of shape is a
    change of its schema, in the same commit.

    ``GET /api/v1/deployments`` → ``{"as_of": time, "deployments": [DEPLOYMENT…]}``, by
    start time then id, every plan in force (past, running and upcoming).

    ``GET /api/v1/deployments/{id}`` → ``{"as_of": time, "deployment": DEPLOYMENT}``.

    ``GET /api/v1/deployments/{id}/drift`` → ``{"as_of": time, "deployment": id, "probes":
    [path], "run": RUN | null}``: the latest drift run (:meth:`DriftRun.to_json
    <deploybot.drift.report.DriftRun.to_json>`: time, verdict, per probe its status,
    statuses, error and differences, and what became of each declared break).

    DEPLOYMENT::

        {"id", "service", "release", "title": str,
         "when", "end": time, "duration_seconds": int,
         "status": "upcoming" | "running" | "finished",
         "major", "leaf", "essential", "breaks_api": bool,
         "owners", "playbooks", "teams": [str], "meetings": [date],
         "staging": {"url": str | null, "call_for_testing": date | null},
         "production": {"url": str | null},
         "api_breaks": [{"endpoint", "change": str, "migration": str | null}],
         "consumers": [{"name": str, "team": str | null, "contact": str | null}],
         "announcements": [{"list": str, "date": date, "api_break": bool}],
         "roster": {"channel": str | null,
                    "shifts": [{"team": str, "people": [str], "start", "end": time}],
                    "escalation": [str]},
         "readiness": {"under_policy", "ready": bool, "exempt_reason": str | null,
                       "notice_days": int,
                       "checks": [{"rule", "title": str, "met": bool, "reason": str}]},
         "freeze": FREEZE_STANDING}
    FREEZE_STANDING::
        {"in_freeze", "cleared": bool, "freezes": [FREEZE],
         "exempt_reason": str | null,
         "freeze_break": {"number": int, "state": "open" | "approved", "reason": str,
                          "requested_by": str, "requested_at": time,
                          "approved_at": time | null,
                          "approvals": [{"nick": str, "account": str | null, "at": time}]}
                         | null}
    ``GET /api/v1/freezes`` → ``{"as_of": time, "frozen_now": bool, "freezes": [FREEZE…],
    "freeze_breaks": [FREEZE_BREAK…]}``: every freeze in force (file and calendar), by
    start; the freeze breaks, newest first (at most :data:`MAX_FREEZE_BREAKS`; the
    ``freeze_break`` shape above plus ``"plan_id"`` and ``"freezes": str``).  FREEZE::
        {"name": str, "start", "end": time, "origin": str, "now": bool,
         "deployments": [str]}
    (``origin``: ``FILE:LINE`` or ``calendar``; ``deployments``: the ids of the plans in
    force whose window overlaps it.)

    ``roster.channel`` is the firefighting channel
    (:func:`~deploybot.deployday.roster.firefight_channel`: the plan's own, else the
    config's pattern; ``null`` if the pattern makes no channel name of this plan).  ``checks`` is
    empty for an exempt plan, else the six rules of SPEC §2 in order; a plan whose window
    overlaps a freeze has the rule ``freeze`` last (exempt plans too).

    ``GET /api/v1/incidents?since=&service=&state=`` →
    ``{"query": {"since": time | null, "service": str | null, "state": str | null},
    "incidents": [INCIDENT…], "truncated": bool}``, by number (oldest first), at most
    :data:`MAX_INCIDENTS`; ``truncated`` says more matched (ask again with ``since`` set to
    the last one's ``reported_at``; drop the numbers you already have).  ``since`` is a
    date (``2026-12-15``: midnight in the configured timezone) or a date and time with
    ``Z`` or an offset, and bounds ``reported_at`` from below (inclusive); ``service`` is
    matched ASCII-case-insensitively; ``state`` is one of :data:`INCIDENT_STATES`.  Any
    other query key, a key given twice or a bad value is a 400 ``bad-query``.

    ``GET /api/v1/incidents/{n}?timeline_offset=&timeline_limit=`` → ``{"incident":
    INCIDENT, "timeline_page": {"offset", "limit", "total": int, "next": str | null}}``:
    the incident with the part of its timeline from position ``timeline_offset``
    (default 0, the first entry), at most ``timeline_limit`` entries (default
    :data:`TIMELINE_PAGE`, 1 to :data:`MAX_TIMELINE_PAGE`); ``next`` is the path of the
    following page, ``null`` on the last.  In ``/api/v1/incidents`` each INCIDENT holds
    the first :data:`TIMELINE_PAGE` entries of its timeline.  In both,
    ``timeline_total`` is how many entries the whole timeline has and
    ``timeline_truncated`` whether ``timeline`` holds fewer.  INCIDENT::

        {"number": int, "service", "text", "channel", "reporter": str,
         "reporter_account": str | null, "state": "open" | "fixed",
         "deploy_id": str | null, "minutes_into_deploy": int | null,
         "reported_at": time, "acknowledged_at": time | null, "acknowledged_by": str | null,
         "owner": str | null, "fixed_at": time | null, "fixed_by": str | null,
         "time_to_acknowledge_seconds": int | null, "time_to_repair_seconds": int | null,
         "timeline": [{"at": time, "nick": str, "account": str | null,
                       "kind": "reported" | "taken" | "note" | "fixed" | "ack",
                       "text": str}],
         "timeline_total": int, "timeline_truncated": bool}

    ``GET /api/v1/digests/{date}`` → ``{"digest": …}``, the day's digest as
    :func:`deploybot.deployday.digest.digest_to_dict` documents it (as of now for today, complete
    for a past day).

    ``POST /api/v1/events`` → 202 ``{"accepted": true, "id": str, "topic": str,
    "duplicate": false, "facts": [str], "queued": false}``: the event's id, and the names
    of the facts it meant (``DeployStarted``, ``DeployFinished``, ``UnplannedDeploy``,
    ``OpenFirefighting``; ``[]`` for traffic about nothing planned); 200 with
    ``"duplicate": true`` and ``"facts": []`` for a repeat of an id already acted on
    (within a day, across restarts: nothing is done again).  A standby of an
    active/standby pair answers 202 ``"queued": true`` with ``"facts": []``: the event is
    stored in the webhook's inbox, and the active instance acts on it
    (:mod:`deploybot.bus.inbox`); 200 ``"duplicate": true`` when its id is queued already
    or was acted on.

    ``GET /healthz`` → ``{"ok": bool, "irc_connected": bool | null, "irc": {"connected":
    bool, "why": str | null, "down_seconds": int, "login_failures": int} | null, "plans":
    int, "store_error": str | null, "as_of": time}`` (``irc_connected`` and ``irc`` null
    when unknown; ``why`` says why the bot is not on IRC, null while it is; ``networks``
    the same for every chat network the bot runs on, by name — ``{"irc": {…}, "matrix":
    {…}}``, ``{}`` when unknown; ``role`` ``"active"`` or ``"standby"`` and ``instance``
    this instance's id, ``host:pid`` (null when unknown); ``ha`` the pair's state,
    ``{"backend": "postgresql" | "sqlite", "active": {"instance": str, "since": time,
    "epoch": int | null} | null, "standbys_last_minute": int}`` (:func:`ha_document`);
    ``ok`` false,
    with status 503, when the store does not answer, its write lock cannot be taken now,
    or its last write failed: ``store_error`` says which — IRC being away does not make it
    false: the bot reconnects).

Errors
    Every error is ``{"error": {"code": str, "message": str}}`` (:func:`error_document`)
    with its HTTP status: 400 ``bad-query`` (query string), 400 ``bad-request`` (a
    malformed path value: an incident number that is not a number, a date that is not
    ``YYYY-MM-DD``), 404 ``not-found``, 405 ``method-not-allowed``, 413 ``too-large``,
    500 ``internal-error`` (with a reference to the log, never a traceback); for the
    webhook 403 ``webhook-disabled`` (no ``webhook_secret``), 401 ``missing-signature``,
    ``missing-timestamp``, ``bad-timestamp``, ``stale-timestamp`` and ``bad-signature``,
    400 with the :class:`~deploybot.bus.events.BadMessage` kind as code (``not-json``,
    ``unknown-field``…) and 503 ``store-unavailable`` (with ``Retry-After``).
    :class:`ApiError` carries (status, code, message, headers); messages never contain a
    control character.

Webhook signatures (:func:`signature`, :func:`signature_ok`), as Stripe and Slack sign
    ``X-Deploybot-Timestamp: <unix seconds>`` and ``X-Deploybot-Signature: sha256=<hex>``
    where ``<hex>`` is the HMAC-SHA256, keyed with ``webhook_secret`` (UTF-8), of the
    timestamp, a dot and the raw request body (``b"1765803000." + body``), compared in
    constant time.  Signing the time bounds how long a captured request can be replayed
    (:data:`MAX_SKEW`); the required event ``id``, remembered a day, stops a replay
    within that time.

Webhook acceptance (:func:`webhook_precheck`, then :func:`webhook_document`)
    Off (403 ``webhook-disabled``) while ``webhook_secret`` is empty; no signature header
    is 401 ``missing-signature``, no timestamp header 401 ``missing-timestamp``, one that
    is not whole unix seconds 401 ``bad-timestamp``, one more than :data:`MAX_SKEW` from
    the bot's clock (either way) 401 ``stale-timestamp``; a declared length over
    :data:`MAX_BODY` is 413 ``too-large`` — all before the body is read.  Then the
    signature is checked (401 ``bad-signature``) before anything parses the body;
    :func:`deploybot.bus.events.from_webhook` decodes it (an ``id`` is required) and the
    application's one :class:`~deploybot.bus.reactor.BusReactor` acts on it (202; 200 for
    a duplicate), or rejects it (counted and logged like a bad bus message; 400, or 413
    for ``too-large``, with the :class:`~deploybot.bus.events.BadMessage` kind as code).
    When an action could not be recorded (the database is locked or cannot be written),
    the answer is 503 ``store-unavailable`` with ``Retry-After``: nothing of the event was
    remembered, so the sender's retry does all of it.

Who may ask (:func:`check_host`, :func:`check_read_token`), before any route
    Every request's ``Host`` must name the server: an IP address (v4 or v6), ``localhost``,
    ``web_host`` or one of ``web_public_names`` (any case, any port, a trailing dot
    ignored); anything else is 421 ``misdirected-request``.  A page of another site that
    rebinds its own name to 127.0.0.1 (DNS rebinding) sends its own name as ``Host``, so
    it cannot read a server on the loopback address.  A request without ``Host`` (HTTP/1.0;
    no browser sends one) is let through.  With ``web_read_token_file`` set, every route
    but ``/healthz`` (a probe reveals nothing but whether the bot is up) and ``POST
    /api/v1/events`` (signed) asks for ``Authorization: Bearer <token>``, compared in
    constant time: 401 ``missing-token`` or ``bad-token`` with ``WWW-Authenticate:
    Bearer``.  :func:`load_read_token` reads the file (32 characters or more).

``/metrics`` is :mod:`deploybot.web.metrics`'s.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from importlib import resources
from typing import Any, get_args

from deploybot.bus.events import BadMessage, BusEvent, from_webhook
from deploybot.bus.reactor import SEEN_IDS_KEPT, BusReactor
from deploybot.config import Config, read_token_file
from deploybot.core import Core
from deploybot.deployday.digest import digest_for_day, digest_to_dict
from deploybot.deployday.roster import firefight_channel
from deploybot.drift.runs import latest_run
from deploybot.durations import DAY, FIRST_YEAR, LAST_YEAR, iso_utc, parse_day, whole_seconds
from deploybot.errors import DateError, DeploybotError
from deploybot.health import HaStatus, IrcStatus, Role
from deploybot.lines import one_line
from deploybot.plans.freezes import Freeze
from deploybot.plans.model import Plan
from deploybot.store import (
    FreezeBreak,
    Incident,
    IncidentState,
    StoreUnavailableError,
    TimelineEntry,
    UnknownIncidentError,
)

__all__ = [
    "API_VERSION",
    "INCIDENT_STATES",
    "MAX_BODY",
    "MAX_INCIDENTS",
    "MAX_SKEW",
    "ROUTES",
    "SCHEMAS",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "ApiError",
    "IncidentQuery",
    "SignedRequest",
    "check_host",
    "check_read_token",
    "deployment_document",
    "deployments_document",
    "digest_document",
    "drift_document",
    "error_document",
    "freezes_document",
    "health_document",
    "incident_document",
    "incident_to_dict",
    "incidents_document",
    "index_document",
    "load_read_token",
    "parse_incident_query",
    "path_day",
    "plan_to_dict",
    "schema_bytes",
    "signature",
    "signature_ok",
    "webhook_document",
    "webhook_precheck",
]

log = logging.getLogger(__name__)

API_VERSION = 1
#: The incident states a ``state=`` query may name (those of :mod:`deploybot.store`).
INCIDENT_STATES: tuple[str, ...] = get_args(IncidentState)
#: At most this many incidents in one ``/api/v1/incidents`` answer.
MAX_INCIDENTS = 1000
#: Largest webhook body accepted (the API takes no other body).
MAX_BODY = 1_000_000
SIGNATURE_HEADER = "X-Deploybot-Signature"
SIGNATURE_PREFIX = "sha256="
TIMESTAMP_HEADER = "X-Deploybot-Timestamp"
#: A webhook request signed further than this from the bot's clock is refused.
MAX_SKEW = timedelta(minutes=5)
#: Seconds a sender is asked to wait before sending again after a 503.
RETRY_AFTER_SECONDS = 5
_UNIX_SECONDS = re.compile(r"[0-9]{1,12}")

#: Timeline entries of each incident in ``/api/v1/incidents``, and the default
#: ``timeline_limit`` of ``/api/v1/incidents/{n}``.
TIMELINE_PAGE = 100
#: The largest ``timeline_limit``.
MAX_TIMELINE_PAGE = 1000

_INCIDENT_QUERY_KEYS = ("since", "service", "state")
_TIMELINE_QUERY_KEYS = ("timeline_offset", "timeline_limit")
_NUMBER = re.compile(r"[0-9]{1,18}")
_SHOWN = 60
_MAX_SERVICE = 100


class ApiError(DeploybotError):
    """An expected failure of a request: HTTP ``status``, a stable ``code`` and a message
    for people (one line)."""

    def __init__(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        self.status = status
        self.code = code
        self.message = one_line(message)
        #: HTTP headers the answer carries (e.g. ``Retry-After``).
        self.headers = dict(headers or {})
        super().__init__(self.message)

    def document(self) -> dict[str, Any]:
        return error_document(self.code, self.message)


def error_document(code: str, message: str) -> dict[str, Any]:
    """``{"error": {"code": code, "message": message}}``."""
    return {"error": {"code": code, "message": one_line(message)}}


def _shown(value: str) -> str:
    """A value from a request, for an error message: quoted, one line, shortened."""
    text = repr(value)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "…"


# -- the index and the schemas ----------------------------------------------------------

#: The response shapes, each with its JSON Schema file ``{name}.schema.json``;
#: ``definitions`` holds the pieces the others refer to.
SCHEMAS: tuple[str, ...] = (
    "index",
    "deployments",
    "deployment",
    "incidents",
    "incident",
    "digest",
    "freezes",
    "drift",
    "event-accepted",
    "health",
    "error",
    "definitions",
)
#: Every JSON route: (method, path, the schema of its answer); errors are ``error``.
ROUTES: tuple[tuple[str, str, str], ...] = (
    ("GET", "/api/v1/", "index"),
    ("GET", "/api/v1/deployments", "deployments"),
    ("GET", "/api/v1/deployments/{id}", "deployment"),
    ("GET", "/api/v1/deployments/{id}/drift", "drift"),
    ("GET", "/api/v1/incidents", "incidents"),
    ("GET", "/api/v1/incidents/{n}", "incident"),
    ("GET", "/api/v1/digests/{date}", "digest"),
    ("GET", "/api/v1/freezes", "freezes"),
    ("POST", "/api/v1/events", "event-accepted"),
    ("GET", "/healthz", "health"),
)
SCHEMA_PATH = "/api/v1/schemas/{name}.schema.json"
SCHEMA_TYPE = "application/schema+json"


def index_document(query: Iterable[tuple[str, str]] = ()) -> dict[str, Any]:
    """``GET /api/v1/``: each route with the path of its answer's schema, every schema."""
    _no_query(query)
    return {
        "version": API_VERSION,
        "routes": [
            {"method": method, "path": path, "schema": SCHEMA_PATH.format(name=name)}
            for method, path, name in ROUTES
        ],
        "schemas": {name: SCHEMA_PATH.format(name=name) for name in SCHEMAS},
    }


def schema_bytes(file_name: str) -> bytes:
    """The schema file ``file_name`` (``deployments.schema.json``) as shipped; 404
    ``not-found`` for a name not in :data:`SCHEMAS` (nothing else is ever read)."""
    name = file_name.removesuffix(".schema.json")
    if name not in SCHEMAS or file_name != f"{name}.schema.json":
        raise ApiError(
            404,
            "not-found",
            f"no schema {_shown(file_name)}; the schemas are listed at /api/v1/",
        )
    return resources.files(__package__).joinpath("schemas", file_name).read_bytes()


# -- values -------------------------------------------------------------------------------


def _iso_or_none(moment: datetime | None) -> str | None:
    return None if moment is None else iso_utc(moment)


def _text_or_none(text: str | None) -> str | None:
    return text if text else None


# -- deployments ------------------------------------------------------------------------


def _status(plan: Plan, now: datetime) -> str:
    if now < plan.when:
        return "upcoming"
    return "running" if now < plan.end else "finished"


def plan_to_dict(plan: Plan, core: Core, now: datetime) -> dict[str, Any]:
    """One DEPLOYMENT (see the module documentation)."""
    readiness = core.readiness(plan)
    return {
        "id": plan.id,
        "service": plan.service,
        "release": plan.release,
        "title": plan.title,
        "when": iso_utc(plan.when),
        "end": iso_utc(plan.end),
        "duration_seconds": whole_seconds(plan.duration),
        "status": _status(plan, now),
        "major": plan.major,
        "leaf": plan.leaf,
        "essential": plan.essential,
        "breaks_api": plan.breaks_api,
        "owners": list(plan.owners),
        "playbooks": list(plan.playbooks),
        "teams": list(plan.teams),
        "meetings": [day.isoformat() for day in plan.meetings],
        "staging": {
            "url": _text_or_none(plan.staging.url),
            "call_for_testing": None
            if plan.staging.call_for_testing is None
            else plan.staging.call_for_testing.isoformat(),
        },
        "production": {"url": _text_or_none(plan.production.url)},
        "api_breaks": [
            {
                "endpoint": item.endpoint,
                "change": item.change,
                "migration": _text_or_none(item.migration),
            }
            for item in plan.api_breaks
        ],
        "consumers": [
            {
                "name": item.name,
                "team": _text_or_none(item.team),
                "contact": _text_or_none(item.contact),
            }
            for item in plan.consumers
        ],
        "announcements": [
            {"list": item.list, "date": item.date.isoformat(), "api_break": item.api_break}
            for item in plan.announcements
        ],
        "roster": {
            "channel": firefight_channel(plan, core.config),
            "shifts": [
                {
                    "team": shift.team,
                    "people": list(shift.people),
                    "start": iso_utc(shift.start),
                    "end": iso_utc(shift.end),
                }
                for shift in plan.roster.shifts
            ],
            "escalation": list(plan.roster.escalation),
        },
        "freeze": standing_to_dict(core, plan, now),
        "readiness": {
            "under_policy": readiness.under_policy,
            "ready": readiness.ready,
            "exempt_reason": readiness.exempt_reason,
            "notice_days": readiness.notice_days,
            "checks": [
                {"rule": check.rule, "title": check.title, "met": check.met, "reason": check.reason}
                for check in readiness.checks
            ],
        },
    }


#: ``/api/v1/freezes`` lists at most this many freeze breaks.
MAX_FREEZE_BREAKS = 200


def freeze_to_dict(freeze: Freeze, plans: Sequence[Plan], now: datetime) -> dict[str, Any]:
    """One FREEZE (see the module documentation)."""
    return {
        "name": freeze.name,
        "start": iso_utc(freeze.start),
        "end": iso_utc(freeze.end),
        "origin": freeze.origin,
        "now": freeze.covers(now),
        "deployments": [plan.id for plan in plans if freeze.overlaps(plan.when, plan.end)],
    }


def freeze_break_to_dict(item: FreezeBreak) -> dict[str, Any]:
    """A FREEZE_BREAK (see the module documentation)."""
    return {
        "number": item.number,
        "plan_id": item.plan_id,
        "freezes": item.freezes,
        "state": "approved" if item.approved else "open",
        "reason": item.reason,
        "requested_by": item.requester_nick,
        "requested_at": iso_utc(item.requested_at),
        "approved_at": None if item.approved_at is None else iso_utc(item.approved_at),
        "approvals": [
            {"nick": a.nick, "account": a.account, "at": iso_utc(a.at)} for a in item.approvals
        ],
    }


def standing_to_dict(core: Core, plan: Plan, now: datetime) -> dict[str, Any]:
    """A deployment's FREEZE_STANDING (see the module documentation)."""
    standing = core.freeze_standing(plan)
    found = core.store.freeze_break_for(plan.id) if standing.in_freeze else None
    return {
        "in_freeze": standing.in_freeze,
        "cleared": standing.cleared,
        "freezes": [freeze_to_dict(f, core.plans, now) for f in standing.freezes],
        "exempt_reason": standing.exempt_reason,
        "freeze_break": None if found is None else freeze_break_to_dict(found),
    }


def freezes_document(core: Core, query: Iterable[tuple[str, str]] = ()) -> dict[str, Any]:
    """``GET /api/v1/freezes``: the freezes in force and the freeze breaks."""
    _no_query(query)
    now = core.now()
    freezes = core.freezes.freezes
    return {
        "as_of": iso_utc(now),
        "frozen_now": any(freeze.covers(now) for freeze in freezes),
        "freezes": [freeze_to_dict(freeze, core.plans, now) for freeze in freezes],
        "freeze_breaks": [
            freeze_break_to_dict(item) for item in core.store.freeze_breaks(limit=MAX_FREEZE_BREAKS)
        ],
    }


def _no_query(query: Iterable[tuple[str, str]]) -> None:
    keys = sorted({key for key, _ in query})
    if keys:
        raise ApiError(
            400, "bad-query", f"unknown query key(s) {', '.join(map(_shown, keys))}: none taken"
        )


def deployments_document(core: Core, query: Iterable[tuple[str, str]] = ()) -> dict[str, Any]:
    """``GET /api/v1/deployments``: every plan in force, by start time then id."""
    _no_query(query)
    now = core.now()
    return {"as_of": iso_utc(now), "deployments": [plan_to_dict(p, core, now) for p in core.plans]}


def deployment_document(
    core: Core, plan_id: str, query: Iterable[tuple[str, str]] = ()
) -> dict[str, Any]:
    """``GET /api/v1/deployments/{id}``; 404 ``not-found`` for an unknown id."""
    _no_query(query)
    plan = core.book.get(plan_id)
    if plan is None:
        raise ApiError(404, "not-found", f"no deployment {_shown(plan_id)}")
    now = core.now()
    return {"as_of": iso_utc(now), "deployment": plan_to_dict(plan, core, now)}


def drift_document(
    core: Core, plan_id: str, query: Iterable[tuple[str, str]] = ()
) -> dict[str, Any]:
    """``GET /api/v1/deployments/{id}/drift``: the plan's probes and its latest drift run
    (``null`` when none has run); 404 ``not-found`` for an unknown id."""
    _no_query(query)
    plan = core.book.get(plan_id)
    if plan is None:
        raise ApiError(404, "not-found", f"no deployment {_shown(plan_id)}")
    run = latest_run(core.store, plan.id)
    return {
        "as_of": iso_utc(core.now()),
        "deployment": plan.id,
        "probes": [probe.path for probe in plan.probes],
        "run": None if run is None else run.to_json(),
    }


# -- incidents --------------------------------------------------------------------------


@dataclass(frozen=True)
class IncidentQuery:
    """A validated ``/api/v1/incidents`` query; None: not filtered on."""

    since: datetime | None = None
    service: str | None = None
    state: IncidentState | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "since": _iso_or_none(self.since),
            "service": self.service,
            "state": self.state,
        }


def _single(query: Sequence[tuple[str, str]], allowed: Sequence[str]) -> dict[str, str]:
    """The query as a dict; 400 for an unknown or repeated key."""
    values: dict[str, str] = {}
    for key, value in query:
        if key not in allowed:
            raise ApiError(
                400,
                "bad-query",
                f"unknown query key {_shown(key)}; valid keys: {', '.join(allowed)}",
            )
        if key in values:
            raise ApiError(400, "bad-query", f"{key} is given more than once")
        values[key] = value
    return values


def _parse_since(text: str, core: Core) -> datetime:
    value = text.strip()
    if DAY.fullmatch(value):
        day = _parse_date(value, f"since={_shown(text)}", "bad-query")
        return datetime.combine(day, time(), tzinfo=core.config.timezone).astimezone(UTC)
    if re.search(r"T[0-9:.]+ [0-9]{2}:?[0-9]{2}$", value):
        raise ApiError(
            400,
            "bad-query",
            f"since={_shown(text)}: a '+' in a query string must be written %2B (or use Z for UTC)",
        )
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        moment = None
    if moment is None or not DAY.match(value):
        raise ApiError(
            400,
            "bad-query",
            f"since={_shown(text)} is not a date (YYYY-MM-DD) or an ISO 8601 date and time "
            "such as 2026-12-15T13:00:00Z",
        )
    if moment.tzinfo is None:
        raise ApiError(
            400,
            "bad-query",
            f"since={_shown(text)} has no UTC offset: add Z or an offset such as +02:00",
        )
    if not FIRST_YEAR <= moment.year <= LAST_YEAR:
        raise ApiError(400, "bad-query", f"since={_shown(text)} is out of range")
    return moment.astimezone(UTC)


def _parse_date(text: str, label: str, code: str) -> date:
    """:func:`~deploybot.durations.parse_day`, its error as a 400 ``code``."""
    try:
        return parse_day(text, label)
    except DateError as error:
        raise ApiError(400, code, str(error)) from None


def parse_incident_query(core: Core, query: Sequence[tuple[str, str]]) -> IncidentQuery:
    """Validate ``since``, ``service`` and ``state`` (see the module documentation)."""
    values = _single(query, _INCIDENT_QUERY_KEYS)
    since = _parse_since(values["since"], core) if "since" in values else None
    service: str | None = None
    if "service" in values:
        service = values["service"].strip()
        if not service or len(service) > _MAX_SERVICE or one_line(service) != service:
            raise ApiError(
                400,
                "bad-query",
                f"service={_shown(values['service'])} is not a service name "
                f"(1 to {_MAX_SERVICE} characters, no control characters)",
            )
    state: IncidentState | None = None
    if "state" in values:
        wanted = values["state"].strip()
        for known in get_args(IncidentState):
            if wanted == known:
                state = known
        if state is None:
            raise ApiError(
                400,
                "bad-query",
                f"state={_shown(values['state'])}: expected one of {', '.join(INCIDENT_STATES)}",
            )
    return IncidentQuery(since=since, service=service, state=state)


def _entry_dict(entry: TimelineEntry) -> dict[str, Any]:
    return {
        "at": iso_utc(entry.at),
        "nick": entry.nick,
        "account": entry.account,
        "kind": entry.kind,
        "text": entry.text,
    }


def incident_to_dict(incident: Incident) -> dict[str, Any]:
    """One INCIDENT (see the module documentation)."""
    return {
        "number": incident.number,
        "service": incident.service,
        "text": incident.text,
        "channel": incident.channel,
        "reporter": incident.reporter_nick,
        "reporter_account": incident.reporter_account,
        "state": "open" if incident.open else "fixed",
        "deploy_id": incident.deploy_id,
        "minutes_into_deploy": incident.minutes_into_deploy,
        "reported_at": iso_utc(incident.reported_at),
        "acknowledged_at": _iso_or_none(incident.acknowledged_at),
        "acknowledged_by": incident.acknowledged_by,
        "owner": incident.owner,
        "fixed_at": _iso_or_none(incident.fixed_at),
        "fixed_by": incident.fixed_by,
        "time_to_acknowledge_seconds": whole_seconds(incident.time_to_acknowledge),
        "time_to_repair_seconds": whole_seconds(incident.time_to_repair),
        "timeline": [_entry_dict(entry) for entry in incident.timeline],
        "timeline_total": incident.timeline_count,
        "timeline_truncated": len(incident.timeline) < incident.timeline_count,
    }


def incidents_document(core: Core, query: Sequence[tuple[str, str]] = ()) -> dict[str, Any]:
    """``GET /api/v1/incidents``; 400 ``bad-query`` for a bad query."""
    wanted = parse_incident_query(core, query)
    found = core.store.list_incidents(
        state=wanted.state,
        service=wanted.service,
        since=wanted.since,
        limit=MAX_INCIDENTS + 1,
        timeline_limit=TIMELINE_PAGE,
    )
    return {
        "query": wanted.to_dict(),
        "incidents": [incident_to_dict(incident) for incident in found[:MAX_INCIDENTS]],
        "truncated": len(found) > MAX_INCIDENTS,
    }


def incident_document(
    core: Core, number: str, query: Sequence[tuple[str, str]] = ()
) -> dict[str, Any]:
    """``GET /api/v1/incidents/{n}?timeline_offset=&timeline_limit=``: 400 when ``n`` is
    not a number or the query is bad, 404 when unknown; one page of the timeline."""
    values = _single(query, _TIMELINE_QUERY_KEYS)
    offset = _whole_query(values, "timeline_offset", 0, 0, 2**62)
    limit = _whole_query(values, "timeline_limit", TIMELINE_PAGE, 1, MAX_TIMELINE_PAGE)
    if not _NUMBER.fullmatch(number):
        raise ApiError(400, "bad-request", f"{_shown(number)} is not an incident number (1, 2, 3…)")
    try:
        incident = core.store.get(int(number), timeline_offset=offset, timeline_limit=limit)
    except UnknownIncidentError:
        raise ApiError(404, "not-found", f"no incident {int(number)}") from None
    after = offset + len(incident.timeline)
    following = (
        f"/api/v1/incidents/{incident.number}?timeline_offset={after}&timeline_limit={limit}"
    )
    return {
        "incident": incident_to_dict(incident),
        "timeline_page": {
            "offset": offset,
            "limit": limit,
            "total": incident.timeline_count,
            "next": following if after < incident.timeline_count else None,
        },
    }


def _whole_query(values: Mapping[str, str], key: str, default: int, low: int, high: int) -> int:
    """The whole number ``key`` of a query (``default`` when absent), in [low, high]."""
    if key not in values:
        return default
    text = values[key].strip()
    if not (text.isascii() and text.isdecimal() and low <= int(text) <= high):
        raise ApiError(
            400,
            "bad-query",
            f"{key}={_shown(values[key])}: expected a whole number {low} to {high}",
        )
    return int(text)


# -- digests ----------------------------------------------------------------------------


def path_day(text: str) -> date:
    """A ``YYYY-MM-DD`` path value; 400 ``bad-request`` otherwise."""
    return _parse_date(text, _shown(text), "bad-request")


def digest_document(
    core: Core, day_text: str, query: Iterable[tuple[str, str]] = ()
) -> dict[str, Any]:
    """``GET /api/v1/digests/{date}``: the day's digest in the configured timezone, as of
    now (a past day is complete, a future one is empty)."""
    _no_query(query)
    day = path_day(day_text)
    digest = digest_for_day(core.store, core.plans, day, core.config.timezone, as_of=core.now())
    return {"digest": digest_to_dict(digest)}


# -- health and metrics -----------------------------------------------------------------


def _status_document(status: IrcStatus) -> dict[str, Any]:
    return {
        "connected": status.connected,
        "why": status.why,
        "down_seconds": int(status.down_seconds),
        "login_failures": status.login_failures,
    }


def ha_document(status: HaStatus) -> dict[str, Any]:
    """``/healthz``'s ``ha``: which instance is active (null while none is known), since
    when and under which epoch (null with SQLite), and how many standbys were seen in the
    last minute."""
    active = None
    if status.active is not None and status.since is not None:
        active = {"instance": status.active, "since": iso_utc(status.since), "epoch": status.epoch}
    return {
        "backend": status.backend,
        "active": active,
        "standbys_last_minute": status.standbys_last_minute,
    }


def health_document(
    core: Core,
    irc: IrcStatus | None,
    networks: Mapping[str, IrcStatus] | None = None,
    role: Role | None = None,
) -> tuple[int, dict[str, Any]]:
    """``GET /healthz``: (status, document); 503 when the store does not answer, cannot
    take its write lock now, or failed its last write (``store_error`` says which)."""
    store = core.store
    store_error: str | None
    try:
        store.list_incidents(limit=1, newest_first=True)
        store.check_writable()
        store_error = store.last_write_error
    except StoreUnavailableError as error:
        store_error = str(error)
    except Exception:
        log.warning("healthz: the store does not answer", exc_info=True)
        store_error = "the database does not answer; the admins can find the cause in the log"
    document = {
        "ok": store_error is None,
        "irc_connected": None if irc is None else irc.connected,
        "irc": None if irc is None else _status_document(irc),
        "networks": {name: _status_document(status) for name, status in (networks or {}).items()},
        "role": (role or Role()).role,
        "instance": (role or Role()).instance,
        "ha": ha_document(core.ha_status() if core.ha_status else HaStatus(store.backend)),
        "plans": len(core.plans),
        "store_error": store_error,
        "as_of": iso_utc(core.now()),
    }
    return (200 if store_error is None else 503), document


# -- who may ask ---------------------------------------------------------------------------

#: Routes that ask for no read token (path, method or None for any).
TOKEN_FREE: tuple[tuple[str, str | None], ...] = (("/healthz", None), ("/api/v1/events", "POST"))
#: The shortest read token accepted.
MIN_READ_TOKEN = 32
_BEARER = re.compile(r"Bearer[ \t]+(\S+)[ \t]*", re.IGNORECASE)


def _host_name(header: str) -> str:
    """The name in a ``Host`` header: without the port, brackets or a trailing dot, lower."""
    text = header.strip().lower()
    if text.startswith("["):
        return text[1:].partition("]")[0]
    name, colon, port = text.rpartition(":")
    if colon and port.isdigit() and ":" not in name:
        text = name
    return text.removesuffix(".")


def _is_ip_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def check_host(config: Config, host: str | None) -> None:
    """Let a request through when its ``Host`` names this server (see the module
    documentation); :class:`ApiError` 421 ``misdirected-request`` otherwise."""
    if host is None:
        return
    name = _host_name(host)
    allowed = {"localhost", config.web_host.lower().strip("[]"), *config.web_public_names}
    if name in allowed or _is_ip_address(name):
        return
    raise ApiError(
        421,
        "misdirected-request",
        f"this server does not answer to the host name {_shown(name)}: use its address, or "
        "add the name to web_public_names in the [deploybot] section",
    )


def check_read_token(token: str | None, path: str, method: str, authorization: str | None) -> None:
    """Let a request through when no read ``token`` is set, the route asks for none, or
    ``authorization`` is ``Bearer <token>``; :class:`ApiError` 401 otherwise."""
    if token is None or any(
        path == free and wanted in (None, method) for free, wanted in TOKEN_FREE
    ):
        return
    challenge = {"WWW-Authenticate": 'Bearer realm="deploybot"'}
    if authorization is None:
        raise ApiError(
            401,
            "missing-token",
            "this server asks for a read token: send Authorization: Bearer <token>",
            challenge,
        )
    match = _BEARER.fullmatch(authorization)
    offered = match[1].encode("utf-8", "replace") if match else b""
    if not hmac.compare_digest(offered, token.encode("utf-8")):
        raise ApiError(
            401, "bad-token", "the Authorization header is not the read token", challenge
        )


def load_read_token(path: str | os.PathLike[str] | None) -> str | None:
    """The read token in ``web_read_token_file`` (one line, surrounding blanks ignored);
    None when no file is set.  :class:`~deploybot.errors.ConfigError` naming the key when
    the file cannot be read or holds no usable token (its content is never shown)."""
    if path is None:
        return None
    return read_token_file(
        path,
        "web_read_token_file",
        min_length=MIN_READ_TOKEN,
        hint=" (e.g. openssl rand -hex 32 > FILE)",
    )


# -- webhook signatures -----------------------------------------------------------------


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Deploybot-Signature`` value for ``body`` sent with ``X-Deploybot-Timestamp:
    timestamp``: ``sha256=<hex HMAC-SHA256 of "<timestamp>." + body>``."""
    signed = timestamp.encode("utf-8") + b"." + body
    digest = hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()
    return SIGNATURE_PREFIX + digest


def signature_ok(secret: str, timestamp: str, body: bytes, header: str) -> bool:
    """Whether ``header`` is the signature of ``timestamp`` and ``body`` with ``secret``
    (constant-time comparison of the hex digests; the ``sha256=`` prefix and hex case
    are not significant).  Always False for an empty secret."""
    if not secret:
        return False
    given = header.strip()
    if given[: len(SIGNATURE_PREFIX)].lower() != SIGNATURE_PREFIX:
        return False
    expected = signature(secret, timestamp, body)[len(SIGNATURE_PREFIX) :].encode("ascii")
    offered = given[len(SIGNATURE_PREFIX) :].strip().lower().encode("utf-8", "replace")
    return hmac.compare_digest(expected, offered)


# -- the webhook ------------------------------------------------------------------------


@dataclass(frozen=True)
class SignedRequest:
    """What :func:`webhook_precheck` let through: the signature and timestamp headers."""

    signature: str
    timestamp: str


def webhook_precheck(
    core: Core, header: str | None, timestamp: str | None, length: int | None, max_body: int
) -> SignedRequest:
    """``POST /api/v1/events`` before its body is read: the webhook is on, the request
    carries a signature and a timestamp within :data:`MAX_SKEW` of the clock, and does
    not announce a body over ``max_body`` bytes.  :class:`ApiError` 403, 401 or 413
    otherwise."""
    if not core.config.webhook_secret:
        raise ApiError(
            403,
            "webhook-disabled",
            "the webhook is off: set webhook_secret in the [deploybot] section to turn it on",
        )
    how = f'send sha256=<hex HMAC-SHA256 of "<{TIMESTAMP_HEADER}>." + the body>'
    if header is None:
        raise ApiError(401, "missing-signature", f"no {SIGNATURE_HEADER} header: {how}")
    if timestamp is None:
        raise ApiError(
            401,
            "missing-timestamp",
            f"no {TIMESTAMP_HEADER} header: send the time of signing in unix seconds "
            "(date +%s), signed with the body",
        )
    given = timestamp.strip()
    if not _UNIX_SECONDS.fullmatch(given):
        raise ApiError(
            401,
            "bad-timestamp",
            f"{TIMESTAMP_HEADER} {_shown(timestamp)} is not a time in unix seconds (date +%s)",
        )
    skew = int(given) - core.now().timestamp()
    if abs(skew) > MAX_SKEW.total_seconds():
        side = "ahead of" if skew > 0 else "behind"
        raise ApiError(
            401,
            "stale-timestamp",
            f"{TIMESTAMP_HEADER} is {abs(int(skew))} seconds {side} the bot's clock, more than "
            f"{int(MAX_SKEW.total_seconds())}: sign each request when sending it "
            "(and check both clocks)",
        )
    if length is not None and length > max_body:
        raise ApiError(413, "too-large", f"the body is {length} bytes, more than {max_body}")
    return SignedRequest(header, given)


def webhook_document(
    core: Core,
    reactor: BusReactor,
    body: bytes,
    signed: SignedRequest,
    remote: str,
    max_body: int,
    *,
    queue: bool = False,
) -> tuple[int, dict[str, Any]]:
    """``POST /api/v1/events`` once its body is read (after :func:`webhook_precheck`):
    the signature, then the event, acted on by ``reactor`` — or, with ``queue`` (a
    standby), kept in the store's inbox for the active instance; (202, document), (200,
    document) for a duplicate, or :class:`ApiError` 401 ``bad-signature`` / 400 or 413
    with the :class:`~deploybot.bus.events.BadMessage` kind / 503 ``store-unavailable``.
    ``remote`` (the client's address) is only logged."""
    config = core.config
    if not signature_ok(config.webhook_secret, signed.timestamp, body, signed.signature):
        log.warning("webhook: refused a request from %s with a bad signature", remote)
        raise ApiError(
            401,
            "bad-signature",
            f'{SIGNATURE_HEADER} is not the HMAC-SHA256 of "<{TIMESTAMP_HEADER}>." + the body '
            "with the secret",
        )
    reactor.stats.count_received("webhook")
    try:
        event = from_webhook(body, prefix=config.fedmsg_topic_prefix, max_bytes=max_body)
    except BadMessage as error:
        reactor.reject(error, f"webhook {remote}")
        status = 413 if error.kind == "too-large" else 400
        raise ApiError(status, error.kind, error.detail) from None
    if queue:
        return _queued_document(core, event, body, remote)
    before = reactor.duplicates
    try:
        facts = reactor.handle(event)
    except StoreUnavailableError as error:
        raise _store_unavailable(error, "acted on") from None
    duplicate = reactor.duplicates > before
    names = [type(fact).__name__ for fact in facts]
    log.info(
        "webhook: %s %s from %s: %s",
        one_line(event.topic),
        one_line(event.id),
        remote,
        ", ".join(names) or ("repeat" if duplicate else "no fact"),
    )
    document = {
        "accepted": True,
        "id": event.id,
        "topic": event.topic,
        "duplicate": duplicate,
        "facts": names,
        "queued": False,
    }
    return (200 if duplicate else 202), document


def _queued_document(
    core: Core, event: BusEvent, body: bytes, remote: str
) -> tuple[int, dict[str, Any]]:
    """A standby's answer: the event kept in the store's inbox for the active instance
    (202, ``"queued": true``), or 200 duplicate when its id is queued already or was
    acted on within :data:`~deploybot.bus.reactor.SEEN_IDS_KEPT`."""
    store = core.store
    now = core.now()
    try:
        queued = not store.event_seen(event.id, now - SEEN_IDS_KEPT) and store.queue_event(
            event.id, event.topic, body.decode("utf-8"), now, source=f"webhook {remote}"
        )
    except StoreUnavailableError as error:
        raise _store_unavailable(error, "kept") from None
    log.info(
        "webhook: %s %s from %s: %s",
        one_line(event.topic),
        one_line(event.id),
        remote,
        "queued for the active instance" if queued else "repeat",
    )
    document = {
        "accepted": True,
        "id": event.id,
        "topic": event.topic,
        "duplicate": not queued,
        "facts": [],
        "queued": queued,
    }
    return (202 if queued else 200), document


def _store_unavailable(error: StoreUnavailableError, what: str) -> ApiError:
    return ApiError(
        503,
        "store-unavailable",
        f"{error}; the event was not {what}: send it again "
        f"(after {RETRY_AFTER_SECONDS} seconds or more)",
        {"Retry-After": str(RETRY_AFTER_SECONDS)},
    )
