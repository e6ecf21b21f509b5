"""`deploybot demo` (SPEC §8) and its built-in IRC server (plugins/demo/ircd/).

The demo tests run the real command as a subprocess, sped up with the hidden
`--seconds-per-step` (0.3: about 50 s instead of 2½ minutes), with TMPDIR pointed at the
test's directory so that a leftover working directory would be seen. One test plays the
whole day (on the built-in server); the others stop early (Ctrl-C) or fail at start. The
server tests talk to `DemoIrcServer` with the raw test client of tests/ircd (CAP LS 302,
then NICK/USER, as irssi and WeeChat do).
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from deploybot_plugins.demo.day import Timeline, bot_ini, demo_plan, demo_timezone
from deploybot_plugins.demo.ircd import MAX_LINE, DemoIrcServer

from deploybot.config import load_bot_section, load_config
from deploybot.plans.files import dump_plan, load_paths
from deploybot.plans.policy import assess
from tests.botprocess import deploybot_executable
from tests.ircd.client import IrcClient, Message
from tests.ircd.fixtures import IrcClientFactory
from tests.ircd.servers import NgircdServer

FAST = "0.3"  # seconds per step of the demo's script in these tests

# What the transcript must show, in this order (each pattern after the previous match).
# The bot posts a countdown's API breaks before its headline, and a playbook start that
# opens firefighting posts the opening (join, topic, "deploy started (bus: …)", pages)
# before "deploy of pkgdb2 started by USER": both come from that one bus message.
DAY = [
    ("API break warning (countdown)", r"#fedora-admin +<deploybot> ⚠ API BREAK: /api/packager/acl"),
    ("countdown", r"#fedora-admin +<deploybot> pkgdb2 2\.0 (deploys in|deploying now) \("),
    ("deploy started on the bus", r"\(bus\) +ansible\.playbook\.start: pingou runs"),
    ("firefighting opened", r"#pkgdb2-firefight +\* deploybot joined"),
    ("firefighting topic", r"#pkgdb2-firefight +\* deploybot sets the topic: pkgdb2-2\.0: "),
    (
        "deploy started (firefighting)",
        r"#pkgdb2-firefight +<deploybot> pkgdb2 2\.0 deploy started \(bus: ansible",
    ),
    ("page highlight", r"#pkgdb2-firefight +<deploybot> pingou dgilmore tflink ralph: pkgdb2"),
    ("deploy started by", r"#fedora-admin +<deploybot> deploy of pkgdb2 started by pingou"),
    ("ack", r"<deploybot> dgilmore: acknowledged page #\d+"),
    ("incident reported", r"#pkgdb2-firefight +<deploybot> ⚠ incident #1 \(pkgdb2"),
    ("incident taken", r"<deploybot> incident #1 \(pkgdb2\) is now owned by pingou"),
    ("fixed", r"<deploybot> incident #1 \(pkgdb2\) fixed by pingou"),
    (
        "finished with failures",
        r"#fedora-admin +<deploybot> deploy of pkgdb2 finished with failures on pkgdb02\.phx2",
    ),
    (
        "firefighting closed",
        r"<deploybot> pkgdb2 2\.0 firefighting closed \(end of the deploy window\): "
        r"2 incidents reported, 1 fixed, 1 open",
    ),
    ("digest", r"#fedora-admin +<deploybot> incident digest .*: 1 deploy, 2 reported, 1 fixed"),
    ("bot quits", r"\* deploybot quit \("),
    ("summary", r"^demo over after \dm\d\ds:"),
]
# A scripted person's private messages are printed by its own connection: ordered only
# against what caused them and what they cause.
PAGE = [
    ("deploy started on the bus", r"\(bus\) +ansible\.playbook\.start: pingou runs"),
    ("private page", r"\(private\) +<deploybot → dgilmore> \[page #\d+\]"),
    ("ack", r"<dgilmore> !ack \d+"),
]


class DemoRun:
    """`deploybot demo ARGS` as a subprocess; its stdout lines collected by a thread."""

    def __init__(self, tmp_path: Path, *args: str) -> None:
        self.tmp = Path(tempfile.mkdtemp(dir=tmp_path, prefix="tmpdir-"))
        env = {**os.environ, "TMPDIR": str(self.tmp), "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [deploybot_executable(), "demo", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
            encoding="utf-8",
        )
        self.lines: list[str] = []
        self.stderr = ""
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_line(self, pattern: str, timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        while True:
            for line in list(self.lines):
                if match := regex.search(line):
                    return match
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"no line matching {pattern!r}\n{self.report()}")
            time.sleep(0.05)

    def wait(self, timeout: float) -> int:
        try:
            status = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"deploybot demo still running after {timeout}s") from None
        self._reader.join(5)
        assert self.proc.stderr is not None
        self.stderr = self.proc.stderr.read()
        self._close_pipes()
        return status

    def _close_pipes(self) -> None:
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None and not self._reader.is_alive():
                pipe.close()

    def report(self) -> str:
        return f"--- stdout:\n{self.output}\n--- stderr:\n{self.stderr}"

    def bot_pid(self) -> int:
        return int(self.wait_line(r"the bot: deploybot run bot\.ini \(pid (\d+)\)", 30)[1])

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(5)
        self._close_pipes()

    def debug_sections(self) -> list[tuple[str, str]]:
        return [("deploybot demo", self.report())]


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[list[DemoRun]]:
    runs: list[DemoRun] = []
    yield runs
    for run in runs:
        run.close()


def gone(pid: int) -> bool:
    """Whether process `pid` has exited (and is not a zombie of ours)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    status = Path(f"/proc/{pid}/stat")
    return status.exists() and status.read_text().split(") ", 1)[1].startswith("Z")


def wait_gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not gone(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def assert_in_order(output: str, steps: list[tuple[str, str]]) -> None:
    """Each step's pattern matches a line after the line the previous step matched."""
    lines = output.splitlines()
    position = 0
    for name, pattern in steps:
        regex = re.compile(pattern)
        found = next((i for i in range(position, len(lines)) if regex.search(lines[i])), None)
        assert found is not None, (
            f"{name!r} (/{pattern}/) not found after line {position} "
            f"({lines[position - 1] if position else 'the start'!r})\n{output}"
        )
        position = found + 1


def assert_cleaned_up(run: DemoRun, bot_pid: int) -> None:
    assert wait_gone(bot_pid), f"the bot (pid {bot_pid}) is still running\n{run.report()}"
    leftovers = list(run.tmp.iterdir())
    assert leftovers == [], f"left behind: {leftovers}\n{run.report()}"


# -- the demo ---------------------------------------------------------------------------------


@pytest.mark.parametrize("step", [1.0, 0.3])
def test_the_generated_config_and_plan_load_and_the_plan_is_ready(
    tmp_path: Path, step: float
) -> None:
    """The bot.ini and plan the demo writes pass the bot's own validation: the config
    loads (countdowns at 1m and 0, digest_time as HH:MM:SS 5 s after the window), the
    plan file loads without a problem, is READY under the policy and keeps the pkgdb2
    story (three API breaks, its playbooks, the roster channel)."""
    now = datetime(2026, 5, 28, 12, 59, 0, 250000, tzinfo=UTC)
    timeline = Timeline.starting(now, step)
    assert timeline.when.microsecond == 0 and timeline.when > now + Timeline.lead(step)
    (tmp_path / "plans").mkdir()
    (tmp_path / "plans" / "pkgdb2-2.0.yaml").write_text(dump_plan(demo_plan(timeline)))
    ini = tmp_path / "bot.ini"
    ini.write_text(
        bot_ini(
            irc=("127.0.0.1", 6667),
            endpoint="tcp://127.0.0.1:9940",
            timeline=timeline,
            tz="UTC",
            fast=True,
        )
    )
    config = load_config(ini)
    assert load_bot_section(ini)["throttle_burst"] == "20"  # [bot] passes the check too
    assert config.countdowns == (Timeline.countdown_offset(step), timedelta(0))
    assert config.digest_time == timeline.digest_at.time()
    assert config.fedmsg_endpoints == ("tcp://127.0.0.1:9940",)
    assert config.web_port == 0
    result = load_paths([tmp_path / "plans"])
    assert result.problems == ()
    (plan,) = result.plans
    assert plan.when == timeline.when and plan.end == timeline.end
    assert len(plan.api_breaks) == 3 and "manual/upgrade/pkgdb2.yml" in plan.playbooks
    assert plan.roster.channel == "#pkgdb2-firefight"
    assert assess(plan, config.notice_days).ready


def test_a_demo_across_midnight_utc_uses_a_zone_where_it_is_one_day() -> None:
    """The digest is per day: a demo that would cross midnight UTC runs in UTC+12."""
    before = datetime(2026, 5, 28, 23, 58, tzinfo=UTC)
    assert demo_timezone(before, before + timedelta(minutes=1)) == "UTC"
    zone = demo_timezone(before, before + timedelta(minutes=4))
    local = [
        moment.astimezone(ZoneInfo(zone)) for moment in (before, before + timedelta(minutes=4))
    ]
    assert local[0].date() == local[1].date()


@pytest.mark.slow
def test_the_demo_plays_a_deploy_day_on_its_own_server(tmp_path: Path, demo: list[DemoRun]) -> None:
    """`deploybot demo` on a fresh directory: the first line says where to connect (the
    built-in server on a free 127.0.0.1 port, both channels); then the transcript shows
    the whole day in order — countdown with its API-break warning, the playbook start on
    the bus opening firefighting (join, topic, pages, "started by"), an ack, an
    incident reported, taken and fixed, the playbook finishing with failures, the
    window's closing summary, the digest — and the bot's QUIT; a summary ends it. Exit 0,
    the bot process gone, the temporary directory removed, nothing on stderr."""
    run = DemoRun(tmp_path, "--seconds-per-step", FAST)
    demo.append(run)
    pid = run.bot_pid()
    status = run.wait(150)
    assert status == 0, run.report()
    first = run.lines[0]
    assert first.startswith("deploybot demo: a pkgdb2 2.0 deploy day"), run.report()
    assert re.fullmatch(
        r"connect your IRC client to 127\.0\.0\.1:\d+ \(nick anything\), "
        r"/join #fedora-admin and #pkgdb2-firefight",
        run.lines[1],
    ), run.report()
    assert_in_order(run.output, DAY)
    assert_in_order(run.output, PAGE)
    assert "escalating to nirik" in run.output  # tflink never acknowledged
    # The bot's web server is on, and the demo shows it answering.
    assert re.search(r"the bot's web page: http://127\.0\.0\.1:\d+/", run.output), run.report()
    assert re.search(
        r"\(web\) GET http://127\.0\.0\.1:\d+/api/v1/deployments: 200, deployments: pkgdb2-2\.0",
        run.output,
    ), run.report()
    assert run.stderr == "", run.report()
    assert_cleaned_up(run, pid)


def test_ctrl_c_stops_the_bot_the_server_and_removes_the_directory(
    tmp_path: Path, demo: list[DemoRun]
) -> None:
    """SIGINT (Ctrl-C) in the middle of the day: the bot quits (its QUIT is in the
    transcript), everything stops, the directory is removed; exit status 130."""
    run = DemoRun(tmp_path, "--seconds-per-step", FAST)
    demo.append(run)
    pid = run.bot_pid()
    run.wait_line(r"#fedora-admin +\* deploybot joined", 30)
    run.proc.send_signal(signal.SIGINT)
    status = run.wait(30)
    assert status == 130, run.report()
    assert re.search(r"\* deploybot quit \(", run.output), run.report()
    assert "interrupted" in run.output
    assert_cleaned_up(run, pid)


def test_a_port_in_use_or_an_unreachable_server_is_a_one_line_error(
    tmp_path: Path, demo: list[DemoRun]
) -> None:
    """`--port` on a port that is taken, or `--server` where nothing listens: one line on
    stderr naming the address, exit 1, nothing left behind."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = DemoRun(tmp_path, "--port", str(port))
        demo.append(run)
        assert run.wait(30) == 1, run.report()
    assert run.stderr.strip().count("\n") == 0, run.report()
    assert run.stderr.startswith(f"deploybot demo: cannot listen on 127.0.0.1:{port}: "), (
        run.report()
    )
    assert run.output == "", run.report()

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]  # bound, never listening: connections are refused
        run = DemoRun(tmp_path, "--server", f"127.0.0.1:{closed}")
        demo.append(run)
        assert run.wait(30) == 1, run.report()
    assert run.stderr.strip().count("\n") == 0, run.report()
    assert run.stderr.startswith(
        f"deploybot demo: cannot connect to the IRC server 127.0.0.1:{closed}: "
    ), run.report()
    assert list(run.tmp.iterdir()) == [], run.report()


@pytest.mark.slow
def test_the_demo_runs_on_a_real_ircd_with_server(
    tmp_path: Path, demo: list[DemoRun], ngircd_server: NgircdServer
) -> None:
    """`deploybot demo --server` against ngircd (a real IRC server), with the bot's default
    output pacing (the demo does not know the server's flood limits): the banner names that
    server, and the day runs there in the same order through everything that involves the
    server — countdown, joining the firefighting channel, its topic, pages, "started by" —
    to the first acknowledged page; then Ctrl-C stops it cleanly (exit 130, the bot's QUIT,
    the directory removed). The rest of the day is the same on any server: the one full run
    is `test_the_demo_plays_a_deploy_day_on_its_own_server`."""
    run = DemoRun(
        tmp_path, "--server", f"127.0.0.1:{ngircd_server.port}", "--seconds-per-step", FAST
    )
    demo.append(run)
    pid = run.bot_pid()
    run.wait_line(r"<deploybot> dgilmore: acknowledged page #\d+", 120)
    run.proc.send_signal(signal.SIGINT)
    status = run.wait(30)
    assert status == 130, run.report()
    assert (
        f"connect your IRC client to 127.0.0.1:{ngircd_server.port} (nick anything)" in run.lines[1]
    )
    assert "on your server" in run.lines[0]
    assert_in_order(run.output, DAY[: [name for name, _ in DAY].index("ack") + 1])
    assert_in_order(run.output, PAGE)
    assert re.search(r"\* deploybot quit \(", run.output), run.report()
    assert_cleaned_up(run, pid)


# -- the built-in server ----------------------------------------------------------------------


@pytest.fixture
async def server() -> AsyncIterator[DemoIrcServer]:
    ircd = DemoIrcServer()
    await ircd.start()
    try:
        yield ircd
    finally:
        await ircd.close()


def privmsgs(client: IrcClient, sender: str) -> list[Message]:
    return [m for m in client.messages if m.command == "PRIVMSG" and m.nick == sender]


async def test_two_clients_join_talk_and_set_the_topic(
    server: DemoIrcServer, irc_client: IrcClientFactory
) -> None:
    """Registration as IRC clients do it (CAP LS 302 answered with no capabilities, then
    001…MOTD); JOIN gives the creator `@` in NAMES; a channel message reaches the other
    member (not the sender), a private one its nick; anyone in the channel may set the
    topic (demo-only) until an operator sets +t, after which others get 482; a late
    joiner gets the topic (332); PART and QUIT reach those who share a channel."""
    alice = await irc_client(server.port, "alice")
    bob = await irc_client(server.port, "bob")
    assert alice.caps == frozenset()
    await alice.join("#demo")
    names = next(m for m in alice.messages if m.command == "353")
    assert names.text.split() == ["@alice"]
    await bob.join("#Demo")  # channel names ignore case
    await alice.wait_for(lambda m: m.command == "JOIN" and m.nick == "bob")

    await alice.privmsg("#demo", "hello channel")
    got = await bob.wait_privmsg("alice", "#demo", "hello channel")
    assert got.prefix is not None and got.prefix.startswith("alice!")
    await bob.privmsg("alice", "hello alice")
    await alice.wait_privmsg("bob", "alice", "hello alice")
    assert privmsgs(alice, "alice") == []  # no echo of one's own messages

    await bob.send("TOPIC #demo :deploy day")
    topic = await alice.wait_for(lambda m: m.command == "TOPIC" and m.nick == "bob")
    assert topic.text == "deploy day"
    await alice.send("MODE #demo +t")
    await bob.wait_for(lambda m: m.command == "MODE" and m.params[1:] == ("+t",))
    await bob.send("TOPIC #demo :mine now")
    refused = await bob.wait_for(lambda m: m.command == "482")
    assert refused.params[1] == "#demo"

    carol = await irc_client(server.port, "carol")
    await carol.join("#demo")
    assert any(m.command == "332" and m.text == "deploy day" for m in carol.messages)
    await carol.send("WHO #demo")
    await carol.wait_for(lambda m: m.command == "315")
    assert {m.params[5] for m in carol.messages if m.command == "352"} == {
        "alice",
        "bob",
        "carol",
    }
    await bob.send("PART #demo :bye")
    await carol.wait_for(lambda m: m.command == "PART" and m.nick == "bob" and m.text == "bye")
    await alice.quit("see you")
    quit_line = await carol.wait_for(lambda m: m.command == "QUIT" and m.nick == "alice")
    assert quit_line.text == "Quit: see you"


async def test_a_nick_in_use_is_refused_with_433(
    server: DemoIrcServer, irc_client: IrcClientFactory
) -> None:
    """A second client asking for a nick in use (in any case) gets 433 and stays
    unregistered."""
    await irc_client(server.port, "dgilmore")
    with pytest.raises(AssertionError, match=r" 433 \* DGilmore "):
        await IrcClient.connect("127.0.0.1", server.port, "DGilmore", timeout=5)


async def test_cr_lf_and_nul_in_a_message_cannot_make_a_second_line(
    server: DemoIrcServer, irc_client: IrcClientFactory
) -> None:
    """A client writes `PRIVMSG #c :a\\rPRIVMSG #c :injected` (a bare CR), a NUL, and a
    line over 512 bytes. The other member receives one PRIVMSG per line sent, with CR and
    NUL turned into spaces, nothing else from the sender, and every line it gets is at
    most 512 bytes with its CR LF."""
    alice = await irc_client(server.port, "alice")
    bob = await irc_client(server.port, "bob")
    await alice.join("#c")
    await bob.join("#c")
    writer = alice._writer  # raw bytes: IrcClient.send refuses CR/LF, as it should
    writer.write(b"PRIVMSG #c :hello\rPRIVMSG #c :injected\r\n")
    writer.write(b"PRIVMSG #c :nul\x00QUIT :gone\r\n")
    writer.write(b"PRIVMSG #c :" + b"x" * 600 + b"\r\n")
    writer.write(b"PRIVMSG #c :done\r\n")
    await writer.drain()
    await bob.wait_privmsg("alice", "#c", "done")
    texts = [m.text for m in privmsgs(bob, "alice")]
    assert texts[:2] == ["hello PRIVMSG #c :injected", "nul QUIT :gone"], texts
    assert texts[2] == "x" * len(texts[2]) and len(texts[2]) < 600, texts
    assert texts[3:] == ["done"], texts
    assert not alice.closed
    for m in bob.messages:
        assert len(m.raw.encode()) + 2 <= MAX_LINE, m.raw
        assert "\r" not in m.raw and "\n" not in m.raw and "\0" not in m.raw


async def test_the_bot_registers_and_sets_a_topic_in_a_channel_it_did_not_create(
    server: DemoIrcServer, irc_client: IrcClientFactory
) -> None:
    """What the demo relies on, with irc3's CAP LS 302 sent before NICK/USER: the server
    holds registration until CAP END and the bot's client can set a topic where someone
    else is operator (channels are created without +t). Shown here with a raw client
    that registers the way the bot does."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(b"CAP LS 302\r\nNICK deploybot\r\nUSER deploybot 0 * :bot\r\n")
        await writer.drain()
        first = (await asyncio.wait_for(reader.readline(), 5)).decode()
        assert first == f":{server.name} CAP * LS :\r\n"
        await asyncio.sleep(0.1)
        assert server.nicks["deploybot"].registered is False  # held until CAP END
        op = await irc_client(server.port, "op")
        await op.join("#fire")
        writer.write(b"CAP END\r\nJOIN #fire\r\nTOPIC #fire :firefighting\r\n")
        await writer.drain()
        topic = await op.wait_for(lambda m: m.command == "TOPIC" and m.nick == "deploybot")
        assert topic.text == "firefighting"
    finally:
        writer.close()
        await writer.wait_closed()
