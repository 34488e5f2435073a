"""Connecting to the store: SQLite (WAL) by default, PostgreSQL by URL, the same code.

Driver errors are converted to ``StoreError`` here and nowhere else.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, Table, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, OperationalError

from bridge.errors import ConfigError, StoreError

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def create_store_engine(url: str) -> Engine:
    """An engine for the store URL; SQLite gets WAL, a busy time-out and foreign keys."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError(f"store.url = {url!r}: not a database URL ({exc})") from exc
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise ConfigError(
            f"store.url: {parsed.get_backend_name()!r}: expected sqlite or postgresql"
        )
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    try:
        engine = create_engine(parsed, pool_pre_ping=True)
    except NoSuchModuleError as exc:
        raise ConfigError(f"store.url: no driver for {parsed.drivername} ({exc})") from exc
    except ModuleNotFoundError as exc:
        raise ConfigError(
            f"store.url: the driver {exc.name} is not installed: "
            "pip install 'reminder-bridge[postgres]'"
        ) from exc
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def migrate(engine: Engine) -> None:
    """Apply every Alembic migration up to every head (idempotent; run at every start).

    "heads", not "head": a feature may add its own branch of migrations off the trunk."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "heads")
    except OperationalError as exc:
        raise StoreError(f"store: cannot apply migrations ({exc.orig})") from exc


@contextmanager
def store_errors(action: str) -> Iterator[None]:
    """Convert database driver errors into ``StoreError`` naming what was being done."""
    try:
        yield
    except DBAPIError as exc:
        raise StoreError(f"store: {action} failed ({type(exc.orig).__name__}: {exc.orig})") from exc


def upsert(
    connection: Connection,
    table: Table,
    rows: Sequence[dict[str, Any]],
    keys: Sequence[str],
    update: Sequence[str],
) -> None:
    """Insert ``rows``, updating ``update`` columns where the ``keys`` already exist."""
    if not rows:
        return
    statement = _insert(connection, table)
    excluded = statement.excluded
    connection.execute(
        statement.on_conflict_do_update(
            index_elements=list(keys), set_={c: excluded[c] for c in update}
        ),
        list(rows),
    )


def insert_ignore(
    connection: Connection, table: Table, row: dict[str, Any], keys: Sequence[str]
) -> bool:
    """Insert ``row`` unless the unique ``keys`` already exist; True when it was inserted."""
    statement = _insert(connection, table).on_conflict_do_nothing(index_elements=list(keys))
    # RETURNING, not rowcount: psycopg reports -1 rows for an INSERT that returns rows.
    inserted = connection.execute(statement.values(**row).returning(table.c[keys[0]])).first()
    return inserted is not None


def _insert(connection: Connection, table: Table) -> Any:
    """The dialect's INSERT with ``ON CONFLICT`` (the store runs on PostgreSQL or SQLite)."""
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)
