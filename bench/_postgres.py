"""PostgreSQL for the benchmarks: the tests' harness (tests/postgres.py: Debian's
``postgresql``, as nobody, in a temporary directory, on a free 127.0.0.1 port) and the
copy of bench/digest.py's filled SQLite store into a database of it."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from deploybot.store import Store
from tests.postgres import PostgresDatabase, PostgresServer, missing, postgres_bindir


@contextmanager
def postgres_server(workdir: Path) -> Iterator[PostgresServer]:
    """A PostgreSQL server of its own under ``workdir``, stopped at the end;
    :class:`SystemExit` saying why when PostgreSQL cannot run here."""
    reason = missing()
    bindir = postgres_bindir()
    if reason is not None or bindir is None:
        raise SystemExit(f"--backend postgresql: {reason or 'no PostgreSQL'}")
    server = PostgresServer(workdir / "postgres", bindir)
    server.start()
    try:
        yield server
    finally:
        server.close()


def copy_to_postgresql(path: Path, database: PostgresDatabase) -> float:
    """bench/digest.py's filled SQLite store at ``path`` into the (empty) ``database``
    (its schema made by :meth:`Store.open`, the rows by ``COPY``, then ``ANALYZE``); the
    seconds it took."""
    import psycopg

    Store.open(database.url, password=database.password).close()  # the schema
    started = time.perf_counter()
    source = sqlite3.connect(path)
    try:
        with psycopg.connect(database.url, password=database.password) as target:
            for table in ("incidents", "incident_events"):
                columns = [row[1] for row in source.execute(f"PRAGMA table_info({table})")]
                names = ", ".join(columns)
                with target.cursor().copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                    for row in source.execute(f"SELECT {names} FROM {table}"):
                        copy.write_row(row)
            target.execute("ANALYZE")
    finally:
        source.close()
    return time.perf_counter() - started
