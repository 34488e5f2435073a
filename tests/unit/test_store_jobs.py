"""The job queue on both stores: idempotent reconcile, exact claiming, leases, the event log.

Every test runs on SQLite and on PostgreSQL through the ``store_url`` fixture; the concurrent
claim test needs PostgreSQL (``FOR UPDATE SKIP LOCKED``) and runs there only.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from bridge.errors import StoreError
from bridge.model import Channel
from bridge.store import Store
from bridge.store import jobs as queue
from bridge.store.jobs import Job, JobPlan, ReconcileCounts, reconcile
from bridge.store.schema import JobStatus, job_events, jobs
from tests.conftest import drop_postgres, fresh_postgres

T0 = datetime(2026, 6, 10, 8, 0, tzinfo=UTC)
OCC = date(2026, 6, 12)
START = datetime(2026, 6, 12, 13, 0, tzinfo=UTC)
LEASE = timedelta(minutes=5)


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    opened = Store.open(store_url)
    try:
        yield opened
    finally:
        opened.close()


def plan(
    key: str = "100",
    rule: str = "days_ahead",
    channel: Channel = Channel.SMS,
    due: datetime = T0,
    occurrence: date = OCC,
    start: datetime = START,
    skip_reason: str | None = None,
    patient: str = "P1",
) -> JobPlan:
    return JobPlan(
        event="reminder",
        appointment_key=key,
        occurrence=occurrence,
        patient_key=patient,
        rule=rule,
        channel=channel,
        due=due,
        appointment_start=start,
        skip_reason=skip_reason,
    )


def plan_all(store: Store, plans: list[JobPlan], now: datetime = T0, **kw: Any) -> ReconcileCounts:
    scope = kw.pop("scope", {(p.appointment_key, p.occurrence) for p in plans})
    with store.begin() as connection:
        return reconcile(connection, scope, plans, now, **kw)


def all_jobs(store: Store) -> list[Job]:
    with store.begin() as connection:
        return [Job.from_row(row) for row in connection.execute(select(jobs).order_by(jobs.c.id))]


def one_job(store: Store, dedupe: str) -> Job:
    (found,) = [j for j in all_jobs(store) if j.dedupe_key == dedupe]
    return found


def events(store: Store, job_id: int | None = None) -> list[tuple[str, str, str | None]]:
    query = select(job_events.c.kind, job_events.c.status, job_events.c.detail).order_by(
        job_events.c.id
    )
    if job_id is not None:
        query = query.where(job_events.c.job_id == job_id)
    with store.begin() as connection:
        return [(row.kind, row.status, row.detail) for row in connection.execute(query)]


def updated_at(store: Store) -> list[datetime]:
    with store.begin() as connection:
        return list(connection.execute(select(jobs.c.updated_at).order_by(jobs.c.id)).scalars())


def set_status(store: Store, dedupe: str, status: JobStatus) -> None:
    with store.begin() as connection:
        connection.execute(
            update(jobs).where(jobs.c.dedupe_key == dedupe).values(status=status.value)
        )


def claim(store: Store, now: datetime = T0, limit: int = 1, **kw: Any) -> list[Job]:
    with store.begin() as connection:
        return queue.claim_due(connection, now, LEASE, limit=limit, **kw)


def claimed_one(store: Store, now: datetime = T0) -> Job:
    (found,) = claim(store, now)
    return found


# --- migrations ---------------------------------------------------------------------------


def test_open_applies_migrations_and_is_idempotent(store_url: str) -> None:
    first = Store.open(store_url)
    try:
        with first.begin() as connection:
            assert connection.execute(select(func.count()).select_from(jobs)).scalar() == 0
            assert connection.execute(select(func.count()).select_from(job_events)).scalar() == 0
    finally:
        first.close()
    again = Store.open(store_url)  # a second start applies nothing and breaks nothing
    try:
        assert again.dialect in ("sqlite", "postgresql")
        with again.begin() as connection:
            assert connection.execute(select(func.count()).select_from(jobs)).scalar() == 0
    finally:
        again.close()


# --- reconcile ---------------------------------------------------------------------------


def test_reconcile_inserts_planned_and_skipped_jobs(store: Store) -> None:
    sms = plan()
    email = plan(channel=Channel.EMAIL, skip_reason="no email")
    counts = plan_all(store, [sms, email])
    assert counts == ReconcileCounts(planned=1, skipped=1)
    stored = {j.dedupe_key: j for j in all_jobs(store)}
    assert set(stored) == {sms.dedupe_key, email.dedupe_key}
    job = stored[sms.dedupe_key]
    assert (job.status, job.attempts, job.due_at, job.appointment_start, job.last_error) == (
        JobStatus.PLANNED,
        0,
        T0,
        START,
        None,
    )
    assert (job.appointment_key, job.occurrence, job.patient_key, job.rule, job.channel) == (
        "100",
        OCC,
        "P1",
        "days_ahead",
        Channel.SMS,
    )
    assert job.due_at.tzinfo is not None and job.due_at.utcoffset() == timedelta(0)
    skipped = stored[email.dedupe_key]
    assert (skipped.status, skipped.last_error) == (JobStatus.SKIPPED, "no email")
    assert events(store, job.id) == [("planned", "planned", None)]
    assert events(store, skipped.id) == [("planned", "skipped", "no email")]


def test_reconcile_same_plans_twice_changes_nothing(store: Store) -> None:
    plans = [plan(), plan(channel=Channel.EMAIL, skip_reason="no email"), plan(key="101")]
    plan_all(store, plans)
    before_jobs, before_events, stamps = all_jobs(store), events(store), updated_at(store)
    counts = plan_all(store, plans, now=T0 + timedelta(minutes=1))
    assert counts == ReconcileCounts()
    assert all_jobs(store) == before_jobs
    assert events(store) == before_events
    assert updated_at(store) == stamps


def test_reconcile_a_plan_given_twice_is_one_job(store: Store) -> None:
    counts = plan_all(store, [plan(), plan()])
    assert counts.planned == 1
    assert len(all_jobs(store)) == 1


@pytest.mark.parametrize(
    "change",
    [{"due": T0 + timedelta(hours=3)}, {"start": START + timedelta(hours=1)}],
    ids=["due", "appointment_start"],
)
def test_reconcile_replans_due_and_start(store: Store, change: dict[str, Any]) -> None:
    plan_all(store, [plan()])
    later = T0 + timedelta(minutes=10)
    counts = plan_all(store, [plan(**change)], now=later)
    assert counts == ReconcileCounts(replanned=1)
    (job,) = all_jobs(store)
    assert job.status == JobStatus.PLANNED
    assert job.due_at == change.get("due", T0)
    assert job.appointment_start == change.get("start", START)
    assert updated_at(store) == [later]
    assert events(store, job.id)[-1] == ("replanned", "planned", None)


def test_reconcile_cancels_jobs_no_longer_wanted_with_the_reason(store: Store) -> None:
    a, b = plan(key="100"), plan(key="101")
    c = plan(key="100", channel=Channel.EMAIL)
    plan_all(store, [a, b, c])
    counts = plan_all(
        store,
        [a],
        now=T0 + timedelta(minutes=1),
        scope={("100", OCC), ("101", OCC)},
        cancel_reasons={("101", OCC): "status 'x' (cancelled) is not eligible"},
    )
    assert counts == ReconcileCounts(cancelled=2)
    stored = {j.dedupe_key: j for j in all_jobs(store)}
    assert stored[a.dedupe_key].status == JobStatus.PLANNED
    assert (stored[b.dedupe_key].status, stored[b.dedupe_key].last_error) == (
        JobStatus.CANCELLED,
        "status 'x' (cancelled) is not eligible",
    )
    # no reason given for its occurrence: the default one
    assert (stored[c.dedupe_key].status, stored[c.dedupe_key].last_error) == (
        JobStatus.CANCELLED,
        "no longer planned",
    )
    assert events(store, stored[b.dedupe_key].id)[-1] == (
        "cancelled",
        "cancelled",
        "status 'x' (cancelled) is not eligible",
    )


def test_reconcile_leaves_occurrences_outside_scope_alone(store: Store) -> None:
    a, b = plan(key="100"), plan(key="101")
    plan_all(store, [a, b])
    counts = plan_all(store, [a], scope={("100", OCC)})
    assert counts == ReconcileCounts()
    assert {j.status for j in all_jobs(store)} == {JobStatus.PLANNED}


def test_reconcile_cancels_a_skipped_job_too(store: Store) -> None:
    plan_all(store, [plan(skip_reason="no consent for sms on record")])
    counts = plan_all(store, [], scope={("100", OCC)})
    assert counts == ReconcileCounts(cancelled=1)
    assert all_jobs(store)[0].status == JobStatus.CANCELLED


@pytest.mark.parametrize(
    "status", [JobStatus.SENT, JobStatus.SENDING, JobStatus.UNKNOWN, JobStatus.FAILED]
)
def test_reconcile_never_touches_jobs_handed_to_a_channel(store: Store, status: JobStatus) -> None:
    p = plan()
    plan_all(store, [p])
    set_status(store, p.dedupe_key, status)
    before, before_events = all_jobs(store), events(store)

    # wanted again, with another due, another start and a skip reason
    changed = replace(p, due=T0 + timedelta(hours=5), skip_reason="no mobile number")
    counts = plan_all(store, [changed], now=T0 + timedelta(minutes=1))
    assert counts == ReconcileCounts(kept=1)
    # no longer wanted at all
    counts = plan_all(store, [], now=T0 + timedelta(minutes=2), scope={("100", OCC)})
    assert counts == ReconcileCounts()
    assert all_jobs(store) == before
    assert events(store) == before_events


def test_reconcile_revives_a_cancelled_job_planned_again(store: Store) -> None:
    p = plan()
    plan_all(store, [p])
    plan_all(store, [], now=T0 + timedelta(minutes=1), scope={("100", OCC)})
    assert all_jobs(store)[0].status == JobStatus.CANCELLED
    counts = plan_all(store, [p], now=T0 + timedelta(minutes=2))
    assert counts == ReconcileCounts(replanned=1)
    (job,) = all_jobs(store)
    assert (job.status, job.last_error) == (JobStatus.PLANNED, None)
    assert [e[0] for e in events(store, job.id)] == ["planned", "cancelled", "replanned"]


def test_reconcile_skip_reason_and_skipped_status_follow_the_plan(store: Store) -> None:
    p = plan()
    plan_all(store, [p])
    counts = plan_all(store, [replace(p, skip_reason="patient opted out of sms")])
    assert counts == ReconcileCounts(skipped=1)
    (job,) = all_jobs(store)
    assert (job.status, job.last_error) == (JobStatus.SKIPPED, "patient opted out of sms")

    counts = plan_all(store, [replace(p, skip_reason="no mobile number")])
    assert counts == ReconcileCounts(skipped=1)
    assert all_jobs(store)[0].last_error == "no mobile number"

    counts = plan_all(store, [p])
    assert counts == ReconcileCounts(replanned=1)
    (job,) = all_jobs(store)
    assert (job.status, job.last_error) == (JobStatus.PLANNED, None)
    assert events(store, job.id) == [
        ("planned", "planned", None),
        ("skipped", "skipped", "patient opted out of sms"),
        ("skipped", "skipped", "no mobile number"),
        ("replanned", "planned", None),
    ]


def test_reconcile_many_occurrences_in_batches(store: Store) -> None:
    """More idents than one batch of the lookup (500): still one job per plan, and a re-run is
    idempotent."""
    plans = [plan(key=str(1000 + n)) for n in range(600)]
    assert plan_all(store, plans).planned == 600
    assert plan_all(store, plans) == ReconcileCounts()
    assert len(all_jobs(store)) == 600


# --- the unique dedupe key -----------------------------------------------------------------


def raw_row(p: JobPlan) -> dict[str, Any]:
    return {
        "dedupe_key": p.dedupe_key,
        "appointment_key": p.appointment_key,
        "occurrence": p.occurrence,
        "patient_key": p.patient_key,
        "event": p.event,
        "rule": p.rule,
        "channel": p.channel.value,
        "status": "planned",
        "attempts": 0,
        "due_at": p.due,
        "appointment_start": p.appointment_start,
        "created_at": T0,
        "updated_at": T0,
    }


def test_dedupe_key_is_unique_in_the_store(store: Store) -> None:
    p = plan()
    plan_all(store, [p])
    with pytest.raises(IntegrityError), store.engine.begin() as connection:
        connection.execute(insert(jobs).values(**raw_row(replace(p, due=T0 + timedelta(1)))))
    with pytest.raises(StoreError) as caught, store.begin("insert") as connection:
        connection.execute(insert(jobs).values(**raw_row(p)))
    assert isinstance(caught.value.__cause__, IntegrityError)
    assert len(all_jobs(store)) == 1


# --- claiming ------------------------------------------------------------------------------


def ten_due(store: Store) -> list[JobPlan]:
    """Ten due jobs, inserted newest first so that id order is not due order."""
    plans = [plan(key=str(200 + n), due=T0 - timedelta(minutes=n)) for n in range(10)]
    plan_all(store, plans)
    return sorted(plans, key=lambda p: p.due)


def test_claim_due_respects_limit_exactly_oldest_first(store: Store) -> None:
    plans = ten_due(store)
    claimed = claim(store, limit=3)
    assert [j.dedupe_key for j in claimed] == [p.dedupe_key for p in plans[:3]]
    assert [j.status for j in all_jobs(store)].count(JobStatus.SENDING) == 3


def test_claim_due_sets_status_attempts_lease_and_event(store: Store) -> None:
    ten_due(store)
    job = claimed_one(store)
    assert (job.status, job.attempts, job.lease_until) == (JobStatus.SENDING, 1, T0 + LEASE)
    stored = one_job(store, job.dedupe_key)
    assert (stored.status, stored.attempts, stored.lease_until) == (
        JobStatus.SENDING,
        1,
        T0 + LEASE,
    )
    assert events(store, job.id)[-1] == ("claimed", "sending", "attempt 1")


def test_claims_in_a_row_never_return_the_same_job(store: Store) -> None:
    plans = ten_due(store)
    seen: list[str] = []
    while batch := claim(store, limit=3):
        assert len(batch) <= 3
        seen.extend(j.dedupe_key for j in batch)
    assert seen == [p.dedupe_key for p in plans]
    assert claim(store, limit=10) == []


def test_claim_due_only_takes_due_planned_jobs(store: Store) -> None:
    due = plan(key="1", due=T0 - timedelta(minutes=1))
    exactly_now = plan(key="2", due=T0)
    future = plan(key="3", due=T0 + timedelta(seconds=1))
    skipped = plan(key="4", due=T0 - timedelta(hours=1), skip_reason="no email")
    cancelled = plan(key="5", due=T0 - timedelta(hours=1))
    failed = plan(key="6", due=T0 - timedelta(hours=1))
    plan_all(store, [due, exactly_now, future, skipped, cancelled, failed])
    set_status(store, cancelled.dedupe_key, JobStatus.CANCELLED)
    set_status(store, failed.dedupe_key, JobStatus.FAILED)
    claimed = claim(store, limit=10)
    assert [j.appointment_key for j in claimed] == ["1", "2"]
    assert [j.appointment_key for j in claim(store, now=T0 + timedelta(seconds=1), limit=10)] == [
        "3"
    ]


def test_claim_due_ties_are_broken_by_id(store: Store) -> None:
    plans = [plan(key=str(300 + n)) for n in range(4)]
    plan_all(store, plans)
    ids = [j.id for j in all_jobs(store)]
    assert [j.id for j in claim(store, limit=4)] == sorted(ids)


def test_claim_due_by_channel(store: Store) -> None:
    plan_all(
        store,
        [
            plan(channel=Channel.SMS, due=T0 - timedelta(minutes=2)),
            plan(channel=Channel.EMAIL),
        ],
    )
    claimed = claim(store, limit=5, channel=Channel.EMAIL)
    assert [j.channel for j in claimed] == [Channel.EMAIL]


def test_claim_due_on_an_empty_queue(store: Store) -> None:
    assert claim(store, limit=5) == []
    assert events(store) == []


# --- leases ---------------------------------------------------------------------------------


def test_expire_leases_turns_only_expired_sending_into_unknown(store: Store) -> None:
    ten_due(store)
    early = claimed_one(store, T0)  # lease until T0 + 5 min
    late = claimed_one(store, T0 + timedelta(minutes=4))  # lease until T0 + 9 min
    with store.begin() as connection:
        assert queue.expire_leases(connection, T0 + LEASE) == []  # a lease ending now holds
    at = T0 + timedelta(minutes=6)
    with store.begin() as connection:
        expired = queue.expire_leases(connection, at)
    assert [j.id for j in expired] == [early.id]
    assert (expired[0].status, expired[0].lease_until) == (JobStatus.UNKNOWN, None)
    assert one_job(store, early.dedupe_key).status == JobStatus.UNKNOWN
    assert one_job(store, late.dedupe_key).status == JobStatus.SENDING
    assert events(store, early.id)[-1] == ("lease-expired", "unknown", "sender vanished")
    # never planned again by itself: nothing to claim for that job
    assert early.id not in [j.id for j in claim(store, at, limit=10)]


def test_expire_leases_ignores_other_statuses(store: Store) -> None:
    ten_due(store)
    with store.begin() as connection:
        assert queue.expire_leases(connection, T0 + timedelta(days=30)) == []
    assert {j.status for j in all_jobs(store)} == {JobStatus.PLANNED}


# --- outcomes ---------------------------------------------------------------------------------


def test_mark_sent(store: Store) -> None:
    ten_due(store)
    job = claimed_one(store)
    at = T0 + timedelta(seconds=5)
    with store.begin() as connection:
        queue.mark_sent(connection, job, at, "SM-test-1")
    stored = one_job(store, job.dedupe_key)
    assert (stored.status, stored.sent_at, stored.provider_ref, stored.lease_until) == (
        JobStatus.SENT,
        at,
        "SM-test-1",
        None,
    )
    assert events(store, job.id)[-1] == ("sent", "sent", None)


@pytest.mark.parametrize("status", [JobStatus.UNKNOWN, JobStatus.CANCELLED, JobStatus.PLANNED])
def test_mark_sent_on_a_job_no_longer_sending_changes_nothing(
    store: Store, status: JobStatus
) -> None:
    ten_due(store)
    job = claimed_one(store)
    set_status(store, job.dedupe_key, status)
    before, before_events = all_jobs(store), events(store)
    with store.begin() as connection:
        queue.mark_sent(connection, job, T0 + timedelta(minutes=1), "SM-test-2")
    assert all_jobs(store) == before
    assert events(store) == before_events


def test_mark_retry_plans_the_job_again(store: Store) -> None:
    ten_due(store)
    job = claimed_one(store)
    retry_at = T0 + timedelta(minutes=10)
    with store.begin() as connection:
        queue.mark_retry(connection, job, T0, retry_at, "provider busy (429)")
    stored = one_job(store, job.dedupe_key)
    assert (stored.status, stored.due_at, stored.last_error, stored.lease_until) == (
        JobStatus.PLANNED,
        retry_at,
        "provider busy (429)",
        None,
    )
    assert events(store, job.id)[-1] == ("retry", "planned", "provider busy (429)")
    assert job.id not in [j.id for j in claim(store, retry_at - timedelta(seconds=1), limit=20)]
    again = [j for j in claim(store, retry_at, limit=20) if j.id == job.id]
    assert [j.attempts for j in again] == [2]


def test_mark_failed(store: Store) -> None:
    ten_due(store)
    job = claimed_one(store)
    with store.begin() as connection:
        queue.mark_failed(connection, job, T0, "number is not reachable")
    stored = one_job(store, job.dedupe_key)
    assert (stored.status, stored.last_error, stored.lease_until) == (
        JobStatus.FAILED,
        "number is not reachable",
        None,
    )
    assert events(store, job.id)[-1] == ("failed", "failed", "number is not reachable")


@pytest.mark.parametrize("action", ["retry", "failed"])
def test_mark_retry_and_failed_need_a_sending_job(store: Store, action: str) -> None:
    ten_due(store)
    job = claimed_one(store)
    with store.begin() as connection:
        queue.mark_sent(connection, job, T0, None)
    before, before_events = all_jobs(store), events(store)
    with store.begin() as connection:
        if action == "retry":
            queue.mark_retry(connection, job, T0, T0 + timedelta(hours=1), "late error")
        else:
            queue.mark_failed(connection, job, T0, "late error")
    assert all_jobs(store) == before
    assert events(store) == before_events


def test_mark_dropped_on_a_job_no_longer_sending_changes_nothing(store: Store) -> None:
    ten_due(store)
    job = claimed_one(store)
    with store.begin() as connection:
        queue.expire_leases(connection, T0 + timedelta(hours=1))
        queue.resolve_unknown(connection, job, T0 + timedelta(hours=1), JobStatus.SENT, "found")
    before, before_events = all_jobs(store), events(store)
    with store.begin() as connection:
        queue.mark_dropped(
            connection, job, T0 + timedelta(hours=2), JobStatus.CANCELLED, "appointment gone"
        )
    assert all_jobs(store) == before
    assert events(store) == before_events


def test_mark_dropped_a_claimed_job(store: Store) -> None:
    ten_due(store)
    job = claimed_one(store)
    with store.begin() as connection:
        queue.mark_dropped(connection, job, T0, JobStatus.SKIPPED, "patient opted out of sms")
    stored = one_job(store, job.dedupe_key)
    assert (stored.status, stored.last_error, stored.lease_until) == (
        JobStatus.SKIPPED,
        "patient opted out of sms",
        None,
    )
    assert events(store, job.id)[-1] == ("skipped", "skipped", "patient opted out of sms")


RESOLVE = [
    # status, sent_at set
    (JobStatus.SENT, True),
    (JobStatus.FAILED, False),
    (JobStatus.PLANNED, False),
]


@pytest.mark.parametrize(("status", "sent"), RESOLVE, ids=[r[0].value for r in RESOLVE])
def test_resolve_unknown(store: Store, status: JobStatus, sent: bool) -> None:
    ten_due(store)
    job = claimed_one(store)
    at = T0 + timedelta(minutes=6)
    with store.begin() as connection:
        (unknown,) = queue.expire_leases(connection, at)
        queue.resolve_unknown(connection, unknown, at, status, "the channel says so")
    stored = one_job(store, job.dedupe_key)
    assert (stored.status, stored.last_error) == (status, "the channel says so")
    assert stored.sent_at == (at if sent else None)
    assert events(store, job.id)[-1] == ("resolved", status.value, "the channel says so")


def test_resolve_unknown_needs_an_unknown_job(store: Store) -> None:
    ten_due(store)
    job = claimed_one(store)  # still sending
    before, before_events = all_jobs(store), events(store)
    with store.begin() as connection:
        queue.resolve_unknown(connection, job, T0, JobStatus.SENT, "the channel says so")
    assert all_jobs(store) == before
    assert events(store) == before_events


def test_job_events_tell_the_whole_story(store: Store) -> None:
    p = plan()
    plan_all(store, [p])
    first = claimed_one(store)
    with store.begin() as connection:
        queue.mark_retry(connection, first, T0, T0 + timedelta(minutes=10), "timeout")
    second = claimed_one(store, T0 + timedelta(minutes=10))
    with store.begin() as connection:
        queue.mark_sent(connection, second, T0 + timedelta(minutes=10), "SM-test-3")
    plan_all(store, [replace(p, due=T0 + timedelta(days=1))], now=T0 + timedelta(minutes=11))
    assert events(store, first.id) == [
        ("planned", "planned", None),
        ("claimed", "sending", "attempt 1"),
        ("retry", "planned", "timeout"),
        ("claimed", "sending", "attempt 2"),
        ("sent", "sent", None),
    ]
    with store.begin() as connection:
        stamps = list(
            connection.execute(
                select(job_events.c.at)
                .where(job_events.c.job_id == first.id)
                .order_by(job_events.c.id)
            ).scalars()
        )
    assert stamps == sorted(stamps)
    assert stamps[0] == T0 and stamps[-1] == T0 + timedelta(minutes=10)


# --- several workers on PostgreSQL -----------------------------------------------------------


@pytest.fixture
def postgres_store(postgres_admin: str) -> Iterator[Store]:
    name, url = fresh_postgres(postgres_admin)
    opened = Store.open(url)
    try:
        yield opened
    finally:
        opened.close()
        drop_postgres(postgres_admin, name)


@pytest.mark.postgres
def test_concurrent_claims_take_every_job_exactly_once(postgres_store: Store) -> None:
    plans = [plan(key=str(400 + n), due=T0 - timedelta(seconds=n % 7)) for n in range(50)]
    plan_all(postgres_store, plans)
    start = threading.Barrier(2)
    taken: dict[str, list[int]] = {"a": [], "b": []}
    errors: list[BaseException] = []

    def worker(name: str) -> None:
        try:
            start.wait(timeout=30)
            while True:
                with postgres_store.engine.begin() as connection:
                    batch = queue.claim_due(connection, T0, LEASE, limit=1)
                if not batch:
                    return
                assert len(batch) == 1
                taken[name].extend(j.id for j in batch)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(name,)) for name in taken]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    claimed = taken["a"] + taken["b"]
    assert len(claimed) == len(set(claimed)) == 50
    assert sorted(claimed) == sorted(j.id for j in all_jobs(postgres_store))
    assert {j.status for j in all_jobs(postgres_store)} == {JobStatus.SENDING}
    assert {j.attempts for j in all_jobs(postgres_store)} == {1}


@pytest.mark.postgres
def test_claim_skips_a_job_another_worker_holds_instead_of_waiting(postgres_store: Store) -> None:
    """Worker one has claimed a job and not committed yet; worker two gets the next job at once
    (``SKIP LOCKED``) rather than waiting on the lock (``lock_timeout`` turns a wait into an
    error)."""
    plan_all(
        postgres_store,
        [
            plan(key="1", due=T0 - timedelta(minutes=2)),
            plan(key="2", due=T0 - timedelta(minutes=1)),
        ],
    )
    engine = postgres_store.engine
    with engine.connect() as first, engine.connect() as second, first.begin():
        held = queue.claim_due(first, T0, LEASE, limit=1)
        with second.begin():
            second.execute(text("SET LOCAL lock_timeout = '3s'"))
            other = queue.claim_due(second, T0, LEASE, limit=1)
    assert [j.appointment_key for j in held] == ["1"]
    assert [j.appointment_key for j in other] == ["2"]
    assert {j.status for j in all_jobs(postgres_store)} == {JobStatus.SENDING}


def test_a_replan_keeps_a_retry_waiting_out_its_back_off(store: Store) -> None:
    first = plan()
    plan_all(store, [first])
    job = claimed_one(store)
    retry_at = T0 + timedelta(minutes=20)
    with store.begin() as connection:
        queue.mark_retry(connection, job, T0, retry_at, "provider busy (429)")
    # The appointment changes: the planner wants it now, with a new start.
    later = replace(first, appointment_start=START + timedelta(hours=1))
    plan_all(store, [later], now=T0 + timedelta(minutes=1))
    after = one_job(store, first.dedupe_key)
    assert after.status == JobStatus.PLANNED
    assert after.due_at == retry_at
    assert after.last_error == "provider busy (429)"
    assert after.appointment_start == START + timedelta(hours=1)
