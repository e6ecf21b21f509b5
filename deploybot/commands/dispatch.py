"""From a typed line to the messages that answer it, with the two kinds of error, and
flood control per person.

Expected errors (:class:`~deploybot.errors.DeploybotError` and its usage/permission
subclasses) are shown as they are.  Anything else is a bug: it is logged with a
traceback under a short reference, and the user gets only that reference.

Flood control (:class:`FloodGuard`; Limnoria's ``supybot.abuse.flood.command``): more
than ``command_flood_limit`` commands within ``command_flood_window`` from one person —
their services account, or their ``nick!user@host`` when not logged in — and that person
gets one private notice, then their commands are ignored for ``command_flood_ignore``.
Reports are the exception (:data:`REPORT_COMMANDS`): a ``!broke`` is never dropped.  Over
the limit it is still recorded, and its reply waits with that person's other pending
report replies, to go out as one private line (``recorded incidents #12–#21 (pkgdb2)``)
when the transport calls :meth:`FloodGuard.take_pending`; when a report is what took the
person over the limit, that line is the notice too (one line, not two).  The clock is passed in
(``request.now``), so the bookkeeping is tested with a driven clock.

Commands anyone may use that make the bot post (:data:`POSTING`: ``!page`` pages people
and may escalate; ``!uses`` adds a consumer paged at the deploy's opening) are capped
too (:class:`PostLimits`, ``page_flood_*`` and ``uses_flood_*``): per person, and for
everyone together (throw-away nicks), within a window.  Over a cap the command is not run;
the person is told (for the cap of everyone, only the first refused in a window is told:
the rest are dropped) and the log says what was dropped.
"""

from __future__ import annotations

import logging
import secrets
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from typing import TYPE_CHECKING

from deploybot.casemapping import irc_fold
from deploybot.commands.base import (
    CHANNEL_LINE_LIMIT,
    NotAllowed,
    Registry,
    Reply,
    Request,
    UsageError,
)
from deploybot.commands.consumers import REMOVE
from deploybot.durations import format_duration, plural
from deploybot.errors import DeploybotError
from deploybot.store import NotLeaderError

if TYPE_CHECKING:
    from deploybot.config import Config
    from deploybot.core import Core

log = logging.getLogger(__name__)


#: Commands never dropped by flood control: a report is recorded whatever the rate.
REPORT_COMMANDS = frozenset({"broke"})
#: What a refused posting command did not do, by command.
POSTING = {"page": "not paged", "uses": "not registered"}
#: The flood bookkeeping forgets people idle this many times the window (memory bound).
_SWEEP_EVERY = 256


@dataclass(frozen=True)
class Outgoing:
    target: str
    text: str
    #: A NOTICE (flood control's warning) rather than a PRIVMSG.
    notice: bool = False


class Admission(Enum):
    """What flood control says of one command."""

    OK = "ok"
    #: This command took the person over the limit: tell them (once), ignore it.
    FLOODED = "flooded"
    #: The person is being ignored.
    IGNORED = "ignored"


@dataclass(frozen=True)
class FloodLimits:
    limit: int
    window: timedelta
    ignore: timedelta


@dataclass(frozen=True)
class PostLimits:
    """How many times a posting command may succeed within ``window``: ``per_person``
    for one person, ``total`` for everyone; ``keys`` name the two settings."""

    per_person: int
    total: int
    window: timedelta
    keys: tuple[str, str]


def _prune(times: deque[datetime], horizon: datetime) -> deque[datetime]:
    while times and times[0] <= horizon:
        times.popleft()
    return times


@dataclass
class _Pending:
    """A person's report replies held back while they are over the limit."""

    nick: str
    recorded: list[tuple[int, str]] = field(default_factory=list)
    #: The flood notice goes with these replies (a report took the person over the limit).
    warn: bool = False


class FloodGuard:
    """Per-person command counting; one per bot (see the module docstring).

    ``admit(who, now)`` counts a command of ``who`` (:func:`flood_key`) at ``now``;
    ``hold_report`` keeps an over-limit report's reply and ``take_pending`` returns the
    one line that answers all of a person's held reports.
    """

    def __init__(self, limits: FloodLimits, posts: Mapping[str, PostLimits] | None = None) -> None:
        self.limits = limits
        self.posts: Mapping[str, PostLimits] = posts or {}
        self._posted: dict[str, dict[str, deque[datetime]]] = {name: {} for name in self.posts}
        self._posted_total: dict[str, deque[datetime]] = {name: deque() for name in self.posts}
        self._closed_said: dict[str, datetime] = {}
        self._recent: dict[str, deque[datetime]] = {}
        self._ignored_until: dict[str, datetime] = {}
        self._pending: dict[str, _Pending] = {}
        self._calls = 0

    def admit(self, who: str, now: datetime) -> Admission:
        self._calls += 1
        if self._calls % _SWEEP_EVERY == 0:
            self._sweep(now)
        until = self._ignored_until.get(who)
        if until is not None:
            if now < until:
                return Admission.IGNORED
            del self._ignored_until[who]
            self._recent.pop(who, None)
        times = _prune(self._recent.setdefault(who, deque()), now - self.limits.window)
        times.append(now)
        if len(times) <= self.limits.limit:
            return Admission.OK
        times.clear()
        self._ignored_until[who] = now + self.limits.ignore
        log.warning(
            "flood: %s gave more than %d commands in %s; ignoring them for %s",
            who,
            self.limits.limit,
            format_duration(self.limits.window),
            format_duration(self.limits.ignore),
        )
        return Admission.FLOODED

    def post_refusal(self, name: str, who: str, now: datetime) -> str | None:
        """Why ``!name`` from ``who`` may not post now: a reply to give, ``""`` to drop it
        silently (the cap of everyone, said once already), None when it may."""
        limits = self.posts.get(name)
        if limits is None:
            return None
        horizon = now - limits.window
        mine = _prune(self._posted[name].get(who, deque()), horizon)
        total = _prune(self._posted_total[name], horizon)
        window = format_duration(limits.window)
        if len(mine) >= limits.per_person:
            return (
                f"{POSTING[name]}: you used !{name} {plural(limits.per_person, 'time')} within"
                f" {window}, the most for one person ({limits.keys[0]}); try again later"
            )
        if len(total) >= limits.total:
            reopens = total[0] + limits.window
            if self._closed_said.get(name, now) > now:
                return ""
            self._closed_said[name] = reopens
            wait = format_duration(timedelta(seconds=max(1, int((reopens - now).total_seconds()))))
            return (
                f"{POSTING[name]}: !{name} was used {plural(limits.total, 'time')} within"
                f" {window} by everyone, the most allowed ({limits.keys[1]}); again in {wait}"
            )
        return None

    def count_post(self, name: str, who: str, now: datetime) -> None:
        """``!name`` from ``who`` posted at ``now``."""
        if name in self.posts:
            self._posted[name].setdefault(who, deque()).append(now)
            self._posted_total[name].append(now)

    def ignored(self, who: str, now: datetime) -> bool:
        """Whether ``who``'s commands are being ignored at ``now``."""
        until = self._ignored_until.get(who)
        return until is not None and now < until

    def notice(self) -> str:
        """The one notice a person gets when they go over the limit."""
        limits = self.limits
        return (
            f"you gave more than {plural(limits.limit, 'command')} in"
            f" {format_duration(limits.window)}: I ignore your commands for"
            f" {format_duration(limits.ignore)} (a !broke is still recorded)"
        )

    def hold_report(
        self, who: str, nick: str, recorded: tuple[tuple[int, str], ...], *, warn: bool = False
    ) -> None:
        """Keep the reply to an over-limit report until :meth:`take_pending`; ``warn``:
        the flood notice goes with it (this report took the person over the limit)."""
        pending = self._pending.setdefault(who, _Pending(nick))
        pending.nick = nick
        pending.recorded.extend(recorded)
        pending.warn = pending.warn or warn

    def has_pending(self, who: str) -> bool:
        return who in self._pending

    def take_pending(self, who: str) -> Outgoing | None:
        """One private line answering every report of ``who`` held so far, or None; a
        NOTICE carrying the flood notice too when a report took them over the limit."""
        pending = self._pending.pop(who, None)
        if pending is None or not pending.recorded:
            return None
        line = recorded_line(pending.recorded)
        if pending.warn:
            return Outgoing(pending.nick, f"{line} — {self.notice()}", notice=True)
        return Outgoing(pending.nick, line)

    def _sweep(self, now: datetime) -> None:
        horizon = now - self.limits.window
        for who in [w for w, times in self._recent.items() if not times or times[-1] <= horizon]:
            del self._recent[who]
        for who in [w for w, until in self._ignored_until.items() if until <= now]:
            del self._ignored_until[who]
        for name, limits in self.posts.items():
            people = self._posted[name]
            for who in [w for w, times in people.items() if not _prune(times, now - limits.window)]:
                del people[who]


def _posts(name: str, args: str) -> bool:
    """Whether ``!name args`` is a posting command (``!uses --remove`` is not)."""
    return name in POSTING and not (name == "uses" and args.split()[:1] == [REMOVE])


def flood_guard(config: Config) -> FloodGuard:
    """The flood control ``config`` asks for (``command_flood_*``, ``page_flood_*``,
    ``uses_flood_*``)."""
    return FloodGuard(
        FloodLimits(
            config.command_flood_limit, config.command_flood_window, config.command_flood_ignore
        ),
        {
            "page": PostLimits(
                config.page_flood_limit,
                config.page_flood_total,
                config.page_flood_window,
                ("page_flood_limit", "page_flood_total"),
            ),
            "uses": PostLimits(
                config.uses_flood_limit,
                config.uses_flood_total,
                config.uses_flood_window,
                ("uses_flood_limit", "uses_flood_total"),
            ),
        },
    )


def flood_key(request: Request) -> str:
    """Who a command counts against: the network address, else the services account,
    else the full mask."""
    if request.address is not None:
        return str(request.address)
    if request.account:
        return "account:" + irc_fold(request.account, request.casemapping)
    return "mask:" + irc_fold(request.mask, request.casemapping)


def _numbers_text(numbers: list[int]) -> str:
    """``#12–#14, #17`` for 12, 13, 14, 17 (runs of consecutive numbers as ranges)."""
    runs: list[list[int]] = []
    for number in numbers:
        if runs and number == runs[-1][-1] + 1:
            runs[-1].append(number)
        else:
            runs.append([number])
    return ", ".join(f"#{run[0]}" if len(run) == 1 else f"#{run[0]}–#{run[-1]}" for run in runs)


def recorded_line(recorded: list[tuple[int, str]]) -> str:
    """One acknowledgement of several reports, by service in the order first reported.

    >>> recorded_line([(12, "pkgdb2"), (13, "pkgdb2"), (15, "fas"), (14, "pkgdb2")])
    'recorded incidents #12–#14 (pkgdb2), #15 (fas)'
    >>> recorded_line([(7, "pkgdb2")])
    'recorded incident #7 (pkgdb2)'
    """
    by_service: dict[str, list[int]] = {}
    for number, service in recorded:
        by_service.setdefault(service, []).append(number)
    parts = [
        f"{_numbers_text(sorted(set(numbers)))} ({service})"
        for service, numbers in by_service.items()
    ]
    word = "incident" if len(recorded) == 1 else "incidents"
    return f"recorded {word} {', '.join(parts)}"


async def dispatch(
    core: Core, registry: Registry, request: Request, flood: FloodGuard | None = None
) -> list[Outgoing]:
    """Run the command in ``request`` and return what to send (possibly nothing).

    With ``flood``, the command counts against its sender first (module docstring)."""
    command = registry.get(request.name)
    if command is None and request.channel is not None:
        return []  # in a channel, another bot may own that command: not ours to count
    admission = Admission.OK
    who = flood_key(request)
    if flood is not None:
        admission = flood.admit(who, request.now)
    warning: list[Outgoing] = []
    if flood is not None and admission is Admission.FLOODED:
        warning = [Outgoing(request.nick, flood.notice(), notice=True)]
    over = admission is not Admission.OK
    if command is None:
        if over:
            return warning
        return [Outgoing(request.nick, f"unknown command !{request.name}; try !help")]
    if over and command.name not in REPORT_COMMANDS:
        log.info("flood: ignoring !%s from %s", command.name, request.mask)
        return warning
    posting = flood is not None and _posts(command.name, request.args)
    if flood is not None and posting:
        refusal = flood.post_refusal(command.name, who, request.now)
        if refusal is not None:
            log.warning(
                "dropped !%s %s from %s: %s",
                command.name,
                request.args,
                request.mask,
                refusal or "everyone's cap reached (said already)",
            )
            return route(request, Reply.say(refusal)) if refusal else []
    try:
        if command.admin and not core.is_admin(*request.is_admin_for):
            raise NotAllowed(
                f"not allowed: !{command.name} is for admins "
                "(a services account, host mask or network address named in the bot's config)"
            )
        reply = await command.handler(core, request)
        if flood is not None and posting:
            flood.count_post(command.name, who, request.now)
    except UsageError as exc:
        reply = Reply.say(f"{exc} — usage: {command.usage}")
    except NotLeaderError as exc:  # an old active: the new one acts on it and answers
        log.warning("!%s from %s not acted on: %s", command.name, request.mask, exc)
        return []
    except DeploybotError as exc:
        # Only the LFs the message was written with: splitlines() would also break at
        # \x1c, \x85 or U+2028 in echoed user text, which would then start a line.
        reply = Reply.say(*str(exc).split("\n"))
    except Exception:
        ref = secrets.token_hex(3)
        log.exception("internal error (ref %s) in %r from %s", ref, request.name, request.mask)
        reply = Reply.say(f"internal error (ref {ref}); the admins can find it in the log")
    if over and flood is not None:
        if reply.recorded:  # the report is recorded; its reply (and the notice) wait
            flood.hold_report(who, request.nick, reply.recorded, warn=bool(warning))
            return []
        log.info("flood: not answering !%s from %s", command.name, request.mask)
        return warning
    return route(request, reply)


def route(request: Request, reply: Reply) -> list[Outgoing]:
    """Where each line goes: long or private output goes to the requester, and the channel
    is told so — with the reply's summary when it has one (SPEC §3)."""
    lines = [line for line in reply.lines if line]
    if not lines:
        return []
    private = reply.private or request.channel is None or len(lines) > CHANNEL_LINE_LIMIT
    if not private:
        return [Outgoing(request.reply_target, line) for line in lines]
    out = [Outgoing(request.nick, line) for line in lines]
    if request.channel is not None:
        sent = f"sent you {plural(len(lines), 'line')}"
        said = f"{reply.summary} ({sent})" if reply.summary else sent
        out.insert(0, Outgoing(request.channel, f"{request.nick}: {said}"))
    return out
