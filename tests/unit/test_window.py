"""The sending window: clinic-local hours, UTC instants, end_hour 24 and DST-change days.

2026 DST changes: Europe/Rome on Sun 29 March (02:00 CET -> 03:00 CEST) and Sun 25 October
(03:00 CEST -> 02:00 CET); America/New_York on Sun 8 March (02:00 EST -> 03:00 EDT) and Sun
1 November (02:00 EDT -> 01:00 EST).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bridge.window import SendingWindow

ROME = ZoneInfo("Europe/Rome")
NEW_YORK = ZoneInfo("America/New_York")

DAY = SendingWindow(9, 19, ROME)
EVENING = SendingWindow(20, 24, ROME)
ALL_DAY = SendingWindow(0, 24, ROME)


def utc(month: int, day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, second, tzinfo=UTC)


CONTAINS = [
    # id, window, instant, inside
    ("CET before open", DAY, utc(3, 27, 7, 59), False),
    ("CET open", DAY, utc(3, 27, 8), True),
    ("CET last second", DAY, utc(3, 27, 17, 59, 59), True),
    ("CET close", DAY, utc(3, 27, 18), False),
    ("CEST open is an hour earlier in UTC", DAY, utc(3, 30, 7), True),
    ("CEST before open", DAY, utc(3, 30, 6, 59), False),
    ("CEST close", DAY, utc(3, 30, 17), False),
    ("DST day open", DAY, utc(3, 29, 7), True),
    ("DST day 08:59 local", DAY, utc(3, 29, 6, 59), False),
    ("DST day 18:59 local", DAY, utc(3, 29, 16, 59), True),
    ("end 24 last minute", EVENING, utc(3, 27, 22, 59), True),
    ("end 24 midnight is outside", EVENING, utc(3, 27, 23), False),
    ("end 24 just after midnight", EVENING, utc(3, 27, 23, 30), False),
    ("end 24 before open", EVENING, utc(3, 27, 18, 59), False),
    ("all day at midnight", ALL_DAY, utc(3, 27, 23), True),
    ("all day on the short day", ALL_DAY, utc(3, 29, 1, 30), True),
    ("new york spring day open", SendingWindow(9, 19, NEW_YORK), utc(3, 8, 13), True),
    ("new york spring day 08:00 EDT", SendingWindow(9, 19, NEW_YORK), utc(3, 8, 12), False),
    # 01:30 EST, the second 01:30 of the autumn day, is still inside 01:00-03:00
    ("new york repeated hour", SendingWindow(1, 3, NEW_YORK), utc(11, 1, 6, 30), True),
]


@pytest.mark.parametrize(
    ("window", "instant", "inside"),
    [row[1:] for row in CONTAINS],
    ids=[row[0] for row in CONTAINS],
)
def test_contains(window: SendingWindow, instant: datetime, inside: bool) -> None:
    assert window.contains(instant) is inside


NEXT_OPEN = [
    # id, window, instant, expected
    ("before open", DAY, utc(3, 27, 6), utc(3, 27, 8)),
    ("inside stays", DAY, utc(3, 27, 12, 34), utc(3, 27, 12, 34)),
    ("at close goes to tomorrow", DAY, utc(3, 27, 18), utc(3, 28, 8)),
    ("evening goes to tomorrow", DAY, utc(3, 27, 21), utc(3, 28, 8)),
    ("night before DST opens at 07:00 UTC", DAY, utc(3, 28, 20), utc(3, 29, 7)),
    ("night before autumn change", DAY, utc(10, 24, 20), utc(10, 25, 8)),
    ("after local midnight", DAY, utc(3, 27, 23, 30), utc(3, 28, 8)),
    ("end 24 after midnight", EVENING, utc(3, 27, 23), utc(3, 28, 19)),
    ("end 24 inside", EVENING, utc(3, 27, 22, 30), utc(3, 27, 22, 30)),
    ("end 24 into CEST", EVENING, utc(3, 29, 8), utc(3, 29, 18)),
    ("new york spring change", SendingWindow(9, 19, NEW_YORK), utc(3, 8, 2), utc(3, 8, 13)),
    ("new york autumn change", SendingWindow(9, 19, NEW_YORK), utc(11, 1, 2), utc(11, 1, 14)),
]


@pytest.mark.parametrize(
    ("window", "instant", "expected"),
    [row[1:] for row in NEXT_OPEN],
    ids=[row[0] for row in NEXT_OPEN],
)
def test_next_open(window: SendingWindow, instant: datetime, expected: datetime) -> None:
    result = window.next_open(instant)
    assert result == expected
    assert window.contains(result)


LATEST_BEFORE = [
    # id, window, instant, expected
    ("inside stays", DAY, utc(3, 27, 12), utc(3, 27, 12)),
    ("after close: a minute before close", DAY, utc(3, 27, 20), utc(3, 27, 17, 59)),
    ("at close", DAY, utc(3, 27, 18), utc(3, 27, 17, 59)),
    ("before open: yesterday's last minute", DAY, utc(3, 28, 6), utc(3, 27, 17, 59)),
    ("DST day before open: CET last minute", DAY, utc(3, 29, 6), utc(3, 28, 17, 59)),
    ("DST day after close", DAY, utc(3, 29, 20), utc(3, 29, 16, 59)),
    ("end 24 before open", EVENING, utc(3, 28, 10), utc(3, 27, 22, 59)),
    ("end 24 after local midnight", EVENING, utc(3, 27, 23, 30), utc(3, 27, 22, 59)),
    ("end 24 on the short day", EVENING, utc(3, 30, 10), utc(3, 29, 21, 59)),
]


@pytest.mark.parametrize(
    ("window", "instant", "expected"),
    [row[1:] for row in LATEST_BEFORE],
    ids=[row[0] for row in LATEST_BEFORE],
)
def test_latest_before(window: SendingWindow, instant: datetime, expected: datetime) -> None:
    result = window.latest_before(instant)
    assert result == expected
    assert result <= instant
    assert window.contains(result)


OPEN_CLOSE = [
    # id, window, local day, opens (UTC), closes (UTC), length
    ("rome day before DST", DAY, date(2026, 3, 28), utc(3, 28, 8), utc(3, 28, 18), 10),
    ("rome spring DST day", DAY, date(2026, 3, 29), utc(3, 29, 7), utc(3, 29, 17), 10),
    ("rome autumn DST day", DAY, date(2026, 10, 25), utc(10, 25, 8), utc(10, 25, 18), 10),
    ("rome all day, spring", ALL_DAY, date(2026, 3, 29), utc(3, 28, 23), utc(3, 29, 22), 23),
    ("rome all day, autumn", ALL_DAY, date(2026, 10, 25), utc(10, 24, 22), utc(10, 25, 23), 25),
    # 02:00 does not exist on 29 March: the window opens at 03:00 CEST, an hour short
    (
        "rome hour in the gap",
        SendingWindow(2, 4, ROME),
        date(2026, 3, 29),
        utc(3, 29, 1),
        utc(3, 29, 2),
        1,
    ),
    (
        "new york spring DST day",
        SendingWindow(1, 3, NEW_YORK),
        date(2026, 3, 8),
        utc(3, 8, 6),
        utc(3, 8, 7),
        1,
    ),
    # 01:00 happens twice on 1 November: the first (EDT) reading opens, 03:00 EST closes
    (
        "new york autumn DST day",
        SendingWindow(1, 3, NEW_YORK),
        date(2026, 11, 1),
        utc(11, 1, 5),
        utc(11, 1, 8),
        3,
    ),
    (
        "new york end 24",
        SendingWindow(20, 24, NEW_YORK),
        date(2026, 3, 7),
        utc(3, 8, 1),
        utc(3, 8, 5),
        4,
    ),
]


@pytest.mark.parametrize(
    ("window", "day", "opens", "closes", "hours"),
    [row[1:] for row in OPEN_CLOSE],
    ids=[row[0] for row in OPEN_CLOSE],
)
def test_opens_and_closes(
    window: SendingWindow, day: date, opens: datetime, closes: datetime, hours: int
) -> None:
    assert (window.opens(day), window.closes(day)) == (opens, closes)
    assert closes - opens == timedelta(hours=hours)


def test_naive_instant_is_taken_as_utc() -> None:
    naive = datetime(2026, 3, 27, 12, 0)
    assert DAY.contains(naive) is True
    assert DAY.next_open(naive) == utc(3, 27, 12)


def test_results_are_utc_for_local_input() -> None:
    local = datetime(2026, 3, 27, 12, 0, tzinfo=ROME)
    assert DAY.next_open(local).tzinfo is UTC
    assert DAY.latest_before(local).tzinfo is UTC
