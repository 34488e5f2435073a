"""Job transitions that delivery adds to the queue's own (claim, sent, retry, failed, dropped).

Each one names the status it expects, so a transition that lost a race (another worker settled
the job, a webhook came twice) changes nothing. They reuse the queue's one transition primitive
so every change still appends its ``job_events`` row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Connection, String, case, cast, insert, select, update

from bridge.store.jobs import Job, _transition, get_job
from bridge.store.schema import JobStatus, job_events, jobs

REDIAL = "redial"
RESEND = "resend"
RATE_LIMITED = "rate-limited"


def sent_many(connection: Connection, refs: dict[int, str | None], now: datetime) -> None:
    """``mark_sent`` for a batch of claimed jobs (those still ``sending``), in three statements:
    the transition, the provider references, the events."""
    if not refs:
        return
    moved = (
        connection.execute(
            update(jobs)
            .where(jobs.c.id.in_(sorted(refs)), jobs.c.status == JobStatus.SENDING.value)
            .values(
                status=JobStatus.SENT.value,
                last_error=None,
                sent_at=now,
                lease_until=None,
                updated_at=now,
            )
            .returning(jobs.c.id)
        )
        .scalars()
        .all()
    )
    if not moved:
        return
    connection.execute(
        update(jobs)
        .where(jobs.c.id.in_(moved))
        .values(
            provider_ref=cast(
                case({job_id: refs[job_id] for job_id in moved}, value=jobs.c.id), String(128)
            )
        )
    )
    connection.execute(
        insert(job_events),
        [
            {"job_id": job_id, "at": now, "kind": "sent", "status": JobStatus.SENT.value}
            for job_id in moved
        ],
    )


def to_unknown(
    connection: Connection, job: Job, now: datetime, settle_at: datetime, why: str
) -> None:
    """An ambiguous send: the job waits, unsent and unclaimable, until ``settle_at``."""
    _transition(
        connection,
        job.id,
        now,
        "outcome-unknown",
        JobStatus.UNKNOWN,
        why,
        expect=JobStatus.SENDING,
        due_at=settle_at,
        lease_until=None,
    )


def retry(
    connection: Connection, job: Job, now: datetime, due: datetime, error: str, *, kind: str
) -> None:
    """Plan a claimed job again for ``due``. ``kind``: ``retry`` / ``redial`` (counts against
    the redials), ``rate-limited`` (the provider's limit: does not count), ``resend`` (starts a
    new round)."""
    _transition(
        connection,
        job.id,
        now,
        kind,
        JobStatus.PLANNED,
        error,
        expect=JobStatus.SENDING,
        due_at=due,
        lease_until=None,
    )


def reopen(
    connection: Connection,
    job_id: int,
    now: datetime,
    due: datetime,
    detail: str,
    *,
    kind: str,
    expect: JobStatus,
) -> bool:
    """A message that went out and then failed is tried again (a redial, or a resend that starts
    a new round of redials). True when the job was reopened. ``attempts`` keeps counting (a
    re-plan must not bring a waiting retry forward); rounds are read from the event log."""
    before = get_job(connection, job_id)
    if before is None or before.status != expect:
        return False
    _transition(
        connection,
        job_id,
        now,
        kind,
        JobStatus.PLANNED,
        detail,
        expect=expect,
        due_at=due,
        lease_until=None,
    )
    return True


def fail_after_send(connection: Connection, job_id: int, now: datetime, detail: str) -> None:
    """The provider accepted the message and later failed it; no attempt is left."""
    _transition(
        connection, job_id, now, "undelivered", JobStatus.FAILED, detail, expect=JobStatus.SENT
    )


def settle(connection: Connection, job: Job, now: datetime, status: JobStatus, detail: str) -> None:
    """An ``unknown`` job settled: sent (the provider has it), planned (it never got it, due
    now) or failed (policy)."""
    extra = {"sent_at": now} if status == JobStatus.SENT else {}
    if status == JobStatus.PLANNED:
        extra = {"due_at": now}
    _transition(
        connection, job.id, now, "resolved", status, detail, expect=JobStatus.UNKNOWN, **extra
    )


def postpone_unknown(connection: Connection, job: Job, now: datetime, until: datetime) -> None:
    """The provider could not be asked now: ask again later (no event: nothing changed)."""
    connection.execute(
        jobs.update()
        .where(jobs.c.id == job.id, jobs.c.status == JobStatus.UNKNOWN.value)
        .values(due_at=until, updated_at=now)
    )


@dataclass(frozen=True)
class Round:
    """Where a job stands: its round (1, plus one per resend) and the attempts made in it
    (claims, less those a provider's rate limit sent back)."""

    number: int
    attempts: int


def current_round(connection: Connection, job_id: int) -> Round:
    """Read the job's round and attempts in it from its event log."""
    kinds = connection.execute(
        select(job_events.c.kind)
        .where(
            job_events.c.job_id == job_id,
            job_events.c.kind.in_(["claimed", RESEND, RATE_LIMITED]),
        )
        .order_by(job_events.c.id)
    ).scalars()
    number, attempts = 1, 0
    for kind in kinds:
        if kind == RESEND:
            number, attempts = number + 1, 0
        elif kind == RATE_LIMITED:
            attempts -= 1
        else:
            attempts += 1
    return Round(number, max(attempts, 0))


def due_unknown(connection: Connection, now: datetime, limit: int = 100) -> list[Job]:
    """``unknown`` jobs whose settle time has come."""
    rows = connection.execute(
        select(jobs)
        .where(jobs.c.status == JobStatus.UNKNOWN.value, jobs.c.due_at <= now)
        .order_by(jobs.c.id)
        .limit(limit)
    )
    return [Job.from_row(row) for row in rows]


def cancel_pending(
    connection: Connection, appointment_key: str, occurrence: date, now: datetime, reason: str
) -> int:
    """Stop every attempt of one appointment occurrence that has not gone out yet (the patient
    answered). Returns how many jobs were cancelled."""
    pending = connection.execute(
        select(jobs.c.id).where(
            jobs.c.appointment_key == appointment_key,
            jobs.c.occurrence == occurrence,
            jobs.c.status.in_([JobStatus.PLANNED.value, JobStatus.SKIPPED.value]),
        )
    ).all()
    for (job_id,) in pending:
        before = get_job(connection, job_id)
        if before is not None:
            _transition(
                connection,
                job_id,
                now,
                "cancelled",
                JobStatus.CANCELLED,
                reason,
                expect=before.status,
            )
    return len(pending)
