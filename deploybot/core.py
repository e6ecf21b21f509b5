"""The application's domain state, passed to everything that needs it.

One :class:`Core` per running bot (no module-level singletons): the validated config,
the store, the plans in force and the clock.  Adapters hold a reference to it; tests
build their own with a clock they drive.

The core knows nothing of a transport: what needs one (sending pages, opening channels)
is composed beside it by the application and handed to those who act.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from deploybot.casemapping import DEFAULT
from deploybot.config import Config
from deploybot.plans.book import PlanBook, ReloadReport
from deploybot.plans.model import Plan
from deploybot.store import Store


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

    @property
    def plans(self) -> tuple[Plan, ...]:
        return self.book.plans

    def now(self) -> datetime:
        return self.clock()

    async def reload_plans(self) -> ReloadReport:
        """Reload the plan files (read in a worker thread: the loop goes on meanwhile) and
        tell every listener what changed."""
        report = await self.book.reload_in_worker()
        for listener in self.plan_listeners:
            listener(report)
        return report

    def is_admin(self, account: str | None, mask: str, casemapping: str = DEFAULT) -> bool:
        """Admins are services accounts or host masks from the config, never bare nicks;
        names compare with the server's ``casemapping`` (:mod:`deploybot.casemapping`)."""
        return self.config.is_admin(account, mask, casemapping)
