"""What a write-back command expects the host to still hold, so staff edits are never overwritten.

A patient answers about the appointment as they saw it (on the confirm page, in the message they
replied to). A command carries that picture in ``payload["expect"]``; the writer compares it with
the row it has just locked and refuses the command when staff changed the appointment in between
(moved it, gave it to another provider, changed its status). A command without ``expect`` is
checked against protected statuses only.

Values are plain strings so the picture survives the queue's JSON unchanged.
"""

from __future__ import annotations

from typing import Any

from bridge.clock import iso_utc
from bridge.model import Appointment

EXPECT = "expect"


def expectation(appointment: Appointment) -> dict[str, str]:
    """The parts of ``appointment`` a patient's answer is about."""
    return {
        "status": appointment.status,
        "start": iso_utc(appointment.start),
        "providers": ",".join(appointment.provider_keys),
        "facility": appointment.facility_key or "",
    }


def differences(expected: dict[str, Any] | None, appointment: Appointment) -> list[str]:
    """What changed between the expected picture and ``appointment``, as short phrases without
    patient data (``status '-' -> '@'``); empty when nothing did or nothing was expected."""
    if not expected:
        return []
    now = expectation(appointment)
    changed = []
    for name in ("status", "start", "providers", "facility"):
        if name in expected and str(expected[name]) != now[name]:
            changed.append(f"{name} {str(expected[name])!r} -> {now[name]!r}")
    return changed
