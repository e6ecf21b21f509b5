"""deploybot.store on PostgreSQL: what only that backend has — the URL and its password,
whose database it is, a server that restarts, writers from two processes.

The store's behaviour itself is tested on both backends by tests/test_store.py and
tests/test_store_outbox.py (`store_db`).
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from deploybot.cli import main
from deploybot.store import Store, StoreOpenError, StoreUnavailableError
from deploybot.store.dialect import dml
from tests.postgres import PostgresDatabase

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


def report(store: Store, text: str = "acl API returns null") -> int:
    return store.report_incident(
        service="pkgdb2",
        text=text,
        reporter_nick="alice",
        reporter_account=None,
        channel="#c",
        now=T0,
    ).number


def test_a_password_in_the_url_is_refused_and_not_shown() -> None:
    """The password belongs in database_password_file, PGPASSWORD or ~/.pgpass."""
    with pytest.raises(StoreOpenError, match="database_password_file") as caught:
        Store.open("postgresql://deploybot:hunter2@127.0.0.1:5432/deploybot")
    assert "hunter2" not in str(caught.value)
    assert "postgresql://deploybot:***@127.0.0.1:5432/deploybot" in str(caught.value)


def test_an_unreachable_server_is_named() -> None:
    """Nothing listens on port 1: a StoreOpenError naming the URL, at once."""
    with pytest.raises(StoreOpenError, match=r"127\.0\.0\.1:1/deploybot: cannot connect"):
        Store.open("postgresql://deploybot@127.0.0.1:1/deploybot")


def test_the_password_comes_from_the_caller_or_libpq_and_is_never_shown(
    postgres_database: PostgresDatabase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``password`` (database_password_file), else PGPASSWORD, else a .pgpass file; a
    wrong one is refused with libpq's reason and without the password."""
    url = postgres_database.url
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setenv("PGPASSFILE", str(tmp_path / "no-such-pgpass"))
    with pytest.raises(StoreOpenError, match="cannot connect") as caught:
        Store.open(url, password="not-it-at-all")
    assert "password authentication failed" in str(caught.value)
    assert "not-it-at-all" not in str(caught.value)
    with Store.open(url, password=postgres_database.password) as store:
        assert report(store) == 1
    monkeypatch.setenv("PGPASSWORD", postgres_database.password)
    with Store.open(url) as store:
        assert store.get(1).text == "acl API returns null"
    monkeypatch.delenv("PGPASSWORD")
    pgpass = tmp_path / "pgpass"
    port = postgres_database.server.port
    pgpass.write_text(f"127.0.0.1:{port}:*:deploybot:{postgres_database.password}\n")
    pgpass.chmod(0o600)
    monkeypatch.setenv("PGPASSFILE", str(pgpass))
    with Store.open(url) as store:
        assert store.path == url
        assert store.backend == "postgresql"


def test_someone_elses_database_is_refused_and_an_empty_one_needs_create(
    postgres_database: PostgresDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database with tables but no deploybot schema is not taken over; with
    create=False (the read-only commands) an empty one is "no deploybot database"."""
    monkeypatch.setenv("PGPASSWORD", postgres_database.password)
    url = postgres_database.url
    with pytest.raises(StoreOpenError, match="no deploybot database there yet"):
        Store.open(url, create=False)
    with postgres_database.admin() as admin:
        admin.execute("CREATE TABLE incidents (id int)")
    with pytest.raises(StoreOpenError, match="not a deploybot database"):
        Store.open(url)


def test_a_server_restart_costs_one_failed_write_at_most(
    postgres_database: PostgresDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After PostgreSQL restarted, the store's next statement opens a new connection: reads
    and writes go on, nothing committed is lost."""
    monkeypatch.setenv("PGPASSWORD", postgres_database.password)
    with Store.open(postgres_database.url) as store:
        report(store)
        postgres_database.server.restart()
        assert store.get(1).text == "acl API returns null"  # a read: reconnected
        postgres_database.server.restart()
        assert report(store, "after the restart") == 2  # a write: reconnected at BEGIN
        assert [i.number for i in store.list_incidents()] == [1, 2]


def test_writers_in_two_processes_take_turns(
    postgres_database: PostgresDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While one store holds a write transaction, another's write waits (the advisory
    lock, as SQLite's file lock): beyond its busy timeout it is refused, nothing changed;
    within it, it goes through once the first commits."""
    monkeypatch.setenv("PGPASSWORD", postgres_database.password)
    url = postgres_database.url
    with Store.open(url) as first, Store.open(url, busy_timeout=0.2) as second:
        with first.transaction():
            report(first)
            started = time.monotonic()
            with pytest.raises(StoreUnavailableError, match="busy"):
                report(second)
            assert time.monotonic() - started >= 0.2
        assert [i.number for i in second.list_incidents()] == [1]
    done: list[int] = []
    with Store.open(url) as first, Store.open(url, busy_timeout=5) as patient:
        waiter = threading.Thread(target=lambda: done.append(report(patient)))
        with first.transaction():
            report(first)
            waiter.start()
            time.sleep(0.3)
            assert done == []  # waiting for the first's commit
        waiter.join(10)
        assert done == [3]


def test_placeholders_and_literals_are_rewritten_apart() -> None:
    """The rewrite leaves string literals alone and keeps ``%`` literal for psycopg."""
    assert dml("SELECT '?:x' || ? FROM t WHERE a LIKE '%' AND b = :b") == (
        "SELECT '?:x' || %s FROM t WHERE a LIKE '%%' AND b = %(b)s"
    )
    assert dml("SELECT a % 2 FROM t") == "SELECT a %% 2 FROM t"


def test_literals_with_percent_and_placeholder_characters_run(
    postgres_database: PostgresDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A statement with ``%``, ``?`` and ``:x`` inside literals runs on PostgreSQL as on
    SQLite, with parameters and without."""
    monkeypatch.setenv("PGPASSWORD", postgres_database.password)
    with Store.open(postgres_database.url) as store:
        row = store._db.execute("SELECT '50% ?:x', 7 % 4").fetchone()
        assert tuple(row) == ("50% ?:x", 3)
        row = store._db.execute("SELECT '100%' || ?", ("!",)).fetchone()
        assert tuple(row) == ("100%!",)


def test_the_command_line_reads_a_postgresql_database_with_its_password_file(
    postgres_database: PostgresDatabase,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``database = postgresql://…`` and ``database_password_file`` in bot.ini: `deploybot
    digest` reads the incidents from PostgreSQL; the password shows nowhere; a config
    without a readable password file fails naming the key."""
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setenv("PGPASSFILE", str(tmp_path / "no-pgpass"))
    with Store.open(postgres_database.url, password=postgres_database.password) as store:
        store.report_incident(
            service="pkgdb2",
            text="acl API returns null",
            reporter_nick="alice",
            reporter_account=None,
            channel="#c",
            now=datetime(2026, 12, 15, 10, tzinfo=UTC),
        )
    (tmp_path / "plans").mkdir()
    ini = tmp_path / "bot.ini"
    ini.write_text(
        "[deploybot]\ntimezone = UTC\n"
        f"database = {postgres_database.url}\n"
        f"database_password_file = {postgres_database.password_file}\n"
        f"plans_dir = {tmp_path / 'plans'}\n"
    )
    assert main(["digest", "--date", "2026-12-15", "--config", str(ini)]) == 0
    captured = capsys.readouterr()
    assert "1 reported" in captured.out
    assert postgres_database.password not in captured.out + captured.err
    ini.write_text(ini.read_text().replace(str(postgres_database.password_file), "nothing"))
    assert main(["digest", "--date", "2026-12-15", "--config", str(ini)]) == 1
    assert "database_password_file: cannot read" in capsys.readouterr().err
