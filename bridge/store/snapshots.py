"""Snapshots of the host's appointments and patients, and what changed between two scans.

The host has no trustworthy last-modified column (OpenEMR's ``pc_time`` misses status changes and
deletes are hard deletes), so each cycle rescans the forward window and diffs row hashes here:
a hash that differs is a change, a snapshot the scan no longer returns is a deleted occurrence.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal, TypeVar

from sqlalchemy import Connection, and_, select, tuple_, update

from bridge.codec import (
    appointment_from_dict,
    appointment_to_dict,
    patient_from_dict,
    patient_to_dict,
)
from bridge.model import Appointment, Patient
from bridge.plugin import Sighting
from bridge.store.engine import upsert
from bridge.store.schema import appointments, patients

ChangeKind = Literal["new", "changed", "gone"]
BATCH = 500
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class AppointmentChange:
    """One occurrence that is new, changed or gone since the previous scan."""

    kind: ChangeKind
    key: str
    occurrence: date
    before: Appointment | None
    after: Appointment | None

    @property
    def moved(self) -> bool:
        """The start time changed (a reschedule within the same day)."""
        return bool(self.before and self.after and self.before.start != self.after.start)


def sync_appointments(
    connection: Connection,
    scanned: Iterable[Sighting],
    window: tuple[date, date],
    now: datetime,
) -> list[AppointmentChange]:
    """Store the scan of ``window`` and return what changed; vanished occurrences become gone.

    Only occurrences inside ``window`` are compared: yesterday's appointment falling out of the
    window is not a deletion. Only sightings whose digest changed are built into appointments.
    """
    first, last = window
    stored = {
        (row.key, row.occurrence): (row.row_hash, row.deleted_at)
        for row in connection.execute(
            select(
                appointments.c.key,
                appointments.c.occurrence,
                appointments.c.row_hash,
                appointments.c.deleted_at,
            ).where(appointments.c.occurrence.between(first, last))
        )
    }
    seen: set[tuple[str, date]] = set()
    upserts: list[dict[str, object]] = []
    changed: list[tuple[ChangeKind, Appointment]] = []
    for sighting in scanned:
        ident = sighting.ident
        if ident in seen:
            continue
        seen.add(ident)
        previous = stored.get(ident)
        if previous is not None and previous[0] == sighting.digest and previous[1] is None:
            continue
        kind: ChangeKind = "new" if previous is None or previous[1] is not None else "changed"
        appt = sighting.appointment()
        changed.append((kind, appt))
        upserts.append(_appointment_row(appt, sighting.digest, now))
    gone = [
        ident for ident, (_, deleted) in stored.items() if deleted is None and ident not in seen
    ]

    before = load_appointments(connection, [a.ident for k, a in changed if k == "changed"] + gone)
    _upsert_appointments(connection, upserts)
    for chunk in _chunks(gone):
        connection.execute(
            update(appointments)
            .where(tuple_(appointments.c.key, appointments.c.occurrence).in_(chunk))
            .values(deleted_at=now, changed_at=now)
        )
    result = [
        AppointmentChange(kind, a.key, a.occurrence, before.get(a.ident), a) for kind, a in changed
    ]
    result += [AppointmentChange("gone", k, o, before.get((k, o)), None) for k, o in gone]
    return result


def store_appointment(connection: Connection, appt: Appointment, now: datetime) -> None:
    """Store one occurrence as the latest state (feeds that push single appointments)."""
    _upsert_appointments(connection, [_appointment_row(appt, appt.fingerprint(), now)])


def mark_gone(connection: Connection, key: str, occurrence: date, now: datetime) -> None:
    """Mark one stored occurrence deleted (a feed said so)."""
    connection.execute(
        update(appointments)
        .where(and_(appointments.c.key == key, appointments.c.occurrence == occurrence))
        .values(deleted_at=now, changed_at=now)
    )


def _appointment_row(appt: Appointment, digest: str, now: datetime) -> dict[str, object]:
    return {
        "key": appt.key,
        "occurrence": appt.occurrence,
        "patient_key": appt.patient_key,
        "start_at": appt.start,
        "status": appt.status,
        "eligible": appt.eligible,
        "row_hash": digest,
        "data": appointment_to_dict(appt),
        "first_seen": now,
        "changed_at": now,
        "deleted_at": None,
    }


def _upsert_appointments(connection: Connection, rows: list[dict[str, object]]) -> None:
    for chunk in _chunks(rows):
        upsert(
            connection,
            appointments,
            chunk,
            keys=("key", "occurrence"),
            update=(
                "patient_key",
                "start_at",
                "status",
                "eligible",
                "row_hash",
                "data",
                "changed_at",
                "deleted_at",
            ),
        )


def load_appointments(
    connection: Connection, idents: Sequence[tuple[str, date]]
) -> dict[tuple[str, date], Appointment]:
    """The stored snapshots for ``idents`` (deleted ones included)."""
    found: dict[tuple[str, date], Appointment] = {}
    for chunk in _chunks(list(idents)):
        rows = connection.execute(
            select(appointments.c.data).where(
                tuple_(appointments.c.key, appointments.c.occurrence).in_(chunk)
            )
        )
        for (data,) in rows:
            appt = appointment_from_dict(data)
            found[appt.ident] = appt
    return found


def load_appointment(connection: Connection, key: str, occurrence: date) -> Appointment | None:
    """The latest stored state of one occurrence, or None if unknown or deleted."""
    row = connection.execute(
        select(appointments.c.data).where(
            appointments.c.key == key,
            appointments.c.occurrence == occurrence,
            appointments.c.deleted_at.is_(None),
        )
    ).first()
    return appointment_from_dict(row.data) if row else None


def active_appointments(
    connection: Connection, window: tuple[date, date], patient_keys: Iterable[str] | None = None
) -> list[Appointment]:
    """Every stored, not deleted occurrence inside ``window`` (optionally of some patients)."""
    query = select(appointments.c.data).where(
        appointments.c.occurrence.between(*window), appointments.c.deleted_at.is_(None)
    )
    if patient_keys is None:
        return [appointment_from_dict(row.data) for row in connection.execute(query)]
    result: list[Appointment] = []
    for chunk in _chunks(sorted(set(patient_keys))):
        rows = connection.execute(query.where(appointments.c.patient_key.in_(chunk)))
        result.extend(appointment_from_dict(row.data) for row in rows)
    return result


def sync_patients(connection: Connection, scanned: Iterable[Patient], now: datetime) -> set[str]:
    """Store patients and return the keys whose data is new or changed."""
    batch = list(scanned)
    keys = [p.key for p in batch]
    stored: dict[str, str] = {}
    for chunk in _chunks(keys):
        found = connection.execute(
            select(patients.c.key, patients.c.row_hash).where(patients.c.key.in_(chunk))
        )
        stored.update((key, digest) for key, digest in found)
    changed: list[dict[str, object]] = []
    for patient in batch:
        digest = patient.fingerprint()
        if stored.get(patient.key) == digest:
            continue
        changed.append(
            {
                "key": patient.key,
                "row_hash": digest,
                "data": patient_to_dict(patient),
                "first_seen": now,
                "changed_at": now,
            }
        )
    for part in _chunks(changed):
        upsert(connection, patients, part, keys=("key",), update=("row_hash", "data", "changed_at"))
    return {str(row["key"]) for row in changed}


def load_patients(connection: Connection, keys: Iterable[str]) -> dict[str, Patient]:
    """Stored patients by key (unknown keys are simply absent)."""
    found: dict[str, Patient] = {}
    for chunk in _chunks(sorted(set(keys))):
        for (data,) in connection.execute(select(patients.c.data).where(patients.c.key.in_(chunk))):
            patient = patient_from_dict(data)
            found[patient.key] = patient
    return found


def known_patient_keys(connection: Connection, keys: Iterable[str]) -> set[str]:
    """Which of ``keys`` the store already holds."""
    known: set[str] = set()
    for chunk in _chunks(sorted(set(keys))):
        known.update(
            connection.execute(select(patients.c.key).where(patients.c.key.in_(chunk))).scalars()
        )
    return known


def _chunks(items: Sequence[T]) -> Iterable[list[T]]:
    for start in range(0, len(items), BATCH):
        yield list(items[start : start + BATCH])
