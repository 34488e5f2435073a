"""The mirror: the latest state of each appointment and patient, built from accepted messages.

Applied in arrival order, in batches, after the ACK (the ACK waits only for the raw message and
its verdict to be durable). A message older than the state held (MSH-7, ties broken by arrival)
changes nothing and is marked stale, so a late S12 never resurrects a cancelled appointment. An
ending event without timing ("cancel 123") ends what the mirror holds, or leaves a tombstone so
that an older booking arriving later stays dead.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, select, update
from sqlalchemy import false as sa_false

from bridge.codec import (
    appointment_from_dict,
    appointment_to_dict,
    patient_from_dict,
    patient_to_dict,
)
from bridge.hl7.state import Mapped
from bridge.hl7.tables import MessageStatus, appointments, messages, patients, resources
from bridge.model import Appointment, Patient
from bridge.store.engine import upsert

BATCH = 500


@dataclass
class ApplyReport:
    applied: int = 0
    stale: int = 0
    changed: set[str] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.applied or self.stale)


@dataclass
class _Held:
    """What the mirror holds for one appointment while a batch is applied."""

    when: tuple[datetime, int]
    data: dict[str, Any] | None


def apply_pending(connection: Connection, now: datetime, limit: int = BATCH) -> ApplyReport:
    """Apply up to ``limit`` pending messages, oldest first, in this transaction.

    Appliers take turns (the listener's thread, ``bridge hl7 replay``, a folder read, another
    bridge process on the same PostgreSQL store): each works from what the mirror holds, and two
    at once could each miss the other's newer state."""
    _take_turns(connection)
    rows = connection.execute(
        select(messages.c.id, messages.c.state, messages.c.message_time, messages.c.received_at)
        .where(messages.c.status == MessageStatus.PENDING.value)
        .order_by(messages.c.id)
        .limit(limit)
    ).all()
    report = ApplyReport()
    if not rows:
        return report
    batch = [
        (row.id, Mapped.from_json(row.state), row.message_time or row.received_at) for row in rows
    ]
    held = _held_appointments(connection, {m.key for _, m, _ in batch if m.key})
    patient_times = _held_patients(
        connection, {m.patient.key for _, m, _ in batch if m.patient is not None}
    )
    appointment_rows: dict[str, dict[str, Any]] = {}
    patient_rows: dict[str, dict[str, Any]] = {}
    resource_rows: dict[tuple[str, str], dict[str, Any]] = {}
    outcomes: list[dict[str, Any]] = []
    for message_id, mapped, when in batch:
        stamp = (when, message_id)
        if mapped.patient is not None and patient_times.get(mapped.patient.key, stamp) <= stamp:
            patient_times[mapped.patient.key] = stamp
            patient_rows[mapped.patient.key] = {
                "key": mapped.patient.key,
                "digest": mapped.patient.fingerprint(),
                "data": json.dumps(patient_to_dict(mapped.patient), sort_keys=True),
                "message_time": when,
                "message_id": message_id,
                "updated_at": now,
            }
        for kind, item in mapped.resources:
            resource_rows[(kind, item.key)] = {
                "kind": kind,
                "key": item.key,
                "data": json.dumps(asdict(item), sort_keys=True),
                "updated_at": now,
            }
        current = held.get(mapped.key)
        if current is not None and current.when > stamp:
            report.stale += 1
            outcomes.append(_outcome(message_id, MessageStatus.STALE, now, current.when[0]))
            continue
        row = _appointment_row(mapped, current, when, message_id, now)
        held[mapped.key] = _Held(stamp, json.loads(row["data"]) if row["data"] else None)
        appointment_rows[mapped.key] = row
        report.applied += 1
        report.changed.add(mapped.key)
        outcomes.append(_outcome(message_id, MessageStatus.APPLIED, now))
    upsert(
        connection,
        appointments,
        list(appointment_rows.values()),
        keys=("key",),
        update=(
            "occurrence",
            "patient_key",
            "deleted",
            "digest",
            "data",
            "echo",
            "message_time",
            "message_id",
            "updated_at",
        ),
    )
    upsert(
        connection,
        patients,
        list(patient_rows.values()),
        keys=("key",),
        update=("digest", "data", "message_time", "message_id", "updated_at"),
    )
    upsert(
        connection,
        resources,
        list(resource_rows.values()),
        keys=("kind", "key"),
        update=("data", "updated_at"),
    )
    connection.execute(
        update(messages)
        .where(messages.c.id == bindparam("message_id"))
        .values(
            status=bindparam("new_status"),
            applied_at=bindparam("at"),
            reason=bindparam("why"),
        ),
        outcomes,
    )
    return report


# Any constant: the advisory lock that serialises appliers on PostgreSQL.
_APPLIER_LOCK = 7_410_001


def _take_turns(connection: Connection) -> None:
    """Wait for the right to apply until this transaction ends. SQLite: a write as the first
    statement takes the database's write lock now (a deferred transaction would read first
    and could not upgrade once another writer committed)."""
    if connection.dialect.name == "postgresql":
        connection.execute(select(func.pg_advisory_xact_lock(_APPLIER_LOCK)))
    else:
        connection.execute(update(appointments).where(sa_false()).values(key=appointments.c.key))


def _appointment_row(
    mapped: Mapped, current: _Held | None, when: datetime, message_id: int, now: datetime
) -> dict[str, Any]:
    appointment = mapped.appointment
    if appointment is None and current is not None and current.data is not None:
        # An ending event without timing: the held appointment, with the event's status.
        assert mapped.status_class is not None
        appointment = replace(
            appointment_from_dict(current.data),
            status=mapped.status,
            status_class=mapped.status_class,
            eligible=False,
        )
    return {
        "key": mapped.key,
        "occurrence": appointment.occurrence if appointment else None,
        "patient_key": appointment.patient_key
        if appointment
        else (mapped.patient.key if mapped.patient else None),
        "deleted": mapped.deleted,
        "digest": appointment.fingerprint() if appointment else None,
        "data": json.dumps(appointment_to_dict(appointment), sort_keys=True)
        if appointment
        else None,
        "echo": json.dumps(mapped.echo, sort_keys=True),
        "message_time": when,
        "message_id": message_id,
        "updated_at": now,
    }


def _outcome(
    message_id: int, status: MessageStatus, now: datetime, held_time: datetime | None = None
) -> dict[str, Any]:
    reason = None
    if held_time is not None:
        shown = held_time.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        reason = f"older than the state held (set by a message of {shown}): no change"
    return {"message_id": message_id, "new_status": status.value, "at": now, "why": reason}


def _held_appointments(connection: Connection, keys: set[str]) -> dict[str, _Held]:
    if not keys:
        return {}
    rows = connection.execute(
        select(
            appointments.c.key,
            appointments.c.message_time,
            appointments.c.message_id,
            appointments.c.data,
        ).where(appointments.c.key.in_(sorted(keys)))
    )
    return {
        r.key: _Held((r.message_time, r.message_id), json.loads(r.data) if r.data else None)
        for r in rows
    }


def _held_patients(connection: Connection, keys: set[str]) -> dict[str, tuple[datetime, int]]:
    if not keys:
        return {}
    rows = connection.execute(
        select(patients.c.key, patients.c.message_time, patients.c.message_id).where(
            patients.c.key.in_(sorted(keys))
        )
    )
    return {r.key: (r.message_time, r.message_id) for r in rows}


def held_appointment(connection: Connection, key: str) -> tuple[Appointment | None, dict[str, str]]:
    """The mirror's appointment (None when deleted or unknown) and its identifiers as sent."""
    row = connection.execute(
        select(appointments.c.data, appointments.c.echo, appointments.c.deleted).where(
            appointments.c.key == key
        )
    ).first()
    if row is None:
        return None, {}
    echo = json.loads(row.echo) if row.echo else {}
    if row.deleted or not row.data:
        return None, echo
    return appointment_from_dict(json.loads(row.data)), echo


def read_patients(connection: Connection, keys: list[str]) -> list[Patient]:
    """The mirrored patients with these keys (unknown keys are simply not returned)."""
    found: list[Patient] = []
    for start in range(0, len(keys), BATCH):
        chunk = keys[start : start + BATCH]
        rows = connection.execute(select(patients.c.data).where(patients.c.key.in_(chunk)))
        found.extend(patient_from_dict(json.loads(row.data)) for row in rows)
    return found
