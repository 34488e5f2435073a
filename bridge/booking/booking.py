"""A booking request becomes a host write-back, applied at once, then a confirmation message.

In order: the request is stored (``bookings``) with its ``BOOK`` command in the write-back
queue, in one store transaction that also takes the personal link it came from (a double click
is one booking); the command is applied in the request through the write-back worker's own
code path (``apply_now``), where the SQL writer locks the provider's day, re-checks the slot
and inserts the row; then ``settle`` records what became of it:

- written: the booking is done, a recall it answers is *booked*, an invitation *enrolled*, and
  the confirmation (``booked`` event, SMS and/or email) is planned;
- refused (the slot was taken a moment ago, or the request expired): the link may book again;
  if the patient had already been told "received" (the host was down), a ``booking_failed``
  message tells them;
- not yet (the host is down): it stays queued and lands when the host is back, within
  ``booking.pending_minutes``; the worker settles it then.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, insert, select, update

from bridge.booking import passes
from bridge.booking.availability import Slot
from bridge.booking.messages import plan_messages
from bridge.booking.passes import Pass
from bridge.booking.reasons import Reason
from bridge.booking.settings import Flow
from bridge.booking.tables import bookings, invitations, recalls
from bridge.clock import iso_utc, local_to_utc
from bridge.errors import SourceError
from bridge.model import Channel, Consent, Patient
from bridge.plugin import Reference
from bridge.runtime import Runtime
from bridge.store import writebacks as queue
from bridge.writeback import Command, CommandKind, Outcome
from bridge.writeback_worker import apply_now

ORIGIN = "booking"
BOOKED = "booked"
FAILED = "booking_failed"
WAIT_SECONDS = 3.0
POLL_SECONDS = 0.05
_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"

# Booking row statuses.
REQUESTED, QUEUED, DONE, REFUSED = "requested", "queued", "booked", "refused"


@dataclass(frozen=True)
class NewPatient:
    """What someone booking for the first time typed (validated by ``bridge.booking.forms``)."""

    first_name: str
    last_name: str
    birth_date: date
    sex: str
    mobile: str | None
    email: str | None
    sms_ok: bool
    email_ok: bool
    language: str

    def payload(self) -> dict[str, Any]:
        return {
            "first_name": self.first_name,
            "last_name": self.last_name,
            "birth_date": self.birth_date.isoformat(),
            "sex": self.sex,
            "mobile": self.mobile,
            "email": self.email,
            "language": self.language,
            "consent": {"sms": self.sms_ok, "email": self.email_ok},
        }


@dataclass(frozen=True)
class Request:
    """One booking as a page submits it."""

    flow: Flow
    reason: Reason
    slot: Slot
    language: str
    patient_key: str | None = None
    new_patient: NewPatient | None = None
    link: Pass | None = None
    comment: str = ""


@dataclass(frozen=True)
class BookingResult:
    """What the page says: ``booked``, ``pending`` (booked, waits for approval), ``queued``
    (received, will land when the host is back), ``taken`` (refused: choose again) or
    ``already`` (this link booked already)."""

    state: str
    booking_id: int | None = None
    reference: str = ""
    detail: str = ""


def new_reference() -> str:
    """Eight characters patients can read out on the phone (no 0/O, 1/I)."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(8))


def submit(runtime: Runtime, request: Request) -> BookingResult:
    """Store the booking and its command, apply it now, and report what became of it."""
    settings = runtime.settings.booking
    now = runtime.clock.now()
    zone = _zone(runtime)
    new = request.new_patient is not None
    approval = settings.approval == "all" or (settings.approval == "new_patients" and new)
    reference = new_reference()
    slot = request.slot
    start = local_to_utc(slot.day, slot.start, zone)
    end = local_to_utc(slot.day, slot.end, zone)
    payload: dict[str, Any] = {
        "slot": {
            "provider": slot.provider_key,
            "facility": slot.facility_key,
            "date": slot.day.isoformat(),
            "start": slot.start.strftime("%H:%M"),
            "end": slot.end.strftime("%H:%M"),
            "office": slot.office,
        },
        "service": request.reason.service_key,
        "title": request.reason.service_name or request.reason.label("en"),
        "reason": request.reason.key,
        "flow": request.flow,
        "approval": approval,
        "reference": reference,
        "comment": request.comment,
        "valid_until": iso_utc(now + timedelta(minutes=settings.pending_minutes)),
        # The HL7 writer's names for the same slot (SRM^S01).
        "start": iso_utc(start),
        "end": iso_utc(end),
        "duration_minutes": request.reason.minutes,
    }
    if request.new_patient is not None:
        payload["patient"] = request.new_patient.payload()
    link = request.link
    with runtime.store.begin("store a booking") as connection:
        if link is not None and not passes.claim(connection, link.id, now):
            return BookingResult("already")
        booking_id = _insert_booking(connection, request, reference, start, end, approval, now)
        command = Command(
            kind=CommandKind.BOOK,
            origin=ORIGIN,
            ref=f"booking-{reference}",
            patient_key=request.patient_key or f"new-{reference}",
            occurrence=slot.day,
            payload=payload,
        )
        queue.enqueue(connection, command, now)
        queued = queue.find_by_key(connection, command.idempotency_key)
        assert queued is not None
        connection.execute(
            update(bookings).where(bookings.c.id == booking_id).values(writeback_id=queued.id)
        )
        if link is not None:
            passes.attach_booking(connection, link.id, booking_id)
    if apply_now(runtime, queued.id) in (None, Outcome.APPLYING):
        _wait(runtime, queued.id)
    return settle(runtime, booking_id)


def _zone(runtime: Runtime) -> ZoneInfo:
    """The clinic's zone, read from the host only when the settings name none: a booking made
    while the host is away is still stored and queued."""
    if runtime.settings.clinic.timezone:
        return runtime.zone(Reference())
    return runtime.zone(runtime.source.reference())


def _insert_booking(
    connection: Connection,
    request: Request,
    reference: str,
    start: datetime,
    end: datetime,
    approval: bool,
    now: datetime,
) -> int:
    link = request.link
    row = connection.execute(
        insert(bookings)
        .values(
            reference=reference,
            flow=request.flow,
            pass_id=link.id if link else None,
            patient_key=request.patient_key,
            new_patient=request.new_patient is not None,
            reason_key=request.reason.key,
            service_key=request.reason.service_key,
            provider_key=request.slot.provider_key,
            facility_key=request.slot.facility_key,
            start_at=start,
            end_at=end,
            language=request.language,
            approval=approval,
            status=REQUESTED,
            recall_id=link.recall_id if link else None,
            invitation_id=link.invitation_id if link else None,
            created_at=now,
            updated_at=now,
        )
        .returning(bookings.c.id)
    ).scalar_one()
    return int(row)


def _wait(runtime: Runtime, writeback_id: int) -> None:
    """The worker holds the command at this moment: give it a moment to finish."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        with runtime.store.begin("read a booking's write-back") as connection:
            item = queue.find(connection, writeback_id)
        if item is None or item.status != Outcome.APPLYING:
            return
        time.sleep(POLL_SECONDS)


def settle(runtime: Runtime, booking_id: int) -> BookingResult:
    """Record what the host did with a booking (idempotent: the page, the worker and a second
    call all agree), with its side effects the first time."""
    now = runtime.clock.now()
    with runtime.store.begin("read a booking") as connection:
        row = connection.execute(select(bookings).where(bookings.c.id == booking_id)).first()
        if row is None:
            return BookingResult("taken")
        booking = row._mapping
        item = queue.find(connection, booking["writeback_id"]) if booking["writeback_id"] else None
    reference = booking["reference"]
    if booking["status"] == DONE:
        return BookingResult("pending" if booking["approval"] else "booked", booking_id, reference)
    if booking["status"] == REFUSED:
        return BookingResult("taken", booking_id, reference, booking["detail"] or "")
    # What the side effects need from the host is read before the transition is claimed: a
    # host away at this moment leaves the booking for the worker's next round, with nothing lost.
    if item is not None and item.status == Outcome.DONE:
        result = item.result or {}
        key = str(result.get("host_ref"))
        patient_key = str((result.get("values") or {}).get("patient") or booking["patient_key"])
        try:
            host = runtime.source.reference()
            found = list(runtime.source.patients([patient_key], lambda _: None))
        except SourceError:
            _move(booking_id, (REQUESTED,), QUEUED, runtime)
            return BookingResult(
                "pending" if booking["approval"] else "booked", booking_id, reference
            )
        if _move(booking_id, (REQUESTED, QUEUED), DONE, runtime, key=key, patient=patient_key):
            patient = found[0] if found else None
            _after_booked(runtime, booking, key, patient_key, patient, host, now)
        return BookingResult("pending" if booking["approval"] else "booked", booking_id, reference)
    if item is not None and item.status in (Outcome.REFUSED, Outcome.FAILED):
        detail = item.last_error or "refused"
        told: tuple[Patient | None, Reference] | None = None
        if booking["status"] == QUEUED:  # the patient was told "received": tell them now
            try:
                told = failed_patient(runtime, booking, item.command), runtime.source.reference()
            except SourceError:
                return BookingResult("queued", booking_id, reference)
        if _move(booking_id, (REQUESTED, QUEUED), REFUSED, runtime, detail=detail):
            with runtime.store.begin("release a booking link") as connection:
                if booking["pass_id"] is not None:
                    passes.release(connection, booking["pass_id"])
            if told is not None and told[0] is not None:
                _tell_refused(runtime, booking, told[0], told[1])
        return BookingResult("taken", booking_id, reference, detail)
    _move(booking_id, (REQUESTED,), QUEUED, runtime)
    return BookingResult("queued", booking_id, reference)


def _move(
    booking_id: int,
    expected: tuple[str, ...],
    status: str,
    runtime: Runtime,
    *,
    key: str | None = None,
    patient: str | None = None,
    detail: str | None = None,
) -> bool:
    """One transition, only from ``expected``: True for the caller that made it."""
    values: dict[str, Any] = {"status": status, "updated_at": runtime.clock.now()}
    if key is not None:
        values["appointment_key"] = key
    if patient is not None:
        values["patient_key"] = patient
    if detail is not None:
        values["detail"] = detail[:500]
    with runtime.store.begin("record a booking") as connection:
        moved = connection.execute(
            update(bookings)
            .where(bookings.c.id == booking_id, bookings.c.status.in_(expected))
            .values(**values)
        )
    return bool(moved.rowcount == 1)


def _after_booked(
    runtime: Runtime,
    booking: Any,
    key: str,
    patient_key: str,
    patient: Patient | None,
    reference: Reference,
    now: datetime,
) -> None:
    """A recall answered, an invitation used, and the confirmation planned."""
    zone = runtime.zone(reference)
    with runtime.store.begin("after a booking") as connection:
        if booking["recall_id"] is not None:
            connection.execute(
                update(recalls)
                .where(recalls.c.id == booking["recall_id"])
                .values(status="booked", booking_id=booking["id"], updated_at=now, closed_at=now)
            )
        if booking["invitation_id"] is not None:
            connection.execute(
                update(invitations)
                .where(
                    invitations.c.id == booking["invitation_id"], invitations.c.status == "invited"
                )
                .values(
                    status="enrolled",
                    enrolled_at=now,
                    updated_at=now,
                    patient_key=patient_key,
                )
            )
        if patient is not None:
            plan_messages(
                runtime,
                connection,
                event=BOOKED,
                subject=key,
                occurrence=booking["start_at"].astimezone(zone).date(),
                patient=patient,
                channels=runtime.settings.booking.confirmation_channels,
                rule="online",
                deadline=booking["start_at"],
                reference=reference,
            )


def _tell_refused(runtime: Runtime, booking: Any, patient: Patient, reference: Reference) -> None:
    """The patient was told "received" and the host then refused: say so, with a way back."""
    now = runtime.clock.now()
    with runtime.store.begin("plan a booking refusal") as connection:
        plan_messages(
            runtime,
            connection,
            event=FAILED,
            subject=f"booking:{booking['id']}",
            occurrence=now.astimezone(runtime.zone(reference)).date(),
            patient=patient,
            channels=runtime.settings.booking.confirmation_channels,
            rule="online",
            deadline=now + timedelta(days=2),
            reference=reference,
        )


def failed_patient(runtime: Runtime, booking: Any, command: Command) -> Patient | None:
    """Who to tell about a refused booking: the patient on file, else what the form gave."""
    if not booking["new_patient"] and booking["patient_key"]:
        found = list(runtime.source.patients([booking["patient_key"]], lambda _: None))
        return found[0] if found else None
    details = command.payload.get("patient")
    if not isinstance(details, dict):
        return None
    consent = details.get("consent") or {}
    return Patient(
        key="",
        first_name=str(details.get("first_name") or ""),
        last_name=str(details.get("last_name") or ""),
        language=str(details.get("language") or ""),
        mobile=details.get("mobile") or None,
        email=details.get("email") or None,
        consent={
            Channel.SMS: Consent.YES if consent.get("sms") else Consent.NO,
            Channel.EMAIL: Consent.YES if consent.get("email") else Consent.NO,
        },
    )
