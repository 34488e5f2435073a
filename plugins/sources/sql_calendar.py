"""A SQL host's calendar as online booking reads it: providers' office hours and busy times.

OpenEMR keeps a provider's availability as calendar events without a patient: an "In Office"
event marks the time the provider starts taking appointments, an "Out Of Office" event the time
they stop (``find_appt_popup.php`` reads both as markers and ignores their duration); every
other row of the provider (appointments, lunch, a vacation) takes its time. Clinic events
without a provider of a closing category (holidays, closed) close the clinic. Repeating rows are
expanded exactly as the calendar does (``bridge.recurrence``); cancelled appointments free their
time.

The same reader serves the booking pages (through the source) and the writer's re-check inside
its transaction (on the writer's connection, after the provider's day is locked).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, column, or_, select, table

from bridge.errors import BadHostRow, MappingError
from bridge.host_sql import HostDatabase
from bridge.mapping.sql import SqlMapping
from bridge.mapping.sql_booking import BookingMapping
from bridge.model import StatusClass
from bridge.plugin import CalendarEntry, Reference
from bridge.recurrence import occurrences, parse_rule
from plugins.sources.sql_rows import (
    ROW_KEY,
    as_flag,
    as_int,
    as_text,
    end_date,
    optional_date,
    optional_time,
)

IN_OFFICE = "in_office"
OUT_OF_OFFICE = "out_of_office"
BUSY = "busy"
CLOSED = "closed"
ROLES = (
    "patient",
    "provider",
    "facility",
    "service",
    "date",
    "start_time",
    "end_time",
    "duration",
    "all_day",
    "status",
    "recurrence_type",
    "recurrence_spec",
    "end_date",
)


class CalendarReader:
    """Reads calendar entries for a ``kind: sql`` mapping with a ``booking`` section."""

    def __init__(self, db: HostDatabase, mapping: SqlMapping, columns: dict[str, str]) -> None:
        if mapping.booking is None:
            raise MappingError(f"{db.mapping_file}: online booking needs a 'booking' section")
        if "date" not in columns or "start_time" not in columns:
            raise MappingError(
                f"{db.mapping_file}: online booking needs appointments.columns.date and start_time"
            )
        self.db = db
        self.mapping = mapping
        self.booking: BookingMapping = mapping.booking
        self.columns = {role: name for role, name in columns.items() if role in (*ROLES, ROW_KEY)}
        table_name = mapping.appointments.table
        preferred = self.booking.preferred_service
        if preferred and self.db.optional(table_name, preferred, "booking.preferred_service"):
            self.columns["preferred"] = preferred
        self._table = table(table_name, *(column(c) for c in self.columns.values()))

    def _col(self, role: str) -> ColumnElement[Any]:
        return self._table.c[self.columns[role]]

    def entries(
        self,
        connection: Connection,
        providers: Collection[str],
        window: tuple[date, date],
        reference: Reference,
    ) -> list[CalendarEntry]:
        """Entries of ``providers`` and clinic closures inside ``window``."""
        if "provider" not in self.columns:
            raise MappingError(f"{self.db.mapping_file}: online booking needs a provider column")
        first, last = window
        provider = self._col("provider")
        nobody = or_(provider.is_(None), provider.in_(["", "0"]))
        mine = provider.in_([str(p) for p in providers]) if providers else None
        whose = or_(mine, nobody) if mine is not None else nobody
        in_window = self._col("date").between(first, last)
        if self.mapping.appointments.recurrence != "none":
            single = and_(self._col("recurrence_type") == 0, in_window)
            series = and_(
                self._col("recurrence_type") > 0,
                self._col("date") <= last,
                self._col("end_date") >= first,
            )
            when = or_(single, series)
        else:
            when = in_window
        query = select(*(self._table.c[c].label(r) for r, c in self.columns.items())).where(
            and_(whose, when)
        )
        result = connection.execute(query)
        keys = tuple(result.keys())
        rows = [dict(zip(keys, row, strict=True)) for row in result]
        found: list[CalendarEntry] = []
        for row in rows:
            try:
                found.extend(self._entries(row, reference, window))
            except BadHostRow:
                continue  # the scan reports unreadable rows; here they simply take no time
        return found

    def _entries(
        self, row: dict[str, Any], reference: Reference, window: tuple[date, date]
    ) -> list[CalendarEntry]:
        kind = self._kind(row, reference)
        if kind is None:
            return []
        days = self._days(row, window)
        if not days:
            return []
        all_day = as_flag(row.get("all_day"))
        start = optional_time(row.get("start_time")) or time(0)
        end = None if kind in (IN_OFFICE, OUT_OF_OFFICE) or all_day else self._end(row, start)
        preferred = as_text(row.get("preferred")) if kind == IN_OFFICE else ""
        provider = as_text(row.get("provider"))
        return [
            CalendarEntry(
                kind=kind,
                day=day,
                start=time(0) if all_day else start,
                end=end,
                provider_key="" if provider in ("", "0") else provider,
                facility_key=as_text(row.get("facility")) or None,
                service_key=preferred if preferred not in ("", "0") else None,
                all_day=all_day,
            )
            for day in days
        ]

    def _kind(self, row: dict[str, Any], reference: Reference) -> str | None:
        service = reference.services.get(as_text(row.get("service")))
        code = service.code if service is not None else ""
        provider = as_text(row.get("provider"))
        patient = as_text(row.get("patient"))
        has_patient = patient not in ("", *self.mapping.appointments.no_patient)
        if provider in ("", "0"):
            return CLOSED if code in self.booking.clinic_closed and not has_patient else None
        if not has_patient and code in self.booking.in_office:
            return IN_OFFICE
        if not has_patient and code in self.booking.out_of_office:
            return OUT_OF_OFFICE
        status_code = as_text(row.get("status"))
        status = reference.statuses.get(status_code) or self.mapping.statuses.host_status(
            status_code
        )
        if has_patient and status.status_class == StatusClass.CANCELLED:
            return None
        return BUSY

    def _end(self, row: dict[str, Any], start: time) -> time:
        """Where a busy row ends: its end time, else its duration, else 15 minutes (OpenEMR's
        default slot), never past midnight."""
        end = optional_time(row.get("end_time"))
        if end is not None and end > start:
            return end
        amount = as_int(row.get("duration"), 0)
        unit = self.mapping.appointments.duration_unit
        length = timedelta(seconds=amount) if unit == "seconds" else timedelta(minutes=amount)
        if length <= timedelta(0):
            length = timedelta(minutes=15)
        finish = datetime.combine(date(2000, 1, 1), start) + length
        return finish.time() if finish.date() == date(2000, 1, 1) else time(23, 59, 59)

    def _days(self, row: dict[str, Any], window: tuple[date, date]) -> list[date]:
        first_day = optional_date(row.get("date"))
        if first_day is None:
            return []
        kind = as_int(row.get("recurrence_type"), 0)
        if kind <= 0 or self.mapping.appointments.recurrence == "none":
            return [first_day] if window[0] <= first_day <= window[1] else []
        try:
            rule = parse_rule(kind, row.get("recurrence_spec"))
            return occurrences(rule, first_day, end_date(row.get("end_date")), *window)
        except ValueError:
            return []  # OpenEMR's calendar does not list such a series either
