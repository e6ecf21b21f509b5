"""deploybot's IRC connection: irc3's IrcBot, wrapped where irc3 is rough.

:class:`DeployIrcBot` is an :class:`irc3.IrcBot` that

* runs on the caller's loop: ``await start()`` / ``await stop(reason)``, never ``run()``;
* leaves logging alone (irc3's ``dictConfig`` is made a no-op, see ``logging_config``);
* negotiates CAP + SASL with :mod:`deploybot_plugins.irc.capabilities`: credentials refused
  before the process ever logged in are fatal (``start()`` raises :class:`IrcLoginError`,
  ``failed`` completes, no reconnect loop); any other failed login (services away, no SASL
  offered, services not answering within ``connect_timeout``) is transient
  (:meth:`~DeployIrcBot.login_failed`: a WARNING, then a reconnect with backoff);
* knows why it is not connected (:meth:`~DeployIrcBot.status`, for ``/healthz`` and
  ``/metrics``) and, back after an outage, says in :attr:`~DeployIrcBot.report_channel`
  what happened and for how long;
* tracks accounts with :mod:`deploybot_plugins.irc.accounts` (``account_of(nick)``);
* sends *every* line through one path: cleaned and cut to 512 bytes with
  :mod:`deploybot.lines`, paced by a :class:`~deploybot_plugins.irc.throttle.TokenBucket`, and
  held in a queue that survives reconnects (``outbox`` implements
  :class:`deploybot.outbox.Outbox`);
* keeps every stored post (:class:`~deploybot.deployday.posts.StoredOutbox`) until the
  server has confirmed it — its echo (IRCv3 ``echo-message``), or the PONG of a PING sent
  after it (a barrier: the server answers in order, so everything before it was
  processed) — and only then removes it from the store (``confirm_posts``); what a lost
  connection left unconfirmed goes out again after the reconnect, in its order, and a
  message queued more than ``late_after`` s ago says ``(late: queued 14:02 UTC)``;
  at :meth:`~DeployIrcBot.stop` it flushes stored posts for at most ``flush_timeout`` s;
* treats a topic as wanted state: a TOPIC equal to the channel's current topic is not
  sent again, and after a rejoin the last topic it set is set again if it differs;
* rejoins every channel it should be in after a reconnect (irc3's autojoins is not used);
* reconnects with exponential backoff and jitter, and notices a hung server (PING after
  ``ping_interval`` s of silence, reconnect after ``hang_timeout`` s without data).

Own keys in ``[bot]`` (all optional; irc3's keys keep their meaning): ``sasl_username``
(default: nick), ``sasl_password_file`` / ``sasl_password_env`` / ``sasl_password`` (see
:func:`resolve_sasl_password`), ``throttle_burst`` (4), ``throttle_rate`` (1.0 line/s),
``ping_interval`` (30 s), ``hang_timeout`` (90 s), ``reconnect_delay`` (1 s),
``reconnect_max_delay`` (60 s), ``reconnect_reset_after`` (60 s), ``reply_ttl`` (60 s),
``join_timeout`` (15 s), ``quit_timeout`` (3 s), ``connect_timeout`` (30 s), ``late_after``
(120 s), ``flush_timeout`` (3 s).

Checked and harmless: ``irc3/compat.py`` replaces ``asyncio.sleep`` and ``asyncio.wait``
process-wide with wrappers that only drop a ``loop=`` argument (removed in Python 3.10);
behaviour and timing are unchanged.  irc3's Core plugin keeps answering PINGs, tracking the
nick and firing ``server_ready``; its own ping timeout is disabled (``timeout`` one day,
``reconnect`` a no-op) because it only counts PONGs and would fight the watchdog here.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import logging
import socket
from collections import deque
from collections.abc import Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, TypeVar

import irc3
from irc3.plugins.core import Core

from deploybot.config import BOT_NUMBERS, parse_flag, positive_number, tcp_port
from deploybot.health import IrcStatus
from deploybot.lines import MAX_LINE_BYTES, fit, message_lines, one_line
from deploybot.store import StoredPost
from deploybot.texts import irc_back_line

from .accounts import irc_lower as _lower
from .capabilities import SECRET_KEYS, BotConfigError, IrcLoginError, resolve_sasl_password
from .outqueue import OutItem, OutputQueue, is_channel
from .throttle import TokenBucket, backoff_delay, command_cost

__all__ = ["BotConfigError", "DeployIrcBot", "IrcLoginError", "IrcOutbox", "resolve_sasl_password"]
log = logging.getLogger(__name__)
_T = TypeVar("_T")

# Lines that go out at once (registration, liveness, leaving); they still use tokens.
IMMEDIATE = frozenset({"CAP", "AUTHENTICATE", "PASS", "NICK", "USER", "PING", "PONG", "QUIT"})
# Lines that may go out before the channels are rejoined (paced, ahead of the queue).
PRIORITY = frozenset({"JOIN", "WHO"})
JOIN_ERRORS = "403|405|471|473|474|475|476|477|489"
_REFUSED = {"404": "message", "442": "part", "482": "topic or mode change"}
#: What people can do about a refusal, said with it in the report channel.
_REMEDY = {
    "404": "let me speak there (voice me, or -m/-n)",
    "482": "make me a channel operator there, or -t, so I can set the topic",
}
#: A refusal for one channel and numeric is reported at most this often (seconds).
REFUSAL_REPORT_INTERVAL = 600.0
#: A stored line not confirmed by its echo this long after it was sent gets a PING
#: barrier (seconds); while more output waits and the server does not echo, the barrier
#: waits until :data:`BARRIER_EVERY` stored lines are unconfirmed (a PING costs a line).
BARRIER_DELAY = 1.0
#: ``socket.TCP_QUICKACK`` where the platform has it (Linux), else None.
QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)
BARRIER_EVERY = 8
BARRIER_PREFIX = "deploybot-confirm-"
#: How often output held by ``may_send`` looks again, in seconds.
MAY_SEND_POLL = 0.05
MESSAGES = ("PRIVMSG", "NOTICE")
OWN_PLUGINS = (
    "irc3.plugins.core",
    "deploybot_plugins.irc.capabilities",
    "deploybot_plugins.irc.accounts",
)
REPLACED_PLUGINS = ("irc3.plugins.autojoins", "irc3.plugins.sasl")
MAX_BUFFER = 1 << 16


def _checked(key: str, parse: Callable[[Any], _T], value: Any) -> _T:
    """``parse(value)`` (a :mod:`deploybot.config` check); its complaint as a BotConfigError."""
    try:
        return parse(value)
    except ValueError as error:
        raise BotConfigError(key, str(error)) from None


def _names(value: Any) -> list[str]:
    if isinstance(value, str):
        return value.replace(",", " ").split()
    return [str(v) for v in value or ()]


def _loggable(line: str) -> str:
    """``line`` as the debug log shows it: the server password and SASL payloads masked."""
    command, _, rest = line.partition(" ")
    if command.upper() == "PASS":
        return "PASS ****"
    if command.upper() == "AUTHENTICATE" and rest not in ("PLAIN", "+", "*"):
        return "AUTHENTICATE ****"
    return line


@dataclass
class _Outage:
    """A time without a registered connection: since when, what started it, the latest
    reason, and how many attempts failed since."""

    began: float  # loop time
    began_at: datetime
    first: str
    last: str
    #: A registered connection was lost (not the first connection of the process).
    lost: bool = False
    failures: int = 0

    def failed(self, why: str) -> None:
        self.last = why
        self.failures += 1


class _Connection(irc3.IrcConnection):
    """One TCP connection; the only place bytes reach the socket.

    Unlike irc3's, it decodes UTF-8 incrementally (a character split across two reads
    is not lost), writes one cleaned line at a time, and leaves reconnecting to the bot.
    """

    def __init__(self, bot: DeployIrcBot) -> None:
        self.factory = bot
        self.encoding = bot.encoding
        self.closed = True
        self.lost_reason = ""
        #: We left because the login failed (transiently): said already, at WARNING.
        self.login_failed = False
        self._decoder = codecs.getincrementaldecoder(bot.encoding)(errors="replace")
        self._buffer = ""
        self._socket: Any = None

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._socket = transport.get_extra_info("socket")
        self.factory._on_connection_made(self)

    def data_received(self, data: bytes) -> None:
        self.factory._last_rx = self.factory.loop.time()
        self._ack_now()
        *lines, self._buffer = (self._buffer + self._decoder.decode(data)).split("\n")
        if len(self._buffer) > MAX_BUFFER:
            log.warning("dropping %d characters received without a line end", len(self._buffer))
            self._buffer = ""
        for line in lines:
            line = line.rstrip("\r")
            if line:
                log.debug("<< %s", line)
                try:
                    self.factory.dispatch(line)
                except Exception:
                    log.exception("error while dispatching %r", line)

    def _ack_now(self) -> None:
        """Acknowledge what was just read at once (Linux ``TCP_QUICKACK``, which the
        kernel clears again by itself, hence at every read).  With ``echo-message`` the
        server's last segment is often our own echo, which we answer with no data: its
        ACK was delayed 40 ms, and the server's Nagle held the next command to us until
        then (a 44 ms round trip in bench/commands.py instead of 0.7 ms)."""
        if QUICKACK is not None and self._socket is not None:
            with contextlib.suppress(OSError):
                self._socket.setsockopt(socket.IPPROTO_TCP, QUICKACK, 1)

    def write(self, data: str) -> str:  # type: ignore[override]
        """Send ``data`` as one line (cleaned, at most 510 bytes + CR LF); return what was sent."""
        line = one_line(data)
        if self.closed or self.transport.is_closing():
            return line
        if len(line.encode(self.encoding, "replace")) > MAX_LINE_BYTES:
            log.warning("cutting an over-long line: %.80s…", line)
            line = fit(line, MAX_LINE_BYTES)[0]
        self.transport.write(line.encode(self.encoding, "replace") + b"\r\n")
        return line

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.factory._on_connection_lost(self, exc)


def _message_key(line: str) -> tuple[str, str, str]:
    """``(COMMAND, target lower-cased, text)`` of a line we send, as its echo shows it."""
    command, _, rest = line.partition(" ")
    target, _, text = rest.partition(" ")
    return (command.upper(), _lower(target), text.removeprefix(":"))


def _asker(target: str, person: str | None) -> str:
    return person if person is not None else "" if is_channel(target) else target


class IrcOutbox:
    """:class:`deploybot.outbox.Outbox` for a :class:`DeployIrcBot`."""

    def __init__(self, bot: DeployIrcBot) -> None:
        self._bot = bot

    def post(self, target: str, text: str) -> None:
        self._bot._enqueue("post", "PRIVMSG", target, text)

    def reply(self, target: str, text: str) -> None:
        self.answer(target, text, None)

    def notice(self, target: str, text: str) -> None:
        self._bot._enqueue("reply", "NOTICE", target, text, _asker(target, None))

    def answer(self, target: str, text: str, person: str | None) -> None:
        """A reply to ``person``'s command (default: ``target`` when it is a nick): it is
        joined with that person's other waiting replies, never with anyone else's."""
        self._bot._enqueue("reply", "PRIVMSG", target, text, _asker(target, person))

    def join(self, channel: str) -> None:
        self.keep_joined(channel, True)
        self._bot._enqueue("post", "JOIN", self._bot._channel_name(channel), "")

    def part(self, channel: str, reason: str = "") -> None:
        self.keep_joined(channel, False)
        self._bot._enqueue("post", "PART", self._bot._channel_name(channel), reason)

    def set_topic(self, channel: str, topic: str) -> None:
        self._bot._enqueue("post", "TOPIC", self._bot._channel_name(channel), topic)

    # -- deploybot.deployday.posts.PostTransport -------------------------------------------

    def keep_joined(self, channel: str, joined: bool) -> None:
        """Be in ``channel`` (rejoined after every reconnect), or no longer."""
        channel = self._bot._channel_name(channel)
        if joined:
            self._bot._channels[_lower(channel)] = channel
        else:
            self._bot._channels.pop(_lower(channel), None)
            self._bot._topic_wanted.pop(_lower(channel), None)

    def send_post(self, post: StoredPost) -> None:
        """Queue a post kept in the store; it is confirmed there (``bot.confirm_posts``)
        once the server has confirmed it."""
        target = post.target if post.command == "PRIVMSG" else self._bot._channel_name(post.target)
        self._bot._enqueue(
            "post", post.command, target, post.text, rows=(post.id,), queued_at=post.queued_at
        )


class DeployIrcBot(irc3.IrcBot):
    """An irc3 bot with deploybot's connection handling; see the module docstring."""

    # irc3's IrcObject.__init__ calls logging.config.dictConfig(logging_config): its
    # default closes the application's handlers, adds stderr handlers to "irc3" and
    # forces the "asyncio" logger to ERROR (hiding "Task exception was never retrieved").
    # An empty *incremental* config makes that call a no-op: loggers keep their levels
    # and handlers, and irc3's loggers propagate to whatever the application set up.
    logging_config: ClassVar[dict[str, Any]] = {"version": 1, "incremental": True}

    def __init__(
        self,
        config: Mapping[str, Any] | None = None,
        *,
        loop: asyncio.AbstractEventLoop,
        sasl_password: str | None = None,
        **overrides: Any,
    ) -> None:
        cfg: dict[str, Any] = dict(config or {}, **overrides)
        for key in SECRET_KEYS:
            cfg.pop(key, None)  # the secret never sits in irc3's config
        settings = {
            key: _checked(key, positive_number, cfg.pop(key, default))
            for key, default in BOT_NUMBERS.items()
        }
        self.settings = settings
        self.sasl_password = sasl_password
        nick = str(cfg.get("nick") or "deploybot")
        self.sasl_username = str(cfg.pop("sasl_username", "") or nick)
        self._channels: dict[str, str] = {}
        for name in _names(cfg.pop("autojoins", [])):
            try:
                channel = self._channel_name(name)
            except ValueError as error:
                raise BotConfigError("autojoins", str(error)) from None
            self._channels[_lower(channel)] = channel
        includes = [i for i in _names(cfg.pop("includes", [])) if i not in OWN_PLUGINS]
        for replaced in REPLACED_PLUGINS:
            if replaced in includes:
                log.info("not loading %s: deploybot_plugins does its job", replaced)
                includes.remove(replaced)
        cfg.update(
            loop=loop,
            nick=nick,
            username=str(cfg.get("username") or "deploybot"),
            realname=str(cfg.get("realname") or "deploybot (deploy planning)"),
            port=_checked("port", tcp_port, cfg.get("port", 6667)),
            ssl=_checked("ssl", parse_flag, cfg.get("ssl", False)),
            asynchronous=False,  # no irc3 send queue: ours replaces it
            timeout=86400,  # irc3 Core's ping timeout: the watchdog below does this job
            includes=[*OWN_PLUGINS, *includes],
        )
        super().__init__(**cfg)
        self._wanted_nick = nick
        self.outbox = IrcOutbox(self)
        self.failed: asyncio.Future[None] = loop.create_future()
        self.failed.add_done_callback(lambda f: f.cancelled() or f.exception())
        self._registered_once: asyncio.Future[None] = loop.create_future()
        self._bucket = TokenBucket(
            settings["throttle_burst"], settings["throttle_rate"], loop.time()
        )
        self._queue = OutputQueue(settings["reply_ttl"], self._discarded)
        #: Lines of the item being sent: (line, kind, created, rows confirmed by it,
        #: whether the item is stored).
        self._current: deque[tuple[str, str, float, tuple[int, ...], bool]] = deque()
        #: Where stored posts are confirmed (the store's ``confirm_posts``; set by the
        #: application); None: nothing is stored.
        self.confirm_posts: Callable[[Iterable[int]], object] | None = None
        #: Rows confirmed by the server but not yet removed from the store (it failed).
        self._to_confirm: set[int] = set()
        #: Stored items whose lines are (being) sent and not confirmed yet: queued again,
        #: in order, when the connection is lost.
        self._inflight: list[OutItem] = []
        #: Lines sent from the queue on this connection and not confirmed yet:
        #: (number, what its echo looks like, stored rows it confirms, loop time sent).
        self._unconfirmed: deque[tuple[int, tuple[str, str, str], tuple[int, ...], float]] = deque()
        self._sent_count = 0
        self._barrier_sent = 0  # the number of the last line a PING barrier covers
        #: The last topic set (or found already set) per channel (lower-cased), re-set
        #: after a rejoin when the channel's topic differs; the channel's current topic,
        #: as the server last said (absent: not known since our last JOIN).
        self._topic_wanted: dict[str, tuple[str, str]] = {}
        self._topic_now: dict[str, str] = {}
        self._priority: deque[str] = deque()
        self._wake = asyncio.Event()
        self._disconnected = asyncio.Event()
        self._disconnected.set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._handles: dict[str, asyncio.TimerHandle] = {}
        self._named: dict[str, asyncio.Task[Any]] = {}
        self._joined: set[str] = set()
        self._pending_joins: set[str] = set()
        self._registered = self._ready = self._started = self._stopping = False
        self._attempt = 0
        self._connected_at = self._last_rx = 0.0
        self.protocol: _Connection | None = None
        #: False holds every queued line (not PING/PONG/QUIT): the active instance's lease
        #: may have run out (SIGSTOP, a hung VM) until it is renewed (plugins.application).
        self.may_send: Callable[[], bool] = lambda: True
        self._accounts = self.get_plugin("deploybot_plugins.irc.accounts.Accounts")
        #: Where the server's refusals (a join, a topic, a message) are also told, so that
        #: people see them, not only the log: the admin channel (set by the application).
        self.report_channel: str | None = None
        self._reported: dict[tuple[str, str], float] = {}
        self._outage: _Outage | None = None
        #: Transient login failures since the start (``/metrics``).
        self.login_failures = 0
        core = self.get_plugin(Core)
        core.reconnect = lambda: log.debug("irc3 Core ping timeout ignored (watchdog in use)")
        self._attach(r"^(@\S+ )?:\S+ 001 (?P<me>\S+)", self._on_welcome)
        self._attach(r"^(@\S+ )?:(?P<mask>\S+) JOIN :?(?P<channel>[^\s,]+)", self._on_join)
        self._attach(r"^(@\S+ )?:(?P<mask>\S+) PART (?P<channel>\S+)", self._on_part)
        self._attach(
            r"^(@\S+ )?:\S+ KICK (?P<channel>\S+) (?P<target>\S+)( :(?P<data>.*))?", self._on_kick
        )
        self._attach(
            r"^(@\S+ )?:\S+ (?P<code>" + JOIN_ERRORS + r") \S+ (?P<channel>\S+) :?(?P<data>.*)",
            self._on_join_error,
        )
        self._attach(r"^(@\S+ )?ERROR :?(?P<data>.*)", self._on_error)
        self._attach(
            r"^(@\S+ )?:\S+ (?P<code>404|442|482) \S+ (?P<channel>\S+) :?(?P<data>.*)",
            self._on_refused,
        )
        self._attach(
            r"^(@\S+ )?:(?P<mask>\S+) (?P<command>PRIVMSG|NOTICE|TOPIC) (?P<target>\S+)"
            r" :?(?P<data>.*)",
            self._on_message,
        )
        self._attach(r"^(@\S+ )?:\S+ PONG \S+ :?(?P<data>\S+)", self._on_pong)
        self._attach(r"^(@\S+ )?:\S+ 332 \S+ (?P<channel>\S+) :?(?P<data>.*)", self._on_topic_is)
        self._attach(r"^(@\S+ )?:\S+ 331 \S+ (?P<channel>\S+)", self._on_topic_is)
        self._attach(r"^(@\S+ )?:\S+ 366 \S+ (?P<channel>\S+)", self._on_names_end)

    # --- public API ---------------------------------------------------------------------
    @property
    def channels(self) -> list[str]:
        """The channels the bot should be in (rejoined after every reconnect)."""
        return list(self._channels.values())

    @property
    def ready(self) -> bool:
        """True while registered and back in its channels (queued posts flow)."""
        return self._ready

    def account_of(self, nick: str) -> str | None:
        """The services account ``nick`` is logged in to, or None (see accounts plugin)."""
        result: str | None = self._accounts.account_of(nick)
        return result

    @property
    def casemapping(self) -> str:
        """How the server compares nicks and accounts (its ISUPPORT CASEMAPPING)."""
        result: str = self._accounts.casemapping
        return result

    def status(self) -> IrcStatus:
        """Whether the bot is registered on the server, and if not, why (``/healthz``)."""
        outage = self._outage
        if self._registered or outage is None:
            return IrcStatus(self._registered, None, 0.0, self.login_failures)
        return IrcStatus(False, outage.last, self.loop.time() - outage.began, self.login_failures)

    def queued(self) -> int:
        """Lines and items waiting to be sent."""
        return len(self._queue) + len(self._current) + len(self._priority)

    async def start(self) -> None:
        """Connect, and return once the server has registered the bot.

        Connection failures are retried with backoff (and logged); a refused login raises
        :class:`IrcLoginError` after cleaning up (no reconnect).  Completes ``failed`` too.
        """
        if self._started:
            raise RuntimeError("DeployIrcBot.start() called twice")
        self._started = True
        where = f"{self.config.host}:{self.config.port}"
        self._outage = _Outage(
            self.loop.time(), datetime.now(UTC), "starting", f"connecting to {where}"
        )
        self._spawn(self._send_loop(), "irc-sender")
        self._connect_later(0)
        await asyncio.wait(
            {self._registered_once, self.failed}, return_when=asyncio.FIRST_COMPLETED
        )
        if self.failed.done() and not self.failed.cancelled():
            error = self.failed.exception()
            await self.stop("login failed")
            assert error is not None
            raise error

    async def stop(self, reason: str = "shutting down") -> None:
        """QUIT, wait up to ``quit_timeout`` s for the server to close, then release everything."""
        if self._stopping and not self._tasks and not self._handles:
            return
        protocol = self.protocol
        if not self._stopping and protocol is not None and not protocol.closed:
            await self._flush(self.settings["flush_timeout"])
        self._stopping = True
        self._cancel_handle("reconnect")
        protocol = self.protocol
        if protocol is not None and not protocol.closed:
            if not self.failed.done():  # fatal() has sent its QUIT already
                self._write_now(f"QUIT :{reason}")
            try:
                await asyncio.wait_for(self._disconnected.wait(), self.settings["quit_timeout"])
            except TimeoutError:
                log.warning("the IRC server did not close the connection; closing it")
                protocol.transport.abort()
                await self._disconnected.wait()
        for name in list(self._handles):
            self._cancel_handle(name)
        core = self.get_plugin(Core)
        for handle in (core.reconn_handle, core.ping_handle, core.nick_handle):
            if handle is not None:
                handle.cancel()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if not self.failed.done():
            self.failed.cancel()
        if self.queued():
            log.warning("IRC: %d queued outputs not delivered at stop", self.queued())
        unsent = len(self._inflight) + sum(1 for item in self._queue if item.rows)
        if unsent:
            log.info("IRC: %d stored posts not confirmed at stop: sent at the next start", unsent)

    def halt(self) -> None:
        """Stop sending now (this instance lost the leadership): the connection is dropped
        without a flush or QUIT and not reopened; :meth:`stop` releases the rest."""
        self._stopping = True
        self._cancel_handle("reconnect")
        protocol = self.protocol
        if protocol is not None and not protocol.closed:
            protocol.transport.abort()

    def fatal(self, message: str) -> None:
        """Give up for good: log ``message``, leave the server, complete ``failed``."""
        if self.failed.done():
            return
        log.error("%s", message)
        self.failed.set_exception(IrcLoginError(message))
        self._write_now("CAP END")
        self._write_now("QUIT :login failed")
        protocol = self.protocol
        if protocol is not None:
            self._later("fatal-close", self.settings["quit_timeout"], protocol.transport.abort)

    def login_failed(self, message: str) -> None:
        """A login that may work later (services away, no SASL offered): log a WARNING,
        leave this connection and reconnect with the usual backoff.  Never fatal."""
        protocol = self.protocol
        if self.failed.done() or self._stopping or protocol is None or protocol.login_failed:
            return
        self.login_failures += 1
        protocol.login_failed = True
        protocol.lost_reason = message
        log.warning("IRC login failed (will reconnect): %s", message)
        self._cancel_handle("register-timeout")
        self._write_now("QUIT :login failed; retrying later")
        self._later("fatal-close", self.settings["quit_timeout"], protocol.transport.abort)

    def _registration_timed_out(self) -> None:
        caps = self.get_plugin("deploybot_plugins.irc.capabilities.Capabilities")
        seconds = self.settings["connect_timeout"]
        if caps.authenticating:
            self.login_failed(
                f"SASL login as {self.sasl_username} failed: the services did not answer"
                f" within {seconds:.0f} s"
            )
        else:
            self.login_failed(f"the server did not register the bot within {seconds:.0f} s")

    # --- irc3 API, rerouted through the single output path -------------------------------
    def run(self, forever: bool = True) -> None:
        raise RuntimeError("use 'await bot.start()' (run() installs its own SIGINT handler)")

    def create_connection(self) -> asyncio.AbstractEventLoop:
        self._connect_later(0)
        return self.loop

    def send(self, data: str) -> None:
        """Send a raw protocol line (one line: CR/LF inside it are blanked, never split)."""
        line = one_line(data)
        command = line.split(" ", 1)[0].upper()
        if not line:
            return
        if command in IMMEDIATE:
            self._write_now(line)
        elif command in PRIORITY:
            self._priority.append(line)
            self._wake.set()
        else:
            self._enqueue("reply", "", "", line)

    def send_line(self, data: str, nowait: bool = False) -> asyncio.Future[bool]:
        self.send(data)
        return self._done()

    def privmsg(self, target: Any, message: str, nowait: bool = False) -> asyncio.Future[bool]:
        self.outbox.reply(str(target), message)
        return self._done()

    def notice(self, target: Any, message: str, nowait: bool = False) -> asyncio.Future[bool]:
        self.outbox.notice(str(target), message)
        return self._done()

    def join(self, target: str) -> None:
        self.outbox.join(target)

    def part(self, target: str, reason: str | None = None) -> None:
        self.outbox.part(target, reason or "")

    def topic(self, channel: str, topic: str | None = None) -> None:
        if topic:
            self.outbox.set_topic(channel, topic)
        else:
            self.send(f"TOPIC {channel}")

    # --- queue --------------------------------------------------------------------------
    def _done(self) -> asyncio.Future[bool]:
        future: asyncio.Future[bool] = self.loop.create_future()
        future.set_result(True)
        return future

    def _channel_name(self, name: str) -> str:
        channel = one_line(str(name)).replace(" ", "")
        if not channel or "," in channel:
            raise ValueError(f"not a channel name: {name!r}")
        return channel if channel[0] in "#&+!" else "#" + channel

    def _enqueue(
        self,
        kind: str,
        command: str,
        target: str,
        text: str,
        person: str = "",
        *,
        rows: tuple[int, ...] = (),
        queued_at: datetime | None = None,
    ) -> None:
        item = OutItem(kind, self.loop.time(), command, target, text, person, rows, queued_at)
        self._queue.add(item)
        self._wake.set()

    def _discarded(self, item: OutItem) -> None:
        """An item dropped at a bound: its stored rows are done with (told and logged)."""
        self._confirm(item.rows)

    def _confirm(self, rows: Iterable[int]) -> None:
        """Remove stored posts the server confirmed (kept to retry when the store fails)."""
        self._to_confirm.update(rows)
        if not self._to_confirm or self.confirm_posts is None:
            return
        try:
            self.confirm_posts(sorted(self._to_confirm))
        except Exception as error:
            log.warning("IRC: cannot mark %d posts confirmed: %s", len(self._to_confirm), error)
            return
        self._to_confirm.clear()

    def _stale(self, kind: str, created: float) -> bool:
        return self._queue.stale(kind, created, self.loop.time())

    def _load_next(self) -> bool:
        """Move the next queued item's lines into ``_current`` (see :class:`OutputQueue`
        for the order, merging and bounds); False when nothing is waiting."""
        item = self._queue.take(self.loop.time())
        if item is None:
            return False
        lines = self._lines(item)
        if not lines:
            self._confirm(item.rows)  # nothing to send (joined already, same topic…): done
        elif item.rows:
            self._inflight.append(item)
        for n, line in enumerate(lines, 1):
            rows = item.rows if n == len(lines) else ()
            self._current.append((line, item.kind, item.created, rows, bool(item.rows)))
        return True

    def _late_text(self, item: OutItem) -> str:
        """A stored message's text, with ``(late: queued 14:02 UTC)`` before it when it was
        queued more than ``late_after`` s ago (after a restart or a long outage)."""
        queued = item.queued_at
        if queued is None or item.command not in MESSAGES:
            return item.text
        if (datetime.now(UTC) - queued).total_seconds() <= self.settings["late_after"]:
            return item.text
        return f"(late: queued {queued.astimezone(UTC):%H:%M} UTC) {item.text}"

    def _lines(self, item: OutItem) -> list[str]:
        if item.command in ("PRIVMSG", "NOTICE"):
            if not one_line(item.text) or not one_line(item.target):
                log.debug("not sending an empty %s to %r", item.command, item.target)
                return []
            return message_lines(item.command, item.target, self._late_text(item))
        if item.command == "TOPIC":
            lines = message_lines("TOPIC", item.target, item.text)[:1]
            if not lines:
                return []
            lchan, topic = _lower(item.target), _message_key(lines[0])[2]
            self._topic_wanted[lchan] = (item.target, topic)
            if self._topic_now.get(lchan) == topic:
                log.info("the topic of %s is already the one wanted; not set again", item.target)
                return []
            return lines
        # JOIN and PART are decided by what was asked when they were queued, not by the
        # wanted set at send time: "join, post, part" (a visit) must send all three even
        # though the part is already recorded when the join goes out.
        if item.command == "JOIN":
            return [] if _lower(item.target) in self._joined else [f"JOIN {item.target}"]
        if item.command == "PART":
            if _lower(item.target) in self._channels:
                return []  # wanted again since: stay
            return (
                message_lines("PART", item.target, item.text)[:1]
                if item.text
                else [f"PART {item.target}"]
            )
        return [item.text]

    def _output_waiting(self) -> bool:
        """Whether anything may go out now (once the bucket allows)."""
        if not self._registered or self.failed.done():
            return False
        return bool(self._priority) or (
            self._ready and (bool(self._current) or self._queue.waiting())
        )

    def _next_cost(self) -> int:
        """Tokens the line :meth:`_next_line` would give now costs."""
        if self._priority:
            return command_cost(self._priority[0])
        if self._current:
            return command_cost(self._current[0][0])
        return self._queue.peek_cost()

    def _next_line(self) -> deque[Any] | None:
        """The deque whose head goes out next, or None when nothing may go now."""
        if not self._registered or self.failed.done():
            return None
        if self._priority:
            return self._priority
        if not self._ready:
            return None
        while not self._current and self._load_next():
            pass
        while self._current and self._stale(self._current[0][1], self._current[0][2]):
            log.info("dropping a stale reply line: %s", self._current.popleft()[0])
        return self._current or None

    async def _send_loop(self) -> None:
        while True:
            try:
                if not self._output_waiting():
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                if not self.may_send():  # the lease may have run out: wait for its renewal
                    await asyncio.sleep(MAY_SEND_POLL)
                    continue
                # Take the next line only once the bucket holds what it costs, and wake
                # for anything queued meanwhile: a reply queued while a TOPIC (2 tokens)
                # waits goes first.
                delay = self._bucket.delay_until_available(self.loop.time(), self._next_cost())
                if delay > 0:
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), delay)
                    continue
                source = self._next_line()
                if source is None:
                    continue
                head = source[0]
                line = head if isinstance(head, str) else head[0]
                delay = self._bucket.delay_until_available(self.loop.time(), command_cost(line))
                if delay > 0:
                    await asyncio.sleep(delay)
                elif self._write_now(line):
                    sent = source.popleft()
                    if not isinstance(sent, str):
                        self._sent(line, sent[3])
                else:
                    await asyncio.sleep(0.1)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("IRC sender: unexpected error (retrying in 1 s)")
                await asyncio.sleep(1)

    def _write_now(self, line: str) -> bool:
        protocol = self.protocol
        if protocol is None or protocol.closed or protocol.transport.is_closing():
            log.debug("not connected, not sending %.40s", line)
            return False
        sent = protocol.write(line)
        self._bucket.take(self.loop.time(), command_cost(sent, self._registered))
        log.debug(">> %s", _loggable(sent))
        self.dispatch(sent, iotype="out")
        return True

    # --- confirmation of stored posts ---------------------------------------------------
    @property
    def _echoes(self) -> bool:
        caps = self.get_plugin("deploybot_plugins.irc.capabilities.Capabilities")
        return "echo-message" in caps.enabled

    def _sent(self, line: str, rows: tuple[int, ...]) -> None:
        """A line from the queue went out: wait for its confirmation (stored rows)."""
        self._sent_count += 1
        now = self.loop.time()
        self._unconfirmed.append((self._sent_count, _message_key(line), rows, now))
        if rows and "barrier" not in self._handles:
            self._later("barrier", BARRIER_DELAY, self._barrier_due)

    def _confirmed_through(self, number: int) -> None:
        """The server has processed every line up to line ``number``: confirm them."""
        rows: list[int] = []
        while self._unconfirmed and self._unconfirmed[0][0] <= number:
            rows += self._unconfirmed.popleft()[2]
        if rows:
            done = set(rows)
            self._inflight = [item for item in self._inflight if not set(item.rows) <= done]
            self._confirm(rows)

    def _stored_unconfirmed(self) -> int:
        """Stored lines sent and not confirmed, not covered by a PING barrier yet."""
        return sum(1 for n, _, rows, _ in self._unconfirmed if rows and n > self._barrier_sent)

    def _barrier_due(self) -> None:
        """PING after the stored lines still unconfirmed (see :data:`BARRIER_DELAY`)."""
        waiting = self._stored_unconfirmed()
        if not waiting or not self._registered:
            return
        busy = self._output_waiting()
        if busy and not self._echoes and waiting < BARRIER_EVERY:
            self._later("barrier", BARRIER_DELAY, self._barrier_due)
            return
        self._send_barrier()

    def _send_barrier(self) -> None:
        if self._stored_unconfirmed() and self._write_now(
            f"PING :{BARRIER_PREFIX}{self._sent_count}"
        ):
            self._barrier_sent = self._sent_count

    def _on_pong(self, data: str = "", **_: Any) -> None:
        number = data.removeprefix(BARRIER_PREFIX)
        if data.startswith(BARRIER_PREFIX) and number.isdigit():
            self._confirmed_through(int(number))
            if self._stored_unconfirmed() and "barrier" not in self._handles:
                self._later("barrier", BARRIER_DELAY, self._barrier_due)

    def _on_message(
        self, mask: str = "", command: str = "", target: str = "", data: str = "", **_: Any
    ) -> None:
        """Our own message echoed (``echo-message``) or our TOPIC: the server processed
        it, and every line before it.  Any TOPIC tells the channel's current topic."""
        if command == "TOPIC":
            self._topic_now[_lower(target)] = data
        if self.is_me(mask):
            self._confirm_echo(command, target, data)

    def _confirm_echo(self, command: str, target: str, data: str | None) -> None:
        """Our ``command`` to ``target`` came back: confirm it and every line before it.
        ``data`` None matches any text (a JOIN or PART: the server's echo of them is
        not an echo of our words)."""
        key = (command, _lower(target))
        for number, (sent_command, sent_target, sent_text), _rows, _at in self._unconfirmed:
            if (sent_command, sent_target) == key and data in (None, sent_text):
                self._confirmed_through(number)
                return

    def _on_topic_is(self, channel: str = "", data: str = "", **_: Any) -> None:
        """RPL_TOPIC (332) or RPL_NOTOPIC (331, no ``data``)."""
        self._topic_now[_lower(channel)] = data

    def _on_names_end(self, channel: str = "", **_: Any) -> None:
        """End of NAMES after our JOIN: the channel's topic is known now (332 comes
        before it); set the wanted one again if it differs, then the channel is ready."""
        lchan = _lower(channel)
        current = self._topic_now.setdefault(lchan, "")
        wanted = self._topic_wanted.get(lchan)
        if wanted is not None and lchan in self._channels and current != wanted[1]:
            log.info("the topic of %s differs from the one set; setting it again", channel)
            self._enqueue("post", "TOPIC", wanted[0], wanted[1])
        self._channel_done(lchan)

    def _requeue_unconfirmed(self) -> None:
        """The connection is gone: what was sent and not confirmed goes out again, in
        its order, before anything queued after it (lines of a stored item being sent
        are dropped: the item is queued again whole)."""
        self._unconfirmed.clear()
        self._barrier_sent = self._sent_count
        self._cancel_handle("barrier")
        self._current = deque(entry for entry in self._current if not entry[4])
        items, self._inflight = self._inflight, []
        if items:
            log.info("IRC: %d posts not confirmed before the connection was lost", len(items))
            self._queue.requeue(items)

    async def _flush(self, timeout: float) -> None:  # noqa: ASYNC109 (the setting's name)
        """Let stored posts go out and be confirmed, for at most ``timeout`` s."""
        deadline = self.loop.time() + timeout
        while self.loop.time() < deadline and self._registered and self._ready:
            waiting = self._queue.stored() or any(entry[4] for entry in self._current)
            if not waiting and not any(rows for _, _, rows, _ in self._unconfirmed):
                return
            if not waiting and self._stored_unconfirmed():
                self._send_barrier()
            await asyncio.sleep(0.05)

    # --- connection ---------------------------------------------------------------------
    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = self.loop.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("IRC task %s failed", task.get_name(), exc_info=task.exception())

    def _later(self, name: str, delay: float, callback: Callable[[], Any]) -> None:
        def run() -> None:
            self._handles.pop(name, None)
            try:
                callback()
            except Exception:
                log.exception("IRC timer %s failed", name)

        self._cancel_handle(name)
        self._handles[name] = self.loop.call_later(delay, run)

    def once_later(self, name: str, delay: float, callback: Callable[[], Any]) -> None:
        """Run ``callback`` in ``delay`` s unless a timer ``name`` is pending already (then
        that one stands); cancelled by :meth:`stop`."""
        if name not in self._handles and not self._stopping:
            self._later(name, delay, callback)

    def _cancel_task(self, name: str) -> None:
        task = self._named.pop(name, None)
        if task is not None:
            task.cancel()

    def _cancel_handle(self, name: str) -> None:
        handle = self._handles.pop(name, None)
        if handle is not None:
            handle.cancel()

    def _connect_later(self, delay: float) -> None:
        if not self._stopping and not self.failed.done():
            self._later("reconnect", delay, lambda: self._spawn(self._connect(), "irc-connect"))

    def _reconnect_later(self) -> None:
        s = self.settings
        delay = backoff_delay(
            self._attempt, base=s["reconnect_delay"], cap=s["reconnect_max_delay"]
        )
        self._attempt += 1
        log.info("reconnecting to %s:%s in %.1f s", self.config.host, self.config.port, delay)
        self._connect_later(delay)

    async def _connect(self) -> None:
        host, port = self.config.host, self.config.port
        log.info("connecting to %s:%s as %s", host, port, self._wanted_nick)
        try:
            await asyncio.wait_for(
                self.loop.create_connection(
                    lambda: _Connection(self), host, port, ssl=self.get_ssl_context()
                ),
                self.settings["connect_timeout"],
            )
        except (OSError, TimeoutError) as error:
            log.warning("cannot connect to %s:%s: %s", host, port, error or type(error).__name__)
            self._down(f"cannot connect to {host}:{port}: {error or type(error).__name__}")
            self._reconnect_later()
        except Exception:
            log.exception("cannot connect to %s:%s", host, port)
            self._down(f"cannot connect to {host}:{port}: unexpected error (see the log)")
            self._reconnect_later()

    def _down(self, why: str, *, lost: bool = False) -> None:
        """Note an attempt that failed (or, ``lost``, a registered connection lost)."""
        if lost or self._outage is None:
            self._outage = _Outage(self.loop.time(), datetime.now(UTC), why, why, lost=lost)
        else:
            self._outage.failed(why)

    def _on_connection_made(self, protocol: _Connection) -> None:
        if self._stopping or self.failed.done():
            protocol.transport.abort()
            return
        self.protocol = protocol
        self._disconnected.clear()
        self._connected_at = self._last_rx = self.loop.time()
        self._bucket.reset(self._connected_at)
        self._registered = self._ready = False
        self._priority.clear()
        self._joined.clear()
        self._topic_now.clear()
        self.config["nick"] = self._wanted_nick
        if self.config.get("password"):
            self._write_now("PASS {password}".format(**self.config))
        self._notify("connection_ready")  # capabilities: CAP LS 302 before USER/NICK
        self._write_now("USER {username} {mode} * :{realname}".format(**self.config))
        self._write_now(f"NICK {self._wanted_nick}")
        self._notify("connection_made")
        self._later(
            "register-timeout", self.settings["connect_timeout"], self._registration_timed_out
        )
        self._cancel_task("watchdog")
        self._named["watchdog"] = self._spawn(self._watchdog(protocol), "irc-watchdog")

    def _on_connection_lost(self, protocol: _Connection, exc: Exception | None) -> None:
        if protocol is not self.protocol:
            return
        lasted = self.loop.time() - self._connected_at
        was_registered = self._registered
        self.protocol = None
        self._registered = self._ready = False
        self._requeue_unconfirmed()
        self._cancel_handle("join-settle")
        self._cancel_handle("fatal-close")
        self._cancel_handle("register-timeout")
        self._cancel_task("watchdog")
        self._disconnected.set()
        self._notify("connection_lost")
        if self._stopping or self.failed.done():
            log.info("IRC connection closed")
            return
        reason = protocol.lost_reason or exc or "closed by the server"
        level = logging.INFO if protocol.login_failed else logging.WARNING
        log.log(level, "IRC connection lost after %.0f s: %s", lasted, reason)
        if was_registered:
            self._down(f"connection lost: {reason}", lost=True)
        else:
            self._down(str(reason) if protocol.login_failed else f"connection lost: {reason}")
        if lasted > self.settings["reconnect_reset_after"]:
            self._attempt = 0
        self._reconnect_later()

    def _notify(self, event: str) -> None:
        try:
            self.notify(event)
        except Exception:
            log.exception("irc3 plugin hook %s failed", event)

    async def _watchdog(self, protocol: _Connection) -> None:
        """PING after ``ping_interval`` s of silence; drop the link after ``hang_timeout`` s."""
        interval, hang = self.settings["ping_interval"], self.settings["hang_timeout"]
        pinged_at = 0.0
        while not protocol.closed:
            now = self.loop.time()
            silent = now - self._last_rx
            if silent >= hang:
                protocol.lost_reason = f"no data from the server for {silent:.0f} s"
                protocol.transport.abort()
                return
            may_ping = self._registered and pinged_at <= self._last_rx
            if may_ping and silent >= interval:
                pinged_at, may_ping = now, False
                self._write_now(f"PING :deploybot-{int(now)}")
            wake = self._last_rx + (min(interval, hang) if may_ping else hang)
            await asyncio.sleep(max(0.05, min(wake - now, interval)))

    # --- server events ------------------------------------------------------------------
    def _attach(self, regexp: str, callback: Callable[..., None]) -> None:
        def guarded(**kwargs: Any) -> None:
            try:
                callback(**kwargs)
            except Exception:
                log.exception("IRC event handler %s failed", callback.__name__)

        guarded.__name__ = callback.__name__
        self.attach_events(irc3.event(regexp, guarded))

    def is_me(self, mask: str) -> bool:
        """Whether ``mask`` (``nick!user@host`` or a nick) is the bot."""
        return _lower(mask.split("!", 1)[0]) == _lower(self.nick)

    def _on_welcome(self, me: str = "", **_: Any) -> None:
        if self.failed.done() or self.protocol is None or self.protocol.login_failed:
            return
        self._cancel_handle("register-timeout")
        self.config["nick"] = me
        self._registered = True
        if not self._registered_once.done():
            self._registered_once.set_result(None)
        log.info("registered on %s:%s as %s", self.config.host, self.config.port, me)
        self._pending_joins = set(self._channels)
        for line in self._join_lines(self._channels.values()):
            self._priority.append(line)
        if self._pending_joins:
            settle = self.settings["join_timeout"] + 2 * len(self._pending_joins)
            self._later("join-settle", settle, self._join_settled)
        else:
            self._set_ready()
        self._wake.set()

    def _join_lines(self, channels: Iterable[str]) -> list[str]:
        lines: list[str] = []
        for channel in channels:
            if lines and len(f"{lines[-1]},{channel}".encode()) <= MAX_LINE_BYTES - 10:
                lines[-1] += "," + channel
            else:
                lines.append(f"JOIN {channel}")
        return lines

    def _join_settled(self) -> None:
        log.warning(
            "IRC: no JOIN confirmation for %s; sending anyway", ", ".join(self._pending_joins)
        )
        self._set_ready()

    def _set_ready(self) -> None:
        self._cancel_handle("join-settle")
        self._pending_joins.clear()
        if not self._ready and self._registered:
            self._ready = True
            log.info("IRC ready in %s", ", ".join(sorted(self._joined)) or "no channels")
            self._report_outage()
            self._wake.set()

    def _report_outage(self) -> None:
        """Back after an outage (a lost connection, or failed attempts): say in the report
        channel what happened and for how long; a clean first start says nothing."""
        outage, self._outage = self._outage, None
        if outage is None or not (outage.lost or outage.failures):
            return
        away = timedelta(seconds=round(self.loop.time() - outage.began))
        line = irc_back_line(
            away,
            outage.began_at,
            outage.first if outage.lost else None,
            outage.last,
            outage.failures,
        )
        log.info("IRC %s", line)
        if self.report_channel:
            self.outbox.post(self.report_channel, line)

    def _channel_done(self, lchan: str) -> None:
        if lchan in self._pending_joins:
            self._pending_joins.discard(lchan)
            if not self._pending_joins:
                self._set_ready()

    def _on_join(self, mask: str = "", channel: str = "", **_: Any) -> None:
        if self.is_me(mask):  # ready once the NAMES end (and the topic is known)
            self._joined.add(_lower(channel))
            self._topic_now.pop(_lower(channel), None)
            self._confirm_echo("JOIN", channel, None)  # without it: a PING, a line's cost

    def _on_part(self, mask: str = "", channel: str = "", **_: Any) -> None:
        if self.is_me(mask):
            self._joined.discard(_lower(channel))
            self._confirm_echo("PART", channel, None)

    def _on_kick(self, channel: str = "", target: str = "", data: str = "", **_: Any) -> None:
        if self.is_me(target):
            self._joined.discard(_lower(channel))
            if _lower(channel) in self._channels:
                log.warning("kicked from %s (%s); rejoining", channel, data or "no reason")
                self._priority.append(f"JOIN {channel}")
                self._wake.set()

    def _on_join_error(self, code: str = "", channel: str = "", data: str = "", **_: Any) -> None:
        if _lower(channel) in self._channels:
            log.error("cannot join %s: %s (%s)", channel, data, code)
            self._channel_done(_lower(channel))
            self._report_refusal(
                code,
                channel,
                f"⚠ I cannot join {channel}: {data} ({code}); what I post there is lost",
            )

    def _on_refused(self, code: str = "", channel: str = "", data: str = "", **_: Any) -> None:
        """A message, topic or part the server refused (e.g. the topic of a +t channel
        whose operator the bot is not): nothing the bot can retry, but never silent."""
        log.warning("the server refused our %s in %s: %s (%s)", _REFUSED[code], channel, data, code)
        if code in _REMEDY:
            self._report_refusal(
                code,
                channel,
                f"⚠ the server refused my {_REFUSED[code]} in {channel}: {data} ({code});"
                f" {_REMEDY[code]}",
            )

    def _report_refusal(self, code: str, channel: str, text: str) -> None:
        """Tell :attr:`report_channel` (once per channel and numeric every
        :data:`REFUSAL_REPORT_INTERVAL`); never about the report channel itself, where the
        report would be refused in turn."""
        target = self.report_channel
        if not target or _lower(channel) == _lower(target):
            return
        key, now = (code, _lower(channel)), self.loop.time()
        if now - self._reported.get(key, -REFUSAL_REPORT_INTERVAL) < REFUSAL_REPORT_INTERVAL:
            return
        self._reported[key] = now
        self.outbox.post(target, text)

    def _on_error(self, data: str = "", **_: Any) -> None:
        expected = self._stopping or self.failed.done()
        log.log(
            logging.INFO if expected else logging.WARNING, "IRC server closes the link: %s", data
        )
