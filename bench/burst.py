"""Reply latency while a deploy opens, against the same commands on an idle bot.

Run by hand (not part of the test suite):

    .venv/bin/python -m bench.burst [--commands 50] [--people 20] [--gap 1.0]

It starts inspircd on 127.0.0.1 and `deploybot run` on its **stock** client class (flood
control on; the bot's default token bucket: 4 lines at once, 1 line/s), with a plan whose
window opens a few seconds after the bot is in its channels: the opening joins the
firefighting channel, sets its topic, posts the API break and pages PEOPLE people (a
private page each, highlights in two channels) — some 30 lines, half a minute of output
at 1 line/s.  Twenty clients on the relaxed class stand for the people paged.

Five askers in the firefighting channel then take turns sending COMMANDS `!deploys`,
one at a time, each waiting for its answer and GAP seconds more (so that on an idle bot
the bucket has refilled and the latency is the bot's, not the pacing's): once starting the
moment the bot sets the topic (during the opening), once on the same bot when everything
has gone out (idle).  Reply latency is from sending the command to receiving the answer.
Goal (issue 10): p95 ≤ 2 s during the opening.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import tempfile
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench._irc import RawClient, containing
from bench.commands import bench_database, start_deploybot
from deploybot.plans.files import dump_plan
from tests.ircd.servers import InspircdServer
from tests.planfactory import on_shift_plan

BOT = "deploybot"
ADMIN, FIRE = "#bench-admin", "#bench-fire"
LEAD = timedelta(seconds=12)  # from writing the plan to the opening
ASKERS = 5
REPLY_TIMEOUT = 60.0


def write_config(workdir: Path, port: int, people: list[str]) -> Path:
    """bot.ini (stock port, default throttle) and a plan opening LEAD from now."""
    plans = workdir / "plans"
    plans.mkdir()
    when = (datetime.now(UTC) + LEAD).replace(microsecond=0)
    plan = on_shift_plan(when, timedelta(minutes=20), FIRE, people)
    (plans / f"{plan.id}.yaml").write_text(dump_plan(plan), encoding="utf-8")
    ini = workdir / "bot.ini"
    ini.write_text(
        textwrap.dedent(
            f"""
            [bot]
            nick = {BOT}
            host = 127.0.0.1
            port = {port}
            [deploybot]
            plans_dir = {plans}
            database = {bench_database(workdir)}
            timezone = UTC
            admin_channel = {ADMIN}
            announce_channels = {ADMIN}
            countdowns = 0
            page_escalate_after = 1h
            web_port = 0
            """
        )
    )
    return ini


async def ask(asker: RawClient, watcher: RawClient) -> float:
    """`asker` sends `!deploys` to the firefighting channel; seconds until `watcher` sees
    the answer (`pkgdb2-2.0 — …`)."""
    start = time.perf_counter()
    asker.send(f"PRIVMSG {FIRE} :!deploys")
    async with asyncio.timeout(REPLY_TIMEOUT):
        await watcher.until(
            lambda line: line.startswith(f":{BOT}!") and f" {FIRE} :pkgdb2-2.0 — " in line
        )
    return time.perf_counter() - start


async def run_commands(
    askers: list[RawClient], watcher: RawClient, count: int, gap: float
) -> list[float]:
    """`count` commands, the askers taking turns, one at a time."""
    latencies = []
    for i in range(count):
        latencies.append(await ask(askers[i % len(askers)], watcher))
        await asyncio.sleep(gap)
    return latencies


async def drain(client: RawClient) -> None:
    """Read (and answer PINGs) forever, so that an idle client's socket never fills."""
    await client.until(lambda line: False)


def stats(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[max(0, round(0.95 * len(ordered)) - 1)]
    p50 = ordered[len(ordered) // 2]
    return f"p50 {p50 * 1000:6.0f} ms  p95 {p95 * 1000:6.0f} ms  max {ordered[-1] * 1000:6.0f} ms"


async def main(count: int, people_count: int, gap: float) -> int:
    with tempfile.TemporaryDirectory(prefix="deploybot-burst-") as tmp:
        workdir = Path(tmp)
        server = InspircdServer(workdir / "ircd")
        server.start()
        proc = None
        try:
            relaxed = server.relaxed_port
            # the watcher creates the firefighting channel (as its operator) and lets the
            # bot set the topic there (-t), as the e2e tests do
            watcher = await RawClient.connect("127.0.0.1", relaxed, "watcher")
            await watcher.join(FIRE)
            watcher.send(f"MODE {FIRE} -t")
            await watcher.join(ADMIN)
            names = [f"oncall{i:02d}" for i in range(people_count)]
            people = list(
                await asyncio.gather(*(RawClient.connect("127.0.0.1", relaxed, n) for n in names))
            )
            askers = list(
                await asyncio.gather(
                    *(RawClient.connect("127.0.0.1", relaxed, f"asker{i}") for i in range(ASKERS))
                )
            )
            for asker in askers:
                asker.send(f"JOIN {FIRE},{ADMIN}")
            drains = [asyncio.ensure_future(drain(a)) for a in askers]
            ini = write_config(workdir, server.stock_port, names)
            proc = await asyncio.to_thread(start_deploybot, ini, workdir / "bot.log")
            async with asyncio.timeout(LEAD.total_seconds() + 30):
                await watcher.until(lambda line: f":{BOT}!" in line and f"TOPIC {FIRE}" in line)
            opened = time.perf_counter()
            pages_done: list[float] = []
            all_paged = asyncio.Event()

            async def page_of(client: RawClient) -> None:
                await client.until(containing("[page #"))
                pages_done.append(time.perf_counter() - opened)
                if len(pages_done) == people_count:
                    all_paged.set()
                await drain(client)

            drains += [asyncio.ensure_future(page_of(p)) for p in people]
            burst = await run_commands(askers, watcher, count, gap)
            burst_span = time.perf_counter() - opened
            async with asyncio.timeout(120):
                await all_paged.wait()
            await asyncio.sleep(5)  # let the rest of the opening (highlights) go out
            idle = await run_commands(askers, watcher, count, gap)
            for task in drains:
                task.cancel()
        except BaseException:
            log = workdir / "bot.log"
            if log.exists():
                print("".join(log.read_text(errors="replace").splitlines(True)[-40:]))
            raise
        finally:
            if proc is not None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=20)
            server.stop()
    print(
        f"{count} `!deploys` from {ASKERS} people taking turns (one at a time, {gap} s apart), "
        f"bot on inspircd's stock class (4 lines at once, 1 line/s)"
    )
    print(f"during the opening (pages to {people_count}): {stats(burst)}")
    print(f"idle bot, same commands:             {stats(idle)}")
    print(
        f"the opening's last page arrived {max(pages_done):.1f} s after the topic; "
        f"the {count} commands took {burst_span:.1f} s from the topic "
        f"({sum(1 for t in pages_done if t > 0)} pages, "
        f"{sum(1 for t in _cumulative(burst, gap) if t < max(pages_done))} commands "
        "answered before the last page)"
    )
    p95 = sorted(burst)[max(0, round(0.95 * len(burst)) - 1)]
    print(f"goal: p95 during the opening ≤ 2 s: {'met' if p95 <= 2.0 else 'NOT met'}")
    return 0 if p95 <= 2.0 else 1


def _cumulative(latencies: list[float], gap: float) -> list[float]:
    """When each answer arrived, in seconds from the first command."""
    out, t = [], 0.0
    for latency in latencies:
        t += latency
        out.append(t)
        t += gap
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=50, help="commands per measurement")
    parser.add_argument("--people", type=int, default=20, help="people paged at the opening")
    parser.add_argument("--gap", type=float, default=1.0, help="pause after each answer (s)")
    arguments = parser.parse_args()
    sys.exit(asyncio.run(main(arguments.commands, arguments.people, arguments.gap)))
