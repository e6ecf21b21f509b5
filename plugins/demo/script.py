"""The demo's script (``deploybot demo``): what the scripted people do, step by step.

:meth:`Script.play` takes the steps in order, each not before its time on the
:class:`~deploybot_plugins.demo.day.Timeline` (relative to the plan's start):
``!deploys`` and ``!uses`` while counting down; the ansible playbook starts on the bus
10 s early (firefighting opens: topic, API breaks, pages); dgilmore and pingou ``!ack``
their pages, tflink's is escalated; dgilmore and tflink report incidents with ``!broke``;
pingou takes the first and fixes it; the playbook completes with a failure on one host;
the window closes with a summary and the digest follows.

Each step waits for the bot's answer to the previous one, as the observer sees it
(:meth:`Script.until_bot`, which fails early if the bot process exits), so the order holds
on a slow machine or a paced server.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .day import ADMIN, BOT_NICK, FIREFIGHT, PEOPLE, PINGOU, PLAYBOOK, STEP_TIMEOUT, Timeline
from .errors import DemoError
from .people import IrcPerson, Line, Transcript, same
from .processes import BotProcess, Bus

__all__ = ["Script"]


@dataclass
class Script:
    """The day played by ``people`` against the bot, watched through ``observer``."""

    timeline: Timeline
    observer: IrcPerson
    people: dict[str, IrcPerson]
    bus: Bus
    bot: BotProcess
    transcript: Transcript

    async def play(self) -> list[str]:
        """The script, step by step; the lines for the demo's closing summary."""
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
            await self.until_bot(
                lambda m: (
                    m.command == "PART" and same(m.nick, BOT_NICK) and same(m.target, FIREFIGHT)
                ),
                "the bot leaving after the digest",
                self._index_of(visit),
                STEP_TIMEOUT / 2,
            )
        return [
            f"  the bot's closing summary: {closed.string}",
            f"  the digest: {digest.string}",
        ]

    def _mark(self) -> int:
        return self.observer.mark()

    def _index_of(self, match: re.Match[str]) -> int:
        """The observer's index of the line ``match`` was found in (see _bot_says)."""
        lines = self.observer.lines
        return next(i for i in range(len(lines) - 1, -1, -1) if lines[i].text is match.string)

    async def _at(self, moment: datetime) -> None:
        delay = (moment - datetime.now(UTC)).total_seconds()
        if delay > 0:
            await asyncio.sleep(delay)

    def _publish(self, kind: str, msg: dict[str, Any], what: str) -> None:
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
        self,
        channel: str,
        pattern: str,
        since: int,
        timeout: float = STEP_TIMEOUT,  # noqa: ASYNC109 (the deadline's failure says what was awaited)
    ) -> re.Match[str]:
        regex = re.compile(pattern)
        line = await self.until_bot(
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

    async def until_bot(
        self,
        test: Callable[[Line], bool],
        what: str,
        since: int,
        timeout: float,  # noqa: ASYNC109 (the deadline's failure says what was awaited)
    ) -> Line:
        """The observer's first line (from ``since``) passing ``test``; fails early if the
        bot process exits."""
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
