"""The mirror: the latest state of each appointment and patient, built from accepted messages.

Applied in arrival order, in batches, after the ACK (the ACK waits only for the raw message and
its verdict to be durable). A message older than the state held (MSH-7, ties broken by arrival)
changes nothing and is marked stale, so a late S12 never resurrects a cancelled appointment. An
ending event without timing ("cancel 123") ends what the mirror holds, or leaves a tombstone so
that an older booking arriving later stays dead.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, select, update
from sqlalchemy import false as sa_false

from bridge.codec import appointment_from_dict, appointment_to_dict, patient_from_dict
from bridge.hl7.intake import Intake
from bridge.hl7.problem import Problem
from bridge.hl7.tables import MessageStatus, appointments, messages, patients, resources
from bridge.model import Appointment, Patient, StatusClass
from bridge.store.engine import upsert

BATCH = 200


@dataclass
class ApplyReport:
    """``handled`` counts every message taken (applied, stale, ignored or quarantined now)."""

    handled: int = 0
    applied: int = 0
    stale: int = 0
    changed: set[str] = field(default_factory=set)

    def __bool__(self) -> bool:
        return self.handled > 0

    def add(self, other: ApplyReport) -> None:
        self.handled += other.handled
        self.applied += other.applied
        self.stale += other.stale
        self.changed |= other.changed


@dataclass
class _Held:
    """What the mirror holds for one appointment while a batch is applied."""

    when: tuple[datetime, int]
    data: dict[str, Any] | None


def digest_of(text: str) -> str:
    """The digest the mirror keeps for a state (its JSON): the sources hand it to the cycle,
    which re-plans an occurrence whose digest changed."""
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


@dataclass(frozen=True)
class Prepared:
    """A pending message made ready to apply: its state, or the problem reading it now."""

    id: int
    when: datetime
    state: dict[str, Any] | None
    problem: Problem | None


def apply_pending(
    connection: Connection, now: datetime, intake: Intake, limit: int = BATCH
) -> ApplyReport:
    """Read, map and apply up to ``limit`` pending messages in this one transaction."""
    _take_turns(connection)
    return apply_prepared(connection, prepare(load_pending(connection, limit), intake), now)


def load_pending(connection: Connection, limit: int = BATCH) -> list[Any]:
    """The oldest pending messages (id, raw bytes, times)."""
    return list(
        connection.execute(
            select(messages.c.id, messages.c.raw, messages.c.message_time, messages.c.received_at)
            .where(messages.c.status == MessageStatus.PENDING.value)
            .order_by(messages.c.id)
            .limit(limit)
        )
    )


def prepare(rows: list[Any], intake: Intake) -> list[Prepared]:
    """Map each message (the CPU-heavy part: done outside any write transaction)."""
    prepared = []
    for row in rows:
        mapped, problem = intake.read(row.raw)
        state = mapped.to_state() if mapped is not None else None
        prepared.append(Prepared(row.id, row.message_time or row.received_at, state, problem))
    return prepared


def apply_prepared(connection: Connection, prepared: list[Prepared], now: datetime) -> ApplyReport:
    """Apply prepared messages, oldest first, in this transaction.

    Appliers take turns (the listener's thread, ``bridge hl7 replay``, a folder read, another
    bridge process on the same PostgreSQL store): each works from what the mirror holds, and two
    at once could each miss the other's newer state. A message another applier took meanwhile
    is left alone."""
    _take_turns(connection)
    report = ApplyReport()
    if not prepared:
        return report
    still = set(
        connection.execute(
            select(messages.c.id).where(
                messages.c.id.in_([p.id for p in prepared]),
                messages.c.status == MessageStatus.PENDING.value,
            )
        ).scalars()
    )
    outcomes: list[dict[str, Any]] = []
    batch = []
    for item in prepared:
        if item.id not in still:
            continue
        report.handled += 1
        if item.state is None:
            problem = item.problem
            assert problem is not None
            outcomes.append(_outcome(item.id, MessageStatus.QUARANTINED, now, problem=problem))
        elif item.state["meaning"] == "ignore":
            outcomes.append(_outcome(item.id, MessageStatus.IGNORED, now))
        else:
            batch.append((item.id, item.state, item.when))
    # The state is used as dicts: no object is rebuilt unless an ending event has to change
    # what the mirror holds (the hot path of a busy feed).
    held = _held_appointments(connection, {state["key"] for _, state, _ in batch})
    patient_times = _held_patients(
        connection, {state["patient"]["key"] for _, state, _ in batch if state["patient"]}
    )
    appointment_rows: dict[str, dict[str, Any]] = {}
    patient_rows: dict[str, dict[str, Any]] = {}
    resource_rows: dict[tuple[str, str], dict[str, Any]] = {}
    for message_id, state, when in batch:
        stamp = (when, message_id)
        patient = state["patient"]
        if patient is not None and patient_times.get(patient["key"], stamp) <= stamp:
            patient_times[patient["key"]] = stamp
            text = json.dumps(patient, sort_keys=True)
            patient_rows[patient["key"]] = {
                "key": patient["key"],
                "digest": digest_of(text),
                "data": text,
                "message_time": when,
                "message_id": message_id,
                "updated_at": now,
            }
        for kind, item in state["resources"]:
            resource_rows[(kind, item["key"])] = {
                "kind": kind,
                "key": item["key"],
                "data": json.dumps(item, sort_keys=True),
                "updated_at": now,
            }
        key = state["key"]
        current = held.get(key)
        if current is not None and current.when > stamp:
            report.stale += 1
            outcomes.append(_outcome(message_id, MessageStatus.STALE, now, current.when[0]))
            continue
        row, data = _appointment_row(state, current, when, message_id, now)
        held[key] = _Held(stamp, data)
        appointment_rows[key] = row
        report.applied += 1
        report.changed.add(key)
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
    if outcomes:
        connection.execute(
            update(messages)
            .where(messages.c.id == bindparam("message_id"))
            .values(
                status=bindparam("new_status"),
                applied_at=bindparam("at"),
                reason=bindparam("why"),
                code=bindparam("error"),
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
    state: dict[str, Any], current: _Held | None, when: datetime, message_id: int, now: datetime
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The mirror row a message sets, and the appointment it now holds (as a dict)."""
    data: dict[str, Any] | None = state["appointment"]
    if data is None and current is not None and current.data is not None:
        # An ending event without timing: the held appointment, with the event's status.
        ended = replace(
            appointment_from_dict(current.data),
            status=state["status"],
            status_class=StatusClass(state["status_class"]),
            eligible=False,
        )
        data = appointment_to_dict(ended)
    text = json.dumps(data, sort_keys=True) if data else None
    patient = state["patient"]
    row = {
        "key": state["key"],
        "occurrence": date.fromisoformat(data["occurrence"]) if data else None,
        "patient_key": data["patient_key"] if data else (patient["key"] if patient else None),
        "deleted": state["meaning"] == "deleted",
        "digest": digest_of(text) if text else None,
        "data": text,
        "echo": json.dumps(state["echo"], sort_keys=True),
        "message_time": when,
        "message_id": message_id,
        "updated_at": now,
    }
    return row, data


def _outcome(
    message_id: int,
    status: MessageStatus,
    now: datetime,
    held_time: datetime | None = None,
    problem: Problem | None = None,
) -> dict[str, Any]:
    reason = problem.reason if problem is not None else None
    if held_time is not None:
        shown = held_time.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        reason = f"older than the state held (set by a message of {shown}): no change"
    return {
        "message_id": message_id,
        "new_status": status.value,
        "at": now,
        "why": reason,
        "error": problem.code if problem is not None else None,
    }


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
