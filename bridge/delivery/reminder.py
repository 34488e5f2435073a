"""The ``reminder`` event: an appointment reminder, checked against the host just before sending.

The last check re-reads the appointment and the patient from the host and the opt-outs and
answers from the store: a cancellation, a move, a withdrawn consent, a STOP or an answer that
arrived a moment ago all stop the message (the planner's own rules decide, so a reminder goes
out only if the planner would still plan it). The message carries the confirm / cancel link.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from bridge.delivery import consent
from bridge.events import Batch, Checked, Drop, MessageEvent, Subject
from bridge.model import Appointment, Patient
from bridge.planner import EVENT, Planner
from bridge.store.jobs import Job
from bridge.store.schema import JobStatus
from bridge.template_context import MessageContext


class Reminder(MessageEvent):
    """Reminders planned by the planner (``bridge.planner``)."""

    name = EVENT
    about_appointment = True
    note_on_host = True

    def check(self, jobs: Sequence[Job], batch: Batch) -> list[Checked]:
        source = self.runtime.source
        found = {p.key: p for p in source.patients({j.patient_key for j in jobs}, _ignore)}

        def fetch(job: Job) -> Appointment | None:
            return source.fetch(job.appointment_key, job.occurrence, batch.reference, batch.zone)

        appts = list(batch.pool.map(fetch, jobs)) if len(jobs) > 1 else [fetch(jobs[0])]
        idents = {a.ident for a in appts if a is not None}
        with self.runtime.store.begin("read opt-outs and answers") as connection:
            opted_out = consent.opted_out_pairs(connection, set(found))
            first = min(j.occurrence for j in jobs)
            answered = consent.answered(connection, first, idents) if idents else {}
        planner = Planner(
            self.runtime.settings.reminders,
            batch.zone,
            batch.reference,
            batch.now,
            opted_out=opted_out,
            answered=answered,
        )
        return [
            self._check_one(job, appt, found.get(job.patient_key), planner, batch)
            for job, appt in zip(jobs, appts, strict=True)
        ]

    def _check_one(
        self,
        job: Job,
        appt: Appointment | None,
        patient: Patient | None,
        planner: Planner,
        batch: Batch,
    ) -> Checked:
        if appt is None:
            return Drop(JobStatus.CANCELLED, "appointment is no longer on the host")
        reason = planner.blocked(appt, patient)
        if reason:
            return Drop(JobStatus.CANCELLED, reason)
        assert patient is not None
        reason = planner.channel_block(patient, job.channel)
        if reason:
            return Drop(JobStatus.SKIPPED, reason)
        deadline = appt.start - timedelta(hours=self.runtime.settings.reminders.min_lead_hours)
        if planner.now > deadline:
            return Drop(JobStatus.SKIPPED, "too late to remind")
        return Subject(patient, self.context(job, appt, patient, batch), appt)

    def context(
        self, job: Job, appt: Appointment, patient: Patient, batch: Batch
    ) -> MessageContext:
        """What a reminder renders with, its confirm / cancel link included."""
        runtime = self.runtime
        reference = batch.reference
        return MessageContext(
            appointment=appt,
            patient=patient,
            provider=reference.providers.get(appt.provider_keys[0]) if appt.provider_keys else None,
            facility=reference.facilities.get(appt.facility_key or ""),
            service=reference.services.get(appt.service_key or ""),
            clinic=runtime.settings.clinic,
            timezone=batch.zone,
            link=runtime.link_for(job, appt, patient),
            testing=runtime.settings.mode == "testing",
        )


def _ignore(_: object) -> None:
    """Rows the host cannot map were reported by the cycle already."""
