"""Personal booking links sent outside recalls and invitations:

- a planned treatment (``bridge booking link PATIENT --reason``): staff send a patient a link
  that books that treatment (and, if named, with that provider);
- on request: on the public booking page an existing patient types their birth date and their
  mobile or email; when exactly that patient is on file (and agrees to that channel), the link
  goes to the contact on file. The page says the same thing whether or not anyone matched, so
  it cannot be used to find out who is a patient.
"""

from __future__ import annotations

import secrets
from datetime import date

from bridge.booking import passes
from bridge.booking.messages import channel_gate, plan_messages
from bridge.booking.passes import PassKeys
from bridge.booking.settings import Flow
from bridge.errors import InvitationRefused
from bridge.model import Channel, Patient
from bridge.patient.views import choose_language
from bridge.runtime import Runtime

EVENT = "booking_link"


def send_link(
    runtime: Runtime,
    patient_key: str,
    *,
    flow: Flow,
    reason: str | None = None,
    provider: str | None = None,
    channels: list[Channel] | None = None,
) -> str:
    """Issue a personal link for ``patient_key`` and plan its message; what was done, in words.
    Raises ``InvitationRefused`` when it cannot be sent."""
    settings = runtime.settings.booking
    if not settings.enabled:
        raise InvitationRefused("online booking is off (booking.enabled)")
    if reason is not None:
        found_reason = settings.reason(reason)
        if found_reason is None:
            raise InvitationRefused(f"reason {reason!r} is not in booking.reasons")
        if flow not in found_reason.flows:
            raise InvitationRefused(f"reason {reason!r} cannot be booked in the {flow} flow")
    reference = runtime.source.reference()
    found = list(runtime.source.patients([patient_key], lambda _: None))
    if not found or found[0].deceased:
        raise InvitationRefused(f"patient {patient_key} is not on the host")
    patient = found[0]
    if patient.birth_date is None:
        raise InvitationRefused(
            f"patient {patient_key} has no birth date on file: the link could never open"
        )
    wanted = channels or list(settings.confirmation_channels)
    zone = runtime.zone(reference)
    now = runtime.clock.now()
    with runtime.store.begin("read opt-outs") as connection:
        gate = channel_gate(runtime, connection, patient, now, reference)
    usable = [c for c in wanted if gate.channel_block(patient, c) is None]
    if not usable:
        reasons = "; ".join(f"{c.value}: {gate.channel_block(patient, c)}" for c in wanted)
        raise InvitationRefused(f"patient {patient_key} cannot be reached ({reasons})")
    language = choose_language(patient.language, runtime.settings.clinic.language)
    with runtime.store.begin("send a booking link") as connection:
        _, link = passes.issue(
            connection,
            PassKeys(runtime),
            f"link|{secrets.token_hex(8)}",
            flow=flow,
            language=language,
            now=now,
            days=settings.link_days,
            patient_key=patient_key,
            reasons=[reason] if reason else None,
            provider_key=provider,
        )
        plan_messages(
            runtime,
            connection,
            event=EVENT,
            subject=f"link:{link.id}",
            occurrence=now.astimezone(zone).date(),
            patient=patient,
            channels=usable,
            rule=flow,
            deadline=link.expires_at,
            reference=reference,
        )
    shown = " and ".join(c.value for c in usable)
    return f"booking link {link.id} for patient {patient_key} queued by {shown}"


def link_on_request(runtime: Runtime, birth_date: date, contact: str) -> bool:
    """Send a personal link to the patient on file with this birth date and this mobile (E.164)
    or email, if exactly one; True when one was sent (never shown to the person asking)."""
    if not runtime.settings.booking.enabled:
        return False
    found = runtime.source.find_patients(birth_date, contact, lambda _: None)
    if len(found) != 1:
        return False
    patient: Patient = found[0]
    channel = Channel.EMAIL if "@" in contact else Channel.SMS
    try:
        send_link(runtime, patient.key, flow="existing", channels=[channel])
    except InvitationRefused:
        return False
    return True
