"""A provider's word on a message after it accepted it: delivered, or failed (then redialled).

Callbacks come late, twice, or out of order ("sent" after "delivered"): only a final word
(delivered or failed) changes anything, and only the first one counts. A failure of the latest
attempt of a job that is still ``sent`` reopens it for a redial or a resend as
``bridge.delivery.policy`` says, unless the patient already answered or the failure is one that
would happen again (an invalid or landline number, an opt-out at the carrier).
"""

from __future__ import annotations

import logging
from datetime import datetime
from math import ceil
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from bridge.delivery import consent, jobstate, ledger
from bridge.delivery.ledger import Delivery
from bridge.delivery.policy import AttemptPolicy
from bridge.settings import Settings
from bridge.store.jobs import get_job
from bridge.store.schema import JobStatus

log = logging.getLogger(__name__)

# Failures that the same message would meet again: no redial. 21610 also records an opt-out.
PERMANENT_CODES = frozenset({"21211", "21610", "21614", "30005", "30006", "30007"})
OPTED_OUT_CODES = frozenset({"21610"})

TWILIO_SMS = {
    "delivered": ledger.DELIVERED,
    "read": ledger.DELIVERED,
    "undelivered": ledger.FAILED,
    "failed": ledger.FAILED,
    "canceled": ledger.FAILED,
}
TWILIO_CALL = {
    "completed": ledger.DELIVERED,
    "busy": ledger.FAILED,
    "no-answer": ledger.FAILED,
    "failed": ledger.FAILED,
    "canceled": ledger.FAILED,
}
VONAGE_DLR = {
    "delivered": ledger.DELIVERED,
    "expired": ledger.FAILED,
    "failed": ledger.FAILED,
    "rejected": ledger.FAILED,
}


def call_cost(settings: Settings, duration_seconds: str | None) -> float | None:
    """A call's cost from its duration: every started minute at ``voice_minute``."""
    try:
        seconds = int(duration_seconds or "")
    except ValueError:
        return None
    return round(settings.delivery.prices.voice_minute * max(ceil(seconds / 60), 1), 6)


def apply_status(
    connection: Connection,
    settings: Settings,
    zone: ZoneInfo,
    delivery: Delivery,
    outcome: str | None,
    now: datetime,
    *,
    provider_ref: str | None = None,
    code: str | None = None,
    cost: float | None = None,
) -> str:
    """Record a provider's status for ``delivery``; returns what was done, in words."""
    if provider_ref:
        ledger.set_ref(connection, delivery.token, provider_ref, now)
    if cost is not None:
        ledger.set_cost(connection, delivery.id, cost, now)
    if outcome is None:
        return "progress noted"
    if delivery.status in (ledger.DELIVERED, ledger.FAILED):
        return f"already {delivery.status}"
    ledger.finish(connection, delivery.token, outcome, now, f"provider: {code or outcome}", code)
    if outcome == ledger.DELIVERED:
        return "delivered"
    if code in OPTED_OUT_CODES:
        consent.set_opt_out(
            connection,
            delivery.channel,
            delivery.recipient,
            None if delivery.testing else delivery.patient_key,
            True,
            "carrier",
            now,
        )
    return _after_failure(connection, settings, zone, delivery, code, now)


def _after_failure(
    connection: Connection,
    settings: Settings,
    zone: ZoneInfo,
    delivery: Delivery,
    code: str | None,
    now: datetime,
) -> str:
    if delivery.job_id is None:
        return "failed"
    job = get_job(connection, delivery.job_id)
    if job is None or job.status != JobStatus.SENT:
        return "failed"
    latest = ledger.latest_for_job(connection, job.id)
    if latest is not None and latest.id != delivery.id:
        return "failed (an older attempt)"
    if consent.answered(connection, job.occurrence, {(job.appointment_key, job.occurrence)}):
        jobstate.fail_after_send(connection, job.id, now, "undelivered; the patient answered")
        return "failed; patient already answered"
    state = jobstate.current_round(connection, job.id)
    policy = AttemptPolicy.for_settings(settings, zone)
    retry = policy.after_failure(
        state, now, job.appointment_start, permanent=code in PERMANENT_CODES
    )
    if retry is None:
        jobstate.fail_after_send(connection, job.id, now, f"undelivered ({code or 'failed'})")
        return "failed; no attempt left"
    detail = f"{retry.kind} after the provider reported {code or 'a failure'}"
    jobstate.reopen(
        connection, job.id, now, retry.due, detail, kind=retry.kind, expect=JobStatus.SENT
    )
    return f"failed; {retry.kind} at {retry.due.isoformat()}"
