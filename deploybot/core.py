"""The application's domain state, passed to everything that needs it.

One :class:`Core` per running bot (no module-level singletons): the validated config,
the store, the plans in force, the freezes, the clock, the drift probe's runner and
where bus messages go.
Adapters hold a reference to it; tests build their own with a clock they drive.

The core knows nothing of a transport: what needs one (sending pages, opening channels)
is composed beside it by the application and handed to those who act.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TypeVar

from deploybot.casemapping import DEFAULT
from deploybot.config import Address, Config
from deploybot.drift.runs import DriftRunner, drift_state
from deploybot.health import HaStatus, NetworkStatuses
from deploybot.plans.book import PlanBook, ReloadReport
from deploybot.plans.freezes import FreezeBook, FreezeStanding
from deploybot.plans.model import Plan
from deploybot.plans.policy import Readiness, assess
from deploybot.publish import BusMessage, BusOutbox
from deploybot.store import ReadWorker, Store

_T = TypeVar("_T")


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Core:
    config: Config
    store: Store
    book: PlanBook
    clock: Callable[[], datetime] = utc_now
    #: Called after every reload (e.g. to reschedule countdowns).
    plan_listeners: list[Callable[[ReloadReport], None]] = field(default_factory=list)
    #: The infrastructure freezes in force (none unless the config names a file or feed).
    freezes: FreezeBook = field(default_factory=FreezeBook)
    #: Runs the drift probe (``!drift``, the countdowns' runs): the application composes it
    #: with the HTTP fetcher; None where nothing may fetch (the stored runs are still read).
    drift: DriftRunner | None = None
    #: Where messages for the bus go (``amqp_publish``); None: nothing is published.
    bus_outbox: BusOutbox | None = None
    #: Where reads that may take long (a big day's digest) run, off the loop, on a
    #: connection of their own (the application's); None: on :attr:`store`, in the loop
    #: (tests, the command line).
    reads: ReadWorker[Store] | None = None
    #: Which instance is active, since when, how many standbys (``/healthz``'s ``ha``,
    #: ``!status``): the application's; None where nobody runs one (tests, the command line).
    ha_status: Callable[[], HaStatus] | None = None
    #: Every chat network's status by name (``!status``; ``/healthz`` gets the same from the
    #: application): None where the bot is on no network.
    network_status: Callable[[], NetworkStatuses] | None = None

    @property
    def plans(self) -> tuple[Plan, ...]:
        return self.book.plans

    def now(self) -> datetime:
        return self.clock()

    async def read(self, read: Callable[[Store], _T]) -> _T:
        """``read(store)`` off the loop in :attr:`reads` (a store of its own: the read
        must not write, and sees what was committed), or on :attr:`store` without one."""
        if self.reads is None:
            return read(self.store)
        return await self.reads.run(read)

    def with_store(self, store: Store) -> Core:
        """This core reading ``store`` (for code that takes a core, run by :meth:`read`)."""
        return replace(self, store=store)

    async def reload_plans(self) -> ReloadReport:
        """Reload the plan files and the freezes file (read in a worker thread: the loop
        goes on meanwhile) and tell every listener what changed; the freezes file's
        problems are in the report too (it keeps its last good version)."""
        report = await self.book.reload_in_worker()
        freeze_problems = await asyncio.to_thread(self.freezes.reload)
        if freeze_problems:
            report = replace(report, problems=(*report.problems, *freeze_problems))
        for listener in self.plan_listeners:
            listener(report)
        return report

    def publish(self, message: BusMessage) -> None:
        """Publish ``message`` on the bus if the bot publishes (``amqp_publish``): stored
        in the caller's transaction, sent once it commits (:mod:`deploybot.publish`)."""
        if self.bus_outbox is not None:
            self.bus_outbox.publish(message)

    def is_admin(
        self,
        account: str | None,
        mask: str,
        casemapping: str = DEFAULT,
        address: Address | None = None,
    ) -> bool:
        """Admins are services accounts, host masks or network addresses from the config,
        never bare nicks or display names; names compare with the server's
        ``casemapping`` (:mod:`deploybot.casemapping`); a sender with an ``address`` (from
        a network other than IRC) is matched by address rules only."""
        return self.config.is_admin(account, mask, casemapping, address)

    def freeze_standing(self, plan: Plan) -> FreezeStanding:
        """Where ``plan``'s window stands against the freezes (:func:`freeze_standing`)."""
        return freeze_standing(plan, self.freezes, self.store)

    def readiness(self, plan: Plan) -> Readiness:
        """The policy's verdict on ``plan`` (SPEC §2) with the freeze rule and, for a plan
        with probes, ``no-undeclared-drift`` from its latest stored drift run."""
        return assess(
            plan,
            self.config.notice_days,
            self.freeze_standing(plan),
            drift_state(self.store, plan),
        )


def freeze_standing(plan: Plan, freezes: FreezeBook, store: Store | None) -> FreezeStanding:
    """Where ``plan``'s window stands against ``freezes``: the ones it overlaps, its
    exemption, and its freeze break from ``store`` (approved, or open; None: no store, so
    no freeze break is known)."""
    over = freezes.over(plan.when, plan.end)
    exempt = plan.freeze_exempt.reason if plan.freeze_exempt is not None else None
    found = store.freeze_break_for(plan.id) if over and store is not None else None
    if found is None:
        return FreezeStanding(plan.id, over, exempt)
    if found.approved:
        return FreezeStanding(
            plan.id, over, exempt, approved_break=found.number, approvers=found.approvers
        )
    return FreezeStanding(
        plan.id, over, exempt, open_break=found.number, open_approvers=found.approvers
    )
