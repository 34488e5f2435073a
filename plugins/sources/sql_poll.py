"""``sql-poll``: read a SQL host (OpenEMR first) by rescanning the forward window each cycle.

The SQL is built by SQLAlchemy Core from the names in the mapping file; only columns the host
actually has are selected, so the same ``openemr.yaml`` reads OpenEMR 5.x and 8.x alike.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Iterator
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import SecretStr
from sqlalchemy import ColumnElement, column, func, select, table

from bridge.errors import BadHostRow, ConfigError
from bridge.host_sql import HostDatabase, key_value
from bridge.mapping import mapping_path, read_mapping_data, validate_mapping
from bridge.mapping.sql import SqlMapping
from bridge.model import Appointment, Patient
from bridge.plugin import (
    CalendarEntry,
    CalendarSettings,
    CheckLine,
    HostRecall,
    LastVisit,
    PluginConfig,
    PluginContext,
    Reference,
    RejectSink,
    Sighting,
    Source,
)
from plugins.sources.sql_appointments import AppointmentReader
from plugins.sources.sql_calendar import CalendarReader
from plugins.sources.sql_history import History
from plugins.sources.sql_reference import read_reference
from plugins.sources.sql_rows import ROW_KEY, patient_from_row

PATIENT_BATCH = 1000
WATERMARK_LAG = timedelta(seconds=2)


class SqlPollConfig(PluginConfig):
    url: str
    mapping: str = "openemr"
    password: SecretStr | None = None


class SqlPoll(Source[SqlPollConfig]):
    """Polls a SQL host described by a ``kind: sql`` mapping."""

    name = "sql-poll"
    Config = SqlPollConfig

    def __init__(self, config: SqlPollConfig, context: PluginContext) -> None:
        super().__init__(config, context)
        self.mapping_file = mapping_path(config.mapping, context.base_dir)
        data = read_mapping_data(self.mapping_file)
        if data.get("kind") != "sql":
            raise ConfigError(
                f"{self.mapping_file}: kind = {data.get('kind')!r}: the sql-poll source needs "
                "a mapping of kind sql"
            )
        self.mapping = validate_mapping(SqlMapping, data, self.mapping_file)
        self.db = HostDatabase(config.url, self.mapping_file)
        self.appointments = AppointmentReader(self.db, self.mapping, context.clock)
        self._signature = hashlib.blake2b(
            self.mapping.model_dump_json().encode(), digest_size=16
        ).hexdigest()
        self._patient_columns: dict[str, str] | None = None
        self._calendar_reader: CalendarReader | None = None
        self._history_reader: History | None = None

    # --- reference data -----------------------------------------------------------------------

    def reference(self) -> Reference:
        return read_reference(self.db, self.mapping)

    # --- appointments -------------------------------------------------------------------------

    def appointment_columns(self) -> dict[str, str]:
        """Role -> host column for every mapped appointment column the host has."""
        return self.appointments.columns()

    def scan(
        self,
        window: tuple[date, date],
        reference: Reference,
        timezone: ZoneInfo,
        reject: RejectSink,
    ) -> list[Sighting]:
        return self.appointments.scan(window, reference, timezone, reject)

    def occurrences_of(
        self, key: str, window: tuple[date, date], reference: Reference, timezone: ZoneInfo
    ) -> list[Appointment]:
        return self.appointments.occurrences_of(key, window, reference, timezone)

    def signature(self) -> str:
        return self._signature

    # --- patients -----------------------------------------------------------------------------

    def patient_columns(self) -> dict[str, str]:
        """Role -> host column for every mapped patient column the host has."""
        if self._patient_columns is None:
            m = self.mapping.patients
            found = {ROW_KEY: self.db.require(m.table, m.key, "patients.key")}
            for role in ("first_name", "last_name"):
                found[role] = self.db.require(
                    m.table, getattr(m.columns, role), f"patients.columns.{role}"
                )
            for role, name in m.columns.model_dump(exclude_none=True).items():
                if role not in found and (
                    present := self.db.optional(m.table, name, f"patients.columns.{role}")
                ):
                    found[role] = present
            for channel, consent in m.consent.items():
                if present := self.db.optional(
                    m.table, consent.column, f"patients.consent.{channel.value}.column"
                ):
                    found[f"consent_{channel.value}"] = present
            if m.preference and (
                present := self.db.optional(m.table, m.preference.column, "patients.preference")
            ):
                found["preference"] = present
            self._patient_columns = found
        return self._patient_columns

    def patients(self, keys: Iterable[str], reject: RejectSink) -> Iterator[Patient]:
        m = self.mapping.patients
        cols = self.patient_columns()
        host = table(m.table, *(column(name) for name in cols.values()))
        query = select(*(host.c[name].label(role) for role, name in cols.items()))
        wanted = sorted(set(keys))
        languages = self._languages()
        with self.db.connect() as connection:
            for start in range(0, len(wanted), PATIENT_BATCH):
                chunk = [key_value(k) for k in wanted[start : start + PATIENT_BATCH]]
                for row in connection.execute(query.where(host.c[cols[ROW_KEY]].in_(chunk))):
                    try:
                        yield patient_from_row(
                            dict(row._mapping), m, languages, self.context.region
                        )
                    except BadHostRow as exc:
                        reject(exc)

    def changed_patient_keys(self, watermark: str | None) -> tuple[set[str], str | None] | None:
        m = self.mapping.patients
        stamp = self.db.optional(m.table, m.changed_since, "patients.changed_since")
        if stamp is None:
            return None
        key = self.db.require(m.table, m.key, "patients.key")
        host = table(m.table, column(key), column(stamp))
        query = select(host.c[key], host.c[stamp])
        if watermark:
            query = query.where(host.c[stamp] > watermark)
        with self.db.connect() as connection:
            host_now = connection.execute(select(func.now())).scalar()
            rows = connection.execute(query).all()
        if not rows:
            return set(), watermark
        newest = max(row[1] for row in rows if row[1] is not None)
        # The stamp has whole seconds: a row updated later in the second we read could carry
        # the same stamp as ``newest``. Holding the watermark a little behind the host's clock
        # reads the last seconds again next cycle (harmless: the row hash finds no change)
        # instead of missing them.
        if isinstance(host_now, datetime) and isinstance(newest, datetime):
            newest = min(newest, host_now - WATERMARK_LAG)
        return {str(row[0]) for row in rows}, str(newest)

    def _languages(self) -> dict[str, str]:
        lookup = self.mapping.patients.language_list
        if lookup is None:
            return {}
        self.db.columns(lookup.table, "patients.language_list.table")
        host = table(
            lookup.table,
            column(lookup.code),
            column(lookup.iso),
            *(column(c) for c in lookup.where),
        )
        query = select(host.c[lookup.code], host.c[lookup.iso]).where(
            *self._where(host.c, lookup.where)
        )
        with self.db.connect() as connection:
            return {
                str(code).strip().lower(): str(iso).strip().lower()
                for code, iso in connection.execute(query)
                if iso and str(iso).strip()
            }

    @staticmethod
    def _where(columns: Any, where: dict[str, Any]) -> list[ColumnElement[bool]]:
        conditions: list[ColumnElement[bool]] = []
        for name, value in where.items():
            target = columns[name] if name in columns else column(name)
            conditions.append(target.in_(value) if isinstance(value, list) else target == value)
        return conditions

    # --- online booking and recalls (plugins.sources.sql_calendar, sql_history) ---------------

    def calendar(
        self, providers: Collection[str], window: tuple[date, date], reference: Reference
    ) -> list[CalendarEntry]:
        with self.db.connect() as connection:
            return self._calendar().entries(connection, providers, window, reference)

    def _calendar(self) -> CalendarReader:
        if self._calendar_reader is None:
            self._calendar_reader = CalendarReader(
                self.db, self.mapping, self.appointment_columns()
            )
        return self._calendar_reader

    def calendar_settings(self) -> CalendarSettings:
        return self._history().calendar_settings()

    def last_visits(
        self,
        services: Collection[str],
        since: date,
        before: date,
        reference: Reference,
        *,
        attended_only: bool = False,
    ) -> list[LastVisit]:
        return self._history().last_visits(services, since, before, reference, attended_only)

    def booked_patients(
        self, patient_keys: Collection[str] | None, since: date, reference: Reference
    ) -> set[str]:
        return self._history().booked_patients(patient_keys, since, reference)

    def recall_list(self, until: date) -> list[HostRecall]:
        return self._history().recall_list(until)

    def find_patients(self, birth_date: date, contact: str, reject: RejectSink) -> list[Patient]:
        with self.db.connect() as connection:
            keys = self._history().patient_keys_born(connection, birth_date)
        wanted = contact.strip().lower()
        return [
            patient
            for patient in self.patients(keys, reject)
            if patient.birth_date == birth_date
            and wanted in {(patient.email or "").lower(), patient.mobile or ""} - {""}
        ]

    def _history(self) -> History:
        if self._history_reader is None:
            self._history_reader = History(self.db, self.mapping, self.appointment_columns())
        return self._history_reader

    # --- check --------------------------------------------------------------------------------

    def check(self) -> list[CheckLine]:
        from plugins.sources.sql_check import check_source

        return check_source(self)

    def close(self) -> None:
        self.db.close()
