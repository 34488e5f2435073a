"""Appointment rows to ``Sighting`` objects (and, on demand, ``Appointment`` objects).

Per row, only what identifies an occurrence is read eagerly: the key, the patient, the date (and
for a series its dates in the window), the start time. The digest is a hash of the raw row
values, so an unchanged row costs one hash per cycle; the full ``Appointment`` (time zone
conversions, status meaning, names) is built only for rows whose digest changed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bridge.clock import local_to_utc
from bridge.errors import BadHostRow
from bridge.mapping.sql import SqlMapping
from bridge.model import Appointment
from bridge.plugin import Reference, RejectSink, Sighting
from bridge.recurrence import occurrences, parse_rule
from plugins.sources.sql_rows import (
    ROW_KEY,
    as_flag,
    as_int,
    as_text,
    end_date,
    optional_datetime,
    optional_time,
    parse_date,
    parse_datetime,
    parse_time,
)

Row = dict[str, Any]  # role -> value, in the select's column order


def sightings_from_rows(
    rows: Sequence[Row],
    mapping: SqlMapping,
    reference: Reference,
    zone: ZoneInfo,
    window: tuple[date, date],
    reject: RejectSink,
) -> list[Sighting]:
    """Every occurrence the rows produce inside ``window``. A visit booked with several providers
    (rows sharing a non-zero group value) is one sighting, keyed by its smallest host key."""
    found: list[Sighting] = []
    groups: dict[tuple[str, date], list[_Parsed]] = {}
    grouped = mapping.appointments.group_visits
    for row in rows:
        try:
            parsed = _parse(row, mapping, reference, window)
        except BadHostRow as exc:
            reject(exc)
            continue
        if parsed is None:
            continue
        group = as_text(parsed.values.get("group")) if grouped else ""
        for day in parsed.days:
            if group in ("", "0"):
                found.append(_sighting([parsed], day, mapping, reference, zone))
            else:
                groups.setdefault((group, day), []).append(parsed)
    for (_, day), members in groups.items():
        members.sort(key=lambda p: (_sort_key(p.key), p.key))
        found.append(_sighting(members, day, mapping, reference, zone))
    return found


class _Parsed:
    """What was read eagerly from one row."""

    __slots__ = ("days", "key", "raw", "recurring", "start_time", "values")

    def __init__(
        self,
        raw: tuple[Any, ...],
        values: Mapping[str, Any],
        key: str,
        days: list[date],
        start_time: time,
        recurring: bool,
    ) -> None:
        self.raw = raw
        self.values = values
        self.key = key
        self.days = days
        self.start_time = start_time
        self.recurring = recurring


def _parse(
    row: Row, mapping: SqlMapping, reference: Reference, window: tuple[date, date]
) -> _Parsed | None:
    values = row
    m = mapping.appointments
    key = as_text(values[ROW_KEY])
    ref = f"{m.table}.{m.key}={key}"
    service = as_text(values.get("service"))
    known = reference.services.get(service) if service else None
    if known is not None and not known.for_patients:
        return None
    if "start" in values:
        start_local = parse_datetime(values.get("start"), ref, "start")
        first_day, start_time = start_local.date(), start_local.time()
    else:
        first_day = parse_date(values.get("date"), ref, "date")
        all_day = as_flag(values.get("all_day"))
        start_time = time(0) if all_day else parse_time(values.get("start_time"), ref, "start_time")
    recurring = m.recurrence == "openemr" and as_int(values.get("recurrence_type"), 0) > 0
    if recurring:
        try:
            rule = parse_rule(
                as_int(values.get("recurrence_type"), 0), values.get("recurrence_spec")
            )
            days = occurrences(rule, first_day, end_date(values.get("end_date")), *window)
        except ValueError as exc:
            raise BadHostRow(ref, f"recurrence: {exc}") from exc
    else:
        days = [first_day] if window[0] <= first_day <= window[1] else []
    if not days:
        return None
    return _Parsed(tuple(row.values()), values, key, days, start_time, recurring)


def _sighting(
    members: list[_Parsed],
    day: date,
    mapping: SqlMapping,
    reference: Reference,
    zone: ZoneInfo,
) -> Sighting:
    head = members[0]
    raw = repr((day, [m.raw for m in members])).encode()
    digest = hashlib.blake2b(raw, digest_size=16).hexdigest()

    def build() -> Appointment:
        return _appointment(members, day, mapping, reference, zone)

    return Sighting(head.key, day, as_text(head.values["patient"]), digest, build)


def _appointment(
    members: list[_Parsed],
    day: date,
    mapping: SqlMapping,
    reference: Reference,
    zone: ZoneInfo,
) -> Appointment:
    head = members[0]
    values = head.values
    code = as_text(values.get("status"))
    status = reference.statuses.get(code) or mapping.statuses.host_status(code)
    start = local_to_utc(day, head.start_time, zone)
    providers = tuple(
        dict.fromkeys(
            p for p in (as_text(m.values.get("provider")) for m in members) if p not in ("", "0")
        )
    )
    return Appointment(
        key=head.key,
        occurrence=day,
        patient_key=as_text(values["patient"]),
        start=start,
        end=_end(head, day, start, mapping, zone),
        status=code,
        status_class=status.status_class,
        eligible=status.eligible,
        all_day=as_flag(values.get("all_day")),
        provider_keys=providers,
        facility_key=as_text(values.get("facility")) or None,
        service_key=as_text(values.get("service")) or None,
        room=as_text(values.get("room")),
        notes=as_text(values.get("notes")),
        recurring=head.recurring,
        host_keys=tuple(m.key for m in members),
    )


def _end(
    head: _Parsed, day: date, start: datetime, mapping: SqlMapping, zone: ZoneInfo
) -> datetime | None:
    values = head.values
    if as_flag(values.get("all_day")):
        return local_to_utc(day + timedelta(days=1), time(0), zone)
    end_local = optional_datetime(values.get("end")) if "end" in values else None
    if end_local is not None and not head.recurring:
        return local_to_utc(end_local.date(), end_local.time(), zone)
    end_time = optional_time(values.get("end_time"))
    if end_time is not None and end_time > head.start_time:
        return local_to_utc(day, end_time, zone)
    amount = as_int(values.get("duration"), 0)
    if amount > 0:
        unit = mapping.appointments.duration_unit
        return start + (
            timedelta(seconds=amount) if unit == "seconds" else timedelta(minutes=amount)
        )
    return None


def _sort_key(key: str) -> int:
    return int(key) if key.isdigit() else 0
