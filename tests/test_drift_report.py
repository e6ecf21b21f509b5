"""deploybot.drift.report: a run over a plan's probes, declared vs observed."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from deploybot.drift.diff import read_answer
from deploybot.drift.report import DriftRun, Fetched, endpoint_of, judge
from deploybot.plans.files import load_text
from deploybot.plans.model import Plan
from deploybot.plans.policy import assess, format_readiness
from deploybot.store import Store

from .driftdata import PROBES, body, plan_text

RAN_AT = datetime(2026, 12, 14, 12, 55, tzinfo=UTC)


def pkgdb_plan(probes: tuple[str, ...] = PROBES) -> Plan:
    return load_text(
        plan_text("https://stg.example/pkgdb", "https://prod.example/pkgdb", probes),
        "pkgdb2-2.0.yaml",
    )


def fetch_all(plan: Plan, failing: str = "") -> list[Fetched]:
    """What the adapter would fetch from the 2014 answers (production asked twice)."""
    out = []
    calls = iter(range(1, 1000))
    for probe in plan.probes:
        if probe.path == failing:
            out.append(Fetched(probe, None, "staging: connection refused"))
            continue
        answers = tuple(
            read_answer(*body(role, probe.endpoint, next(calls)))
            for role in ("production", "production", "staging")
        )
        out.append(Fetched(probe, answers))  # type: ignore[arg-type]
    return out


def test_the_2014_answers_declared_and_undeclared() -> None:
    """acl ([] → null) and the list gone (410) are declared; the collections rename is
    not: an UNDECLARED API BREAK.  The timestamp, request id and shuffled list are noise;
    the declared critpath break is not observed."""
    plan = pkgdb_plan()
    run = judge(plan, fetch_all(plan), RAN_AT)
    statuses = {probe.path: probe.status for probe in run.probes}
    assert statuses == {
        "/api/packager/acl?packagername=toshio": "declared-drift",
        "/api/collections": "undeclared-drift",
        "/api/packager/list": "declared-drift",
        "/api/version": "same",
        "/api/packages": "same",
        "/api/critpath": "same",
    }
    assert [(p.path, d.text) for p, d in run.undeclared] == [
        (
            "/api/collections",
            ".collections[].koji_name: renamed to .collections[].dist_tag (string)",
        )
    ]
    assert [(b.endpoint, b.status) for b in run.breaks] == [
        ("/api/packager/acl", "observed"),
        ("/api/packager/list", "observed"),
        ("/api/critpath", "not-observed"),
    ]
    assert run.verdict == "undeclared-drift" and run.exit_code == 1
    assert run.lines(UTC) == [
        "pkgdb2-2.0 drift (2026-12-14 12:55 UTC): ⚠ 1 UNDECLARED API BREAK (/api/collections); "
        "declared breaks seen on 2 probes; 1 declared break not observed",
        "declared (/api/packager/acl) /api/packager/acl?packagername=toshio: .acls: array → null",
        "⚠ UNDECLARED API BREAK /api/collections: .collections[].koji_name: renamed to "
        ".collections[].dist_tag (string)",
        "declared (/api/packager/list) /api/packager/list: status 200 → 410",
        "declared, not observed (check the probe): /api/critpath — the critpath flag is per branch",
    ]


def test_everything_declared_is_exit_0_and_a_failed_probe_is_exit_2() -> None:
    plan = pkgdb_plan(tuple(p for p in PROBES if p != "/api/collections"))
    run = judge(plan, fetch_all(plan), RAN_AT)
    assert (run.verdict, run.exit_code) == ("no-undeclared-drift", 0)
    assert run.summary(UTC).startswith("pkgdb2-2.0 drift (2026-12-14 12:55 UTC): no undeclared")
    failed = judge(plan, fetch_all(plan, failing="/api/version"), RAN_AT)
    assert (failed.verdict, failed.exit_code) == ("incomplete", 2)
    assert "✘ /api/version could not run: staging: connection refused" in failed.lines(UTC)
    # an undeclared finding is still a finding when another probe failed
    full = pkgdb_plan()
    both = judge(full, fetch_all(full, failing="/api/version"), RAN_AT)
    assert both.exit_code == 1


def test_a_break_no_probe_covers_and_one_whose_probe_failed() -> None:
    plan = pkgdb_plan(("/api/packager/acl?packagername=toshio",))
    run = judge(plan, fetch_all(plan, failing="/api/packager/acl?packagername=toshio"), RAN_AT)
    assert [b.status for b in run.breaks] == ["not-checked", "not-probed", "not-probed"]
    assert "declared, no probe covers it: /api/critpath — the critpath flag is per branch" in (
        run.lines(UTC)
    )


def test_endpoints_match_by_path_prefix_at_a_slash() -> None:
    assert endpoint_of("GET /api/packager/acl?x=1") == "/api/packager/acl"
    assert endpoint_of("/api/packager/") == "/api/packager"
    assert endpoint_of("the whole API") is None
    from deploybot.drift.report import breaks_covering
    from deploybot.plans.model import ApiBreak, Probe

    breaks = (ApiBreak("/api/packager", "x"), ApiBreak("/api/pack", "y"), ApiBreak("all", "z"))
    assert breaks_covering(Probe("/api/packager/acl?x=1"), breaks) == breaks[:1]
    assert breaks_covering(Probe("/api/packagers"), breaks) == ()


def test_the_stored_form_reads_back_the_same_run() -> None:
    plan = pkgdb_plan()
    run = judge(plan, fetch_all(plan, failing="/api/version"), RAN_AT)
    assert DriftRun.loads(run.dumps()) == run
    document = run.to_json()
    assert document["ran_at"] == "2026-12-14T12:55:00Z"
    assert document["verdict"] == "undeclared-drift" and document["undeclared"] == 1
    acl = document["probes"][0]
    assert acl["differences"][0] == {
        "kind": "type-changed",
        "path": ".acls",
        "production": "array",
        "staging": "null",
        "renamed_to": None,
        "breaking": True,
        "declared": True,
        "text": ".acls: array → null",
    }
    with Store.open(":memory:") as store:
        store.record_drift_run(run.plan_id, run.ran_at, run.verdict, run.dumps())
        stored = store.latest_drift_run("pkgdb2-2.0")
        assert stored is not None and DriftRun.loads(stored.report) == run


def test_countdown_lines_carry_only_undeclared_findings() -> None:
    plan = pkgdb_plan()
    run = judge(plan, fetch_all(plan), RAN_AT)
    assert run.countdown_lines(ZoneInfo("Europe/Paris")) == [
        "⚠ UNDECLARED API BREAK (staging vs production, probed 2026-12-14 13:55 CET): "
        "/api/collections: .collections[].koji_name: renamed to .collections[].dist_tag (string)"
    ]
    declared_only = pkgdb_plan(("/api/packager/acl?packagername=toshio",))
    assert judge(declared_only, fetch_all(declared_only), RAN_AT).countdown_lines(UTC) == []


def test_readiness_rule_from_the_latest_run() -> None:
    """no-undeclared-drift: not checked yet, missing with the endpoints, met."""
    plan = pkgdb_plan()
    never = assess(plan, drift=None)
    assert [c.rule for c in never.checks][-1] == "no-undeclared-drift"
    assert not never.checks[-1].met
    assert never.checks[-1].reason.startswith("not checked yet")
    run = judge(plan, fetch_all(plan), RAN_AT)
    found = assess(plan, drift=run.state()).checks[-1]
    assert not found.met
    assert found.reason == (
        "⚠ UNDECLARED API BREAK on /api/collections (probed 2026-12-14 12:55 UTC); "
        "declare it in api_breaks or fix staging"
    )
    clean_plan = pkgdb_plan(("/api/packager/acl?packagername=toshio", "/api/version"))
    clean = assess(clean_plan, drift=judge(clean_plan, fetch_all(clean_plan), RAN_AT).state())
    assert clean.checks[-1].met
    lines = format_readiness(clean, ZoneInfo("Europe/Paris"))
    assert (
        lines[-1]
        == "  ✔ no-undeclared-drift: no undeclared drift on 2 probes (probed 2026-12-14 13:55 CET)"
    )
    failed = judge(clean_plan, fetch_all(clean_plan, failing="/api/version"), RAN_AT)
    check = assess(clean_plan, drift=failed.state()).checks[-1]
    assert not check.met and check.reason.startswith(
        "not checked: 1 probe could not run (/api/version"
    )


def test_a_plan_without_probes_keeps_its_six_rules() -> None:
    plan = pkgdb_plan(())
    assert len(assess(plan).checks) == 6
