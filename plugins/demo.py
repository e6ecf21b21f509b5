"""``deploybot demo`` (SPEC §8): a whole deploy day on this machine, in about 2½ minutes.

What it puts together, all on 127.0.0.1 and in a temporary directory:

* an IRC server — the built-in demo server (:mod:`deploybot_plugins.demo_ircd`) on a free
  port (``--port`` to choose one), or an existing one with ``--server HOST:PORT``;
* a fedmsg publisher: a ZeroMQ XPUB socket on a free port, named in the bot's
  ``fedmsg_endpoints`` (an XPUB tells the publisher when the bot has subscribed, so no
  message is lost to PUB/SUB's slow-joiner window);
* the bot: ``deploybot run bot.ini`` with a ``bot.ini`` (web server off), a plan
  ``plans/pkgdb2-2.0.yaml`` written with :func:`deploybot.planfile.dump_plan` — the story
  of ``deploy-plans/pkgdb2-2.0.yaml`` (three API breaks, a roster, consumers), with a
  smaller roster and a window of about a minute — and its SQLite file;
* three scripted people (``pingou``, ``dgilmore``, ``tflink``), raw asyncio IRC clients,
  and an observer (``transcript``) whose view of the channels, timestamped, is the
  demo's output; the scripted people's private messages (their pages) are shown too.

**Sped up by compressing the schedule, not the clock**: the bot runs on real time (its
scheduler does), so the plan starts about a minute after launch, countdowns are at
``1m`` and ``0``, ``page_escalate_after`` is 30 s, the window lasts 70 s and
``digest_time`` (``HH:MM:SS``) is 5 s after it.  The script (:class:`Timeline`, times
relative to the plan's start): ``!deploys`` and ``!uses`` while counting down; the
ansible playbook starts on the bus 10 s early (firefighting opens: topic, API breaks,
pages); dgilmore and pingou ``!ack`` their pages, tflink's is escalated; dgilmore and
tflink report incidents with ``!broke``; pingou takes the first and fixes it; the
playbook completes with a failure on one host; the window closes with a summary and the
digest follows.  Each scripted step waits for the bot's answer to the previous one, so
the order holds on a slow machine or a paced server.  The hidden
``--seconds-per-step`` (default 1) scales every interval, for the tests.

**The bot runs as a subprocess** (``python -m deploybot.cli run bot.ini``), not
in-process through :class:`deploybot_plugins.application.Application`:

* it is exactly what ``deploybot run`` does, with the same ``bot.ini`` a newcomer can
  keep (``--keep``) and run again;
* irc3's process-wide side effects (it patches ``asyncio.sleep``/``asyncio.wait`` and
  configures logging) and the application's own SIGINT/SIGTERM handlers stay out of the
  process that hosts the demo server and the transcript; the bot's log goes to
  ``bot.log`` in the directory, not into the transcript;
* stopping it is what an operator does: SIGTERM, then QUIT shows in the transcript.

It is started in its own session (a Ctrl-C in the terminal reaches only the demo, which
then stops the bot once, cleanly) and, on Linux where ``setpriv`` exists, with a
parent-death signal (SIGTERM), so even a demo killed with SIGKILL leaves no bot behind.

Exit status: 0 after the digest; 1 with a one-line error when something could not start
(a port in use, an unreachable ``--server``, the bot exiting) or the bot did not do its
part in time; 130 on Ctrl-C (SIGINT/SIGTERM), after the same clean stop.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo

import aiohttp
import zmq

from deploybot.durations import format_duration
from deploybot.planfile import dump_plan
from deploybot.plans import (
    Announcement,
    ApiBreak,
    Consumer,
    Plan,
    Production,
    Roster,
    Shift,
    Staging,
)

from .demo_ircd import DemoIrcServer, irc_lower
from .fedmsg_source import fedmsg_frames, make_envelope

HOST = "127.0.0.1"
ADMIN = "#fedora-admin"
FIREFIGHT = "#pkgdb2-firefight"
BOT_NICK = "deploybot"
OBSERVER = "transcript"
PINGOU, DGILMORE, TFLINK = "pingou", "dgilmore", "tflink"
PEOPLE = (PINGOU, DGILMORE, TFLINK)
PLAYBOOK = "/srv/web/infra/ansible/playbooks/manual/upgrade/pkgdb2.yml"
TOPIC_BASE = "org.fedoraproject.prod.ansible.playbook."
START_TIMEOUT = 30.0  # the bot joining the admin channel, clients registering
STEP_TIMEOUT = 60.0  # the bot answering a scripted step (a paced real server is slow)
INTERRUPTED = 130

__all__ = ["DemoError", "Options", "Timeline", "demo_plan", "main", "run"]


class DemoError(Exception):
    """Something the demo needed did not happen; the text is the one-line error."""


# -- the schedule ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Timeline:
    """When everything happens, for a plan starting at ``when``; ``step`` seconds per
    second of the default script (1.0: about 2½ minutes in all).

    The script's steps run in the order :meth:`Demo.play` takes them, each not before its
    time below (a time already past when the previous step's answer came: at once)."""

    when: datetime
    step: float = 1.0

    # The script, in seconds relative to ``when`` at step 1.0.
    DEPLOYS = -45.0
    USES = -30.0
    BUS_START = -10.0
    ACK_DGILMORE = 5.0
    ACK_PINGOU = 8.0
    BROKE_DGILMORE = 15.0
    BROKE_TFLINK = 25.0
    TAKE = 30.0
    FIXED = 45.0
    BUS_COMPLETE = 55.0

    @staticmethod
    def countdown_offset(step: float) -> timedelta:
        return timedelta(seconds=max(10, round(60 * step)))

    @classmethod
    def lead(cls, step: float) -> timedelta:
        """From launch to the plan's start: the first countdown comes ≥ 8 s after launch,
        time enough for the bot to start and join."""
        return cls.countdown_offset(step) + timedelta(seconds=max(8, round(5 * step)))

    @classmethod
    def starting(cls, now: datetime, step: float = 1.0) -> Timeline:
        when = (now + cls.lead(step)).replace(microsecond=0) + timedelta(seconds=1)
        return cls(when=when, step=step)

    def at(self, offset: float) -> datetime:
        return self.when + timedelta(seconds=offset * self.step)

    @property
    def window(self) -> timedelta:
        return timedelta(seconds=max(12, round(70 * self.step)))

    @property
    def end(self) -> datetime:
        return self.when + self.window

    @property
    def escalate_after(self) -> timedelta:
        return timedelta(seconds=max(4, round(30 * self.step)))

    @property
    def digest_at(self) -> datetime:
        return self.end + timedelta(seconds=max(3, round(5 * self.step)))

    @property
    def countdowns(self) -> str:
        return f"{format_duration(self.countdown_offset(self.step))} 0"


def demo_timezone(start: datetime, finish: datetime) -> str:
    """UTC, unless the demo would cross midnight UTC (the digest is per day): then a zone
    where it is noon (UTC+12, ``Etc/GMT-12`` in POSIX's inverted sign)."""
    if start.astimezone(UTC).date() == finish.astimezone(UTC).date():
        return "UTC"
    return "Etc/GMT-12"


def demo_plan(timeline: Timeline) -> Plan:
    """deploy-plans/pkgdb2-2.0.yaml's story on the demo's schedule: the same API breaks,
    playbooks and policy facts (dated from today, so it is ready), a roster of the three
    scripted people (the whole window each), consumers whose contacts are paged, and the
    escalation list."""
    when, end = timeline.when, timeline.end
    day: date = when.astimezone(UTC).date()
    return Plan(
        id="pkgdb2-2.0",
        service="pkgdb2",
        release="2.0",
        title="pkgdb2 replaces pkgdb1",
        when=when,
        duration=timeline.window,
        major=True,
        essential=True,
        owners=(PINGOU, "abadger1999"),
        playbooks=("groups/pkgdb.yml", "manual/upgrade/pkgdb2.yml"),
        staging=Staging(
            url="https://admin.stg.fedoraproject.org/pkgdb",
            call_for_testing=day - timedelta(days=25),
        ),
        production=Production(url="https://admin.fedoraproject.org/pkgdb"),
        api_breaks=(
            ApiBreak(
                "/api/packager/acl",
                "returns null instead of [] when the packager has no ACLs",
                "treat null as an empty list (python-fedora >= 0.5 does)",
            ),
            ApiBreak(
                "/api/collections",
                "collection branch names are lowercase (f41, epel9) instead of F-41, EL-9",
                'compare branch names case-insensitively, or use the new "koji_name" field',
            ),
            ApiBreak(
                "/acls/name/<package>",
                "removed; replaced by /api/package/acl?pkgname=<package>",
                "switch to the new endpoint; the old URL answers 410 Gone from the deploy on",
            ),
        ),
        consumers=(
            Consumer("rel-eng compose and branching scripts", "rel-eng", DGILMORE),
            Consumer("blocker bugs app", "qa", TFLINK),
            Consumer("pkgdb-sync-git-branches cron job", "cvsadmins", "ralph"),
        ),
        announcements=(
            Announcement("infrastructure", day - timedelta(days=28), api_break=True),
            Announcement("devel", day - timedelta(days=27), api_break=True),
        ),
        meetings=(day - timedelta(days=26), day - timedelta(days=19)),
        teams=("rel-eng", "qa"),
        roster=Roster(
            channel=FIREFIGHT,
            shifts=(
                Shift("infrastructure", (PINGOU,), when, end),
                Shift("rel-eng", (DGILMORE,), when, end),
                Shift("qa", (TFLINK,), when, end),
            ),
            escalation=("nirik",),
        ),
    )


def free_tcp_port() -> int:
    """A 127.0.0.1 port free a moment ago, for the bot's web server (if something takes it
    first, the bot says so and exits 1: the demo stops with that error)."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def bot_ini(
    *,
    irc: tuple[str, int],
    endpoint: str,
    timeline: Timeline,
    tz: str,
    fast: bool,
    web_port: int = 0,
) -> str:
    """The demo's bot.ini (SPEC §7); ``fast`` paces output for the built-in server only;
    ``web_port`` 0: no web server."""
    host, port = irc
    throttle = (
        ["throttle_burst = 20", "throttle_rate = 10"]
        if fast
        else ["# output pacing: the defaults (safe on a stock InspIRCd class)"]
    )
    digest_time = timeline.digest_at.astimezone(ZoneInfo(tz))
    return "\n".join(
        [
            "# Written by `deploybot demo`; run it again with: deploybot run bot.ini",
            "[bot]",
            f"nick = {BOT_NICK}",
            "username = deploybot",
            "realname = deploybot (demo)",
            f"host = {host}",
            f"port = {port}",
            "ssl = false",
            *throttle,
            "reconnect_delay = 1",
            "reconnect_max_delay = 5",
            "includes =",
            "    deploybot_plugins.commands",
            "",
            "[deploybot]",
            "plans_dir = plans",
            "database = deploybot.sqlite3",
            f"timezone = {tz}",
            f"admin_channel = {ADMIN}",
            f"announce_channels = {ADMIN}",
            "firefight_channel = #{service}-firefight",
            f"countdowns = {timeline.countdowns}",
            f"digest_time = {digest_time:%H:%M:%S}",
            f"page_escalate_after = {format_duration(timeline.escalate_after)}",
            "; nobody is an admin: the demo server has no services accounts",
            "admins = account:pingou",
            f"fedmsg_endpoints = {endpoint}",
            "fedmsg_topic_prefix = org.fedoraproject",
            "fedmsg_environment = prod",
            "; the web pages, the API and the calendar (0: off); no webhook (no secret)",
            f"web_host = {HOST}",
            f"web_port = {web_port}",
            "",
        ]
    )


# -- a small IRC client ----------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    """One line from the server."""

    prefix: str
    command: str
    params: tuple[str, ...]

    @classmethod
    def parse(cls, raw: str) -> Line | None:
        rest = raw
        if rest.startswith("@"):
            rest = rest.partition(" ")[2].lstrip(" ")
        prefix = ""
        if rest.startswith(":"):
            prefix, _, rest = rest[1:].partition(" ")
        head, sep, trailing = rest.partition(" :")
        words = head.split()
        if not words:
            return None
        return cls(prefix, words[0].upper(), (*words[1:], *([trailing] if sep else [])))

    @property
    def nick(self) -> str:
        return self.prefix.split("!", 1)[0]

    @property
    def target(self) -> str:
        return self.params[0] if self.params else ""

    @property
    def text(self) -> str:
        return self.params[-1] if self.params else ""

    @property
    def from_user(self) -> bool:
        return "!" in self.prefix


def same(a: str, b: str) -> bool:
    return irc_lower(a) == irc_lower(b)


class IrcPerson:
    """A raw asyncio IRC client (no CAP, no irc3): registers, answers PING, keeps every
    line, calls ``on_line`` for each; ``wait_for`` waits for a line matching a test."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        nick: str,
        on_line: Callable[[IrcPerson, Line], None] | None,
    ) -> None:
        self.nick = nick
        self.lines: list[Line] = []
        self._reader = reader
        self._writer = writer
        self._on_line = on_line
        self._changed = asyncio.Event()
        self.closed = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._read(), name=f"irc-{nick}")

    @classmethod
    async def connect(
        cls,
        host: str,
        port: int,
        nick: str,
        on_line: Callable[[IrcPerson, Line], None] | None = None,
        timeout: float = START_TIMEOUT,
    ) -> IrcPerson:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        except (OSError, TimeoutError) as error:
            raise DemoError(f"cannot connect to the IRC server {host}:{port}: {error}") from None
        person = cls(reader, writer, nick, on_line)
        try:
            await person._register(timeout)
        except BaseException:
            await person.close()
            raise
        return person

    async def _register(self, timeout: float) -> None:
        wanted = self.nick
        self.send(f"NICK {wanted}")
        self.send(f"USER {self.nick} 0 * :deploybot demo ({self.nick})")
        since = 0
        for _ in range(5):
            line = await self.wait_for(
                lambda m: m.command in {"001", "432", "433", "ERROR"},
                timeout,
                f"registration as {wanted}",
                since,
            )
            since = self.lines.index(line) + 1
            if line.command == "001":
                self.nick = line.target
                await self.wait_for(lambda m: m.command in {"376", "422"}, timeout, "the MOTD")
                return
            if line.command == "ERROR":
                raise DemoError(f"the IRC server refused {wanted}: {line.text}")
            wanted += "_"  # nick in use (or refused): try another, as clients do
            self.send(f"NICK {wanted}")
        raise DemoError(f"the IRC server refused the nick {self.nick} and its variants")

    async def _read(self) -> None:
        try:
            while True:
                raw = await self._reader.readline()
                if not raw:
                    break
                line = Line.parse(raw.decode("utf-8", errors="replace").rstrip("\r\n"))
                if line is None:
                    continue
                if line.command == "PING":
                    self.send(f"PONG :{line.text}")
                self.lines.append(line)
                if self._on_line is not None:
                    self._on_line(self, line)
                self._changed.set()
        except (ConnectionError, OSError):
            pass
        finally:
            self.closed.set()
            self._changed.set()

    def send(self, line: str) -> None:
        if "\r" in line or "\n" in line or "\0" in line:
            raise ValueError(f"not one IRC line: {line!r}")
        if not self._writer.is_closing():
            self._writer.write(line.encode("utf-8") + b"\r\n")

    def mark(self) -> int:
        return len(self.lines)

    async def wait_for(
        self, test: Callable[[Line], bool], timeout: float, what: str, since: int = 0
    ) -> Line:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        index = since
        while True:
            while index < len(self.lines):
                if test(self.lines[index]):
                    return self.lines[index]
                index += 1
            if self.closed.is_set():
                raise DemoError(f"{self.nick}: the IRC server closed the connection ({what})")
            left = deadline - loop.time()
            if left <= 0:
                raise DemoError(f"{what}: nothing within {timeout:.0f} s")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), left)

    async def join(self, channel: str) -> None:
        since = self.mark()
        self.send(f"JOIN {channel}")
        await self.wait_for(
            lambda m: m.command == "366" and len(m.params) > 1 and same(m.params[1], channel),
            START_TIMEOUT,
            f"{self.nick} joining {channel}",
            since,
        )
        if any(m.command == "353" and f"@{self.nick}" in m.text.split() for m in self.lines):
            # We created it: let anyone set the topic (the bot sets the firefighting one).
            self.send(f"MODE {channel} -t")

    def say(self, target: str, text: str) -> None:
        self.send(f"PRIVMSG {target} :{text}")

    async def quit(self, reason: str) -> None:
        with contextlib.suppress(ConnectionError, OSError, ValueError):
            self.send(f"QUIT :{reason}")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.closed.wait(), 2.0)
        await self.close()

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self._writer.wait_closed()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


# -- the transcript --------------------------------------------------------------------------


@dataclass
class Transcript:
    """Timestamped lines on ``out``: the channels as the observer sees them, the scripted
    people's private messages, and what the demo puts on the bus."""

    out: TextIO
    tz: ZoneInfo
    quiet_nicks: set[str] = field(default_factory=set)  # their joins are not shown
    shown: int = 0
    private: int = 0

    def write(self, where: str, text: str) -> None:
        stamp = datetime.now(self.tz).strftime("%H:%M:%S")
        width = max(len(ADMIN), len(FIREFIGHT))
        print(f"{stamp} {where:<{width}} {text}", file=self.out, flush=True)
        self.shown += 1

    def note(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def observed(self, _: IrcPerson, line: Line) -> None:
        """The observer's view of its channels."""
        nick, command = line.nick, line.command
        if command in {"PRIVMSG", "NOTICE"} and line.target.startswith("#") and line.from_user:
            text = line.text
            if text.startswith("\x01ACTION ") and text.endswith("\x01"):
                self.write(line.target, f"* {nick} {text[8:-1]}")
            else:
                self.write(line.target, f"<{nick}> {text}")
        elif command == "TOPIC":
            self.write(line.target, f"* {nick} sets the topic: {line.text}")
        elif command == "JOIN" and not self._quiet(nick):
            self.write(line.target, f"* {nick} joined")
        elif command == "PART" and not self._quiet(nick):
            reason = f" ({line.params[1]})" if len(line.params) > 1 else ""
            self.write(line.target, f"* {nick} left{reason}")
        elif command == "QUIT" and not self._quiet(nick):
            self.write("", f"* {nick} quit ({line.text})")
        elif command == "KICK" and len(line.params) > 1:
            self.write(line.target, f"* {nick} kicked {line.params[1]}")
        elif command == "NICK" and not self._quiet(nick):
            self.write("", f"* {nick} is now {line.text}")

    def personal(self, person: IrcPerson, line: Line) -> None:
        """A scripted person's private messages (the observer cannot see them)."""
        if (
            line.command in {"PRIVMSG", "NOTICE"}
            and line.from_user
            and same(line.target, person.nick)
        ):
            self.write("(private)", f"<{line.nick} → {person.nick}> {line.text}")
            self.private += 1

    def _quiet(self, nick: str) -> bool:
        return irc_lower(nick) in self.quiet_nicks


# -- the bus ---------------------------------------------------------------------------------


class Bus:
    """The demo's fedmsg publisher: an XPUB socket on a free 127.0.0.1 port."""

    def __init__(self) -> None:
        self.context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self.socket = self.context.socket(zmq.XPUB)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.XPUB_VERBOSE, 1)
        port = self.socket.bind_to_random_port(f"tcp://{HOST}")
        self.endpoint = f"tcp://{HOST}:{port}"
        self.subscribed = False

    async def wait_subscribed(self, timeout: float, alive: Callable[[], None]) -> None:
        """Until the bot's SUB socket has subscribed (``alive`` raises if the bot died)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.subscribed:
            while self.socket.poll(0):
                if self.socket.recv()[:1] == b"\x01":
                    self.subscribed = True
            if self.subscribed:
                return
            alive()
            if loop.time() > deadline:
                raise DemoError(f"the bot did not subscribe to {self.endpoint} in {timeout:.0f} s")
            await asyncio.sleep(0.05)

    def publish(self, kind: str, msg: dict[str, Any]) -> None:
        envelope = make_envelope(TOPIC_BASE + kind, msg, username="root")
        self.socket.send_multipart(fedmsg_frames(envelope))

    def close(self) -> None:
        self.socket.close(linger=0)
        self.context.term()


# -- the bot process -------------------------------------------------------------------------


class BotProcess:
    """``deploybot run bot.ini`` in ``workdir``, its output in ``bot.log``."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.log_path = workdir / "bot.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> int:
        argv = [sys.executable, "-m", "deploybot.cli", "run", "bot.ini"]
        setpriv = shutil.which("setpriv") if sys.platform.startswith("linux") else None
        if setpriv:
            argv = [setpriv, "--pdeathsig", "TERM", *argv]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                argv,
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # Ctrl-C reaches the demo, which stops the bot
            )
        return self.proc.pid

    def check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise DemoError(
                f"the bot exited with status {self.proc.returncode}: {self.last_log_line()}"
            )

    def last_log_line(self) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        return lines[-1] if lines else "(no output)"

    async def stop(self) -> int | None:
        """SIGTERM (QUIT, store closed), SIGKILL after 15 s; its exit status."""
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(proc.wait, 15)
            except subprocess.TimeoutExpired:
                proc.kill()
                await asyncio.to_thread(proc.wait)
        return proc.returncode


# -- the demo --------------------------------------------------------------------------------


@dataclass
class Options:
    server: tuple[str, int] | None = None  # an existing IRC server; None: the built-in one
    port: int = 0  # the built-in server's port (0: a free one)
    keep: bool = False
    step: float = 1.0


class Demo:
    def __init__(self, options: Options, out: TextIO) -> None:
        self.options = options
        self.out = out
        self.started = time.monotonic()
        self.server: DemoIrcServer | None = None
        self.bus: Bus | None = None
        self.web_port = 0
        self.bot: BotProcess | None = None
        self.workdir: Path | None = None
        self.observer: IrcPerson | None = None
        self.people: dict[str, IrcPerson] = {}
        self.transcript: Transcript
        self.timeline: Timeline
        self.finished = False
        self.summary_lines: list[str] = []

    # -- setting up ----------------------------------------------------------------------

    async def run(self) -> int:
        options = self.options
        if options.server is None:
            self.server = DemoIrcServer(HOST, options.port)
            try:
                port = await self.server.start()
            except OSError as error:
                self.server = None
                raise DemoError(
                    f"cannot listen on {HOST}:{options.port}: {error.strerror or error}"
                ) from None
            irc = (HOST, port)
        else:
            irc = options.server
        self.bus = Bus()
        self.web_port = free_tcp_port()
        now = datetime.now(UTC)
        self.timeline = timeline = Timeline.starting(now, options.step)
        tz_name = demo_timezone(now, timeline.digest_at + timedelta(seconds=60))
        tz = ZoneInfo(tz_name)
        self.transcript = Transcript(self.out, tz, {irc_lower(n) for n in (OBSERVER, *PEOPLE)})
        self.workdir = Path(tempfile.mkdtemp(prefix="deploybot-demo-"))
        (self.workdir / "plans").mkdir()
        (self.workdir / "plans" / "pkgdb2-2.0.yaml").write_text(
            dump_plan(demo_plan(timeline)), encoding="utf-8"
        )
        (self.workdir / "bot.ini").write_text(
            bot_ini(
                irc=irc,
                endpoint=self.bus.endpoint,
                timeline=timeline,
                tz=tz_name,
                fast=options.server is None,
                web_port=self.web_port,
            ),
            encoding="utf-8",
        )
        self._banner(irc, tz_name)

        observer, *people = await asyncio.gather(
            IrcPerson.connect(*irc, OBSERVER, self.transcript.observed),
            *(IrcPerson.connect(*irc, nick, self.transcript.personal) for nick in PEOPLE),
        )
        self.observer = observer
        self.people = {nick: person for nick, person in zip(PEOPLE, people, strict=True)}
        for channel in (ADMIN, FIREFIGHT):
            await observer.join(channel)
        await asyncio.gather(*(p.join(c) for p in people for c in (ADMIN, FIREFIGHT)))

        self.bot = BotProcess(self.workdir)
        since = observer.mark()
        pid = self.bot.start()
        self.transcript.note(f"  the bot: deploybot run bot.ini (pid {pid}), log in bot.log\n")
        await self._until_bot(
            lambda m: m.command == "JOIN" and same(m.nick, BOT_NICK) and same(m.target, ADMIN),
            f"the bot joining {ADMIN}",
            since,
            START_TIMEOUT,
        )
        await self.bus.wait_subscribed(START_TIMEOUT, self.bot.check_alive)
        await self._check_web()
        await self.play()
        self.finished = True
        return 0

    async def _check_web(self) -> None:
        """Ask the bot's web server what it serves (``/api/v1/deployments``) and say so."""
        url = f"http://{HOST}:{self.web_port}/api/v1/deployments"
        timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(timeout=timeout) as session, session.get(url) as response:
            document = await response.json()
        plans = ", ".join(plan["id"] for plan in document["deployments"]) or "none"
        self.transcript.note(f"  (web) GET {url}: {response.status}, deployments: {plans}")

    def _banner(self, irc: tuple[str, int], tz_name: str) -> None:
        host, port = irc
        t = self.timeline
        minutes = (t.digest_at - datetime.now(UTC)).total_seconds() / 60 + 0.1
        where = "the built-in demo server" if self.server is not None else "your server"
        note = self.transcript.note
        note(
            f"deploybot demo: a pkgdb2 2.0 deploy day (API breaks, firefighting, pages, "
            f"incidents, digest) in about {minutes:.1f} minutes, on {where}."
        )
        note(
            f"connect your IRC client to {host}:{port} (nick anything), "
            f"/join {ADMIN} and {FIREFIGHT}"
        )
        if self.server is not None:
            note(
                f"  (no TLS, no password: irssi -c {host} -p {port} · "
                f"weechat: /server add demo {host}/{port} -notls)"
            )
        web = f"http://{HOST}:{self.web_port}"
        note(f"  the bot's web page: {web}/ (API {web}/api/v1/deployments, {web}/calendar.ics)")
        keep = "kept: --keep" if self.options.keep else "removed at the end unless --keep"
        note(f"  files: {self.workdir} ({keep}); times in {tz_name}; Ctrl-C stops everything")
        deploy_at = t.when.astimezone(ZoneInfo(tz_name))
        note(
            f"  the deploy window opens at {deploy_at:%H:%M:%S} for "
            f"{format_duration(t.window)}; the digest comes at "
            f"{t.digest_at.astimezone(ZoneInfo(tz_name)):%H:%M:%S}"
        )

    # -- the day ---------------------------------------------------------------------------

    async def play(self) -> None:
        t = self.timeline
        pingou, dgilmore, tflink = (self.people[n] for n in PEOPLE)

        await self._at(t.at(t.DEPLOYS))
        await self._command(pingou, ADMIN, "!deploys", r"pkgdb2")
        await self._at(t.at(t.USES))
        await self._command(
            tflink, ADMIN, "!uses pkgdb2 blocker bugs app reads packager ACLs", r"pkgdb2"
        )

        await self._at(t.at(t.BUS_START))
        since = self._mark()
        self._publish(
            "start",
            {
                "check": False,
                "extra_vars": {},
                "inventory": "/srv/web/infra/ansible/inventory/",
                "playbook": PLAYBOOK,
                "playbook_checksum": False,
                "userid": PINGOU,
            },
            f"{PINGOU} runs {PLAYBOOK.partition('/playbooks/')[2]}",
        )
        await self._bot_says(ADMIN, r"deploy of pkgdb2 started by", since)

        await self._at(t.at(t.ACK_DGILMORE))
        number = await self._page_number(dgilmore)
        await self._command(dgilmore, FIREFIGHT, f"!ack {number}", r"acknowledged")
        await self._at(t.at(t.ACK_PINGOU))
        await self._page_number(pingou)
        await self._command(pingou, FIREFIGHT, "!ack", r"acknowledged")

        await self._at(t.at(t.BROKE_DGILMORE))
        first = await self._command(
            dgilmore,
            FIREFIGHT,
            "!broke pkgdb2 mass-branching fails: /api/collections says f41, the script wants F-41",
            r"recorded incident #(\d+)",
        )
        await self._at(t.at(t.BROKE_TFLINK))
        await self._command(
            tflink,
            FIREFIGHT,
            "!broke pkgdb2 blocker bugs app: /acls/name/kernel answers 410 Gone",
            r"recorded incident #(\d+)",
        )
        incident = first.group(1)
        await self._at(t.at(t.TAKE))
        await self._command(pingou, FIREFIGHT, f"!take {incident}", rf"#{incident} .*owned by")
        await self._at(t.at(t.FIXED))
        await self._command(
            pingou,
            FIREFIGHT,
            f"!fixed {incident} hotfix 2.0.1 accepts F-41 again; mass-branching re-run",
            rf"#{incident} .*fixed by",
        )

        await self._at(t.at(t.BUS_COMPLETE))
        since = self._mark()
        results = {
            "pkgdb01.phx2.fedoraproject.org": {"changed": 7, "failures": 0, "ok": 56},
            "pkgdb02.phx2.fedoraproject.org": {"changed": 3, "failures": 2, "ok": 41},
        }
        self._publish(
            "complete",
            {"playbook": PLAYBOOK, "userid": PINGOU, "results": results},
            "the playbook completes: 2 failures on pkgdb02.phx2",
        )
        await self._bot_says(ADMIN, r"deploy of pkgdb2 finished", since)

        wait_end = (t.end - datetime.now(UTC)).total_seconds() + STEP_TIMEOUT
        closed = await self._bot_says(FIREFIGHT, r"firefighting closed", since, wait_end)
        wait_digest = (t.digest_at - datetime.now(UTC)).total_seconds() + STEP_TIMEOUT
        digest = await self._bot_says(ADMIN, r"incident digest", since, wait_digest)
        # The digest also visits the firefighting channel (join, post, part): the end.
        with contextlib.suppress(DemoError):
            visit = await self._bot_says(FIREFIGHT, r"incident digest", since, STEP_TIMEOUT / 2)
            await self._until_bot(
                lambda m: (
                    m.command == "PART" and same(m.nick, BOT_NICK) and same(m.target, FIREFIGHT)
                ),
                "the bot leaving after the digest",
                self._index_of(visit),
                STEP_TIMEOUT / 2,
            )
        self.summary_lines = [
            f"  the bot's closing summary: {closed.string}",
            f"  the digest: {digest.string}",
        ]

    def _mark(self) -> int:
        assert self.observer is not None
        return self.observer.mark()

    def _index_of(self, match: re.Match[str]) -> int:
        """The observer's index of the line ``match`` was found in (see _bot_says)."""
        assert self.observer is not None
        lines = self.observer.lines
        return next(i for i in range(len(lines) - 1, -1, -1) if lines[i].text is match.string)

    async def _at(self, moment: datetime) -> None:
        delay = (moment - datetime.now(UTC)).total_seconds()
        if delay > 0:
            await asyncio.sleep(delay)

    def _publish(self, kind: str, msg: dict[str, Any], what: str) -> None:
        assert self.bus is not None
        self.bus.publish(kind, msg)
        self.transcript.write("(bus)", f"ansible.playbook.{kind}: {what}")

    async def _command(
        self, person: IrcPerson, channel: str, text: str, answer: str
    ) -> re.Match[str]:
        """``person`` says ``text`` in ``channel`` (the observer shows it); the bot's
        answer there matching ``answer``."""
        since = self._mark()
        person.say(channel, text)
        return await self._bot_says(channel, answer, since)

    async def _bot_says(
        self, channel: str, pattern: str, since: int, timeout: float = STEP_TIMEOUT
    ) -> re.Match[str]:
        regex = re.compile(pattern)
        line = await self._until_bot(
            lambda m: (
                m.command == "PRIVMSG"
                and same(m.nick, BOT_NICK)
                and same(m.target, channel)
                and regex.search(m.text) is not None
            ),
            f"the bot saying /{pattern}/ in {channel}",
            since,
            timeout,
        )
        match = regex.search(line.text)
        assert match is not None
        return match

    async def _until_bot(
        self, test: Callable[[Line], bool], what: str, since: int, timeout: float
    ) -> Line:
        """The observer's first line (from ``since``) passing ``test``; fails early if the
        bot process exits."""
        assert self.observer is not None and self.bot is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            self.bot.check_alive()
            try:
                return await self.observer.wait_for(
                    test, min(1.0, max(0.0, deadline - loop.time())), what, since
                )
            except DemoError:
                if self.observer.closed.is_set():
                    raise
                if loop.time() >= deadline:
                    raise DemoError(f"{what}: nothing within {timeout:.0f} s") from None

    async def _page_number(self, person: IrcPerson) -> int:
        line = await person.wait_for(
            lambda m: m.command == "PRIVMSG" and same(m.nick, BOT_NICK) and "[page #" in m.text,
            STEP_TIMEOUT,
            f"a page for {person.nick}",
        )
        match = re.search(r"\[page #(\d+)", line.text)
        assert match is not None
        return int(match.group(1))

    # -- the end ---------------------------------------------------------------------------

    async def close(self) -> None:
        """Stop everything that was started, in order; never raises."""
        if self.bot is not None:
            status = await self.bot.stop()
            if self.observer is not None and not self.observer.closed.is_set():
                # let the observer print the bot's QUIT
                with contextlib.suppress(DemoError):
                    await self.observer.wait_for(
                        lambda m: m.command == "QUIT" and same(m.nick, BOT_NICK),
                        2.0,
                        "the bot's QUIT",
                    )
            if status not in (0, None):
                self.transcript.note(f"  (the bot exited with status {status}; see bot.log)")
        for person in [*self.people.values(), *([self.observer] if self.observer else [])]:
            await person.quit("the demo is over")
        if self.bus is not None:
            self.bus.close()
        if self.server is not None:
            await self.server.close("the demo is over")
        if self.workdir is not None and not self.options.keep:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def summary(self) -> None:
        note = self.transcript.note
        elapsed = time.monotonic() - self.started
        note("")
        note(f"demo over after {int(elapsed // 60)}m{int(elapsed % 60):02d}s:")
        for line in self.summary_lines:
            note(line)
        note(
            f"  {self.transcript.shown} lines in the transcript, "
            f"{self.transcript.private} of them private messages to the demo's people"
        )
        if self.options.keep and self.workdir is not None:
            note(
                f"  kept {self.workdir}: bot.ini, plans/, deploybot.sqlite3, bot.log "
                f"(cd there and try: deploybot digest --config bot.ini)"
            )
        note("run the bot for real: see README.md (deploybot run bot.ini)")


async def run(options: Options, out: TextIO) -> int:
    """The demo with SIGINT/SIGTERM handled: the exit status."""
    loop = asyncio.get_running_loop()
    demo = Demo(options, out)
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    status = 1
    try:
        task = asyncio.create_task(demo.run(), name="demo")
        stopper = asyncio.create_task(stop.wait(), name="demo-stop")
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        if task.done():
            try:
                status = task.result()
            except DemoError as error:
                print(f"deploybot demo: {error}", file=sys.stderr, flush=True)
                status = 1
        else:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, DemoError):
                await task
            print("\ndeploybot demo: interrupted; stopping", file=out, flush=True)
            status = INTERRUPTED
    finally:
        await demo.close()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
    if demo.finished:
        demo.summary()
    return status


# -- command line ----------------------------------------------------------------------------


def main(args: argparse.Namespace, out: TextIO) -> int:
    """Entry point of ``deploybot demo``."""
    options = Options(
        server=args.server, port=args.port, keep=args.keep, step=args.seconds_per_step
    )
    with contextlib.suppress(AttributeError, ValueError):
        out.reconfigure(errors="replace")  # type: ignore[attr-defined]
    return asyncio.run(run(options, out))
