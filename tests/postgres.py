"""A real PostgreSQL server on 127.0.0.1 for the store's tests, and its pytest fixtures.

`tests/conftest.py` imports everything listed in `__all__`.

The server is Debian's `postgresql` package (`.ci/run` installs it): `initdb` and
`postgres` from `/usr/lib/postgresql/N/bin` (the newest N), else from PATH, or from
`DEPLOYBOT_POSTGRES_BINDIR`.  Nothing of the system's installation is used: the cluster is
made by `initdb` in a directory of its own under /tmp, as the unprivileged user
`nobody` (PostgreSQL refuses to run as root, and CI runs as root), and the server runs as
that user too, in the foreground (so that it is one process group the harness owns,
under `setpriv --pdeathsig KILL` like every test server: a killed test run leaves no
server behind), with

- TCP on 127.0.0.1 only, on a free port; password authentication (scram-sha-256) there;
- its unix socket in its own directory (trusted: the harness administers the cluster
  through it as the superuser `postgres`);
- `fsync = off` (tests, not power cuts; a kill -9 of the server loses nothing committed
  all the same) and a small `shared_buffers`.

Where the binaries (or psycopg, the driver) are absent the tests that need PostgreSQL are
skipped with the reason, unless `CI` is set, where they fail (CI must run them).

Fixtures
- `postgres_session` (one per session, i.e. per xdist worker): a `PostgresServer` as
  started (about 1.5 s for `initdb` and 0.3 s to the first answer on the 2-core machine;
  `.startup_seconds`), stopped (fast shutdown) and its directory removed at the end.
- `postgres`: the session's server, running (a test that stopped or killed it leaves it
  to the next test's set-up to bring it back).  `.admin()` is a superuser connection
  (autocommit) over the unix socket; `.stop()` (fast shutdown), `.kill()` (SIGKILL: a
  crash), `.start()`, `.restart()` and the `a…` variants keep the port and the data.
- `postgres_database`: a fresh database for one test, owned by the role `deploybot`
  (password in `.password_file`), dropped at teardown: `.url` is
  `postgresql://deploybot@127.0.0.1:PORT/NAME` — the form of the `database` setting.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.ircd.servers import HOST, UNPRIVILEGED_USER, ManagedServer, ServerError, free_port

__all__ = [
    "POSTGRES_FIXTURES",
    "PostgresDatabase",
    "PostgresServer",
    "postgres",
    "postgres_database",
    "postgres_session",
]

BINDIR_ENV = "DEPLOYBOT_POSTGRES_BINDIR"
INSTALL_HINT = ".ci/run installs it (apt-get install postgresql)"
#: The role the store connects as (a database owner, not a superuser).
APP_ROLE = "deploybot"

#: initdb and postgres run with nothing of the caller's environment (no PG* variables).
_CLEAN_ENV = ("env", "-i", "PATH=/usr/bin:/bin", "LANG=C.UTF-8")

#: Fixtures that start PostgreSQL: a test using one is `e2e` (tests/markers.py).
POSTGRES_FIXTURES = frozenset({"postgres", "postgres_session", "postgres_database"})


def postgres_bindir() -> Path | None:
    """The directory with `initdb` and `postgres`, or None when PostgreSQL is absent."""
    override = os.environ.get(BINDIR_ENV)
    if override:
        return Path(override)

    def version(path: Path) -> tuple[int, ...]:
        return tuple(int(part) for part in re.findall(r"\d+", path.parent.parent.name))

    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=version)
    if debian:
        return debian[-1].parent
    found = shutil.which("initdb")
    return Path(found).resolve().parent if found else None


def missing() -> str | None:
    """Why the PostgreSQL tests cannot run here, or None when they can."""
    bindir = postgres_bindir()
    if bindir is None or not (bindir / "initdb").exists() or not (bindir / "postgres").exists():
        return f"PostgreSQL's server binaries (initdb, postgres) are not installed: {INSTALL_HINT}"
    if shutil.which("setpriv") is None:
        return "setpriv (util-linux) is not installed"
    try:
        import psycopg  # noqa: F401
    except ImportError as error:  # the driver, or its libpq
        return f"psycopg cannot be imported ({error}): pip install -e '.[test]'"
    return None


def require_postgres() -> Path:
    """The binaries' directory; skip (fail under `CI`) when PostgreSQL cannot run here."""
    reason = missing()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set and {reason}")
        pytest.skip(reason)
    bindir = postgres_bindir()
    assert bindir is not None
    return bindir


class PostgresServer(ManagedServer):
    """One PostgreSQL cluster (see the module's docstring); `initdb` at the first start."""

    name = "postgres"
    start_timeout = 30.0
    unprivileged = True  # as nobody: PostgreSQL refuses root

    def __init__(self, workdir: Path, bindir: Path) -> None:
        super().__init__(workdir)
        self.bindir = bindir
        self.port = 0
        self.data = self.rundir / "data"
        self.superuser_password = secrets.token_hex(16)

    @property
    def socket_dir(self) -> Path:
        """Where the server's unix socket is (the `host` of a socket connection)."""
        return self.rundir

    def _choose_ports(self) -> None:
        self.port = free_port()

    def _listen_ports(self) -> list[int]:
        return [self.port]

    def _write_config(self) -> None:
        if (self.data / "PG_VERSION").exists():
            return
        password_file = self.rundir / "superuser-password"
        password_file.write_text(self.superuser_password + "\n")
        os.chown(password_file, *_ids())
        user, group = UNPRIVILEGED_USER
        as_nobody = ["setpriv", f"--reuid={user}", f"--regid={group}", "--clear-groups"]
        done = subprocess.run(
            [
                *as_nobody,
                *_CLEAN_ENV,
                str(self.bindir / "initdb"),
                f"--pgdata={self.data}",
                "--username=postgres",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                f"--pwfile={password_file}",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                "--no-instructions",
            ],
            cwd=self.rundir,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
        )
        password_file.unlink()
        with self.log_path.open("a") as log:
            log.write(f"=== initdb (exit {done.returncode})\n{done.stdout}{done.stderr}")
        if done.returncode != 0:
            raise self._error(ServerError, "initdb failed")

    def _argv(self) -> list[str]:
        settings = {
            "listen_addresses": HOST,
            "port": str(self.port),
            "unix_socket_directories": str(self.socket_dir),
            "fsync": "off",
            "full_page_writes": "off",
            "shared_buffers": "32MB",
            "max_connections": "60",
            "log_min_messages": "warning",
            "log_line_prefix": "%m [%p] ",
        }
        options = [f"--{key}={value}" for key, value in settings.items()]
        return [*_CLEAN_ENV, str(self.bindir / "postgres"), "-D", str(self.data), *options]

    def _probe(self, deadline: float) -> None:
        while True:
            try:
                with self.admin() as connection:
                    connection.execute("SELECT 1")
                return
            except Exception as error:  # starting up: "the database system is starting up"
                if time.monotonic() >= deadline:
                    raise TimeoutError(f"no answer over the socket: {error}") from error
                time.sleep(0.05)

    def admin(self, dbname: str = "postgres") -> Any:
        """A superuser connection (autocommit) over the unix socket: close it (``with``)."""
        import psycopg

        return psycopg.connect(
            host=str(self.socket_dir),
            port=self.port,
            user="postgres",
            dbname=dbname,
            autocommit=True,
            connect_timeout=5,
        )

    def stop(self, timeout: float = 10.0) -> None:
        """Fast shutdown (SIGINT to the postmaster: sessions are ended, a checkpoint is
        written), then the group is reaped; SIGKILL after ``timeout``."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout)
        super().stop(timeout)

    def backends(self) -> list[int]:
        """Pids of the server's processes still alive (the postmaster and its children)."""
        pid = self.pid
        if pid is None:
            return []
        found = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                with contextlib.suppress(OSError):
                    stat = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
                    if int(stat[2]) == pid and stat[0] not in {"Z", "X"}:  # same group
                        found.append(int(entry))
        return found

    def create_database(self) -> PostgresDatabase:
        """A new, empty database owned by :data:`APP_ROLE`, with a password file for it."""
        name = f"t_{secrets.token_hex(6)}"
        password = secrets.token_urlsafe(18)
        with self.admin() as connection:
            exists = connection.execute(
                "SELECT 1 FROM pg_roles WHERE rolname = %s", (APP_ROLE,)
            ).fetchone()
            verb = "ALTER" if exists else "CREATE"
            # identifiers and the password literal come from this module, never from input
            connection.execute(f"{verb} ROLE {APP_ROLE} LOGIN PASSWORD '{password}'")
            connection.execute(f"CREATE DATABASE {name} OWNER {APP_ROLE}")
        password_file = self.workdir / f"{name}.password"
        password_file.write_text(password + "\n")
        password_file.chmod(0o600)
        return PostgresDatabase(self, name, password, password_file)

    def drop_database(self, name: str) -> None:
        with self.admin() as connection:
            connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _ids() -> tuple[int, int]:
    import grp
    import pwd

    user, group = UNPRIVILEGED_USER
    return pwd.getpwnam(user).pw_uid, grp.getgrnam(group).gr_gid


@dataclass(frozen=True)
class PostgresDatabase:
    """One test's database: connect as :data:`APP_ROLE` with ``password``."""

    server: PostgresServer
    name: str
    password: str
    password_file: Path

    @property
    def url(self) -> str:
        """``postgresql://deploybot@127.0.0.1:PORT/NAME`` (no password in it)."""
        return f"postgresql://{APP_ROLE}@{HOST}:{self.server.port}/{self.name}"

    def admin(self) -> Any:
        """A superuser connection to this database (autocommit): close it (``with``)."""
        return self.server.admin(self.name)


@pytest.fixture(scope="session")
def postgres_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    """The session's PostgreSQL as started; tests use `postgres` or `postgres_database`."""
    bindir = require_postgres()
    server = PostgresServer(tmp_path_factory.mktemp("postgres"), bindir)
    try:
        server.start()
        print(f"postgres started in {server.startup_seconds[-1]:.2f} s", file=sys.stderr)
        yield server
    finally:
        server.close()


@pytest.fixture
def postgres(postgres_session: PostgresServer) -> PostgresServer:
    """The session's PostgreSQL, running."""
    if not postgres_session.running:
        postgres_session.start()
    return postgres_session


@pytest.fixture
def postgres_database(postgres: PostgresServer) -> Iterator[PostgresDatabase]:
    """A fresh database for one test, dropped at the end."""
    database = postgres.create_database()
    try:
        yield database
    finally:
        if postgres.running:
            postgres.drop_database(database.name)
        database.password_file.unlink(missing_ok=True)
