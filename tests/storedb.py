"""The store's tests on both backends: `store_db`, one database per test, SQLite or PostgreSQL.

`tests/conftest.py` imports everything listed in `__all__`.

`store_db` is parametrised: `[sqlite]` is a file in the test's tmp_path; `[postgresql]` is
a fresh database on the session's PostgreSQL server (tests/postgres.py), marked `e2e` (it
starts the server), with its password in `PGPASSWORD` for the test (libpq reads it, as it
would for the bot).  A `StoreDatabase` opens a second, raw connection to the same database
(`other()`: what another process would see), holds the store's write lock from there
(`hold_write_lock()`), reads and sets the schema version, and builds a database of an
older schema version from the migration steps (`make_version(n)`).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from deploybot.store import migrations
from deploybot.store.dialect import NocaseColumns
from deploybot.store.postgresql import WRITE_LOCK
from tests.postgres import PostgresDatabase

__all__ = ["BACKENDS", "StoreDatabase", "store_db"]

#: The parameters of `store_db`: PostgreSQL's starts a server, so it is `e2e`.
BACKENDS = ("sqlite", pytest.param("postgresql", marks=pytest.mark.e2e))


@dataclass
class StoreDatabase:
    """One test's database on one backend (see the module's docstring)."""

    backend: str
    location: str
    postgres: PostgresDatabase | None = None

    def other(self) -> Any:
        """A second connection in autocommit mode (sqlite3's or psycopg's): ``execute(SQL)``
        with SQL both databases run; close it (``with``, or ``close()``)."""
        if self.postgres is None:
            return sqlite3.connect(self.location, isolation_level=None)
        import psycopg

        return psycopg.connect(self.location, password=self.postgres.password, autocommit=True)

    @contextlib.contextmanager
    def hold_write_lock(self) -> Iterator[None]:
        """Hold the store's write lock from another connection (a busy database)."""
        other = self.other()
        try:
            if self.postgres is None:
                other.execute("BEGIN IMMEDIATE")
            else:
                other.execute("BEGIN")
                other.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
            yield
            other.execute("ROLLBACK")
        finally:
            other.close()

    def schema_version(self) -> int:
        with contextlib.closing(self.other()) as other:
            if self.postgres is None:
                return int(other.execute("PRAGMA user_version").fetchone()[0])
            return int(other.execute("SELECT version FROM deploybot_schema").fetchone()[0])

    def set_schema_version(self, version: int) -> None:
        with contextlib.closing(self.other()) as other:
            if self.postgres is None:
                other.execute(f"PRAGMA user_version = {int(version)}")
            else:
                other.execute("UPDATE deploybot_schema SET version = %s", (version,))

    def make_version(self, version: int) -> None:
        """An empty database of schema ``version``, as that deploybot made it."""
        with contextlib.closing(self.other()) as other:
            if self.postgres is None:
                for step in migrations.MIGRATIONS[:version]:
                    step.apply(other)
                other.execute(f"PRAGMA user_version = {int(version)}")
                return
            nocase: NocaseColumns = {}
            other.execute("CREATE TABLE deploybot_schema (version BIGINT NOT NULL)")
            for step in migrations.MIGRATIONS[:version]:
                for statement in step.postgresql_statements(nocase):
                    other.execute(statement)
            other.execute("INSERT INTO deploybot_schema VALUES (%s)", (version,))

    def table_exists(self, name: str) -> bool:
        with contextlib.closing(self.other()) as other:
            if self.postgres is None:
                sql = "SELECT count(*) FROM sqlite_master WHERE name = ?"
            else:
                sql = "SELECT count(*) FROM pg_tables WHERE tablename = %s"
            return bool(other.execute(sql, (name,)).fetchone()[0])


@pytest.fixture(params=BACKENDS)
def store_db(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> StoreDatabase:
    """One test's database, on SQLite and on PostgreSQL (the test runs once on each)."""
    if request.param == "sqlite":
        return StoreDatabase("sqlite", str(tmp_path / "deploybot.sqlite3"))
    database: PostgresDatabase = request.getfixturevalue("postgres_database")
    monkeypatch.setenv("PGPASSWORD", database.password)
    return StoreDatabase("postgresql", database.url, database)
