"""The bridge's own store: snapshots of what the host holds, the job queue and its event log.

``Store.open(url)`` connects and applies migrations; every read or write goes through
``store.begin()``, which converts driver errors into ``StoreError``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine

from bridge.store.engine import create_store_engine, migrate, store_errors


class Store:
    """A handle on the store database (SQLite by default, PostgreSQL by URL)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: str, *, apply_migrations: bool = True) -> Store:
        """Connect to ``url``; by default bring the schema to the newest migration."""
        engine = create_store_engine(url)
        if apply_migrations:
            migrate(engine)
        return cls(engine)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def begin(self, action: str = "write") -> Iterator[Connection]:
        """A transaction; committed on success, rolled back on error."""
        with store_errors(action), self.engine.begin() as connection:
            yield connection

    def close(self) -> None:
        self.engine.dispose()
