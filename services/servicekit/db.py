"""The one place that knows the two SQL dialects the services run on: SQLite (a file, the
laptop default) and PostgreSQL (the cluster). Queries are written once, with %s placeholders."""

import logging
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

import psycopg
import psycopg_pool

from servicekit.settings import ConfigError

log = logging.getLogger("db")

Row = tuple[Any, ...]


class Cursor(Protocol):
    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any: ...
    def executemany(self, sql: str, params: Sequence[Sequence[Any]]) -> Any: ...
    def fetchone(self) -> Row | None: ...
    def fetchall(self) -> list[Row]: ...
    @property
    def rowcount(self) -> int: ...


class DatabaseUnavailable(RuntimeError):
    """The database did not answer; callers turn this into a 503, never a traceback."""


@dataclass(frozen=True)
class Migration:
    """One schema step. Statements may use {money}, {timestamp} and {epoch}, filled in per
    dialect; `postgresql` and `sqlite` hold what only one dialect runs, after `statements`."""

    version: int
    statements: tuple[str, ...]
    postgresql: tuple[str, ...] = ()
    sqlite: tuple[str, ...] = ()


_TYPES = {
    # SQLite's NUMERIC affinity would turn 12.15 into a float; TEXT keeps it exact.
    # Epoch seconds (a float) for times the app compares: one meaning in both dialects.
    "sqlite": {"money": "TEXT", "timestamp": "TEXT", "epoch": "REAL"},
    "postgresql": {
        "money": "NUMERIC(12, 2)",
        "timestamp": "TIMESTAMPTZ",
        "epoch": "DOUBLE PRECISION",
    },
}


class Database:
    def __init__(self, url: str, *, pool_size: int = 8, connect_timeout: float = 5.0) -> None:
        self.url = url
        if url.startswith(("postgresql://", "postgres://")):
            self.dialect = "postgresql"
            self._pool = psycopg_pool.ConnectionPool(
                url,
                min_size=1,
                max_size=pool_size,
                timeout=connect_timeout,
                # A restarted or failed-over database leaves dead connections in the pool;
                # checking on checkout replaces them instead of failing a request with them.
                check=psycopg_pool.ConnectionPool.check_connection,
                open=False,
                kwargs={"connect_timeout": max(1, int(connect_timeout))},
            )
            # Opening without waiting lets the service start (and report not-ready) while
            # the database is still coming up.
            self._pool.open(wait=False)
        elif url.startswith("sqlite:///"):
            self.dialect = "sqlite"
            self._sqlite_path = url.removeprefix("sqlite:///")
            self._local = threading.local()
        else:
            # Only the scheme: the rest of a database URL may hold its password.
            raise ConfigError("DATABASE_URL must start with sqlite:/// or postgresql://")
        self._timeout = connect_timeout

    def close(self) -> None:
        if self.dialect == "postgresql":
            self._pool.close()

    @contextmanager
    def transaction(self, *, write: bool = False) -> Iterator[Cursor]:
        """A cursor inside one transaction: committed on success, rolled back on error."""
        if self.dialect == "postgresql":
            with self._postgres_transaction() as cursor:
                yield cursor
        else:
            with self._sqlite_transaction(write) as cursor:
                yield cursor

    @contextmanager
    def _postgres_transaction(self) -> Iterator[Cursor]:
        try:
            with self._pool.connection() as connection, connection.cursor() as cursor:
                yield cursor
        except (psycopg_pool.PoolTimeout, psycopg.OperationalError) as error:
            raise DatabaseUnavailable(f"PostgreSQL is unavailable: {error}") from None

    @contextmanager
    def _sqlite_transaction(self, write: bool) -> Iterator[Cursor]:
        try:
            with self._sqlite_locked_transaction(write) as cursor:
                yield cursor
        except sqlite3.OperationalError as error:
            # "database is locked": another writer held it for longer than the timeout.
            if "locked" not in str(error) and "busy" not in str(error):
                raise
            raise DatabaseUnavailable(f"SQLite is busy: {error}") from None

    @contextmanager
    def _sqlite_locked_transaction(self, write: bool) -> Iterator[Cursor]:
        connection = self._sqlite_connection()
        # IMMEDIATE takes the write lock up front, so writers queue instead of deadlocking.
        connection.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        try:
            yield _SqliteCursor(connection.cursor())
        except BaseException:
            connection.rollback()
            raise
        connection.commit()

    def _sqlite_connection(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(
                self._sqlite_path,
                timeout=self._timeout,
                isolation_level=None,
                check_same_thread=False,
            )
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA foreign_keys=ON")
            self._local.connection = connection
        return connection

    def pool_stats(self) -> dict[str, float]:
        """The PostgreSQL pool's size and use, for metrics (SQLite has no pool)."""
        if self.dialect != "postgresql":
            return {}
        stats = self._pool.get_stats()
        return {
            "db_pool_size": stats.get("pool_size", 0),
            "db_pool_available": stats.get("pool_available", 0),
            "db_pool_max": stats.get("pool_max", 0),
            "db_pool_requests_waiting": stats.get("requests_waiting", 0),
        }

    def ping(self) -> bool:
        try:
            with self.transaction() as cursor:
                cursor.execute("SELECT 1")
                return cursor.fetchone() == (1,)
        except (DatabaseUnavailable, psycopg.Error, sqlite3.Error) as error:
            log.warning("database ping failed: %s", error)
            return False

    def migrate_when_reachable(
        self, name: str, migrations: Sequence[Migration], *, wait_seconds: float
    ) -> list[int]:
        """Migrates, waiting for the database to come up first: in a cluster the service and
        its database start together, and crash-looping meanwhile only slows both down."""
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                return self.migrate(name, migrations)
            except DatabaseUnavailable as error:
                if time.monotonic() > deadline:
                    raise
                log.warning("waiting for the database: %s", error)
                time.sleep(2)

    def migrate(self, name: str, migrations: Sequence[Migration]) -> list[int]:
        """Applies the migrations not yet applied, in order; safe to run from every replica
        at once (PostgreSQL takes an advisory lock, SQLite its write lock)."""
        types = _TYPES[self.dialect]
        applied: list[int] = []
        with self.transaction(write=True) as cursor:
            if self.dialect == "postgresql":
                cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (name,))
            cursor.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY)"
            )
            cursor.execute("SELECT version FROM schema_migrations")
            done = {row[0] for row in cursor.fetchall()}
            for migration in sorted(migrations, key=lambda m: m.version):
                if migration.version in done:
                    continue
                for statement in (*migration.statements, *getattr(migration, self.dialect)):
                    cursor.execute(statement.format(**types))
                cursor.execute(
                    "INSERT INTO schema_migrations (version) VALUES (%s)", (migration.version,)
                )
                applied.append(migration.version)
        if applied:
            log.info("schema migrated", extra={"schema": name, "versions": applied})
        return applied


POOL_METRICS = {
    "db_pool_size": "Connections the pool holds now.",
    "db_pool_available": "Idle connections in the pool.",
    "db_pool_max": "The most connections the pool may open (DATABASE_POOL_SIZE).",
    "db_pool_requests_waiting": "Requests waiting for a connection.",
}


class _SqliteCursor:
    """sqlite3's cursor, speaking the %s placeholders that psycopg uses."""

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._cursor.execute(sql.replace("%s", "?"), _plain(params))

    def executemany(self, sql: str, params: Sequence[Sequence[Any]]) -> Any:
        return self._cursor.executemany(sql.replace("%s", "?"), [_plain(p) for p in params])

    def fetchone(self) -> Row | None:
        return self._cursor.fetchone()

    def fetchall(self) -> list[Row]:
        return self._cursor.fetchall()

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount


def _plain(params: Sequence[Any]) -> tuple[Any, ...]:
    # sqlite3 has no Decimal adapter; money is stored as its exact text.
    return tuple(str(p) if isinstance(p, Decimal) else p for p in params)
