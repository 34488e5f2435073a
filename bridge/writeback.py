"""Write-back commands: what a patient's answer (or a booking) must change in the host.

Every source of answers (an SMS reply, a keypress on a call, a confirm link, an online booking, an
HL7 feed's own update) produces a ``Command``; the queue (``bridge.store.writebacks``) stores it
once per ``idempotency_key``; a writer plugin applies it to the host, reads the row back to
verify, and says what happened. A command the host cannot take now (down, locked) is retried
with back-off; one it must not take (a protected status, a row staff changed in between) is
*refused* and shown to staff, never forced.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any

from bridge.model import Channel


class CommandKind(StrEnum):
    """What a command asks the host to do."""

    CONFIRM = "confirm"  # the patient confirmed (``channel`` says how)
    CANCEL = "cancel"  # the patient cancelled (``payload.reason`` optional)
    CALLBACK = "callback"  # the patient asked to be called back
    OPT_OUT = "opt_out"  # stop contacting the patient on ``channel``
    OPT_IN = "opt_in"  # the patient opted back in on ``channel``
    BOOK = "book"  # a new appointment (``payload`` holds the slot)
    NOTE = "note"  # a note for staff about the patient


@dataclass(frozen=True)
class Command:
    """One change for the host. ``origin`` names where it came from (``sms-reply``,
    ``voice-keypress``, ``link``, ``booking``, ``hl7``...); ``ref`` is that origin's own id (a
    provider message id, a token id), used to make the idempotency key."""

    kind: CommandKind
    origin: str
    ref: str
    patient_key: str
    appointment_key: str | None = None
    occurrence: date | None = None
    channel: Channel | None = None
    payload: dict[str, Any] = field(default_factory=dict)

    @property
    def idempotency_key(self) -> str:
        """The same answer arriving twice (a provider's retried webhook) is one command."""
        parts = [
            self.kind.value,
            self.origin,
            self.ref,
            self.patient_key,
            self.appointment_key or "",
            self.occurrence.isoformat() if self.occurrence else "",
        ]
        return hashlib.blake2b("|".join(parts).encode(), digest_size=16).hexdigest()

    def payload_json(self) -> str:
        return json.dumps(self.payload, sort_keys=True, default=str)


class Outcome(StrEnum):
    """What became of a command."""

    PENDING = "pending"
    APPLYING = "applying"
    DONE = "done"  # applied and read back
    REFUSED = "refused"  # must not be applied (protected status, changed by staff): for staff
    FAILED = "failed"  # gave up after the retries (shown to staff)


@dataclass(frozen=True)
class Applied:
    """A writer's report on one applied command: what the host now holds (read back)."""

    detail: str
    host_ref: str | None = None
    values: dict[str, Any] = field(default_factory=dict)
