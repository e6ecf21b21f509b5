"""deploybot's Matrix connection, on mautrix-python's client API.

:class:`MatrixBot` is the Matrix transport beside the IRC one:

* logs in with the access token (``access_token_file``), or once with the password
  (``password_file``, device ``device_name``) keeping the token and device in the store;
* runs its own /sync loop (mautrix's ``sync``): the position (``next_batch``) is stored
  *before* the events of that batch are acted on, so a restart never runs a command
  twice; the very first sync of a database acts on nothing older than the bot's start;
* answers ``!`` commands (``m.text`` from anyone but itself; an edit is no command) with
  :mod:`deploybot.commands` — the sender is the Matrix ID the homeserver authenticated
  (:class:`~deploybot.config.Address` ``mxid``), named by its roster nick where
  ``[matrix.people]`` or ``user_pattern`` give one; the answer goes where it was asked
  (more than four lines: privately, as on IRC);
* channels are room aliases on ``room_alias_server`` (``#fedora-admin`` →
  ``#fedora-admin:SERVER``), joined by alias and created when the alias does not exist
  (name and alias; the topic comes as a post); a message to a nick goes to that person's
  direct-message room (one per person, created on first use — or the room the person
  invited the bot to as a direct chat, which it joins — remembered in the store);
  a highlight line (``pingou dgilmore: …``) naming people the bot has direct-message
  rooms with mentions them (``m.mentions``) and invites them to the room;
* sends everything in order through one sender task: replies first (the lines of one
  answer waiting together, to one room, as one message), then posts; a stored
  post (:class:`~deploybot.deployday.posts.StoredOutbox`) is confirmed in the store when
  the homeserver has returned its event ID, and its transaction ID is fixed
  (``deploybot-<database>-<post>``), so a post sent again after a crash is not posted
  twice by the homeserver;
* respects rate limits (``M_LIMIT_EXCEEDED``: waits ``retry_after_ms``, then sends the
  same event again) and reconnects with exponential backoff (``reconnect_delay`` up to
  ``reconnect_max_delay``) while the homeserver is unreachable; an access token the
  homeserver does not know is fatal (``failed``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from json import JSONDecodeError
from typing import TYPE_CHECKING, Any

from aiohttp import ClientError, ClientResponse, ClientSession, ClientTimeout, ContentTypeError
from mautrix.api import HTTPAPI, Method
from mautrix.client import ClientAPI
from mautrix.errors import (
    MatrixConnectionError,
    MatrixInvalidToken,
    MatrixRequestError,
    MLimitExceeded,
    MNotFound,
    make_request_error,
)
from mautrix.types import (
    DeviceID,
    EventType,
    FilterID,
    RoomAlias,
    RoomCreatePreset,
    RoomID,
    RoomTopicStateEventContent,
    SyncToken,
    UserID,
)

from deploybot.commands.base import Request, parse_command_line
from deploybot.commands.dispatch import FloodGuard, dispatch, flood_guard
from deploybot.commands.registry import build_registry
from deploybot.config import Address
from deploybot.health import IrcStatus
from deploybot.store import Store, StoredPost

from .html import highlighted, message_content
from .settings import MatrixSettings

if TYPE_CHECKING:
    from yarl import URL

__all__ = ["NETWORK", "MatrixBot", "MatrixLoginError"]
log = logging.getLogger(__name__)

NETWORK = "matrix"
_SINCE = "since"
_TOKEN = "access_token"
_DEVICE = "device_id"
_TXN = "txn_prefix"
_DM = "dm:"
#: The /sync filter, inline: up to 100 events of a room per batch (the commands said while
#: the bot was away: a limited timeline would skip the older ones), members loaded lazily,
#: no presence or account data (the bot reads neither).
SYNC_FILTER = json.dumps(
    {
        "presence": {"types": []},
        "account_data": {"types": []},
        "room": {
            "timeline": {"limit": 100},
            "state": {"lazy_load_members": True},
            "ephemeral": {"types": []},
            "account_data": {"types": []},
        },
    },
    separators=(",", ":"),
)
#: At most this long to wait out one M_LIMIT_EXCEEDED (a server asking for more is capped).
MAX_RETRY_AFTER = 300.0
#: How often output held by ``may_send`` looks again, in seconds.
MAY_SEND_POLL = 0.05


class MatrixLoginError(Exception):
    """The homeserver refused the bot's credentials: no retrying helps."""


class RateLimited(MLimitExceeded):
    """``M_LIMIT_EXCEEDED``, with the ``retry_after_ms`` the homeserver asked for."""

    def __init__(self, http_status: int, message: str, retry_after_ms: int | None) -> None:
        super().__init__(http_status, message)
        self.retry_after_ms = retry_after_ms


class _Api(HTTPAPI):
    """mautrix's HTTP API, keeping ``retry_after_ms`` of a rate-limited answer (mautrix
    raises ``MLimitExceeded`` without it)."""

    async def _send(
        self,
        method: Method,
        url: URL,
        content: Any,
        query_params: dict[str, str],
        headers: dict[str, str],
    ) -> tuple[Any, ClientResponse]:
        request = self.session.request(
            str(method), url, data=content, params=query_params, headers=headers
        )
        async with request as response:
            if 200 <= response.status < 300:
                return await response.json(), response
            data: dict[str, Any] = {}
            with contextlib.suppress(JSONDecodeError, ContentTypeError, ValueError):
                answer = await response.json(content_type=None)
                data = answer if isinstance(answer, dict) else {}
            errcode, message = data.get("errcode"), data.get("error")
            if errcode == "M_LIMIT_EXCEEDED" or response.status == 429:
                retry = data.get("retry_after_ms")
                raise RateLimited(
                    response.status, str(message or ""), retry if isinstance(retry, int) else None
                )
            raise make_request_error(
                http_status=response.status,
                text=await response.text(),
                errcode=errcode if isinstance(errcode, str) else None,
                message=message if isinstance(message, str) else None,
            )


@dataclass
class _Out:
    """One thing to send: a stored post (``post``), a reply or notice, or a message."""

    command: str  # PRIVMSG, TOPIC, JOIN, PART
    target: str
    text: str
    created: float
    post: StoredPost | None = None
    reply: bool = False
    #: Further lines of the same answer, sent in the same event.
    more: list[str] = field(default_factory=list)
    #: Which answer a reply belongs to (0: none): only one answer's lines are joined.
    answer: int = 0


@dataclass
class _Outage:
    began: float
    last: str = ""


@dataclass
class _Rooms:
    """Which room is which: channels by name (lower case), direct-message rooms by person."""

    by_channel: dict[str, RoomID] = field(default_factory=dict)
    channel_of: dict[RoomID, str] = field(default_factory=dict)
    dm_of: dict[RoomID, str] = field(default_factory=dict)
    invited: dict[RoomID, set[str]] = field(default_factory=dict)

    def add_channel(self, channel: str, room: RoomID) -> None:
        self.by_channel[channel.lower()] = room
        self.channel_of[room] = channel

    def forget_channel(self, channel: str) -> RoomID | None:
        room = self.by_channel.pop(channel.lower(), None)
        if room is not None:
            self.channel_of.pop(room, None)
        return room


class MatrixBot:
    """The Matrix transport (module doc).  ``app`` is the application: ``core``,
    ``deploy_day`` and ``spawn`` are what commands need."""

    def __init__(
        self,
        settings: MatrixSettings,
        store: Store,
        app: Any,
        *,
        token: str | None = None,
        password: str | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.app = app
        self._token = token
        self._password = password
        self.user_id = UserID(settings.user_id)
        self.client: ClientAPI | None = None
        self._session: ClientSession | None = None
        self._rooms = _Rooms()
        self._wanted: dict[str, str] = {}  # channels to be in, by lower-case name
        self._replies: deque[_Out] = deque()
        self._posts: deque[_Out] = deque()
        self._wake = asyncio.Event()
        self._online = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._outage: _Outage | None = _Outage(time.monotonic(), "not connected yet")
        self._tasks: set[asyncio.Task[Any]] = set()
        self._started_ms = int(time.time() * 1000)
        #: Rooms this run joined or created (not in them before): nothing said there
        #: before then is a command to the bot.
        self._joined_at: dict[RoomID, int] = {}
        self._already_in: set[RoomID] = set()
        self._invites: list[tuple[RoomID, str]] = []
        self._txn_prefix = ""
        self._registry = build_registry()
        self._flood: FloodGuard | None = None
        self._answers = 0
        self.failed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.confirm_posts: Callable[[list[int]], object] = lambda ids: store.confirm_posts(
            ids, NETWORK
        )
        #: False holds every send: the active instance's lease may have run out (SIGSTOP, a
        #: hung VM) until it is renewed (plugins.application).
        self.may_send: Callable[[], bool] = lambda: True

    # --- what /healthz and /metrics see ---------------------------------------------------

    def status(self) -> IrcStatus:
        """Whether the last /sync succeeded, and if not, why and for how long."""
        outage = self._outage
        if outage is None:
            return IrcStatus(True)
        return IrcStatus(False, outage.last, time.monotonic() - outage.began)

    def queued(self) -> int:
        return len(self._replies) + len(self._posts)

    # --- the transport (PostTransport and what the application says directly) -------------

    def reply(self, target: str, text: str, answer: int = 0) -> None:
        self._replies.append(
            _Out("PRIVMSG", target, text, time.monotonic(), reply=True, answer=answer)
        )
        self._wake.set()

    def notice(self, target: str, text: str) -> None:
        self.reply(target, text)

    def post(self, target: str, text: str) -> None:
        """A message that is not stored (the application's own notes)."""
        self._posts.append(_Out("PRIVMSG", target, text, time.monotonic()))
        self._wake.set()

    def keep_joined(self, channel: str, joined: bool) -> None:
        if joined:
            self._wanted[channel.lower()] = channel
        else:
            self._wanted.pop(channel.lower(), None)

    def send_post(self, post: StoredPost) -> None:
        self._posts.append(_Out(post.command, post.target, post.text, time.monotonic(), post))
        self._wake.set()

    def join(self, channel: str) -> None:
        """Be in ``channel`` (its room) from now on (not stored)."""
        self.keep_joined(channel, True)
        self._posts.append(_Out("JOIN", channel, "", time.monotonic()))
        self._wake.set()

    # --- life cycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Log in (retrying while the homeserver is unreachable), then sync and send in
        the background.  Raises :class:`MatrixLoginError` when the credentials are refused."""
        settings = self.settings
        self._session = ClientSession(
            timeout=ClientTimeout(total=settings.sync_timeout + 30, connect=10)
        )
        api = _Api(settings.homeserver, self._token or "", client_session=self._session)
        self.client = ClientAPI(self.user_id, api=api)
        self._txn_prefix = self.store.network_value(NETWORK, _TXN) or ""
        if not self._txn_prefix:
            self._txn_prefix = f"deploybot-{secrets.token_hex(6)}"
            self.store.set_network_value(NETWORK, _TXN, self._txn_prefix)
        delay = settings.reconnect_delay
        while True:
            try:
                await self._login()
                break
            except MatrixLoginError:
                raise
            except (MatrixConnectionError, ClientError, TimeoutError, RateLimited) as error:
                self._down(f"cannot reach {settings.homeserver}: {_why(error)}")
            except MatrixRequestError as error:
                if error.http_status < 500:
                    raise MatrixLoginError(f"login refused: {_why(error)}") from None
                self._down(f"{settings.homeserver} answered {_why(error)}")
            await asyncio.sleep(delay)
            delay = min(delay * 2, settings.reconnect_max_delay)
        for key, room in self.store.network_items(NETWORK, _DM).items():
            self._rooms.dm_of[RoomID(room)] = key.removeprefix(_DM)
        self._spawn(self._sync_loop(), "matrix-sync")
        self._spawn(self._send_loop(), "matrix-sender")

    async def _login(self) -> None:
        client = self.client
        assert client is not None
        if self._password is not None:
            token = self.store.network_value(NETWORK, _TOKEN)
            if token:
                client.api.token = token
                client.device_id = DeviceID(self.store.network_value(NETWORK, _DEVICE) or "")
            else:
                try:
                    answer = await client.login(
                        identifier=self.user_id,
                        password=self._password,
                        device_name=self.settings.device_name,
                    )
                except MatrixRequestError as error:
                    if error.http_status in (400, 401, 403):
                        raise MatrixLoginError(
                            f"password login as {self.user_id} refused: {_why(error)}"
                        ) from None
                    raise
                self.store.set_network_value(NETWORK, _TOKEN, client.api.token)
                self.store.set_network_value(NETWORK, _DEVICE, answer.device_id)
                log.info("Matrix: logged in as %s, device %s", self.user_id, answer.device_id)
        try:
            whoami = await client.whoami()
        except MatrixInvalidToken:
            if self._password is not None:  # the kept token was revoked: log in again
                self.store.set_network_value(NETWORK, _TOKEN, None)
                raise MatrixConnectionError("the kept access token was refused") from None
            raise MatrixLoginError(
                f"the homeserver does not know the access token in "
                f"{self.settings.access_token_file}"
            ) from None
        if whoami.user_id != self.user_id:
            raise MatrixLoginError(
                f"the access token is {whoami.user_id}'s, not user_id {self.user_id}'s"
            )
        self._already_in = set(await client.get_joined_rooms())

    def halt(self) -> None:
        """Stop sending now (this instance lost the leadership): syncing and sending are
        cancelled without a flush; :meth:`stop` releases the rest."""
        self._online.clear()
        for task in self._tasks:
            task.cancel()

    async def stop(self, flush_timeout: float = 3.0) -> None:
        """Send what waits for at most ``flush_timeout`` s, then stop syncing and sending."""
        if self._online.is_set() and (self.queued() or not self._idle.is_set()):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._drained(), flush_timeout)
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
        unsent = sum(1 for item in self._posts if item.post is not None)
        if unsent:
            log.info("Matrix: %d stored posts unconfirmed at stop: sent at the next start", unsent)

    async def _drained(self) -> None:
        while self.queued() or not self._idle.is_set():  # noqa: ASYNC110 (polled at stop only)
            await asyncio.sleep(0.05)

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("Matrix task %r failed", task.get_name(), exc_info=task.exception())

    def _down(self, why: str) -> None:
        if self._outage is None:
            self._outage = _Outage(time.monotonic())
            log.warning("Matrix: %s", why)
        elif why != self._outage.last:
            log.warning("Matrix: %s", why)
        self._outage.last = why
        self._online.clear()

    def _up(self) -> None:
        if self._outage is not None:
            seconds = time.monotonic() - self._outage.began
            log.info("Matrix: synced with %s as %s", self.settings.homeserver, self.user_id)
            if self._outage.last != "not connected yet":
                log.info("Matrix: back after %.0f s (%s)", seconds, self._outage.last)
        self._outage = None
        self._online.set()

    # --- syncing --------------------------------------------------------------------------

    async def _sync_loop(self) -> None:
        client = self.client
        assert client is not None
        settings = self.settings
        since = self.store.network_value(NETWORK, _SINCE)
        first = since is None
        # No kept position (a new database): nothing older than this start is acted on,
        # in any batch of this run (Synapse may answer a first sync from its cache, with a
        # position from before the start).
        not_before_ms = self._started_ms if first else 0
        delay = settings.reconnect_delay
        while True:
            try:
                data = await client.sync(
                    since=SyncToken(since) if since else None,
                    timeout=0 if first else int(settings.sync_timeout * 1000),
                    filter_id=FilterID(SYNC_FILTER),  # /sync takes a filter inline too
                )
            except asyncio.CancelledError:
                raise
            except MatrixInvalidToken:
                message = f"Matrix: the homeserver no longer accepts {self.user_id}'s token"
                log.error("%s", message)
                if not self.failed.done():
                    self.failed.set_exception(MatrixLoginError(message))
                return
            except RateLimited as error:
                await asyncio.sleep(_retry_after(error))
                continue
            except (MatrixConnectionError, ClientError, TimeoutError, MatrixRequestError) as error:
                self._down(f"cannot sync with {settings.homeserver}: {_why(error)}")
                await asyncio.sleep(delay)
                delay = min(delay * 2, settings.reconnect_max_delay)
                continue
            delay = settings.reconnect_delay
            since = str(data.get("next_batch") or since or "")
            # kept before anything of this batch is acted on: a crash loses at most a
            # command, never runs one twice
            self.store.set_network_value(NETWORK, _SINCE, since)
            self._up()
            await self._join_wanted()
            self._handle_sync(data, not_before_ms)
            await self._accept_invites()
            first = False

    async def _join_wanted(self) -> None:
        """Be in every channel's room before acting on what was said in them (so that a
        command in a channel is known as one); a failure is left to the sender's JOIN."""
        for channel in list(self._wanted.values()):
            if channel.lower() not in self._rooms.by_channel:
                try:
                    await self._room_of_channel(channel)
                except (MatrixRequestError, MatrixConnectionError, ClientError) as error:
                    log.warning("Matrix: cannot join %s yet: %s", channel, _why(error))

    async def _accept_invites(self) -> None:
        """Join the direct-message rooms people invited the bot to: such a room becomes
        that person's direct-message room with the bot (their pages go there too).  An
        invite to any other room is left alone."""
        client = self.client
        assert client is not None
        while self._invites:
            room, inviter = self._invites.pop(0)
            try:
                await client.join_room_by_id(room)
            except MatrixRequestError as error:
                log.warning(
                    "Matrix: cannot join %s's direct-message room: %s", inviter, _why(error)
                )
                continue
            self._joined_at[room] = int(time.time() * 1000)
            self._remember_dm(inviter, room)
            log.info("Matrix: direct-message room %s with %s (their invite)", room, inviter)

    def _handle_sync(self, data: dict[str, Any], not_before_ms: int) -> None:
        rooms = data.get("rooms") or {}
        for room_id, room in (rooms.get("join") or {}).items():
            for event in (room.get("timeline") or {}).get("events") or []:
                if isinstance(event, dict):
                    self._handle_event(RoomID(room_id), event, not_before_ms)
        for room_id, room in (rooms.get("invite") or {}).items():
            events = (room.get("invite_state") or {}).get("events") or []
            for event in events:
                if (
                    isinstance(event, dict)
                    and event.get("type") == "m.room.member"
                    and event.get("state_key") == self.user_id
                    and isinstance(event.get("sender"), str)
                    and (event.get("content") or {}).get("is_direct") is True
                ):
                    self._invites.append((RoomID(room_id), event["sender"]))
        for room_id in rooms.get("leave") or {}:
            channel = self._rooms.channel_of.get(RoomID(room_id))
            if channel is not None and channel.lower() in self._wanted:
                log.warning("Matrix: removed from %s; joining it again", channel)
                self._rooms.forget_channel(channel)
                self._posts.append(_Out("JOIN", channel, "", time.monotonic()))
                self._wake.set()

    def _handle_event(self, room: RoomID, event: dict[str, Any], not_before_ms: int) -> None:
        content = event.get("content")
        sender = event.get("sender")
        if (
            event.get("type") != "m.room.message"
            or not isinstance(content, dict)
            or not isinstance(sender, str)
            or sender == self.user_id
            or content.get("msgtype") != "m.text"
            or "m.new_content" in content  # an edit is no new command
            or not isinstance(content.get("body"), str)
        ):
            return
        stamp = event.get("origin_server_ts")
        not_before_ms = max(not_before_ms, self._joined_at.get(room, 0))
        if not_before_ms and (not isinstance(stamp, int) or stamp < not_before_ms):
            return  # older than the bot's first start, or than its joining the room
        parsed = parse_command_line(content["body"])
        if parsed is None:
            return
        channel = self._rooms.channel_of.get(room)
        if channel is None and self._rooms.dm_of.get(room) != sender:
            return  # neither a channel nor this person's direct-message room with the bot
        if not self.may_send():  # a paused active woken up: the new active answers
            log.warning("Matrix: command from %s not acted on: the lease ran out", sender)
            return
        app = self.app
        name, args = parsed
        nick = self.settings.nick_of(sender)
        request = Request(
            nick=nick,
            mask=sender,
            account=None,
            channel=channel,
            name=name,
            args=args,
            now=app.core.now(),
            deploy_day=app.deploy_day,
            address=Address("mxid", sender),
            vouched=nick != sender,  # a roster nick from [matrix.people] or user_pattern
        )
        app.spawn(self._answer(request), f"matrix command !{name} from {sender}")

    async def _answer(self, request: Request) -> None:
        if self._flood is None:
            self._flood = flood_guard(self.app.core.config)
        self._answers += 1
        for out in await dispatch(self.app.core, self._registry, request, self._flood):
            self.reply(out.target, out.text, self._answers)

    # --- sending --------------------------------------------------------------------------

    async def _send_loop(self) -> None:
        while True:
            item = await self._next()
            self._idle.clear()
            try:
                await self._send_one(item)
            finally:
                self._idle.set()

    async def _next(self) -> _Out:
        while True:
            while self._replies:
                item = self._replies.popleft()
                if time.monotonic() - item.created <= self.settings.reply_ttl:
                    # the lines of one answer (queued together, same target): one event
                    while (
                        item.answer
                        and self._replies
                        and self._replies[0].target == item.target
                        and self._replies[0].answer == item.answer
                    ):
                        item.more.append(self._replies.popleft().text)
                    return item
                log.info("Matrix: reply to %s dropped (late): %s", item.target, item.text)
            if self._posts:
                return self._posts.popleft()
            self._wake.clear()
            await self._wake.wait()

    async def _send_one(self, item: _Out) -> None:
        """Send ``item``, waiting out outages and rate limits; a refusal drops it."""
        delay = self.settings.reconnect_delay
        while True:
            await self._online.wait()
            if not self.may_send():  # the lease may have run out: wait for its renewal
                await asyncio.sleep(MAY_SEND_POLL)
                continue
            try:
                await self._deliver(item)
            except asyncio.CancelledError:
                if item.post is not None or not item.reply:
                    self._posts.appendleft(item)  # counted as unsent at stop
                raise
            except RateLimited as error:
                wait = _retry_after(error)
                log.info("Matrix: rate limited; sending again in %.1f s", wait)
                await asyncio.sleep(wait)
                continue
            except (MatrixConnectionError, ClientError, TimeoutError) as error:
                log.warning("Matrix: sending to %s failed: %s", item.target, _why(error))
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.settings.reconnect_max_delay)
                continue
            except MatrixRequestError as error:
                if error.http_status >= 500:
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self.settings.reconnect_max_delay)
                    continue
                log.warning(
                    "Matrix: %s to %s refused (%s); dropped", item.command, item.target, _why(error)
                )
            if item.post is not None:
                self.confirm_posts([item.post.id])
            return

    async def _deliver(self, item: _Out) -> None:
        client = self.client
        assert client is not None
        command, target = item.command, item.target
        if command == "JOIN":
            await self._room_of_channel(target)
        elif command == "PART":
            room = self._rooms.forget_channel(target)
            if room is not None:
                await client.leave_room(room, reason=item.text or None)
        elif command == "TOPIC":
            room = await self._room_of_channel(target)
            await client.send_state_event(
                room, EventType.ROOM_TOPIC, RoomTopicStateEventContent(topic=item.text)
            )
        else:
            room = await self._room_of(target)
            mentions = None
            if target[:1] in "#&":
                mentions = highlighted(item.text, self._people())
            if mentions:
                await self._invite(room, mentions.values())
            txn = f"{self._txn_prefix}-{item.post.id}" if item.post is not None else None
            await client.send_message_event(
                room,
                EventType.ROOM_MESSAGE,
                message_content([self._late(item), *item.more], mentions),  # type: ignore[arg-type]
                txn_id=txn,
            )

    def _late(self, item: _Out) -> str:
        """A stored message queued long ago says so, as on IRC."""
        post = item.post
        if post is None:
            return item.text
        age = (datetime.now(UTC) - post.queued_at).total_seconds()
        if age <= 120:
            return item.text
        return f"(late: queued {post.queued_at.astimezone(UTC):%H:%M} UTC) {item.text}"

    async def _room_of(self, target: str) -> RoomID:
        if target[:1] in "#&":
            return await self._room_of_channel(target)
        return await self._dm_room(self.settings.mxid_of(target))

    async def _room_of_channel(self, channel: str) -> RoomID:
        """The room of ``channel``, joined by its alias; created when the alias is free."""
        known = self._rooms.by_channel.get(channel.lower())
        if known is not None:
            return known
        client = self.client
        assert client is not None
        alias = RoomAlias(self.settings.alias_of(channel))
        try:
            room = await client.join_room(alias, max_retries=0)
        except MNotFound:
            if self.settings.room_alias_server != self.user_id.partition(":")[2]:
                raise
            room = await client.create_room(
                alias_localpart=alias[1:].rpartition(":")[0],
                preset=RoomCreatePreset.PUBLIC,
                name=channel,
            )
            log.info("Matrix: created %s (%s)", alias, room)
        if room not in self._already_in:
            self._joined_at.setdefault(room, int(time.time() * 1000))
        self._rooms.add_channel(channel, room)
        return room

    def _people(self) -> dict[str, str]:
        """Nick (lower case) → Matrix ID of everyone the bot has a direct-message room with."""
        return {self.settings.nick_of(mxid).lower(): mxid for mxid in self._rooms.dm_of.values()}

    async def _dm_room(self, mxid: str) -> RoomID:
        """The direct-message room with ``mxid``: the one in the store, else a new one."""
        for room, person in self._rooms.dm_of.items():
            if person == mxid:
                return room
        kept = self.store.network_value(NETWORK, _DM + mxid)
        if kept:
            room = RoomID(kept)
        else:
            client = self.client
            assert client is not None
            room = await client.create_room(
                preset=RoomCreatePreset.TRUSTED_PRIVATE,
                is_direct=True,
                invitees=[UserID(mxid)],
            )
            self._joined_at[room] = int(time.time() * 1000)
            log.info("Matrix: direct-message room %s with %s", room, mxid)
        self._remember_dm(mxid, room)
        return room

    def _remember_dm(self, mxid: str, room: RoomID) -> None:
        for old in [r for r, person in self._rooms.dm_of.items() if person == mxid]:
            del self._rooms.dm_of[old]
        self._rooms.dm_of[room] = mxid
        self.store.set_network_value(NETWORK, _DM + mxid, room)

    async def _invite(self, room: RoomID, people: Any) -> None:
        """Invite ``people`` to ``room`` once each (someone there already is no error)."""
        client = self.client
        assert client is not None
        invited = self._rooms.invited.setdefault(room, set())
        for mxid in people:
            if mxid in invited:
                continue
            try:
                await client.invite_user(room, UserID(mxid))
            except MatrixRequestError as error:
                if error.http_status >= 500 or isinstance(error, RateLimited):
                    raise
                log.debug("Matrix: invite of %s to %s: %s", mxid, room, _why(error))
            invited.add(mxid)


def _retry_after(error: RateLimited) -> float:
    """Seconds to wait after ``M_LIMIT_EXCEEDED`` (1 s when the server did not say)."""
    if error.retry_after_ms is None:
        return 1.0
    return min(max(error.retry_after_ms, 0) / 1000, MAX_RETRY_AFTER)


def _why(error: BaseException) -> str:
    if isinstance(error, MatrixRequestError):
        code = getattr(error, "errcode", None) or ""
        return f"HTTP {error.http_status} {code} {error.message or ''}".strip()
    return str(error) or type(error).__name__
