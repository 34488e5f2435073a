"""Fixtures shared by the online booking tests (real MariaDB OpenEMR tables, see
``tests/integration/conftest.py``). Keep it to general fixtures; a test module's own scenario
stays in the module.

- ``store_url``: SQLite unless a test asks for both stores, with
  ``@pytest.mark.parametrize("store_url", ["sqlite", "postgresql"], indirect=True)``;
- the genuine database is shared by the session: each test that uses ``host`` starts without
  staff notes or Flow Board rows;
- ``tcp_proxy``: the host taken away and brought back (``tests/integration/patient``'s proxy).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import drop_postgres, fresh_postgres
from tests.integration.patient.conftest import WRITE_BACK_TABLES, tcp_proxy

__all__ = ["tcp_proxy"]  # the patient tests' fixture, shared here


@pytest.fixture
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """SQLite, or a fresh PostgreSQL database when parametrized indirectly."""
    if getattr(request, "param", "sqlite") == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.sqlite'}"
        return
    admin = request.getfixturevalue("postgres_admin")
    name, url = fresh_postgres(admin)
    try:
        yield url
    finally:
        drop_postgres(admin, name)


@pytest.fixture(autouse=True)
def _empty_write_back_tables(request: pytest.FixtureRequest) -> None:
    if "host" not in request.fixturenames:
        return
    host = request.getfixturevalue("host")
    with host.engine.begin() as connection:
        for name in WRITE_BACK_TABLES:
            connection.execute(sa.text(f"DELETE FROM `{name}`"))
