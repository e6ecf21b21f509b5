"""What the bot does with a bus event: the one entry point every source calls.

fedmsg (ZeroMQ), fedora-messaging (AMQP) and the HTTP webhook all decode into a
:class:`~deploybot.bus.events.BusEvent` and hand it to :meth:`BusReactor.handle`, which turns
it into deploy facts (:func:`~deploybot.bus.rules.interpret`) and acts on them (SPEC §5):

* a playbook start on the plan's day opens firefighting (idempotent), and
  "deploy of SERVICE started by USER" goes to the admin and firefighting channels;
* a playbook complete says "finished ok" or "finished with failures on HOST…";
* a production run of a planned service outside its window is "⚠ unplanned deploy" in
  the admin channel;
* a start during an infrastructure freeze without an approved freeze break (or an
  outage-fix exemption) also says "⚠ deploy during the F42 Final freeze without an
  approved freeze break" in the admin channel.

Each of those facts is recorded on its deploy (:meth:`~deploybot.store.Store.record_deploy_event`,
at the event's time) before it is said: the post-mortem's timeline reads them.  A
planned start and finish are also published on the bus (``deploybot.deploy.start`` /
``.complete``, :meth:`Core.publish <deploybot.core.Core.publish>`) in the same transaction.

:meth:`BusReactor.reject` counts and logs (rate-limited) a message that did not decode.
Nothing a message holds makes either raise: a bad message never stops the bot.  The one
exception :meth:`BusReactor.handle` lets out is
:class:`~deploybot.store.StoreUnavailableError`: an action could not be recorded (the
database is locked, the disk is full), the facts after it were not acted on, and the event
is **not** remembered, so that the source can have it sent again (the webhook answers 503,
AMQP requeues it) and the retry does the whole of it.

The same message twice (the same non-empty :attr:`~deploybot.bus.events.BusEvent.id`, from
any source: a publisher retrying, a redelivery after a reconnect or a restart, the fedmsg
and AMQP copies of one bridged message, a replayed webhook) is acted on once.  An event is
remembered only once its actions are done: in memory (the ids of the last
:data:`RECENT_IDS` events handled), and, when it meant facts, in the store for
:data:`SEEN_IDS_KEPT` (a day), so a repeat after a restart is recognised too.  A repeat is
only counted (:attr:`BusReactor.duplicates`).
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from deploybot.bus.events import BadMessage, BusEvent
from deploybot.bus.rules import (
    BusStats,
    DeployFact,
    DeployFinished,
    DeployStarted,
    OpenFirefighting,
    RateLimitedLog,
    UnplannedDeploy,
    event_time,
    fact_text,
    interpret,
)
from deploybot.deployday.busmessages import deploy_finished, deploy_started
from deploybot.deployday.roster import firefight_channel
from deploybot.lines import one_line
from deploybot.store import StoreUnavailableError

if TYPE_CHECKING:
    from deploybot.core import Core
    from deploybot.deployday.day import DeployDay
    from deploybot.outbox import Outbox

log = logging.getLogger(__name__)

BAD_MESSAGE_LOG_INTERVAL = 60.0
#: How many recent event ids are remembered to drop repeats of a message.
RECENT_IDS = 4096
#: How long the store remembers the id of an event that was acted on.
SEEN_IDS_KEPT = timedelta(days=1)
#: A user name recorded on a deploy is cut to this many characters.
MAX_USER = 64
#: The deploy event (:meth:`~deploybot.store.Store.record_deploy_event`) of each fact.
_EVENT_KINDS: dict[type, str] = {
    DeployStarted: "playbook-start",
    DeployFinished: "playbook-finish",
    UnplannedDeploy: "unplanned",
}


class BusReactor:
    """Acts on bus events for one bot; ``deploy_day`` opens firefighting (None: the facts
    are only posted in the admin channel)."""

    def __init__(self, core: Core, outbox: Outbox, deploy_day: DeployDay | None = None) -> None:
        self.core = core
        self.outbox = outbox
        self.deploy_day = deploy_day
        self.stats = BusStats()
        self.bad_log = RateLimitedLog(log, BAD_MESSAGE_LOG_INTERVAL)
        #: Events dropped because their id was among the last :data:`RECENT_IDS`.
        self.duplicates = 0
        self._recent: OrderedDict[str, None] = OrderedDict()

    def reject(self, error: BadMessage, origin: str = "") -> None:
        """A message that could not be decoded: count it, log it (rate-limited), drop it."""
        self.stats.count_dropped(error)
        self.bad_log.dropped(error, time.monotonic(), origin)

    def flush_log(self) -> int:
        """Log the drops the rate limit still holds back (call it every
        :data:`BAD_MESSAGE_LOG_INTERVAL`: a burst followed by silence is told too); the
        number of lines logged."""
        return self.bad_log.flush(time.monotonic())

    def handle(self, event: BusEvent, now: datetime | None = None) -> list[DeployFact]:
        """Act on ``event``; return the facts it meant (empty for unrelated traffic, and for
        a repeat of an event already acted on).

        Raises :class:`~deploybot.store.StoreUnavailableError` when an action could not be
        recorded: the event is then not remembered (see the module documentation)."""
        now = now or self.core.now()
        self.stats.count_decoded()
        if self._recently_seen(event.id):
            return self._repeat(event)
        config = self.core.config
        try:
            facts = list(
                interpret(event, self.core.plans, now, config.fedmsg_environment, config.timezone)
            )
        except Exception:
            log.exception("bus event %s (%s) could not be interpreted", event.id, event.topic)
            return []
        store = self.core.store
        if facts and event.id and store.event_seen(event.id, now - SEEN_IDS_KEPT):
            self._remember_recent(event.id)
            return self._repeat(event)
        with store.transaction():  # what it caused and that it was seen: kept together
            for fact in facts:
                try:
                    with store.transaction():
                        self._act(fact, now)
                except StoreUnavailableError as error:
                    log.warning(
                        "bus event %s (%s): %s failed (%s); not remembered, so a redelivery"
                        " acts on it again",
                        event.id or "(no id)",
                        event.topic,
                        type(fact).__name__,
                        error,
                    )
                    raise
                except Exception:
                    log.exception("acting on %r failed", type(fact).__name__)
            if facts and event.id:
                store.remember_event(event.id, now, forget_before=now - SEEN_IDS_KEPT)
        self._remember_recent(event.id)
        self.stats.count_facts(facts)
        return facts

    def _repeat(self, event: BusEvent) -> list[DeployFact]:
        self.duplicates += 1
        log.debug("bus event %s (%s) seen before: ignored", event.id, event.topic)
        return []

    def _recently_seen(self, event_id: str) -> bool:
        """Whether ``event_id`` is among the recent ids (made most recent); never ``""``."""
        if event_id and event_id in self._recent:
            self._recent.move_to_end(event_id)
            return True
        return False

    def forget_recent(self, event_id: str) -> None:
        """Forget ``event_id`` among the recent ids: a caller's transaction around
        :meth:`handle` (the webhook's inbox) rolled back, so its actions are not kept."""
        self._recent.pop(event_id, None)

    def _remember_recent(self, event_id: str) -> None:
        if not event_id:
            return
        self._recent[event_id] = None
        self._recent.move_to_end(event_id)
        if len(self._recent) > RECENT_IDS:
            self._recent.popitem(last=False)

    def _act(self, fact: DeployFact, now: datetime) -> None:
        config = self.core.config
        firefight = self.deploy_day.firefight if self.deploy_day is not None else None
        if isinstance(fact, OpenFirefighting):
            if firefight is not None and now < fact.plan.end:
                firefight.open(fact.plan, now, reason=f"bus: {fact.event.short_topic}")
            return
        text = fact_text(fact, config.timezone)
        self._record(fact, now, text)
        self._publish(fact, now)
        targets = [config.admin_channel]
        if isinstance(fact, DeployStarted | DeployFinished):
            channel = firefight_channel(fact.plan, config)
            if (
                firefight is not None
                and firefight.is_open(fact.plan)
                and channel is not None
                and channel.lower() != config.admin_channel.lower()
            ):
                targets.append(channel)
        elif not isinstance(fact, UnplannedDeploy):
            return
        for target in targets:  # one refusing target does not silence the others
            try:
                self.outbox.post(target, text)
            except StoreUnavailableError:
                raise  # not stored: the event is not remembered either
            except Exception:
                log.exception("posting a bus fact to %s failed", target)
        log.info("bus: %s", text)
        if isinstance(fact, DeployStarted):
            self._freeze_warning(fact, now)

    def _record(self, fact: DeployFact, now: datetime, text: str) -> None:
        """Record the fact on its deploy (for the post-mortem's timeline), at the event's
        time, before anything is posted: a fact that cannot be recorded is not said."""
        kind = _EVENT_KINDS.get(type(fact))
        if kind is None:
            return
        user = one_line(getattr(fact, "user", ""))[:MAX_USER]
        at = event_time(fact.event, now)
        self.core.store.record_deploy_event(fact.plan.id, kind, at, nick=user, text=text)

    def _publish(self, fact: DeployFact, now: datetime) -> None:
        """``deploybot.deploy.start`` / ``.complete`` on the bus (when the bot publishes),
        in the fact's transaction."""
        at = event_time(fact.event, now)
        config = self.core.config
        if isinstance(fact, DeployStarted):
            self.core.publish(
                deploy_started(fact.plan, config, user=fact.user, playbook=fact.playbook, at=at)
            )
        elif isinstance(fact, DeployFinished):
            self.core.publish(
                deploy_finished(
                    fact.plan,
                    config,
                    user=fact.user,
                    playbook=fact.playbook,
                    at=at,
                    ok=fact.ok,
                    has_results=fact.has_results,
                    failed_hosts=fact.failed_hosts,
                )
            )

    def _freeze_warning(self, fact: DeployStarted, now: datetime) -> None:
        """A deploy started during a freeze without an approved freeze break (nor an
        outage-fix exemption): say it in the admin channel, and record it on the deploy."""
        standing = self.core.freeze_standing(fact.plan)
        at = event_time(fact.event, now)
        if standing.cleared or not any(f.covers(at) for f in standing.freezes):
            return
        names = ", ".join(f.name for f in standing.freezes if f.covers(at))
        text = f"⚠ deploy during the {names} without an approved freeze break"
        by = one_line(fact.user)[:MAX_USER]
        self.core.store.record_deploy_event(fact.plan.id, "freeze-warning", at, nick=by, text=text)
        log.warning("bus: %s (%s)", text, fact.plan.id)
        try:
            self.outbox.post(self.core.config.admin_channel, f"{text} ({fact.plan.id})")
        except Exception:
            log.exception("posting the freeze warning failed")
