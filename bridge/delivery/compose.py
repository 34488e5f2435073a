"""A job's message: who gets it, what it says, what it carries; and the note left on the host.

What the message is about and what its template renders with come from the job's event
(``bridge.events``): ``compose`` only renders ``<event>.<channel>`` with the event's context.

Testing mode routes every message to the testing phone or email (the renderer marks the text:
``TEST:`` before an SMS or call script, ``[TEST]`` before an email subject). Each message
carries its attempt's idempotency key and opaque token, and the clinic's caller ID for calls.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from bridge.delivery import ledger
from bridge.errors import Skipped, SourceError
from bridge.events import Subject
from bridge.model import Appointment, Channel, Patient
from bridge.plugin import OutboundMessage, SentNote
from bridge.runtime import Runtime
from bridge.store.jobs import PLANNED_EVENT, Job
from bridge.store.rejects import record_reject
from bridge.template import Rendered

log = logging.getLogger(__name__)

AFTER_SEND = "after-send"


def recipient(settings: Any, channel: Channel, patient: Patient | None, testing: bool) -> str:
    """Who gets it: the patient in live mode, the testing contact in testing mode."""
    if testing:
        contact = settings.testing.email if channel == Channel.EMAIL else settings.testing.phone
        if not contact:
            key = "testing.email" if channel == Channel.EMAIL else "testing.phone"
            raise Skipped(f"testing mode and no {key} set")
        return str(contact)
    if patient is None:
        raise Skipped("no patient")
    if channel == Channel.EMAIL:
        target = patient.email
    elif channel == Channel.SMS:
        target = patient.mobile
    else:
        target = patient.mobile or patient.home_phone
    if not target:
        raise Skipped(f"no {channel.value} contact")
    return target


def message_tags(
    settings: Any,
    appointment_key: str,
    rule: str,
    event: str = PLANNED_EVENT,
    about_appointment: bool = True,
) -> dict[str, str]:
    """Tags every message carries: what it is about, and the clinic's caller ID for calls.

    A message that is not about an appointment (a recall, an invitation) names its subject
    instead; every event but the reminder is named."""
    if about_appointment:
        tags = {"appointment": appointment_key, "rule": rule}
    else:
        tags = {"subject": appointment_key, "rule": rule}
    if event != PLANNED_EVENT:
        tags["event"] = event
    if settings.clinic.caller_id:
        tags["caller_id"] = str(settings.clinic.caller_id)
    return tags


def compose(
    runtime: Runtime,
    job: Job,
    subject: Subject,
    attempt: int,
    secret: str,
    about_appointment: bool = True,
) -> tuple[OutboundMessage, Rendered]:
    """Render the job's event template for ``subject`` and build its message for attempt
    number ``attempt``."""
    settings = runtime.settings
    testing = settings.mode == "testing"
    context = subject.context
    templates = runtime.templates
    rendered = templates.render(job.event, job.channel, context)
    voicemail = None
    if job.channel == Channel.VOICE:
        voicemail = templates.render(job.event, job.channel, context, voicemail=True).text
    key = ledger.attempt_key(job.dedupe_key, attempt)
    message = OutboundMessage(
        idempotency_key=key,
        channel=job.channel,
        to=recipient(settings, job.channel, subject.patient, testing),
        text=rendered.text,
        subject=rendered.subject,
        html=rendered.html,
        sender=settings.clinic.name,
        voicemail=voicemail,
        testing=testing,
        job_id=job.id,
        tags=message_tags(settings, job.appointment_key, job.rule, job.event, about_appointment),
        token=ledger.token_for(key, secret),
    )
    return message, rendered


@dataclass(frozen=True)
class Sent:
    """One message a channel accepted, with what it was made from."""

    job: Job
    appointment: Appointment
    patient: Patient
    rendered: Rendered
    message: OutboundMessage


def note_on_host(runtime: Runtime, sent: Sequence[Sent], sent_at: datetime, zone: ZoneInfo) -> None:
    """Tell the host (flags, log rows) about a batch of sends, in one host transaction; a
    failure here never un-sends a message: it is kept in ``rejects`` for each job."""
    writer = runtime.writer
    if writer is None or not sent:
        return
    notes = [
        SentNote(
            appointment=item.appointment,
            patient=item.patient,
            channel=item.job.channel,
            text=item.rendered.text,
            subject=item.rendered.subject,
            sender=item.message.sender or "",
            gateway=runtime.settings.channels[item.job.channel].plugin,
            sent_at=sent_at,
            timezone=zone,
        )
        for item in sent
    ]
    try:
        writer.note_sent_many(notes)
    except SourceError as exc:
        log.warning("%s sends could not be recorded on the host: %s", len(sent), exc)
        with runtime.store.begin("record reject") as connection:
            for item in sent:
                record_reject(connection, AFTER_SEND, f"job {item.job.id}", str(exc), sent_at)
