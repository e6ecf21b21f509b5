"""``deploybot run``: one application object owning the loop's resources.

:class:`Application` validates the config before connecting, opens the store, loads
the plans, starts the APScheduler (asyncio) scheduler and the IRC bot, and on
SIGINT/SIGTERM stops the web server, sends QUIT, stops the scheduler and closes the store,
in that order.
Everything the bot starts is a task it keeps a reference to; a task that fails is
logged with its traceback, never left unobserved.

With a PostgreSQL database several ``deploybot run`` form one bot (issue 14, SPEC §8): each
campaigns for the leadership (:class:`~deploybot.store.leader.Leadership`); a standby serves
the web API only; the one that becomes active starts what the bot runs (the stored outbox,
the scheduled jobs, the bus sources, the chat networks) and renews its lease every
``ha_lease_timeout``/3, and acts on the webhook events the standbys kept in the store
(:mod:`deploybot.bus.inbox`).  An active that finds its lease lost stops its chat connections at
once (no flush, no QUIT) and exits with :data:`LOST_LEADERSHIP_STATUS`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from deploybot.bus.inbox import DRAIN_SECONDS, drain_inbox
from deploybot.bus.reactor import BAD_MESSAGE_LOG_INTERVAL, BusReactor
from deploybot.config import (
    Config,
    database_password,
    load_bot_section,
    load_config,
    resolve_webhook_secret,
)
from deploybot.core import Core, utc_now
from deploybot.deployday.countdowns import CountdownPoster
from deploybot.deployday.day import DeployDay
from deploybot.deployday.digestpost import DigestPoster
from deploybot.deployday.posts import Networks, PostTransport, StoredOutbox
from deploybot.drift.runs import DriftRunner
from deploybot.errors import ConfigError
from deploybot.health import HaStatus, NetworkStatuses, Role
from deploybot.plans.book import PlanBook, ReloadReport
from deploybot.plans.freezes import FreezeBook
from deploybot.publish import BusOutbox
from deploybot.store import NotLeaderError, ReadWorker, Store
from deploybot.store.leader import PRESENCE_SECONDS, DatabaseAwayError, Leadership, LeaderState
from deploybot.web.api import load_read_token

from .bus.amqp_publisher import AmqpPublisher
from .bus.amqp_source import AmqpSource
from .bus.fedmsg_source import FedmsgSource, make_validator
from .drift import ProbeFetcher
from .freezecal import FreezeCalendar
from .irc.bot import DeployIrcBot, IrcLoginError, resolve_sasl_password
from .matrix.bot import NETWORK as MATRIX
from .matrix.bot import MatrixBot, MatrixLoginError
from .matrix.settings import load_matrix_settings, read_matrix_secret
from .web import WebServer, WebStartError

log = logging.getLogger(__name__)

PLAN_WATCH_SECONDS = 5
FIREFIGHT_SWEEP_SECONDS = 30
ALWAYS_INCLUDED = ("deploybot_plugins.irc.commands",)
#: The exit status of an active instance that lost the leadership (another one is active).
LOST_LEADERSHIP_STATUS = 3
#: The active stops sending this share of ``ha_lease_timeout`` after it last asked for a
#: renewal, unless renewed meanwhile: a standby may take over from then on (a paused active
#: wakes up with its lease run out and sends nothing before it finds out).
SEND_SHARE_OF_LEASE = 0.8


class Application:
    def __init__(self, ini: Path, *, clock: Callable[[], datetime] = utc_now) -> None:
        self.ini = ini
        self.clock = clock
        # Read and validated before anything connects: a bad config fails here.
        # Secrets in files or systemd credentials ($CREDENTIALS_DIRECTORY) are read here.
        self.config: Config = resolve_webhook_secret(load_config(ini), os.environ, str(ini))
        self.database_password = database_password(self.config, str(ini))
        self.bot_config: dict[str, Any] = dict(load_bot_section(ini))
        self.sasl_password = resolve_sasl_password(self.bot_config, os.environ)
        # The drift probe's HTTP client; its token files are read here (ConfigError: exit 1).
        self.fetch = ProbeFetcher.from_config(self.config)
        # [matrix] switches Matrix on; IRC runs with [bot], or when Matrix is not set up.
        self.matrix_settings = load_matrix_settings(ini)
        self.matrix_secret = (
            read_matrix_secret(self.matrix_settings, str(ini), os.environ)
            if self.matrix_settings is not None
            else (None, None)
        )
        self.irc_enabled = bool(self.bot_config) or self.matrix_settings is None
        self.matrix: MatrixBot | None = None
        self._exit_status = 0
        #: This instance's id in the ``leader`` table and /healthz.
        self.instance = f"{socket.gethostname()}:{os.getpid()}"
        #: PostgreSQL: this instance's claim to be active (None: SQLite, always active).
        self.leadership: Leadership | None = None
        self.role = Role("active", self.instance)
        #: Which instance is active, since when, how many standbys (/healthz, !status).
        self.ha = HaStatus("sqlite", self.instance, clock())
        #: time.monotonic() until which the lease is sure to hold (PostgreSQL).
        self._lease_holds_until = 0.0
        #: The leadership was lost (told once, acted on once).
        self._leadership_lost = False
        self._loop_thread = threading.get_ident()
        self._loop: asyncio.AbstractEventLoop | None = None
        #: While the lock is taken again (_campaign_again): the fence's refusals meanwhile.
        self._refused_meanwhile: list[NotLeaderError] | None = None
        # fedmsg signature checks: refused here (exit 1) if fedmsg cannot do them.
        self.fedmsg_validator = (
            make_validator(self.config, str(ini)) if self.config.fedmsg_endpoints else None
        )
        self.bus: BusReactor | None = None  # every bus source feeds this one (_bus_reactor)
        self.fedmsg: FedmsgSource | None = None
        self.amqp: AmqpSource | None = None
        self.publisher: AmqpPublisher | None = None
        self.web: WebServer | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stop = asyncio.Event()
        self.core: Core
        self.bot: DeployIrcBot | None = None
        self.scheduler: AsyncIOScheduler
        self.poster: CountdownPoster
        self.deploy_day: DeployDay
        self.digests: DigestPoster
        self.outbox: StoredOutbox
        self._fingerprint: tuple[tuple[str, int, int], ...] = ()

    # --- tasks ---------------------------------------------------------------------------
    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """Run ``coro`` as a task we keep; its failure is logged with a traceback."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and isinstance(task.exception(), NotLeaderError):
            log.info("task %r stopped: %s", task.get_name(), task.exception())
        elif not task.cancelled() and task.exception() is not None:
            log.error("task %r failed", task.get_name(), exc_info=task.exception())

    def stop(self) -> None:
        self._stop.set()

    # --- life cycle ----------------------------------------------------------------------
    async def run(self) -> int:
        loop = self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        config = self.config
        store = Store.open(
            config.database,
            busy_timeout=config.database_busy_timeout,
            password=self.database_password,
        )
        # long reads (a big day's digest) run off the loop on a connection of their own
        reads = ReadWorker(store.reopen)
        try:
            book = PlanBook(config.plans_dir)
            freezes = FreezeBook(config.freezes, config.timezone)
            self.core = Core(
                config=config,
                store=store,
                book=book,
                clock=self.clock,
                freezes=freezes,
                drift=DriftRunner(store, self.fetch, self.clock),
                reads=reads,
                ha_status=lambda: self.ha,
                network_status=self._network_status,
            )
            report = await book.reload_in_worker()
            freeze_problems = await asyncio.to_thread(freezes.reload)
            if freeze_problems:
                report = replace(report, problems=(*report.problems, *freeze_problems))
            self._fingerprint = book.fingerprint()
            transports: dict[str, PostTransport] = {}
            if self.irc_enabled:
                bot = self.bot = self._make_bot(loop)
                bot.may_send = self._may_send
                bot.report_channel = config.admin_channel
                transports["irc"] = bot.outbox
            if self.matrix_settings is not None:
                token, password = self.matrix_secret
                self.matrix = MatrixBot(
                    self.matrix_settings, store, self, token=token, password=password
                )
                self.matrix.may_send = self._may_send
                transports[MATRIX] = self.matrix
            # Posts are kept in the store until the server (each network's) confirms them;
            # what an earlier run left unconfirmed goes out first, in its order.
            store.post_networks = tuple(transports)
            self.outbox = StoredOutbox(store, Networks(transports), self.clock)
            if self.bot is not None:
                self.bot.confirm_posts = (
                    store.confirm_posts
                    if len(transports) == 1
                    else lambda ids: store.confirm_posts(ids, "irc")
                )
            self.poster = CountdownPoster(self.core, self.outbox)
            self.deploy_day = DeployDay(self.core, self.outbox, accounts=self.bot)
            self.digests = DigestPoster(self.core, self.outbox, self.deploy_day.firefight)
            self.core.plan_listeners.append(self._plans_reloaded)
            self.scheduler = AsyncIOScheduler(event_loop=loop, timezone=UTC)
            # a job refused by the fence: the leadership's loss is logged once, not the job
            _JOB_LOG.addFilter(_quiet_refusals)
            self.scheduler.start()
            try:
                if isinstance(config.database, str):  # PostgreSQL: one of a pair, maybe
                    self.leadership = Leadership(
                        config.database,
                        instance=self.instance,
                        password=self.database_password,
                        lease_timeout=config.ha_lease_timeout,
                    )
                    self.role = Role("standby", self.instance)
                    self.ha = HaStatus("postgresql")
                if not await self._start_web():
                    return 1  # the port is taken or the read token unusable: said in the log
                for signum in (signal.SIGINT, signal.SIGTERM):
                    loop.add_signal_handler(signum, self.stop)
                if not await self._campaign():
                    return self._exit_status  # a signal came while this was a standby
                resumed = self.outbox.resume()
                if resumed:
                    log.info("%d posts left unconfirmed by the last run are sent again", resumed)
                self._start_publishing()
                for channel in (config.admin_channel, *config.announce_channels):
                    if self.bot is not None:
                        self.bot.outbox.join(channel)
                    if self.matrix is not None:
                        self.matrix.join(channel)
                self._report_problems(report)
                self.poster.post_due()  # anything that came due while we were down: late
                self._countdowns_probed()
                self.poster.reschedule(self.scheduler)
                self.deploy_day.start(self.scheduler)  # escalations, open/close, date jobs
                self.digests.post_due()  # a digest whose time passed while we were down
                self.digests.schedule(self.scheduler)
                self.scheduler.add_job(
                    self.deploy_day.firefight.sweep_job,
                    "interval",
                    seconds=FIREFIGHT_SWEEP_SECONDS,
                    id="firefight-sweep",
                    coalesce=True,
                    max_instances=1,
                    misfire_grace_time=None,
                )
                self.scheduler.add_job(
                    self._watch_plans, "interval", seconds=PLAN_WATCH_SECONDS, id="plan-watch"
                )
                self._start_freeze_calendar()
                self._start_inbox()
                self._start_fedmsg()
                self._start_amqp()
                try:
                    if not await self._start_networks():
                        return self._exit_status  # a signal came before we were connected
                except IrcLoginError as error:
                    log.error("cannot log in to IRC: %s", error)
                    return 1
                except MatrixLoginError as error:
                    log.error("cannot log in to Matrix: %s", error)
                    return 1
                await self._wait_for_stop()
                await self._stop_web()  # no webhook event acted on after this
                await self._close_amqp()  # stop consuming before QUIT: nothing acked unsaid
                await self._close_publisher()  # what is not confirmed stays stored
                await self._stop_networks()
            finally:
                for signum in (signal.SIGINT, signal.SIGTERM):
                    loop.remove_signal_handler(signum)
                self.scheduler.shutdown(wait=False)
                _JOB_LOG.removeFilter(_quiet_refusals)
                await self._cancel_tasks()
                if self.core.drift is not None:
                    await self.core.drift.close()  # runs under way: before the store closes
                await self._stop_web()  # idempotent; before the store closes
                await self._close_amqp()  # idempotent; before the store closes
                await self._close_publisher()  # idempotent; before the store closes
                if self.fedmsg is not None:
                    self.fedmsg.close()  # after its task ended, before the store closes
                if self.leadership is not None:  # a standby takes over at once
                    await asyncio.to_thread(self.leadership.release)
        finally:
            await asyncio.to_thread(reads.close)
            store.close()
        log.info("stopped")
        return self._exit_status

    def _make_bot(self, loop: asyncio.AbstractEventLoop) -> DeployIrcBot:
        bot_config = dict(self.bot_config)
        includes = bot_config.get("includes") or []
        if isinstance(includes, str):
            includes = includes.split()
        bot_config["includes"] = [*includes, *(i for i in ALWAYS_INCLUDED if i not in includes)]
        return DeployIrcBot(
            bot_config, loop=loop, sasl_password=self.sasl_password, deploybot_app=self
        )

    async def _start_networks(self) -> bool:
        """Log in on every network (retrying while a server is down); False if a signal
        came first.  Raises :class:`IrcLoginError` or :class:`MatrixLoginError` when one
        refuses the bot's credentials."""
        starts: list[asyncio.Future[None]] = []
        if self.matrix is not None:
            starts.append(asyncio.ensure_future(self.matrix.start()))
        if self.bot is not None:
            starts.append(asyncio.ensure_future(self.bot.start()))
        stop = asyncio.ensure_future(self._stop.wait())
        pending: set[asyncio.Future[Any]] = set(starts)
        while pending:
            done, pending = await asyncio.wait(
                {*pending, stop}, return_when=asyncio.FIRST_COMPLETED
            )
            pending.discard(stop)
            failed = [task for task in done if task is not stop and task.exception()]
            if failed or stop.done():
                break
        stop.cancel()
        if not pending and not failed:
            return True
        for task in starts:
            task.cancel()
        await asyncio.gather(*starts, return_exceptions=True)
        await self._stop_networks()  # also releases start()
        if failed:
            raise failed[0].exception()  # type: ignore[misc]
        return False

    # --- active/standby ------------------------------------------------------------------
    async def _campaign(self) -> bool:
        """Wait as a standby until this instance is the active one (True; with SQLite at
        once), or until asked to stop (False); then renew the lease while active."""
        leadership = self.leadership
        if leadership is None:
            return True
        interval = min(1.0, self.config.ha_lease_timeout / 4)
        stop = asyncio.ensure_future(self._stop.wait())
        said: str | None = None
        present_due = 0.0  # time.monotonic() when the presence is renewed next
        try:
            while not stop.done():
                asked = time.monotonic()
                try:
                    epoch = await asyncio.to_thread(leadership.try_acquire)
                    if epoch is None and asked >= present_due:
                        await asyncio.to_thread(leadership.mark_present, "standby")
                        present_due = asked + PRESENCE_SECONDS
                    state = None if epoch is not None else await asyncio.to_thread(leadership.state)
                except Exception as error:  # the database is away: keep trying, say why
                    if said != str(error):
                        log.warning("standby: cannot campaign (will retry): %s", error)
                    said = str(error)
                    leadership.close()
                    epoch = state = None
                if epoch is not None:
                    # from now on every write transaction checks the epoch (fencing)
                    self.core.store.fence(epoch, self._fence_refused)
                    self._lease_renewed(asked)
                    self._lease_read(await asyncio.to_thread(_present_as_active, leadership))
                    log.info("active: instance %s, epoch %d", self.instance, epoch)
                    self.role = Role("active", self.instance, epoch)
                    self.spawn(self._keep_leading(leadership), name="leader-lease")
                    return True
                if state is not None:
                    self.role = Role("standby", self.instance, state.epoch)
                    self._lease_read(state)
                if state is not None and state.instance != said:
                    said = state.instance
                    log.info("standby: instance %s is active (epoch %d)", said, state.epoch)
                await asyncio.wait({stop}, timeout=interval)
            return False
        finally:
            stop.cancel()

    async def _keep_leading(self, leadership: Leadership) -> None:
        """Renew the lease and this instance's presence every ``ha_lease_timeout``/3 (at
        most :data:`PRESENCE_SECONDS` apart); once it is lost, stop sending.  When the
        lock's connection fails (the database restarted) campaign again at once: output is
        held meanwhile (:meth:`_may_send`); the lock still free, this instance takes it
        under a new epoch and stays on the chat networks; another active: it is lost."""
        interval = min(self.config.ha_lease_timeout / 3, PRESENCE_SECONDS)
        held = True
        while held:
            await asyncio.sleep(interval)
            asked = time.monotonic()
            try:
                held = await asyncio.to_thread(leadership.renew)
            except DatabaseAwayError as error:
                log.warning("active: %s; campaigning again, output held", error)
                held = await self._campaign_again(leadership)
                continue
            except Exception:  # not a database error (renew says those): still not renewed
                log.exception("the lease could not be renewed")
                held = False
            if held:
                self._lease_renewed(asked)
                self._lease_read(await asyncio.to_thread(_present_as_active, leadership))
        if not self._stop.is_set():
            self._lost_leadership()

    async def _campaign_again(self, leadership: Leadership) -> bool:
        """Take the lock again after its connection failed: True (active under a new
        epoch), False (another instance is active, or asked to stop meanwhile)."""
        self._refused_meanwhile = []  # refusals wait for the outcome (_fence_refused)
        try:
            return await self._retake(leadership)
        finally:
            self._refused_meanwhile = None

    async def _retake(self, leadership: Leadership) -> bool:
        retry = min(0.25, self.config.ha_lease_timeout / 8)
        said: str | None = None
        while not self._stop.is_set():
            asked = time.monotonic()
            try:
                epoch = await asyncio.to_thread(leadership.try_acquire)
            except Exception as error:  # the database is still away
                if said != str(error):
                    log.warning("active: cannot campaign yet (will retry): %s", error)
                said = str(error)
                await asyncio.sleep(retry)
                continue
            if epoch is None:
                return False
            # the new epoch's fence; a write refused meanwhile because of this very epoch
            # (bumped in the thread while the loop ran on) was refused, not lost leadership
            self.core.store.fence(epoch, self._fence_refused)
            refused = self._refused_meanwhile or []
            if any(error.current != epoch for error in refused):
                return False
            if refused:
                log.warning("%d writes refused while taking the lock again", len(refused))
            self._lease_renewed(asked)
            self.role = Role("active", self.instance, epoch)
            log.info("active again: instance %s, epoch %d", self.instance, epoch)
            return True
        return False

    def _lease_read(self, state: LeaderState | None) -> None:
        """What /healthz and !status say of the pair: the lease as last read."""
        if state is not None:
            since = datetime.fromtimestamp(state.since, UTC)
            self.ha = HaStatus("postgresql", state.instance, since, state.epoch, state.standbys)

    def _lease_renewed(self, asked: float) -> None:
        """The lease was renewed by a request sent at ``asked`` (monotonic): the database
        stamped it no earlier, so it holds for ``ha_lease_timeout`` from then at least."""
        self._lease_holds_until = asked + self.config.ha_lease_timeout * SEND_SHARE_OF_LEASE

    def _may_send(self) -> bool:
        """Whether the chat networks may send now: always with SQLite; on PostgreSQL
        while the lease surely holds (a paused active wakes up unable to send)."""
        if self.leadership is None:
            return True
        return self.role.role == "active" and time.monotonic() < self._lease_holds_until

    def _fence_refused(self, error: NotLeaderError) -> None:
        """The store refused a write (its fence: another instance's epoch is current):
        the leadership is lost, whatever the lease's renewal says yet.  From the loop's
        thread at once (the send gate closes before the write's caller goes on), from the
        read worker's thread through the loop."""
        if threading.get_ident() != self._loop_thread and self._loop is not None:
            self._loop.call_soon_threadsafe(self._fence_refused, error)
            return
        if self._refused_meanwhile is not None:  # taking the lock again: decided there
            self._refused_meanwhile.append(error)
            return
        self._lost_leadership(f"a write was refused: {error}")

    def _lost_leadership(self, why: str = "the lease could not be renewed") -> None:
        """Another instance is active: drop the chat connections now (nothing more goes
        out), then stop with :data:`LOST_LEADERSHIP_STATUS`.  Once: later calls (the
        renewal failing too, further refused writes) do nothing."""
        if self._leadership_lost:
            return
        self._leadership_lost = True
        log.error(
            "leadership lost (another instance took over; %s): stopping at once, exit status %d",
            why,
            LOST_LEADERSHIP_STATUS,
        )
        self.role = Role("standby", self.instance, self.role.epoch)
        self._exit_status = LOST_LEADERSHIP_STATUS
        if self.bot is not None:
            self.bot.halt()
        if self.matrix is not None:
            self.matrix.halt()
        self.stop()

    async def _stop_networks(self) -> None:
        if self.matrix is not None:
            await self.matrix.stop()
        if self.bot is not None:
            await self.bot.stop("deploybot shutting down")

    async def _wait_for_stop(self) -> None:
        stop = asyncio.ensure_future(self._stop.wait())
        either: set[asyncio.Future[Any]] = {stop}
        if self.bot is not None:
            either.add(self.bot.failed)
        if self.matrix is not None:
            either.add(self.matrix.failed)
        await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()

    async def _cancel_tasks(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # --- freezes --------------------------------------------------------------------------
    def _start_freeze_calendar(self) -> None:
        """Fetch the freeze calendar now and then, if ``freeze_calendar`` is set; its last
        good copy (saved beside the database) is in force meanwhile."""
        url = self.config.freeze_calendar
        if not url:
            return
        database = self.config.database
        if isinstance(database, Path):
            cache = database.with_name(database.name + ".freeze-calendar.ics")
        else:  # PostgreSQL: beside bot.ini
            cache = self.ini.parent / "deploybot.freeze-calendar.ics"
        calendar = FreezeCalendar(self.core, url, cache)
        calendar.load_cache()
        self.spawn(calendar.run(), name="freeze-calendar")

    # --- bus -----------------------------------------------------------------------------
    def _bus_reactor(self) -> BusReactor:
        """The one :class:`BusReactor` every bus source feeds, created on first use."""
        if self.bus is None:
            self.bus = BusReactor(self.core, self.outbox, self.deploy_day)
            self.scheduler.add_job(
                self._flush_bus_log, "interval", seconds=BAD_MESSAGE_LOG_INTERVAL, id="bus-log"
            )
        return self.bus

    async def _flush_bus_log(self) -> None:
        """Tell the bad messages the rate limit held back (a coroutine: the loop's thread)."""
        if self.bus is not None:
            self.bus.flush_log()

    def _start_inbox(self) -> None:
        """PostgreSQL: act on the webhook events the standbys kept in the store (now, and
        every :data:`~deploybot.bus.inbox.DRAIN_SECONDS`).  With SQLite there are none."""
        if self.leadership is None:
            return
        self._bus_reactor()
        self._drain_inbox_now()
        self.scheduler.add_job(
            self._drain_inbox,
            "interval",
            seconds=DRAIN_SECONDS,
            id="event-inbox",
            coalesce=True,
            max_instances=1,
            misfire_grace_time=None,
        )

    async def _drain_inbox(self) -> None:
        """The scheduler's round (a coroutine: the loop's thread, which owns the store)."""
        self._drain_inbox_now()

    def _drain_inbox_now(self) -> None:
        if self.bus is not None and self._may_send():  # a paused active that woke: not
            taken = drain_inbox(self.core, self.bus)
            if taken:
                log.info("webhook inbox: %d queued events taken", taken)

    def _start_fedmsg(self) -> None:
        """Subscribe to the fedmsg endpoints, if any (after the firefight state is restored,
        so that bus events see which deploys are open)."""
        if not self.config.fedmsg_endpoints:
            return
        self.fedmsg = FedmsgSource.from_config(
            self.config, self._bus_reactor(), validator=self.fedmsg_validator
        )
        self.spawn(self.fedmsg.run(), name="fedmsg")

    def _start_amqp(self) -> None:
        """Consume fedora-messaging from the AMQP broker, if ``amqp_url`` is set."""
        config = self.config
        if not config.amqp_url:
            return
        self.amqp = AmqpSource(
            config.amqp_url,
            config.amqp_queue,
            config.amqp_bindings,
            self._bus_reactor(),
            prefix=config.fedmsg_topic_prefix,
        )
        self.spawn(self.amqp.run(), name="amqp")

    async def _close_amqp(self) -> None:
        if self.amqp is not None:
            await self.amqp.close()

    def _start_publishing(self) -> None:
        """With ``amqp_publish``, deploybot's events go to the broker through the store's
        bus outbox (:mod:`deploybot.publish`): messages an earlier run left unconfirmed
        first, in their order.  Before anything can decide to publish."""
        config = self.config
        store = self.core.store
        if not config.amqp_publish:
            left = len(store.pending_bus_messages())
            if left:
                log.warning(
                    "%d bus messages wait in the store; amqp_publish is off, so they stay", left
                )
            return
        self.publisher = AmqpPublisher(config.amqp_url, store.confirm_bus_messages)
        self.core.bus_outbox = BusOutbox(
            store,
            prefix=config.fedmsg_topic_prefix,
            environment=config.fedmsg_environment,
            clock=self.clock,
            transport=self.publisher,
        )
        resumed = self.core.bus_outbox.resume()
        if resumed:
            log.info("%d bus messages left unconfirmed are published again", resumed)
        self.spawn(self.publisher.run(), name="amqp-publisher")

    async def _close_publisher(self) -> None:
        if self.publisher is not None:
            await self.publisher.close()

    # --- web -----------------------------------------------------------------------------
    async def _start_web(self) -> bool:
        """Serve SPEC §6 on ``web_host:web_port`` (``web_port = 0``: no web server); the
        webhook feeds the same :class:`BusReactor` as the bus sources.  False (logged,
        naming ``web_host:web_port``) when the server cannot listen."""
        config = self.config
        if config.web_port == 0:
            return True
        try:
            read_token = load_read_token(config.web_read_token_file)
        except ConfigError as error:
            log.error("%s: %s", self.ini, error)
            return False
        web = WebServer(
            self.core,
            self._bus_reactor(),
            host=config.web_host,
            port=config.web_port,
            irc_status=self.bot.status if self.bot is not None else None,
            network_status=self._network_status,
            read_token=read_token,
            role=lambda: self.role,
        )
        try:
            await web.start()
        except WebStartError as error:
            log.error(
                "%s; is another process using it? set web_port in [deploybot] of %s "
                "(0: no web server)",
                error,
                self.ini,
            )
            return False
        self.web = web
        return True

    def _network_status(self) -> NetworkStatuses:
        """Every chat network's status, for /healthz and /metrics."""
        statuses: NetworkStatuses = {}
        if self.bot is not None:
            statuses["irc"] = self.bot.status()
        if self.matrix is not None:
            statuses[MATRIX] = self.matrix.status()
        return statuses

    async def _stop_web(self) -> None:
        if self.web is not None:
            await self.web.stop()

    # --- plans ---------------------------------------------------------------------------
    async def _watch_plans(self) -> None:
        """Reload when a plan file changed on disk (edits take effect without a command).

        A coroutine function so that the scheduler runs it in the loop's thread (it uses the
        store and the outbox), not in a worker thread as it would a plain function."""
        fingerprint = self.core.book.fingerprint()
        if fingerprint != self._fingerprint or self.core.freezes.changed():
            log.info("plan or freeze files changed on disk; reloading")
            self._report_problems(await self.core.reload_plans())

    def _plans_reloaded(self, report: ReloadReport) -> None:
        self._fingerprint = self.core.book.fingerprint()
        self.poster.post_due()
        self._countdowns_probed()
        count = self.poster.reschedule(self.scheduler)
        self.deploy_day.plans_changed(self.scheduler)
        log.info("plans: %s; %d countdowns scheduled", report.summary(), count)

    def _countdowns_probed(self) -> None:
        """Post the due countdowns that run the drift probe first (post_due leaves them)."""
        self.spawn(self.poster.sweep(), name="countdown-sweep")

    def _report_problems(self, report: ReloadReport) -> None:
        if not report.problems:
            return
        for problem in report.problems:
            log.warning("plan problem: %s", problem)
        admin = self.config.admin_channel
        for line in (
            f"plan problems: {report.summary()}",
            *report.problem_lines(self.core.book.directory),
        ):
            if self.bot is not None:
                self.bot.outbox.post(admin, line)
            if self.matrix is not None:
                self.matrix.post(admin, line)


#: Where APScheduler logs a job's exception (its default executor).
_JOB_LOG = logging.getLogger("apscheduler.executors.default")


def _quiet_refusals(record: logging.LogRecord) -> bool:
    """A job that failed because the fence refused its write is not logged with its
    traceback (:meth:`Application._fence_refused` has said what happened, once)."""
    error = record.exc_info[1] if record.exc_info else None
    return not isinstance(error, NotLeaderError)


def _present_as_active(leadership: Leadership) -> LeaderState | None:
    """(A worker thread.) Renew the active's presence and read the lease with the
    standby count; None, logged, when the database did not answer (the lease's renewal
    says whether leadership holds, not this)."""
    try:
        leadership.mark_present("active")
        return leadership.state()
    except Exception as error:
        log.warning("presence not renewed: %s", error)
        return None


def run(ini: Path) -> int:
    """Entry point of ``deploybot run``."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    app = Application(ini)
    return asyncio.run(app.run())
