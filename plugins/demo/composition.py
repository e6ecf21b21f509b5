"""``deploybot demo`` (SPEC §8): a whole deploy day on this machine, in about 2½ minutes.

This module plays the day (:class:`Demo`) and is the command's entry point (:func:`main`),
re-exported by the package.
What it puts together, all on 127.0.0.1 and in a temporary directory:

* an IRC server — the built-in demo server (:mod:`deploybot_plugins.demo.ircd.server`) on a free
  port (``--port`` to choose one), or an existing one with ``--server HOST:PORT``;
* a fedmsg publisher (:class:`~deploybot_plugins.demo.processes.Bus`) on a free port,
  named in the bot's ``fedmsg_endpoints``;
* the bot (:class:`~deploybot_plugins.demo.processes.BotProcess`): ``deploybot run
  bot.ini`` as a subprocess, with a ``bot.ini`` (its web server on a free port, named in
  the banner), a plan ``plans/pkgdb2-2.0.yaml`` written with
  :func:`deploybot.plans.files.dump_plan` and its SQLite file — the day's facts, schedule,
  plan and config are in :mod:`deploybot_plugins.demo.day`;
* three scripted people (``pingou``, ``dgilmore``, ``tflink``), raw asyncio IRC clients,
  and an observer (``transcript``) whose view of the channels, timestamped, is the
  demo's output; the scripted people's private messages (their pages) are shown too
  (:mod:`deploybot_plugins.demo.people`).

Once the bot has joined and subscribed, the demo asks its web server for
``/api/v1/deployments`` and shows the answer, then plays the script
(:class:`~deploybot_plugins.demo.script.Script`: commands, bus messages, acks, incidents,
each step waiting for the bot's answer to the previous one) until the window closes and
the digest comes.  The hidden ``--seconds-per-step`` (default 1) scales every interval,
for the tests.

Exit status: 0 after the digest; 1 with a one-line error when something could not start
(a port in use, an unreachable ``--server``, the bot exiting) or the bot did not do its
part in time; 130 on Ctrl-C (SIGINT/SIGTERM), after the same clean stop (the bot is
stopped with SIGTERM, as an operator would).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TextIO
from zoneinfo import ZoneInfo

import aiohttp

from deploybot.durations import format_duration
from deploybot.plans.files import dump_plan

from .day import (
    ADMIN,
    BOT_NICK,
    FIREFIGHT,
    HOST,
    OBSERVER,
    PEOPLE,
    START_TIMEOUT,
    Timeline,
    bot_ini,
    demo_plan,
    demo_timezone,
)
from .errors import DemoError
from .ircd.server import DemoIrcServer
from .ircd.wire import irc_lower
from .people import IrcPerson, Transcript, same
from .processes import BotProcess, Bus, free_tcp_port
from .script import Script

INTERRUPTED = 130

__all__ = ["Demo", "Options", "main", "run"]


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
        script = Script(timeline, observer, self.people, self.bus, self.bot, self.transcript)
        since = observer.mark()
        pid = self.bot.start()
        self.transcript.note(f"  the bot: deploybot run bot.ini (pid {pid}), log in bot.log\n")
        await script.until_bot(
            lambda m: m.command == "JOIN" and same(m.nick, BOT_NICK) and same(m.target, ADMIN),
            f"the bot joining {ADMIN}",
            since,
            START_TIMEOUT,
        )
        await self.bus.wait_subscribed(START_TIMEOUT, self.bot.check_alive)
        await self._check_web()
        self.summary_lines = await script.play()
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
                f"(cd there and try: deploybot digest --config bot.ini, or the post-mortem "
                f"draft: deploybot postmortem pkgdb2-2.0 --config bot.ini)"
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
    if isinstance(out, io.TextIOWrapper):  # sys.stdout: never fail on a character
        with contextlib.suppress(ValueError):
            out.reconfigure(errors="replace")
    return asyncio.run(run(options, out))
