"""The drift probe's runs in :class:`~deploybot.store.Store` (``drift_runs``): each run of
a plan's probes with its time and its report, a JSON document the store keeps as it is
given (:mod:`deploybot.drift.report` writes and reads it)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from deploybot.store.base import StoreBase, db_time, from_db

__all__ = ["KEPT_RUNS", "DriftRunTable", "StoredDriftRun"]

#: Runs kept per plan; older ones are removed when a new one is recorded.
KEPT_RUNS = 50


@dataclass(frozen=True)
class StoredDriftRun:
    id: int
    plan_id: str
    ran_at: datetime
    verdict: str
    report: str


class DriftRunTable(StoreBase):
    """The drift-run methods of :class:`~deploybot.store.Store`."""

    def record_drift_run(self, plan_id: str, ran_at: datetime, verdict: str, report: str) -> int:
        """Store a run (``report``: JSON text); keep the latest :data:`KEPT_RUNS` of the
        plan.  Returns the run's number."""
        with self._write() as db:
            cursor = db.execute(
                "INSERT INTO drift_runs (plan_id, ran_at, verdict, report) VALUES (?, ?, ?, ?)"
                " RETURNING id",
                (plan_id, db_time(ran_at), verdict, report),
            )
            number = int(cursor.fetchone()[0])
            db.execute(
                "DELETE FROM drift_runs WHERE plan_id = ? AND id NOT IN"
                " (SELECT id FROM drift_runs WHERE plan_id = ? ORDER BY ran_at DESC, id DESC"
                " LIMIT ?)",
                (plan_id, plan_id, KEPT_RUNS),
            )
        assert number is not None
        return number

    def latest_drift_run(self, plan_id: str) -> StoredDriftRun | None:
        """The plan's most recent run, or None."""
        row = self._db.execute(
            "SELECT * FROM drift_runs WHERE plan_id = ? ORDER BY ran_at DESC, id DESC LIMIT 1",
            (plan_id,),
        ).fetchone()
        if row is None:
            return None
        return StoredDriftRun(
            row["id"], row["plan_id"], from_db(row["ran_at"]), row["verdict"], row["report"]
        )

    def drift_run_count(self, plan_id: str) -> int:
        row = self._db.execute(
            "SELECT count(*) FROM drift_runs WHERE plan_id = ?", (plan_id,)
        ).fetchone()
        return int(row[0])
