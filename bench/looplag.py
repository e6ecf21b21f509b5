"""How long store calls hold the bot's asyncio loop, under the benchmark workloads.

Run by hand (not part of the test suite):

    .venv/bin/python -m bench.looplag [--workloads commands,burst,digest] [--db PATH]
                                      [--backend sqlite|postgresql]

Issue 14's goal: no store call blocks the event loop for more than 50 ms.  The store is
called synchronously from the loop's handlers (deploybot/store/__init__.py), so a slow
call is a loop stall.  Each workload is measured with a loop-lag probe (a task that
sleeps 10 ms again and again and records how late each wake-up is) and a timer on every
public :class:`~deploybot.store.Store` method (bench/_lagprobe.py):

- ``commands``: bench/commands.py, 1,000 sequential ``!incident 1`` round trips through
  InspIRCd (one round), with ``deploybot run`` under the probe;
- ``burst``: bench/burst.py, a deploy opening with pages to 20 people while five people
  send 50 ``!deploys`` (and 50 more on the idle bot), ``deploybot run`` under the probe;
- ``digest``: the day's digest of bench/digest.py's store (100,000 incidents that day,
  1,000,000 in all) three times, as the bot computes it (``Core.read``: in the store's
  read worker, off the loop), with the probe on the loop.  The store is filled once by
  bench/digest.py (about a minute; ``--db PATH`` keeps it for the next run).

With ``--backend postgresql`` the same runs on PostgreSQL: a server of its own on
127.0.0.1 (tests/postgres.py's harness: Debian's ``postgresql``, as nobody, in a temporary
directory, stopped at the end), a fresh database per workload; for the digest, the filled
SQLite store is copied into it first (``COPY``, a minute or two).

Prints, per workload, the loop lag (p50, p99, max), the store calls by their longest
call, and whether every store call stayed under 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bench import burst, commands
from bench import digest as digest_bench
from bench._lagprobe import LagProbe, StoreTimer, results, summary
from bench._postgres import copy_to_postgresql, postgres_server
from bench.digest import DAY
from deploybot.deployday.digest import digest_for_day
from deploybot.store import ReadWorker, Store
from tests.postgres import PostgresServer

GOAL_SECONDS = 0.05
WORKLOADS = ("commands", "burst", "digest")
TZ = "Europe/Paris"


async def _bot_workload(name: str, probe_file: Path) -> dict[str, Any]:
    """Run bench/commands.py or bench/burst.py with the bot under the probe."""
    os.environ["DEPLOYBOT_BENCH_LAG_PROBE"] = str(probe_file)
    try:
        if name == "commands":
            await commands.main(1000, 1)
        else:
            await burst.main(50, 20, 1.0)
    finally:
        del os.environ["DEPLOYBOT_BENCH_LAG_PROBE"]
    found: dict[str, Any] = json.loads(await asyncio.to_thread(probe_file.read_text))
    return found


def _digest_workload(path: Path, server: PostgresServer | None) -> dict[str, Any]:
    """The digest of bench/digest.py's day, three times on a probed loop (on PostgreSQL
    when ``server`` is given)."""
    if not digest_bench.filled(path):
        if path.exists():
            path.unlink()
        print(f"filling {path} with bench/digest.py (1,000,000 incidents) …", flush=True)
        subprocess.run(
            [sys.executable, "-m", "bench.digest", "--step", "fill", "--db", str(path), "--tz", TZ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    location, password = str(path), None
    if server is not None:
        database = server.create_database()
        seconds = copy_to_postgresql(path, database)
        print(f"  copied to PostgreSQL in {seconds:.0f} s", flush=True)
        location, password = database.url, database.password
    tz = ZoneInfo(TZ)
    probe, timer = LagProbe(), StoreTimer()
    durations: list[float] = []

    async def run() -> None:
        probe.start(asyncio.get_running_loop())
        await asyncio.sleep(0.2)  # a few samples of the idle loop first
        with Store.open(location, password=password) as store:
            plans = digest_bench.day_plans(tz)
            # as the bot does it (Core.read): in the read worker, on its own connection
            worker = ReadWorker(store.reopen)
            try:
                for _ in range(3):
                    start = time.perf_counter()
                    await worker.run(lambda reader: digest_for_day(reader, plans, DAY, tz))
                    durations.append(time.perf_counter() - start)
                    await asyncio.sleep(0.1)
            finally:
                worker.close()
        probe.stop()

    timer.install()
    try:
        asyncio.run(run())
    finally:
        timer.uninstall()
    found = results(probe, timer)
    found["off the loop"] = {"digest_for_day in the read worker": summary(durations)}
    return found


def report(name: str, found: dict[str, Any]) -> bool:
    """Print one workload's figures; True when every store call stayed under the goal."""
    lag = found["lag"]
    print(f"\n{name}: loop lag over {lag['count']:,} probe wake-ups (10 ms apart):")
    print(
        f"  p50 {lag['p50'] * 1000:7.2f} ms   p99 {lag['p99'] * 1000:7.2f} ms   "
        f"max {lag['max'] * 1000:7.2f} ms"
    )
    calls = sorted(found["store"].items(), key=lambda item: -float(item[1]["max"]))
    print(f"  store calls on the loop ({sum(int(s['count']) for _, s in calls):,}), longest first:")
    for call, stats in calls[:8]:
        print(
            f"    {call:<34} {int(stats['count']):>6} calls  p99 {stats['p99'] * 1000:7.2f} ms"
            f"  max {stats['max'] * 1000:7.2f} ms"
        )
    for call, stats in found.get("off the loop", {}).items():
        print(
            f"  off the loop: {call}, {int(stats['count'])} calls, "
            f"max {stats['max'] * 1000:.0f} ms (the loop went on meanwhile)"
        )
    over = [call for call, stats in calls if stats["max"] > GOAL_SECONDS]
    verdict = "met" if not over else "NOT met by " + ", ".join(over)
    print(f"  goal: no store call over {GOAL_SECONDS * 1000:.0f} ms: {verdict}")
    return not over


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--workloads", default=",".join(WORKLOADS), help="comma-separated, of " + str(WORKLOADS)
    )
    parser.add_argument("--db", type=Path, help="the digest's database (kept; reused if filled)")
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    args = parser.parse_args(argv)
    chosen = [w.strip() for w in args.workloads.split(",") if w.strip()]
    unknown = set(chosen) - set(WORKLOADS)
    if unknown:
        parser.error(f"unknown workloads: {', '.join(sorted(unknown))}")
    figures: dict[str, dict[str, Any]] = {}
    with (
        tempfile.TemporaryDirectory(prefix="deploybot-looplag-") as tmp,
        contextlib.ExitStack() as stack,
    ):
        server = None
        if args.backend == "postgresql":
            server = stack.enter_context(postgres_server(Path(tmp)))
        for name in chosen:
            print(f"--- {name}", flush=True)
            if name == "digest":
                path = args.db or Path(tmp) / "digest.sqlite3"
                figures[name] = _digest_workload(path, server)
                continue
            if server is not None:
                database = server.create_database()
                os.environ["DEPLOYBOT_BENCH_DATABASE"] = database.url
                os.environ["PGPASSWORD"] = database.password
            figures[name] = asyncio.run(_bot_workload(name, Path(tmp) / f"{name}.json"))
    backend = "PostgreSQL" if args.backend == "postgresql" else "SQLite"
    print(f"\n{backend} backend, store called synchronously on the loop")
    ok = [report(name, found) for name, found in figures.items()]
    return 0 if all(ok) else 1


if __name__ == "__main__":
    sys.exit(main())
