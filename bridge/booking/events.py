"""The messages of online booking, as events of the dispatcher (``bridge.events``):

- ``booked``: the confirmation of an online booking (about the new appointment: its confirm /
  cancel link, and the clinic's extras: map, parking, the provider's photo, an offer);
- ``booking_failed``: a booking the host refused after the patient was told "received";
- ``recall``: a patient due for a visit, with a personal booking link;
- ``invitation``: an invitation to book online (email), for a patient or someone new;
- ``booking_link``: a personal booking link sent on request or for a planned treatment.

Each one's last check reads what could have changed since it was planned: the appointment and
its status, whether a recalled patient booked meanwhile, whether an invitation was revoked or the
address on file changed, whether a link was used; then consent, contacts and opt-outs as for
reminders.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_date
from sqlalchemy import select

from bridge.booking import passes
from bridge.booking.booking import DONE, REFUSED, failed_patient
from bridge.booking.messages import channel_gate
from bridge.booking.passes import PassKeys
from bridge.booking.tables import booking_passes, bookings, invitations, recalls
from bridge.errors import TemplateError
from bridge.events import Batch, Checked, Drop, MessageEvent, Subject
from bridge.model import Appointment, Channel, Consent, Patient, StatusClass
from bridge.patient.views import choose_language
from bridge.planner import Planner
from bridge.runtime import Runtime
from bridge.settings import ClinicSettings
from bridge.store import writebacks as queue
from bridge.store.jobs import Job
from bridge.store.schema import JobStatus
from bridge.template import Templates, locale_for
from bridge.template_context import MessageContext, format_locale


def _ids(jobs: Sequence[Job], prefix: str) -> dict[int, int]:
    """Job id -> the id in its subject key (``recall:17`` -> 17)."""
    found = {}
    for job in jobs:
        head, _, tail = job.appointment_key.partition(":")
        if head == prefix and tail.isdigit():
            found[job.id] = int(tail)
    return found


def reader_date(
    templates: Templates,
    clinic: ClinicSettings,
    event: str,
    channel: Channel,
    patient: Patient,
    value: date | datetime | None,
    zone: ZoneInfo,
) -> str:
    """``value`` as a long date in the language the message will be rendered in (an instant
    is first taken to the clinic's day): templates get it ready-made, as ``appointment``'s
    dates are."""
    if value is None:
        return ""
    part = "email" if channel == Channel.EMAIL else channel.value
    try:
        locale_name = locale_for(patient, clinic, templates.available_locales(event, part))
    except TemplateError:
        locale_name = "en"
    if isinstance(value, datetime):
        value = value.astimezone(zone).date()
    return str(format_date(value, "long", locale=format_locale(locale_name, patient, clinic)))


class _BookingEvent(MessageEvent):
    """What the booking events share: patients, consent gating, dates in the reader's language."""

    def __init__(self, runtime: Runtime) -> None:
        super().__init__(runtime)
        self._keys: PassKeys | None = None

    def keys(self) -> PassKeys:
        """The link keys (read from the store on first use, not at start)."""
        if self._keys is None:
            self._keys = PassKeys(self.runtime)
        return self._keys

    def patients(self, keys: set[str]) -> dict[str, Patient]:
        wanted = {k for k in keys if k}
        if not wanted:
            return {}
        return {p.key: p for p in self.runtime.source.patients(wanted, lambda _: None)}

    def gate(self, patient: Patient, batch: Batch) -> Planner:
        with self.runtime.store.begin("read opt-outs") as connection:
            return channel_gate(self.runtime, connection, patient, batch.now, batch.reference)

    def day(self, job: Job, patient: Patient, value: date | datetime | None, batch: Batch) -> str:
        """A date as the message's reader reads it (the template's language)."""
        return reader_date(
            self.runtime.templates,
            self.runtime.settings.clinic,
            job.event,
            job.channel,
            patient,
            value,
            batch.zone,
        )

    def context(
        self,
        patient: Patient,
        batch: Batch,
        *,
        appointment: Appointment | None = None,
        service_key: str | None = None,
        link: str | None = None,
        extra: dict[str, dict[str, str]] | None = None,
    ) -> MessageContext:
        reference = batch.reference
        provider = None
        if appointment is not None and appointment.provider_keys:
            provider = reference.providers.get(appointment.provider_keys[0])
        return MessageContext(
            appointment=appointment,
            patient=patient,
            provider=provider,
            facility=reference.facilities.get(appointment.facility_key or "")
            if appointment is not None
            else None,
            service=reference.services.get(service_key or ""),
            clinic=self.runtime.settings.clinic,
            timezone=batch.zone,
            link=link,
            testing=self.runtime.settings.mode == "testing",
            extra=extra or {},
        )

    def gated(self, job: Job, patient: Patient, batch: Batch, subject: Subject) -> Checked:
        reason = self.gate(patient, batch).channel_block(patient, job.channel)
        return Drop(JobStatus.SKIPPED, reason) if reason else subject


class Booked(_BookingEvent):
    """The confirmation of an online booking."""

    name = "booked"
    about_appointment = True

    def check(self, jobs: Sequence[Job], batch: Batch) -> list[Checked]:
        source = self.runtime.source
        found = self.patients({j.patient_key for j in jobs})
        appts = [
            source.fetch(j.appointment_key, j.occurrence, batch.reference, batch.zone) for j in jobs
        ]
        with self.runtime.store.begin("read bookings") as connection:
            rows = connection.execute(
                select(bookings).where(
                    bookings.c.appointment_key.in_({j.appointment_key for j in jobs}),
                    bookings.c.status == DONE,
                )
            ).all()
        made = {row._mapping["appointment_key"]: row._mapping for row in rows}
        return [
            self._one(job, appt, found.get(job.patient_key), made.get(job.appointment_key), batch)
            for job, appt in zip(jobs, appts, strict=True)
        ]

    def _one(
        self,
        job: Job,
        appt: Appointment | None,
        patient: Patient | None,
        booking: Any,
        batch: Batch,
    ) -> Checked:
        if appt is None or patient is None or appt.patient_key != job.patient_key:
            return Drop(JobStatus.CANCELLED, "the booking is no longer on the host")
        if appt.status_class in (StatusClass.CANCELLED, StatusClass.NO_SHOW):
            return Drop(JobStatus.CANCELLED, f"status {appt.status!r}: cancelled meanwhile")
        if appt.start <= batch.now:
            return Drop(JobStatus.CANCELLED, "the appointment has started")
        settings = self.runtime.settings.booking
        provider = appt.provider_keys[0] if appt.provider_keys else ""
        extra = {
            "booking": {
                "map_url": settings.map_url,
                "parking": settings.parking,
                "photo_url": settings.provider_photos.get(provider, ""),
                "offer": settings.offer,
                "pending": "yes" if appt.status_class == StatusClass.PENDING else "",
                "reference": booking["reference"] if booking is not None else "",
                # What the patient chose ("Check-up"), not the host's category behind it.
                "reason": self._reason_label(booking, patient),
            }
        }
        link = self.runtime.link_for(job, appt, patient)
        context = self.context(
            patient, batch, appointment=appt, service_key=appt.service_key, link=link, extra=extra
        )
        return self.gated(job, patient, batch, Subject(patient, context, appt))

    def _reason_label(self, booking: Any, patient: Patient) -> str:
        if booking is None:
            return ""
        reason = self.runtime.settings.booking.reason(booking["reason_key"])
        language = choose_language(patient.language, self.runtime.settings.clinic.language)
        return reason.label(language) if reason is not None else ""


class BookingFailed(_BookingEvent):
    """A queued booking the host refused: the patient is told, with a way to choose again."""

    name = "booking_failed"

    def check(self, jobs: Sequence[Job], batch: Batch) -> list[Checked]:
        ids = _ids(jobs, "booking")
        with self.runtime.store.begin("read refused bookings") as connection:
            rows = connection.execute(
                select(bookings).where(bookings.c.id.in_(set(ids.values())))
            ).all()
            found = {row._mapping["id"]: row._mapping for row in rows}
            commands = {
                b["id"]: queue.find(connection, b["writeback_id"])
                for b in found.values()
                if b["writeback_id"]
            }
        results: list[Checked] = []
        for job in jobs:
            booking = found.get(ids.get(job.id, -1))
            command = commands.get(booking["id"]) if booking is not None else None
            if booking is None or booking["status"] != REFUSED or command is None:
                results.append(Drop(JobStatus.CANCELLED, "the booking is not refused"))
                continue
            patient = failed_patient(self.runtime, booking, command.command)
            if patient is None:
                results.append(Drop(JobStatus.CANCELLED, "the patient is no longer on the host"))
                continue
            results.append(self._subject(job, booking, patient, batch))
        return results

    def _subject(self, job: Job, booking: Any, patient: Patient, batch: Batch) -> Checked:
        link = self.keys().base + "/book"
        if patient.key:
            language = choose_language(booking["language"])
            with self.runtime.store.begin("a link to choose again") as connection:
                token, _ = passes.issue(
                    connection,
                    self.keys(),
                    f"retry|{booking['id']}",
                    flow="existing",
                    language=language,
                    now=batch.now,
                    days=self.runtime.settings.booking.link_days,
                    patient_key=patient.key,
                    reasons=[booking["reason_key"]],
                )
            link = self.keys().url(token)
        wanted = Appointment(
            key="",
            occurrence=booking["start_at"].astimezone(batch.zone).date(),
            patient_key=patient.key,
            start=booking["start_at"].astimezone(UTC),
            end=booking["end_at"].astimezone(UTC),
            status="",
            status_class=StatusClass.OTHER,
            eligible=False,
            provider_keys=(booking["provider_key"],),
            facility_key=booking["facility_key"],
            service_key=booking["service_key"],
        )
        extra = {"booking": {"reference": booking["reference"]}}
        context = self.context(
            patient,
            batch,
            appointment=wanted,
            service_key=booking["service_key"],
            link=link,
            extra=extra,
        )
        return self.gated(job, patient, batch, Subject(patient, context))


class Recall(_BookingEvent):
    """A recall with its personal booking link."""

    name = "recall"

    def check(self, jobs: Sequence[Job], batch: Batch) -> list[Checked]:
        ids = _ids(jobs, "recall")
        with self.runtime.store.begin("read recalls") as connection:
            rows = connection.execute(
                select(recalls, booking_passes.c.identity)
                .join(booking_passes, booking_passes.c.id == recalls.c.pass_id)
                .where(recalls.c.id.in_(set(ids.values())))
            ).all()
        found = {row._mapping["id"]: row._mapping for row in rows}
        patients = self.patients({j.patient_key for j in jobs})
        today = batch.now.astimezone(batch.zone).date()
        booked = self.runtime.source.booked_patients(set(patients), today, batch.reference)
        results: list[Checked] = []
        for job in jobs:
            recall = found.get(ids.get(job.id, -1))
            patient = patients.get(job.patient_key)
            if recall is None or recall["status"] != "open":
                results.append(Drop(JobStatus.CANCELLED, "the recall is closed"))
            elif recall["expires_at"] <= batch.now:
                results.append(Drop(JobStatus.CANCELLED, "the recall's link expired"))
            elif patient is None or patient.deceased:
                results.append(Drop(JobStatus.CANCELLED, "the patient is no longer on the host"))
            elif patient.key in booked:
                results.append(Drop(JobStatus.CANCELLED, "the patient booked meanwhile"))
            else:
                results.append(self._subject(job, recall, patient, batch))
        return results

    def _subject(self, job: Job, recall: Any, patient: Patient, batch: Batch) -> Checked:
        reason = self.runtime.settings.booking.reason(recall["reason_key"])
        language = choose_language(patient.language, self.runtime.settings.clinic.language)
        extra = {
            "recall": {
                "reason": reason.label(language) if reason is not None else "",
                "last_visit": self.day(job, patient, recall["last_visit"], batch),
                "due": self.day(job, patient, recall["due_on"], batch),
            }
        }
        link = self.keys().url(self.keys().make(recall["identity"])[0])
        context = self.context(
            patient,
            batch,
            service_key=reason.service if reason is not None else None,
            link=link,
            extra=extra,
        )
        return self.gated(job, patient, batch, Subject(patient, context))


class Invitation(_BookingEvent):
    """An invitation to book online, by email."""

    name = "invitation"

    def check(self, jobs: Sequence[Job], batch: Batch) -> list[Checked]:
        ids = _ids(jobs, "invite")
        with self.runtime.store.begin("read invitations") as connection:
            rows = connection.execute(
                select(invitations, booking_passes.c.identity)
                .join(booking_passes, booking_passes.c.id == invitations.c.pass_id)
                .where(invitations.c.id.in_(set(ids.values())))
            ).all()
        found = {row._mapping["id"]: row._mapping for row in rows}
        patients = self.patients({j.patient_key for j in jobs})
        results: list[Checked] = []
        for job in jobs:
            invitation = found.get(ids.get(job.id, -1))
            if invitation is None or invitation["status"] != "invited":
                results.append(Drop(JobStatus.CANCELLED, "the invitation is no longer open"))
                continue
            if invitation["expires_at"] <= batch.now:
                results.append(Drop(JobStatus.CANCELLED, "the invitation expired"))
                continue
            key = invitation["patient_key"]
            if key:
                patient = patients.get(key)
                if patient is None or patient.deceased:
                    results.append(
                        Drop(JobStatus.CANCELLED, "the patient is no longer on the host")
                    )
                    continue
                if (patient.email or None) != (invitation["host_email"] or None):
                    results.append(Drop(JobStatus.CANCELLED, "the email on file changed"))
                    continue
                patient = replace(patient, email=invitation["email"])
            else:
                patient = Patient(
                    key="",
                    language=invitation["language"],
                    email=invitation["email"],
                    consent={Channel.EMAIL: Consent.YES},
                )
            extra = {
                "invite": {
                    "expires": self.day(job, patient, invitation["expires_at"], batch),
                    "new_patient": "" if key else "yes",
                }
            }
            link = self.keys().url(self.keys().make(invitation["identity"])[0])
            context = self.context(patient, batch, link=link, extra=extra)
            results.append(self.gated(job, patient, batch, Subject(patient, context)))
        return results


class BookingLink(_BookingEvent):
    """A personal booking link sent on request, or for a planned treatment."""

    name = "booking_link"

    def check(self, jobs: Sequence[Job], batch: Batch) -> list[Checked]:
        ids = _ids(jobs, "link")
        with self.runtime.store.begin("read booking links") as connection:
            found = {i: passes.get(connection, i) for i in set(ids.values())}
        patients = self.patients({j.patient_key for j in jobs})
        results: list[Checked] = []
        for job in jobs:
            link = found.get(ids.get(job.id, -1))
            patient = patients.get(job.patient_key)
            if link is None or not link.is_open(batch.now) or link.used_at is not None:
                results.append(Drop(JobStatus.CANCELLED, "the link was used or expired"))
                continue
            if patient is None or patient.deceased:
                results.append(Drop(JobStatus.CANCELLED, "the patient is no longer on the host"))
                continue
            reason = None
            if link.reasons and len(link.reasons) == 1:
                reason = self.runtime.settings.booking.reason(link.reasons[0])
            language = choose_language(link.language, self.runtime.settings.clinic.language)
            extra = {
                "invite": {
                    "expires": self.day(job, patient, link.expires_at, batch),
                    "reason": reason.label(language) if reason is not None else "",
                }
            }
            context = self.context(
                patient,
                batch,
                service_key=reason.service if reason is not None else None,
                link=self.keys().url_of(link),
                extra=extra,
            )
            results.append(self.gated(job, patient, batch, Subject(patient, context)))
        return results
