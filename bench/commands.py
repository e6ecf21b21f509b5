"""Round-trip latency of `!incident N` through a real IRC server, against irc3's floor.

Run by hand (not part of the test suite):

    .venv/bin/python -m bench.commands [--count 1000] [--rounds 3]

It starts inspircd (relaxed connect class: no flood control, so the server adds no
stalls) on 127.0.0.1, then in the same run:

1. a bare irc3 bot (irc3.plugins.command) answering `!ping` — the framework floor;
2. `deploybot run` with one recorded incident, answering `!incident 1`;

and times COUNT sequential request → reply round trips from a raw client for each, by
private message (irc3's `!ping` answers only in private), in ROUNDS alternating rounds
(floor, deploybot, floor, …: a noisy moment of the machine hits both sides; a single p99
of 1,000 samples moved from 1.1× to 2.4× between runs here).
Target (issue 3): the median round's deploybot p99 ≤ 1.5 × the floor's p99.

With ``--matrix`` (issue 15) the same on Matrix: Synapse from the tests' venv
(``DEPLOYBOT_SYNAPSE_VENV`` or ``.venv-synapse``) on 127.0.0.1, a bare mautrix bot
answering ``!ping`` as the floor and ``deploybot run`` with ``[matrix]`` answering
``!incident 1``, in one room; an answer counts when the asker's own /sync sees it.  Reference
measured on this kind of machine (shared/notes): irc3 `!ping` via inspircd relaxed ≈ 0.61 ms
p50 / 1.47 ms p99.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

from bench._irc import RawClient, percentiles, row
from bench._matrix import ECHO_BOT, TimingClient
from tests.ircd.servers import InspircdServer
from tests.synapse import MatrixAccount, SynapseServer, synapse_python, synapse_venv

REPO = Path(__file__).resolve().parent.parent
BARE_BOT = textwrap.dedent(
    """
    import asyncio, sys, irc3
    async def main():
        loop = asyncio.get_running_loop()
        bot = irc3.IrcBot(loop=loop, nick="barebot", host="127.0.0.1", port=int(sys.argv[1]),
                          autojoins=["#bench"], includes=["irc3.plugins.command"],
                          flood_burst=0)
        bot.create_connection()
        await asyncio.Event().wait()
    asyncio.run(main())
    """
)


def bench_database(workdir: Path) -> str:
    """The bot's ``database``: ``DEPLOYBOT_BENCH_DATABASE`` (a PostgreSQL URL, whose
    password the bot finds in ``PGPASSWORD``: bench/looplag.py) or an SQLite file."""
    return os.environ.get("DEPLOYBOT_BENCH_DATABASE") or str(workdir / "bench.sqlite3")


def start_deploybot(ini: Path, log: Path) -> subprocess.Popen[bytes]:
    """``deploybot run ini`` from the repository's venv, its stderr written to ``log``.

    With ``DEPLOYBOT_BENCH_LAG_PROBE=FILE`` in the environment (bench/looplag.py) it runs
    under the loop-lag probe (bench/_lagprobe.py), which writes its samples to FILE at exit.
    """
    command = [str(REPO / ".venv/bin/deploybot")]
    probe = os.environ.get("DEPLOYBOT_BENCH_LAG_PROBE")
    if probe:
        command = [str(REPO / ".venv/bin/python"), "-m", "bench._lagprobe", probe]
    with log.open("w") as stderr:
        return subprocess.Popen(
            [*command, "run", str(ini)],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )


def write_bot_config(workdir: Path, port: int) -> Path:
    ini = workdir / "bot.ini"
    ini.write_text(
        textwrap.dedent(
            f"""
            [bot]
            nick = deploybot
            host = 127.0.0.1
            port = {port}
            # relaxed server class: the token bucket must not be the thing we measure
            throttle_burst = 10000
            throttle_rate = 100000
            """
        )
        + deploybot_section(workdir)
    )
    return ini


async def measure(
    port: int, nick: str, bot: str, text: str, answer: str, count: int
) -> list[float]:
    client = await RawClient.connect("127.0.0.1", port, nick)
    try:
        await client.join("#bench")
        # warm up (and wait until the bot is in the channel and answering)
        for _ in range(20):
            try:
                await client.round_trips(bot, [text], answer, bot)
                break
            except TimeoutError:
                continue
        await client.round_trips(bot, [text] * 50, answer, bot)
        return await client.round_trips(bot, [text] * count, answer, bot)
    finally:
        await client.close()


async def main(count: int, rounds: int) -> int:
    """Both bots up, then ``rounds`` alternating measurements (floor, ours): a noisy moment
    of the machine hits both sides, and the median round's ratio is the verdict."""
    with tempfile.TemporaryDirectory(prefix="deploybot-bench-") as tmp:
        workdir = Path(tmp)
        server = InspircdServer(workdir / "ircd")
        server.start()
        bare = deploy = None
        floors: list[list[float]] = []
        ours: list[list[float]] = []
        try:
            port = server.relaxed_port
            bare = await asyncio.to_thread(
                subprocess.Popen,
                [sys.executable, "-c", BARE_BOT, str(port)],
                stderr=subprocess.DEVNULL,
            )
            ini = write_bot_config(workdir, port)
            deploy = await asyncio.to_thread(start_deploybot, ini, workdir / "bot.log")
            seed = await RawClient.connect("127.0.0.1", port, "seeder")
            await seed.join("#bench")
            for _ in range(20):
                try:  # the first answer also tells that the bot is up and in the channel
                    await seed.round_trips("#bench", ["!uses benchsvc"], "benchsvc", "deploybot")
                    break
                except TimeoutError:
                    continue
            await seed.round_trips(
                "#bench", ["!broke benchsvc the bench broke it"], "recorded", "deploybot"
            )
            await seed.close()
            for _ in range(rounds):
                floors.append(await measure(port, "pinger", "barebot", "!ping", "PONG", count))
                ours.append(await measure(port, "asker", "deploybot", "!incident 1", "#1", count))
        finally:
            for proc in (bare, deploy):
                if proc is not None:
                    proc.send_signal(signal.SIGTERM)
                    proc.wait(timeout=10)
            server.stop()
    print(f"{count} sequential round trips each, {rounds} alternating rounds, inspircd relaxed")
    ratios = []
    for number, (floor, mine) in enumerate(zip(floors, ours, strict=True), 1):
        a, b = percentiles(floor), percentiles(mine)
        print(row(f"{number}: irc3 bare bot !ping (floor)", a))
        print(row(f"{number}: deploybot !incident 1", b))
        ratios.append(b["p99"] / a["p99"])
    ratio = statistics.median(ratios)
    listed = ", ".join(f"{r:.2f}" for r in ratios)
    print(f"p99 ratio deploybot / floor per round: {listed}; median {ratio:.2f}  (target ≤ 1.5)")
    print("reference (shared/notes): irc3 !ping via inspircd relaxed ≈ 0.61 ms p50 / 1.47 ms p99")
    return 0 if ratio <= 1.5 else 1


def deploybot_section(workdir: Path) -> str:
    """``[deploybot]`` of both benchmarks: the bench channel, no web server, a plans
    directory of its own, flood control out of the way."""
    plans = workdir / "plans"
    plans.mkdir()
    return textwrap.dedent(
        f"""
        [deploybot]
        plans_dir = {plans}
        database = {bench_database(workdir)}
        admin_channel = #bench
        announce_channels = #bench
        web_port = 0
        # one person asks 1,000 times in a row: flood control (5 commands in 10 s by
        # default) would ignore them
        command_flood_limit = 100000
        command_flood_window = 1s
        """
    )


def write_matrix_config(workdir: Path, url: str, bot: MatrixAccount, server: str) -> Path:
    ini = workdir / "bot.ini"
    token = workdir / "matrix-token"
    token.write_text(bot.access_token + "\n")
    ini.write_text(
        deploybot_section(workdir)
        + textwrap.dedent(
            f"""
            [matrix]
            homeserver = {url}
            user_id = {bot.user_id}
            access_token_file = {token}
            room_alias_server = {server}
            user_pattern = @{{nick}}:{server}
            """
        )
    )
    return ini


async def main_matrix(count: int, rounds: int) -> int:
    """The same on Matrix: Synapse on 127.0.0.1 (the tests' harness), a bare mautrix bot
    answering ``!ping`` (the floor) and ``deploybot run`` with ``[matrix]`` answering
    ``!incident 1`` in one room; each round trip ends when the asker's own /sync sees the
    answer."""
    python = synapse_python()
    if python is None:
        print(f"no Synapse venv at {synapse_venv()}: bash .ci/synapse-venv builds it")
        return 2
    with tempfile.TemporaryDirectory(prefix="deploybot-bench-") as tmp:
        workdir = Path(tmp)
        synapse = SynapseServer(workdir / "synapse", python)
        synapse.start()
        echo = deploy = None
        client: TimingClient | None = None
        floors: list[list[float]] = []
        ours: list[list[float]] = []
        try:
            bot, echo_bot, asker = (synapse.register(n) for n in ("deploybot", "echo", "asker"))
            for user in (bot, echo_bot, asker):
                synapse.override_ratelimit(user.user_id, 0, 0)
            client = TimingClient(synapse.url, asker.access_token)
            alias = f"#bench:{synapse.server_name}"
            room = str(
                (
                    await client.request(
                        "POST", "/createRoom", {"preset": "public_chat", "room_alias_name": "bench"}
                    )
                )["room_id"]
            )
            await client.start()
            echo = await asyncio.to_thread(
                subprocess.Popen,
                [
                    str(REPO / ".venv/bin/python"),
                    "-c",
                    ECHO_BOT,
                    synapse.url,
                    echo_bot.user_id,
                    echo_bot.access_token,
                    alias,
                ],
                stderr=subprocess.DEVNULL,
            )
            ini = write_matrix_config(workdir, synapse.url, bot, synapse.server_name)
            deploy = await asyncio.to_thread(start_deploybot, ini, workdir / "bot.log")
            for _ in range(30):  # the first answer also tells that the bot is up and in the room
                try:
                    await client.round_trip(room, "!uses benchsvc", bot.user_id, "benchsvc", 2)
                    break
                except TimeoutError:
                    continue
            await client.round_trip(room, "!broke benchsvc it broke", bot.user_id, "recorded")
            for _ in range(30):
                try:
                    await client.round_trip(room, "!ping", echo_bot.user_id, "pong", 2)
                    break
                except TimeoutError:
                    continue
            for _ in range(rounds):
                warm = min(50, count)
                await client.round_trips(room, "!ping", echo_bot.user_id, "pong", warm)
                floors.append(
                    await client.round_trips(room, "!ping", echo_bot.user_id, "pong", count)
                )
                await client.round_trips(room, "!incident 1", bot.user_id, "#1", warm)
                ours.append(await client.round_trips(room, "!incident 1", bot.user_id, "#1", count))
        finally:
            if client is not None:
                await client.close()
            for proc in (echo, deploy):
                if proc is not None:
                    proc.send_signal(signal.SIGTERM)
                    proc.wait(timeout=10)
            synapse.close()
    print(f"{count} sequential round trips each, {rounds} alternating rounds, Synapse on 127.0.0.1")
    return verdict(floors, ours, "mautrix bare bot !ping (floor)", "deploybot !incident 1")


def verdict(floors: list[list[float]], ours: list[list[float]], floor: str, mine: str) -> int:
    """Print each round and the median round's p99 and p50 ratios; 0 when p99 ≤ 1.5×."""
    p99s, p50s = [], []
    for number, (a_samples, b_samples) in enumerate(zip(floors, ours, strict=True), 1):
        a, b = percentiles(a_samples), percentiles(b_samples)
        print(row(f"{number}: {floor}", a))
        print(row(f"{number}: {mine}", b))
        p99s.append(b["p99"] / a["p99"])
        p50s.append(b["p50"] / a["p50"])
    ratio = statistics.median(p99s)
    listed = ", ".join(f"{r:.2f}" for r in p99s)
    print(f"p99 ratio deploybot / floor per round: {listed}; median {ratio:.2f}  (target ≤ 1.5)")
    print(f"p50 ratio, median round: {statistics.median(p50s):.2f}")
    return 0 if ratio <= 1.5 else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000, help="round trips per round")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (median)")
    parser.add_argument(
        "--matrix", action="store_true", help="on Synapse against a bare mautrix bot instead"
    )
    arguments = parser.parse_args()
    run = main_matrix if arguments.matrix else main
    sys.exit(asyncio.run(run(arguments.count, arguments.rounds)))
