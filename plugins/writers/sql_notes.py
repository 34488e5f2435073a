"""The text of a staff note about a patient's answer: English, short, no message bodies.

Staff read these in the host (OpenEMR's Messages screen), so they say what the patient did,
about which appointment (clinic-local date and time), and how the answer came in.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from bridge.model import Appointment
from bridge.writeback import Command, CommandKind

REASON_LIMIT = 500

_VIA = {
    "link": "the confirm/cancel link",
    "sms-reply": "an SMS reply",
    "voice-keypress": "a keypress on the reminder call",
    "email-reply": "an email reply",
    "hl7": "the HL7 feed",
    "booking": "the online booking page",
}
_FLOWS = {
    "new": "as a new patient",
    "existing": "with a personal booking link",
    "recall": "from a recall message",
    "treatment": "for a planned treatment",
}


def note_text(command: Command, appointment: Appointment | None, zone: ZoneInfo) -> str:
    """One or two sentences for staff; a cancellation carries the patient's reason, if any."""
    via = _VIA.get(command.origin, command.origin)
    what = "the appointment"
    if appointment is not None:
        start = appointment.start.astimezone(zone)
        what = f"the appointment of {start:%Y-%m-%d}" + (
            "" if appointment.all_day else f" at {start:%H:%M}"
        )
    channel = command.channel.value if command.channel else "any"
    if command.kind == CommandKind.CANCEL:
        text = f"Patient cancelled {what} through {via}."
        reason = clean(command.payload.get("reason"))
        return f"{text} Reason: {reason}" if reason else text
    if command.kind == CommandKind.CALLBACK:
        return f"Patient asked to be called back about {what} (through {via})."
    if command.kind == CommandKind.OPT_OUT:
        return f"Patient asked to get no more {channel} messages (through {via})."
    if command.kind == CommandKind.OPT_IN:
        return f"Patient agreed again to get {channel} messages (through {via})."
    return clean(command.payload.get("text")) or f"Message from the patient through {via}."


def clean(value: object, limit: int = REASON_LIMIT) -> str:
    """Free text from a patient made safe to store: printable characters, single spaces,
    at most ``limit`` characters."""
    if not isinstance(value, str):
        return ""
    printable = "".join(ch if ch.isprintable() else " " for ch in value)
    return " ".join(printable.split())[:limit].strip()


def booking_text(command: Command, zone: ZoneInfo, *, registered: bool, matched: bool) -> str:
    """The staff note about an online booking: what, when, how, and what to check."""
    payload = command.payload
    slot = payload.get("slot") or {}
    what = (
        f"{payload.get('title') or 'an appointment'} on {slot.get('date')} at {slot.get('start')}"
    )
    how = _FLOWS.get(str(payload.get("flow")), "online")
    parts = [f"Patient booked {what} online {how} (ref {payload.get('reference')})."]
    parts.append(
        "It waits for approval (status pending)." if payload.get("approval") else "It is booked."
    )
    details = payload.get("patient")
    if registered:
        parts.append("New patient registered online: please check the chart.")
    elif matched and isinstance(details, dict):
        typed = ", ".join(
            f"{name} {clean(details.get(name), 80)}"
            for name in ("mobile", "email")
            if details.get(name)
        )
        parts.append(
            "Registered as new but matched this chart by name and birth date; contact details "
            f"were not changed{': typed online ' + typed if typed else ''}."
        )
    comment = clean(payload.get("comment"))
    if comment:
        parts.append(f"Comment: {comment}")
    return " ".join(parts)
