"""tests/postgres.py: a real PostgreSQL cluster of our own on 127.0.0.1, and nothing left.

The server is started by the session fixture (initdb as nobody in a /tmp directory of its
own, the server in the foreground under setpriv --pdeathsig KILL); these tests check what
the store's tests rely on: TCP on loopback only with passwords, a fresh database per test
owned by the application role, restart on the same port with the data kept, and no
process left after a stop.
"""

from __future__ import annotations

import os
import pwd
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import psycopg
import pytest

from tests.postgres import APP_ROLE, PostgresDatabase, PostgresServer, require_postgres


def connect(database: PostgresDatabase, password: str | None = None) -> psycopg.Connection:
    return psycopg.connect(
        host="127.0.0.1",
        port=database.server.port,
        user=APP_ROLE,
        dbname=database.name,
        password=database.password if password is None else password,
        autocommit=True,
        connect_timeout=5,
    )


def test_the_app_role_owns_a_fresh_database_over_tcp_with_its_password(
    postgres_database: PostgresDatabase,
) -> None:
    """Over 127.0.0.1 the role logs in with its password (scram-sha-256), owns the
    database, is no superuser, and the server is the version Debian ships."""
    with connect(postgres_database) as connection:
        row = connection.execute(
            "SELECT current_user, current_database(), inet_server_addr()::text,"
            " (SELECT rolsuper FROM pg_roles WHERE rolname = current_user),"
            " pg_get_userbyid(datdba), current_setting('server_version_num')::int"
            " FROM pg_database WHERE datname = current_database()"
        ).fetchone()
    assert row is not None
    user, name, address, superuser, owner, version = row
    assert (user, name, owner, superuser) == (APP_ROLE, postgres_database.name, APP_ROLE, False)
    assert address in {"127.0.0.1/32", "127.0.0.1"}
    assert version >= 130000
    assert postgres_database.url == (
        f"postgresql://{APP_ROLE}@127.0.0.1:{postgres_database.server.port}/"
        f"{postgres_database.name}"
    )
    assert postgres_database.password_file.read_text().strip() == postgres_database.password


def test_a_wrong_password_is_refused(postgres_database: PostgresDatabase) -> None:
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        connect(postgres_database, password="not-the-password")


def test_each_test_gets_its_own_empty_database(postgres_database: PostgresDatabase) -> None:
    with connect(postgres_database) as connection:
        tables = connection.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        ).fetchone()
    assert tables == (0,)


def test_the_server_listens_on_loopback_only_and_runs_unprivileged(
    postgres: PostgresServer,
) -> None:
    """One TCP listener, on 127.0.0.1; the processes belong to nobody, not root."""
    with postgres.admin() as connection:
        listen = connection.execute("SHOW listen_addresses").fetchone()
        sockets = connection.execute("SHOW unix_socket_directories").fetchone()
    assert listen == ("127.0.0.1",)
    assert sockets == (str(postgres.socket_dir),)
    owners = {os.stat(f"/proc/{pid}").st_uid for pid in postgres.backends()}
    assert owners == {pwd.getpwnam("nobody").pw_uid}
    with socket.socket() as probe:
        probe.settimeout(1)
        probe.connect(("127.0.0.1", postgres.port))


def test_a_restart_keeps_the_port_and_the_data(postgres_database: PostgresDatabase) -> None:
    """Fast shutdown and start again (also after a SIGKILL of the server: crash recovery):
    same port, the committed rows are there."""
    server = postgres_database.server
    port = server.port
    with connect(postgres_database) as connection:
        connection.execute("CREATE TABLE kept (x int)")
        connection.execute("INSERT INTO kept VALUES (1)")
    server.restart()
    with connect(postgres_database) as connection:
        connection.execute("INSERT INTO kept VALUES (2)")
    server.kill()
    assert server.backends() == []
    server.start()
    assert server.port == port
    with connect(postgres_database) as connection:
        rows = connection.execute("SELECT x FROM kept ORDER BY x").fetchall()
    assert rows == [(1,), (2,)]


_SESSION = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from tests.postgres import PostgresServer, postgres_bindir

    server = PostgresServer(Path(sys.argv[1]), postgres_bindir())
    server.start()
    print(server.pid, server.rundir, flush=True)
    server.close()
    print("closed", flush=True)
    """
)


@pytest.mark.e2e  # starts an interpreter that starts a cluster
def test_a_closed_server_leaves_no_process_and_no_directory(tmp_path: Path) -> None:
    """initdb, start, close in a fresh interpreter: afterwards no process of the cluster
    runs and its /tmp directory is gone."""
    require_postgres()
    done = subprocess.run(
        [sys.executable, "-c", _SESSION, str(tmp_path / "pg")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert done.returncode == 0, done.stderr
    first, last = done.stdout.splitlines()
    pid, rundir = first.split()
    assert last == "closed"
    assert not Path(f"/proc/{pid}").exists()
    assert not Path(rundir).exists()
    leftovers = subprocess.run(
        ["pgrep", "-f", rundir], capture_output=True, text=True, check=False
    ).stdout
    assert leftovers == ""
