"""Shared fixtures: real services on loopback, the shared fixtures folder, stores on both dialects.

A test that needs MariaDB, PostgreSQL or ``../shared`` skips with the reason on a developer's
machine when it is missing, and fails under ``CI=true`` (CI must never pass by skipping).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
IN_CI = os.environ.get("CI", "").lower() == "true"

MARIADB_ADMIN = os.environ.get("BRIDGE_TEST_MARIADB", "mysql+pymysql://root@127.0.0.1:3306/")
POSTGRES_ADMIN = os.environ.get(
    "BRIDGE_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def unavailable(reason: str) -> None:
    """Skip on a developer machine; fail in CI."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: every service and ../shared must be present)")
    pytest.skip(reason)


def _reachable(url: str) -> str | None:
    try:
        engine = sa.create_engine(url, connect_args={"connect_timeout": 3})
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
        engine.dispose()
    except Exception as exc:  # any driver error means "not here"
        return f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    return None


@pytest.fixture(scope="session")
def mariadb_admin() -> str:
    problem = _reachable(MARIADB_ADMIN)
    if problem:
        unavailable(f"MariaDB is not reachable at {MARIADB_ADMIN}: {problem}")
    return MARIADB_ADMIN


@pytest.fixture(scope="session")
def postgres_admin() -> str:
    problem = _reachable(POSTGRES_ADMIN)
    if problem:
        unavailable(f"PostgreSQL is not reachable at {POSTGRES_ADMIN}: {problem}")
    return POSTGRES_ADMIN


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not (SHARED / "fixtures").is_dir():
        unavailable(f"the shared fixtures folder is missing: {SHARED}")
    return SHARED


def fresh_mariadb(admin: str, prefix: str = "bridge_test") -> tuple[str, str]:
    """Create an empty database; returns (name, url)."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(admin)
    with engine.begin() as connection:
        connection.execute(sa.text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    engine.dispose()
    return name, f"{admin.rstrip('/')}/{name}?charset=utf8mb4"


def drop_mariadb(admin: str, name: str) -> None:
    engine = sa.create_engine(admin)
    with engine.begin() as connection:
        connection.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))
    engine.dispose()


def fresh_postgres(admin: str, prefix: str = "bridge_store") -> tuple[str, str]:
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    base = admin.rsplit("/", 1)[0]
    return name, f"{base}/{name}"


def drop_postgres(admin: str, name: str) -> None:
    engine = sa.create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty store: SQLite in a temporary folder, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.sqlite'}"
        return
    admin = request.getfixturevalue("postgres_admin")
    name, url = fresh_postgres(admin)
    try:
        yield url
    finally:
        drop_postgres(admin, name)
