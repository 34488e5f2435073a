"""The canonical model every source maps host data into, and every other part reads.

Host-agnostic on purpose: an OpenEMR row and an HL7 SIU message both end up as an
``Appointment`` with a ``StatusClass`` that the mapping decided, so the planner never sees a
host status code's spelling.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from enum import StrEnum
from typing import Any


class Channel(StrEnum):
    """A way to reach a patient."""

    SMS = "sms"
    EMAIL = "email"
    VOICE = "voice"


class ReminderType(StrEnum):
    """The reminder types a clinic offers, as the seed products name them."""

    CALL = "call"
    SMS = "sms"
    CALL_SMS = "call_sms"
    EMAIL = "email"
    NONE = "none"

    @property
    def channels(self) -> tuple[Channel, ...]:
        """The channels this reminder type sends on, in sending order."""
        return _TYPE_CHANNELS[self]


_TYPE_CHANNELS: dict[ReminderType, tuple[Channel, ...]] = {
    ReminderType.CALL: (Channel.VOICE,),
    ReminderType.SMS: (Channel.SMS,),
    ReminderType.CALL_SMS: (Channel.VOICE, Channel.SMS),
    ReminderType.EMAIL: (Channel.EMAIL,),
    ReminderType.NONE: (),
}


class Consent(StrEnum):
    """A patient's consent to be contacted on one channel, as the host records it."""

    YES = "yes"
    NO = "no"
    UNKNOWN = "unknown"


class StatusClass(StrEnum):
    """What a host appointment status means to the bridge (decided by the mapping)."""

    SCHEDULED = "scheduled"
    CONFIRMED = "confirmed"
    PENDING = "pending"
    CANCELLED = "cancelled"
    NO_SHOW = "no_show"
    CHECKED_IN = "checked_in"
    CHECKED_OUT = "checked_out"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class HostStatus:
    """One appointment status of the host, classified by the mapping.

    ``eligible``: reminders may be sent; ``protected``: write-back must never overwrite it.
    """

    code: str
    title: str
    status_class: StatusClass
    eligible: bool
    protected: bool


@dataclass(frozen=True, slots=True)
class Appointment:
    """One occurrence of one visit, as the host has it now.

    ``key`` is the host's appointment key (for OpenEMR the ``pc_eid``; for a visit booked with
    several providers the smallest ``pc_eid`` of the group). ``occurrence`` is the clinic-local
    date: a recurring series yields one ``Appointment`` per date with the same ``key``.
    ``start`` and ``end`` are aware UTC instants.
    """

    key: str
    occurrence: date
    patient_key: str
    start: datetime
    end: datetime | None
    status: str
    status_class: StatusClass
    eligible: bool
    all_day: bool = False
    provider_keys: tuple[str, ...] = ()
    facility_key: str | None = None
    service_key: str | None = None
    room: str = ""
    notes: str = ""
    recurring: bool = False
    host_keys: tuple[str, ...] = ()

    @property
    def ident(self) -> tuple[str, date]:
        """The snapshot identity in the store: host key and occurrence date."""
        return (self.key, self.occurrence)

    def fingerprint(self) -> str:
        """A stable hash of every mapped value, to detect changes between two scans."""
        return fingerprint(self)


@dataclass(frozen=True, slots=True)
class Patient:
    """A patient as the host has it now. Phones are E.164 or absent.

    ``bad_contacts`` names the contact fields that held something unusable (``mobile``,
    ``home_phone``, ``work_phone``, ``email``); the bad value itself is not kept. ``repr`` shows
    the key only, so a patient logged by mistake leaks nothing.
    """

    key: str
    first_name: str = ""
    last_name: str = ""
    mrn: str = ""
    birth_date: date | None = None
    sex: str = ""
    language: str = ""
    mobile: str | None = None
    home_phone: str | None = None
    work_phone: str | None = None
    email: str | None = None
    bad_contacts: tuple[str, ...] = ()
    deceased: bool = False
    consent: dict[Channel, Consent] = field(default_factory=dict, hash=False)
    preference: ReminderType | None = None
    street: str = ""
    city: str = ""
    postal_code: str = ""

    def __repr__(self) -> str:
        return f"Patient(key={self.key!r})"

    def fingerprint(self) -> str:
        """A stable hash of every mapped value, to detect changes between two scans."""
        return fingerprint(self)

    def consent_for(self, channel: Channel) -> Consent:
        """The recorded consent for ``channel``; unknown when the host keeps none."""
        return self.consent.get(channel, Consent.UNKNOWN)

    @property
    def full_name(self) -> str:
        return " ".join(part for part in (self.first_name, self.last_name) if part)


@dataclass(frozen=True, slots=True)
class Provider:
    """A person appointments are booked with."""

    key: str
    first_name: str = ""
    last_name: str = ""
    title: str = ""
    phone: str = ""
    email: str = ""
    facility_key: str | None = None
    username: str = ""
    active: bool = True

    @property
    def display_name(self) -> str:
        """Title and name as patients see it, e.g. ``Dr. Ada Rossi``."""
        return " ".join(p for p in (self.title, self.first_name, self.last_name) if p)


@dataclass(frozen=True, slots=True)
class Facility:
    """A place appointments happen (a clinic location)."""

    key: str
    name: str = ""
    phone: str = ""
    street: str = ""
    city: str = ""
    state: str = ""
    postal_code: str = ""
    website: str = ""
    email: str = ""
    notes: str = ""

    @property
    def address(self) -> str:
        town = " ".join(p for p in (self.postal_code, self.city) if p)
        return ", ".join(p for p in (self.street, town, self.state) if p)


@dataclass(frozen=True, slots=True)
class Service:
    """A visit type (OpenEMR category, HL7 AIS-3 / SCH-8): name and usual duration."""

    key: str
    name: str = ""
    duration_minutes: int = 0
    code: str = ""
    preparation: str = ""
    for_patients: bool = True


def fingerprint(obj: Any) -> str:
    """Hash a model dataclass's field values in declaration order (blake2b, 16 bytes, hex)."""
    parts = []
    for f in fields(obj):
        value = getattr(obj, f.name)
        if isinstance(value, dict):
            value = sorted((str(k), str(v)) for k, v in value.items())
        parts.append(repr(value))
    return hashlib.blake2b("\x1f".join(parts).encode(), digest_size=16).hexdigest()
