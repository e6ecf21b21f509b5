"""Deploy day of a connected bot, composed outside :class:`~deploybot.core.Core`.

One :class:`DeployDay` per running bot, built by the application once the transport's
:class:`~deploybot.outbox.Outbox` exists, from the core and that outbox.  It holds the
:class:`~deploybot.deployday.paging.Pager` (pages, escalation) and the
:class:`~deploybot.deployday.firefight.Firefight` that sends its pages through it, and
is handed to whoever acts on deploy day: the commands (``Request.deploy_day``), the bus
reactor and the digest poster.  Without a transport (``deploybot check``, the CLI) there
is none (``None``), and the deploy-day commands that must send something answer "the bot
is not connected".

The core knows nothing of it: ``core`` → ``deployday`` is the only direction.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from deploybot.deployday.firefight import Firefight
from deploybot.deployday.paging import Pager

if TYPE_CHECKING:
    from apscheduler.schedulers.base import BaseScheduler

    from deploybot.core import Core
    from deploybot.outbox import AccountLookup, Outbox

__all__ = ["DeployDay"]


class DeployDay:
    """The firefighting channels and the pages of one bot; see the module documentation."""

    def __init__(self, core: Core, outbox: Outbox, accounts: AccountLookup | None = None) -> None:
        self.core = core
        self.outbox = outbox
        #: Pages, ``!page`` and escalation (through the same outbox); each page stores its
        #: target's services account when ``accounts`` knows it.
        self.pager = Pager(core, outbox, accounts)
        #: The firefighting channels' life; it pages through :attr:`pager`.
        self.firefight = Firefight(core, outbox, self.pager)

    def start(self, scheduler: BaseScheduler) -> None:
        """At start-up: escalate on time (date jobs for the pages already pending and the
        ones to come), rejoin running deploys' channels and open or close what is due,
        then sweep again at each future plan start and end."""
        self.pager.schedule_escalations(scheduler)
        self.firefight.sweep()
        self.firefight.reschedule(scheduler)

    def plans_changed(self, scheduler: BaseScheduler) -> None:
        """After a plan reload: open or close what is now due, and move the date jobs."""
        self.firefight.sweep()
        self.firefight.reschedule(scheduler)
