"""The scheduler jobs the core adds: one-off date jobs that run late rather than never.

Countdown posts, the firefighting sweeps at a window's edges and page escalations are
each a date job on the application's APScheduler scheduler (passed in: the core does not
import APScheduler at run time).  A job whose time passed while the loop was busy still
runs (``misfire_grace_time=None``), once (``coalesce``); adding one with an existing id
replaces it, and every job of a kind shares an id prefix so that it can be rescheduled.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from apscheduler.schedulers.base import BaseScheduler

__all__ = ["add_date_job", "remove_jobs"]


def add_date_job(
    scheduler: BaseScheduler,
    job: Callable[[], Coroutine[Any, Any, None]],
    at: datetime,
    job_id: str,
) -> None:
    """Run ``job`` (a coroutine function: it runs in the loop's thread) at ``at``."""
    scheduler.add_job(
        job,
        trigger="date",
        run_date=at,
        id=job_id,
        replace_existing=True,
        misfire_grace_time=None,  # run late rather than never
        coalesce=True,
    )


def remove_jobs(scheduler: BaseScheduler, prefix: str) -> None:
    """Remove every job whose id starts with ``prefix``."""
    for job in scheduler.get_jobs():
        if job.id.startswith(prefix):
            job.remove()
