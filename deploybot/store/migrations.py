"""The store's schema as forward steps, numbered by SQLite's ``PRAGMA user_version`` (on
PostgreSQL: the one row of the table ``deploybot_schema``).

Version *n* of the schema is what you get after applying ``MIGRATIONS[0]`` to
``MIGRATIONS[n-1]`` to an empty database.  A step is never edited once released: a
change to the schema is a new step appended to :data:`MIGRATIONS`.  :func:`migrate` runs
the pending steps in order, all inside one ``BEGIN IMMEDIATE`` transaction, and sets
``user_version`` in that same transaction, so a database is either fully upgraded or
untouched.  It refuses a database newer than the code, and a SQLite file that has tables
but no version (someone else's database).

The steps are written once, for SQLite; on PostgreSQL each statement is rewritten by
:func:`deploybot.store.dialect.ddl` (types, collations, keys on case-insensitive columns),
and the pending steps run in one transaction there too (PostgreSQL's DDL is
transactional), under the store's write lock (an advisory lock): two processes starting
at once migrate once.  A step may give ``postgresql`` statements of its own where the
rewrite does not fit; its ``function`` gets the connection of either database and must
write SQL both run (:mod:`deploybot.store.dialect`).

Conventions of the schema (shared with :mod:`deploybot.store`):

* times are TEXT, UTC ISO 8601 with ``Z`` and whole seconds (``2026-11-27T10:00:00Z``);
  that fixed-width form sorts like the times themselves, so indexes on it work for ranges;
* nicks and service names compare ASCII-case-insensitively (``COLLATE NOCASE``);
* booleans are INTEGER 0/1 with a CHECK.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from deploybot.errors import DeploybotError
from deploybot.store.dialect import NocaseColumns, ddl

if TYPE_CHECKING:
    from deploybot.store.postgresql import PgConnection, PostgresBackend


@dataclass(frozen=True)
class Migration:
    """One forward step: SQL statements run in order, then an optional Python function.

    The function (for data moves SQL cannot express) gets the connection inside the
    migration's transaction and must not commit.
    """

    version: int
    description: str
    statements: tuple[str, ...] = ()
    function: Callable[[Any], None] | None = None
    #: PostgreSQL's statements for this step, when the rewrite of ``statements`` does not
    #: fit (None: the rewrite).
    postgresql: tuple[str, ...] | None = None

    def apply(self, connection: sqlite3.Connection) -> None:
        for statement in self.statements:
            connection.execute(statement)
        if self.function is not None:
            self.function(connection)

    def postgresql_statements(self, nocase: NocaseColumns) -> list[str]:
        """This step's statements for PostgreSQL (``nocase``: see :func:`ddl`; updated)."""
        rewritten = [out for statement in self.statements for out in ddl(statement, nocase)]
        return rewritten if self.postgresql is None else list(self.postgresql)


_V1 = Migration(
    version=1,
    description="incidents with timelines, consumers, countdown and once ledgers, pages",
    statements=(
        """
        CREATE TABLE incidents (
            number              INTEGER PRIMARY KEY AUTOINCREMENT,
            service             TEXT NOT NULL COLLATE NOCASE,
            deploy_id           TEXT,
            minutes_into_deploy INTEGER,
            text                TEXT NOT NULL,
            reporter_nick       TEXT NOT NULL,
            reporter_account    TEXT,
            channel             TEXT NOT NULL,
            reported_at         TEXT NOT NULL,
            acknowledged_at     TEXT,
            acknowledged_by     TEXT,
            owner               TEXT,
            fixed_at            TEXT,
            fixed_by            TEXT,
            -- fixed_at - reported_at in seconds, set when fixed; its maximum bounds the
            -- search for incidents spanning a whole digest period (see the store).
            repair_seconds      INTEGER,
            CHECK ((fixed_at IS NULL) = (repair_seconds IS NULL))
        )
        """,
        "CREATE INDEX incidents_reported_at ON incidents (reported_at)",
        "CREATE INDEX incidents_fixed_at ON incidents (fixed_at)",
        "CREATE INDEX incidents_service ON incidents (service)",
        "CREATE INDEX incidents_deploy ON incidents (deploy_id)",
        "CREATE INDEX incidents_repair_seconds ON incidents (repair_seconds)",
        "CREATE INDEX incidents_open ON incidents (reported_at) WHERE fixed_at IS NULL",
        """
        CREATE TABLE incident_events (
            id       INTEGER PRIMARY KEY,
            incident INTEGER NOT NULL REFERENCES incidents (number),
            at       TEXT NOT NULL,
            nick     TEXT NOT NULL,
            account  TEXT,
            kind     TEXT NOT NULL
                     CHECK (kind IN ('reported', 'taken', 'note', 'fixed', 'ack')),
            text     TEXT NOT NULL DEFAULT ''
        )
        """,
        "CREATE INDEX incident_events_incident ON incident_events (incident, id)",
        """
        CREATE TABLE consumers (
            service       TEXT NOT NULL COLLATE NOCASE,
            nick          TEXT NOT NULL COLLATE NOCASE,
            account       TEXT,
            what          TEXT,
            registered_at TEXT NOT NULL,
            updated_at    TEXT NOT NULL,
            PRIMARY KEY (service, nick)
        ) WITHOUT ROWID
        """,
        """
        CREATE TABLE countdown_posts (
            key        TEXT PRIMARY KEY,
            claimed_at TEXT NOT NULL,
            late       INTEGER NOT NULL CHECK (late IN (0, 1)),
            skipped    INTEGER NOT NULL CHECK (skipped IN (0, 1))
        ) WITHOUT ROWID
        """,
        """
        CREATE TABLE once_claims (
            key        TEXT PRIMARY KEY,
            claimed_at TEXT NOT NULL
        ) WITHOUT ROWID
        """,
        """
        CREATE TABLE pages (
            number       INTEGER PRIMARY KEY AUTOINCREMENT,
            target_nick  TEXT NOT NULL COLLATE NOCASE,
            team         TEXT,
            plan_id      TEXT,
            incident     INTEGER REFERENCES incidents (number),
            message      TEXT NOT NULL,
            sender_nick  TEXT NOT NULL,
            created_at   TEXT NOT NULL,
            escalate_at  TEXT,
            acked_at     TEXT,
            acked_by     TEXT,
            escalated_at TEXT
        )
        """,
        "CREATE INDEX pages_unacked ON pages (target_nick) WHERE acked_at IS NULL",
        """
        CREATE INDEX pages_escalation ON pages (escalate_at)
            WHERE acked_at IS NULL AND escalated_at IS NULL
        """,
        "CREATE INDEX pages_plan ON pages (plan_id)",
        "CREATE INDEX pages_created_at ON pages (created_at)",
    ),
)

_V2 = Migration(
    version=2,
    description="ids of the bus events acted on, kept a day, to drop replays across restarts",
    statements=(
        """
        CREATE TABLE bus_events_seen (
            id      TEXT PRIMARY KEY,
            seen_at TEXT NOT NULL
        ) WITHOUT ROWID
        """,
        "CREATE INDEX bus_events_seen_at ON bus_events_seen (seen_at)",
    ),
)

_V3 = Migration(
    version=3,
    description="pages: the target's services account, the acker's mask and account",
    statements=(
        # NULL: the target's account was not known when the page was sent (see Pager).
        "ALTER TABLE pages ADD COLUMN target_account TEXT",
        "ALTER TABLE pages ADD COLUMN acked_mask TEXT",
        "ALTER TABLE pages ADD COLUMN acked_account TEXT",
    ),
)

_V4 = Migration(
    version=4,
    description="the outbox: posts decided and not yet confirmed by the IRC server",
    statements=(
        """
        CREATE TABLE outbox (
            id        INTEGER PRIMARY KEY AUTOINCREMENT,
            queued_at TEXT NOT NULL,
            command   TEXT NOT NULL CHECK (command IN ('PRIVMSG', 'TOPIC', 'JOIN', 'PART')),
            target    TEXT NOT NULL,
            text      TEXT NOT NULL DEFAULT ''
        )
        """,
    ),
)

_V5 = Migration(
    version=5,
    description="freeze breaks with their approvals; what happened to a deploy (bus, channel)",
    statements=(
        """
        CREATE TABLE freeze_breaks (
            number            INTEGER PRIMARY KEY AUTOINCREMENT,
            plan_id           TEXT NOT NULL,
            freezes           TEXT NOT NULL,
            reason            TEXT NOT NULL,
            requester_nick    TEXT NOT NULL,
            requester_account TEXT,
            requester_mask    TEXT NOT NULL,
            requested_at      TEXT NOT NULL,
            -- set with the approval that made two
            approved_at       TEXT
        )
        """,
        "CREATE INDEX freeze_breaks_plan ON freeze_breaks (plan_id)",
        """
        CREATE TABLE freeze_break_approvals (
            freeze_break INTEGER NOT NULL REFERENCES freeze_breaks (number),
            -- who, as one person: account:NAME, else host:HOST of the mask
            person       TEXT NOT NULL COLLATE NOCASE,
            nick         TEXT NOT NULL,
            account      TEXT,
            mask         TEXT NOT NULL,
            at           TEXT NOT NULL,
            PRIMARY KEY (freeze_break, person)
        ) WITHOUT ROWID
        """,
        """
        CREATE TABLE deploy_events (
            id      INTEGER PRIMARY KEY,
            plan_id TEXT NOT NULL,
            at      TEXT NOT NULL,
            kind    TEXT NOT NULL,
            nick    TEXT NOT NULL DEFAULT '',
            text    TEXT NOT NULL DEFAULT ''
        )
        """,
        "CREATE INDEX deploy_events_plan ON deploy_events (plan_id, at)",
    ),
)

_V6 = Migration(
    version=6,
    description="drift_runs: the drift probe's runs (issue 12), the report as JSON",
    statements=(
        """
        CREATE TABLE drift_runs (
            id         INTEGER PRIMARY KEY,
            plan_id    TEXT NOT NULL,
            ran_at     TEXT NOT NULL,
            verdict    TEXT NOT NULL,
            report     TEXT NOT NULL CHECK (json_valid(report))
        )
        """,
        "CREATE INDEX drift_runs_plan ON drift_runs (plan_id, ran_at, id)",
    ),
)

_V7 = Migration(
    version=7,
    description="chat networks beside IRC: their own state (sync position, direct-message "
    "rooms, a login's device) and which networks confirmed each post",
    statements=(
        """
        CREATE TABLE network_state (
            network TEXT NOT NULL,
            key     TEXT NOT NULL,
            value   TEXT NOT NULL,
            PRIMARY KEY (network, key)
        ) WITHOUT ROWID
        """,
        # a post is removed from the outbox once every network the bot runs on confirmed it
        """
        CREATE TABLE post_confirmations (
            post    INTEGER NOT NULL REFERENCES outbox (id) ON DELETE CASCADE,
            network TEXT NOT NULL,
            PRIMARY KEY (post, network)
        ) WITHOUT ROWID
        """,
    ),
)


_V8 = Migration(
    version=8,
    description="the bus outbox: messages to publish, kept until the broker confirmed them",
    statements=(
        """
        CREATE TABLE bus_outbox (
            id          INTEGER PRIMARY KEY AUTOINCREMENT,
            queued_at   TEXT NOT NULL,
            -- the AMQP message id: the same on every re-send (consumers drop repeats)
            message_id  TEXT NOT NULL UNIQUE,
            routing_key TEXT NOT NULL,
            headers     TEXT NOT NULL CHECK (json_valid(headers)),
            -- the JSON text published, as it is
            body        TEXT NOT NULL CHECK (json_valid(body))
        )
        """,
    ),
)

_V9 = Migration(
    version=9,
    description="the leader lease of an active/standby pair on PostgreSQL (issue 14)",
    statements=(
        # One row: which instance is active, its epoch (raised at each takeover: writes
        # that lead to output check it), and when it last renewed its lease, by the
        # database server's clock in milliseconds.  Unused on SQLite (one bot, one file).
        """
        CREATE TABLE leader (
            id         INTEGER PRIMARY KEY CHECK (id = 1),
            instance   TEXT NOT NULL,
            epoch      INTEGER NOT NULL,
            since_ms   INTEGER NOT NULL,
            renewed_ms INTEGER NOT NULL
        )
        """,
    ),
)

_V10 = Migration(
    version=10,
    description="the presence of each instance of an active/standby pair (issue 14)",
    statements=(
        # One row per running instance (host:pid): its role as it last said, when it
        # started and when it last renewed its presence, by the database server's clock in
        # milliseconds; a clean stop deletes its row, rows not seen for a day are pruned.
        # /healthz and !status count the standbys seen in the last minute.  Unused on SQLite.
        """
        CREATE TABLE instances (
            instance   TEXT PRIMARY KEY,
            role       TEXT NOT NULL CHECK (role IN ('active', 'standby')),
            started_ms INTEGER NOT NULL,
            seen_ms    INTEGER NOT NULL
        )
        """,
    ),
)

_V11 = Migration(
    version=11,
    description="the webhook's inbox: events a standby accepted, for the active to act on",
    statements=(
        # A standby of an active/standby pair (issue 14) keeps each signed webhook event
        # here, as it was received (the JSON text the client signed), and answers 202; the
        # active acts on it and deletes it in the same transaction.  Unused on SQLite.
        """
        CREATE TABLE event_inbox (
            seq         INTEGER PRIMARY KEY AUTOINCREMENT,
            received_at TEXT NOT NULL,
            -- who sent it (webhook ADDRESS), for the log
            source      TEXT NOT NULL,
            id          TEXT NOT NULL UNIQUE,
            topic       TEXT NOT NULL,
            body        TEXT NOT NULL
        )
        """,
    ),
)

MIGRATIONS: tuple[Migration, ...] = (_V1, _V2, _V3, _V4, _V5, _V6, _V7, _V8, _V9, _V10, _V11)
"""Every step, in order; ``MIGRATIONS[i].version == i + 1``."""

SCHEMA_VERSION = len(MIGRATIONS)
"""The version this code writes and understands."""

for _index, _migration in enumerate(MIGRATIONS):
    if _migration.version != _index + 1:  # pragma: no cover - guards edits to this file
        raise AssertionError(f"migration #{_index} says version {_migration.version}")


def user_version(connection: sqlite3.Connection) -> int:
    """The schema version recorded in the database file (0 for a new file)."""
    row = connection.execute("PRAGMA user_version").fetchone()
    return int(row[0])


def migrate(connection: sqlite3.Connection, *, path: str) -> int:
    """Bring the database up to :data:`SCHEMA_VERSION`; return the version it had.

    ``connection`` must be in autocommit mode (``isolation_level=None``) with no open
    transaction.  ``path`` only names the file in errors.
    """
    found = user_version(connection)
    _refuse_newer(found, path)
    if found == SCHEMA_VERSION:
        return found
    connection.execute("BEGIN IMMEDIATE")
    try:
        # Re-read under the write lock: another process may have migrated meanwhile.
        found = user_version(connection)
        _refuse_newer(found, path)
        if found == 0 and _has_tables(connection):
            raise DeploybotError(
                f"{path}: this SQLite database has tables but no deploybot schema version; "
                "it is not a deploybot database (check the 'database' setting)"
            )
        for migration in MIGRATIONS[found:]:
            migration.apply(connection)
        # PRAGMA takes no parameters; SCHEMA_VERSION is an int constant of this module.
        connection.execute(f"PRAGMA user_version = {int(SCHEMA_VERSION)}")
    except BaseException:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")
    return found


SCHEMA_TABLE = "deploybot_schema"


def postgresql_version(connection: PgConnection) -> int | None:
    """The schema version of a PostgreSQL database: None when it has no deploybot schema
    (no ``deploybot_schema`` table in its current schema)."""
    row = connection.execute("SELECT to_regclass(?) IS NOT NULL", (f"{SCHEMA_TABLE}",)).fetchone()
    if not row[0]:
        return None
    found = connection.execute(f"SELECT max(version) FROM {SCHEMA_TABLE}").fetchone()
    return int(found[0] or 0)


def migrate_postgresql(connection: PgConnection, backend: PostgresBackend, *, path: str) -> int:
    """:func:`migrate` on PostgreSQL: the pending steps, rewritten, in one transaction under
    the store's write lock, and the version in ``deploybot_schema`` in that same one."""
    found = postgresql_version(connection) or 0
    _refuse_newer(found, path)
    if found == SCHEMA_VERSION:
        return found
    backend.begin(connection)
    try:
        version = postgresql_version(connection)  # again, under the lock
        found = version or 0
        _refuse_newer(found, path)
        if version is None:
            tables = connection.execute(
                "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()"
            ).fetchone()
            if tables[0]:
                raise DeploybotError(
                    f"{path}: this PostgreSQL database has tables but no deploybot schema "
                    "version; it is not a deploybot database (check the 'database' setting)"
                )
            connection.execute_schema(f"CREATE TABLE {SCHEMA_TABLE} (version BIGINT NOT NULL)")
        nocase: NocaseColumns = {}
        for migration in MIGRATIONS:
            statements = migration.postgresql_statements(nocase)
            if migration.version <= found:
                continue
            for statement in statements:
                connection.execute_schema(statement)
            if migration.function is not None:
                migration.function(connection)
        connection.execute(f"DELETE FROM {SCHEMA_TABLE}")
        connection.execute(f"INSERT INTO {SCHEMA_TABLE} (version) VALUES (?)", (SCHEMA_VERSION,))
    except BaseException:
        backend.rollback(connection)
        raise
    backend.commit(connection)
    return found


def _refuse_newer(found: int, path: str) -> None:
    if found > SCHEMA_VERSION:
        raise DeploybotError(
            f"{path}: the database has schema version {found}, newer than this "
            f"deploybot knows ({SCHEMA_VERSION}); upgrade deploybot or use another "
            "database file"
        )


def _has_tables(connection: sqlite3.Connection) -> bool:
    row = connection.execute(
        "SELECT count(*) FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"
    ).fetchone()
    return bool(row[0])
