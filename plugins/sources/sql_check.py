"""``bridge check`` for a SQL host: every mapped table and column, the status list, the time
zone, and a few mapped sample rows (keys, dates and statuses only: no patient data)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bridge.errors import BadHostRow, MappingError, SourceError
from bridge.plugin import CheckLine

if TYPE_CHECKING:
    from plugins.sources.sql_poll import SqlPoll

SAMPLES = 3
SAMPLE_DAYS = 14


def check_source(source: SqlPoll) -> list[CheckLine]:
    """Check the mapping against the live host; every problem is a line, none is a traceback."""
    lines: list[CheckLine] = []
    try:
        lines.append(CheckLine("ok", f"host reachable ({source.db.url.render_as_string()})"))
        lines += _columns(source)
        reference = source.reference()
    except (MappingError, SourceError) as exc:
        return [*lines, CheckLine("error", str(exc))]
    lines += _statuses(source, reference)
    zone = _zone(reference.timezone, lines)
    lines += _samples(source, reference, zone)
    return lines


def _columns(source: SqlPoll) -> list[CheckLine]:
    m = source.mapping
    lines = []
    appointment = source.appointment_columns()
    patient = source.patient_columns()
    missing = [
        role
        for role, name in m.appointments.columns.model_dump(exclude_none=True).items()
        if role not in appointment and name
    ]
    lines.append(
        CheckLine(
            "ok",
            f"appointments: {m.appointments.table} ({len(appointment)} mapped columns)",
        )
    )
    for role in missing:
        lines.append(
            CheckLine(
                "warning",
                f"appointments.columns.{role}: column "
                f"{getattr(m.appointments.columns, role)!r} not on this host version; not used",
            )
        )
    lines.append(CheckLine("ok", f"patients: {m.patients.table} ({len(patient)} mapped columns)"))
    for role, name in m.patients.columns.model_dump(exclude_none=True).items():
        if role not in patient:
            lines.append(
                CheckLine("warning", f"patients.columns.{role}: column {name!r} missing; not used")
            )
    if m.patients.changed_since and source.changed_patient_keys(None) is None:
        lines.append(
            CheckLine(
                "warning",
                f"patients.changed_since: column {m.patients.changed_since!r} missing (older "
                "host): every patient in the window is read each cycle",
            )
        )
    return lines


def _statuses(source: SqlPoll, reference: Any) -> list[CheckLine]:
    known = source.mapping.statuses.known_codes()
    eligible = sorted(c for c, s in reference.statuses.items() if s.eligible)
    lines = [
        CheckLine(
            "ok",
            f"statuses: {len(reference.statuses)} on the host; reminders for {', '.join(eligible)}",
        )
    ]
    for code, status in sorted(reference.statuses.items()):
        if code not in known:
            treated = "eligible" if status.eligible else "not eligible"
            lines.append(
                CheckLine(
                    "warning",
                    f"status {code!r} ({status.title}) is not in the mapping: {treated}"
                    f"{', protected' if status.protected else ''}",
                )
            )
    return lines


def _zone(name: str | None, lines: list[CheckLine]) -> ZoneInfo:
    if not name:
        lines.append(CheckLine("ok", "host keeps no time zone; clinic.timezone decides"))
        return ZoneInfo("UTC")
    try:
        zone = ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        lines.append(CheckLine("warning", f"host time zone {name!r} is not a valid zone name"))
        return ZoneInfo("UTC")
    lines.append(CheckLine("ok", f"host time zone: {name}"))
    return zone


def _samples(source: SqlPoll, reference: Any, zone: ZoneInfo) -> list[CheckLine]:
    today = datetime.now(UTC).astimezone(zone).date()
    window = (today, today + timedelta(days=SAMPLE_DAYS))
    bad: list[BadHostRow] = []
    try:
        found = [s.appointment() for s in source.scan(window, reference, zone, bad.append)]
    except SourceError as exc:
        return [CheckLine("error", f"reading appointments failed: {exc}")]
    lines = [
        CheckLine("ok", f"{len(found)} appointment occurrences in the next {SAMPLE_DAYS} days")
    ]
    for appt in found[:SAMPLES]:
        local = appt.start.astimezone(zone)
        lines.append(
            CheckLine(
                "ok",
                f"  sample: appointment {appt.key} on {local:%Y-%m-%d %H:%M}, patient "
                f"{appt.patient_key}, status {appt.status!r} ({appt.status_class.value}, "
                f"{'eligible' if appt.eligible else 'not eligible'})",
            )
        )
    for problem in bad[:10]:
        lines.append(CheckLine("warning", f"row cannot be read: {problem}"))
    if len(bad) > 10:
        lines.append(CheckLine("warning", f"... and {len(bad) - 10} more unreadable rows"))
    return lines
