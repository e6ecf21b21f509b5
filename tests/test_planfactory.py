"""The test plan factory makes valid plans whatever the time of day the tests run at.

Found so: at 17:06 UTC every test that planned a deploy "an hour ago" failed, its
8-hour window's last shift ending at 00:06 ("shift times … cannot cross midnight").
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from deploybot.plans.files import dump_plan, load_plan
from tests.planfactory import make_plan, utc


@pytest.mark.parametrize("hour", range(24))
def test_a_plan_made_at_any_hour_dumps_and_loads_without_problems(
    tmp_path: Path, hour: int
) -> None:
    when = utc(2026, 12, 4, hour, 6)
    plan = make_plan(when=when)
    path = tmp_path / "plan.yaml"
    path.write_text(dump_plan(plan), encoding="utf-8")
    loaded = load_plan(path)  # raises PlanError with file:line:key on any problem
    assert loaded.when == when
    assert loaded.roster.shifts[-1].end == when + timedelta(hours=8)


def test_a_window_within_one_day_keeps_its_offset() -> None:
    assert make_plan(when=utc(2026, 12, 15, 13)).when.utcoffset() == timedelta(0)
