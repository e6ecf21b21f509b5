"""deploybot.web.api: the /api/v1 documents built from a real core (SQLite store under
tmp_path, plans loaded from plan files), query validation and signatures."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from deploybot.bus.reactor import BusReactor
from deploybot.config import config_from_mapping
from deploybot.core import Core
from deploybot.health import HaStatus, IrcStatus
from deploybot.plans.book import PlanBook
from deploybot.plans.files import dump_plan
from deploybot.plans.model import Production, Roster, Staging
from deploybot.store import Store
from deploybot.web import api
from deploybot.web.api import (
    INCIDENT_STATES,
    MAX_INCIDENTS,
    ApiError,
    SignedRequest,
    error_document,
    signature,
    signature_ok,
    webhook_precheck,
)
from tests.apischema import check_answer
from tests.fakes import RecordingOutbox
from tests.planfactory import make_plan, utc

WHEN = utc(2026, 12, 15, 13)
NOW = utc(2026, 12, 15, 14)  # an hour into the pkgdb2 window (13:00-21:00 UTC)
ISO = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")

#: Keys whose value must be a list in every document they appear in.
LIST_KEYS = {
    "deployments",
    "owners",
    "playbooks",
    "teams",
    "meetings",
    "api_breaks",
    "consumers",
    "announcements",
    "shifts",
    "people",
    "escalation",
    "checks",
    "incidents",
    "timeline",
    "sections",
    "open",
}


def minimal_plan() -> Any:
    """A leaf, minor plan with every optional list empty and no URLs."""
    return make_plan(
        id="nuancier-1.3",
        service="nuancier",
        release="1.3",
        title="nuancier bug fixes",
        when=utc(2026, 12, 20, 9),
        duration=timedelta(hours=1),
        major=False,
        leaf=True,
        essential=False,
        owners=(),
        playbooks=(),
        staging=Staging(),
        production=Production(),
        api_breaks=(),
        consumers=(),
        announcements=(),
        meetings=(),
        teams=(),
        roster=Roster(),
    )


@pytest.fixture
def core(tmp_path: Path) -> Iterator[Core]:
    """A real core on a tmp SQLite file with two plans: pkgdb2 (running at NOW, under
    policy) and nuancier (upcoming, exempt, every list empty); the clock at NOW."""
    plans = tmp_path / "plans"
    plans.mkdir()
    (plans / "pkgdb2.yaml").write_text(dump_plan(make_plan(when=WHEN)), encoding="utf-8")
    (plans / "nuancier.yaml").write_text(dump_plan(minimal_plan()), encoding="utf-8")
    config = config_from_mapping({"admin_channel": "#ops", "timezone": "Europe/Paris"})
    store = Store.open(tmp_path / "db.sqlite3")
    book = PlanBook(plans)
    report = book.reload()
    assert not report.problems, report.problems
    yield Core(config=config, store=store, book=book, clock=lambda: NOW)
    store.close()


def report(core: Core, minutes: int, *, service: str = "pkgdb2", nick: str = "alice") -> int:
    incident = core.store.report_incident(
        service=service,
        text="acl page returns 500",
        reporter_nick=nick,
        reporter_account=None,
        channel="#pkgdb2-firefight",
        now=WHEN + timedelta(minutes=minutes),
        deploy_id="pkgdb2-2.0" if service == "pkgdb2" else None,
        minutes_into_deploy=minutes if service == "pkgdb2" else None,
    )
    return incident.number


def assert_explicit(value: Any, where: str = "$") -> None:
    """No list key is null or anything but a list; every time looks like 2026-…Z."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key in LIST_KEYS:
                assert isinstance(item, list), f"{where}.{key} is {item!r}, not a list"
            if isinstance(item, str) and (key.endswith("_at") or key in {"when", "end", "as_of"}):
                assert ISO.fullmatch(item), f"{where}.{key} = {item!r}"
            assert_explicit(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            assert_explicit(item, f"{where}[{index}]")


def api_error(call: Any, *args: Any) -> ApiError:
    """The ApiError of ``call(*args)``, its document checked against error.schema.json."""
    with pytest.raises(ApiError) as caught:
        call(*args)
    check_answer("GET", "/api/v1/", caught.value.status, caught.value.document())
    return caught.value


# Every document these tests build is checked against its schema in docs/api/.


def fits(path: str, document: dict[str, Any]) -> dict[str, Any]:
    """``document``, once checked as the 200 answer of ``GET path``."""
    check_answer("GET", path, 200, document)
    return document


def deployments_document(core: Core, query: Any = ()) -> dict[str, Any]:
    return fits("/api/v1/deployments", api.deployments_document(core, query))


def deployment_document(core: Core, plan_id: str, query: Any = ()) -> dict[str, Any]:
    return fits(f"/api/v1/deployments/{plan_id}", api.deployment_document(core, plan_id, query))


def incidents_document(core: Core, query: Any = ()) -> dict[str, Any]:
    return fits("/api/v1/incidents", api.incidents_document(core, query))


def incident_document(core: Core, number: str, query: Any = ()) -> dict[str, Any]:
    return fits(f"/api/v1/incidents/{number}", api.incident_document(core, number, query))


def digest_document(core: Core, day: str, query: Any = ()) -> dict[str, Any]:
    return fits(f"/api/v1/digests/{day}", api.digest_document(core, day, query))


def health_document(
    core: Core, irc: IrcStatus | None, networks: dict[str, IrcStatus] | None = None
) -> tuple[int, dict[str, Any]]:
    status, document = api.health_document(core, irc, networks)
    check_answer("GET", "/healthz", status, document)
    return status, document


def webhook_document(core: Core, *args: Any) -> tuple[int, dict[str, Any]]:
    status, document = api.webhook_document(core, *args)
    check_answer("POST", "/api/v1/events", status, document)
    return status, document


# -- deployments ----------------------------------------------------------------------------


def test_deployments_list_every_plan_in_force_by_start_time_with_explicit_fields(
    core: Core,
) -> None:
    """Both plans, by start time, with status as of now, readiness from the policy (six
    checks for pkgdb2, none for the exempt nuancier), UTC times with Z and durations in
    seconds; the document survives a JSON round trip unchanged."""
    document = deployments_document(core)
    assert json.loads(json.dumps(document)) == document
    assert_explicit(document)
    assert document["as_of"] == "2026-12-15T14:00:00Z"
    pkgdb2, nuancier = document["deployments"]
    assert (pkgdb2["id"], nuancier["id"]) == ("pkgdb2-2.0", "nuancier-1.3")
    assert pkgdb2["status"] == "running" and nuancier["status"] == "upcoming"
    assert (pkgdb2["when"], pkgdb2["end"]) == ("2026-12-15T13:00:00Z", "2026-12-15T21:00:00Z")
    assert pkgdb2["duration_seconds"] == 8 * 3600
    assert pkgdb2["breaks_api"] is True
    assert pkgdb2["api_breaks"] == [
        {
            "endpoint": "/api/packager/acl",
            "change": "returns null instead of [] when the packager has no ACLs",
            "migration": "treat null as an empty list",
        }
    ]
    assert pkgdb2["roster"]["channel"] == "#pkgdb2-firefight"
    assert pkgdb2["roster"]["shifts"][0] == {
        "team": "infrastructure",
        "people": ["pingou"],
        "start": "2026-12-15T13:00:00Z",
        "end": "2026-12-15T17:00:00Z",
    }
    readiness = pkgdb2["readiness"]
    assert readiness["under_policy"] and readiness["ready"]
    assert [check["rule"] for check in readiness["checks"]] == [
        "api-break-announcement",
        "devel-announcement",
        "meeting",
        "staging-call",
        "roster-coverage",
        "consumer-contacts",
    ]
    assert all(check["met"] and check["reason"] for check in readiness["checks"])


def test_a_plan_without_optional_parts_has_empty_lists_and_null_urls_never_missing_keys(
    core: Core,
) -> None:
    """The pkgdb2 post-mortem: nothing given is [] for lists and null for single values;
    the keys are the same as those of a full plan."""
    document = deployment_document(core, "nuancier-1.3")
    plan = document["deployment"]
    full = deployments_document(core)["deployments"][0]
    assert set(plan) == set(full)
    for key in ("owners", "playbooks", "teams", "meetings", "api_breaks", "consumers"):
        assert plan[key] == [], key
    assert plan["announcements"] == []
    assert plan["roster"] == {
        "channel": "#nuancier-firefight",
        "shifts": [],
        "escalation": [],
    }
    assert plan["staging"] == {"url": None, "call_for_testing": None}
    assert plan["production"] == {"url": None}
    assert plan["readiness"] == {
        "under_policy": False,
        "ready": True,
        "exempt_reason": "exempt: minor release without API breaks",
        "notice_days": 14,
        "checks": [],
    }


def test_unknown_deployment_is_404_and_a_query_string_is_refused(core: Core) -> None:
    """An unknown id is 404 not-found naming it; the deployment routes take no query."""
    error = api_error(deployment_document, core, "pkgdb3")
    assert (error.status, error.code) == (404, "not-found")
    assert "'pkgdb3'" in error.message
    error = api_error(deployments_document, core, [("limit", "3")])
    assert (error.status, error.code) == (400, "bad-query")
    assert "'limit'" in error.message


def test_error_messages_are_one_line_even_when_the_request_had_line_breaks(core: Core) -> None:
    """A value from the request shown in an error never brings its CR/LF/NUL along."""
    error = api_error(deployment_document, core, "x\r\nSet-Cookie: a=b\x00")
    assert "\n" not in error.message and "\r" not in error.message
    assert "\x00" not in error.message
    assert error_document("c", "a\nb") == {"error": {"code": "c", "message": "a b"}}


# -- incidents ------------------------------------------------------------------------------


def test_no_incidents_is_an_empty_list(core: Core) -> None:
    """An empty store: incidents [] (not null), not truncated, the query echoed with
    nulls for the filters not given."""
    assert incidents_document(core) == {
        "query": {"since": None, "service": None, "state": None},
        "incidents": [],
        "truncated": False,
    }


def test_incident_document_has_every_field_and_its_timeline(core: Core) -> None:
    """Reported at 13:10, taken by bob at 13:15, fixed at 13:40: times with Z, durations
    in seconds, the timeline in order."""
    number = report(core, 10)
    core.store.take(number, "bob", "bob", WHEN + timedelta(minutes=15))
    core.store.fix(number, "bob", "bob", WHEN + timedelta(minutes=40), note="restarted")
    incident = incident_document(core, str(number))["incident"]
    assert_explicit(incident)
    assert incident == {
        "number": number,
        "service": "pkgdb2",
        "text": "acl page returns 500",
        "channel": "#pkgdb2-firefight",
        "reporter": "alice",
        "reporter_account": None,
        "state": "fixed",
        "deploy_id": "pkgdb2-2.0",
        "minutes_into_deploy": 10,
        "reported_at": "2026-12-15T13:10:00Z",
        "acknowledged_at": "2026-12-15T13:15:00Z",
        "acknowledged_by": "bob",
        "owner": "bob",
        "fixed_at": "2026-12-15T13:40:00Z",
        "fixed_by": "bob",
        "time_to_acknowledge_seconds": 300,
        "time_to_repair_seconds": 1800,
        "timeline": [
            {
                "at": "2026-12-15T13:10:00Z",
                "nick": "alice",
                "account": None,
                "kind": "reported",
                "text": "acl page returns 500",
            },
            {
                "at": "2026-12-15T13:15:00Z",
                "nick": "bob",
                "account": "bob",
                "kind": "taken",
                "text": "",
            },
            {
                "at": "2026-12-15T13:40:00Z",
                "nick": "bob",
                "account": "bob",
                "kind": "fixed",
                "text": "restarted",
            },
        ],
        "timeline_total": 3,
        "timeline_truncated": False,
    }


def test_a_long_timeline_is_served_in_pages(core: Core) -> None:
    """250 entries: /incidents/{n} serves 100 by default with a next link, pages with
    timeline_offset/timeline_limit (an offset past the end is an empty page, never
    null), and /incidents holds the first 100 of each timeline; both say the total
    and whether the timeline shown is truncated."""
    number = report(core, 10)
    for n in range(249):
        core.store.add_note(number, "bob", None, f"note {n}", WHEN + timedelta(minutes=11))
    document = incident_document(core, str(number))
    incident = document["incident"]
    assert len(incident["timeline"]) == 100
    assert (incident["timeline_total"], incident["timeline_truncated"]) == (250, True)
    assert document["timeline_page"] == {
        "offset": 0,
        "limit": 100,
        "total": 250,
        "next": f"/api/v1/incidents/{number}?timeline_offset=100&timeline_limit=100",
    }
    last = incident_document(
        core, str(number), [("timeline_offset", "200"), ("timeline_limit", "100")]
    )
    assert [e["text"] for e in last["incident"]["timeline"]] == [
        f"note {n}" for n in range(199, 249)
    ]
    assert last["timeline_page"]["next"] is None
    past = incident_document(core, str(number), [("timeline_offset", "900")])
    assert past["incident"]["timeline"] == [] and past["timeline_page"]["next"] is None
    assert past["incident"]["timeline_total"] == 250
    (listed,) = incidents_document(core)["incidents"]
    assert len(listed["timeline"]) == 100 and listed["timeline_truncated"] is True


@pytest.mark.parametrize(
    "query",
    [
        [("timeline_limit", "0")],
        [("timeline_limit", "1001")],
        [("timeline_offset", "-1")],
        [("timeline_offset", "x")],
        [("timeline_offset", "1"), ("timeline_offset", "2")],
        [("since", "2026-12-15")],
    ],
)
def test_bad_timeline_queries_are_400(core: Core, query: list[tuple[str, str]]) -> None:
    """A limit outside 1..1000, a negative or non-numeric offset, a repeated or unknown
    key: 400 bad-query."""
    number = report(core, 10)
    error = api_error(incident_document, core, str(number), query)
    assert (error.status, error.code) == (400, "bad-query")


@pytest.mark.parametrize(
    ("number", "status", "code"),
    [("99", 404, "not-found"), ("abc", 400, "bad-request"), ("-1", 400, "bad-request")],
)
def test_unknown_or_malformed_incident_numbers(
    core: Core, number: str, status: int, code: str
) -> None:
    """A number with no incident is 404; something that is not a number is 400."""
    error = api_error(incident_document, core, number)
    assert (error.status, error.code) == (status, code)


def test_incident_filters_since_service_and_state(core: Core) -> None:
    """``state`` open/fixed, ``service`` case-insensitively, ``since`` as a date (local
    midnight in the configured zone, Europe/Paris: 23:00 UTC the day before) or a time
    with Z or an offset (inclusive)."""
    first = report(core, 10)
    second = report(core, 20, service="koji")
    third = report(core, 30)
    core.store.fix(first, "bob", None, WHEN + timedelta(minutes=40))

    def numbers(*query: tuple[str, str]) -> list[int]:
        return [item["number"] for item in incidents_document(core, list(query))["incidents"]]

    assert numbers() == [first, second, third]
    assert numbers(("state", "open")) == [second, third]
    assert numbers(("state", "fixed")) == [first]
    assert numbers(("service", "PKGDB2")) == [first, third]
    assert numbers(("since", "2026-12-15T13:20:00Z")) == [second, third]
    assert numbers(("since", "2026-12-15T14:20:00+01:00")) == [second, third]
    assert numbers(("since", "2026-12-16")) == []
    assert numbers(("since", "2026-12-15"), ("state", "open"), ("service", "koji")) == [second]
    document = incidents_document(core, [("since", "2026-12-15")])
    assert document["query"]["since"] == "2026-12-14T23:00:00Z"


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ([("state", "closed")], "expected one of open, fixed"),
        ([("state", "")], "expected one of"),
        ([("since", "yesterday")], "is not a date"),
        ([("since", "2026-12-15T13:00:00")], "no UTC offset"),
        ([("since", "2026-12-15T13:00:00 02:00")], "%2B"),
        ([("since", "2026-02-30")], "is not a valid date: day is out of range for month"),
        ([("since", "0001-01-01")], "is out of range (years 1900 to 9000)"),
        ([("since", "0001-01-01T00:00:00Z")], "out of range"),
        ([("service", "")], "not a service name"),
        ([("service", "a\nb")], "not a service name"),
        ([("limit", "10")], "unknown query key 'limit'; valid keys: since, service, state"),
        ([("state", "open"), ("state", "fixed")], "more than once"),
    ],
)
def test_bad_incident_queries_are_400_bad_query(
    core: Core, query: list[tuple[str, str]], says: str
) -> None:
    """Unknown keys, repeated keys and bad values are refused with a message that says
    what is expected; never a silent empty answer."""
    error = api_error(incidents_document, core, query)
    assert (error.status, error.code) == (400, "bad-query")
    assert says in error.message


def test_incident_states_are_the_stores() -> None:
    assert INCIDENT_STATES == ("open", "fixed")


def test_long_incident_lists_are_cut_and_say_so(core: Core) -> None:
    """More than MAX_INCIDENTS matches: the oldest MAX_INCIDENTS and truncated true."""
    for minute in range(MAX_INCIDENTS + 2):
        core.store.report_incident(
            service="koji",
            text="x",
            reporter_nick="alice",
            reporter_account=None,
            channel="#ops",
            now=WHEN + timedelta(seconds=minute),
        )
    document = incidents_document(core, [("service", "koji")])
    assert len(document["incidents"]) == MAX_INCIDENTS
    assert document["incidents"][0]["number"] == 1
    assert document["truncated"] is True


# -- digests --------------------------------------------------------------------------------


def test_digest_document_is_the_days_digest_as_of_now(core: Core) -> None:
    """The deploy day's digest (Europe/Paris day) as of NOW: the pkgdb2 section with the
    open incident; an empty day still has its lists."""
    report(core, 10)
    digest = digest_document(core, "2026-12-15")["digest"]
    assert_explicit(digest)
    assert digest["date"] == "2026-12-15" and digest["as_of"] == "2026-12-15T14:00:00Z"
    assert digest["complete"] is False
    (section,) = digest["sections"]
    assert section["deploy_id"] == "pkgdb2-2.0"
    assert [incident["number"] for incident in section["open"]] == [1]
    quiet = digest_document(core, "2026-11-01")["digest"]
    assert quiet["empty"] is True and quiet["sections"] == []
    assert quiet["totals"]["open"] == [] and quiet["totals"]["teams"] == []


@pytest.mark.parametrize(
    ("day", "says"),
    [
        ("2026-12-1", "'2026-12-1' is not a date; write it as YYYY-MM-DD"),
        ("tomorrow", "'tomorrow' is not a date; write it as YYYY-MM-DD"),
        ("99999-01-01", "'99999-01-01' is not a date; write it as YYYY-MM-DD"),
        ("20261215", "'20261215' is not a date; write it as YYYY-MM-DD"),
        ("2026-13-01", "'2026-13-01' is not a valid date: month must be in 1..12"),
        ("1000-01-01", "'1000-01-01' is out of range (years 1900 to 9000)"),
    ],
)
def test_bad_digest_dates_are_400(core: Core, day: str, says: str) -> None:
    """A digest path date that is not YYYY-MM-DD, does not exist or is out of range is a
    400 ``bad-request`` saying which."""
    error = api_error(digest_document, core, day)
    assert (error.status, error.code, error.message) == (400, "bad-request", says)


# -- health and metrics ---------------------------------------------------------------------


def test_health_says_ok_with_the_plan_count_and_503_when_the_store_is_gone(core: Core) -> None:
    status, document = health_document(core, IrcStatus(True))
    assert status == 200
    assert document == {
        "ok": True,
        "irc_connected": True,
        "irc": {"connected": True, "why": None, "down_seconds": 0, "login_failures": 0},
        "networks": {},
        "role": "active",
        "instance": None,
        "ha": {"backend": "sqlite", "active": None, "standbys_last_minute": 0},
        "plans": 2,
        "store_error": None,
        "as_of": "2026-12-15T14:00:00Z",
    }
    unknown = health_document(core, None)[1]
    assert unknown["irc_connected"] is None and unknown["irc"] is None
    networks = {"irc": IrcStatus(True), "matrix": IrcStatus(False, "cannot sync", 12.7)}
    both = health_document(core, None, networks)[1]
    assert both["networks"] == {
        "irc": {"connected": True, "why": None, "down_seconds": 0, "login_failures": 0},
        "matrix": {
            "connected": False,
            "why": "cannot sync",
            "down_seconds": 12,
            "login_failures": 0,
        },
    }
    assert both["ok"] is True  # a network away is no failure of the bot: it reconnects
    core.store.close()
    status, document = health_document(core, IrcStatus(False))
    assert (status, document["ok"]) == (503, False)


def test_health_says_which_instance_is_active_since_when_and_how_many_standbys(
    core: Core,
) -> None:
    """``ha``: on PostgreSQL the lease's instance, since and epoch and the standbys seen in
    the last minute; with SQLite this one instance since its start, no epoch."""
    core.ha_status = lambda: HaStatus("postgresql", "bot-b:7", utc(2026, 12, 15, 13, 2), 3, 1)
    assert health_document(core, None)[1]["ha"] == {
        "backend": "postgresql",
        "active": {"instance": "bot-b:7", "since": "2026-12-15T13:02:00Z", "epoch": 3},
        "standbys_last_minute": 1,
    }
    core.ha_status = lambda: HaStatus("postgresql")  # no lease read yet
    assert health_document(core, None)[1]["ha"] == {
        "backend": "postgresql",
        "active": None,
        "standbys_last_minute": 0,
    }
    core.ha_status = lambda: HaStatus("sqlite", "host:1", utc(2026, 12, 15, 9))
    assert health_document(core, None)[1]["ha"] == {
        "backend": "sqlite",
        "active": {"instance": "host:1", "since": "2026-12-15T09:00:00Z", "epoch": None},
        "standbys_last_minute": 0,
    }


# -- signatures -----------------------------------------------------------------------------


def test_signature_is_hmac_sha256_of_the_timestamp_a_dot_and_the_body() -> None:
    body = b'{"topic": "x"}'
    expected = hmac.new(b"s3cret", b"1765803000." + body, hashlib.sha256).hexdigest()
    assert signature("s3cret", "1765803000", body) == f"sha256={expected}"
    assert signature_ok("s3cret", "1765803000", body, f"sha256={expected}")
    assert signature_ok("s3cret", "1765803000", body, f"SHA256={expected.upper()} ")
    body_only = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert not signature_ok("s3cret", "1765803000", body, f"sha256={body_only}")


@pytest.mark.parametrize(
    "header",
    ["", "sha256=", "sha1=abc", "deadbeef", "sha256=ünïcode", "sha256=" + "0" * 64],
)
def test_wrong_or_malformed_signatures_are_refused(header: str) -> None:
    assert not signature_ok("s3cret", "1", b"{}", header)


def test_a_signature_with_another_secret_body_or_time_is_refused_and_no_secret_refuses_all() -> (
    None
):
    body = b"{}"
    good = signature("s3cret", "100", body)
    assert not signature_ok("other", "100", body, good)
    assert not signature_ok("s3cret", "100", b"{} ", good)
    assert not signature_ok("s3cret", "101", body, good)
    assert not signature_ok("", "100", body, signature("", "100", body))


# -- the webhook's acceptance rules ---------------------------------------------------------

WEBHOOK_SECRET = "a webhook secret of 32 bytes or more"
PKGDB_PLAYBOOK = "/srv/web/infra/ansible/playbooks/groups/pkgdb.yml"
STAMP = str(int(NOW.timestamp()))


def webhook_on(core: Core) -> BusReactor:
    """Turn the webhook on (``webhook_secret``) and give it a reactor posting nowhere."""
    core.config = replace(core.config, webhook_secret=WEBHOOK_SECRET)
    return BusReactor(core, RecordingOutbox())


def start_event(event_id: str = "2026-abc-1") -> bytes:
    body = {"playbook": PKGDB_PLAYBOOK, "userid": "pingou", "playbook_start": "now"}
    topic = "org.fedoraproject.prod.ansible.playbook.start"
    return json.dumps({"topic": topic, "body": body, "id": event_id}).encode("utf-8")


def signed(body: bytes, stamp: str = STAMP) -> SignedRequest:
    return SignedRequest(signature(WEBHOOK_SECRET, stamp, body), stamp)


@pytest.mark.parametrize(
    ("secret", "header", "stamp", "length", "status", "code"),
    [
        ("", "sha256=00", STAMP, 10, 403, "webhook-disabled"),
        (WEBHOOK_SECRET, None, STAMP, 10, 401, "missing-signature"),
        (WEBHOOK_SECRET, "sha256=00", None, 10, 401, "missing-timestamp"),
        (WEBHOOK_SECRET, "sha256=00", "2026-12-15T14:00:00Z", 10, 401, "bad-timestamp"),
        (WEBHOOK_SECRET, "sha256=00", "-1", 10, 401, "bad-timestamp"),
        (WEBHOOK_SECRET, "sha256=00", str(int(STAMP) - 301), 10, 401, "stale-timestamp"),
        (WEBHOOK_SECRET, "sha256=00", str(int(STAMP) + 301), 10, 401, "stale-timestamp"),
        (WEBHOOK_SECRET, "sha256=00", STAMP, 1001, 413, "too-large"),
    ],
)
def test_webhook_precheck_refuses_before_the_body_is_read(
    core: Core,
    secret: str,
    header: str | None,
    stamp: str | None,
    length: int,
    status: int,
    code: str,
) -> None:
    """Off without a secret (403), no signature or timestamp, a timestamp that is not
    unix seconds or more than five minutes from the clock (401), an announced body over
    the limit (413): each refused before anything reads the body."""
    core.config = replace(core.config, webhook_secret=secret)
    error = api_error(webhook_precheck, core, header, stamp, length, 1000)
    assert (error.status, error.code) == (status, code)


def test_webhook_precheck_passes_the_signature_and_timestamp_on(core: Core) -> None:
    """A signed request within five minutes of the clock, of unknown or allowed length,
    goes on to the body."""
    webhook_on(core)
    edge = str(int(STAMP) - 300)
    assert webhook_precheck(core, "sha256=00", edge, None, 1000) == SignedRequest("sha256=00", edge)
    assert webhook_precheck(core, "sha256=00", STAMP, 1000, 1000).timestamp == STAMP


def test_webhook_document_checks_the_signature_before_parsing(core: Core) -> None:
    """A bad signature is 401 ``bad-signature`` even for garbage, and counts nothing."""
    reactor = webhook_on(core)
    bad = SignedRequest("sha256=00", STAMP)
    error = api_error(webhook_document, core, reactor, b"{not json", bad, "", 1000)
    assert (error.status, error.code) == (401, "bad-signature")
    assert reactor.stats.as_dict()["received_total"] == 0


def test_webhook_document_rejects_a_bad_event_with_its_kind(core: Core) -> None:
    """A signed body that is not an event is 400 with the BadMessage kind, counted."""
    reactor = webhook_on(core)
    body = b"{not json"
    error = api_error(webhook_document, core, reactor, body, signed(body), "", 1000)
    assert (error.status, error.code) == (400, "not-json")
    assert reactor.stats.dropped["not-json"] == 1


def test_webhook_document_acts_once_and_says_a_repeat_is_a_duplicate(core: Core) -> None:
    """A signed playbook start is acted on (202 document with its facts); the same id
    again is a 200 duplicate with no facts."""
    reactor = webhook_on(core)
    body = start_event()
    first = webhook_document(core, reactor, body, signed(body), "192.0.2.1", 10_000)
    assert first == (
        202,
        {
            "accepted": True,
            "id": "2026-abc-1",
            "topic": "org.fedoraproject.prod.ansible.playbook.start",
            "duplicate": False,
            "facts": ["OpenFirefighting", "DeployStarted"],
            "queued": False,
        },
    )
    status, again = webhook_document(core, reactor, body, signed(body), "192.0.2.1", 10_000)
    assert (status, again["duplicate"], again["facts"]) == (200, True, [])
