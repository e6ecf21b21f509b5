"""What happened to a deploy, beside its incidents and pages (``deploy_events``): the
playbook's start and finish from the bus, firefighting opened and closed, a deploy during
a freeze without an approved freeze break.  The post-mortem's timeline reads them."""

from __future__ import annotations

from datetime import datetime

from deploybot.store.base import StoreBase, db_time, from_db
from deploybot.store.records import DeployEvent

__all__ = ["DeployEventTable"]


class DeployEventTable(StoreBase):
    """The deploy-event methods of :class:`~deploybot.store.Store`."""

    def record_deploy_event(
        self, plan_id: str, kind: str, now: datetime, *, nick: str = "", text: str = ""
    ) -> None:
        """Record that ``kind`` happened to the deploy ``plan_id`` at ``now``."""
        with self._write() as db:
            db.execute(
                "INSERT INTO deploy_events (plan_id, at, kind, nick, text) VALUES (?, ?, ?, ?, ?)",
                (plan_id, db_time(now), kind, nick, text),
            )

    def deploy_events(self, plan_id: str) -> tuple[DeployEvent, ...]:
        """The events of ``plan_id``, oldest first."""
        rows = self._db.execute(
            "SELECT at, kind, nick, text FROM deploy_events WHERE plan_id = ? ORDER BY at, id",
            (plan_id,),
        )
        return tuple(
            DeployEvent(at=from_db(row["at"]), kind=row["kind"], nick=row["nick"], text=row["text"])
            for row in rows
        )
