"""An answer from a patient becomes write-back commands, opt-outs and stopped attempts.

- confirm / cancel / call back: a ``Command`` for the host (``bridge.writeback``), the answer
  recorded, and every attempt of that appointment that has not gone out yet is cancelled (the
  call of a "call & SMS" reminder stops once the SMS was answered, and the other way round);
- opt out (STOP): the address is opted out of that channel at once (the dispatcher's last check
  reads it before the next send), the patient's pending messages on it are skipped, and an
  ``opt_out`` command carries the withdrawn consent to the host;
- opt in (START): the opt-out is lifted, an ``opt_in`` command goes to the host, and the next
  cycle plans again what the opt-out had skipped.

In testing mode the answer comes from the testing phone or email, about a test message: the
address is honoured (a STOP there stops messages to it), but nothing is written to the host
and no patient's messages change.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, select

from bridge.delivery import consent, jobstate
from bridge.delivery.ledger import Delivery
from bridge.delivery.replies import Intent
from bridge.model import Channel
from bridge.store.jobs import _transition
from bridge.store.schema import JobStatus, jobs
from bridge.store.writebacks import enqueue
from bridge.writeback import Command, CommandKind

log = logging.getLogger(__name__)

COMMANDS = {
    Intent.CONFIRM: CommandKind.CONFIRM,
    Intent.CANCEL: CommandKind.CANCEL,
    Intent.CALLBACK: CommandKind.CALLBACK,
    Intent.OPT_OUT: CommandKind.OPT_OUT,
    Intent.OPT_IN: CommandKind.OPT_IN,
}


@dataclass(frozen=True)
class Answer:
    """One answer: what it means, where it came from, about which message."""

    intent: Intent
    origin: str  # sms-reply, voice-keypress, email-unsubscribe...
    ref: str  # the provider's id of the reply (makes the command idempotent)
    channel: Channel
    address: str  # who answered (phone or email)
    delivery: Delivery | None  # the message it answers, when known


def apply_answer(connection: Connection, answer: Answer, now: datetime) -> str:
    """Record ``answer`` in one transaction; returns what was done, in words (no PHI)."""
    delivery = answer.delivery
    testing = delivery.testing if delivery is not None else False
    patient = None if testing or delivery is None else delivery.patient_key
    if answer.intent in (Intent.OPT_OUT, Intent.OPT_IN):
        out = answer.intent == Intent.OPT_OUT
        changed = consent.set_opt_out(
            connection, answer.channel, answer.address, patient, out, answer.origin, now
        )
        if patient is None:
            return f"address opted {'out of' if out else 'back into'} {answer.channel.value}"
        skipped = skip_pending(connection, patient, answer.channel, now) if out else 0
        queued = _command(connection, answer, patient, None, now) if changed else False
        what = "opted out of" if out else "opted back into"
        return (
            f"patient {what} {answer.channel.value}"
            + (f"; {skipped} pending skipped" if skipped else "")
            + ("; write-back queued" if queued else "")
        )
    if answer.intent not in COMMANDS:
        return answer.intent.value
    if delivery is None or delivery.appointment_key is None or delivery.occurrence is None:
        return f"{answer.intent.value}: no appointment to apply it to; for staff"
    if testing or patient is None:
        return f"testing mode: {answer.intent.value} not written back"
    consent.record_answer(
        connection,
        delivery.appointment_key,
        delivery.occurrence,
        patient,
        answer.intent.value,
        answer.channel,
        answer.origin,
        now,
    )
    reason = f"patient answered ({answer.intent.value} by {answer.channel.value})"
    stopped = jobstate.cancel_pending(
        connection, delivery.appointment_key, delivery.occurrence, now, reason
    )
    queued = _command(connection, answer, patient, delivery, now)
    return f"{answer.intent.value} by {answer.channel.value}; {stopped} pending stopped" + (
        "; write-back queued" if queued else "; already queued"
    )


def _command(
    connection: Connection,
    answer: Answer,
    patient_key: str,
    delivery: Delivery | None,
    now: datetime,
) -> bool:
    command = Command(
        kind=COMMANDS[answer.intent],
        origin=answer.origin,
        ref=answer.ref,
        patient_key=patient_key,
        appointment_key=delivery.appointment_key if delivery else None,
        occurrence=delivery.occurrence if delivery else None,
        channel=answer.channel,
        payload={"answered_at": now.isoformat()},
    )
    return enqueue(connection, command, now)


def skip_pending(connection: Connection, patient_key: str, channel: Channel, now: datetime) -> int:
    """Skip the patient's messages on ``channel`` that have not gone out yet."""
    rows = connection.execute(
        select(jobs.c.id).where(
            jobs.c.patient_key == patient_key,
            jobs.c.channel == channel.value,
            jobs.c.status == JobStatus.PLANNED.value,
        )
    ).all()
    for (job_id,) in rows:
        _transition(
            connection,
            job_id,
            now,
            "skipped",
            JobStatus.SKIPPED,
            f"patient opted out of {channel.value}",
            expect=JobStatus.PLANNED,
        )
    return len(rows)
