"""Settling ``unknown`` jobs: did the interrupted send go out? Never guessed by resending.

A job is ``unknown`` after its sender vanished mid-send (its lease ran out) or after an
ambiguous time-out. In order:

1. No attempt in flight in the ledger: the request never left (the crash came before the
   attempt was recorded, or after an earlier attempt was settled): the job is planned again,
   unless the channel keeps idempotency keys and has the message (a job claimed by a version
   without the ledger).
2. The attempt already has a provider id (a status callback, or the call script fetched by
   the provider, named it): it went out.
3. The channel is asked (``find_sent``): it has the message (sent), or it does not (planned
   again, due now: safe, since the attempt is known not to have reached the provider).
4. The channel cannot tell (``NotImplementedError``: SMTP, a provider without a message log):
   ``delivery.unknown_policy`` decides, between counting it as sent and failing it for staff.
   The channel cannot be reached now: asked again after ``delivery.unknown_settle``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bridge.delivery import jobstate, ledger
from bridge.errors import DeliveryError
from bridge.plugin import SendProbe
from bridge.runtime import Runtime
from bridge.store.jobs import Job
from bridge.store.schema import JobStatus

log = logging.getLogger(__name__)


@dataclass
class SettleReport:
    sent: int = 0
    replanned: int = 0
    by_policy: int = 0
    waiting: int = 0

    @property
    def total(self) -> int:
        return self.sent + self.replanned + self.by_policy


def settle_due(runtime: Runtime) -> SettleReport:
    """Settle every ``unknown`` job whose time has come."""
    report = SettleReport()
    settings = runtime.settings.delivery
    now = runtime.clock.now()
    with runtime.store.begin("find unknown jobs") as connection:
        due = jobstate.due_unknown(connection, now)
    for job in due:
        now = runtime.clock.now()
        with runtime.store.begin("read attempt") as connection:
            attempt = ledger.latest_for_job(connection, job.id)
            exclude = (
                ledger.known_refs(connection, attempt.channel, attempt.recipient)
                if attempt is not None
                else frozenset()
            )
        if attempt is None or attempt.status not in ledger.IN_FLIGHT:
            # No attempt in flight: this dispatcher never let the request leave. A channel
            # that keeps idempotency keys is asked all the same (a job claimed by an older
            # version, which kept no ledger, may have gone out).
            if _channel_has(runtime, job):
                _settle(runtime, job, None, JobStatus.SENT, "the channel has it")
                report.sent += 1
            else:
                detail = "the request never left: planned again"
                _settle(runtime, job, None, JobStatus.PLANNED, detail)
                report.replanned += 1
            continue
        if attempt.provider_ref:
            _settle(runtime, job, attempt, JobStatus.SENT, "the provider named the message")
            report.sent += 1
            continue
        probe = SendProbe(
            idempotency_key=attempt.idempotency_key,
            token=attempt.token,
            channel=attempt.channel,
            to=attempt.recipient,
            body_digest=attempt.body_digest,
            since=attempt.started_at,
            exclude_refs=exclude,
        )
        channel = runtime.channels[job.channel]
        try:
            found = channel.find_sent(probe)
        except NotImplementedError:
            if settings.unknown_policy == "assume_sent":
                detail = "outcome unknown and the channel cannot tell: counted as sent, not resent"
                _settle(runtime, job, attempt, JobStatus.SENT, detail)
            else:
                detail = "outcome unknown and the channel cannot tell: failed for staff, not resent"
                _settle(runtime, job, attempt, JobStatus.FAILED, detail)
            report.by_policy += 1
            continue
        except DeliveryError as exc:
            log.warning("job %s: cannot ask the channel yet (%s)", job.id, exc)
            with runtime.store.begin("postpone settling") as connection:
                jobstate.postpone_unknown(connection, job, now, now + settings.unknown_settle)
            report.waiting += 1
            continue
        if found is not None:
            with runtime.store.begin("record found ref") as connection:
                if found.provider_ref:
                    ledger.set_ref(connection, attempt.token, found.provider_ref, now)
            _settle(runtime, job, attempt, JobStatus.SENT, "the channel has it")
            report.sent += 1
        else:
            _settle(runtime, job, attempt, JobStatus.PLANNED, "the channel never got it")
            report.replanned += 1
    return report


def _channel_has(runtime: Runtime, job: Job) -> bool:
    """Whether the channel holds the job's next message by its idempotency key."""
    with runtime.store.begin("count sends") as connection:
        key = ledger.attempt_key(job.dedupe_key, ledger.sends_of_job(connection, job.id) + 1)
    try:
        return runtime.channels[job.channel].lookup(key) is not None
    except (NotImplementedError, DeliveryError):
        return False


def _settle(
    runtime: Runtime,
    job: Job,
    attempt: ledger.Delivery | None,
    status: JobStatus,
    detail: str,
) -> None:
    now = runtime.clock.now()
    with runtime.store.begin("settle unknown job") as connection:
        jobstate.settle(connection, job, now, status, detail)
        if attempt is not None:
            outcome = {
                JobStatus.SENT: ledger.ACCEPTED,
                JobStatus.PLANNED: ledger.NOT_SENT,
                JobStatus.FAILED: ledger.UNKNOWN,
            }[status]
            ledger.finish(connection, attempt.token, outcome, now, detail)
    log.info("job %s settled: %s", job.id, detail)
