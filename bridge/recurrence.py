"""Expand OpenEMR repeating appointments into dates, exactly as OpenEMR lists them.

Mirrors ``fetchEvents()`` in ``library/appointments.inc.php`` (behind ``fetchAppointments()``: the
appointment report, flow board, patient pages) and ``__increment()`` in
``library/encounter_events.inc.php``, read at master (8.2.0-dev); older releases carry the same
loops (with Sat/Sun hard-coded before the ``weekend_days`` global). What surprises:

- Types 1 and 3 are one loop, dispatched on ``event_repeat_freq_type``: the first date is
  ``pc_eventDate`` even if it does not fit the pattern, each next one is ``__increment()`` of the
  *previous* one. Months and years go through PHP ``mktime()``, so overflow carries and the drift
  stays: Jan 31 monthly gives Jan 31, Mar 3, Apr 3 ...; Feb 29 2024 yearly gives Mar 1 from 2025.
- Workdays (freq type 4) add N, plus one per weekend day among the N days after the previous date,
  plus 2 / 1 on landing on the first / second of the ``weekend_days`` global (default ``6,0``).
  Not a true business-day count: 8 workdays after a Friday is a Tuesday.
- Type 3 is freq type 6 (``add_edit_event.php``): ``event_repeat_freq`` lists days 1 = Sunday ..
  7 = Saturday; the next date is the nearest ``strtotime("next <day>")``
  (``getTheNextAppointment()``), i.e. every week on those days.
- Type 2 walks months from ``pc_eventDate`` by ``mktime(m + N, nd, y)``, ``nd = 1`` if the spec has
  ``rt2_pf_flag`` (written since 2016), else the first date's day: old rows on the 29th-31st skip
  months. Per month ``Date_Calc::NWeekdayOfMonth()``; on -1 (no such nth) fetchEvents retries with
  n - 1, so 5 means "last". A date before ``pc_eventDate`` in the first month counts too.
- fetchEvents stops at ``min(pc_endDate, to_date)`` compared as strings: a repeating row whose
  ``pc_endDate`` is NULL or ``'0000-00-00'`` lists *nothing*, not even its first date (so does the
  calendar's ``calculateEvents()``; ``add_edit_event.php`` demands an end date for repeats).
- ``checkEvent()`` hides a series whose spec does not unserialize or whose frequency / nth is
  PHP-empty (missing, ``""``, ``"0"``); other values make PHP loop for ever or die (negative
  frequency, freq type 5 or 7+, non-numbers). :func:`parse_rule` raises ``ValueError`` for all.
- ``exdate``: fetchEvents tests ``str_replace('-', '', $date) == $entry``; PHP's ``==`` lets blanks
  around an entry match, and non-dates never match (ignored here). Difference on purpose:
  ``AppointmentService::deleteAppointment()`` (multi-provider, "this occurrence") writes YYYY-MM-DD,
  which OpenEMR never matches, so it keeps showing the deleted date; we honour the deletion.
- The calendar view (``calculateEvents()`` in ``pnuserapi.php``) expands type 2 only within the
  displayed year (``while ($ny <= $cy)``); otherwise its loops match fetchEvents.
"""

from __future__ import annotations

import re
from calendar import monthrange
from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache, partial

import phpserialize

# event_repeat_freq_type: REPEAT_EVERY_DAY .. REPEAT_EVERY_WORK_DAY, REPEAT_DAYS_EVERY_WEEK
DAY, WEEK, MONTH, YEAR, WORKDAY, WEEKDAYS = 0, 1, 2, 3, 4, 6
DEFAULT_WEEKEND = (6, 0)  # the weekend_days global's default "6,0"; its order matters

_MAX_STEPS = 100_000  # backstop only: a real window holds a few hundred dates at most
_INT = re.compile(r"\s*[+-]?\d+\s*")  # PHP numeric string: blanks allowed around the digits
_EXDATE = re.compile(r"(\d{4})(-?)(\d{2})\2(\d{2})")  # YYYYMMDD or YYYY-MM-DD

Step = Callable[[date], date | None]


@dataclass(frozen=True, slots=True)
class RecurrenceRule:
    """One series' repeat pattern, checked on construction (``ValueError`` if inconsistent).

    ``on_day`` holds weekdays 0 = Sunday .. 6 = Saturday: the one weekday of a type 2 rule, or the
    days of a freq type 6 (type 3) rule; empty otherwise. ``freq`` is the N of "every N";
    a type 2 rule has ``freq_type`` MONTH. ``rt2_pf_flag`` matters only to type 2 (see module doc);
    it defaults to what OpenEMR has written since 2016, :func:`parse_rule` reads it from the spec.
    """

    kind: int
    freq: int
    freq_type: int
    on_num: int
    on_day: frozenset[int]
    exdates: frozenset[date]
    rt2_pf_flag: bool = True

    def __post_init__(self) -> None:
        if self.kind == 0:
            return
        ok = self.kind in (1, 2, 3) and self.freq >= 1 and self.on_day <= frozenset(range(7))
        if self.kind == 2:
            ok = ok and 1 <= self.on_num <= 5 and len(self.on_day) == 1
        else:
            ok = ok and self.freq_type in (DAY, WEEK, MONTH, YEAR, WORKDAY, WEEKDAYS)
            ok = ok and (self.freq_type != WEEKDAYS or bool(self.on_day))
        if not ok:
            raise ValueError(f"inconsistent recurrence rule: {self!r}")


_ONCE = RecurrenceRule(0, 0, DAY, 0, frozenset(), frozenset())


def parse_rule(recurrtype: int | str | None, recurrspec: str | bytes | None) -> RecurrenceRule:
    """Read ``pc_recurrtype`` and ``pc_recurrspec`` into a rule.

    Raises ``ValueError`` with a one-line reason for anything OpenEMR would not list (see module
    doc). Type 0 never reads the spec, as fetchEvents does not. Results are cached: a poll cycle
    sees the same rows again and again.
    """
    kind = _as_int(recurrtype)
    if kind not in (0, 1, 2, 3):  # fetchEvents' switch has no other case: never listed
        raise ValueError(f"pc_recurrtype={recurrtype!r}: expected 0, 1, 2 or 3")
    if kind == 0:
        return _ONCE
    if recurrspec is None:
        raise ValueError(f"pc_recurrspec is NULL for repeating pc_recurrtype={kind}")
    if isinstance(recurrspec, str):
        recurrspec = recurrspec.encode("utf-8", "surrogateescape")
    if not isinstance(recurrspec, bytes):
        raise ValueError(f"pc_recurrspec is {type(recurrspec).__name__}, expected str or bytes")
    return _parse_spec(kind, recurrspec)


@lru_cache(maxsize=65_536)
def _parse_spec(kind: int, raw: bytes) -> RecurrenceRule:
    try:
        spec = phpserialize.loads(raw, decode_strings=True)
    except (ValueError, TypeError, RecursionError) as exc:  # what phpserialize raises on garbage
        raise ValueError(f"pc_recurrspec is not PHP serialize() data ({exc})") from exc
    if not isinstance(spec, dict):
        raise ValueError(f"pc_recurrspec holds a {type(spec).__name__}, expected a PHP array")
    exdates = _exdates(spec.get("exdate"))
    if kind == 2:
        return RecurrenceRule(
            kind=2,
            freq=_int(spec, "event_repeat_on_freq", 1, None),
            freq_type=MONTH,
            on_num=min(_int(spec, "event_repeat_on_num", 1, None), 5),  # 6+ also ends as "last"
            on_day=frozenset({_int(spec, "event_repeat_on_day", 0, 6)}),
            exdates=exdates,
            rt2_pf_flag=bool(flag := spec.get("rt2_pf_flag")) and flag != "0",  # PHP truthy
        )
    freq_type = _int(spec, "event_repeat_freq_type", 0, 6)
    if freq_type == 5:  # __increment() has no branch for it: PHP returns the same date for ever
        raise ValueError("pc_recurrspec event_repeat_freq_type=5: expected 0, 1, 2, 3, 4 or 6")
    if freq_type == WEEKDAYS:
        days = _weekdays(spec.get("event_repeat_freq"))
        return RecurrenceRule(kind, 1, WEEKDAYS, 0, days, exdates)
    freq = _int(spec, "event_repeat_freq", 1, None)
    return RecurrenceRule(kind, freq, freq_type, 0, frozenset(), exdates)


def _int(spec: Mapping[object, object], key: str, low: int, high: int | None) -> int:
    value = spec.get(key)  # None when missing: PHP's isset() / empty() fail too
    number = _as_int(value)
    if number is None or number < low or (high is not None and number > high):
        expected = f"{low}..{high}" if high is not None else f">= {low}"
        raise ValueError(f"pc_recurrspec {key}={value!r:.40}: expected an integer {expected}")
    return number


def _weekdays(value: object) -> frozenset[int]:
    """``"2,4"`` (1 = Sunday) -> ``{1, 3}`` (0 = Sunday). Other days make PHP's ``getDayName()``
    return null and ``strtotime("next ")`` fail, which loops for ever."""
    days = {_as_int(item) for item in (value.split(",") if isinstance(value, str) else [value])}
    if not days <= set(range(1, 8)):
        raise ValueError(
            f"pc_recurrspec event_repeat_freq={value!r:.40}: expected days 1..7 "
            "(1 = Sunday) like '2,4'"
        )
    return frozenset(day - 1 for day in days if day is not None)


def _exdates(value: object) -> frozenset[date]:
    if value is None:
        return frozenset()
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"pc_recurrspec exdate is a {type(value).__name__}: expected a string")
    found = set()
    for item in str(value).split(","):
        if match := _EXDATE.fullmatch(item.strip()):
            with suppress(ValueError):  # 20240230 never equals an occurrence in PHP either
                found.add(date(int(match[1]), int(match[3]), int(match[4])))
    return frozenset(found)


def _as_int(value: object) -> int | None:
    """A PHP integer or numeric string (blanks allowed around it) as int, else None."""
    if isinstance(value, str) and _INT.fullmatch(value):
        return int(value)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def occurrences(
    rule: RecurrenceRule,
    first: date,
    last: date | str | None,
    window_start: date,
    window_end: date,
    *,
    weekend_days: tuple[int, ...] = DEFAULT_WEEKEND,
) -> list[date]:
    """Every date of the series inside [window_start, window_end] (both inclusive), sorted,
    minus exdates. kind 0 -> [first] if inside the window.

    ``first``/``last`` are ``pc_eventDate``/``pc_endDate``. A repeating series whose ``last`` is
    None or ``'0000-00-00'`` (pymysql's zero date) has no dates, as in OpenEMR. ``weekend_days`` is
    OpenEMR's global of that name, in stored order. Old series cost a few steps, not one per date:
    we jump only where that provably lands where OpenEMR's stepping would. ``ValueError`` for a bad
    ``last`` or ``weekend_days``, or beyond 100,000 dates.
    """
    if rule.kind == 0:
        return [first] if window_start <= first <= window_end else []
    end = _end_date(last)
    if end is None:
        return []
    stop = min(end, window_end)
    if stop < window_start:
        return []
    if rule.kind == 2:
        dates = _nth_weekday_dates(rule, first, window_start, stop)
    else:
        if not weekend_days or not all(day in range(7) for day in weekend_days):
            raise ValueError(f"weekend_days={weekend_days!r}: expected weekdays 0 (Sunday) .. 6")
        dates = _stepped_dates(_stepper(rule, weekend_days), rule, first, window_start, stop)
    return [day for day in dates if day not in rule.exdates]


def _end_date(last: date | str | None) -> date | None:
    if isinstance(last, datetime):
        return last.date()
    if last is None or isinstance(last, date):
        return last
    text = last.strip() if isinstance(last, str) else ""
    if text == "0000-00-00":
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"pc_endDate={last!r}: expected a date, None or '0000-00-00'") from None


def _stepped_dates(
    step: Step, rule: RecurrenceRule, first: date, start: date, stop: date
) -> list[date]:
    """fetchEvents case '1'/'3': step up to the window, then collect until the stop date."""
    if rule.freq_type in (MONTH, YEAR):
        current = _skip_months(first, _months(rule), start)
    else:
        current = _skip_cycles(first, start, step)
    found: list[date] = []
    for _ in range(_MAX_STEPS):
        if current is None or current > stop:
            return found
        if current >= start:
            found.append(current)
        current = step(current)
    raise ValueError(f"more than {_MAX_STEPS} dates in the window; refusing to expand")


def _nth_weekday_dates(rule: RecurrenceRule, first: date, start: date, stop: date) -> list[date]:
    """fetchEvents case '2', month by month from pc_eventDate's month."""
    (weekday,) = rule.on_day
    current = _skip_months(first.replace(day=1) if rule.rt2_pf_flag else first, rule.freq, start)
    found: list[date] = []
    for _ in range(_MAX_STEPS):
        if current is None or (current.year, current.month) > (stop.year, stop.month):
            return found
        hit = _nth_weekday(current.year, current.month, rule.on_num, weekday)
        if start <= hit <= stop:
            found.append(hit)
        current = _mktime(current.year, current.month + rule.freq, current.day)
    raise ValueError(f"more than {_MAX_STEPS} months in the window; refusing to expand")


def _skip_months(current: date | None, months: int, target: date) -> date | None:
    """The first state of the ``mktime(m + months, d, y)`` walk not in a month before target's.

    Steps one by one while the day is 29-31 (it may still overflow), but once it is 28 or less no
    month can overflow it again, so every step adds exactly ``months`` and we can jump."""
    goal = target.year * 12 + target.month - 1
    while current is not None:
        index = current.year * 12 + current.month - 1
        if index >= goal:
            return current
        if current.day <= 28:
            steps = -((index - goal) // months)  # ceil((goal - index) / months)
            return _mktime(current.year, current.month + steps * months, current.day)
        current = _mktime(current.year, current.month + months, current.day)
    return None


def _skip_cycles(current: date | None, target: date, step: Step) -> date | None:
    """Jump whole cycles towards target for steps that depend on the weekday only (day, week,
    workday, weekdays): once a weekday repeats, the walk repeats with that period in days."""
    seen: dict[int, date] = {}
    while current is not None and current < target:
        if current.weekday() in seen:
            period = (current - seen[current.weekday()]).days
            current += timedelta(days=(target - current).days // period * period)
            seen.clear()
            continue
        seen[current.weekday()] = current
        current = step(current)
    return current


def _stepper(rule: RecurrenceRule, weekend: tuple[int, ...]) -> Step:
    """``__increment()`` for one rule: the next date after a given occurrence."""
    n, kind = rule.freq, rule.freq_type
    if kind in (DAY, WEEK):
        return partial(_shift, days=n * (7 if kind == WEEK else 1))
    if kind in (MONTH, YEAR):
        months = _months(rule)
        return lambda d: _mktime(d.year, d.month + months, d.day)
    if kind == WORKDAY:
        return partial(_next_workday, n, weekend)
    return partial(_next_listed_day, rule.on_day)


def _months(rule: RecurrenceRule) -> int:
    """Months per step: ``mktime(m, d, y + N)`` is ``mktime(m + 12N, d, y)``."""
    return rule.freq * (12 if rule.freq_type == YEAR else 1)


def _next_workday(n: int, weekend: tuple[int, ...], current: date) -> date | None:
    """``REPEAT_EVERY_WORK_DAY`` in ``__increment()``, quirks included (see module doc)."""
    today = _weekday(current)
    skipped = sum(1 for k in range(1, n % 7 + 1) if (today + k) % 7 in weekend)
    days = n + n // 7 * len(set(weekend)) + skipped
    landing = (today + days) % 7
    if len(weekend) == 2:
        days += 2 if landing == weekend[0] else 1 if landing == weekend[1] else 0
    elif len(weekend) == 1 and landing == weekend[0]:
        days += 1
    return _shift(current, days)


def _next_listed_day(weekdays: frozenset[int], current: date) -> date | None:
    """Earliest ``strtotime("next <day>")``: "next" is strictly later, 7 days on the same day."""
    today = _weekday(current)
    return _shift(current, min((day - today - 1) % 7 + 1 for day in weekdays))


def _nth_weekday(year: int, month: int, nth: int, weekday: int) -> date:
    """``Date_Calc::NWeekdayOfMonth()``, retried with nth - 1 while the month is too short."""
    day = (nth - 1) * 7 + 1 + (weekday - _weekday(date(year, month, 1))) % 7
    while day > monthrange(year, month)[1]:
        day -= 7
    return date(year, month, day)


def _mktime(year: int, month: int, day: int) -> date | None:
    """PHP ``mktime(0, 0, 0, month, day, year)`` for day >= 1: months and days carry over."""
    year, month = year + (month - 1) // 12, (month - 1) % 12 + 1
    if year > date.max.year:
        return None
    return _shift(date(year, month, 1), days=day - 1)


def _shift(current: date, days: int) -> date | None:
    try:
        return current + timedelta(days=days)
    except OverflowError:  # beyond year 9999: past every window
        return None


def _weekday(day: date) -> int:
    """PHP ``date('w')``: 0 = Sunday."""
    return day.isoweekday() % 7
