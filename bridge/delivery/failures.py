"""What a failed send leaves behind: the ledger's word on the attempt, and the job's next step.

- no answer after the request went out (``DeliveryOutcomeUnknown``): the job becomes
  ``unknown`` until ``delivery.unknown_settle`` has passed, then is settled by asking the
  provider;
- not sent because its batch's lease was running out (``LeaseRunningOut``): back to the queue at
  once, not counted as an attempt;
- the provider's rate limit (``retry_after``): the channel is held, the job waits with it, not
  counted as an attempt;
- any other refusal: a redial, a resend or the end, as ``bridge.delivery.policy`` says
  (a permanent one ends at once; a carrier opt-out is recorded as an opt-out first).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bridge.delivery import consent, jobstate, ledger
from bridge.delivery.pacing import Pacer
from bridge.delivery.policy import AttemptPolicy
from bridge.errors import (
    DeliveryError,
    DeliveryOutcomeUnknown,
    PermanentDeliveryError,
    RecipientOptedOut,
    TransientDeliveryError,
)
from bridge.plugin import OutboundMessage
from bridge.runtime import Runtime
from bridge.store import jobs as queue
from bridge.store.jobs import Job

log = logging.getLogger(__name__)


class LeaseRunningOut(DeliveryError):
    """A batch's message not sent because the batch's lease was running out."""


def record_failure(
    runtime: Runtime,
    pacer: Pacer,
    zone: ZoneInfo,
    job: Job,
    message: OutboundMessage,
    exc: Exception,
    started: datetime,
) -> str:
    """Record a send that did not end with the provider's acceptance; returns the report field
    to count it under (``retried`` or ``failed``)."""
    token = str(message.token)
    now = runtime.clock.now()
    if isinstance(exc, DeliveryOutcomeUnknown):
        settle_at = now + runtime.settings.delivery.unknown_settle
        with runtime.store.begin("record unknown") as connection:
            ledger.finish(connection, token, ledger.UNKNOWN, now, str(exc))
            jobstate.to_unknown(connection, job, now, settle_at, str(exc))
        log.warning("job %s: outcome unknown (%s); settled by asking later", job.id, exc)
        return "retried"
    if isinstance(exc, LeaseRunningOut):
        with runtime.store.begin("record deferred") as connection:
            ledger.finish(connection, token, ledger.NOT_SENT, now, str(exc))
            jobstate.retry(connection, job, now, now, str(exc), kind=jobstate.RATE_LIMITED)
        return "retried"
    if isinstance(exc, RecipientOptedOut):
        with runtime.store.begin("record carrier opt-out") as connection:
            patient = None if message.testing else job.patient_key
            consent.set_opt_out(
                connection, job.channel, message.to, patient, True, "carrier", started
            )
    if isinstance(exc, TransientDeliveryError):
        return _refused(runtime, pacer, zone, job, token, exc, False, exc.retry_after)
    assert isinstance(exc, PermanentDeliveryError)
    return _refused(runtime, pacer, zone, job, token, exc, True, None)


def _refused(
    runtime: Runtime,
    pacer: Pacer,
    zone: ZoneInfo,
    job: Job,
    token: str,
    exc: DeliveryError,
    permanent: bool,
    retry_after: float | None,
) -> str:
    """The provider refused the message: record it, then retry as the policy says."""
    now = runtime.clock.now()
    if retry_after:
        pacer.hold(job.channel, now + timedelta(seconds=retry_after))
    with runtime.store.begin("record failure") as connection:
        status = ledger.FAILED if permanent else ledger.NOT_SENT
        ledger.finish(connection, token, status, now, str(exc), exc.code)
        if retry_after:  # a provider's rate limit: not the message's fault
            until = now + timedelta(seconds=retry_after)
            jobstate.retry(connection, job, now, until, str(exc), kind=jobstate.RATE_LIMITED)
            return "retried"
        state = jobstate.current_round(connection, job.id)
        policy = AttemptPolicy.for_settings(runtime.settings, zone)
        retry = policy.after_failure(state, now, job.appointment_start, permanent=permanent)
        if retry is None:
            queue.mark_failed(connection, job, now, f"gave up after {state.attempts}: {exc}")
            return "failed"
        jobstate.retry(connection, job, now, retry.due, str(exc), kind=retry.kind)
    return "retried"
