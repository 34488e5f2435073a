"""What recalls and booking need from a SQL host besides the forward window: each patient's last
visit of a kind, who already has an appointment ahead, the recalls staff keep on the host, a
patient found by birth date and phone or email, and the host's calendar grid.

Each is one aggregate query through the host's indexes (OpenEMR: ``pc_eventDate``,
``patient_data.DOB``), so a daily recall over a large practice costs a few seconds, not a scan
per patient.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from datetime import date, time
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, column, func, or_, select, table

from bridge.errors import MappingError
from bridge.host_sql import HostDatabase, key_value
from bridge.mapping.sql import SqlMapping
from bridge.mapping.sql_booking import HostValue
from bridge.model import StatusClass
from bridge.plugin import CalendarSettings, HostRecall, LastVisit, Reference
from plugins.sources.sql_rows import as_int, as_text, optional_date

log = logging.getLogger(__name__)

KEY_BATCH = 1000
_GONE = (StatusClass.CANCELLED, StatusClass.NO_SHOW)
_ATTENDED = (StatusClass.CHECKED_IN, StatusClass.CHECKED_OUT)


class History:
    """Aggregate reads of one SQL host's appointment and patient tables."""

    def __init__(self, db: HostDatabase, mapping: SqlMapping, columns: dict[str, str]) -> None:
        self.db = db
        self.mapping = mapping
        self.columns = columns
        self._events = table(mapping.appointments.table, *(column(c) for c in columns.values()))
        self._warned_recalls = False

    def _col(self, role: str) -> ColumnElement[Any]:
        if role not in self.columns:
            raise MappingError(f"{self.db.mapping_file}: appointments.columns.{role} is needed")
        return self._events.c[self.columns[role]]

    def _with_patient(self) -> list[ColumnElement[bool]]:
        patient = self._col("patient")
        conditions: list[ColumnElement[bool]] = [patient.is_not(None)]
        if self.mapping.appointments.no_patient:
            conditions.append(patient.not_in(self.mapping.appointments.no_patient))
        return conditions

    def _codes(self, reference: Reference, classes: tuple[StatusClass, ...]) -> list[str]:
        statuses = dict(reference.statuses)
        for code in self.mapping.statuses.known_codes():
            statuses.setdefault(code, self.mapping.statuses.host_status(code))
        return sorted(code for code, s in statuses.items() if s.status_class in classes)

    def _single(self) -> list[ColumnElement[bool]]:
        if self.mapping.appointments.recurrence == "none" or "recurrence_type" not in self.columns:
            return []
        return [self._col("recurrence_type") == 0]

    def last_visits(
        self,
        services: Collection[str],
        since: date,
        before: date,
        reference: Reference,
        attended_only: bool,
    ) -> list[LastVisit]:
        """Each patient's last visit of each service in ``[since, before)``."""
        if not services:
            return []
        patient, service, day = self._col("patient"), self._col("service"), self._col("date")
        status = self._col("status")
        conditions = [
            *self._with_patient(),
            *self._single(),
            service.in_([key_value(s) for s in services]),
            day >= since,
            day < before,
        ]
        if attended_only:
            conditions.append(status.in_(self._codes(reference, _ATTENDED)))
        else:
            conditions.append(status.not_in(self._codes(reference, _GONE)))
        query = (
            select(patient, service, func.max(day))
            .where(and_(*conditions))
            .group_by(patient, service)
        )
        found: list[LastVisit] = []
        with self.db.connect() as connection:
            for who, what, when in connection.execute(query):
                visited = optional_date(when)
                if visited is not None:
                    found.append(LastVisit(as_text(who), as_text(what), visited))
        return found

    def booked_patients(
        self, patient_keys: Collection[str] | None, since: date, reference: Reference
    ) -> set[str]:
        """Patients with an appointment on or after ``since`` that is not cancelled."""
        patient, day = self._col("patient"), self._col("date")
        ahead: ColumnElement[bool] = and_(
            day >= since,
            self._col("status").not_in(self._codes(reference, (StatusClass.CANCELLED,))),
        )
        if self._single():
            series = and_(self._col("recurrence_type") > 0, self._col("end_date") >= since)
            ahead = or_(ahead, series)
        base = select(patient).where(and_(*self._with_patient(), ahead)).distinct()
        found: set[str] = set()
        with self.db.connect() as connection:
            if patient_keys is None:
                return {as_text(row[0]) for row in connection.execute(base)}
            keys = sorted({str(k) for k in patient_keys})
            for start in range(0, len(keys), KEY_BATCH):
                chunk = keys[start : start + KEY_BATCH]
                rows = connection.execute(base.where(patient.in_(chunk)))
                found.update(as_text(row[0]) for row in rows)
        return found

    def recall_list(self, until: date) -> list[HostRecall]:
        """The host's manual recalls due on or before ``until``; none when the host has no
        such table (OpenEMR before the Recall Board)."""
        m = self.mapping.recalls
        if m is None:
            return []
        try:
            present = self.db.columns(m.table, "recalls.table")
        except MappingError:
            if not self._warned_recalls:
                log.warning("host has no table %s: no manual recalls read from it", m.table)
                self._warned_recalls = True
            return []
        roles = {"patient": m.patient, "due": m.due}
        for role in ("provider", "facility", "reason"):
            name = getattr(m, role)
            if name and name in present:
                roles[role] = name
        for role in ("patient", "due"):
            self.db.require(m.table, roles[role], f"recalls.{role}")
        host = table(m.table, *(column(c) for c in roles.values()))
        query = select(*(host.c[c].label(r) for r, c in roles.items())).where(
            host.c[m.due] <= until
        )
        found = []
        with self.db.connect() as connection:
            for row in connection.execute(query):
                values = row._mapping
                due = optional_date(values["due"])
                who = as_text(values["patient"])
                if due is None or who in ("", "0"):
                    continue
                found.append(
                    HostRecall(
                        patient_key=who,
                        due=due,
                        provider_key=_key(values.get("provider")),
                        facility_key=_key(values.get("facility")),
                        reason=as_text(values.get("reason"))[:200],
                    )
                )
        return found

    def patient_keys_born(self, connection: Connection, birth_date: date) -> list[str]:
        """Keys of the patients born on ``birth_date`` (through OpenEMR's ``idx_patient_dob``)."""
        m = self.mapping.patients
        if m.columns.birth_date is None:
            return []
        born = self.db.require(m.table, m.columns.birth_date, "patients.columns.birth_date")
        key = self.db.require(m.table, m.key, "patients.key")
        host = table(m.table, column(key), column(born))
        rows = connection.execute(select(host.c[key]).where(host.c[born] == birth_date).limit(50))
        return [as_text(row[0]) for row in rows]

    def calendar_settings(self) -> CalendarSettings:
        """The host's slot length and day hours (OpenEMR: ``calendar_interval``,
        ``schedule_start`` and ``schedule_end`` in ``globals``)."""
        booking = self.mapping.booking
        if booking is None:
            return CalendarSettings()
        with self.db.connect() as connection:
            slot = _host_value(self.db, connection, booking.slot_minutes)
            start = _host_value(self.db, connection, booking.day_start)
            end = _host_value(self.db, connection, booking.day_end)
        minutes = as_int(slot, 0)
        return CalendarSettings(
            slot_minutes=minutes if 5 <= minutes <= 120 else None,
            day_start=_hour(start),
            day_end=_hour(end),
        )


def _host_value(db: HostDatabase, connection: Connection, where: HostValue | None) -> str | None:
    if where is None:
        return None
    if where.value_column not in db.columns(where.table, "booking"):
        return None
    host = table(where.table, column(where.name_column), column(where.value_column))
    value = connection.execute(
        select(host.c[where.value_column]).where(host.c[where.name_column] == where.name)
    ).scalar()
    return as_text(value) or None


def _hour(value: str | None) -> time | None:
    hour = as_int(value, -1)
    if 0 <= hour <= 23:
        return time(hour)
    if hour == 24:
        return time(23, 59)
    return None


def _key(value: Any) -> str | None:
    text = as_text(value)
    return None if text in ("", "0") else text
