"""The job queue: one row per (event, appointment, occurrence, rule, channel), never two.

Modelled on procrastinate: the status lives in SQL, enqueueing is idempotent through the unique
``dedupe_key``, claiming is one ``UPDATE ... RETURNING`` (with ``FOR UPDATE SKIP LOCKED`` on
PostgreSQL so several workers share the queue), and every transition appends a ``job_events`` row.

A job that was claimed (``sending``) and whose lease ran out is never resent blindly: it becomes
``unknown`` and is resolved by asking the channel or by policy.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, insert, select, tuple_, update
from sqlalchemy.engine import Row

from bridge.model import Channel
from bridge.store.schema import DONE_STATUSES, JobStatus, job_events, jobs

BATCH = 500
PLANNED_EVENT = "reminder"  # the one event the planner plans (``bridge.planner.EVENT``)


@dataclass(frozen=True, slots=True)
class JobPlan:
    """What the planner wants for one (event, appointment, occurrence, rule, channel).

    ``skip_reason`` set means: recorded as ``skipped`` (no consent, no number...), not sent.
    """

    event: str
    appointment_key: str
    occurrence: date
    patient_key: str
    rule: str
    channel: Channel
    due: datetime
    appointment_start: datetime
    skip_reason: str | None = None

    @property
    def dedupe_key(self) -> str:
        return dedupe_key(
            self.event, self.appointment_key, self.occurrence, self.rule, self.channel
        )


def dedupe_key(event: str, key: str, occurrence: date, rule: str, channel: Channel | str) -> str:
    """The one identity of a message: a patient never gets two with the same key."""
    return f"{event}|{key}|{occurrence.isoformat()}|{rule}|{Channel(channel).value}"


@dataclass(frozen=True, slots=True)
class Job:
    """A job row as read from the store."""

    id: int
    dedupe_key: str
    event: str
    appointment_key: str
    occurrence: date
    patient_key: str
    rule: str
    channel: Channel
    status: JobStatus
    attempts: int
    due_at: datetime
    appointment_start: datetime
    lease_until: datetime | None = None
    last_error: str | None = None
    provider_ref: str | None = None
    sent_at: datetime | None = None

    @classmethod
    def from_row(cls, row: Row[Any]) -> Job:
        m = row._mapping
        return cls(
            id=m["id"],
            dedupe_key=m["dedupe_key"],
            event=m["event"],
            appointment_key=m["appointment_key"],
            occurrence=m["occurrence"],
            patient_key=m["patient_key"],
            rule=m["rule"],
            channel=Channel(m["channel"]),
            status=JobStatus(m["status"]),
            attempts=m["attempts"],
            due_at=m["due_at"],
            appointment_start=m["appointment_start"],
            lease_until=m["lease_until"],
            last_error=m["last_error"],
            provider_ref=m["provider_ref"],
            sent_at=m["sent_at"],
        )


@dataclass
class ReconcileCounts:
    """What one reconcile pass did, for the cycle report."""

    planned: int = 0
    replanned: int = 0
    skipped: int = 0
    cancelled: int = 0
    kept: int = 0

    def add(self, other: ReconcileCounts) -> None:
        for name in ("planned", "replanned", "skipped", "cancelled", "kept"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


def reconcile(
    connection: Connection,
    scope: Iterable[tuple[str, date]],
    plans: Sequence[JobPlan],
    now: datetime,
    cancel_reasons: dict[tuple[str, date], str] | None = None,
    events: Collection[str] = (PLANNED_EVENT,),
) -> ReconcileCounts:
    """Make the stored jobs of ``events`` for the occurrences in ``scope`` match ``plans``.

    Jobs already handed to a channel (sending, sent, unknown, failed) are never touched: that is
    what makes a re-plan unable to produce a duplicate. A pending job that is no longer wanted is
    cancelled with the reason given for its occurrence. Jobs of other events (a booking
    confirmation for the same appointment) belong to whoever made them and are left alone: the
    planner plans reminders only.
    """
    counts = ReconcileCounts()
    reasons = cancel_reasons or {}
    owned = set(events) | {plan.event for plan in plans}
    wanted = {plan.dedupe_key: plan for plan in plans}
    idents = sorted(set(scope) | {(p.appointment_key, p.occurrence) for p in plans})
    existing = {job.dedupe_key: job for job in jobs_for(connection, idents) if job.event in owned}

    inserts = []
    for key, plan in wanted.items():
        job = existing.get(key)
        if job is None:
            inserts.append(plan)
            continue
        if job.status in DONE_STATUSES:
            counts.kept += 1
            continue
        status = JobStatus.SKIPPED if plan.skip_reason else JobStatus.PLANNED
        due, detail = plan.due, plan.skip_reason
        if job.status == status == JobStatus.PLANNED and job.attempts > 0:
            # A retry is waiting out its back-off: a re-plan must not bring it forward, nor
            # wipe the error that explains the wait.
            due, detail = max(job.due_at, plan.due), job.last_error
        if (
            job.status == status
            and job.due_at == due
            and job.last_error == detail
            and job.appointment_start == plan.appointment_start
            and job.patient_key == plan.patient_key
        ):
            continue
        kind = "skipped" if plan.skip_reason else "replanned"
        # Staff may move a booking to another patient (a wrong chart picked): the pending job
        # follows the appointment to its new patient; nothing was sent to the old one yet.
        _transition(
            connection,
            job.id,
            now,
            kind,
            status,
            detail,
            due_at=due,
            appointment_start=plan.appointment_start,
            patient_key=plan.patient_key,
        )
        if plan.skip_reason:
            counts.skipped += 1
        else:
            counts.replanned += 1

    for job in existing.values():
        if job.dedupe_key in wanted or job.status not in (JobStatus.PLANNED, JobStatus.SKIPPED):
            continue
        reason = reasons.get((job.appointment_key, job.occurrence), "no longer planned")
        _transition(connection, job.id, now, "cancelled", JobStatus.CANCELLED, reason)
        counts.cancelled += 1

    _insert_plans(connection, inserts, now)
    counts.skipped += sum(1 for plan in inserts if plan.skip_reason)
    counts.planned += sum(1 for plan in inserts if not plan.skip_reason)
    return counts


def _insert_plans(connection: Connection, plans: list[JobPlan], now: datetime) -> None:
    """New jobs and their first events, in two batched statements."""
    if not plans:
        return
    rows = [
        {
            "dedupe_key": plan.dedupe_key,
            "event": plan.event,
            "appointment_key": plan.appointment_key,
            "occurrence": plan.occurrence,
            "patient_key": plan.patient_key,
            "rule": plan.rule,
            "channel": plan.channel.value,
            "status": (JobStatus.SKIPPED if plan.skip_reason else JobStatus.PLANNED).value,
            "attempts": 0,
            "due_at": plan.due,
            "appointment_start": plan.appointment_start,
            "last_error": plan.skip_reason,
            "created_at": now,
            "updated_at": now,
        }
        for plan in plans
    ]
    created = connection.execute(
        insert(jobs).returning(jobs.c.id, jobs.c.status, jobs.c.last_error), rows
    ).all()
    connection.execute(
        insert(job_events),
        [
            {"job_id": job_id, "at": now, "kind": "planned", "status": status, "detail": detail}
            for job_id, status, detail in created
        ],
    )


def jobs_for(connection: Connection, idents: Sequence[tuple[str, date]]) -> list[Job]:
    """Every job of the given (appointment key, occurrence) pairs."""
    found: list[Job] = []
    for start in range(0, len(idents), BATCH):
        chunk = list(idents[start : start + BATCH])
        rows = connection.execute(
            select(jobs).where(tuple_(jobs.c.appointment_key, jobs.c.occurrence).in_(chunk))
        )
        found.extend(Job.from_row(row) for row in rows)
    return found


def jobs_of_patients(connection: Connection, patient_keys: Iterable[str]) -> list[Job]:
    """Every job of the given patients (for rules that look across appointments)."""
    keys = sorted(set(patient_keys))
    found: list[Job] = []
    for start in range(0, len(keys), BATCH):
        rows = connection.execute(
            select(jobs).where(jobs.c.patient_key.in_(keys[start : start + BATCH]))
        )
        found.extend(Job.from_row(row) for row in rows)
    return found


def get_job(connection: Connection, job_id: int) -> Job | None:
    row = connection.execute(select(jobs).where(jobs.c.id == job_id)).first()
    return Job.from_row(row) if row else None


def claim_due(
    connection: Connection,
    now: datetime,
    lease: timedelta,
    limit: int = 1,
    channel: Channel | None = None,
) -> list[Job]:
    """Claim up to ``limit`` planned jobs that are due, oldest first, under a lease.

    One statement, so two workers can never claim the same job; on PostgreSQL the inner select
    skips rows another worker has locked instead of waiting for them. The candidates are a
    MATERIALIZED CTE: PostgreSQL may re-run a plain ``IN (SELECT ... LIMIT n FOR UPDATE)`` per
    row and claim far more than ``n`` jobs.
    """
    candidates = (
        select(jobs.c.id)
        .where(jobs.c.status == JobStatus.PLANNED.value, jobs.c.due_at <= now)
        .order_by(jobs.c.due_at, jobs.c.id)
        .limit(limit)
    )
    if channel is not None:
        candidates = candidates.where(jobs.c.channel == channel.value)
    if connection.dialect.name == "postgresql":
        candidates = candidates.with_for_update(skip_locked=True)
    picked = candidates.cte("picked").prefix_with("MATERIALIZED")
    rows = connection.execute(
        update(jobs)
        .where(jobs.c.id.in_(select(picked.c.id)), jobs.c.status == JobStatus.PLANNED.value)
        .values(
            status=JobStatus.SENDING.value,
            lease_until=now + lease,
            attempts=jobs.c.attempts + 1,
            updated_at=now,
        )
        .returning(*jobs.c)
    ).all()
    claimed = sorted((Job.from_row(row) for row in rows), key=lambda j: (j.due_at, j.id))
    if claimed:  # one statement for the batch's events (a round trip each on PostgreSQL)
        connection.execute(
            insert(job_events),
            [
                {
                    "job_id": job.id,
                    "at": now,
                    "kind": "claimed",
                    "status": JobStatus.SENDING.value,
                    "detail": f"attempt {job.attempts}",
                }
                for job in claimed
            ],
        )
    return claimed


def mark_sent(connection: Connection, job: Job, now: datetime, provider_ref: str | None) -> None:
    """The channel accepted the message."""
    _transition(
        connection,
        job.id,
        now,
        "sent",
        JobStatus.SENT,
        None,
        expect=JobStatus.SENDING,
        sent_at=now,
        provider_ref=provider_ref,
        lease_until=None,
    )


def mark_retry(connection: Connection, job: Job, now: datetime, due: datetime, error: str) -> None:
    """A transient failure: plan the job again for ``due``."""
    _transition(
        connection,
        job.id,
        now,
        "retry",
        JobStatus.PLANNED,
        error,
        expect=JobStatus.SENDING,
        due_at=due,
        lease_until=None,
    )


def mark_failed(connection: Connection, job: Job, now: datetime, error: str) -> None:
    """A permanent failure: the job ends here."""
    _transition(
        connection,
        job.id,
        now,
        "failed",
        JobStatus.FAILED,
        error,
        expect=JobStatus.SENDING,
        lease_until=None,
    )


def mark_dropped(
    connection: Connection, job: Job, now: datetime, status: JobStatus, reason: str
) -> None:
    """A claimed job that must not go out after all (cancelled, skipped at the last check).

    Only while it is still ``sending``: a worker whose lease ran out must not overwrite what
    another worker settled (a job already sent, turned cancelled, would be revived and resent).
    """
    _transition(
        connection,
        job.id,
        now,
        str(status),
        status,
        reason,
        expect=JobStatus.SENDING,
        lease_until=None,
    )


def expire_leases(connection: Connection, now: datetime) -> list[Job]:
    """Jobs whose sender vanished mid-send become ``unknown``: never resent blindly."""
    rows = connection.execute(
        update(jobs)
        .where(
            and_(jobs.c.status == JobStatus.SENDING.value, jobs.c.lease_until < now),
        )
        .values(status=JobStatus.UNKNOWN.value, updated_at=now, lease_until=None)
        .returning(*jobs.c)
    ).all()
    expired = [Job.from_row(row) for row in rows]
    for job in expired:
        _event(connection, job.id, now, "lease-expired", JobStatus.UNKNOWN, "sender vanished")
    return expired


def resolve_unknown(
    connection: Connection, job: Job, now: datetime, status: JobStatus, detail: str
) -> None:
    """Settle an ``unknown`` job once the channel (or policy) says what happened."""
    _transition(
        connection,
        job.id,
        now,
        "resolved",
        status,
        detail,
        expect=JobStatus.UNKNOWN,
        sent_at=now if status == JobStatus.SENT else None,
    )


def _transition(
    connection: Connection,
    job_id: int,
    now: datetime,
    kind: str,
    status: JobStatus,
    detail: str | None,
    expect: JobStatus | None = None,
    **values: Any,
) -> None:
    query = update(jobs).where(jobs.c.id == job_id)
    if expect is not None:
        query = query.where(jobs.c.status == expect.value)
    result = connection.execute(
        query.values(status=status.value, last_error=detail, updated_at=now, **values)
    )
    if result.rowcount:
        _event(connection, job_id, now, kind, status, detail)


def _event(
    connection: Connection,
    job_id: int,
    now: datetime,
    kind: str,
    status: JobStatus,
    detail: str | None,
) -> None:
    connection.execute(
        insert(job_events).values(
            job_id=job_id, at=now, kind=kind, status=status.value, detail=detail
        )
    )
