"""Reading a SQL host's appointment table: the forward window, every cycle, fast.

Single appointments are found through the host's date index (OpenEMR: ``pc_eventDate``).
Repeating series cannot be: a series that overlaps the window may have started years ago, and
OpenEMR has no index on ``pc_recurrtype``, so finding them means reading the whole table (about
a second for 1,000,000 rows). When the mapping says new rows get larger keys
(``key_increases``, true for OpenEMR's auto-increment ``pc_eid``), the series are read in full
only every ``series_rescan_minutes`` and when the window moves to a new day; in between, each
cycle re-reads the known series by key (edits, deletions), reads every row newer than the
largest key seen (new series), and re-reads by key any single appointment that left the window
(one turned into a series). Only a past appointment turned into a series that reaches the window
waits for the next full read.

On MySQL / MariaDB the single appointments of the window are read in two steps: the server sends
each row's key and a checksum of its columns, and only rows that are new or whose checksum
changed since the last cycle are read in full; the others come from the previous cycle. pymysql
parses every field of every row in Python, which was most of a no-change cycle (20,000 rows in
the window at 1,000,000 appointments). A row edited between the two steps is read again in full
at the next cycle, its checksum no longer matching the one kept. A row whose checksum did not
change also keeps its sighting (``_sightings``), as long as the window, the time zone and the
reference data are the same: its digest is then the same too, so nothing downstream rebuilds it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    TableClause,
    and_,
    column,
    func,
    literal,
    select,
    table,
)

from bridge.clock import Clock
from bridge.host_sql import HostDatabase, key_value
from bridge.mapping.sql import SqlMapping
from bridge.model import Appointment
from bridge.plugin import Reference, RejectSink, Sighting
from plugins.sources.sql_rows import ROW_KEY, as_int, as_text, end_date, optional_date
from plugins.sources.sql_sightings import sightings_from_rows

Row = dict[str, Any]  # role -> value, in the select's column order
SERIES_ROLES = ("recurrence_type", "recurrence_spec", "end_date")
# What planning needs. The scan reads only these; the dispatcher reads the whole row again
# (``occurrences_of``) just before sending, so notes, room or end time are always fresh in the
# message without every cycle paying for them.
PLANNING_ROLES = frozenset(
    {
        ROW_KEY,
        "patient",
        "date",
        "start_time",
        "start",
        "status",
        "provider",
        "service",
        "all_day",
        "group",
        *SERIES_ROLES,
    }
)
KEY_BATCH = 1000
CHECKSUM_DIALECTS = ("mysql", "mariadb")


class AppointmentReader:
    """Builds and runs the appointment queries for one mapping; keeps the series cache."""

    def __init__(self, db: HostDatabase, mapping: SqlMapping, clock: Clock) -> None:
        self.db = db
        self.mapping = mapping
        self.clock = clock
        self._columns: dict[str, str] | None = None
        self._table: TableClause | None = None
        self._series: dict[str, Row] = {}
        self._series_window: tuple[date, date] | None = None
        self._series_read_at: datetime | None = None
        self._max_key: int | None = None
        self._single_keys: set[str] = set()
        self._singles: dict[str, tuple[str, Row]] = {}  # key -> (checksum, row) of last cycle
        self._kept_sightings: dict[str, tuple[str, Sighting]] = {}  # key -> (checksum, sighting)
        self._kept_token: tuple[Any, ...] | None = None

    # --- columns and statements ---------------------------------------------------------------

    def columns(self) -> dict[str, str]:
        """Role -> host column for every mapped appointment column the host has."""
        if self._columns is None:
            m = self.mapping.appointments
            required = {"patient", "status", "date", "start_time", "start"}
            if m.recurrence != "none":
                required |= set(SERIES_ROLES)
            found = {ROW_KEY: self.db.require(m.table, m.key, "appointments.key")}
            for role, name in m.columns.model_dump(exclude_none=True).items():
                dotted = f"appointments.columns.{role}"
                if role in required:
                    found[role] = self.db.require(m.table, name, dotted)
                elif (present := self.db.optional(m.table, name, dotted)) is not None:
                    found[role] = present
            self._columns = found
        return self._columns

    @property
    def repeats(self) -> bool:
        return self.mapping.appointments.recurrence != "none"

    def _host(self) -> TableClause:
        """One table construct for every statement, so conditions and selects share it."""
        if self._table is None:
            names = self.columns().values()
            self._table = table(self.mapping.appointments.table, *(column(n) for n in names))
        return self._table

    def _col(self, role: str) -> ColumnElement[Any]:
        return self._host().c[self.columns()[role]]

    def _select(
        self, where: ColumnElement[bool], *, series: bool = True, detail: bool = False
    ) -> Select[Any]:
        """Mapped columns of patient appointments matching ``where``: all of them with
        ``detail``, else those planning needs; without the (large) series columns when only
        single appointments can match."""
        m = self.mapping.appointments
        host = self._host()
        roles = {
            role: name
            for role, name in self.columns().items()
            if (detail or role in PLANNING_ROLES) and (series or role not in SERIES_ROLES)
        }
        patient = self._col("patient")
        conditions: list[ColumnElement[bool]] = [where, patient.is_not(None)]
        if m.no_patient:
            conditions.append(patient.not_in(m.no_patient))
        for name, value in m.where.items():
            target = host.c[name] if name in host.c else column(name)
            conditions.append(target.in_(value) if isinstance(value, list) else target == value)
        return select(*(host.c[c].label(role) for role, c in roles.items())).where(
            and_(*conditions)
        )

    def _in_window(self, first: date, last: date) -> ColumnElement[bool]:
        if "date" in self.columns():
            return self._col("date").between(first, last)
        start = self._col("start")  # one DATETIME column: compare whole days
        return and_(
            start >= datetime.combine(first, time.min),
            start < datetime.combine(last + timedelta(days=1), time.min),
        )

    # --- the scan -----------------------------------------------------------------------------

    def scan(
        self, window: tuple[date, date], reference: Reference, zone: ZoneInfo, reject: RejectSink
    ) -> list[Sighting]:
        first, last = window
        with self.db.connect() as connection:
            where = self._in_window(first, last)
            if self.repeats:
                where = and_(self._col("recurrence_type") == 0, where)
            rows = self._single_rows(connection, where)
            series = []
            if self.repeats:
                series = self._series_rows(connection, window, {str(r[ROW_KEY]) for r in rows})
        if self.db.dialect not in CHECKSUM_DIALECTS:
            return sightings_from_rows(rows + series, self.mapping, reference, zone, window, reject)
        return self._sightings(rows, series, reference, zone, window, reject)

    def _sightings(
        self,
        singles: list[Row],
        series: list[Row],
        reference: Reference,
        zone: ZoneInfo,
        window: tuple[date, date],
        reject: RejectSink,
    ) -> list[Sighting]:
        """The sightings of this cycle, reusing last cycle's for single rows whose checksum did
        not change (same window, zone and reference data): a row that is not part of a visit
        with several providers gives exactly one sighting, the same as last time."""
        token = (window, str(zone), repr(reference))
        if token != self._kept_token:
            self._kept_sightings, self._kept_token = {}, token
        kept = self._kept_sightings
        reused: list[Sighting] = []
        to_read: list[Row] = []
        for row in singles:
            key = str(row[ROW_KEY])
            digest = self._singles[key][0]
            found = kept.get(key)
            if found is not None and found[0] == digest:
                reused.append(found[1])
            else:
                to_read.append(row)
        fresh = sightings_from_rows(to_read + series, self.mapping, reference, zone, window, reject)
        by_key: dict[str, list[Sighting]] = {}
        for sighting in fresh:
            by_key.setdefault(sighting.key, []).append(sighting)
        grouped = self.mapping.appointments.group_visits
        current: dict[str, tuple[str, Sighting]] = {}
        for row in singles:
            key = str(row[ROW_KEY])
            made = by_key.get(key, [])
            if grouped and as_text(row.get("group")) not in ("", "0"):
                continue  # a visit's rows make one sighting between them: read them each time
            if key in kept and kept[key][0] == self._singles[key][0]:
                current[key] = kept[key]
            elif len(made) == 1:
                current[key] = (self._singles[key][0], made[0])
        self._kept_sightings = current
        return reused + fresh

    def _single_rows(self, connection: Connection, where: ColumnElement[bool]) -> list[Row]:
        """The single appointments matching ``where``; with a checksum first where the host
        can compute one (module docstring)."""
        query = self._select(where, series=False)
        if self.db.dialect not in CHECKSUM_DIALECTS:
            return _dicts(connection.execute(query))
        parts: list[Any] = []
        for selected in query.selected_columns:
            value = getattr(selected, "element", selected)
            # length:value, or N for NULL: no two different rows give the same text
            parts += [func.coalesce(func.concat(func.length(value), ":", value), "N"), "|"]
        checksums = select(self._col(ROW_KEY), func.md5(func.concat(literal(""), *parts)))
        sums = {
            str(key): str(digest)
            for key, digest in connection.execute(
                checksums.where(query.whereclause) if query.whereclause is not None else checksums
            )
        }
        kept = self._singles
        stale = sorted(key for key, digest in sums.items() if kept.get(key, ("",))[0] != digest)
        fresh = {
            str(row[ROW_KEY]): row for row in self._rows_by_key(connection, stale, series=False)
        }
        self._singles = {
            key: (digest, fresh[key] if key in fresh else kept[key][1])
            for key, digest in sums.items()
            if key in fresh or (key in kept and kept[key][0] == digest)
        }
        return [row for _, row in self._singles.values()]

    def _series_rows(
        self, connection: Connection, window: tuple[date, date], single_keys: set[str]
    ) -> list[Row]:
        m = self.mapping.appointments
        now = self.clock.now()
        stale = (
            not m.key_increases
            or self._series_window != window
            or self._series_read_at is None
            or now - self._series_read_at >= timedelta(minutes=m.series_rescan_minutes)
        )
        if stale:
            first, last = window
            rows = _dicts(
                connection.execute(
                    self._select(
                        and_(
                            self._col("recurrence_type") > 0,
                            self._col("date") <= last,
                            self._col("end_date") >= first,
                        )
                    )
                )
            )
            self._series = {str(row[ROW_KEY]): row for row in rows}
            self._series_window, self._series_read_at = window, now
            if m.key_increases:
                self._max_key = connection.execute(select(func.max(self._col(ROW_KEY)))).scalar()
        else:
            self._refresh_series(connection, window, single_keys)
        self._single_keys = single_keys
        return list(self._series.values())

    def _refresh_series(
        self, connection: Connection, window: tuple[date, date], single_keys: set[str]
    ) -> None:
        """Between full reads: known series again, newer rows, singles that left the window."""
        recheck = set(self._series) | (self._single_keys - single_keys)
        rows = self._rows_by_key(connection, sorted(recheck))
        if self._max_key is not None:
            rows += _dicts(connection.execute(self._select(self._col(ROW_KEY) > self._max_key)))
        series: dict[str, Row] = {}
        for row in rows:
            self._max_key = max(self._max_key or 0, as_int(row[ROW_KEY], 0))
            if self._overlaps(row, window):
                series[str(row[ROW_KEY])] = row
        self._series = series

    def _rows_by_key(
        self,
        connection: Connection,
        keys: Sequence[str],
        *,
        detail: bool = False,
        series: bool = True,
    ) -> list[Row]:
        found: list[Row] = []
        for start in range(0, len(keys), KEY_BATCH):
            chunk = [key_value(k) for k in keys[start : start + KEY_BATCH]]
            query = self._select(self._col(ROW_KEY).in_(chunk), detail=detail, series=series)
            found += _dicts(connection.execute(query))
        return found

    @staticmethod
    def _overlaps(values: Any, window: tuple[date, date]) -> bool:
        """The same test as the full series query, in Python."""
        if as_int(values.get("recurrence_type"), 0) <= 0:
            return False
        starts = optional_date(values.get("date"))
        ends = end_date(values.get("end_date"))
        return (
            starts is not None
            and starts <= window[1]
            and isinstance(ends, date)
            and ends >= window[0]
        )

    # --- one appointment ------------------------------------------------------------------------

    def occurrences_of(
        self, key: str, window: tuple[date, date], reference: Reference, zone: ZoneInfo
    ) -> list[Appointment]:
        """Every occurrence of ``key`` inside ``window``, read now (the other rows of its visit
        included, so a visit booked with several providers comes out whole)."""
        with self.db.connect() as connection:
            rows = self._rows_by_key(connection, [key], detail=True)
            grouped = rows and self.mapping.appointments.group_visits
            group = rows[0].get("group") if grouped else None
            if group not in (None, 0, "0", ""):
                query = self._select(self._col("group") == group, detail=True)
                rows = _dicts(connection.execute(query))
        found = sightings_from_rows(rows, self.mapping, reference, zone, window, _ignore)
        return sorted((s.appointment() for s in found if s.key == key), key=lambda a: a.occurrence)


def _dicts(result: Any) -> list[Row]:
    """Rows as plain dicts (role -> value): SQLAlchemy Row lookups by name are slow in bulk."""
    keys = tuple(result.keys())
    return [dict(zip(keys, row, strict=True)) for row in result]


def _ignore(_: Any) -> None:
    """Re-reading one row for the last check: problems were reported by the scan already."""
