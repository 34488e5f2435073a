"""What can be booked online right now: the reasons, the places, the free slots.

Reads the host's reference data (every 30 seconds at most) and calendar (on each request, for
the days shown), the host's grid settings (every 5 minutes), and the bridge's own blocks; the
slot arithmetic is ``bridge.booking.availability``.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from bridge.booking import availability
from bridge.booking.availability import Rules, Slot
from bridge.booking.reasons import Reason, for_flow, resolve
from bridge.booking.settings import BookingSettings, Flow
from bridge.plugin import CalendarSettings, Reference
from bridge.runtime import Runtime

log = logging.getLogger(__name__)

REFERENCE_SECONDS = 30
GRID_SECONDS = 300
DEFAULT_STEP = 15
DEFAULT_DAY = (time(8), time(17))  # OpenEMR's schedule_start / schedule_end defaults


@dataclass(frozen=True)
class Place:
    key: str
    name: str
    address: str


class Offers:
    """The booking offer of one runtime (one per web app; thread-safe)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.settings: BookingSettings = runtime.settings.booking
        self._lock = threading.Lock()
        self._reference: tuple[datetime, Reference, list[Reason]] | None = None
        self._problems: list[str] = []
        self._grid: tuple[datetime, CalendarSettings] | None = None

    # --- reference data -------------------------------------------------------------------

    def reference(self) -> Reference:
        return self._resolved()[0]

    def all_reasons(self) -> list[Reason]:
        return self._resolved()[1]

    def _resolved(self) -> tuple[Reference, list[Reason]]:
        now = self.runtime.clock.now()
        with self._lock:
            cached = self._reference
        if cached is not None and (now - cached[0]).total_seconds() <= REFERENCE_SECONDS:
            return cached[1], cached[2]
        reference = self.runtime.source.reference()
        reasons, problems = resolve(self.settings, reference)
        if problems != self._problems:
            for problem in problems:
                log.warning("online booking: %s", problem)
        with self._lock:
            self._reference = (now, reference, reasons)
            self._problems = problems
        return reference, reasons

    def problems(self) -> list[str]:
        """Reasons left out of the offer, and why (for ``bridge booking slots``)."""
        self._resolved()
        return list(self._problems)

    def grid(self) -> CalendarSettings:
        now = self.runtime.clock.now()
        with self._lock:
            cached = self._grid
        if cached is not None and (now - cached[0]).total_seconds() <= GRID_SECONDS:
            return cached[1]
        found = self.runtime.source.calendar_settings()
        with self._lock:
            self._grid = (now, found)
        return found

    def reasons(self, flow: Flow, allowed: list[str] | None = None) -> list[Reason]:
        return for_flow(self.all_reasons(), flow, allowed)

    def reason(self, key: str, flow: Flow, allowed: list[str] | None = None) -> Reason | None:
        return next((r for r in self.reasons(flow, allowed) if r.key == key), None)

    def places(self, reason: Reason) -> list[Place]:
        """The locations where ``reason`` may be booked (all facilities when it names none)."""
        facilities = self.reference().facilities
        keys = reason.locations or tuple(sorted(facilities))
        return [
            Place(key, facilities[key].name or key, facilities[key].address)
            for key in keys
            if key in facilities
        ]

    # --- time -------------------------------------------------------------------------------

    def today(self) -> date:
        return self.now_local().date()

    def now_local(self) -> datetime:
        zone = self.runtime.zone(self.reference())
        return self.runtime.clock.now().astimezone(zone).replace(tzinfo=None)

    def horizon(self) -> tuple[date, date]:
        today = self.today()
        return today, today + timedelta(days=self.settings.days_ahead)

    def rules(self, reason: Reason) -> Rules:
        grid = self.grid()
        start, end = DEFAULT_DAY
        step = self.settings.slot_minutes or grid.slot_minutes or DEFAULT_STEP
        return Rules(
            minutes=reason.minutes,
            step=step,
            day_start=grid.day_start or start,
            day_end=grid.day_end or end,
            host_blocks=self.settings.host_blocks,
            earliest=self.now_local() + timedelta(hours=self.settings.min_notice_hours),
        )

    # --- slots ------------------------------------------------------------------------------

    def slots(
        self,
        reason: Reason,
        first: date,
        last: date,
        provider: str | None = None,
        location: str | None = None,
    ) -> list[Slot]:
        """Free slots for ``reason`` from ``first`` to ``last`` (clinic-local dates, inside the
        booking horizon), optionally for one provider or location only."""
        begin, end = self.horizon()
        first, last = max(first, begin), min(last, end)
        if first > last:
            return []
        providers = [p for p in reason.providers if provider is None or p == provider]
        if not providers:
            return []
        entries = self.runtime.source.calendar(providers, (first, last), self.reference())
        rules = self.rules(reason)
        found: list[Slot] = []
        day = first
        while day <= last:
            for key in providers:
                openings = availability.openings_for(
                    entries,
                    self.settings.blocks,
                    key,
                    day,
                    reason.key,
                    reason.service_key,
                    rules,
                )
                if reason.locations:
                    openings = [o for o in openings if o.facility_key in reason.locations]
                if location is not None:
                    openings = [o for o in openings if o.facility_key == location]
                busy = availability.busy_for(entries, key, day)
                found.extend(availability.day_slots(openings, busy, rules, day, key))
            day += timedelta(days=1)
        return sorted(found)

    def find(self, reason: Reason, slot_key: str) -> Slot | None:
        """The slot a page posted back, if it is still free now."""
        parsed = parse_slot_key(slot_key)
        if parsed is None:
            return None
        provider, _, day, _ = parsed
        for slot in self.slots(reason, day, day, provider=provider):
            if slot.key == slot_key:
                return slot
        return None


def parse_slot_key(value: str) -> tuple[str, str | None, date, time] | None:
    """``provider.facility.YYYYMMDDHHMM`` -> its parts; None for anything else."""
    parts = value.split(".")
    if len(parts) != 3 or len(parts[2]) != 12 or not parts[2].isdigit():
        return None
    provider, facility, stamp = parts
    if not provider or len(provider) > 64 or len(facility) > 64:
        return None
    try:
        at = datetime.strptime(stamp, "%Y%m%d%H%M")
    except ValueError:
        return None
    return provider, None if facility == "-" else facility, at.date(), at.time()
