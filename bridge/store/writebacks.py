"""The write-back queue: commands for the host, stored once, applied until done or refused.

Same discipline as the job queue: a unique idempotency key (a webhook retried by its provider is
one command), claims under a lease in one ``UPDATE ... RETURNING`` (``SKIP LOCKED`` on
PostgreSQL), and an outcome a person can read (``bridge writebacks``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select, update
from sqlalchemy.engine import Row

from bridge.model import Channel
from bridge.store.engine import insert_ignore
from bridge.store.schema import writebacks
from bridge.writeback import Applied, Command, CommandKind, Outcome


@dataclass(frozen=True)
class QueuedCommand:
    """A command as the queue holds it."""

    id: int
    command: Command
    status: Outcome
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    result: dict[str, Any] | None
    created_at: datetime
    applied_at: datetime | None

    @classmethod
    def from_row(cls, row: Row[Any]) -> QueuedCommand:
        m = row._mapping
        return cls(
            id=m["id"],
            command=Command(
                kind=CommandKind(m["kind"]),
                origin=m["origin"],
                ref=m["ref"],
                patient_key=m["patient_key"],
                appointment_key=m["appointment_key"],
                occurrence=m["occurrence"],
                channel=Channel(m["channel"]) if m["channel"] else None,
                payload=json.loads(m["payload"]),
            ),
            status=Outcome(m["status"]),
            attempts=m["attempts"],
            next_attempt_at=m["next_attempt_at"],
            last_error=m["last_error"],
            result=json.loads(m["result"]) if m["result"] else None,
            created_at=m["created_at"],
            applied_at=m["applied_at"],
        )


def enqueue(connection: Connection, command: Command, now: datetime) -> bool:
    """Store ``command`` unless one with its idempotency key exists; True if it is new."""
    return insert_ignore(
        connection,
        writebacks,
        {
            "idempotency_key": command.idempotency_key,
            "kind": command.kind.value,
            "origin": command.origin,
            "ref": command.ref,
            "patient_key": command.patient_key,
            "appointment_key": command.appointment_key,
            "occurrence": command.occurrence,
            "channel": command.channel.value if command.channel else None,
            "payload": command.payload_json(),
            "status": Outcome.PENDING.value,
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
            "updated_at": now,
        },
        keys=("idempotency_key",),
    )


def claim(
    connection: Connection,
    now: datetime,
    lease: timedelta,
    limit: int = 1,
    only: int | None = None,
) -> list[QueuedCommand]:
    """Claim due pending commands (and ones whose lease ran out), oldest first; with ``only``,
    just that command, if it is due (a patient page applies its own answer at once).

    Commands for one appointment apply in the order they came: one waits while an older one
    for the same occurrence is still pending or being applied (a "confirm" retried while the
    host is down must not land after the "cancel" that followed it).
    """
    due = (
        (writebacks.c.status == Outcome.PENDING.value) & (writebacks.c.next_attempt_at <= now)
    ) | ((writebacks.c.status == Outcome.APPLYING.value) & (writebacks.c.lease_until < now))
    older = writebacks.alias("older")
    waiting = (
        select(older.c.id)
        .where(
            older.c.appointment_key == writebacks.c.appointment_key,
            older.c.occurrence == writebacks.c.occurrence,
            older.c.id < writebacks.c.id,
            older.c.status.in_([Outcome.PENDING.value, Outcome.APPLYING.value]),
        )
        .exists()
    )
    candidates = select(writebacks.c.id).where(due, ~waiting).order_by(writebacks.c.id).limit(limit)
    if only is not None:
        candidates = candidates.where(writebacks.c.id == only)
    if connection.dialect.name == "postgresql":
        candidates = candidates.with_for_update(skip_locked=True)
    picked = candidates.cte("picked").prefix_with("MATERIALIZED")
    rows = connection.execute(
        update(writebacks)
        .where(writebacks.c.id.in_(select(picked.c.id)))
        .values(
            status=Outcome.APPLYING.value,
            lease_until=now + lease,
            attempts=writebacks.c.attempts + 1,
            updated_at=now,
        )
        .returning(*writebacks.c)
    ).all()
    return sorted((QueuedCommand.from_row(row) for row in rows), key=lambda q: q.id)


def mark_done(
    connection: Connection, queued: QueuedCommand, now: datetime, applied: Applied
) -> None:
    result = {"detail": applied.detail, "host_ref": applied.host_ref, "values": applied.values}
    _finish(connection, queued, now, Outcome.DONE, None, json.dumps(result, default=str), now)


def mark_refused(connection: Connection, queued: QueuedCommand, now: datetime, reason: str) -> None:
    _finish(connection, queued, now, Outcome.REFUSED, reason, None, None)


def mark_failed(connection: Connection, queued: QueuedCommand, now: datetime, error: str) -> None:
    _finish(connection, queued, now, Outcome.FAILED, error, None, None)


def mark_retry(
    connection: Connection, queued: QueuedCommand, now: datetime, at: datetime, error: str
) -> None:
    connection.execute(
        update(writebacks)
        .where(writebacks.c.id == queued.id, writebacks.c.status == Outcome.APPLYING.value)
        .values(
            status=Outcome.PENDING.value,
            next_attempt_at=at,
            lease_until=None,
            last_error=error,
            updated_at=now,
        )
    )


def _finish(
    connection: Connection,
    queued: QueuedCommand,
    now: datetime,
    status: Outcome,
    error: str | None,
    result: str | None,
    applied_at: datetime | None,
) -> None:
    connection.execute(
        update(writebacks)
        .where(writebacks.c.id == queued.id, writebacks.c.status == Outcome.APPLYING.value)
        .values(
            status=status.value,
            lease_until=None,
            last_error=error,
            result=result,
            updated_at=now,
            applied_at=applied_at,
        )
    )


def recent(
    connection: Connection, limit: int = 50, status: Outcome | None = None
) -> list[QueuedCommand]:
    """The newest commands (for ``bridge writebacks`` and the staff pages)."""
    query = select(writebacks).order_by(writebacks.c.id.desc()).limit(limit)
    if status is not None:
        query = query.where(writebacks.c.status == status.value)
    return [QueuedCommand.from_row(row) for row in connection.execute(query)]


def find(connection: Connection, command_id: int) -> QueuedCommand | None:
    """One command by id."""
    row = connection.execute(select(writebacks).where(writebacks.c.id == command_id)).first()
    return QueuedCommand.from_row(row) if row is not None else None


def find_by_key(connection: Connection, idempotency_key: str) -> QueuedCommand | None:
    """The command stored under ``idempotency_key``, if any."""
    row = connection.execute(
        select(writebacks).where(writebacks.c.idempotency_key == idempotency_key)
    ).first()
    return QueuedCommand.from_row(row) if row is not None else None


def for_appointment(connection: Connection, key: str, occurrence: date) -> list[QueuedCommand]:
    rows = connection.execute(
        select(writebacks)
        .where(writebacks.c.appointment_key == key, writebacks.c.occurrence == occurrence)
        .order_by(writebacks.c.id)
    )
    return [QueuedCommand.from_row(row) for row in rows]
