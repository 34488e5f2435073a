"""Free slots: the hours a provider takes bookings, minus everything already in the calendar.
Pure: it works on calendar entries (``bridge.plugin.CalendarEntry``) and settings, in
clinic-local wall time, and never touches a database.

Open hours come from two places:

- the host's markers, read as OpenEMR's "find available" reads them: the day starts closed; an
  ``in_office`` entry opens it at its time (an entry kept for another visit category counts as
  closing it for this one), an ``out_of_office`` entry closes it, and wins over an ``in_office``
  entry at the same time (``find_appt_popup.php`` tests the out bit last); a day still open at
  the end closes at the host's day end (OpenEMR ``schedule_end``);
- blocks configured in the bridge (per provider, location, weekdays and reasons).

Either kind is cut to the host's day (``schedule_start`` to ``schedule_end``): the clinic's
calendar shows no hours outside it.

Busy: every ``busy`` entry of the provider (its time, or the whole day) and every ``closed``
entry of the clinic. A slot must lie inside open hours, overlap nothing busy, start on the grid
(multiples of the slot length from midnight) and not before ``earliest``.

The writer uses ``fits`` for the very same test inside its transaction, so the page and the
host agree on what is free.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from bridge.booking.settings import BlockSettings
from bridge.plugin import CalendarEntry

HOST = "host"
BRIDGE = "bridge"
DAY_END = time(23, 59, 59)


@dataclass(frozen=True, order=True)
class Slot:
    """A bookable time: one provider, one place, clinic-local wall time."""

    day: date
    start: time
    end: time
    provider_key: str
    facility_key: str | None
    office: str  # host: inside the host's In Office hours; bridge: a configured block

    @property
    def key(self) -> str:
        """What a page posts back: provider, place and start (no patient data)."""
        return ".".join(
            (self.provider_key, self.facility_key or "-", f"{self.day:%Y%m%d}{self.start:%H%M}")
        )

    @property
    def starts(self) -> datetime:
        return datetime.combine(self.day, self.start)


@dataclass(frozen=True)
class Opening:
    """One stretch of open hours on a day."""

    start: time
    end: time
    facility_key: str | None
    office: str


@dataclass(frozen=True)
class Rules:
    """What decides the slots besides the calendar."""

    minutes: int
    step: int
    day_start: time
    day_end: time
    host_blocks: bool
    earliest: datetime  # clinic-local, naive


def host_openings(
    entries: Iterable[CalendarEntry], service_key: str | None, day_end: time
) -> list[Opening]:
    """The open hours a day's markers give, for a visit of ``service_key``."""
    markers = sorted(
        (e for e in entries if e.kind in ("in_office", "out_of_office")),
        key=lambda e: (e.start, e.kind == "out_of_office"),
    )
    found: list[Opening] = []
    opened: CalendarEntry | None = None
    for marker in markers:
        usable = marker.kind == "in_office" and (
            marker.service_key is None or marker.service_key == service_key
        )
        if opened is not None and (not usable or marker.facility_key != opened.facility_key):
            if marker.start > opened.start:
                found.append(Opening(opened.start, marker.start, opened.facility_key, HOST))
            opened = None
        if usable and opened is None:
            opened = marker
    if opened is not None and opened.start < day_end:
        found.append(Opening(opened.start, day_end, opened.facility_key, HOST))
    return found


def block_openings(
    blocks: Iterable[BlockSettings], provider_key: str, day: date, reason_key: str
) -> list[Opening]:
    """The open hours the bridge's own blocks give one provider on ``day`` for a reason."""
    return [
        Opening(block.start, block.end, block.location, BRIDGE)
        for block in blocks
        if block.provider == provider_key
        and block.covers(day)
        and (not block.reasons or reason_key in block.reasons)
    ]


def busy_times(entries: Iterable[CalendarEntry]) -> list[tuple[time, time]]:
    """What is taken on a day: busy entries and clinic closures, whole days as 00:00-23:59."""
    taken = []
    for entry in entries:
        if entry.kind not in ("busy", "closed"):
            continue
        if entry.all_day or entry.end is None:
            taken.append((time(0), DAY_END))
        else:
            taken.append((entry.start, entry.end))
    return sorted(taken)


def day_slots(
    openings: Sequence[Opening],
    busy: Sequence[tuple[time, time]],
    rules: Rules,
    day: date,
    provider_key: str,
) -> list[Slot]:
    """The free slots of one provider on one day."""
    found: dict[tuple[time, str | None], Slot] = {}
    length = timedelta(minutes=rules.minutes)
    step = timedelta(minutes=rules.step)
    midnight = datetime.combine(day, time(0))
    for opening in sorted(openings, key=lambda o: (o.office != HOST, o.start)):
        begin = datetime.combine(day, max(opening.start, rules.day_start))
        offset = (begin - midnight) % step
        start = begin if not offset else begin + (step - offset)
        finish = datetime.combine(day, min(opening.end, rules.day_end))
        while start + length <= finish:
            end = start + length
            if start >= rules.earliest and not _overlaps(start.time(), end.time(), busy, end, day):
                slot_key = (start.time(), opening.facility_key)
                found.setdefault(
                    slot_key,
                    Slot(
                        day,
                        start.time(),
                        end.time(),
                        provider_key,
                        opening.facility_key,
                        opening.office,
                    ),
                )
            start += step
    return sorted(found.values())


def _overlaps(
    start: time, end: time, busy: Sequence[tuple[time, time]], end_at: datetime, day: date
) -> bool:
    if end_at.date() != day:  # a slot that runs past midnight never fits
        return True
    return any(b_start < end and start < b_end for b_start, b_end in busy)


def openings_for(
    entries: Sequence[CalendarEntry],
    blocks: Iterable[BlockSettings],
    provider_key: str,
    day: date,
    reason_key: str,
    service_key: str | None,
    rules: Rules,
) -> list[Opening]:
    """Every opening of a provider's day for one reason: the host's (if used) and the bridge's."""
    mine = [e for e in entries if e.provider_key == provider_key and e.day == day]
    found = host_openings(mine, service_key, rules.day_end) if rules.host_blocks else []
    return found + block_openings(blocks, provider_key, day, reason_key)


def busy_for(
    entries: Sequence[CalendarEntry], provider_key: str, day: date
) -> list[tuple[time, time]]:
    """What is taken on a provider's day: the provider's own entries and clinic closures."""
    return busy_times(e for e in entries if e.day == day and e.provider_key in (provider_key, ""))


def fits(
    entries: Sequence[CalendarEntry],
    openings: Sequence[Opening],
    slot: Slot,
) -> str | None:
    """Why ``slot`` cannot be booked given the calendar as it is now, or None when it can.

    Used by the writer after locking the provider's day: a slot from the host's hours must still
    lie inside them; any slot must overlap nothing."""
    inside = [
        o
        for o in openings
        if o.start <= slot.start
        and slot.end <= o.end
        and (o.facility_key or None) == (slot.facility_key or None)
    ]
    if not inside:
        return "the provider no longer takes bookings at that time"
    busy = busy_for(entries, slot.provider_key, slot.day)
    if any(b_start < slot.end and slot.start < b_end for b_start, b_end in busy):
        return "the time was taken in the meantime"
    return None
