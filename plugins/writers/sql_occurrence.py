"""One appointment occurrence on a SQL host, locked for a write-back, and the OpenEMR way of
changing one occurrence of a repeating series.

Locking: the rows of the visit (all providers of a group visit) are read ``FOR UPDATE`` inside
the write-back's transaction, so a staff edit cannot slip in between the checks and the write
(SQLite, the demo host, has no row locks and needs none: it has one writer at a time).

Series: OpenEMR changes "this occurrence only" (``add_edit_event.php``, ``recurr_affect =
current``) by appending the date, as ``YYYYMMDD``, to ``exdate`` in the series' serialized
``pc_recurrspec`` and inserting a standalone copy of the row on that date with no repeat. For a
visit with several providers every row is split and the copies share a fresh ``pc_multiple``.
When a write-back is applied twice, the occurrence is already excluded: the standalone row it
left (same patient, date and start time, no repeat) is found and used instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

import phpserialize
from sqlalchemy import Connection, Select, Table, and_, column, func, insert, select, table, update

from bridge.host_sql import key_value
from bridge.mapping.sql import SqlMapping
from bridge.model import Appointment
from bridge.plugin import Reference
from plugins.sources.sql_appointments import AppointmentReader
from plugins.sources.sql_rows import ROW_KEY, as_text, optional_time
from plugins.sources.sql_sightings import sightings_from_rows
from plugins.writers.sql_staff import inserted_key

# OpenEMR's $noRecurrspec (add_edit_event.php): what a standalone row split off a series holds.
NO_REPEAT = {
    "event_repeat_freq": "",
    "event_repeat_freq_type": "",
    "event_repeat_on_num": "1",
    "event_repeat_on_day": "0",
    "event_repeat_on_freq": "0",
    "exdate": "",
}


@dataclass(frozen=True)
class Locked:
    """The visit's rows (role -> value, head first) and the occurrence built from them."""

    rows: list[dict[str, Any]]
    appointment: Appointment


class Occurrences:
    """Reads and splits appointment occurrences for the writer."""

    def __init__(self, reader: AppointmentReader, mapping: SqlMapping) -> None:
        self.reader = reader
        self.mapping = mapping

    def _select(self, *conditions: Any) -> Select[Any]:
        columns = self.reader.columns()
        host = table(self.mapping.appointments.table, *(column(c) for c in columns.values()))
        return select(*(host.c[c].label(role) for role, c in columns.items())).where(
            and_(*(host.c[columns[role]] == value for role, value in conditions))
        )

    def _rows(self, connection: Connection, *conditions: Any, lock: bool) -> list[dict[str, Any]]:
        query = self._select(*conditions)
        if lock:
            query = query.with_for_update()
        result = connection.execute(query)
        keys = tuple(result.keys())
        return [dict(zip(keys, row, strict=True)) for row in result]

    def lock(
        self,
        connection: Connection,
        key: str,
        occurrence: date,
        reference: Reference,
        zone: ZoneInfo,
        *,
        lock: bool = True,
    ) -> Locked | None:
        """The occurrence of ``key`` on ``occurrence`` with its rows locked; else the standalone
        row that replaced it (an earlier split); None when neither exists."""
        rows = self._visit(connection, key, lock=lock)
        found = self._build(rows, key, occurrence, reference, zone)
        if found is not None or not rows or self.mapping.appointments.recurrence == "none":
            return found
        head = rows[0]
        if "date" not in head or "start_time" not in head:
            return None
        candidates = self._rows(
            connection,
            ("patient", head["patient"]),
            ("date", occurrence),
            ("recurrence_type", 0),
            # pymysql returns TIME as timedelta, which SQLAlchemy would bind as a DATETIME.
            ("start_time", optional_time(head["start_time"])),
            lock=lock,
        )
        for candidate in sorted(candidates, key=lambda r: _sort_key(r[ROW_KEY])):
            other = str(candidate[ROW_KEY])
            replaced = self._build(
                self._visit(connection, other, lock=lock), other, occurrence, reference, zone
            )
            if replaced is not None:
                return replaced
        return None

    def _visit(self, connection: Connection, key: str, *, lock: bool) -> list[dict[str, Any]]:
        rows = self._rows(connection, (ROW_KEY, key_value(key)), lock=lock)
        if rows and self.mapping.appointments.group_visits:
            group = rows[0].get("group")
            if group not in (None, 0, "0", ""):
                rows = self._rows(connection, ("group", group), lock=lock)
        return sorted(rows, key=lambda r: _sort_key(r[ROW_KEY]))

    def _build(
        self,
        rows: list[dict[str, Any]],
        key: str,
        occurrence: date,
        reference: Reference,
        zone: ZoneInfo,
    ) -> Locked | None:
        window = (occurrence, occurrence)
        for sighting in sightings_from_rows(rows, self.mapping, reference, zone, window, _skip):
            if key in sighting.appointment().host_keys:
                return Locked(rows, sighting.appointment())
        return None

    def split(
        self, connection: Connection, host: Table, locked: Locked, values: dict[str, Any]
    ) -> str:
        """Exclude the occurrence from its series and insert a standalone copy carrying
        ``values`` (role -> value); returns the new head key."""
        m = self.mapping.appointments
        columns = self.reader.columns()
        occurrence = locked.appointment.occurrence
        keys = [key_value(k) for k in locked.appointment.host_keys]
        originals = connection.execute(select(host).where(host.c[m.key].in_(keys))).all()
        group_column = columns.get("group") if len(originals) > 1 else None
        new_group = None
        if group_column is not None:
            new_group = (
                connection.execute(select(func.max(host.c[group_column]))).scalar() or 0
            ) + 1
        unique = _unique_columns(host) - {m.key}
        new_keys: list[int] = []
        for original in originals:
            row = dict(original._mapping)
            spec = _with_exdate(row[columns["recurrence_spec"]], occurrence)
            connection.execute(
                update(host)
                .where(host.c[m.key] == row[m.key])
                .values({columns["recurrence_spec"]: spec})
            )
            copy = {name: value for name, value in row.items() if name != m.key}
            copy.update({name: None for name in unique if host.c[name].nullable})
            copy.update(
                {
                    columns["date"]: occurrence,
                    # OpenEMR writes '0000-00-00' here; strict SQL modes refuse it, and the
                    # end date of a row that does not repeat is never read.
                    columns["end_date"]: occurrence,
                    columns["recurrence_type"]: 0,
                    columns["recurrence_spec"]: _serialize(NO_REPEAT),
                }
            )
            if group_column is not None:
                copy[group_column] = new_group
            copy.update({columns[role]: value for role, value in values.items()})
            new_keys.append(inserted_key(connection, insert(host).values(**copy)))
        return str(min(new_keys))


def _with_exdate(raw: Any, day: date) -> str:
    """``pc_recurrspec`` with ``day`` appended to ``exdate`` (kept as it is when already there)."""
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogateescape")
    spec = phpserialize.loads(raw, decode_strings=True)
    entry = day.strftime("%Y%m%d")
    listed = [e.strip() for e in str(spec.get("exdate") or "").split(",") if e.strip()]
    if entry not in {e.replace("-", "") for e in listed}:
        listed.append(entry)
    spec["exdate"] = ",".join(listed)
    return _serialize(spec)


def _serialize(spec: dict[str, Any]) -> str:
    return str(phpserialize.dumps(spec).decode("utf-8"))


def _unique_columns(host: Table) -> set[str]:
    names: set[str] = set()
    for index in host.indexes:
        if index.unique:
            names.update(c.name for c in index.columns)
    for constraint in host.constraints:
        if constraint.__class__.__name__ == "UniqueConstraint":
            names.update(c.name for c in getattr(constraint, "columns", []))
    return names


def _sort_key(key: Any) -> tuple[int, str]:
    text = as_text(key)
    return (int(text), text) if text.isdigit() else (0, text)


def _skip(_: Any) -> None:
    """A row that cannot be mapped was reported by the scan; here it simply does not match."""
