"""A connection to a SQL host (OpenEMR on MariaDB/MySQL, anything SQLAlchemy can reach).

Driver errors are converted here, in one place: cannot connect -> ``HostUnavailable``; a table or
column the mapping names but the host lacks -> ``MappingError`` citing the mapping's dotted path.
Which optional columns exist is read once per connection, so old host versions (no ``uuid``, no
``patient_data.last_updated``) work with the same mapping.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, inspect
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    InterfaceError,
    NoSuchModuleError,
    NoSuchTableError,
    OperationalError,
)

from bridge.errors import ConfigError, HostUnavailable, MappingError, SourceError

log = logging.getLogger(__name__)

# MySQL error numbers that mean "the server is not there (now)", not "your query is wrong".
_UNAVAILABLE = {1040, 1045, 1049, 1053, 2002, 2003, 2005, 2006, 2013, 2055}


def host_url(url: str) -> URL:
    """Parse the host URL; a bare ``mysql://`` or ``mariadb://`` gets the pymysql driver."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError(f"host.url: not a database URL ({exc})") from exc
    if parsed.drivername in ("mysql", "mariadb"):
        parsed = parsed.set(drivername=f"{parsed.drivername}+pymysql")
    if parsed.get_backend_name() in ("mysql", "mariadb"):
        query = dict(parsed.query)
        query.setdefault("charset", "utf8mb4")
        parsed = parsed.set(query=query)
    return parsed


class HostDatabase:
    """The host's database: an engine, error conversion and column introspection."""

    def __init__(self, url: str, mapping_file: Path) -> None:
        self.url = host_url(url)
        self.mapping_file = mapping_file
        try:
            self.engine: Engine = create_engine(
                self.url, pool_pre_ping=True, pool_recycle=3600, future=True
            )
        except (NoSuchModuleError, ModuleNotFoundError) as exc:
            raise ConfigError(
                f"host.url: no driver for {self.url.drivername} ({exc}); for ODBC hosts: "
                "pip install 'reminder-bridge[odbc]'"
            ) from exc
        self._columns: dict[str, set[str]] = {}

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        """A read connection with driver errors converted."""
        with self.errors(), self.engine.connect() as connection:
            yield connection

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A write transaction with driver errors converted."""
        with self.errors(), self.engine.begin() as connection:
            yield connection

    @contextmanager
    def errors(self) -> Iterator[None]:
        """Convert driver exceptions into the bridge's tree."""
        try:
            yield
        except (OperationalError, InterfaceError) as exc:
            if _is_unavailable(exc):
                raise HostUnavailable(f"host database unavailable: {_short(exc)}") from exc
            raise SourceError(f"host query failed: {_short(exc)}") from exc
        except DBAPIError as exc:
            raise SourceError(f"host query failed: {_short(exc)}") from exc

    def columns(self, table: str, dotted: str) -> set[str]:
        """The host table's column names; ``dotted`` is the mapping path naming the table."""
        if table not in self._columns:
            with self.errors(), self.engine.connect() as connection:
                try:
                    found = inspect(connection).get_columns(table)
                except NoSuchTableError as exc:
                    raise MappingError(
                        f"{self.mapping_file}: {dotted} = {table!r}: no such table on the host"
                    ) from exc
            self._columns[table] = {str(column["name"]) for column in found}
        return self._columns[table]

    def require(self, table: str, column: str, dotted: str) -> str:
        """``column`` if the table has it, else a ``MappingError`` citing ``dotted``."""
        if column not in self.columns(table, dotted.rsplit(".", 1)[0]):
            raise MappingError(
                f"{self.mapping_file}: {dotted} = {column!r}: table {table} has no such column"
            )
        return column

    def optional(self, table: str, column: str | None, dotted: str) -> str | None:
        """``column`` if given and present; None (with a debug line) on older host versions."""
        if column is None:
            return None
        if column not in self.columns(table, dotted.rsplit(".", 1)[0]):
            log.debug("host table %s has no column %s (%s); skipping it", table, column, dotted)
            return None
        return column

    def close(self) -> None:
        self.engine.dispose()


def key_value(key: str) -> Any:
    """A host key as the host stores it: OpenEMR's ``pc_eid`` and ``pid`` are integers, and
    comparing an integer column with a string defeats MySQL's index."""
    return int(key) if key.isdigit() else key


def _is_unavailable(exc: DBAPIError) -> bool:
    """Down, unreachable, refusing or locked: worth retrying as is (not a wrong query)."""
    if isinstance(exc, InterfaceError) or exc.connection_invalidated:
        return True
    code = _mysql_code(exc)
    if code is not None:
        return code in _UNAVAILABLE
    message = str(exc.orig).lower()
    return any(word in message for word in _UNAVAILABLE_WORDS)


_UNAVAILABLE_WORDS = (
    "connect",
    "unable to open",
    "locked",
    "timeout",
    "timed out",
    "server closed",
)


def _mysql_code(exc: DBAPIError) -> int | None:
    args = getattr(exc.orig, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def _short(exc: DBAPIError) -> str:
    return f"{type(exc.orig).__name__}: {exc.orig}".splitlines()[0][:300]
