"""Delivery's job transitions: rounds read from the event log, guarded transitions."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest

from bridge.clock import parse_instant
from bridge.delivery import jobstate
from bridge.model import Channel
from bridge.store import Store
from bridge.store import jobs as queue
from bridge.store.jobs import JobPlan, get_job
from bridge.store.schema import JobStatus

NOW = parse_instant("2026-03-27T09:00:00Z")
LEASE = timedelta(minutes=5)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(f"sqlite:///{tmp_path / 'store.sqlite'}")
    plans = [
        JobPlan(
            "reminder", "101", date(2026, 3, 28), "1", rule, channel, NOW, NOW + timedelta(days=1)
        )
        for rule, channel in (
            ("days_ahead", Channel.SMS),
            ("days_ahead", Channel.VOICE),
            ("lead_2h", Channel.SMS),
        )
    ]
    with opened.begin() as connection:
        queue.reconcile(connection, [], plans, NOW)
    yield opened
    opened.close()


def test_rounds_count_claims_but_not_rate_limits(store: Store) -> None:
    with store.begin() as connection:
        [job] = queue.claim_due(connection, NOW, LEASE, 1, Channel.SMS)
        assert jobstate.current_round(connection, job.id) == jobstate.Round(1, 1)
        jobstate.retry(connection, job, NOW, NOW, "429", kind=jobstate.RATE_LIMITED)
        [job] = queue.claim_due(connection, NOW, LEASE, 1, Channel.SMS)
        assert jobstate.current_round(connection, job.id) == jobstate.Round(1, 1)
        jobstate.retry(connection, job, NOW, NOW, "busy", kind=jobstate.REDIAL)
        [job] = queue.claim_due(connection, NOW, LEASE, 1, Channel.SMS)
        assert jobstate.current_round(connection, job.id) == jobstate.Round(1, 2)
        jobstate.retry(connection, job, NOW, NOW, "busy", kind=jobstate.RESEND)
        assert jobstate.current_round(connection, job.id) == jobstate.Round(2, 0)


def test_sent_many_moves_only_jobs_still_sending(store: Store) -> None:
    with store.begin() as connection:
        claimed = queue.claim_due(connection, NOW, LEASE, 3)
        first, second = claimed[0], claimed[1]
        queue.mark_dropped(connection, second, NOW, JobStatus.CANCELLED, "gone")
        jobstate.sent_many(connection, {first.id: "SM1", second.id: "SM2"}, NOW)
        assert (get_job(connection, first.id) or first).status == JobStatus.SENT
        assert (get_job(connection, first.id) or first).provider_ref == "SM1"
        assert (get_job(connection, second.id) or second).status == JobStatus.CANCELLED


def test_an_answer_cancels_what_has_not_gone_out(store: Store) -> None:
    with store.begin() as connection:
        [job] = queue.claim_due(connection, NOW, LEASE, 1, Channel.VOICE)
        queue.mark_sent(connection, job, NOW, "CA1")
        stopped = jobstate.cancel_pending(connection, "101", date(2026, 3, 28), NOW, "answered")
        assert stopped == 2
        statuses = {
            j.channel: j.status
            for j in queue.jobs_for(connection, [("101", date(2026, 3, 28))])
            if j.rule == "days_ahead"
        }
        assert statuses == {Channel.VOICE: JobStatus.SENT, Channel.SMS: JobStatus.CANCELLED}


def test_reopen_and_settle_expect_their_status(store: Store) -> None:
    with store.begin() as connection:
        [job] = queue.claim_due(connection, NOW, LEASE, 1, Channel.VOICE)
        assert not jobstate.reopen(
            connection, job.id, NOW, NOW, "x", kind=jobstate.REDIAL, expect=JobStatus.SENT
        )
        queue.mark_sent(connection, job, NOW, "CA1")
        assert jobstate.reopen(
            connection, job.id, NOW, NOW, "busy", kind=jobstate.REDIAL, expect=JobStatus.SENT
        )
        [job] = queue.claim_due(connection, NOW, LEASE, 1, Channel.VOICE)
        jobstate.to_unknown(connection, job, NOW, NOW + timedelta(minutes=1), "time-out")
        assert jobstate.due_unknown(connection, NOW) == []
        [due] = jobstate.due_unknown(connection, NOW + timedelta(minutes=1))
        jobstate.settle(connection, due, NOW, JobStatus.SENT, "the channel has it")
        assert (get_job(connection, job.id) or job).status == JobStatus.SENT
