"""Time and memory of a day's digest on a big database.

Run by hand (not part of the test suite):

    .venv/bin/python -m bench.digest [--db PATH] [--tz Europe/Paris] [--backend postgresql]

Fills an SQLite store (in a temporary directory, or PATH: kept and reused when it is
already filled) with 1,000,000 incidents, 100,000 of them reported on one day
(2026-12-15 in --tz): 300 of those go through the store's own write path
(report/take/ack/fix, so the bulk rows can be checked against real ones), the rest are
bulk-inserted with executemany into the same schema (deploybot/store/migrations.py), with
realistic fields: three deploys that day, reporters from a pool of nicks, ~80% of the
incidents acknowledged, most of them fixed (some after the day, a few never), and a
timeline of 1-4 events each.

Then, in a fresh process (like ``deploybot digest --date`` would be), it opens the store,
times :func:`deploybot.deployday.digest.digest_for_day` for that day (first call and best of three),
reads the process's peak RSS (``ru_maxrss``), and finally measures the tracemalloc peak
of one more digest call (tracemalloc slows the call down and adds its own memory, so it
comes after the other two figures).

With ``--backend postgresql`` the filled SQLite store is copied (``COPY``, about a
minute) into a database of a PostgreSQL server of its own (tests/postgres.py's harness:
Debian's ``postgresql`` on a free 127.0.0.1 port, stopped at the end), and the same figures
are measured there.

Targets (2-core machine): under 0.5 s for the digest, under 80 MB peak RSS for the whole
process.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import resource
import sqlite3
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bench._steps import run_step
from deploybot.deployday.digest import (
    DigestSource,
    build_digest,
    day_period,
    digest_for_day,
    digest_to_dict,
    full_lines,
    short_lines,
)
from deploybot.plans.model import Consumer, Plan, Roster, Shift
from deploybot.store import Store

TOTAL = 1_000_000
ON_DAY = 100_000
THROUGH_STORE = 300
DAY = date(2026, 12, 15)
HISTORY_DAYS = 730
TARGET_SECONDS = 0.5
TARGET_RSS_MB = 80.0

SERVICES = [
    "pkgdb2", "fas", "bodhi", "koji", "pagure", "ask", "nuancier", "paste", "wiki",
    "mirrormanager", "fedocal", "elections", "badges", "datagrepper", "fmn", "anitya",
    "mailman", "hyperkitty", "taskotron", "copr", "packages", "tagger", "notifs", "kerneltest",
]  # fmt: skip
PROBLEMS = [
    "acl api returns null instead of an empty list",
    "login fails with a 500",
    "the compose script cannot read packager data",
    "timeout on branch request",
    "page is blank",
    "cron job mails a traceback every hour",
    "sync to the mirror lists stalled",
    "cert expired",
    "search returns nothing for existing packages",
    "API client gets a 404 on the old endpoint",
]
NICKS = [f"user{i:03d}" for i in range(280)] + [
    "pingou", "abadger1999", "nirik", "dgilmore", "threebean", "ralph", "puiterwijk",
    "smooge", "relrod", "kevin", "codeblock", "lmacken", "toshio", "mizmo", "sayan",
    "bochecha", "ausil", "tflink", "jreznik", "adamw",
]  # fmt: skip


def day_plans(tz: tzinfo) -> list[Plan]:
    """Three deploys on DAY (local times in tz) with rosters and consumer contacts."""

    def at(hour: int) -> datetime:
        return datetime(DAY.year, DAY.month, DAY.day, hour, tzinfo=tz).astimezone(UTC)

    def plan(pid: str, service: str, start: int, hours: int, teams: dict[str, list[str]]) -> Plan:
        when = at(start)
        shifts = tuple(
            Shift(team=team, people=tuple(people), start=when, end=when + timedelta(hours=hours))
            for team, people in teams.items()
        )
        return Plan(
            id=pid, service=service, release=pid.rpartition("-")[2], title=f"{service} upgrade",
            when=when, duration=timedelta(hours=hours), owners=(next(iter(teams.values()))[0],),
            consumers=(Consumer(name="compose scripts", team="rel-eng", contact="dgilmore"),),
            roster=Roster(shifts=shifts, escalation=("nirik",)),
        )  # fmt: skip

    return [
        plan("fas-3.0", "fas", 8, 4, {"infrastructure": ["puiterwijk", "smooge"]}),
        plan("pkgdb2-2.0", "pkgdb2", 13, 8,
             {"infrastructure": ["pingou", "abadger1999"], "rel-eng": ["ausil"]}),
        plan("bodhi-2.1", "bodhi", 18, 5, {"infrastructure": ["lmacken", "threebean"],
                                           "qa": ["adamw", "tflink"]}),
    ]  # fmt: skip


# -- filling ----------------------------------------------------------------------------


def _text(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def _incident_rows(
    rng: random.Random, first_number: int, times: list[int], plans: list[Plan], fixed_share: float
) -> Iterator[tuple[tuple[object, ...], list[tuple[object, ...]]]]:
    """(incident row, its events) for each reported time (epoch seconds), numbered on;
    ``fixed_share`` of them get fixed (some long after)."""
    windows = [(p.id, p.service, int(p.when.timestamp()), int(p.end.timestamp())) for p in plans]
    for offset, reported in enumerate(times):
        number = first_number + offset
        reporter = rng.choice(NICKS)
        account = reporter if rng.random() < 0.8 else None
        deploy_id: str | None = None
        minutes: int | None = None
        service = rng.choice(SERVICES)
        for pid, plan_service, start, end in windows:
            if start <= reported < end and rng.random() < 0.85:
                deploy_id, service, minutes = pid, plan_service, (reported - start) // 60
                break
        text = f"{rng.choice(PROBLEMS)} ({rng.choice(PROBLEMS)}?)"
        channel = f"#{service}-firefight" if deploy_id else "#fedora-admin"
        at = _text(reported)
        events: list[tuple[object, ...]] = [(number, at, reporter, account, "reported", text)]
        helper = rng.choice(NICKS)
        while helper == reporter:
            helper = rng.choice(NICKS)
        fix_after: int | None = None
        if rng.random() < fixed_share:
            if rng.random() < 0.0005:
                fix_after = rng.randint(2, 30) * 86400  # the odd forgotten one
            else:
                fix_after = min(int(rng.lognormvariate(math.log(2700), 1.1)) + 60, 3 * 86400)
        ack_after = int(rng.expovariate(1 / 480)) + 10 if rng.random() < 0.85 else None
        if ack_after is not None and fix_after is not None and ack_after > fix_after:
            ack_after = fix_after
        acknowledged_at = acknowledged_by = owner = None
        if ack_after is not None:
            acknowledged_at, acknowledged_by = _text(reported + ack_after), helper
            if rng.random() < 0.7:
                owner = helper
                events.append((number, acknowledged_at, helper, helper, "taken", ""))
            else:
                events.append((number, acknowledged_at, helper, helper, "ack", ""))
        if rng.random() < 0.3:
            note_at = reported + (ack_after or 0) + rng.randint(30, 900)
            events.append((number, _text(note_at), rng.choice(NICKS), None, "note", "looking"))
        fixed_at = fixed_by = None
        if fix_after is not None:
            fixed_at, fixed_by = _text(reported + fix_after), owner or helper
            events.append((number, fixed_at, fixed_by, None, "fixed", ""))
            if acknowledged_at is None:  # a fix by someone else acknowledges too
                acknowledged_at, acknowledged_by = fixed_at, fixed_by
        row = (
            number, service, deploy_id, minutes, text, reporter, account, channel, at,
            acknowledged_at, acknowledged_by, owner, fixed_at, fixed_by, fix_after,
        )  # fmt: skip
        yield row, events


def fill(path: Path, tz: tzinfo) -> dict[str, float]:
    rng = random.Random(20141215)
    start, end = day_period(DAY, tz)
    day_start, day_end = int(start.timestamp()), int(end.timestamp())
    history_start = day_start - HISTORY_DAYS * 86400
    bulk_day = ON_DAY - THROUGH_STORE
    after = 2_000  # a little after the day, so the query has something to leave out
    history = TOTAL - ON_DAY - after
    began = time.perf_counter()
    Store.open(path).close()  # the schema, through the store's own migrations
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA synchronous = OFF")
    db.execute("BEGIN")
    plans = day_plans(tz)
    # Incidents cluster in the deploy windows on the day (busy firefighting).
    day_times = sorted(
        rng.randint(day_start, day_end - 1)
        if rng.random() < 0.3
        else rng.randint(int(p.when.timestamp()), int(p.end.timestamp()) - 1)
        for p in (rng.choice(plans) for _ in range(bulk_day))
    )
    # (times, share fixed): a forgotten open incident now and then in the history.
    batches = [
        (sorted(rng.randint(history_start, day_start - 1) for _ in range(history)), 0.999),
        (day_times, 0.97),
        (sorted(rng.randint(day_end, day_end + 3 * 86400) for _ in range(after)), 0.97),
    ]
    number = 1
    insert_incident = (
        "INSERT INTO incidents (number, service, deploy_id, minutes_into_deploy, text,"
        " reporter_nick, reporter_account, channel, reported_at, acknowledged_at,"
        " acknowledged_by, owner, fixed_at, fixed_by, repair_seconds)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )
    insert_event = (
        "INSERT INTO incident_events (incident, at, nick, account, kind, text)"
        " VALUES (?, ?, ?, ?, ?, ?)"
    )
    events_count = 0
    for times, fixed_share in batches:
        for chunk in range(0, len(times), 50_000):
            part = times[chunk : chunk + 50_000]
            rows: list[tuple[object, ...]] = []
            events: list[tuple[object, ...]] = []
            for row, row_events in _incident_rows(rng, number, part, plans, fixed_share):
                rows.append(row)
                events += row_events
            db.executemany(insert_incident, rows)
            db.executemany(insert_event, events)
            events_count += len(events)
            number += len(part)
    db.execute("COMMIT")
    db.close()
    bulk_seconds = time.perf_counter() - began
    began = time.perf_counter()
    with Store.open(path) as store:
        for _ in range(THROUGH_STORE):
            reported = datetime.fromtimestamp(rng.randint(day_start, day_end - 7200), UTC)
            reporter = rng.choice(NICKS)
            incident = store.report_incident(
                service="pkgdb2", text=rng.choice(PROBLEMS),
                reporter_nick=reporter, reporter_account=reporter, channel="#pkgdb2-firefight",
                now=reported, deploy_id="pkgdb2-2.0", minutes_into_deploy=None,
            )  # fmt: skip
            helper = "nirik" if reporter != "nirik" else "pingou"
            if rng.random() < 0.8:
                store.take(incident.number, helper, helper, reported + timedelta(minutes=3))
            if rng.random() < 0.7:
                store.fix(incident.number, helper, helper, reported + timedelta(minutes=50))
    store_seconds = time.perf_counter() - began
    _check_bulk_rows_look_like_store_rows(path)
    return {
        "fill_bulk_s": bulk_seconds,
        "fill_store_s": store_seconds,
        "events": events_count,
        "fill_rss_mb": _rss_mb(),
    }


def _check_bulk_rows_look_like_store_rows(path: Path) -> None:
    """Same column types and time format in a bulk row as in a row the store wrote."""
    db = sqlite3.connect(path)
    query = (
        "SELECT typeof(number), typeof(reported_at), length(reported_at), typeof(fixed_at),"
        " typeof(repair_seconds), typeof(acknowledged_at) FROM incidents"
        " WHERE fixed_at IS NOT NULL AND acknowledged_at IS NOT NULL AND number = ?"
    )
    last = db.execute("SELECT max(number) FROM incidents").fetchone()[0]
    store_row = db.execute(
        query.replace("number = ?", "number > ?") + " LIMIT 1", (last - THROUGH_STORE,)
    ).fetchone()
    bulk_row = db.execute(query.replace("number = ?", "number < 1000") + " LIMIT 1").fetchone()
    db.close()
    assert store_row == bulk_row, (store_row, bulk_row)


def filled(path: Path) -> bool:
    if not path.exists():
        return False
    db = sqlite3.connect(path)
    try:
        return bool(db.execute("SELECT count(*) FROM incidents").fetchone()[0] == TOTAL)
    except sqlite3.Error:
        return False
    finally:
        db.close()


# -- measuring (in a fresh process) -----------------------------------------------------


def _rss_mb() -> float:
    """Peak RSS by getrusage (Linux: kilobytes).  It includes whatever the parent had
    when it started this process (Linux keeps ``maxrss`` across exec), hence a lean
    parent: it only spawns the filling and the measuring processes."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _hwm_mb() -> float:
    """Peak RSS of this process image alone (``VmHWM``, Linux), 0 if unknown."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def measure(path: str, tz: tzinfo) -> dict[str, object]:
    """The figures of the digest of :data:`DAY` on the store at ``path`` (a file, or a
    ``postgresql://`` URL with the password in ``PGPASSWORD``)."""
    rss_before = _rss_mb()
    plans = day_plans(tz)
    with Store.open(path, create=False) as store:
        source: DigestSource = store
        timings = []
        for _ in range(3):
            began = time.perf_counter()
            digest = digest_for_day(source, plans, DAY, tz)
            timings.append(time.perf_counter() - began)
            del digest
        rss, hwm = _rss_mb(), _hwm_mb()
        # Where the time goes: reading the rows alone, then the pure part alone (the
        # rows are held in a list here, which the digest itself never does).
        start, end = day_period(DAY, tz)
        began = time.perf_counter()
        rows = list(source.incident_summaries_between(start, end))
        query_s = time.perf_counter() - began
        began = time.perf_counter()
        digest = build_digest(rows, plans, DAY, tz)
        build_s = time.perf_counter() - began
        began = time.perf_counter()
        short = short_lines(digest, tz)
        full = full_lines(digest, tz)
        as_dict = digest_to_dict(digest)
        format_s = time.perf_counter() - began
        del rows, digest, full, as_dict
        tracemalloc.start()
        digest = digest_for_day(source, plans, DAY, tz)
        traced_peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    return {
        "first_s": timings[0],
        "best_s": min(timings),
        "query_s": query_s,
        "build_s": build_s,
        "format_s": format_s,
        "rss_mb": rss,
        "hwm_mb": hwm,
        "rss_before_mb": rss_before,
        "tracemalloc_peak_mb": traced_peak,
        "reported": digest.totals.reported,
        "fixed": digest.totals.fixed,
        "open": len(digest.totals.open),
        "short": short,
    }


def _run(*args: str) -> dict[str, Any]:
    return run_step("bench.digest", *args)


def _measure_on_postgresql(path: Path, workdir: Path, tz: str) -> dict[str, Any]:
    """The measuring step on a copy of the SQLite store at ``path`` in PostgreSQL."""
    from bench._postgres import copy_to_postgresql, postgres_server

    with postgres_server(workdir) as server:
        database = server.create_database()
        print(f"copying it to PostgreSQL ({database.url}) …", flush=True)
        print(f"  {copy_to_postgresql(path, database):.0f} s (COPY, then ANALYZE)", flush=True)
        os.environ["PGPASSWORD"] = database.password  # for the measuring process
        try:
            return _run("--step", "measure", "--db", database.url, "--tz", tz)
        finally:
            del os.environ["PGPASSWORD"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--db", help="database file (kept; reused if filled)")
    parser.add_argument("--tz", default="Europe/Paris")
    parser.add_argument(
        "--backend",
        choices=("sqlite", "postgresql"),
        default="sqlite",
        help="postgresql: the filled SQLite store is copied into a PostgreSQL server of "
        "its own (the tests' harness) and the digest is measured there",
    )
    parser.add_argument("--step", choices=("fill", "measure"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    tz = ZoneInfo(args.tz)
    if args.step == "fill":
        print(json.dumps(fill(Path(args.db), tz)))
        return 0
    if args.step == "measure":
        print(json.dumps(measure(args.db, tz)))
        return 0
    with tempfile.TemporaryDirectory(prefix="deploybot-bench-") as tmp:
        path = Path(args.db) if args.db else Path(tmp) / "digest.sqlite3"
        if filled(path):
            print(f"reusing {path}")
        else:
            if path.exists():
                path.unlink()
            print(f"filling {path}: {TOTAL:,} incidents, {ON_DAY:,} on {DAY} ({args.tz}) …")
            figures = _run("--step", "fill", "--db", str(path), "--tz", args.tz)
            print(
                f"  bulk {figures['fill_bulk_s']:.1f} s ({int(figures['events']):,} events), "
                f"{THROUGH_STORE} through the store {figures['fill_store_s']:.1f} s, "
                f"filling process peak RSS {figures['fill_rss_mb']:.0f} MB, "
                f"file {path.stat().st_size / 2**20:.0f} MB"
            )
        if args.backend == "postgresql":
            result = _measure_on_postgresql(path, Path(tmp), args.tz)
        else:
            result = _run("--step", "measure", "--db", str(path), "--tz", args.tz)
    ok_time = result["best_s"] < TARGET_SECONDS
    ok_rss = result["rss_mb"] < TARGET_RSS_MB
    backend = "PostgreSQL" if args.backend == "postgresql" else "SQLite"
    print(f"digest_for_day({DAY}, {args.tz}) on {backend}, fresh process:")
    print(f"  incidents  {result['reported']:,} reported, {result['fixed']:,} fixed, "
          f"{result['open']:,} open at the end of the day")  # fmt: skip
    print(f"  time       first call {result['first_s']:.3f} s, best of 3 {result['best_s']:.3f} s"
          f"   target < {TARGET_SECONDS} s: {'met' if ok_time else 'MISSED'}")  # fmt: skip
    print(f"             reading the rows {result['query_s']:.3f} s, building "
          f"{result['build_s']:.3f} s (apart); formatting short+full+dict "
          f"{result['format_s']:.3f} s")  # fmt: skip
    print(f"  peak RSS   {result['rss_mb']:.1f} MB for the whole process (getrusage; "
          f"VmHWM {result['hwm_mb']:.1f} MB; {result['rss_before_mb']:.1f} MB after imports)"
          f"   target < {TARGET_RSS_MB:.0f} MB: {'met' if ok_rss else 'MISSED'}")  # fmt: skip
    print(f"  tracemalloc peak of one digest_for_day call: {result['tracemalloc_peak_mb']:.1f} MB")
    print("  short form:")
    for line in result["short"]:
        print(f"    {line}")
    return 0 if ok_time and ok_rss else 1


if __name__ == "__main__":
    sys.exit(main())
