"""An SQLite file written by the deploybot of December 2026 (schema 7, before the
PostgreSQL backend) opens with today's store, is migrated forward, and reads back exactly
as that deploybot read it: nothing lost, nothing changed.

tests/data/store-v7.sqlite3 and tests/data/store-v7.json were made by tests/store_sample.py
run against that deploybot's code (its docstring says how); the JSON is what its own store
methods returned.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from deploybot.store import SCHEMA_VERSION, Store
from tests.store_sample import read

DATA = Path(__file__).parent / "data"


def test_a_schema_7_file_reads_back_as_it_was_written(tmp_path: Path) -> None:
    path = tmp_path / "deploybot.sqlite3"
    shutil.copyfile(DATA / "store-v7.sqlite3", path)
    expected = json.loads((DATA / "store-v7.json").read_text(encoding="utf-8"))
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA user_version").fetchone() == (7,)
    raw.close()
    with Store.open(path) as store:
        assert read(store) == expected
        # and it goes on: numbers continue, the ledger still holds its claims
        incident = store.report_incident(
            service="pkgdb2",
            text="after the upgrade",
            reporter_nick="carol",
            reporter_account=None,
            channel="#c",
            now=datetime(2026, 12, 5, tzinfo=UTC),
        )
        assert incident.number == 3
        assert not store.claim_once("firefight-open:pkgdb2-2.0", datetime.now(UTC))
        assert [c.nick for c in store.consumers("pkgdb2")] == ["DGilmore", "ralph"]
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    raw.close()
