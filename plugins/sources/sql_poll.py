"""``sql-poll``: read a SQL host (OpenEMR first) by rescanning the forward window each cycle.

The SQL is built by SQLAlchemy Core from the names in the mapping file; only columns the host
actually has are selected, so the same ``openemr.yaml`` reads OpenEMR 5.x and 8.x alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import SecretStr
from sqlalchemy import ColumnElement, Select, TableClause, and_, column, select, table, union_all

from bridge.errors import BadHostRow, ConfigError
from bridge.host_sql import HostDatabase
from bridge.mapping import mapping_path, read_mapping_data, validate_mapping
from bridge.mapping.sql import SqlMapping
from bridge.model import Appointment, Patient
from bridge.plugin import CheckLine, PluginConfig, PluginContext, Reference, RejectSink, Source
from plugins.sources.sql_reference import read_reference
from plugins.sources.sql_rows import (
    ROW_KEY,
    appointments_from_rows,
    patient_from_row,
)

PATIENT_BATCH = 1000


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
        self._appointment_columns: dict[str, str] | None = None
        self._appointments: TableClause | None = None
        self._patient_columns: dict[str, str] | None = None

    # --- reference data -----------------------------------------------------------------------

    def reference(self) -> Reference:
        return read_reference(self.db, self.mapping)

    # --- appointments -------------------------------------------------------------------------

    def appointment_columns(self) -> dict[str, str]:
        """Role -> host column for every mapped appointment column the host has."""
        if self._appointment_columns is None:
            m = self.mapping.appointments
            dotted = "appointments.columns"
            required = {"patient", "status", "date", "start_time", "start"}
            if m.recurrence != "none":
                required |= {"recurrence_type", "recurrence_spec", "end_date"}
            found = {"key": self.db.require(m.table, m.key, "appointments.key")}
            for role, name in m.columns.model_dump(exclude_none=True).items():
                if role in required:
                    found[role] = self.db.require(m.table, name, f"{dotted}.{role}")
                elif (present := self.db.optional(m.table, name, f"{dotted}.{role}")) is not None:
                    found[role] = present
            self._appointment_columns = found
        return self._appointment_columns

    def _appointment_table(self) -> TableClause:
        """One table construct for every query, so conditions and selects share it."""
        if self._appointments is None:
            cols = self.appointment_columns()
            self._appointments = table(
                self.mapping.appointments.table, *(column(name) for name in cols.values())
            )
        return self._appointments

    def _appointment_select(self, where: ColumnElement[bool]) -> Select[Any]:
        m = self.mapping.appointments
        cols = self.appointment_columns()
        host = self._appointment_table()
        conditions: list[ColumnElement[bool]] = [where, *self._where(host.c, m.where)]
        patient = host.c[cols["patient"]]
        conditions.append(patient.is_not(None))
        if m.no_patient:
            conditions.append(patient.not_in(m.no_patient))
        return select(*(host.c[name].label(role) for role, name in cols.items())).where(
            and_(*conditions)
        )

    def _window_condition(self, first: date, last: date, recurring: bool) -> ColumnElement[bool]:
        m = self.mapping.appointments
        cols = self.appointment_columns()
        host = self._appointment_table()
        day = host.c[cols["date"]] if "date" in cols else host.c[cols["start"]]
        if "date" not in cols:  # one DATETIME column: compare on the whole days
            first_value: Any = datetime.combine(first, time.min)
            last_value: Any = datetime.combine(last + timedelta(days=1), time.min)
            in_window = and_(day >= first_value, day < last_value)
        else:
            in_window = day.between(first, last)
        kind = host.c[cols["recurrence_type"]] if "recurrence_type" in cols else None
        if kind is None or m.recurrence == "none":
            return in_window
        if not recurring:
            return and_(kind == 0, in_window)
        # A series overlaps the window when it starts before the window ends and ends after it
        # starts. OpenEMR lists no date at all for a series whose end date is NULL or
        # '0000-00-00' (see bridge.recurrence), so comparing the end date drops nothing it shows.
        return and_(kind > 0, day <= last, host.c[cols["end_date"]] >= first)

    def scan(
        self,
        window: tuple[date, date],
        reference: Reference,
        timezone: ZoneInfo,
        reject: RejectSink,
    ) -> Iterator[Appointment]:
        first, last = window
        parts = [self._appointment_select(self._window_condition(first, last, recurring=False))]
        if self.mapping.appointments.recurrence != "none" and "recurrence_type" in (
            self.appointment_columns()
        ):
            parts.append(
                self._appointment_select(self._window_condition(first, last, recurring=True))
            )
        query = union_all(*parts) if len(parts) > 1 else parts[0]
        with self.db.connect() as connection:
            rows = [dict(row._mapping) for row in connection.execute(query)]
        yield from appointments_from_rows(rows, self.mapping, reference, timezone, window, reject)

    def occurrences_of(
        self, key: str, window: tuple[date, date], reference: Reference, timezone: ZoneInfo
    ) -> list[Appointment]:
        m = self.mapping.appointments
        cols = self.appointment_columns()
        host = self._appointment_table()
        with self.db.connect() as connection:
            query = self._appointment_select(host.c[cols["key"]] == _key_value(key))
            rows = [dict(r._mapping) for r in connection.execute(query)]
            group = rows[0].get("group") if rows and m.group_visits else None
            if group not in (None, 0, "0", ""):
                query = self._appointment_select(host.c[cols["group"]] == group)
                rows = [dict(r._mapping) for r in connection.execute(query)]
        found = appointments_from_rows(rows, self.mapping, reference, timezone, window, _ignore)
        return sorted((a for a in found if a.key == key), key=lambda a: a.occurrence)

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
                chunk = [_key_value(k) for k in wanted[start : start + PATIENT_BATCH]]
                for row in connection.execute(query.where(host.c[cols[ROW_KEY]].in_(chunk))):
                    try:
                        yield patient_from_row(row._mapping, m, languages, self.context.region)
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
            # >= not >: rows updated within the same second as the last watermark are read again;
            # the row hash makes that harmless.
            query = query.where(host.c[stamp] >= watermark)
        with self.db.connect() as connection:
            rows = connection.execute(query).all()
        if not rows:
            return set(), watermark
        newest = max(str(row[1]) for row in rows if row[1] is not None)
        return {str(row[0]) for row in rows}, newest

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

    # --- check --------------------------------------------------------------------------------

    def check(self) -> list[CheckLine]:
        from plugins.sources.sql_check import check_source

        return check_source(self)

    def close(self) -> None:
        self.db.close()


def _key_value(key: str) -> Any:
    """Host keys are compared as the host stores them (OpenEMR ``pc_eid`` is an integer)."""
    return int(key) if key.isdigit() else key


def _ignore(_: BadHostRow) -> None:
    """Re-reading one row for the last check: problems were reported by the scan already."""
