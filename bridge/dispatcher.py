"""The dispatcher: claim a due job, check it again against the host, render, send, record.

Order matters for exactly-once: the job is claimed under a lease before the send and marked sent
after it. A crash in between leaves it ``sending``; when the lease runs out it becomes
``unknown`` and is settled by asking the channel whether a message with its idempotency key went
out, never by sending again blindly.

Pacing: consecutive sends on one channel are at least ``reminders.delay_seconds`` apart (so a
backlog does not flood the front desk with call-backs); the wait uses the injected clock.
Nothing goes out outside the sending window.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bridge.errors import (
    HostUnavailable,
    PermanentDeliveryError,
    Skipped,
    SourceError,
    TemplateError,
    TransientDeliveryError,
)
from bridge.model import Appointment, Channel, Patient
from bridge.planner import Planner
from bridge.plugin import OutboundMessage, Reference, SentNote
from bridge.runtime import Runtime
from bridge.store import jobs as queue
from bridge.store.jobs import Job
from bridge.store.rejects import record_reject
from bridge.store.schema import JobStatus
from bridge.template import MessageContext, Rendered

log = logging.getLogger(__name__)

BASE_LEASE = timedelta(minutes=5)
HOST_RETRY = timedelta(minutes=2)
REDIAL_SPACING = timedelta(minutes=10)
AFTER_SEND = "after-send"


@dataclass
class DispatchReport:
    """Counts of what one dispatch run did."""

    sent: int = 0
    retried: int = 0
    failed: int = 0
    dropped: int = 0
    unknown: int = 0

    def summary(self) -> str:
        return (
            f"{self.sent} sent, {self.retried} to retry, {self.failed} failed, "
            f"{self.dropped} dropped at the last check, {self.unknown} unknown settled"
        )


class Dispatcher:
    """Sends what is due, one job at a time, paced per channel."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        self.clock = runtime.clock
        self.delay = timedelta(seconds=self.settings.reminders.delay_seconds)
        self.lease = max(BASE_LEASE, 2 * self.delay + timedelta(minutes=1))
        self._last_send: dict[Channel, datetime] = {}

    def run_due(self, limit: int | None = None) -> DispatchReport:
        """Send every due job (at most ``limit``) while the sending window is open."""
        report = DispatchReport()
        with self.runtime.store.begin("expire leases") as connection:
            expired = queue.expire_leases(connection, self.clock.now())
        for job in expired:
            self._settle_unknown(job)
            report.unknown += 1
        reference = self.runtime.source.reference()
        while limit is None or report.sent + report.failed + report.dropped < limit:
            now = self.clock.now()
            planner = Planner(self.settings.reminders, self.runtime.zone(reference), reference, now)
            if not planner.window.contains(now):
                break
            with self.runtime.store.begin("claim") as connection:
                claimed = queue.claim_due(connection, now, self.lease, limit=1)
            if not claimed:
                break
            for job in claimed:
                self._pace(job.channel)
                outcome = self._process(job, reference)
                setattr(report, outcome, getattr(report, outcome) + 1)
        if report.sent or report.failed or report.retried or report.dropped or report.unknown:
            log.info("dispatch: %s", report.summary())
        return report

    def _pace(self, channel: Channel) -> None:
        last = self._last_send.get(channel)
        if last is not None and self.delay:
            wait = (last + self.delay - self.clock.now()).total_seconds()
            if wait > 0:
                self.clock.sleep(wait)

    def _process(self, job: Job, reference: Reference) -> str:
        """Check, render, send one claimed job; returns the report field to count it under."""
        now = self.clock.now()
        zone = self.runtime.zone(reference)
        planner = Planner(self.settings.reminders, zone, reference, now)
        try:
            appt = self.runtime.source.fetch(job.appointment_key, job.occurrence, reference, zone)
            found = list(self.runtime.source.patients([job.patient_key], lambda _: None))
        except HostUnavailable as exc:
            self._record(queue.mark_retry, job, now, now + HOST_RETRY, f"host unavailable: {exc}")
            return "retried"
        patient = found[0] if found else None
        if appt is None:
            return self._drop(job, JobStatus.CANCELLED, "appointment is no longer on the host")
        reason = planner.blocked(appt, patient)
        if reason:
            return self._drop(job, JobStatus.CANCELLED, reason)
        assert patient is not None
        reason = planner.channel_block(patient, job.channel)
        if reason:
            return self._drop(job, JobStatus.SKIPPED, reason)
        deadline = appt.start - timedelta(hours=self.settings.reminders.min_lead_hours)
        if now > deadline:
            return self._drop(job, JobStatus.SKIPPED, "too late to remind")

        try:
            message, rendered = self._compose(job, appt, patient, reference, planner)
            result = self.runtime.channels[job.channel].send(message)
        except TemplateError as exc:
            log.error("job %s: template problem: %s", job.id, exc)
            self._record(queue.mark_failed, job, now, f"template: {exc}")
            return "failed"
        except Skipped as exc:
            return self._drop(job, JobStatus.SKIPPED, exc.reason)
        except TransientDeliveryError as exc:
            if job.attempts <= self.settings.reminders.redials:
                wait = max(timedelta(seconds=exc.retry_after or 0), REDIAL_SPACING * job.attempts)
                self._record(queue.mark_retry, job, now, now + wait, str(exc))
                return "retried"
            self._record(queue.mark_failed, job, now, f"gave up after {job.attempts}: {exc}")
            return "failed"
        except PermanentDeliveryError as exc:
            self._record(queue.mark_failed, job, now, str(exc))
            return "failed"

        sent_at = self.clock.now()
        self._last_send[job.channel] = sent_at
        with self.runtime.store.begin("record sent") as connection:
            queue.mark_sent(connection, job, sent_at, result.provider_ref)
        log.info("job %s sent (%s, appointment %s)", job.id, job.channel.value, job.appointment_key)
        self._note_on_host(job, appt, patient, rendered, message, sent_at, zone)
        return "sent"

    def _compose(
        self,
        job: Job,
        appt: Appointment,
        patient: Patient,
        reference: Reference,
        planner: Planner,
    ) -> tuple[OutboundMessage, Rendered]:
        testing = self.settings.mode == "testing"
        provider = reference.providers.get(appt.provider_keys[0]) if appt.provider_keys else None
        context = MessageContext(
            appointment=appt,
            patient=patient,
            provider=provider,
            facility=reference.facilities.get(appt.facility_key or ""),
            service=reference.services.get(appt.service_key or ""),
            clinic=self.settings.clinic,
            timezone=planner.zone,
            link=self.runtime.link_for(job, appt, patient),
            testing=testing,
        )
        templates = self.runtime.templates
        rendered = templates.render(job.event, job.channel, context)
        voicemail = None
        if job.channel == Channel.VOICE:
            voicemail = templates.render(job.event, job.channel, context, voicemail=True).text
        return (
            OutboundMessage(
                idempotency_key=job.dedupe_key,
                channel=job.channel,
                to=self._recipient(job.channel, patient, testing),
                text=rendered.text,
                subject=rendered.subject,
                html=rendered.html,
                sender=self.settings.clinic.name,
                voicemail=voicemail,
                testing=testing,
                job_id=job.id,
                tags={"appointment": job.appointment_key, "rule": job.rule},
            ),
            rendered,
        )

    def _recipient(self, channel: Channel, patient: Patient, testing: bool) -> str:
        """Who gets it: the patient in live mode, the testing contact in testing mode."""
        if testing:
            contact = (
                self.settings.testing.email
                if channel == Channel.EMAIL
                else self.settings.testing.phone
            )
            if not contact:
                key = "testing.email" if channel == Channel.EMAIL else "testing.phone"
                raise Skipped(f"testing mode and no {key} set")
            return contact
        if channel == Channel.EMAIL:
            target = patient.email
        elif channel == Channel.SMS:
            target = patient.mobile
        else:
            target = patient.mobile or patient.home_phone
        if not target:
            raise Skipped(f"no {channel.value} contact")
        return target

    def _note_on_host(
        self,
        job: Job,
        appt: Appointment,
        patient: Patient,
        rendered: Rendered,
        message: OutboundMessage,
        sent_at: datetime,
        zone: Any,
    ) -> None:
        """Tell the host (flags, log row); a failure here never un-sends the message."""
        writer = self.runtime.writer
        if writer is None:
            return
        note = SentNote(
            appointment=appt,
            patient=patient,
            channel=job.channel,
            text=rendered.text,
            subject=rendered.subject,
            sender=message.sender or "",
            gateway=self.settings.channels[job.channel].plugin,
            sent_at=sent_at,
            timezone=zone,
        )
        try:
            writer.note_sent(note)
        except SourceError as exc:
            log.warning("job %s: could not record the send on the host: %s", job.id, exc)
            with self.runtime.store.begin("record reject") as connection:
                record_reject(connection, AFTER_SEND, f"job {job.id}", str(exc), sent_at)

    def _settle_unknown(self, job: Job) -> None:
        """A job whose sender vanished mid-send: ask the channel, never resend blindly."""
        now = self.clock.now()
        plugin = self.runtime.channels[job.channel]
        try:
            found = plugin.lookup(job.dedupe_key)
        except NotImplementedError:
            detail = "outcome unknown and the channel cannot tell: not resent"
            self._record(queue.resolve_unknown, job, now, JobStatus.FAILED, detail)
            return
        if found is not None:
            self._record(queue.resolve_unknown, job, now, JobStatus.SENT, "channel has it")
        else:
            self._record(queue.resolve_unknown, job, now, JobStatus.PLANNED, "channel never got it")

    def _drop(self, job: Job, status: JobStatus, reason: str) -> str:
        self._record(queue.mark_dropped, job, self.clock.now(), status, reason)
        return "dropped"

    def _record(self, action: Any, job: Job, now: datetime, *args: Any) -> None:
        with self.runtime.store.begin("record outcome") as connection:
            action(connection, job, now, *args)
