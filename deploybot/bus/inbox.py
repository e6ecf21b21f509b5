"""The webhook's inbox, drained by the active instance of an active/standby pair (issue 14,
SPEC §8).

A standby accepts a signed webhook event as the active one would (the same checks:
:func:`deploybot.web.api.webhook_document`) but acts on nothing: it keeps the event in the
store (:meth:`~deploybot.store.Store.queue_event`) and answers 202 ``"queued": true``.
The active instance calls :func:`drain_inbox` at takeover and then every
:data:`DRAIN_SECONDS`: each queued event, in the order it arrived, goes to the same
:meth:`BusReactor.handle <deploybot.bus.reactor.BusReactor.handle>` as a webhook event,
and is deleted from the inbox **in the transaction of what it caused** (its deploy events,
posts, bus messages and its seen id).  So a queued event is never lost (a kill -9 before
the commit leaves it queued with nothing done) and acted on once (after the commit it is
gone; two instances draining at once take it once: the delete comes first, under the
store's write lock).

An event that no longer decodes, or whose acting fails with something else than the store
being unavailable, is logged once and deleted; one queued more than
:data:`INBOX_KEPT` ago is dropped with a warning (its id would no longer be recognised as
a repeat).  When the store is unavailable the event stays queued and the drain stops until
the next round.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from deploybot.bus.events import BadMessage, from_webhook
from deploybot.bus.reactor import SEEN_IDS_KEPT
from deploybot.lines import one_line
from deploybot.store import QueuedEvent, StoreUnavailableError

if TYPE_CHECKING:
    from deploybot.bus.reactor import BusReactor
    from deploybot.core import Core

log = logging.getLogger(__name__)

#: How often the active instance looks for queued events.
DRAIN_SECONDS = 1.0
#: At most this many events are acted on per round.
DRAIN_BATCH = 100
#: A queued event older than this is dropped, not acted on.
INBOX_KEPT = SEEN_IDS_KEPT


def drain_inbox(core: Core, reactor: BusReactor, *, limit: int = DRAIN_BATCH) -> int:
    """Act on the events waiting in the store's inbox (at most ``limit``), oldest first;
    how many were taken from it (acted on, repeats, dropped)."""
    store = core.store
    now = core.now()
    taken = 0
    for queued in store.queued_events(limit):
        if queued.received_at < now - INBOX_KEPT:
            log.warning(
                "webhook inbox: event %s (%s) from %s waited since %s, more than a day: "
                "dropped, not acted on",
                one_line(queued.id),
                one_line(queued.topic),
                queued.source,
                queued.received_at.isoformat(),
            )
            taken += store.take_queued_event(queued.seq)
            continue
        try:
            taken += _act(core, reactor, queued)
        except StoreUnavailableError as error:
            log.warning(
                "webhook inbox: event %s (%s) stays queued, the store is unavailable: %s",
                one_line(queued.id),
                one_line(queued.topic),
                error,
            )
            break
    return taken


def _act(core: Core, reactor: BusReactor, queued: QueuedEvent) -> bool:
    """Act on one queued event and take it from the inbox, in one transaction; False when
    another instance took it first."""
    store = core.store
    reactor.stats.count_received("webhook")
    try:
        event = from_webhook(
            queued.body.encode("utf-8"),
            prefix=core.config.fedmsg_topic_prefix,
            max_bytes=max(len(queued.body.encode("utf-8")), 1),
        )
    except BadMessage as error:
        reactor.reject(error, queued.source)  # counted and logged, as any bad message
        return store.take_queued_event(queued.seq)
    before = reactor.duplicates
    try:
        with store.transaction():
            if not store.take_queued_event(queued.seq):
                return False
            facts = reactor.handle(event)
    except StoreUnavailableError:
        reactor.forget_recent(event.id)  # not committed: the next round acts on it
        raise
    except Exception:
        reactor.forget_recent(event.id)
        log.exception(
            "webhook inbox: acting on event %s (%s) from %s failed: dropped",
            one_line(event.id),
            one_line(event.topic),
            queued.source,
        )
        return store.take_queued_event(queued.seq)
    names = [type(fact).__name__ for fact in facts]
    log.info(
        "webhook (queued by a standby): %s %s from %s: %s",
        one_line(event.topic),
        one_line(event.id),
        queued.source,
        ", ".join(names) or ("repeat" if reactor.duplicates > before else "no fact"),
    )
    return True
