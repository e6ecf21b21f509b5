"""What the bot does with a bus event: the one entry point every source calls.

fedmsg (ZeroMQ), fedora-messaging (AMQP) and the HTTP webhook all decode into a
:class:`~deploybot.bus.events.BusEvent` and hand it to :meth:`BusReactor.handle`, which turns
it into deploy facts (:func:`~deploybot.bus.rules.interpret`) and acts on them (SPEC §5):

* a playbook start on the plan's day opens firefighting (idempotent), and
  "deploy of SERVICE started by USER" goes to the admin and firefighting channels;
* a playbook complete says "finished ok" or "finished with failures on HOST…";
* a production run of a planned service outside its window is "⚠ unplanned deploy" in
  the admin channel.

:meth:`BusReactor.reject` counts and logs (rate-limited) a message that did not decode.
Neither ever raises: a bad message never stops the bot.

The same message twice (the same non-empty :attr:`~deploybot.bus.events.BusEvent.id`, from
any source: a publisher retrying, a redelivery after a reconnect, the fedmsg and AMQP
copies of one bridged message) is acted on once: the ids of the last :data:`RECENT_IDS`
events are remembered, and a repeat is only counted (:attr:`BusReactor.duplicates`).
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from datetime import datetime
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
    fact_text,
    interpret,
)
from deploybot.deployday.roster import firefight_channel

if TYPE_CHECKING:
    from deploybot.core import Core
    from deploybot.deployday.day import DeployDay
    from deploybot.outbox import Outbox

log = logging.getLogger(__name__)

BAD_MESSAGE_LOG_INTERVAL = 60.0
#: How many recent event ids are remembered to drop repeats of a message.
RECENT_IDS = 4096


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
        a repeat of a recent event id)."""
        now = now or self.core.now()
        self.stats.count_decoded()
        if self._seen(event.id):
            self.duplicates += 1
            log.debug("bus event %s (%s) seen before: ignored", event.id, event.topic)
            return []
        config = self.core.config
        try:
            facts = list(
                interpret(event, self.core.plans, now, config.fedmsg_environment, config.timezone)
            )
        except Exception:
            log.exception("bus event %s (%s) could not be interpreted", event.id, event.topic)
            return []
        self.stats.count_facts(facts)
        for fact in facts:
            try:
                self._act(fact, now)
            except Exception:
                log.exception("acting on %r failed", type(fact).__name__)
        return facts

    def _seen(self, event_id: str) -> bool:
        """Whether ``event_id`` is among the recent ids (and remember it); never for ``""``."""
        if not event_id:
            return False
        if event_id in self._recent:
            self._recent.move_to_end(event_id)
            return True
        self._recent[event_id] = None
        if len(self._recent) > RECENT_IDS:
            self._recent.popitem(last=False)
        return False

    def _act(self, fact: DeployFact, now: datetime) -> None:
        config = self.core.config
        firefight = self.deploy_day.firefight if self.deploy_day is not None else None
        if isinstance(fact, OpenFirefighting):
            if firefight is not None and now < fact.plan.end:
                firefight.open(fact.plan, now, reason=f"bus: {fact.event.short_topic}")
            return
        text = fact_text(fact, config.timezone)
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
            except Exception:
                log.exception("posting a bus fact to %s failed", target)
        log.info("bus: %s", text)
