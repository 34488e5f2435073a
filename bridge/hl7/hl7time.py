"""HL7 date/time values (DTM / TS): ``YYYY[MM[DD[HH[MM[SS[.S...]]]]]][+/-ZZZZ]``.

Real feeds add trailing spaces (fixture 14: ``200803061000 ``), offsets (``+0215``) and
sometimes only a date. A value without an offset is clinic-local time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

_DTM = re.compile(r"^(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:\.(\d{1,4}))?([+-]\d{4})?$")


@dataclass(frozen=True, slots=True)
class Hl7Time:
    """A parsed value: ``moment`` is naive (local) unless the value carried an offset;
    ``has_time`` is False for a date alone (an all-day appointment)."""

    moment: datetime
    has_time: bool

    def to_utc(self, zone: ZoneInfo) -> datetime:
        """The instant, reading a value without offset as wall time in ``zone``."""
        if self.moment.tzinfo is None:
            return self.moment.replace(tzinfo=zone).astimezone(UTC)
        return self.moment.astimezone(UTC)


def parse_dtm(text: str) -> Hl7Time | None:
    """Parse a DTM with at least a date (year-only or month-only values are None)."""
    match = _DTM.match(text.strip())
    if not match:
        return None
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    if month is None or day is None:
        return None
    try:
        moment = datetime(
            int(year),
            int(month),
            int(day),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            int((fraction or "0").ljust(6, "0")[:6]),
        )
    except ValueError:
        return None
    if offset:
        hours, minutes = int(offset[1:3]), int(offset[3:5])
        if hours > 14 or minutes > 59:
            return None
        delta = timedelta(hours=hours, minutes=minutes)
        moment = moment.replace(tzinfo=timezone(-delta if offset[0] == "-" else delta))
    return Hl7Time(moment, hour is not None)


def format_dtm(instant: datetime, zone: ZoneInfo, *, seconds: bool = True) -> str:
    """An aware instant as HL7 local time with its offset: ``20260327093000+0100``."""
    local = instant.astimezone(zone)
    return local.strftime("%Y%m%d%H%M%S%z" if seconds else "%Y%m%d%H%M%z")
