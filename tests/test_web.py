"""deploybot_plugins.web: the real aiohttp server on 127.0.0.1 (a free port), a real core
(SQLite under tmp_path, plans from plan files) and a real aiohttp client — every route,
the error envelope, the signed webhook reaching the bus reactor, /metrics as Prometheus
text, the pages and the calendar feed."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import socket
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import icalendar
import pytest
from deploybot_plugins.web import MAX_BODY, WebServer, WebStartError
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

from deploybot.bus.events import BusEvent
from deploybot.bus.inbox import drain_inbox
from deploybot.bus.reactor import BusReactor
from deploybot.config import config_from_mapping
from deploybot.core import Core
from deploybot.deployday.day import DeployDay
from deploybot.errors import ConfigError
from deploybot.health import IrcStatus, Role
from deploybot.plans.book import PlanBook
from deploybot.plans.files import dump_plan
from deploybot.store import Store, StoreBusyError, StoreWriteError
from deploybot.web.api import load_read_token, signature
from tests.apischema import SCHEMA_DIR, check_answer
from tests.fakes import RecordingOutbox
from tests.planfactory import make_plan, utc

WHEN = utc(2026, 12, 15, 13)
NOW = utc(2026, 12, 15, 13, 10)  # ten minutes into the pkgdb2 window
ADMIN = "#ops"
PLAN_ID = "pkgdb2-2.0"
BUSY_TIMEOUT = 0.2
SECRET = "a webhook secret of 32 bytes or more"
START = "org.fedoraproject.prod.ansible.playbook.start"
PLAYBOOK = "/srv/web/infra/ansible/playbooks/groups/pkgdb.yml"
SAMPLES_DIR = Path(__file__).parent / "data" / "bus-samples"


class Served:
    """A running server with its core, reactor, recording outbox and a client session."""

    def __init__(
        self, server: WebServer, core: Core, reactor: BusReactor, outbox: RecordingOutbox
    ) -> None:
        self.server = server
        self.core = core
        self.reactor = reactor
        self.outbox = outbox
        self.session = aiohttp.ClientSession()

    def url(self, path: str) -> str:
        return self.server.url + path

    async def get(self, path: str, **kwargs: Any) -> tuple[int, Any, aiohttp.ClientResponse]:
        return await self.request("GET", path, **kwargs)

    async def request(
        self, method: str, path: str, **kwargs: Any
    ) -> tuple[int, Any, aiohttp.ClientResponse]:
        """The answer; a JSON one is checked against its schema in docs/api/ first."""
        async with self.session.request(method, self.url(path), **kwargs) as response:
            body = await _body(response)
            if response.content_type == "application/json":
                check_answer(method, path, response.status, body)
            return response.status, body, response

    async def post_event(
        self,
        payload: bytes,
        *,
        sign: str | None = SECRET,
        header: str | None = None,
        at: datetime = NOW,
    ) -> tuple[int, Any, aiohttp.ClientResponse]:
        """POST ``payload`` signed with ``sign`` at ``at`` (or with the ``header`` given)."""
        stamp = str(int(at.timestamp()))
        headers = {"Content-Type": "application/json", "X-Deploybot-Timestamp": stamp}
        if header is not None:
            headers["X-Deploybot-Signature"] = header
        elif sign is not None:
            headers["X-Deploybot-Signature"] = signature(sign, stamp, payload)
        return await self.request("POST", "/api/v1/events", data=payload, headers=headers)


async def _body(response: aiohttp.ClientResponse) -> Any:
    text = await response.text()
    if response.content_type == "application/json":
        return json.loads(text)
    return text


Serve = Callable[..., Awaitable[Served]]


@pytest.fixture
def core_factory(tmp_path: Path) -> Iterator[Callable[..., Core]]:
    """`core_factory(webhook_secret=…)`: a real core on a tmp SQLite file with the pkgdb2
    plan (13:00-21:00 UTC on 2026-12-15, playbook groups/pkgdb.yml), clock at NOW; a
    write waits at most BUSY_TIMEOUT for a locked database.  `core_factory(database=…)`
    opens that database file instead of a new one (the bot restarted)."""
    stores: list[Store] = []

    def make(database: Path | None = None, **config: str) -> Core:
        directory = tmp_path / f"core{len(stores)}"
        plans = directory / "plans"
        plans.mkdir(parents=True)
        (plans / "pkgdb2.yaml").write_text(dump_plan(make_plan(when=WHEN)), encoding="utf-8")
        settings = {"admin_channel": ADMIN, "countdowns": "0", **config}
        store = Store.open(database or directory / "db.sqlite3", busy_timeout=BUSY_TIMEOUT)
        stores.append(store)
        book = PlanBook(plans)
        book.reload()
        return Core(config=config_from_mapping(settings), store=store, book=book, clock=lambda: NOW)

    yield make
    for store in stores:
        store.close()


@pytest.fixture
async def serve(core_factory: Callable[..., Core]) -> AsyncIterator[Serve]:
    """`await serve(webhook_secret=…)`: the real server on 127.0.0.1 at a free port
    (`read_token=…`: asking for that token)."""
    running: list[Served] = []

    async def start(
        database: Path | None = None,
        read_token: str | None = None,
        role: Callable[[], Role] = Role,
        **config: str,
    ) -> Served:
        core = core_factory(database, **config)
        outbox = RecordingOutbox()
        reactor = BusReactor(core, outbox)
        server = WebServer(
            core,
            reactor,
            host="127.0.0.1",
            port=0,
            irc_status=lambda: IrcStatus(True),
            read_token=read_token,
            role=role,
        )
        await server.start()
        served = Served(server, core, reactor, outbox)
        running.append(served)
        return served

    yield start
    for served in running:
        await served.session.close()
        await served.server.stop()


@pytest.fixture
async def web(serve: Serve) -> Served:
    """A server with the webhook on (webhook_secret = SECRET)."""
    return await serve(webhook_secret=SECRET)


def start_payload(**changes: Any) -> dict[str, Any]:
    """A webhook payload: the real ansible.playbook.start sample on pkgdb's playbook."""
    sample = json.loads((SAMPLES_DIR / "ansible.playbook.start.json").read_text("utf-8"))
    body: dict[str, Any] = {**sample["msg"], "playbook": PLAYBOOK, "userid": "pingou"}
    body.update(changes)
    return {"topic": START, "body": body, "id": "2026-abc-1"}


def encoded(document: Any) -> bytes:
    return json.dumps(document).encode("utf-8")


def report(
    core: Core,
    minutes: int,
    service: str = "pkgdb2",
    text: str = "acl page returns 500",
    deploy_id: str | None = None,
) -> int:
    return core.store.report_incident(
        service=service,
        text=text,
        reporter_nick="alice",
        reporter_account=None,
        channel="#pkgdb2-firefight",
        now=WHEN + timedelta(minutes=minutes),
        deploy_id=deploy_id,
    ).number


def assert_error(status: int, body: Any, want_status: int, code: str) -> str:
    """The envelope exactly: {"error": {"code", "message"}}, nothing else; the message."""
    assert status == want_status, body
    assert isinstance(body, dict) and set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message"}, body
    assert body["error"]["code"] == code, body
    message = body["error"]["message"]
    assert isinstance(message, str) and message and "\n" not in message
    return message


# -- the API --------------------------------------------------------------------------------


async def test_deployments_and_one_deployment_as_json(web: Served) -> None:
    """GET /api/v1/deployments lists the plan (running now); /deployments/{id} is the same
    object; both application/json in UTF-8."""
    status, body, response = await web.get("/api/v1/deployments")
    assert status == 200 and response.content_type == "application/json"
    assert response.charset == "utf-8"
    (deployment,) = body["deployments"]
    assert deployment["id"] == "pkgdb2-2.0" and deployment["status"] == "running"
    status, one, _ = await web.get("/api/v1/deployments/pkgdb2-2.0")
    assert status == 200 and one["deployment"] == deployment


async def test_the_api_index_links_the_schemas_and_serves_them(web: Served) -> None:
    """/api/v1/ (and /api/v1) lists each route with its schema; every schema it links is
    served as application/schema+json, byte for byte the file in docs/api/."""
    status, index, _ = await web.get("/api/v1/")
    assert status == 200
    assert (await web.get("/api/v1"))[1] == index
    route = {"method": "GET", "path": "/api/v1/incidents", "schema": index["schemas"]["incidents"]}
    assert route in index["routes"]
    for name, path in index["schemas"].items():
        async with web.session.get(web.url(path)) as response:
            assert response.status == 200, path
            assert response.content_type == "application/schema+json"
            assert await response.read() == (SCHEMA_DIR / f"{name}.schema.json").read_bytes()
    status, body, _ = await web.get("/api/v1/schemas/nothing.schema.json")
    assert_error(status, body, 404, "not-found")


async def test_empty_lists_are_lists_over_http(web: Served) -> None:
    """No incidents: "incidents": [] in the raw JSON text, not null; a day without deploy
    or incident has "sections": []."""
    async with web.session.get(web.url("/api/v1/incidents")) as response:
        raw = await response.text()
    assert '"incidents": []' in raw and "null," in raw  # the query echo's nulls only
    assert json.loads(raw)["incidents"] == []
    status, body, _ = await web.get("/api/v1/digests/2026-11-02")
    assert status == 200 and body["digest"]["sections"] == []


async def test_incidents_query_and_one_incident(web: Served) -> None:
    """Filters reach the store; /incidents/{n} answers one; digests/{date} has it open."""
    first = report(web.core, 1)
    report(web.core, 2, service="koji")
    status, body, _ = await web.get(
        "/api/v1/incidents", params={"service": "pkgdb2", "state": "open", "since": "2026-12-15"}
    )
    assert status == 200
    assert [item["number"] for item in body["incidents"]] == [first]
    status, body, _ = await web.get(f"/api/v1/incidents/{first}")
    assert status == 200 and body["incident"]["state"] == "open"
    status, body, _ = await web.get(
        "/api/v1/incidents", params={"since": "2026-12-15T14:00:00+01:00"}
    )
    assert status == 200 and len(body["incidents"]) == 2
    status, body, _ = await web.get("/api/v1/digests/2026-12-15")
    assert status == 200 and body["digest"]["totals"]["reported"] == 2


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/api/v1/incidents?state=closed", 400, "bad-query"),
        ("/api/v1/incidents?since=yesterday", 400, "bad-query"),
        ("/api/v1/incidents?limit=5", 400, "bad-query"),
        ("/api/v1/incidents?state=open&state=fixed", 400, "bad-query"),
        ("/api/v1/deployments?verbose=1", 400, "bad-query"),
        ("/api/v1/incidents/abc", 400, "bad-request"),
        ("/api/v1/digests/15-12-2026", 400, "bad-request"),
        ("/api/v1/incidents/42", 404, "not-found"),
        ("/api/v1/deployments/pkgdb3", 404, "not-found"),
        ("/api/v1/nothing-here", 404, "not-found"),
        ("/api/v2/deployments", 404, "not-found"),
        ("/api/", 404, "not-found"),
        ("/api", 404, "not-found"),
    ],
)
async def test_errors_are_the_json_envelope(web: Served, path: str, status: int, code: str) -> None:
    """Bad queries, malformed and unknown ids, and routes unknown under /api/ (aiohttp's
    own 404) all answer {"error": {"code", "message"}} with their status."""
    got, body, response = await web.get(path)
    assert response.content_type == "application/json"
    assert_error(got, body, status, code)


async def test_wrong_method_is_405_in_the_envelope_with_allow(web: Served) -> None:
    status, body, response = await web.request("DELETE", "/api/v1/deployments")
    message = assert_error(status, body, 405, "method-not-allowed")
    assert "DELETE" in message and "GET" in response.headers["Allow"]
    status, body, response = await web.get("/api/v1/events")
    assert_error(status, body, 405, "method-not-allowed")
    assert response.headers["Allow"] == "POST"


async def test_pages_outside_the_api_keep_plain_errors(web: Served) -> None:
    """The envelope is for /api/ only: an unknown page is aiohttp's plain 404."""
    status, _, response = await web.get("/no-such-page")
    assert status == 404 and response.content_type != "application/json"


async def test_an_unexpected_error_is_500_with_a_reference_and_no_traceback(
    web: Served, caplog: pytest.LogCaptureFixture
) -> None:
    """The store is gone (closed under the server): 500 internal-error with a reference;
    the traceback is in the log, not in the answer."""
    web.core.store.close()
    with caplog.at_level(logging.ERROR, logger="deploybot_plugins.web"):
        status, body, _ = await web.get("/api/v1/incidents")
    message = assert_error(status, body, 500, "internal-error")
    ref = re.search(r"ref ([0-9a-f]{6})", message)
    assert ref is not None
    assert "Traceback" not in json.dumps(body) and "sqlite" not in json.dumps(body).lower()
    logged = [r for r in caplog.records if ref.group(1) in r.getMessage()]
    assert logged and logged[0].exc_info is not None


# -- the webhook ----------------------------------------------------------------------------


async def test_a_signed_playbook_start_is_acted_on_and_said_once(web: Served) -> None:
    """A correctly signed start of pkgdb's playbook: 202 with the facts it meant, and
    "deploy of pkgdb2 started by pingou" is posted to the admin channel; the same id
    again is a 200 duplicate and said no more."""
    payload = encoded(start_payload())
    status, body, _ = await web.post_event(payload)
    assert status == 202, body
    assert body == {
        "accepted": True,
        "id": "2026-abc-1",
        "topic": START,
        "duplicate": False,
        "facts": ["OpenFirefighting", "DeployStarted"],
        "queued": False,
    }
    assert web.outbox.to(ADMIN) == ["deploy of pkgdb2 started by pingou (groups/pkgdb.yml)"]
    status, body, _ = await web.post_event(payload)
    assert status == 200 and body["duplicate"] is True and body["facts"] == []
    assert len(web.outbox.posts) == 1
    assert web.reactor.stats.received["webhook"] == 2


async def test_a_replay_after_a_restart_is_a_200_duplicate_and_does_nothing(
    web: Served, serve: Serve
) -> None:
    """The same signed request sent to the bot restarted on the same database (within the
    five minutes its timestamp allows) answers 200 duplicate, and nothing is said again."""
    payload = encoded(start_payload())
    status, _, _ = await web.post_event(payload)
    assert status == 202
    await web.server.stop()
    restarted = await serve(database=Path(web.core.store.path), webhook_secret=SECRET)
    status, body, _ = await restarted.post_event(payload, at=NOW - timedelta(minutes=4))
    assert status == 200, body
    assert (body["duplicate"], body["facts"]) == (True, [])
    assert restarted.outbox.calls == []


@pytest.mark.parametrize("minutes", [-6, 6])
async def test_a_request_signed_more_than_five_minutes_away_is_401_stale_timestamp(
    web: Served, minutes: int
) -> None:
    """A correctly signed request whose timestamp is six minutes behind (a captured
    request replayed) or ahead of the clock is refused; nothing is acted on."""
    payload = encoded(start_payload())
    status, body, _ = await web.post_event(payload, at=NOW + timedelta(minutes=minutes))
    message = assert_error(status, body, 401, "stale-timestamp")
    assert "360 seconds" in message
    assert web.outbox.calls == [] and web.reactor.stats.as_dict()["received_total"] == 0


async def test_the_timestamp_is_signed_with_the_body(web: Served) -> None:
    """The old body-only signature is refused (401 bad-signature), and so is a good
    signature sent with another timestamp; a missing timestamp is 401 missing-timestamp."""
    payload = encoded(start_payload())
    body_only = "sha256=" + hmac.new(SECRET.encode(), payload, hashlib.sha256).hexdigest()
    status, body, _ = await web.post_event(payload, header=body_only)
    assert_error(status, body, 401, "bad-signature")
    earlier = str(int(NOW.timestamp()) - 60)
    status, body, _ = await web.post_event(payload, header=signature(SECRET, earlier, payload))
    assert_error(status, body, 401, "bad-signature")
    headers = {"X-Deploybot-Signature": signature(SECRET, earlier, payload)}
    status, body, _ = await web.request("POST", "/api/v1/events", data=payload, headers=headers)
    assert_error(status, body, 401, "missing-timestamp")
    assert web.outbox.calls == []


async def test_an_event_without_an_id_is_refused(web: Served) -> None:
    """Without an id a replay could not be recognised: 400 missing-field, nothing done."""
    document = start_payload()
    del document["id"]
    status, body, _ = await web.post_event(encoded(document))
    message = assert_error(status, body, 400, "missing-field")
    assert "'id'" in message
    assert web.outbox.calls == []


async def test_a_locked_database_is_503_and_the_retry_does_all_of_it(web: Served) -> None:
    """Another connection holds the database's write lock: opening firefighting fails, so
    the webhook answers 503 store-unavailable with Retry-After, says nothing and keeps no
    id; the retry once the lock is gone opens firefighting and says the start (202, not a
    duplicate)."""
    web.reactor.deploy_day = DeployDay(web.core, web.outbox)
    payload = encoded(start_payload())
    with sqlite3.connect(web.core.store.path, isolation_level=None) as other:
        other.execute("BEGIN EXCLUSIVE")
        status, body, response = await web.post_event(payload)
        other.execute("ROLLBACK")
    message = assert_error(status, body, 503, "store-unavailable")
    assert "busy" in message and "send it again" in message
    assert response.headers["Retry-After"] == "5"
    assert web.outbox.posts == []
    status, body, _ = await web.post_event(payload)
    assert status == 202, body
    assert (body["duplicate"], body["facts"]) == (False, ["OpenFirefighting", "DeployStarted"])
    plan = web.core.book.get("pkgdb2-2.0")
    assert plan is not None and web.reactor.deploy_day.firefight.is_open(plan)
    assert "deploy of pkgdb2 started by pingou (groups/pkgdb.yml)" in web.outbox.to(ADMIN)


@pytest.mark.parametrize(
    ("header", "code"),
    [
        (None, "missing-signature"),
        ("sha256=" + "0" * 64, "bad-signature"),
        ("sha1=abcdef", "bad-signature"),
        ("", "bad-signature"),
    ],
)
async def test_unsigned_or_badly_signed_events_are_401_and_change_nothing(
    web: Served, header: str | None, code: str
) -> None:
    payload = encoded(start_payload())
    status, body, _ = await web.post_event(payload, sign=None, header=header)
    assert_error(status, body, 401, code)
    assert web.outbox.calls == []
    assert web.reactor.stats.as_dict()["received_total"] == 0


async def test_a_signature_made_with_another_secret_or_for_another_body_is_refused(
    web: Served,
) -> None:
    payload = encoded(start_payload())
    status, body, _ = await web.post_event(payload, sign="not the secret")
    assert_error(status, body, 401, "bad-signature")
    tampered = encoded(start_payload(userid="mallory"))
    stamp = str(int(NOW.timestamp()))
    status, body, _ = await web.post_event(tampered, header=signature(SECRET, stamp, payload))
    assert_error(status, body, 401, "bad-signature")
    # checked before parsing: garbage with a wrong signature is a 401, not a 400 not-json
    status, body, _ = await web.post_event(b"{not json", sign="not the secret")
    assert_error(status, body, 401, "bad-signature")
    assert web.reactor.stats.as_dict()["dropped_total"] == 0
    assert web.outbox.calls == []


async def test_the_webhook_is_off_without_a_secret(serve: Serve) -> None:
    """webhook_secret empty: 403 webhook-disabled saying how to turn it on, whatever the
    signature (even one made with the empty secret); nothing acted on."""
    web = await serve(webhook_secret="")
    payload = encoded(start_payload())
    for sign in ("", SECRET):
        status, body, _ = await web.post_event(payload, sign=sign)
        message = assert_error(status, body, 403, "webhook-disabled")
        assert "webhook_secret" in message
    assert web.outbox.calls == []


async def test_line_breaks_and_nul_in_an_event_never_make_a_multi_line_post(web: Served) -> None:
    """A user name carrying CR, LF and NUL (an attempt to inject an IRC command) gives one
    line, with the control characters gone."""
    payload = encoded(start_payload(userid="mallory\r\nPRIVMSG #ops :pwned\x00 x"))
    status, body, _ = await web.post_event(payload)
    assert status == 202, body
    (text,) = web.outbox.to(ADMIN)
    assert not re.search(r"[\r\n\x00]", text), repr(text)
    assert text.startswith("deploy of pkgdb2 started by mallory PRIVMSG #ops :pwned")


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (b"{not json", "not-json"),
        (b"[]", "not-object"),
        (b'{"topic": "org.fedoraproject.prod.x.y"}', "missing-field"),
        (b'{"topic": "org.fedoraproject.prod.x.y", "msg": {}}', "unknown-field"),
        (b'{"topic": "com.example.prod.x", "body": {}}', "bad-topic"),
    ],
)
async def test_signed_but_bad_events_are_400_with_the_kind_and_counted(
    web: Served, payload: bytes, code: str
) -> None:
    status, body, _ = await web.post_event(payload)
    assert_error(status, body, 400, code)
    assert web.reactor.stats.dropped[code] == 1
    assert web.outbox.calls == []


async def test_a_body_over_the_limit_is_413(web: Served) -> None:
    """More than MAX_BODY bytes: 413 too-large, whether the length is announced
    (Content-Length) or the body comes chunked; nothing acted on."""
    big = b'{"topic": "' + b"x" * MAX_BODY + b'"}'
    status, body, _ = await web.post_event(big)
    assert_error(status, body, 413, "too-large")

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(big), 65536):
            yield big[start : start + 65536]

    stamp = str(int(NOW.timestamp()))
    headers = {
        "X-Deploybot-Timestamp": stamp,
        "X-Deploybot-Signature": signature(SECRET, stamp, big),
    }
    status, body, _ = await web.request("POST", "/api/v1/events", data=chunks(), headers=headers)
    assert_error(status, body, 413, "too-large")
    assert web.outbox.calls == []


# -- health, metrics, pages, calendar ------------------------------------------------------


async def test_healthz(web: Served) -> None:
    status, body, response = await web.get("/healthz")
    assert status == 200 and response.content_type == "application/json"
    assert body == {
        "ok": True,
        "irc_connected": True,
        "irc": {"connected": True, "why": None, "down_seconds": 0, "login_failures": 0},
        "networks": {},
        "role": "active",
        "instance": None,
        "ha": {"backend": "sqlite", "active": None, "standbys_last_minute": 0},
        "plans": 1,
        "store_error": None,
        "as_of": "2026-12-15T13:10:00Z",
    }


async def test_a_standby_keeps_a_signed_event_for_the_active_one_which_acts_on_it_once(
    serve: Serve,
) -> None:
    """/healthz says the role and instance id; a standby (another instance is active on
    the same database) checks a signed event as the active does and keeps it in the
    store's inbox: 202 ``"queued": true``, acting on nothing; the same id again is a 200
    duplicate; a bad signature is still 401 and keeps nothing.  The active's drain acts on
    it once (the same facts as a webhook event) and empties the inbox; after that the
    standby answers the id 200 duplicate (acted on), and so does the active."""
    role = [Role("standby", "host-b:42")]
    web = await serve(webhook_secret=SECRET, role=lambda: role[0])
    status, body, _ = await web.get("/healthz")
    assert (status, body["role"], body["instance"]) == (200, "standby", "host-b:42")
    payload = encoded(start_payload())
    status, body, _ = await web.post_event(payload)
    assert (status, body) == (
        202,
        {
            "accepted": True,
            "id": "2026-abc-1",
            "topic": START,
            "duplicate": False,
            "facts": [],
            "queued": True,
        },
    )
    status, body, _ = await web.post_event(payload)
    assert (status, body["duplicate"], body["queued"]) == (200, True, False)
    status, body, _ = await web.post_event(encoded(start_payload(userid="mallory")), sign="no")
    assert_error(status, body, 401, "bad-signature")
    assert web.outbox.calls == []
    (queued,) = web.core.store.queued_events(10)
    assert (queued.id, queued.topic, queued.body) == ("2026-abc-1", START, payload.decode())

    assert drain_inbox(web.core, web.reactor) == 1  # what the active does, every second
    assert web.outbox.to(ADMIN) == ["deploy of pkgdb2 started by pingou (groups/pkgdb.yml)"]
    assert [e.kind for e in web.core.store.deploy_events(PLAN_ID)] == ["playbook-start"]
    assert web.core.store.queued_events(10) == ()
    assert drain_inbox(web.core, web.reactor) == 0
    status, body, _ = await web.post_event(payload)
    assert (status, body["duplicate"], body["queued"]) == (200, True, False)
    role[0] = Role("active", "host-b:42")
    status, body, _ = await web.post_event(payload)
    assert (status, body["duplicate"], body["queued"]) == (200, True, False)
    assert len(web.outbox.posts) == 1
    assert web.core.store.queued_events(10) == ()


async def test_a_queued_event_stays_queued_while_the_store_cannot_act_on_it(
    serve: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The drain's transaction fails — the write lock is held elsewhere, or the commit
    fails after the reactor acted (a kill -9 there is the same): the event stays queued
    and nothing it caused is kept; the next round acts on it, once."""
    web = await serve(webhook_secret=SECRET, role=lambda: Role("standby", "host-b:42"))
    status, _, _ = await web.post_event(encoded(start_payload()))
    assert status == 202
    store = web.core.store
    with sqlite3.connect(store.path, isolation_level=None) as other:
        other.execute("BEGIN EXCLUSIVE")
        assert drain_inbox(web.core, web.reactor) == 0
        other.execute("ROLLBACK")
    assert len(store.queued_events(10)) == 1
    handle = web.reactor.handle

    def acted_then_failed(event: BusEvent) -> list[Any]:
        handle(event)
        raise StoreWriteError("the disk is full")

    monkeypatch.setattr(web.reactor, "handle", acted_then_failed)
    assert drain_inbox(web.core, web.reactor) == 0
    assert len(store.queued_events(10)) == 1 and store.deploy_events(PLAN_ID) == ()
    monkeypatch.setattr(web.reactor, "handle", handle)
    assert drain_inbox(web.core, web.reactor) == 1
    assert [e.kind for e in store.deploy_events(PLAN_ID)] == ["playbook-start"]
    assert store.queued_events(10) == ()
    assert drain_inbox(web.core, web.reactor) == 0
    assert len(store.deploy_events(PLAN_ID)) == 1


async def test_the_drain_drops_a_day_old_event_and_one_that_does_not_decode(
    web: Served, caplog: pytest.LogCaptureFixture
) -> None:
    """A queued event received more than a day ago is dropped with a warning, not acted
    on; one that no longer decodes is logged and dropped; the next is acted on."""
    store = web.core.store
    old = encoded(start_payload())
    store.queue_event(
        "2026-abc-1",
        START,
        old.decode(),
        NOW - timedelta(days=1, seconds=1),
        source="webhook 192.0.2.1",
    )
    store.queue_event("junk-1", START, '{"topic": 1}', NOW, source="webhook 192.0.2.1")
    fresh = {**start_payload(), "id": "2026-abc-2"}
    store.queue_event("2026-abc-2", START, encoded(fresh).decode(), NOW, source="webhook x")
    with caplog.at_level(logging.WARNING):
        assert drain_inbox(web.core, web.reactor) == 3
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("2026-abc-1" in m and "more than a day" in m for m in warned), warned
    assert sum("webhook 192.0.2.1 (missing-field)" in m for m in warned) == 1, warned
    assert store.queued_events(10) == ()
    assert len(web.outbox.to(ADMIN)) == 1  # the fresh one only
    assert web.reactor.stats.dropped["missing-field"] == 1


async def test_healthz_is_503_while_the_database_cannot_be_written(web: Served) -> None:
    """Another connection holds the write lock (reads still work, so a SELECT probe would
    say ok): /healthz answers 503 with ok false and store_error saying the database is
    busy; once the lock is gone it is ok again."""
    with sqlite3.connect(web.core.store.path, isolation_level=None) as other:
        other.execute("BEGIN EXCLUSIVE")
        status, body, _ = await web.get("/healthz")
        other.execute("ROLLBACK")
    assert status == 503 and body["ok"] is False
    assert "busy" in body["store_error"]
    status, body, _ = await web.get("/healthz")
    assert (status, body["ok"], body["store_error"]) == (200, True, None)


async def test_healthz_reports_the_last_failed_write_until_one_succeeds(web: Served) -> None:
    """A write that failed (here: refused for the lock) is reported by /healthz even once
    the lock is gone, until a write succeeds again."""
    with sqlite3.connect(web.core.store.path, isolation_level=None) as other:
        other.execute("BEGIN EXCLUSIVE")
        with pytest.raises(StoreBusyError):
            report(web.core, 1)
        other.execute("ROLLBACK")
    status, body, _ = await web.get("/healthz")
    assert status == 503 and "busy" in body["store_error"]
    report(web.core, 2)
    status, body, _ = await web.get("/healthz")
    assert (status, body["store_error"]) == (200, None)


async def test_metrics_parse_as_prometheus_text_and_count_what_happened(web: Served) -> None:
    """After a webhook event and a 404, /metrics (text/plain; version=0.0.4) parses with
    prometheus-client's parser, with every family; the counters show the event, the
    fact, the incident and the requests by route."""
    report(web.core, 1)
    await web.post_event(encoded(start_payload()))
    await web.get("/api/v1/incidents/99")
    await web.get("/api/v1/incidents/1")
    status, text, response = await web.get("/metrics")
    assert status == 200
    assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    families = {family.name: family for family in text_string_to_metric_families(text)}
    samples = {
        sample.name + json.dumps(sample.labels, sort_keys=True): sample.value
        for family in families.values()
        for sample in family.samples
    }
    assert set(families) >= {
        "deploybot_bus_received",
        "deploybot_bus_decoded",
        "deploybot_bus_dropped",
        "deploybot_bus_facts",
        "deploybot_bus_duplicates",
        "deploybot_incidents",
        "deploybot_plans_loaded",
        "deploybot_irc_connected",
        "deploybot_http_requests",
    }
    assert samples['deploybot_bus_received_total{"source": "webhook"}'] == 1
    assert samples['deploybot_bus_facts_total{"fact": "DeployStarted"}'] == 1
    assert samples['deploybot_incidents{"state": "open"}'] == 1
    assert samples["deploybot_plans_loaded{}"] == 1
    route = '{"method": "GET", "route": "/api/v1/incidents/{n}", "status": "%s"}'
    assert samples["deploybot_http_requests_total" + route % "404"] == 1
    assert samples["deploybot_http_requests_total" + route % "200"] == 1
    events = '{"method": "POST", "route": "/api/v1/events", "status": "202"}'
    assert samples["deploybot_http_requests_total" + events] == 1


async def test_metrics_are_openmetrics_when_prometheus_asks(web: Served) -> None:
    """Prometheus's own Accept header gets OpenMetrics 1.0, ending with # EOF."""
    accept = (
        "application/openmetrics-text;version=1.0.0;q=0.5,"
        "application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,"
        "*/*;q=0.2"
    )
    status, text, response = await web.get("/metrics", headers={"Accept": accept})
    assert status == 200
    assert response.headers["Content-Type"].startswith("application/openmetrics-text;")
    assert text.endswith("# EOF\n")
    names = {family.name for family in openmetrics_families(text)}
    assert {"deploybot_incidents", "deploybot_http_requests"} <= names


async def test_front_page_digest_page_and_calendar_answer_with_their_types(web: Served) -> None:
    report(web.core, 1)
    status, text, response = await web.get("/")
    assert status == 200 and response.content_type == "text/html"
    assert "pkgdb2" in text
    status, text, response = await web.get("/digest/2026-12-15")
    assert status == 200 and response.content_type == "text/html"
    assert response.charset == "utf-8"
    status, text, response = await web.get("/calendar.ics")
    assert status == 200 and response.content_type == "text/calendar"
    assert response.charset == "utf-8"
    assert text.startswith("BEGIN:VCALENDAR") and "pkgdb2" in text
    [event] = icalendar.Calendar.from_ical(text).walk("VEVENT")
    assert str(event["URL"]) == web.url("/deployments/pkgdb2-2.0")
    status, text, response = await web.get("/digest/not-a-day")
    assert status == 400 and "is not a date" in text


async def test_the_front_page_shows_todays_incidents_and_those_still_open(web: Served) -> None:
    """Yesterday's fixed incident is history; yesterday's open one is still news."""
    store = web.core.store
    for text in ("old and fixed", "old and still open"):
        store.report_incident(
            service="pkgdb2",
            text=text,
            reporter_nick="bob",
            reporter_account=None,
            channel="#pkgdb2-firefight",
            now=WHEN - timedelta(days=1),
        )
    store.fix(1, "pingou", None, WHEN - timedelta(hours=20))
    today = report(web.core, 1)
    status, text, _ = await web.get("/")
    assert status == 200
    assert "old and still open" in text and "acl page returns 500" in text
    assert "old and fixed" not in text
    assert f"#{today}" in text


async def test_the_deploy_page_is_linked_from_the_front_page_and_shows_its_incidents(
    web: Served,
) -> None:
    """/ links each deploy to /deployments/{id}; that page shows the plan, who is on
    shift and the incidents reported during the deploy (not the others); an unknown id
    is a plain 404."""
    report(web.core, 5, text="during the deploy", deploy_id="pkgdb2-2.0")
    report(web.core, 6, text="elsewhere")
    status, text, _ = await web.get("/")
    assert status == 200 and '<a href="deployments/pkgdb2-2.0">' in text
    status, text, response = await web.get("/deployments/pkgdb2-2.0")
    assert status == 200 and response.content_type == "text/html"
    assert "⚠ API BREAK" in text and "On shift now:" in text
    assert "during the deploy" in text and "elsewhere" not in text
    status, text, response = await web.get("/deployments/no-such-plan")
    assert status == 404 and response.content_type != "application/json"
    assert "no deployment 'no-such-plan'" in text


async def test_the_post_mortem_draft_is_served_in_html_and_markdown(web: Served) -> None:
    """/deployments/{id}/postmortem: the HTML draft with the picture of the day (an SVG with
    one bar per incident), linked from the deploy page; …/postmortem.md the Markdown; an
    unknown id is a plain 404."""
    report(web.core, 5, text="during the deploy", deploy_id="pkgdb2-2.0")
    status, text, _ = await web.get("/deployments/pkgdb2-2.0")
    assert status == 200 and '<a href="pkgdb2-2.0/postmortem">Post-mortem draft</a>' in text
    assert text.count('class="incident ') == 1
    status, text, response = await web.get("/deployments/pkgdb2-2.0/postmortem")
    assert status == 200 and response.content_type == "text/html"
    assert "<h1>Post-mortem draft: pkgdb2 2.0 (pkgdb2-2.0)</h1>" in text
    assert text.count("<svg ") == 1 and text.count('class="incident ') == 1
    status, text, response = await web.get("/deployments/pkgdb2-2.0/postmortem.md")
    assert status == 200 and response.content_type == "text/markdown"
    assert text.startswith("# Post-mortem draft: pkgdb2 2.0 (pkgdb2-2.0)\n")
    assert "during the deploy" in text
    status, text, _ = await web.get("/deployments/nope/postmortem.md")
    assert status == 404 and "no deployment 'nope'" in text


# -- who may ask ----------------------------------------------------------------------------

EVERY_GET = [
    "/api/v1/",
    "/api/v1/schemas/error.schema.json",
    "/api/v1/deployments",
    "/api/v1/incidents",
    "/",
    "/deployments/pkgdb2-2.0",
    "/deployments/pkgdb2-2.0/postmortem",
    "/deployments/pkgdb2-2.0/postmortem.md",
    "/calendar.ics",
    "/metrics",
]
TOKEN = "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize("path", [*EVERY_GET, "/healthz", "/no-such-page"])
async def test_a_host_header_naming_another_site_is_421(web: Served, path: str) -> None:
    """A DNS-rebinding page (its own name resolved to 127.0.0.1) sends its own name as
    Host: every path answers 421 misdirected-request in the envelope, reads nothing."""
    status, body, response = await web.get(
        path, headers={"Host": f"evil.example:{web.server.port}"}
    )
    assert response.content_type == "application/json"
    message = assert_error(status, body, 421, "misdirected-request")
    assert "'evil.example'" in message and "web_public_names" in message


async def test_a_signed_webhook_event_for_another_host_is_421_too(web: Served) -> None:
    payload = encoded(start_payload())
    stamp = str(int(NOW.timestamp()))
    headers = {
        "Host": "evil.example",
        "X-Deploybot-Timestamp": stamp,
        "X-Deploybot-Signature": signature(SECRET, stamp, payload),
    }
    status, body, _ = await web.request("POST", "/api/v1/events", data=payload, headers=headers)
    assert_error(status, body, 421, "misdirected-request")
    assert web.outbox.calls == []


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1:{port}", "localhost:{port}", "LOCALHOST.", "[::1]:{port}", "192.0.2.7", "{public}"],
)
async def test_addresses_localhost_and_the_public_names_are_served(serve: Serve, host: str) -> None:
    """IP addresses (a rebinding page cannot send one), localhost and web_public_names
    (any case, a trailing dot, any port) are served."""
    web = await serve(web_public_names="deploybot.example.org")
    wanted = host.format(port=web.server.port, public="Deploybot.Example.org:443")
    status, body, _ = await web.get("/api/v1/deployments", headers={"Host": wanted})
    assert status == 200, body


async def test_the_server_header_names_no_version(web: Served) -> None:
    """aiohttp's Server header gives Python's and aiohttp's versions away; ours does not,
    on a page, an API answer and an error."""
    for path in ("/", "/api/v1/deployments", "/api/v1/nothing"):
        _, _, response = await web.get(path)
        assert response.headers["Server"] == "deploybot", response.headers


@pytest.mark.parametrize("path", EVERY_GET)
async def test_with_a_read_token_the_api_pages_and_metrics_ask_for_it(
    serve: Serve, path: str
) -> None:
    """With a read token set, no Authorization is 401 missing-token and a wrong one 401
    bad-token (both with WWW-Authenticate: Bearer); Bearer TOKEN is served."""
    web = await serve(read_token=TOKEN)
    status, body, response = await web.get(path)
    assert_error(status, body, 401, "missing-token")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    for wrong in ("Bearer " + TOKEN[:-1], "Basic " + TOKEN, TOKEN, "Bearer " + TOKEN + "x"):
        status, body, _ = await web.get(path, headers={"Authorization": wrong})
        assert_error(status, body, 401, "bad-token")
    status, body, _ = await web.get(path, headers={"Authorization": f"bearer  {TOKEN}"})
    assert status == 200, body


async def test_healthz_and_the_signed_webhook_need_no_read_token(serve: Serve) -> None:
    """/healthz is for probes and the webhook has its signature: no token asked."""
    web = await serve(read_token=TOKEN, webhook_secret=SECRET)
    status, _, _ = await web.get("/healthz")
    assert status == 200
    status, body, _ = await web.post_event(encoded(start_payload()))
    assert status == 202, body


def test_the_read_token_file_is_read_and_checked(tmp_path: Path) -> None:
    """load_read_token: the file's one line (blanks around ignored); a missing file, a
    short token or one with spaces is a ConfigError naming web_read_token_file, never
    showing the content; no file set: no token."""
    path = tmp_path / "token"
    path.write_text(f"  {TOKEN}\n", encoding="utf-8")
    assert load_read_token(path) == TOKEN
    assert load_read_token(None) is None
    for content in ("short-token\n", f"{TOKEN[:16]} {TOKEN[16:]}\n"):
        path.write_text(content, encoding="utf-8")
        with pytest.raises(ConfigError, match="web_read_token_file") as caught:
            load_read_token(path)
        assert "short-token" not in str(caught.value) and "32 printable" in str(caught.value)
    with pytest.raises(ConfigError, match="no such file"):
        load_read_token(tmp_path / "missing")


# -- the server -----------------------------------------------------------------------------


async def test_a_port_in_use_is_a_clear_start_error(core_factory: Callable[..., Core]) -> None:
    """Listening on a port someone holds fails with WebStartError naming host:port."""
    core = core_factory()
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        server = WebServer(core, BusReactor(core, RecordingOutbox()), host="127.0.0.1", port=port)
        with pytest.raises(WebStartError, match=rf"web_host:web_port 127\.0\.0\.1:{port}: "):
            await server.start()
    await server.stop()  # nothing to stop: harmless
