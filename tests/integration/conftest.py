"""Fixtures for tests against a real MariaDB holding OpenEMR tables.

Two kinds of host database, and every host test runs on both:

- ``own-ddl``: tables from the project's own DDL (``bridge.demo.openemr_tables``), built as an
  older OpenEMR has them (no ``uuid``, no ``patient_data.last_updated``, zero-date end dates);
- ``genuine``: OpenEMR 8.2's genuine schema and seed rows from ``../shared/fixtures/openemr``,
  loaded once per session with the ``mariadb`` client and emptied of appointments and patients
  before each test.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from bridge.cli import main
from bridge.clock import ManualClock, parse_instant
from bridge.cycle import CycleReport, run_cycle
from bridge.demo.host import OpenEmrHost
from bridge.demo.openemr_tables import create_openemr_tables
from bridge.dispatcher import Dispatcher, DispatchReport
from bridge.model import Channel
from bridge.runtime import Runtime
from bridge.settings import load_settings
from bridge.store.schema import jobs
from tests.conftest import drop_mariadb, fresh_mariadb, unavailable

GENUINE_SCHEMA = "fixtures/openemr/openemr-8.2.0-dev-database.sql"
DATA_TABLES = (
    "openemr_postcalendar_events",
    "patient_data",
    "users",
    "facility",
    "notification_log",
)


@pytest.fixture(scope="session")
def genuine_database(mariadb_admin: str, shared_dir: Path) -> Iterator[str]:
    """OpenEMR's genuine schema, loaded once; yields its URL."""
    client = shutil.which("mariadb") or shutil.which("mysql")
    if client is None:
        unavailable("the mariadb command-line client is needed to load the genuine schema")
    name, url = fresh_mariadb(mariadb_admin, "bridge_genuine")
    dump = (shared_dir / GENUINE_SCHEMA).read_bytes()
    done = subprocess.run(
        [str(client), "-h127.0.0.1", "-P3306", "-uroot", name],
        input=dump,
        capture_output=True,
        check=False,
        timeout=300,
    )
    if done.returncode != 0:
        drop_mariadb(mariadb_admin, name)
        pytest.fail(f"loading the genuine OpenEMR schema failed: {done.stderr.decode()[:500]}")
    try:
        yield url
    finally:
        drop_mariadb(mariadb_admin, name)


@pytest.fixture(params=["own-ddl", "genuine"])
def host_url(request: pytest.FixtureRequest, mariadb_admin: str) -> Iterator[str]:
    """An OpenEMR host database with no appointments, patients, users or facilities yet."""
    if request.param == "genuine":
        url = request.getfixturevalue("genuine_database")
        engine = sa.create_engine(url)
        with engine.begin() as connection:
            for name in DATA_TABLES:
                connection.execute(sa.text(f"DELETE FROM `{name}`"))
            connection.execute(sa.text("DELETE FROM globals WHERE gl_name = 'gbl_time_zone'"))
        engine.dispose()
        yield url
        return
    name, url = fresh_mariadb(mariadb_admin)
    engine = sa.create_engine(url)
    create_openemr_tables(engine, legacy=True)
    engine.dispose()
    try:
        yield url
    finally:
        drop_mariadb(mariadb_admin, name)


@pytest.fixture
def host(host_url: str) -> Iterator[OpenEmrHost]:
    engine = sa.create_engine(host_url)
    openemr = OpenEmrHost(engine)
    openemr.seed_reference()
    openemr.add_facility(1, "Synthetic Clinic", phone="(202) 555-0199", city="Springfield")
    openemr.add_provider(1, "Ada", "Rossi", title="Dr.", facility_id=1)
    openemr.add_provider(2, "Ben", "Okafor", title="Dr.", facility_id=1)
    yield openemr
    engine.dispose()


@dataclass
class Bridge:
    """The bridge as a clinic runs it: a settings file, a store, the outbox, a manual clock."""

    folder: Path
    settings_file: Path
    clock: ManualClock
    _runtime: Runtime | None = None

    @property
    def runtime(self) -> Runtime:
        if self._runtime is None:
            self._runtime = Runtime.build(load_settings(self.settings_file), self.clock)
        return self._runtime

    def at(self, instant: str) -> Bridge:
        self.clock.set(parse_instant(instant))
        return self

    def cycle(self) -> CycleReport:
        return run_cycle(self.runtime)

    def dispatch(self) -> DispatchReport:
        return Dispatcher(self.runtime).run_due()

    def cli(self, *args: str) -> tuple[int, str]:
        """Run the command line in-process; returns (exit status, standard output)."""
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            status = main(["--config", str(self.settings_file), *args])
        return status, out.getvalue()

    def plan(self, now: str) -> list[dict[str, Any]]:
        status, out = self.cli("plan", "--json", "--now", now)
        assert status == 0, out
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def jobs(self) -> list[dict[str, Any]]:
        with self.runtime.store.begin("read") as connection:
            rows = connection.execute(sa.select(jobs).order_by(jobs.c.id)).all()
        return [dict(row._mapping) for row in rows]

    def outbox(self, channel: Channel | str) -> list[dict[str, Any]]:
        path = self.folder / "outbox" / f"{Channel(channel).value}.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def close(self) -> None:
        if self._runtime is not None:
            self._runtime.close()
            self._runtime = None


def write_settings(folder: Path, host_url: str, store_url: str, **sections: Any) -> Path:
    """A settings file like a clinic's, with ``sections`` merged over the test defaults."""
    settings: dict[str, Any] = {
        "mode": "live",
        "clinic": {"name": "Synthetic Clinic", "timezone": "Europe/Rome", "region": "US"},
        "testing": {"phone": "+12025550100", "email": "front-desk@example.test"},
        "host": {"url": host_url, "mapping": "openemr"},
        "store": {"url": store_url},
        "reminders": {"days_ahead": 3, "channels": ["sms", "email"]},
        "channels": {c.value: {"plugin": "outbox", "folder": "outbox"} for c in Channel},
        "log": {"level": "WARNING"},
    }
    for section, values in sections.items():
        if isinstance(values, dict) and isinstance(settings.get(section), dict):
            settings[section] = {**settings[section], **values}
        else:
            settings[section] = values
    path = folder / "settings.yaml"
    path.write_text(yaml.safe_dump(settings, sort_keys=False))
    return path


@pytest.fixture
def make_bridge(tmp_path: Path, host_url: str, store_url: str) -> Iterator[Any]:
    made: list[Bridge] = []

    def factory(now: str = "2026-03-27T06:30:00Z", **sections: Any) -> Bridge:
        folder = tmp_path / f"bridge{len(made)}"
        folder.mkdir()
        path = write_settings(folder, host_url, store_url, **sections)
        bridge = Bridge(folder, path, ManualClock(parse_instant(now)))
        made.append(bridge)
        return bridge

    yield factory
    for bridge in made:
        bridge.close()


def utc(text: str) -> datetime:
    return parse_instant(text)
