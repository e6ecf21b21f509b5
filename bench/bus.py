"""fedmsg bus throughput, and what a busy bus costs the bot's command latency.

Run by hand (not part of the test suite), on an otherwise idle machine:

    .venv/bin/python -m bench.bus [--count 200000] [--rtt-count 5000] [--rate 5000] [--parts abc]

The publisher is always a separate process (an XPUB on 127.0.0.1 that starts sending once
the subscription has arrived, with no send high-water mark so nothing is dropped).

(a) Firehose, every topic subscribed: messages/s that :class:`FedmsgSource` decodes into
    events (its reactor replaced by a counting sink), next to a bare synchronous pyzmq
    SUB + ``json.loads`` loop in the same run.  Target: ≥ 0.8 × the bare loop.
(b) 99 % of the traffic on topics the bot does not read: with the bot's prefix
    subscription, ZeroMQ filters at the publisher, so only the 1 % reaches the bot;
    matching events/s and the receiving process's CPU, next to the same traffic with
    everything subscribed (filtered in Python).
(c) `!incident 1` round trips through inspircd (relaxed class, as bench/commands.py) to
    `deploybot run`, with the bus idle, then while the hub sends ``--rate`` msg/s: first a
    realistic mix (1 in 100 under the bot's subscription, the rest filtered by ZeroMQ at
    the hub), then the worst case (every message an ansible start/complete, so all
    decoded and interpreted; none for a planned playbook).  After each, a message for a
    planned playbook shows how far behind the bus the bot is.  The bot's CPU counts the
    round trips themselves too (see the idle line).  Target: busy p99 ≤ 1.5 × idle p99.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import multiprocessing
import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import zmq
from deploybot_plugins.bus.fedmsg_source import FedmsgSource, fedmsg_frames, make_envelope

from bench._irc import RawClient, containing, percentiles, row
from bench.commands import measure, start_deploybot, write_bot_config
from deploybot.bus.events import BadMessage, BusEvent, from_fedmsg_frames
from deploybot.bus.rules import BusStats
from deploybot.plans.files import dump_plan
from tests.ircd.servers import InspircdServer, free_port
from tests.planfactory import make_plan

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "tests" / "data" / "bus-samples"
ANSIBLE = "org.fedoraproject.prod.ansible.playbook."
OTHER_TOPICS = [
    "org.fedoraproject.prod.buildsys.build.state.change",
    "org.fedoraproject.prod.bodhi.update.comment",
    "org.fedoraproject.prod.git.receive",
    "org.fedoraproject.prod.fas.user.update",
    "org.fedoraproject.prod.copr.build.end",
    "org.fedoraproject.stg.ansible.playbook.start",
]
MIX = 100  # (b): one ansible message in MIX


def _sample(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((SAMPLES / name).read_text(encoding="utf-8"))
    document.pop("_source")
    return document


def _frames_pool(mode: str) -> list[list[bytes]]:
    """Pre-encoded messages the throughput publisher cycles through."""
    start, complete = (
        _sample("ansible.playbook.start.json"),
        _sample("ansible.playbook.complete.json"),
    )
    nagios = _sample("nagios.service.state.change.json")
    pool = []
    for n in range(MIX):
        if mode == "all":  # every kind of message, as a hub relays them
            source = (start, complete, nagios)[n % 3]
            topic = source["topic"] if n % 3 != 2 else OTHER_TOPICS[n % len(OTHER_TOPICS)]
        elif n == 0:
            source, topic = complete, complete["topic"]
        else:
            source, topic = nagios, OTHER_TOPICS[n % len(OTHER_TOPICS)]
        pool.append(fedmsg_frames(make_envelope(topic, source["msg"], msg_id=f"2026-pool-{n}")))
    return pool


def _wait_subscribed(xpub: zmq.Socket[bytes]) -> None:
    while True:
        if xpub.recv()[:1] == b"\x01":
            return


def _firehose(endpoint: str, mode: str, count: int) -> None:
    """Publisher process for (a) and (b): ``count`` messages as fast as possible."""
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    xpub = context.socket(zmq.XPUB)
    xpub.setsockopt(zmq.SNDHWM, 0)
    xpub.bind(endpoint)
    _wait_subscribed(xpub)
    time.sleep(0.1)  # every subscription of a multi-prefix subscriber
    pool = _frames_pool(mode)
    for n in range(count):
        xpub.send_multipart(pool[n % len(pool)])
    xpub.close(linger=-1)  # deliver everything queued
    context.term()


def _steady(endpoint: str, rate: int, control: Any, report: Any) -> None:
    """Publisher process for (c), driven by ``control``: ``("send", mix)`` sends ``rate``
    messages/s in 1 ms ticks, one in ``mix`` an ansible start/complete for a playbook no
    plan lists (the rest on topics the bot does not subscribe to); ``("sentinel", name)``
    stops sending, then sends one start of the planned bench playbook by ``name`` and puts
    ``(messages sent, seconds, ansible sent, time sent)`` on ``report``; ``("end",)``.

    Messages are pre-encoded (4 s of traffic, unique ids: an id comes back only long after
    the reactor's recent-id window), so that the publisher itself costs little CPU."""
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    xpub = context.socket(zmq.XPUB)
    xpub.setsockopt(zmq.SNDHWM, 0)
    xpub.bind(endpoint)
    _wait_subscribed(xpub)
    start, complete = (
        _sample("ansible.playbook.start.json"),
        _sample("ansible.playbook.complete.json"),
    )
    nagios = _sample("nagios.service.state.change.json")
    ansible = [
        fedmsg_frames(make_envelope(source["topic"], source["msg"], i=n))
        for n, source in enumerate([start, complete] * max(rate * 2, 10_000))
    ]
    others = [
        fedmsg_frames(make_envelope(OTHER_TOPICS[n % len(OTHER_TOPICS)], nagios["msg"], i=n))
        for n in range(1000)
    ]
    mix, sent, matching, next_ansible = 0, 0, 0, 0
    began = time.perf_counter()
    while True:
        if not control.empty() or not mix:
            command = control.get()
            if command[0] == "end":
                break
            if command[0] == "send":
                mix, sent, matching, began = command[1], 0, 0, time.perf_counter()
                continue
            elapsed = time.perf_counter() - began
            mix = 0
            sentinel = make_envelope(
                start["topic"],
                {**start["msg"], "playbook": "groups/benchsvc.yml", "userid": command[1]},
            )
            xpub.send_multipart(fedmsg_frames(sentinel))
            report.put((sent, elapsed, matching, time.time()))
            continue
        due = int((time.perf_counter() - began) * rate)
        while sent < due:
            if sent % mix == 0:
                xpub.send_multipart(ansible[next_ansible % len(ansible)])
                next_ansible += 1
                matching += 1
            else:
                xpub.send_multipart(others[sent % len(others)])
            sent += 1
        time.sleep(0.001)
    xpub.close(linger=0)
    context.term()


class CountingSink:
    """The reactor replaced by a counter: when the ``count``-th event came, and the first."""

    def __init__(self, count: int, done: asyncio.Future[None]) -> None:
        self.stats = BusStats()
        self.count = count
        self.events = 0
        self.started = asyncio.Event()  # set by the first event
        self.first = 0.0
        self.last = 0.0
        self.done = done

    def handle(self, event: BusEvent) -> None:
        self.events += 1
        if self.events == 1:
            self.first = time.perf_counter()
            self.started.set()
        if self.events >= self.count:
            self.last = time.perf_counter()
            if not self.done.done():
                self.done.set_result(None)

    def reject(self, error: BadMessage, origin: str = "") -> None:
        raise AssertionError(f"bench message rejected: {error}")


def _publisher(target: Callable[..., None], *args: Any) -> multiprocessing.process.BaseProcess:
    process = multiprocessing.get_context("spawn").Process(target=target, args=args, daemon=True)
    process.start()
    return process


def bare_loop(count: int, mode: str) -> tuple[float, float]:
    """(messages/s, receiver CPU share) of a blocking SUB + json.loads loop, everything
    subscribed."""
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    publisher = _publisher(_firehose, endpoint, mode, count)
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    sub = context.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(endpoint)
    json.loads(sub.recv_multipart()[1])
    began, cpu = time.perf_counter(), time.process_time()
    for _ in range(count - 1):
        json.loads(sub.recv_multipart()[1])
    elapsed, used = time.perf_counter() - began, time.process_time() - cpu
    sub.close(linger=0)
    context.term()
    publisher.join()
    return (count - 1) / elapsed, used / elapsed


async def source_loop(count: int, mode: str, prefixes: list[str]) -> tuple[float, float, int]:
    """FedmsgSource with a counting sink and the given subscriptions: (events/s, receiver
    CPU share, messages published).  ``mode`` "all": ``count`` messages, all events;
    "mixed": ``count`` × MIX messages, one in MIX ansible — the events wanted are the
    ansible ones under an ansible subscription, every message when everything is
    subscribed."""
    sent = count if mode == "all" else count * MIX
    wanted = count if prefixes != [""] else sent
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    publisher = _publisher(_firehose, endpoint, mode, sent)
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    sink = CountingSink(wanted, done)
    source = FedmsgSource([endpoint], prefixes, sink)
    task = asyncio.create_task(source.run())
    await sink.started.wait()
    cpu_before = time.process_time()
    await done
    elapsed = sink.last - sink.first
    used = time.process_time() - cpu_before
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    publisher.join()
    return (sink.events - 1) / elapsed, used / elapsed, sent


def _proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by process ``pid``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def irc_under_load(rtt_count: int, rate: int, mixes: list[int]) -> list[dict[str, Any]]:
    """Round trips for each ``mix`` in turn: 0 the bus idle, else ``rate`` msg/s with one
    message in ``mix`` under the bot's subscription; one result dict per phase."""
    spawn = multiprocessing.get_context("spawn")
    control, report = spawn.Queue(), spawn.Queue()
    with tempfile.TemporaryDirectory(prefix="deploybot-bench-bus-") as tmp:
        workdir = Path(tmp)
        server = InspircdServer(workdir / "ircd")
        server.start()
        endpoint = f"tcp://127.0.0.1:{free_port()}"
        publisher = _publisher(_steady, endpoint, rate, control, report)
        deploy = None
        phases: list[dict[str, Any]] = []
        try:
            port = server.relaxed_port
            ini = write_bot_config(workdir, port)
            when = (datetime.now(UTC) - timedelta(minutes=10)).replace(second=0, microsecond=0)
            plan = make_plan(
                id="benchsvc-1.0",
                service="benchsvc",
                when=when,
                duration=timedelta(hours=4),
                playbooks=("groups/benchsvc.yml",),
                api_breaks=(),
                consumers=(),
            )
            (workdir / "plans" / "benchsvc.yaml").write_text(dump_plan(plan), encoding="utf-8")
            with ini.open("a") as file:
                file.write(f"fedmsg_endpoints = {endpoint}\n")
            deploy = await asyncio.to_thread(start_deploybot, ini, workdir / "bot.log")
            seed = await RawClient.connect("127.0.0.1", port, "seeder")
            await seed.join("#bench")
            for _ in range(20):
                try:
                    await seed.round_trips("#bench", ["!uses benchsvc"], "benchsvc", "deploybot")
                    break
                except TimeoutError:
                    continue
            await seed.round_trips(
                "#bench", ["!broke benchsvc the bench broke it"], "recorded", "deploybot"
            )
            for n, mix in enumerate(mixes):
                if mix:
                    control.put(("send", mix))
                    await asyncio.sleep(1.0)  # the bus at full rate before timing
                cpu, began = _proc_cpu(deploy.pid), time.perf_counter()
                times = await measure(
                    port, f"asker{n}", "deploybot", "!incident 1", "#1", rtt_count
                )
                phase: dict[str, Any] = {
                    "mix": mix,
                    "times": times,
                    "bot_cpu": (_proc_cpu(deploy.pid) - cpu) / (time.perf_counter() - began),
                }
                if mix:
                    name = f"sentinel{n}"
                    control.put(("sentinel", name))
                    sent, elapsed, matching, sent_at = await asyncio.to_thread(report.get, True, 30)
                    async with asyncio.timeout(60):
                        await seed.until(containing(f"started by {name}"))
                    phase |= {
                        "rate": sent / elapsed,
                        "matching": matching / elapsed,
                        "lag": time.time() - sent_at,
                    }
                phases.append(phase)
            await seed.close()
            log = (workdir / "bot.log").read_text(errors="replace")
            if "Traceback" in log:
                print(log[-3000:])
        finally:
            control.put(("end",))
            publisher.join(10)
            if deploy is not None:
                deploy.send_signal(signal.SIGTERM)
                deploy.wait(timeout=10)
            server.stop()
    return phases


async def main(count: int, rtt_count: int, rate: int, parts: str) -> int:
    logging.getLogger("deploybot_plugins.bus.fedmsg_source").setLevel(logging.ERROR)
    ok = True
    if "a" in parts:
        ok &= await firehose(count)
    if "b" in parts:
        await filtered(count)
    if "c" in parts:
        ok &= await latency(rtt_count, rate)
    return 0 if ok else 1


async def firehose(count: int) -> bool:
    print(f"(a) firehose, every topic subscribed, {count} messages (~480-byte envelopes)")
    bare, bare_cpu = bare_loop(count, "all")
    ours, ours_cpu, _ = await source_loop(count, "all", [""])
    ratio = ours / bare
    pool = _frames_pool("all")
    began = time.perf_counter()
    for n in range(count):
        from_fedmsg_frames(*pool[n % len(pool)], prefix="org.fedoraproject")
    decoder = count / (time.perf_counter() - began)
    print(f"    bare SUB + json.loads        {bare:9,.0f} msg/s  (CPU {bare_cpu:4.0%})")
    print(f"    FedmsgSource → events        {ours:9,.0f} msg/s  (CPU {ours_cpu:4.0%})")
    print(f"    ratio {ratio:.2f}  (target ≥ 0.8)")
    print(
        f"    for scale: from_fedmsg_frames alone, no sockets: {decoder:,.0f} msg/s "
        f"(FedmsgSource reaches {ours / decoder:.0%} of it)"
    )
    return ratio >= 0.8


async def filtered(count: int) -> None:
    matching = max(count // MIX, 2000)
    print(f"(b) 1 message in {MIX} is ansible; until {matching} ansible events arrived")
    filt, filt_cpu, _ = await source_loop(matching, "mixed", [ANSIBLE])
    print(
        f"    prefix subscription          {filt:9,.0f} ansible events/s of "
        f"{filt * MIX:,.0f} msg/s on the bus; receiver CPU {filt_cpu:4.0%}"
    )
    allsub, all_cpu, _ = await source_loop(matching, "mixed", [""])
    print(
        f"    everything subscribed        {allsub / MIX:9,.0f} ansible events/s of "
        f"{allsub:,.0f} msg/s decoded in Python; receiver CPU {all_cpu:4.0%}"
    )


async def latency(rtt_count: int, rate: int) -> bool:
    print(f"(c) !incident 1 round trips via inspircd (relaxed class), {rtt_count} each")
    idle, *busy, again = await irc_under_load(rtt_count, rate, [0, MIX, 1, 0])
    base = percentiles(idle["times"] + again["times"])  # before and after: drift averages out
    print(row("    bus idle (before and after)", base) + f"  bot CPU {idle['bot_cpu']:.0%}")
    ok = True
    for phase in busy:
        stats = percentiles(phase["times"])
        share = "all" if phase["mix"] == 1 else f"1/{phase['mix']}"
        print(row(f"    {phase['rate'] / 1000:.1f}k msg/s, {share} subscribed", stats))
        ratio = stats["p99"] / base["p99"]
        ok &= ratio <= 1.5
        print(
            f"        p99 ratio {ratio:.2f} (target ≤ 1.5); {phase['matching']:,.0f} msg/s "
            f"reach the bot; bot CPU {phase['bot_cpu']:.0%}; the last message handled "
            f"{phase['lag'] * 1000:.0f} ms after it was sent"
        )
    return ok


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200_000)
    parser.add_argument("--rtt-count", type=int, default=5000)
    parser.add_argument("--rate", type=int, default=5000)
    parser.add_argument("--parts", default="abc", help="which measurements (default: abc)")
    arguments = parser.parse_args()
    sys.exit(
        asyncio.run(main(arguments.count, arguments.rtt_count, arguments.rate, arguments.parts))
    )
