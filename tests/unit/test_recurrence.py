"""Tests for bridge.recurrence: expected dates worked out by hand from OpenEMR's PHP.

Sources: ``fetchEvents()`` / ``checkEvent()`` in ``library/appointments.inc.php``,
``__increment()`` / ``getTheNextAppointment()`` in ``library/encounter_events.inc.php``,
``Date_Calc::NWeekdayOfMonth()`` in ``.../PostCalendar/pnincludes/Date/Calc.php``.
``php_expand`` below transcribes those loops literally (no shortcuts); it is the oracle that
the module's jump-ahead gives the same dates as OpenEMR's one-by-one stepping.
"""

from __future__ import annotations

import random
import time
from calendar import monthrange
from datetime import date, datetime, timedelta

import phpserialize
import pytest

from bridge.recurrence import RecurrenceRule, occurrences, parse_rule

D = date.fromisoformat


def spec(**fields: object) -> bytes:
    """A pc_recurrspec as add_edit_event.php writes it (every value a PHP string)."""
    values: dict[str, object] = {
        "event_repeat_freq": "0",
        "event_repeat_freq_type": "0",
        "event_repeat_on_num": "1",
        "event_repeat_on_day": "0",
        "event_repeat_on_freq": "0",
        "exdate": "",
    }
    values.update(fields)
    return bytes(phpserialize.dumps({k: v for k, v in values.items() if v is not None}))


def expand(
    kind: int,
    raw: bytes | str,
    first: str,
    last: str | None,
    start: str,
    end: str,
    **kw: tuple[int, ...],
) -> list[str]:
    rule = parse_rule(kind, raw)
    found = occurrences(rule, D(first), D(last) if last else None, D(start), D(end), **kw)
    return [day.isoformat() for day in found]


# --- type 1: every N days / weeks / months / years / workdays --------------------------------

TYPE1 = [
    # id, freq, freq_type, first, last, window, expected
    (
        "every 2 days",
        "2",
        "0",
        "2024-01-01",
        "2024-01-09",
        ("2024-01-01", "2024-12-31"),
        ["2024-01-01", "2024-01-03", "2024-01-05", "2024-01-07", "2024-01-09"],
    ),
    (
        "weekly",
        "1",
        "1",
        "2024-01-03",
        "2024-12-31",
        ("2024-01-01", "2024-01-31"),
        ["2024-01-03", "2024-01-10", "2024-01-17", "2024-01-24", "2024-01-31"],
    ),
    (
        "every 2 weeks",
        "2",
        "1",
        "2024-01-03",
        "2024-12-31",
        ("2024-01-01", "2024-02-29"),
        ["2024-01-03", "2024-01-17", "2024-01-31", "2024-02-14", "2024-02-28"],
    ),
    # mktime(0,0,0,2,31,2023) = Mar 3, and __increment steps from that, not from Jan 31
    (
        "Jan 31 monthly drifts",
        "1",
        "2",
        "2023-01-31",
        "2023-12-31",
        ("2023-01-01", "2023-06-30"),
        ["2023-01-31", "2023-03-03", "2023-04-03", "2023-05-03", "2023-06-03"],
    ),
    (
        "Jan 31 monthly, leap year",
        "1",
        "2",
        "2024-01-31",
        "2024-12-31",
        ("2024-01-01", "2024-04-30"),
        ["2024-01-31", "2024-03-02", "2024-04-02"],
    ),
    (
        "Mar 31 monthly",
        "1",
        "2",
        "2023-03-31",
        "2023-12-31",
        ("2023-03-01", "2023-07-31"),
        ["2023-03-31", "2023-05-01", "2023-06-01", "2023-07-01"],
    ),
    (
        "Aug 31 every 6 months",
        "6",
        "2",
        "2023-08-31",
        "2026-12-31",
        ("2023-01-01", "2025-12-31"),
        ["2023-08-31", "2024-03-02", "2024-09-02", "2025-03-02", "2025-09-02"],
    ),
    # mktime(0,0,0,2,29,2025) = Mar 1 2025; from Mar 1 on it stays Mar 1, even in 2028
    (
        "Feb 29 yearly drifts",
        "1",
        "3",
        "2024-02-29",
        "2030-12-31",
        ("2024-01-01", "2028-12-31"),
        ["2024-02-29", "2025-03-01", "2026-03-01", "2027-03-01", "2028-03-01"],
    ),
    (
        "Feb 29 every 4 years",
        "4",
        "3",
        "2024-02-29",
        "2040-12-31",
        ("2024-01-01", "2036-12-31"),
        ["2024-02-29", "2028-02-29", "2032-02-29", "2036-02-29"],
    ),
    # 2024-01-04 is a Thursday. Friday + 1: Sat counted (+2), lands Sun = weekend_days[1] (+1)
    (
        "workdays across a weekend",
        "1",
        "4",
        "2024-01-04",
        "2024-12-31",
        ("2024-01-01", "2024-01-10"),
        ["2024-01-04", "2024-01-05", "2024-01-08", "2024-01-09", "2024-01-10"],
    ),
    (
        "every 2nd workday",
        "2",
        "4",
        "2024-01-04",
        "2024-12-31",
        ("2024-01-01", "2024-01-12"),
        ["2024-01-04", "2024-01-08", "2024-01-10", "2024-01-12"],
    ),
    # PHP quirk: it counts weekend days only among the first N days. Fri Jan 5 + 8: Sat 6, Sun 7,
    # Sat 13 -> +11 = Tue Jan 16 (a true 8th workday would be Wed Jan 17)
    (
        "8 workdays from a Friday",
        "8",
        "4",
        "2024-01-05",
        "2024-12-31",
        ("2024-01-01", "2024-01-31"),
        ["2024-01-05", "2024-01-16", "2024-01-26"],
    ),
    # the first date is pc_eventDate even on a Saturday; Sat + 1: Sun counted -> Mon
    (
        "workdays from a Saturday",
        "1",
        "4",
        "2024-01-06",
        "2024-12-31",
        ("2024-01-01", "2024-01-09"),
        ["2024-01-06", "2024-01-08", "2024-01-09"],
    ),
]


@pytest.mark.parametrize(
    ("freq", "freq_type", "first", "last", "window", "expected"),
    [case[1:] for case in TYPE1],
    ids=[case[0] for case in TYPE1],
)
def test_type_1(
    freq: str, freq_type: str, first: str, last: str, window: tuple[str, str], expected: list[str]
) -> None:
    raw = spec(event_repeat_freq=freq, event_repeat_freq_type=freq_type)
    assert expand(1, raw, first, last, *window) == expected


@pytest.mark.parametrize(
    ("weekend", "expected"),
    [
        # weekend_days "0": Fri + 1 = Sat is a workday; Sat + 1 counts Sun, lands Mon
        ((0,), ["2024-01-05", "2024-01-06", "2024-01-08", "2024-01-09"]),
        # "5,6": Fri is weekend_days[0]; Fri + 1 counts Sat -> +2 = Sun, a workday here
        ((5, 6), ["2024-01-05", "2024-01-07", "2024-01-08", "2024-01-09"]),
    ],
)
def test_workdays_follow_the_weekend_days_global(
    weekend: tuple[int, ...], expected: list[str]
) -> None:
    raw = spec(event_repeat_freq="1", event_repeat_freq_type="4")
    found = expand(
        1, raw, "2024-01-05", "2024-12-31", "2024-01-01", "2024-01-09", weekend_days=weekend
    )
    assert found == expected


# --- type 3: given weekdays (freq type 6, days 1 = Sunday .. 7 = Saturday) -------------------


@pytest.mark.parametrize(
    ("days", "first", "expected"),
    [
        ("2,4", "2024-01-01", ["2024-01-01", "2024-01-03", "2024-01-08", "2024-01-10"]),  # Mon, Wed
        (
            "1, 7",
            "2024-01-05",  # Sun, Sat: PHP's `==` reads " 7" as 7
            ["2024-01-05", "2024-01-06", "2024-01-07", "2024-01-13", "2024-01-14"],
        ),
        (3, "2024-01-02", ["2024-01-02", "2024-01-09"]),  # an int: Tuesday only
        # a first date off the list still counts (fetchEvents starts at pc_eventDate)
        ("2", "2024-01-03", ["2024-01-03", "2024-01-08"]),
    ],
)
def test_type_3_given_weekdays(days: object, first: str, expected: list[str]) -> None:
    raw = spec(event_repeat_freq=days, event_repeat_freq_type="6")
    assert expand(3, raw, first, "2024-12-31", "2024-01-01", "2024-01-14") == expected


def test_type_3_rule_shape() -> None:
    rule = parse_rule("3", spec(event_repeat_freq="2,4,6", event_repeat_freq_type="6"))
    assert (rule.kind, rule.freq_type, rule.on_day) == (3, 6, frozenset({1, 3, 5}))


def test_type_1_and_3_share_one_loop() -> None:
    # fetchEvents handles case '1' and '3' alike and __increment dispatches on freq_type only
    raw = spec(event_repeat_freq="2", event_repeat_freq_type="6")
    assert expand(1, raw, "2024-01-01", "2024-12-31", "2024-01-01", "2024-01-14") == [
        "2024-01-01",
        "2024-01-08",
    ]


# --- type 2: nth weekday every N months --------------------------------------------------------


def type2(freq: str, num: str, day: str, flag: bool = True) -> bytes:
    return spec(
        event_repeat_on_freq=freq,
        event_repeat_on_num=num,
        event_repeat_on_day=day,
        rt2_pf_flag="1" if flag else None,
    )


TYPE2 = [
    (
        "2nd Tuesday every 2 months",
        type2("2", "2", "2"),
        "2024-01-09",
        ("2024-01-01", "2024-06-30"),
        ["2024-01-09", "2024-03-12", "2024-05-14"],
    ),
    (
        "last Friday monthly",
        type2("1", "5", "5"),
        "2024-01-26",
        ("2024-01-01", "2024-05-31"),
        ["2024-01-26", "2024-02-23", "2024-03-29", "2024-04-26", "2024-05-31"],
    ),
    # 5 = last: Jan 2024 has a 5th Tuesday (30th); Feb does not, NWeekdayOfMonth(5) = -1 and
    # fetchEvents retries with 4 (27th)
    (
        "5th Tuesday or the 4th",
        type2("1", "5", "2"),
        "2024-01-30",
        ("2024-01-01", "2024-04-30"),
        ["2024-01-30", "2024-02-27", "2024-03-26", "2024-04-30"],
    ),
    (
        "1st Sunday quarterly",
        type2("3", "1", "0"),
        "2024-01-07",
        ("2024-01-01", "2024-12-31"),
        ["2024-01-07", "2024-04-07", "2024-07-07", "2024-10-06"],
    ),
    # a row from before the 2016 rt2_pf_flag fix keeps nd = 31: mktime(0,0,0,2,31,2024) = Mar 2,
    # so February is skipped
    (
        "old row on the 31st skips a month",
        type2("1", "5", "3", flag=False),
        "2024-01-31",
        ("2024-01-01", "2024-04-30"),
        ["2024-01-31", "2024-03-27", "2024-04-24"],
    ),
    (
        "same row with the flag",
        type2("1", "5", "3"),
        "2024-01-31",
        ("2024-01-01", "2024-04-30"),
        ["2024-01-31", "2024-02-28", "2024-03-27", "2024-04-24"],
    ),
    # fetchEvents never compares with pc_eventDate: the 2nd Tuesday of the first month counts
    # even when it is before the first date
    (
        "first month before pc_eventDate",
        type2("1", "2", "2"),
        "2024-01-20",
        ("2024-01-01", "2024-02-29"),
        ["2024-01-09", "2024-02-13"],
    ),
]


@pytest.mark.parametrize(
    ("raw", "first", "window", "expected"),
    [case[1:] for case in TYPE2],
    ids=[case[0] for case in TYPE2],
)
def test_type_2(raw: bytes, first: str, window: tuple[str, str], expected: list[str]) -> None:
    assert expand(2, raw, first, "2024-12-31", *window) == expected


def test_type_2_nth_above_5_also_means_last() -> None:
    rule = parse_rule(2, type2("1", "9", "2"))
    assert rule.on_num == 5


# --- exdate, end date, window -------------------------------------------------------------------


def test_exdates_in_both_forms_with_blanks() -> None:
    # YYYY-MM-DD is honoured on purpose although OpenEMR's `==` never matches it (module doc)
    raw = spec(
        event_repeat_freq="1",
        event_repeat_freq_type="0",
        exdate=" 20240102, 2024-01-04 ,,  ,nonsense,20240230,2024-0105",
    )
    assert expand(1, raw, "2024-01-01", "2024-01-06", "2024-01-01", "2024-01-31") == [
        "2024-01-01",
        "2024-01-03",
        "2024-01-05",
        "2024-01-06",
    ]


def test_exdate_as_int_and_missing() -> None:
    with_int = spec(event_repeat_freq="1", event_repeat_freq_type="0", exdate=20240102)
    without = spec(event_repeat_freq="1", event_repeat_freq_type="0", exdate=None)
    assert parse_rule(1, with_int).exdates == frozenset({D("2024-01-02")})
    assert parse_rule(1, without).exdates == frozenset()


def test_exdate_may_remove_the_first_date() -> None:
    raw = spec(event_repeat_freq="1", event_repeat_freq_type="1", exdate="20240101")
    assert expand(1, raw, "2024-01-01", "2024-12-31", "2024-01-01", "2024-01-15") == [
        "2024-01-08",
        "2024-01-15",
    ]


WEEKLY = spec(event_repeat_freq="1", event_repeat_freq_type="1")


@pytest.mark.parametrize("last", [None, "0000-00-00", " 0000-00-00 "])
def test_repeating_series_without_end_date_lists_nothing(last: str | None) -> None:
    # fetchEvents: stopDate = min(pc_endDate, to_date) compared as strings; '0000-00-00' or
    # NULL stops before the first date, so OpenEMR shows not even pc_eventDate
    rule = parse_rule(1, WEEKLY)
    assert occurrences(rule, D("2024-01-01"), last, D("2024-01-01"), D("2024-12-31")) == []
    assert (
        occurrences(
            parse_rule(2, type2("1", "1", "1")),
            D("2024-01-01"),
            last,
            D("2024-01-01"),
            D("2024-12-31"),
        )
        == []
    )


@pytest.mark.parametrize("last", [None, "0000-00-00", D("2023-01-01")])
def test_single_appointment_ignores_end_date(last: date | str | None) -> None:
    rule = parse_rule(0, None)
    assert occurrences(rule, D("2024-03-05"), last, D("2024-03-01"), D("2024-03-31")) == [
        D("2024-03-05")
    ]
    assert occurrences(rule, D("2024-04-05"), last, D("2024-03-01"), D("2024-03-31")) == []


def test_end_date_as_string_or_datetime() -> None:
    rule = parse_rule(1, WEEKLY)
    for last in ("2024-01-15", datetime(2024, 1, 15, 0, 0)):
        found = occurrences(rule, D("2024-01-01"), last, D("2024-01-01"), D("2024-12-31"))
        assert found == [D("2024-01-01"), D("2024-01-08"), D("2024-01-15")]


@pytest.mark.parametrize(
    ("last", "window", "expected"),
    [
        ("2024-12-31", ("2024-03-10", "2024-03-12"), ["2024-03-10", "2024-03-11", "2024-03-12"]),
        ("2024-03-11", ("2024-03-10", "2024-03-12"), ["2024-03-10", "2024-03-11"]),  # ends inside
        ("2024-12-31", ("2023-12-30", "2024-01-02"), ["2024-01-01", "2024-01-02"]),  # starts inside
        ("2024-12-31", ("2023-01-01", "2023-12-31"), []),  # window before the series
        ("2024-02-01", ("2024-03-01", "2024-03-31"), []),  # window after the end
        ("2024-12-31", ("2024-05-05", "2024-05-05"), ["2024-05-05"]),  # one-day window
    ],
)
def test_window_clipping(last: str, window: tuple[str, str], expected: list[str]) -> None:
    daily = spec(event_repeat_freq="1", event_repeat_freq_type="0")
    assert expand(1, daily, "2024-01-01", last, *window) == expected


TEN_YEARS = [
    (
        "weekly",
        1,
        spec(event_repeat_freq="1", event_repeat_freq_type="1"),
        "2014-01-06",
        ["2024-06-03", "2024-06-10", "2024-06-17", "2024-06-24"],
    ),
    # Jan 31 2014 -> mktime(2, 31, 2014) = Mar 3 2014, and the 3rd ever after
    (
        "monthly from the 31st",
        1,
        spec(event_repeat_freq="1", event_repeat_freq_type="2"),
        "2014-01-31",
        ["2024-06-03"],
    ),
    (
        "every 3rd day",
        1,
        spec(event_repeat_freq="3", event_repeat_freq_type="0"),
        "2014-01-01",
        # 2014-01-01 + 3k: 2024-06-01 is day 3804 = 3 * 1268
        [
            "2024-06-01",
            "2024-06-04",
            "2024-06-07",
            "2024-06-10",
            "2024-06-13",
            "2024-06-16",
            "2024-06-19",
            "2024-06-22",
            "2024-06-25",
            "2024-06-28",
        ],
    ),
    ("2nd Monday", 2, type2("1", "2", "1"), "2014-01-13", ["2024-06-10"]),
    (
        "Tue and Thu",
        3,
        spec(event_repeat_freq="3,5", event_repeat_freq_type="6"),
        "2014-01-07",
        [
            "2024-06-04",
            "2024-06-06",
            "2024-06-11",
            "2024-06-13",
            "2024-06-18",
            "2024-06-20",
            "2024-06-25",
            "2024-06-27",
        ],
    ),
]


@pytest.mark.parametrize(
    ("kind", "raw", "first", "expected"),
    [case[1:] for case in TEN_YEARS],
    ids=[case[0] for case in TEN_YEARS],
)
def test_series_that_started_ten_years_ago(
    kind: int, raw: bytes, first: str, expected: list[str]
) -> None:
    assert expand(kind, raw, first, "2030-12-31", "2024-06-01", "2024-06-30") == expected


@pytest.mark.timeout(5)
def test_old_daily_series_is_not_walked_day_by_day() -> None:
    rule = parse_rule(1, spec(event_repeat_freq="1", event_repeat_freq_type="4"))
    started = time.perf_counter()
    for _ in range(1000):
        found = occurrences(
            rule, D("0001-01-01"), D("9999-12-31"), D("2024-06-01"), D("2024-06-07")
        )
    assert [d.isoformat() for d in found] == [
        "2024-06-03",
        "2024-06-04",
        "2024-06-05",
        "2024-06-06",
        "2024-06-07",
    ]
    assert time.perf_counter() - started < 2  # about 10 ms; 740,000 steps each without jumps


def test_open_ended_window_stops_at_year_9999() -> None:
    rule = parse_rule(1, spec(event_repeat_freq="1", event_repeat_freq_type="3"))
    found = occurrences(rule, D("9990-06-01"), D("9999-12-31"), D("9995-01-01"), D("9999-12-31"))
    assert found[-1] == D("9999-06-01") and len(found) == 5


# --- the jumps against a literal transcription of OpenEMR's loops --------------------------------


def php_w(day: date) -> int:
    return day.isoweekday() % 7


def mktime(year: int, month: int, day: int) -> date:
    year, month = year + (month - 1) // 12, (month - 1) % 12 + 1
    return date(year, month, 1) + timedelta(days=day - 1)


def php_increment(day: date, rule: RecurrenceRule, weekend: tuple[int, ...]) -> date:
    f, t = rule.freq, rule.freq_type
    if t == 6:  # getTheNextAppointment(): earliest strtotime("next <day>")
        return min(
            next(day + timedelta(k) for k in range(1, 8) if php_w(day + timedelta(k)) == w)
            for w in rule.on_day
        )
    if t == 4:
        orig = f
        for daycount in range(1, orig + 1):
            if php_w(day + timedelta(daycount)) in weekend:
                f += 1
        landing = php_w(day + timedelta(f))
        if len(weekend) == 2:
            if landing == weekend[0]:
                f += 2
            elif landing == weekend[1]:
                f += 1
        elif len(weekend) == 1 and landing == weekend[0]:
            f += 1
        return day + timedelta(f)
    return {
        0: lambda: day + timedelta(f),
        1: lambda: day + timedelta(7 * f),
        2: lambda: mktime(day.year, day.month + f, day.day),
        3: lambda: mktime(day.year + f, day.month, day.day),
    }[t]()


def n_weekday_of_month(n: int, dow: int, month: int, year: int) -> date | int:
    dow1 = php_w(date(year, month, 1) + timedelta((n - 1) * 7))
    wdate = (n - 1) * 7 + 1 + (7 + dow - dow1) % 7
    return -1 if wdate > monthrange(year, month)[1] else date(year, month, wdate)


def php_expand(
    rule: RecurrenceRule,
    first: date,
    last: date,
    start: date,
    stop_at: date,
    weekend: tuple[int, ...],
) -> list[date]:
    """fetchEvents() for one row, no shortcuts."""
    stop, found = min(last, stop_at), []
    if rule.kind == 2:
        (dow,) = rule.on_day
        y, m, nd = first.year, first.month, 1 if rule.rt2_pf_flag else first.day
        while (y, m) < (start.year, start.month):
            nxt = mktime(y, m + rule.freq, nd)
            y, m, nd = nxt.year, nxt.month, nxt.day
        while (y, m) <= (stop.year, stop.month):
            dnum = rule.on_num
            while (occurrence := n_weekday_of_month(dnum, dow, m, y)) == -1:
                dnum -= 1
            assert isinstance(occurrence, date)
            if start <= occurrence <= stop and occurrence not in rule.exdates:
                found.append(occurrence)
            nxt = mktime(y, m + rule.freq, nd)
            y, m, nd = nxt.year, nxt.month, nxt.day
        return found
    occurrence = first
    while occurrence < start:
        occurrence = php_increment(occurrence, rule, weekend)
    while occurrence <= stop:
        if occurrence not in rule.exdates:
            found.append(occurrence)
        occurrence = php_increment(occurrence, rule, weekend)
    return found


def random_case(rng: random.Random) -> tuple[RecurrenceRule, date, date, date, date]:
    kind = rng.choice([1, 1, 1, 2, 3])
    first = date(rng.randint(1995, 2030), rng.randint(1, 12), 1)
    first += timedelta(
        rng.choice(
            [0, rng.randint(0, 30), monthrange(first.year, first.month)[1] - rng.randint(1, 3)]
        )
    )
    if kind == 2:
        raw = type2(
            str(rng.randint(1, 7)),
            str(rng.randint(1, 5)),
            str(rng.randint(0, 6)),
            flag=rng.random() < 0.5,
        )
    elif kind == 3 or rng.random() < 0.1:
        days = rng.sample(range(1, 8), rng.randint(1, 3))
        raw = spec(event_repeat_freq=",".join(map(str, days)), event_repeat_freq_type="6")
    else:
        freq_type = rng.choice([0, 1, 2, 3, 4])
        freq = rng.randint(1, {0: 40, 1: 5, 2: 13, 3: 4, 4: 12}[freq_type])
        raw = spec(event_repeat_freq=str(freq), event_repeat_freq_type=str(freq_type))
    rule = parse_rule(kind, raw)
    start = first + timedelta(rng.randint(-60, 2500))
    end = start + timedelta(rng.randint(0, 90))
    exdates = frozenset(start + timedelta(rng.randint(0, 90)) for _ in range(rng.randint(0, 4)))
    rule = RecurrenceRule(
        rule.kind, rule.freq, rule.freq_type, rule.on_num, rule.on_day, exdates, rule.rt2_pf_flag
    )
    return rule, first, first + timedelta(rng.randint(0, 4000)), start, end


@pytest.mark.parametrize("seed", range(4))
def test_jumps_match_openemr_stepping(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(400):
        rule, first, last, start, end = random_case(rng)
        weekend = rng.choice([(6, 0), (0,), (5, 6), (6,)])
        expected = php_expand(rule, first, last, start, end, weekend)
        assert occurrences(rule, first, last, start, end, weekend_days=weekend) == expected, (
            rule,
            first,
            last,
            start,
            end,
            weekend,
        )


# --- parsing -----------------------------------------------------------------------------------


def test_real_openemr_spec_text() -> None:
    # as InsertEvent() stores it: serialize() of add_edit_event.php's $recurrspec, as text
    raw = (
        'a:6:{s:17:"event_repeat_freq";s:1:"2";s:22:"event_repeat_freq_type";s:1:"1";'
        's:19:"event_repeat_on_num";s:1:"1";s:19:"event_repeat_on_day";s:1:"0";'
        's:20:"event_repeat_on_freq";s:1:"0";s:6:"exdate";s:8:"20240115";}'
    )
    rule = parse_rule("1", raw)
    assert (rule.kind, rule.freq, rule.freq_type) == (1, 2, 1)
    assert rule.exdates == frozenset({D("2024-01-15")})


def test_integer_values_are_accepted() -> None:
    raw = phpserialize.dumps(
        {
            "event_repeat_on_freq": 1,
            "event_repeat_on_num": 5,
            "event_repeat_on_day": 0,
            "rt2_pf_flag": 1,
        }
    )
    rule = parse_rule(2, raw)
    assert (rule.freq, rule.on_num, rule.on_day, rule.rt2_pf_flag) == (1, 5, frozenset({0}), True)


def test_single_appointment_never_reads_its_spec() -> None:
    # fetchEvents case '0' does not unserialize pc_recurrspec
    assert parse_rule(0, "garbage").kind == 0
    assert parse_rule("0", None).kind == 0


VALID = spec(event_repeat_freq="1", event_repeat_freq_type="1")
NESTED = b"a:1:{i:0;" * 5000

MALFORMED = [
    ("NULL spec", 1, None, "pc_recurrspec is NULL"),
    ("empty spec", 1, "", "not PHP serialize"),
    ("garbage", 1, "hello world", "not PHP serialize"),
    ("truncated", 1, VALID[:50], "not PHP serialize"),
    ("wrong string length", 1, VALID.replace(b's:1:"1"', b's:5:"1"', 1), "not PHP serialize"),
    ("PHP object", 1, b'a:1:{s:1:"x";O:8:"stdClass":0:{}}', "not PHP serialize"),
    ("array used as key", 1, b"a:1:{a:0:{}i:1;}", "not PHP serialize"),
    ("absurdly nested", 1, NESTED, "not PHP serialize"),
    ("a string, not an array", 1, b's:3:"abc";', "holds a str, expected a PHP array"),
    ("spec of wrong type", 1, 12345, "pc_recurrspec is int"),
    (
        "no freq",
        1,
        spec(event_repeat_freq=None, event_repeat_freq_type="1"),
        "event_repeat_freq=None: expected an integer >= 1",
    ),
    (
        "freq 0 (checkEvent hides it)",
        1,
        spec(event_repeat_freq="0", event_repeat_freq_type="1"),
        "event_repeat_freq='0': expected an integer >= 1",
    ),
    ("negative freq", 1, spec(event_repeat_freq="-2", event_repeat_freq_type="0"), ">= 1"),
    (
        "freq not a number",
        1,
        spec(event_repeat_freq="abc", event_repeat_freq_type="0"),
        "pc_recurrspec event_repeat_freq='abc': expected an integer",
    ),
    (
        "freq a float",
        1,
        phpserialize.dumps({"event_repeat_freq": 1.5, "event_repeat_freq_type": 0}),
        "expected an integer",
    ),
    (
        "freq an array",
        1,
        phpserialize.dumps({"event_repeat_freq": {0: 1}, "event_repeat_freq_type": 0}),
        "expected an integer",
    ),
    (
        "freq a bool",
        1,
        phpserialize.dumps({"event_repeat_freq": True, "event_repeat_freq_type": 0}),
        "expected an integer",
    ),
    (
        "no freq type",
        1,
        spec(event_repeat_freq="1", event_repeat_freq_type=None),
        "event_repeat_freq_type=None",
    ),
    (
        "empty freq type",
        1,
        spec(event_repeat_freq="1", event_repeat_freq_type=""),
        "expected an integer",
    ),
    (
        "freq type 5",
        1,
        spec(event_repeat_freq="1", event_repeat_freq_type="5"),
        "event_repeat_freq_type=5",
    ),
    (
        "freq type 9",
        1,
        spec(event_repeat_freq="1", event_repeat_freq_type="9"),
        "expected an integer 0..6",
    ),
    (
        "weekday 0 and 8",
        3,
        spec(event_repeat_freq="0,8", event_repeat_freq_type="6"),
        "expected days 1..7",
    ),
    (
        "blank weekday",
        3,
        spec(event_repeat_freq="2,,4", event_repeat_freq_type="6"),
        "expected days 1..7",
    ),
    (
        "no weekdays",
        3,
        spec(event_repeat_freq="", event_repeat_freq_type="6"),
        "expected days 1..7",
    ),
    ("type 2 freq 0", 2, type2("0", "1", "1"), "event_repeat_on_freq"),
    ("type 2 nth 0", 2, type2("1", "0", "1"), "event_repeat_on_num"),
    (
        "type 2 weekday 7",
        2,
        type2("1", "1", "7"),
        "event_repeat_on_day='7': expected an integer 0..6",
    ),
    (
        "type 2 no weekday",
        2,
        spec(event_repeat_on_freq="1", event_repeat_on_num="1", event_repeat_on_day=None),
        "event_repeat_on_day=None",
    ),
    (
        "exdate an array",
        1,
        phpserialize.dumps(
            {"event_repeat_freq": "1", "event_repeat_freq_type": "1", "exdate": {0: "20240101"}}
        ),
        "exdate",
    ),
    ("recurrtype 4", 4, VALID, "pc_recurrtype=4"),
    ("recurrtype -1", "-1", VALID, "pc_recurrtype='-1'"),
    ("recurrtype text", "weekly", VALID, "pc_recurrtype='weekly'"),
    ("recurrtype NULL", None, VALID, "pc_recurrtype=None"),
    ("recurrtype bool", True, VALID, "pc_recurrtype=True"),
    ("recurrtype float", 1.0, VALID, "pc_recurrtype=1.0"),
]


@pytest.mark.parametrize(
    ("kind", "raw", "message"),
    [case[1:] for case in MALFORMED],
    ids=[case[0] for case in MALFORMED],
)
def test_malformed_input_raises_value_error(kind: object, raw: object, message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        parse_rule(kind, raw)  # type: ignore[arg-type]
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    "fields",
    [
        {"freq": 0},  # would never move on
        {"freq_type": 5},
        {"freq_type": 6},  # given weekdays, but none given
        {"on_day": frozenset({7})},
        {"kind": 2, "on_num": 6, "on_day": frozenset({1})},
        {"kind": 2, "on_num": 1, "on_day": frozenset({1, 2})},
        {"kind": 9},
    ],
)
def test_rule_checks_itself(fields: dict[str, object]) -> None:
    values: dict[str, object] = {
        "kind": 1,
        "freq": 1,
        "freq_type": 0,
        "on_num": 0,
        "on_day": frozenset(),
        "exdates": frozenset(),
    }
    with pytest.raises(ValueError, match="inconsistent recurrence rule: RecurrenceRule"):
        RecurrenceRule(**{**values, **fields})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("last", "weekend"),
    [("next week", (6, 0)), ("2024-12-31", (7,)), ("2024-12-31", ()), (20241231, (6, 0))],
)
def test_bad_arguments_to_occurrences(last: object, weekend: tuple[int, ...]) -> None:
    with pytest.raises(ValueError):
        occurrences(
            parse_rule(1, WEEKLY),
            D("2024-01-01"),
            last,  # type: ignore[arg-type]
            D("2024-01-01"),
            D("2024-01-31"),
            weekend_days=weekend,
        )
