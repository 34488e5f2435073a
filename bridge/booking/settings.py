"""The ``booking`` and ``recall`` settings sections: online booking, recalls and invitations.

Online booking is off until a clinic turns it on and lists what patients may book (``reasons``):
a public page that can register new patients must be a decision, not a default.
"""

from __future__ import annotations

import re
from datetime import date, time
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bridge.booking.interval import Interval, IntervalValue
from bridge.model import Channel
from bridge.settings_values import Section

Flow = Literal["new", "existing", "recall", "treatment"]
FLOWS: tuple[Flow, ...] = ("new", "existing", "recall", "treatment")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_KEY = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")


class _Item(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ReasonSettings(_Item):
    """Something a patient may book online, tied to one of the host's visit categories."""

    key: str = Field(description="Short name used in links and settings (checkup, cleaning).")
    name: str | dict[str, str] = Field(
        description="What the patient reads; one text, or one per language ({en: ..., it: ...})."
    )
    service: str = Field(description="The host's visit category (OpenEMR pc_catid).")
    minutes: int | None = Field(
        None, ge=5, le=480, description="Length; empty = the category's own duration."
    )
    providers: list[str] = Field(
        default_factory=list, description="Providers (host keys) who see it; empty = all."
    )
    locations: list[str] = Field(
        default_factory=list, description="Facilities (host keys) where; empty = all."
    )
    flows: list[Flow] = Field(
        default_factory=lambda: list(FLOWS),
        description="Who may book it: new, existing, recall, treatment.",
    )

    @field_validator("key")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not _KEY.match(value):
            raise ValueError("expected lower-case letters, digits, - or _ (at most 32)")
        return value

    def label(self, language: str) -> str:
        """The name in ``language``, else English, else the first one given."""
        if isinstance(self.name, str):
            return self.name
        return self.name.get(language) or self.name.get("en") or next(iter(self.name.values()))


class BlockSettings(_Item):
    """Hours a provider takes online bookings, kept in the bridge (besides the host's own
    "In Office" events)."""

    provider: str = Field(description="Provider (host key).")
    location: str = Field(description="Facility (host key).")
    days: list[str] = Field(description="Weekdays: mon, tue, wed, thu, fri, sat, sun.")
    start: time
    end: time
    reasons: list[str] = Field(default_factory=list, description="Reason keys; empty = all.")
    from_date: date | None = None
    until: date | None = None

    @field_validator("days")
    @classmethod
    def _weekdays(cls, values: list[str]) -> list[str]:
        cleaned = [v.strip().lower()[:3] for v in values]
        for value in cleaned:
            if value not in WEEKDAYS:
                raise ValueError(f"{value!r} is not a weekday ({', '.join(WEEKDAYS)})")
        return cleaned

    @model_validator(mode="after")
    def _order(self) -> BlockSettings:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self

    def covers(self, day: date) -> bool:
        return (
            WEEKDAYS[day.weekday()] in self.days
            and (self.from_date is None or day >= self.from_date)
            and (self.until is None or day <= self.until)
        )


class BookingSettings(Section):
    """Online booking: what patients may book, when, and what they are told."""

    enabled: bool = Field(False, description="Serve the booking pages and booking links.")
    new_patients: bool = Field(
        True, description="New patients may book (public page /book and invitations)."
    )
    approval: Literal["all", "new_patients", "none"] = Field(
        "new_patients",
        description="Which online bookings wait for staff approval (host status pending, "
        "OpenEMR '^'); the others are booked at once.",
    )
    reasons: list[ReasonSettings] = Field(
        default_factory=list, description="What patients may book (see Online booking)."
    )
    blocks: list[BlockSettings] = Field(
        default_factory=list,
        description="Booking hours kept in the bridge, per provider, location and reason.",
    )
    host_blocks: bool = Field(
        True, description="Also offer the providers' In Office hours from the host's calendar."
    )
    days_ahead: int = Field(60, ge=1, le=365, description="How far ahead slots are offered.")
    min_notice_hours: float = Field(
        2, ge=0, description="No slot starting sooner than this after the booking."
    )
    slot_minutes: int | None = Field(
        None, ge=5, le=120, description="Slot grid; empty = the host's (OpenEMR calendar_interval)."
    )
    pending_minutes: int = Field(
        15,
        ge=1,
        le=240,
        description="A booking that could not reach the host at once (down) is written only "
        "within this time; later it is refused and the patient told.",
    )
    confirmation_channels: list[Channel] = Field(
        default_factory=lambda: [Channel.SMS, Channel.EMAIL],
        description="Channels of the booking confirmation (each gated by consent).",
    )
    map_url: str = Field("", description="Map link in the confirmation.")
    parking: str = Field("", description="Parking instructions in the confirmation.")
    offer: str = Field("", description="An offer or news line in the confirmation.")
    provider_photos: dict[str, str] = Field(
        default_factory=dict, description="Provider key -> photo URL, in the confirmation email."
    )
    invitation_days: int = Field(14, ge=1, le=180, description="An invitation link expires after.")
    link_days: int = Field(
        14, ge=1, le=180, description="A personal booking link (treatment, request) expires after."
    )
    bookings_per_hour: int = Field(
        5, ge=1, description="Bookings one address may make per hour on the public page."
    )

    @field_validator("confirmation_channels")
    @classmethod
    def _no_voice(cls, channels: list[Channel]) -> list[Channel]:
        if Channel.VOICE in channels:
            raise ValueError("sms and email only: a confirmation carries links and details")
        return list(dict.fromkeys(channels))

    @model_validator(mode="after")
    def _unique_reasons(self) -> BookingSettings:
        keys = [reason.key for reason in self.reasons]
        twice = sorted({key for key in keys if keys.count(key) > 1})
        if twice:
            raise ValueError(f"reasons: key {twice[0]!r} is used twice")
        for block in self.blocks:
            unknown = set(block.reasons) - set(keys)
            if unknown:
                raise ValueError(f"blocks: reason {sorted(unknown)[0]!r} is not in reasons")
        return self

    def reason(self, key: str) -> ReasonSettings | None:
        return next((r for r in self.reasons if r.key == key), None)


class RecallSettings(Section):
    """Recalls: patients due for their next visit get a personal booking link."""

    enabled: bool = Field(False, description="Run the daily recall (needs booking.enabled).")
    hour: int = Field(10, ge=0, le=23, description="Clinic-local hour of the daily run.")
    channels: list[Channel] = Field(
        default_factory=lambda: [Channel.SMS, Channel.EMAIL],
        description="Channels of a recall (each gated by consent).",
    )
    services: list[str] = Field(
        default_factory=list,
        description="Visit categories (host keys) whose last visit starts a recall; empty = none "
        "(manual recalls only).",
    )
    default_interval: IntervalValue = Field(
        Interval(months=6), description="Time from the last visit to the recall."
    )
    intervals: dict[str, IntervalValue] = Field(
        default_factory=dict, description="Per visit category: its own interval."
    )
    reason: str | None = Field(
        None, description="Booking reason offered; empty = the first with the recall flow."
    )
    reasons: dict[str, str] = Field(
        default_factory=dict, description="Per visit category: the booking reason offered."
    )
    lookback: IntervalValue = Field(
        Interval(months=36), description="Patients not seen for longer are not recalled."
    )
    attended_only: bool = Field(
        False,
        description="Count only visits the host marks checked in or out (else every visit "
        "not cancelled and not a no-show).",
    )
    manual: bool = Field(
        True, description="Also send manual recalls (the host's recall list, bridge recall add)."
    )
    link_days: int = Field(30, ge=1, le=180, description="A recall's booking link expires after.")
    max_per_run: int = Field(0, ge=0, description="At most this many recalls a day; 0 = no cap.")

    @field_validator("channels")
    @classmethod
    def _no_voice(cls, channels: list[Channel]) -> list[Channel]:
        if Channel.VOICE in channels:
            raise ValueError("sms and email only: a recall carries a booking link")
        return list(dict.fromkeys(channels))

    def interval_for(self, service: str | None) -> Interval:
        return self.intervals.get(service or "", self.default_interval)
