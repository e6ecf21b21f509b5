"""Drift runs with the store: run a plan's probes once at a time, keep every run, read the
latest back (for ``!drift``, the readiness rule, countdowns, the API and the web page).

The fetching is given as a function (:data:`Fetch`, the adapter
``deploybot_plugins.drift``): nothing here does network I/O.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta

from deploybot.drift.report import DriftRun, Fetched, judge
from deploybot.errors import DeploybotError
from deploybot.plans.model import Plan
from deploybot.plans.policy import DriftState
from deploybot.store import Store

__all__ = ["REUSE_WITHIN", "DriftRunner", "Fetch", "drift_state", "drift_states", "latest_run"]

log = logging.getLogger(__name__)

#: What the adapter does: ask staging and production every probe of a plan.
Fetch = Callable[[Plan], Awaitable[Sequence[Fetched]]]

#: ``!drift`` answers with the latest run when it is younger than this, instead of asking
#: staging and production again (so a channel cannot make the bot hammer them).
REUSE_WITHIN = timedelta(minutes=1)


def latest_run(store: Store, plan_id: str) -> DriftRun | None:
    """The plan's latest stored run, or None (also for a stored report that does not read
    back, which is logged)."""
    stored = store.latest_drift_run(plan_id)
    if stored is None:
        return None
    try:
        return DriftRun.loads(stored.report)
    except (ValueError, KeyError, TypeError):
        log.exception("drift run %d of %s does not read back; ignored", stored.id, plan_id)
        return None


def drift_state(store: Store, plan: Plan) -> DriftState | None:
    """What the readiness rule needs of the plan's latest run (None: no run, or no probes)."""
    if not plan.probes:
        return None
    run = latest_run(store, plan.id)
    return None if run is None else run.state()


def drift_states(store: Store, plans: Iterable[Plan]) -> dict[str, DriftState]:
    """:func:`drift_state` of each plan that has one, by plan id."""
    states = {plan.id: drift_state(store, plan) for plan in plans}
    return {plan_id: state for plan_id, state in states.items() if state is not None}


class DriftRunner:
    """Runs a plan's probes and stores the run; one run per plan at a time (a second
    caller meanwhile gets the same run)."""

    def __init__(self, store: Store, fetch: Fetch, clock: Callable[[], datetime]) -> None:
        self.store = store
        self.fetch = fetch
        self.clock = clock
        self._running: dict[str, asyncio.Task[DriftRun]] = {}

    async def run(self, plan: Plan) -> DriftRun:
        """Ask staging and production; judge, store and return the run.  A plan without
        probes is a :class:`~deploybot.errors.DeploybotError`."""
        if not plan.probes:
            raise DeploybotError(
                f"{plan.id} has no probes: list GET paths under probes: in its plan"
            )
        task = self._running.get(plan.id)
        if task is None:
            task = asyncio.ensure_future(self._run(plan))
            self._running[plan.id] = task
            task.add_done_callback(lambda _: self._running.pop(plan.id, None))
        return await asyncio.shield(task)

    async def _run(self, plan: Plan) -> DriftRun:
        started = self.clock()
        fetched = await self.fetch(plan)
        run = judge(plan, fetched, started)
        self.store.record_drift_run(plan.id, run.ran_at, run.verdict, run.dumps())
        log.info("drift run of %s: %s", plan.id, run.summary(UTC))
        return run

    def recent(self, plan: Plan, now: datetime) -> DriftRun | None:
        """The latest run when younger than :data:`REUSE_WITHIN`, else None."""
        run = latest_run(self.store, plan.id)
        if run is None or now - run.ran_at >= REUSE_WITHIN:
            return None
        return run

    async def close(self) -> None:
        """Cancel the runs under way (at shutdown)."""
        tasks = list(self._running.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
