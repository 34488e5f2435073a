"""Invitations to book online, by email, to a patient on file or to someone new.

Refused, with the reason in words, when there is no email address, when the patient does not
consent to email (the host's flag says no, or says nothing while the clinic needs an explicit
yes, or the address unsubscribed), or when the patient has died. Someone new is invited only
when staff confirm they agreed to it (``--consent``).

Status: ``invited`` (sent, link open), ``enrolled`` (the patient opened it and proved who they
are, or, if new, booked and was registered), ``expired`` (``booking.invitation_days`` passed),
``revoked`` (by staff, or because the email on file changed). A changed email revokes the old
invitation and sends a new one to the new address; the old link stops working at once (its
pass is revoked, and a link is also refused whenever the address on file no longer matches).
"""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from bridge.booking import passes
from bridge.booking.messages import plan_messages
from bridge.booking.passes import PassKeys
from bridge.booking.tables import invitations
from bridge.delivery import consent
from bridge.errors import InvitationRefused
from bridge.model import Channel, Consent, Patient
from bridge.patient.views import choose_language
from bridge.plugin import Reference
from bridge.runtime import Runtime

EVENT = "invitation"
INVITED, ENROLLED, EXPIRED, REVOKED = "invited", "enrolled", "expired", "revoked"


@dataclass(frozen=True)
class Invited:
    """One invitation as listed (the email is for staff eyes, on their own terminal)."""

    id: int
    patient_key: str | None
    email: str
    status: str
    detail: str
    created_at: datetime
    expires_at: datetime
    enrolled_at: datetime | None

    @classmethod
    def of(cls, row: Any) -> Invited:
        m = row._mapping
        return cls(
            m["id"],
            m["patient_key"],
            m["email"],
            m["status"],
            m["detail"] or "",
            m["created_at"],
            m["expires_at"],
            m["enrolled_at"],
        )


def consent_problem(runtime: Runtime, connection: Connection, patient: Patient) -> str | None:
    """Why ``patient`` may not be invited by email, or None."""
    if patient.deceased:
        return "the patient is recorded as deceased"
    given = patient.consent_for(Channel.EMAIL)
    if given == Consent.NO:
        return "the patient does not consent to email (the host's email consent says no)"
    if given != Consent.YES and runtime.settings.reminders.consent == "explicit":
        return "the patient's consent to email is not recorded (reminders.consent is explicit)"
    if (patient.key, Channel.EMAIL) in consent.opted_out_pairs(connection, {patient.key}):
        return "the patient unsubscribed from email"
    return None


def invite(
    runtime: Runtime,
    patient_key: str | None,
    *,
    email: str | None = None,
    agreed: bool = False,
    language: str | None = None,
    resend: bool = False,
) -> tuple[int, str]:
    """Invite a patient on file (``patient_key``) or someone new (``email`` and ``agreed``).

    Returns the invitation id and what happened, in words. Raises ``InvitationRefused``."""
    if not runtime.settings.booking.enabled:
        raise InvitationRefused("online booking is off (booking.enabled): nothing to invite to")
    reference = runtime.source.reference()
    patient: Patient | None = None
    if patient_key is not None:
        found = list(runtime.source.patients([patient_key], lambda _: None))
        if not found:
            raise InvitationRefused(f"patient {patient_key} is not on the host")
        patient = found[0]
        address = email or patient.email
        if not address:
            raise InvitationRefused(
                f"patient {patient_key} has no email address: add one on the host, or give --email"
            )
    else:
        if not runtime.settings.booking.new_patients:
            raise InvitationRefused("new patients cannot book online (booking.new_patients)")
        if not email:
            raise InvitationRefused("a new patient is invited by email: give --email")
        if not agreed:
            raise InvitationRefused(
                "confirm the person agreed to get this email (--consent); nothing was sent"
            )
        address = email
    now = runtime.clock.now()
    with runtime.store.begin("invite") as connection:
        expire(connection, now)  # an invitation past its date is not "already invited"
        if patient is not None:
            problem = consent_problem(runtime, connection, patient)
            if problem:
                raise InvitationRefused(f"patient {patient_key}: {problem}; nothing was sent")
        current = _open_for(connection, patient_key, address)
        if current is not None:
            same = current["email"].lower() == address.lower() and current["host_email"] == (
                patient.email if patient else None
            )
            if same and not resend:
                raise InvitationRefused(
                    f"already invited (invitation {current['id']}, {current['status']}, until "
                    f"{current['expires_at']:%Y-%m-%d}); use --resend to send it again"
                )
            if same:
                return _resend(runtime, connection, current, patient, reference, now)
            revoke(connection, current["id"], now, "the email address changed")
        speaking = choose_language(
            language or (patient.language if patient else None), runtime.settings.clinic.language
        )
        invitation_id = _create(
            runtime, connection, patient, address, speaking, now, reference, patient_key
        )
    return invitation_id, f"invitation {invitation_id} queued for {mask(address)}"


def _create(
    runtime: Runtime,
    connection: Connection,
    patient: Patient | None,
    address: str,
    language: str,
    now: datetime,
    reference: Reference,
    patient_key: str | None,
) -> int:
    days = runtime.settings.booking.invitation_days
    invitation_id = int(
        connection.execute(
            insert(invitations)
            .values(
                patient_key=patient_key,
                email=address,
                host_email=patient.email if patient else None,
                language=language,
                status=INVITED,
                sends=1,
                created_at=now,
                expires_at=now + timedelta(days=days),
                updated_at=now,
            )
            .returning(invitations.c.id)
        ).scalar_one()
    )
    _, link = passes.issue(
        connection,
        PassKeys(runtime),
        f"invitation|{invitation_id}",
        flow="existing" if patient else "new",
        language=language,
        now=now,
        days=days,
        patient_key=patient_key,
        invitation_id=invitation_id,
    )
    connection.execute(
        update(invitations).where(invitations.c.id == invitation_id).values(pass_id=link.id)
    )
    _plan(runtime, connection, invitation_id, patient, address, language, 1, now, reference)
    return invitation_id


def _resend(
    runtime: Runtime,
    connection: Connection,
    current: Any,
    patient: Patient | None,
    reference: Reference,
    now: datetime,
) -> tuple[int, str]:
    sends = int(current["sends"]) + 1
    connection.execute(
        update(invitations)
        .where(invitations.c.id == current["id"])
        .values(sends=sends, updated_at=now)
    )
    _plan(
        runtime,
        connection,
        current["id"],
        patient,
        current["email"],
        current["language"],
        sends,
        now,
        reference,
    )
    return current["id"], f"invitation {current['id']} sent again to {mask(current['email'])}"


def _plan(
    runtime: Runtime,
    connection: Connection,
    invitation_id: int,
    patient: Patient | None,
    address: str,
    language: str,
    send: int,
    now: datetime,
    reference: Reference,
) -> None:
    recipient = (
        Patient(key=patient.key, email=address, consent=dict(patient.consent))
        if patient is not None
        else Patient(key="", email=address, language=language, consent={Channel.EMAIL: Consent.YES})
    )
    plan_messages(
        runtime,
        connection,
        event=EVENT,
        subject=f"invite:{invitation_id}",
        occurrence=now.astimezone(runtime.zone(reference)).date(),
        patient=recipient,
        channels=[Channel.EMAIL],
        rule=f"send{send}",
        deadline=now + timedelta(days=runtime.settings.booking.invitation_days),
        reference=reference,
    )


def _open_for(connection: Connection, patient_key: str | None, address: str) -> Any:
    """The open invitation of this patient (or, for someone new, of this address)."""
    query = select(invitations).where(invitations.c.status.in_((INVITED, ENROLLED)))
    if patient_key is not None:
        query = query.where(invitations.c.patient_key == patient_key)
    else:
        query = query.where(
            invitations.c.patient_key.is_(None),
            func.lower(invitations.c.email) == address.lower(),
        )
    row = connection.execute(query.order_by(invitations.c.id.desc())).first()
    if row is None or row._mapping["status"] == ENROLLED:
        return None
    return row._mapping


def revoke(connection: Connection, invitation_id: int, now: datetime, why: str) -> bool:
    """Revoke an open invitation and its link; False when it was not open."""
    row = connection.execute(
        select(invitations.c.pass_id, invitations.c.status).where(invitations.c.id == invitation_id)
    ).first()
    if row is None or row.status not in (INVITED,):
        return False
    connection.execute(
        update(invitations)
        .where(invitations.c.id == invitation_id)
        .values(status=REVOKED, detail=why, revoked_at=now, updated_at=now)
    )
    if row.pass_id is not None:
        passes.revoke(connection, row.pass_id, now)
    return True


def expire(connection: Connection, now: datetime) -> int:
    """Invitations past their date become ``expired``."""
    moved = connection.execute(
        update(invitations)
        .where(invitations.c.status == INVITED, invitations.c.expires_at <= now)
        .values(status=EXPIRED, updated_at=now)
    )
    return int(moved.rowcount or 0)


def follow_email_changes(runtime: Runtime) -> int:
    """Revoke every open invitation whose patient's email on file changed, and invite the new
    address (when there is one and consent allows). Returns how many were revoked."""
    now = runtime.clock.now()
    with runtime.store.begin("read open invitations") as connection:
        expire(connection, now)
        rows = connection.execute(
            select(invitations).where(
                invitations.c.status == INVITED, invitations.c.patient_key.is_not(None)
            )
        ).all()
    if not rows:
        return 0
    keys = {row._mapping["patient_key"] for row in rows}
    found = {p.key: p for p in runtime.source.patients(keys, lambda _: None)}
    revoked = 0
    for row in rows:
        m = row._mapping
        patient = found.get(m["patient_key"])
        if patient is None or (patient.email or None) == (m["host_email"] or None):
            continue
        with runtime.store.begin("revoke an invitation") as connection:
            if not revoke(connection, m["id"], now, "the email on file changed"):
                continue
        revoked += 1
        if patient.email:
            # The patient's new state (no consent...) may allow no new invitation.
            with suppress(InvitationRefused):
                invite(runtime, patient.key)
    return revoked


def listed(connection: Connection, status: str | None = None, limit: int = 100) -> list[Invited]:
    query = select(invitations).order_by(invitations.c.id.desc()).limit(limit)
    if status is not None:
        query = query.where(invitations.c.status == status)
    return [Invited.of(row) for row in connection.execute(query)]


def mask(address: str) -> str:
    """``a***@example.org``: enough for staff to recognise it, not to copy it."""
    name, _, domain = address.partition("@")
    return f"{name[:1]}***@{domain}" if domain else "***"
