"""The drift probe's surfaces over a real core (plans from files, SQLite under tmp_path):
the API route, the deploy page's section, the readiness rule in !ready, !deploy, the
API, the pages and the calendar — all from the latest stored run —, ``!drift``, and the
runs of the countdowns a day or more ahead with their ⚠ UNDECLARED API BREAK lines."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, timedelta
from pathlib import Path

import pytest

from deploybot.commands.base import Request
from deploybot.commands.dispatch import Outgoing, dispatch
from deploybot.commands.registry import build_registry
from deploybot.config import config_from_mapping
from deploybot.core import Core
from deploybot.deployday.countdowns import CountdownPoster
from deploybot.drift.report import DriftRun, Fetched, judge
from deploybot.drift.runs import REUSE_WITHIN, DriftRunner, drift_state, latest_run
from deploybot.plans.book import PlanBook
from deploybot.plans.files import dump_plan
from deploybot.plans.model import Plan
from deploybot.store import Store
from deploybot.store.driftruns import KEPT_RUNS
from deploybot.web import api
from deploybot.web.api import ApiError
from deploybot.web.calendarfeed import calendar_feed
from deploybot.web.pages import deployment_page_of, front_page
from tests.apischema import check_answer
from tests.fakes import RecordingOutbox
from tests.planfactory import make_plan, utc
from tests.test_webpages import parse

from .driftdata import PROBES, plan_text
from .test_drift_report import fetch_all

NOW = utc(2026, 12, 14, 13)


@pytest.fixture
def core(tmp_path: Path) -> Iterator[Core]:
    plans = tmp_path / "plans"
    plans.mkdir()
    text = plan_text("https://stg.example/pkgdb", "https://prod.example/pkgdb", PROBES)
    (plans / "pkgdb2-2.0.yaml").write_text(text, encoding="utf-8")
    store = Store.open(tmp_path / "db.sqlite3")
    book = PlanBook(plans)
    assert not book.reload().problems
    config = config_from_mapping({"timezone": "UTC"})
    yield Core(config=config, store=store, book=book, clock=lambda: NOW)
    store.close()


def record(core: Core, failing: str = "") -> DriftRun:
    plan = core.plans[0]
    run = judge(plan, fetch_all(plan, failing), utc(2026, 12, 14, 12, 55))
    core.store.record_drift_run(plan.id, run.ran_at, run.verdict, run.dumps())
    return run


def test_the_api_route_before_and_after_a_run(core: Core) -> None:
    """``run`` is null until a run is stored, then the latest run; it fits its schema."""
    path = "/api/v1/deployments/pkgdb2-2.0/drift"
    before = api.drift_document(core, "pkgdb2-2.0")
    check_answer("GET", path, 200, before)
    assert before["run"] is None and before["probes"] == list(PROBES)
    run = record(core)
    after = api.drift_document(core, "pkgdb2-2.0")
    check_answer("GET", path, 200, after)
    assert after["run"] == run.to_json()
    assert after["run"]["verdict"] == "undeclared-drift"
    with pytest.raises(ApiError) as unknown:
        api.drift_document(core, "nope")
    assert unknown.value.status == 404


def test_readiness_everywhere_reads_the_latest_run(core: Core) -> None:
    plan = core.plans[0]
    assert drift_state(core.store, plan) is None
    document = api.deployment_document(core, plan.id)
    check_answer("GET", "/api/v1/deployments/pkgdb2-2.0", 200, document)
    (rule,) = [
        c
        for c in document["deployment"]["readiness"]["checks"]
        if c["rule"] == "no-undeclared-drift"
    ]
    assert not rule["met"] and rule["reason"].startswith("not checked yet")
    record(core)
    document = api.deployment_document(core, plan.id)
    (rule,) = [
        c
        for c in document["deployment"]["readiness"]["checks"]
        if c["rule"] == "no-undeclared-drift"
    ]
    assert rule["reason"].startswith("⚠ UNDECLARED API BREAK on /api/collections")
    assert "⚠ UNDECLARED API BREAK on /api/collections" in parse(front_page(core)).all_text
    feed = calendar_feed(core.plans, now=NOW, readiness=core.readiness).replace("\r\n ", "")
    assert "MISSING: no undeclared drift on staging — ⚠ UNDECLARED API BREAK on /api/c" in feed


def test_the_deploy_page_shows_the_latest_run(core: Core) -> None:
    page = deployment_page_of(core, "pkgdb2-2.0")
    assert page is not None
    assert "not probed yet: deploybot drift pkgdb2-2.0 or !drift pkgdb2-2.0" in parse(page).all_text
    record(core, failing="/api/version")
    page = deployment_page_of(core, "pkgdb2-2.0")
    assert page is not None
    text = parse(page).all_text
    assert "Staging vs production drift" in text
    assert "⚠ undeclared API break" in text
    assert ".collections[].koji_name: renamed to .collections[].dist_tag (string)" in text
    assert "✘ could not run" in text and "staging: connection refused" in text
    assert "declared, not observed (check the probe)" in text


def test_the_store_keeps_the_latest_runs(core: Core) -> None:
    for _ in range(KEPT_RUNS + 3):
        record(core)
    assert core.store.drift_run_count("pkgdb2-2.0") == KEPT_RUNS
    assert latest_run(core.store, "pkgdb2-2.0") is not None


def test_a_version_5_database_gains_the_drift_runs_table(tmp_path: Path) -> None:
    """Migration 6 adds drift_runs to a database of the previous version, data kept."""
    import sqlite3

    from deploybot.store import migrations

    path = tmp_path / "old.sqlite3"
    raw = sqlite3.connect(path, isolation_level=None)
    for step in migrations.MIGRATIONS[:5]:
        step.apply(raw)
    raw.execute("PRAGMA user_version = 5")
    raw.execute(
        "INSERT INTO consumers (service, nick, registered_at, updated_at)"
        " VALUES ('pkgdb2', 'dgilmore', '2026-11-27T10:00:00Z', '2026-11-27T10:00:00Z')"
    )
    raw.close()
    with Store.open(path) as store:
        assert [c.nick for c in store.consumers("pkgdb2")] == ["dgilmore"]
        assert store.latest_drift_run("pkgdb2-2.0") is None
        store.record_drift_run("pkgdb2-2.0", NOW, "incomplete", "{}")
        assert store.drift_run_count("pkgdb2-2.0") == 1


# --- !drift ---------------------------------------------------------------------------------


def drift_request(line: str, channel: str | None = "#fedora-admin") -> Request:
    name, _, args = line.removeprefix("!").partition(" ")
    return Request("bob", "bob!bob@users.test", None, channel, name, args, NOW)


class CountingFetch:
    """The 2014 answers (the network is the boundary replaced here), counting the runs."""

    def __init__(self, failing: str = "") -> None:
        self.failing = failing
        self.calls = 0

    async def __call__(self, plan: Plan) -> list[Fetched]:
        self.calls += 1
        return fetch_all(plan, self.failing)


async def test_drift_command_long_report_privately_summary_in_the_channel(core: Core) -> None:
    """The 2014 run is five lines: they go privately, and the channel gets the run's
    summary instead of "sent you 5 lines"; the run is stored."""
    fetch = CountingFetch()
    core.drift = DriftRunner(core.store, fetch, lambda: NOW)
    out = await dispatch(core, build_registry(), drift_request("!drift pkgdb2-2.0"))
    run = latest_run(core.store, "pkgdb2-2.0")
    assert run is not None and fetch.calls == 1
    assert out[0] == Outgoing(
        "#fedora-admin",
        "bob: pkgdb2-2.0 drift (2026-12-14 13:00 UTC): ⚠ 1 UNDECLARED API BREAK "
        "(/api/collections); declared breaks seen on 2 probes; 1 declared break not observed "
        "(sent you 5 lines)",
    )
    assert out[1:] == [Outgoing("bob", line) for line in run.lines(UTC)]
    assert out[2].text.startswith("declared (/api/packager/acl) ")


async def test_drift_command_answers_a_run_of_the_last_minute_again(core: Core) -> None:
    """Within REUSE_WITHIN the latest run is the answer: staging and production are not
    asked again; after it, they are."""
    fetch = CountingFetch(failing="/api/collections")
    clock = [NOW]
    core.drift = DriftRunner(core.store, fetch, lambda: clock[0])
    first = await dispatch(core, build_registry(), drift_request("!drift pkgdb2-2.0", None))
    later = NOW + REUSE_WITHIN - timedelta(seconds=1)
    again = drift_request("!drift pkgdb2-2.0", None)
    second = await dispatch(core, build_registry(), replace(again, now=later))
    assert fetch.calls == 1 and first == second
    assert "could not run" in first[0].text  # privately: a private message asked
    clock[0] = NOW + REUSE_WITHIN
    await dispatch(core, build_registry(), replace(again, now=clock[0]))
    assert fetch.calls == 2 and core.store.drift_run_count("pkgdb2-2.0") == 2


async def test_drift_command_without_probes_or_fetcher_says_why(core: Core, tmp_path: Path) -> None:
    out = await dispatch(core, build_registry(), drift_request("!drift pkgdb2-2.0"))
    assert [o.text for o in out] == [
        "the drift probe cannot run here; deploybot drift pkgdb2-2.0 runs it"
    ]
    (tmp_path / "plans" / "fas.yaml").write_text(
        dump_plan(make_plan(id="fas-3.0", service="fas", probes=())), encoding="utf-8"
    )
    core.book.reload()
    out = await dispatch(core, build_registry(), drift_request("!drift fas-3.0"))
    assert [o.text for o in out] == [
        "fas-3.0 has no probes: list GET paths under probes: in its plan to compare "
        "staging's answers with production's"
    ]


# --- the countdowns' runs -------------------------------------------------------------------

UNDECLARED_LINE = (
    "⚠ UNDECLARED API BREAK (staging vs production, probed {at}): /api/collections: "
    ".collections[].koji_name: renamed to .collections[].dist_tag (string)"
)


def posted(outbox: RecordingOutbox) -> list[str]:
    return [text for target, text in outbox.posts if target == "#fedora-admin"]


async def test_the_countdown_a_day_ahead_runs_the_probe_and_warns(core: Core) -> None:
    """The 1d countdown's job runs the probe (stored), then posts its undeclared finding
    after the declared breaks and before the headline."""
    fetch = CountingFetch()
    core.drift = DriftRunner(core.store, fetch, lambda: NOW)
    outbox = RecordingOutbox()
    await CountdownPoster(core, outbox).sweep()
    assert fetch.calls == 1 and core.store.drift_run_count("pkgdb2-2.0") == 1
    lines = posted(outbox)
    assert lines[3] == UNDECLARED_LINE.format(at="2026-12-14 13:00 UTC")
    assert lines[2].startswith("⚠ API BREAK: /api/critpath") and "deploys in 1 day" in lines[4]
    assert len(lines) == 5


async def test_a_countdown_under_a_day_neither_probes_nor_warns(core: Core) -> None:
    record(core)  # a run with the undeclared break, stored earlier
    outbox = RecordingOutbox()
    poster = CountdownPoster(core, outbox)
    assert poster.post_due(NOW) == ["pkgdb2-2.0@1d"]  # no runner: with the stored run
    fetch = CountingFetch()
    core.drift = DriftRunner(core.store, fetch, lambda: NOW)
    later = NOW + timedelta(hours=20)  # the 4h countdown
    core.clock = lambda: later
    await poster.sweep()
    assert fetch.calls == 0
    four_hours = posted(outbox)[5:]
    assert four_hours and "deploys in 4h" in four_hours[-1]
    assert not any("UNDECLARED" in line for line in four_hours)


async def test_without_a_runner_the_stored_run_is_posted(core: Core) -> None:
    """Where nothing may fetch, the 1d countdown carries the latest stored run's finding,
    which says when it probed; without a run it carries none."""
    outbox = RecordingOutbox()
    CountdownPoster(core, outbox).post_due(NOW - timedelta(hours=1))  # 3d: no run yet
    assert not any("UNDECLARED" in line for line in posted(outbox))
    record(core)
    outbox = RecordingOutbox()
    CountdownPoster(core, outbox).post_due(NOW)
    assert UNDECLARED_LINE.format(at="2026-12-14 12:55 UTC") in posted(outbox)


async def test_a_sweep_that_cannot_wait_leaves_the_countdown_to_the_probing_one(
    core: Core,
) -> None:
    """post_due alone (start-up, a plan reload) does not post a countdown that runs the
    probe, before or while its probe runs; sweep() posts it once, with the fresh finding."""
    release = asyncio.Event()

    async def slow(plan: Plan) -> list[Fetched]:
        await release.wait()
        return fetch_all(plan)

    core.drift = DriftRunner(core.store, slow, lambda: NOW)
    outbox = RecordingOutbox()
    poster = CountdownPoster(core, outbox)
    assert poster.post_due(NOW) == []
    job = asyncio.ensure_future(poster.sweep())
    await asyncio.sleep(0.01)
    assert poster.post_due(NOW) == [] and outbox.posts == []
    release.set()
    await job
    assert posted(outbox).count(UNDECLARED_LINE.format(at="2026-12-14 13:00 UTC")) == 1
    claims = {claim.key: claim for claim in core.store.countdown_claims()}
    assert not claims["pkgdb2-2.0@1d"].skipped
    await poster.sweep()  # posted once: the ledger
    assert posted(outbox).count(UNDECLARED_LINE.format(at="2026-12-14 13:00 UTC")) == 1


async def test_a_probe_that_breaks_does_not_stop_the_countdown(
    core: Core, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(plan: Plan) -> list[Fetched]:
        raise RuntimeError("boom")

    core.drift = DriftRunner(core.store, broken, lambda: NOW)
    outbox = RecordingOutbox()
    await CountdownPoster(core, outbox).sweep()
    assert "deploys in 1 day" in posted(outbox)[-1]
    assert "drift probe of pkgdb2-2.0 before its countdown failed" in caplog.text
