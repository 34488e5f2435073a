"""The planner: rules, due times in the sending window, eligibility, channels, dedupe, DST.

Pure: appointments, patients and job history are built here; nothing touches a database.
The clinic is in Europe/Rome unless a test says otherwise (2026: CET until Sun 29 March 02:00,
CEST until Sun 25 October 03:00); America/New_York changes on Sun 8 March and Sun 1 November.
The sending window is 09:00-19:00 clinic time unless a test says otherwise.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bridge.clock import local_to_utc
from bridge.model import Appointment, Channel, Consent, Patient, ReminderType, StatusClass
from bridge.planner import DAYS_AHEAD, EVENT, Planner, Rule, rules_from
from bridge.plugin import Reference
from bridge.settings import RemindersSettings
from bridge.store.jobs import Job, JobPlan, dedupe_key
from bridge.store.schema import JobStatus

ROME = ZoneInfo("Europe/Rome")
NEW_YORK = ZoneInfo("America/New_York")
D = date.fromisoformat
TOO_LATE = "too late: the sending window closes before the appointment"
ALL_YES = {channel: Consent.YES for channel in Channel}


def at(day: str, hhmm: str, zone: ZoneInfo = ROME) -> datetime:
    """A clinic-local wall time as an aware UTC instant."""
    return local_to_utc(D(day), time.fromisoformat(hhmm), zone)


def utc(day: str, hhmm: str) -> datetime:
    return datetime.combine(D(day), time.fromisoformat(hhmm), tzinfo=UTC)


def settings(**overrides: Any) -> RemindersSettings:
    values: dict[str, Any] = {"days_ahead": 2, "start_hour": 9, "end_hour": 19}
    values.update(overrides)
    return RemindersSettings(**values)


def planner(
    now: datetime,
    zone: ZoneInfo = ROME,
    opted_out: set[tuple[str, Channel]] | None = None,
    **overrides: Any,
) -> Planner:
    return Planner(settings(**overrides), zone, Reference(), now, opted_out)


def appt(
    day: str,
    hhmm: str,
    key: str = "100",
    zone: ZoneInfo = ROME,
    patient_key: str = "P1",
    **fields: Any,
) -> Appointment:
    start = at(day, hhmm, zone)
    values: dict[str, Any] = {
        "key": key,
        "occurrence": D(day),
        "patient_key": patient_key,
        "start": start,
        "end": start + timedelta(minutes=30),
        "status": "-",
        "status_class": StatusClass.SCHEDULED,
        "eligible": True,
        "provider_keys": ("7",),
        "service_key": "5",
    }
    values.update(fields)
    return Appointment(**values)


def patient(key: str = "P1", **fields: Any) -> Patient:
    values: dict[str, Any] = {
        "first_name": "Test",
        "last_name": "Patient",
        "mobile": "+12025550101",
        "home_phone": "+12025550102",
        "email": "test.patient@example.test",
        "consent": dict(ALL_YES),
    }
    values.update(fields)
    return Patient(key=key, **values)


def job(
    plan: JobPlan,
    status: JobStatus = JobStatus.SENT,
    sent_at: datetime | None = None,
    job_id: int = 1,
) -> Job:
    """A stored job as the history would hold it for ``plan``."""
    return Job(
        id=job_id,
        dedupe_key=plan.dedupe_key,
        event=plan.event,
        appointment_key=plan.appointment_key,
        occurrence=plan.occurrence,
        patient_key=plan.patient_key,
        rule=plan.rule,
        channel=plan.channel,
        status=status,
        attempts=1,
        due_at=plan.due,
        appointment_start=plan.appointment_start,
        sent_at=sent_at,
    )


def job_plan(
    appointment: Appointment,
    due: datetime,
    rule: str = DAYS_AHEAD,
    channel: Channel = Channel.SMS,
    skip_reason: str | None = None,
) -> JobPlan:
    return JobPlan(
        event=EVENT,
        appointment_key=appointment.key,
        occurrence=appointment.occurrence,
        patient_key=appointment.patient_key,
        rule=rule,
        channel=channel,
        due=due,
        appointment_start=appointment.start,
        skip_reason=skip_reason,
    )


def by_rule_channel(plans: list[JobPlan]) -> dict[tuple[str, Channel], JobPlan]:
    found = {(p.rule, p.channel): p for p in plans}
    assert len(found) == len(plans), "two plans for one rule and channel"
    return found


# Wednesday 10 June 2026, 10:00 CEST: inside the window.
NOW = at("2026-06-10", "10:00")
BEFORE_OPEN = at("2026-06-10", "07:00")
AFTER_CLOSE = at("2026-06-10", "20:00")


# --- rules -------------------------------------------------------------------------------------

RULE_NAMES = [
    # id, lead_times entry, rule name
    ("hours", "2h", "lead_2h"),
    ("a day stays in hours", "24h", "lead_24h"),
    ("36 hours", "36h", "lead_36h"),
    ("minutes", "90m", "lead_90m"),
    ("fractional hours", "1.5h", "lead_90m"),
    ("days are named in hours", "3d", "lead_72h"),
    ("48 hours", "48h", "lead_48h"),
    ("bare number is hours", "6", "lead_6h"),
]


@pytest.mark.parametrize(
    ("lead", "name"), [row[1:] for row in RULE_NAMES], ids=[row[0] for row in RULE_NAMES]
)
def test_rule_name_of_a_lead_time(lead: str, name: str) -> None:
    rules = rules_from(settings(lead_times=[lead]))
    assert [r.name for r in rules] == [DAYS_AHEAD, name]


def test_rule_name_of_a_48_hour_lead_is_lead_48h() -> None:
    rules = rules_from(settings(lead_times=["48h"]))
    assert [r.name for r in rules] == [DAYS_AHEAD, "lead_48h"]


def test_rules_days_ahead_first_then_longest_lead_first() -> None:
    rules = rules_from(settings(lead_times=["2h", "90m", "3d", "36h"]))
    assert [r.name for r in rules] == [DAYS_AHEAD, "lead_72h", "lead_36h", "lead_2h", "lead_90m"]
    assert [r.lead for r in rules] == [
        None,
        timedelta(days=3),
        timedelta(hours=36),
        timedelta(hours=2),
        timedelta(minutes=90),
    ]


def test_rules_the_same_lead_written_twice_is_one_rule() -> None:
    rules = rules_from(settings(lead_times=["2h", "120m", "2"]))
    assert [r.name for r in rules] == [DAYS_AHEAD, "lead_2h"]


def test_rules_without_lead_times_is_days_ahead_only() -> None:
    assert rules_from(settings()) == [Rule(DAYS_AHEAD)]


# --- due(): the days-ahead rule ----------------------------------------------------------------

DAYS_AHEAD_DUE = [
    # id, now, days_ahead, appointment day and time, expected due (None: rule does not apply)
    ("today is out", NOW, 2, ("2026-06-10", "15:00"), None),
    ("yesterday is out", NOW, 2, ("2026-06-09", "15:00"), None),
    ("tomorrow, window open: now", NOW, 2, ("2026-06-11", "10:00"), NOW),
    ("last day in range: now", NOW, 2, ("2026-06-12", "10:00"), NOW),
    ("beyond days_ahead is out", NOW, 2, ("2026-06-13", "10:00"), None),
    (
        "before open: today's opening",
        BEFORE_OPEN,
        2,
        ("2026-06-12", "10:00"),
        at("2026-06-10", "09:00"),
    ),
    (
        "tomorrow before open: today's opening",
        BEFORE_OPEN,
        2,
        ("2026-06-11", "10:00"),
        at("2026-06-10", "09:00"),
    ),
    (
        "after close: tomorrow's opening",
        AFTER_CLOSE,
        2,
        ("2026-06-12", "10:00"),
        at("2026-06-11", "09:00"),
    ),
    (
        "days_ahead 3 reaches three days out",
        BEFORE_OPEN,
        3,
        ("2026-06-13", "10:00"),
        at("2026-06-10", "09:00"),
    ),
    ("days_ahead 1: two days out is out", NOW, 1, ("2026-06-12", "10:00"), None),
]


@pytest.mark.parametrize(
    ("now", "days_ahead", "when", "expected"),
    [row[1:] for row in DAYS_AHEAD_DUE],
    ids=[row[0] for row in DAYS_AHEAD_DUE],
)
def test_due_days_ahead(
    now: datetime, days_ahead: int, when: tuple[str, str], expected: datetime | None
) -> None:
    p = planner(now, days_ahead=days_ahead)
    assert p.due(Rule(DAYS_AHEAD), appt(*when)) == (expected, None)


def test_horizon_is_today_through_days_ahead() -> None:
    assert planner(NOW, days_ahead=3).horizon == (D("2026-06-10"), D("2026-06-13"))


LONG_LEADS = [
    # id, days_ahead, lead, appointment day whose lead moment is NOW (10 June 10:00)
    ("48h with days_ahead 1", 1, "48h", "2026-06-12"),
    ("3d with days_ahead 2", 2, "3d", "2026-06-13"),
]


@pytest.mark.parametrize(
    ("days_ahead", "lead", "day"), [r[1:] for r in LONG_LEADS], ids=[r[0] for r in LONG_LEADS]
)
def test_due_of_a_lead_longer_than_days_ahead(days_ahead: int, lead: str, day: str) -> None:
    p = planner(NOW, days_ahead=days_ahead, lead_times=[lead])
    assert p.due(p.rules[1], appt(day, "10:00")) == (NOW, None)


@pytest.mark.parametrize(
    ("days_ahead", "lead", "day"), [r[1:] for r in LONG_LEADS], ids=[r[0] for r in LONG_LEADS]
)
def test_horizon_reaches_appointments_whose_lead_moment_is_now(
    days_ahead: int, lead: str, day: str
) -> None:
    p = planner(NOW, days_ahead=days_ahead, lead_times=[lead])
    assert p.horizon[0] <= D(day) <= p.horizon[1]


# --- due(): lead rules ---------------------------------------------------------------------

LEAD_DUE = [
    # id, now, lead, appointment day and time, expected due
    (
        "inside the window: exactly the lead",
        NOW,
        timedelta(hours=2),
        ("2026-06-12", "15:00"),
        at("2026-06-12", "13:00"),
    ),
    (
        "2h before 08:30 moves EARLIER to 18:59 the day before",
        NOW,
        timedelta(hours=2),
        ("2026-06-12", "08:30"),
        at("2026-06-11", "18:59"),
    ),
    (
        "lead falls at close: a minute before close",
        NOW,
        timedelta(hours=2),
        ("2026-06-12", "21:00"),
        at("2026-06-12", "18:59"),
    ),
    (
        "lead falls in the evening: a minute before close",
        NOW,
        timedelta(hours=1),
        ("2026-06-12", "21:30"),
        at("2026-06-12", "18:59"),
    ),
    (
        "48h before 10:00",
        NOW,
        timedelta(hours=48),
        ("2026-06-13", "10:00"),
        at("2026-06-11", "10:00"),
    ),
    (
        "24h before 08:00 moves to 18:59 two days before",
        NOW,
        timedelta(hours=24),
        ("2026-06-12", "08:00"),
        at("2026-06-10", "18:59"),
    ),
    (
        "lead moment passed, window open: now",
        NOW,
        timedelta(hours=48),
        ("2026-06-11", "15:00"),
        NOW,
    ),
    (
        "lead moment passed, window closed: next opening",
        AFTER_CLOSE,
        timedelta(hours=24),
        ("2026-06-11", "15:00"),
        at("2026-06-11", "09:00"),
    ),
    (
        "lead moment passed before opening: today's opening",
        BEFORE_OPEN,
        timedelta(hours=48),
        ("2026-06-11", "15:00"),
        at("2026-06-10", "09:00"),
    ),
]


@pytest.mark.parametrize(
    ("now", "lead", "when", "expected"),
    [row[1:] for row in LEAD_DUE],
    ids=[row[0] for row in LEAD_DUE],
)
def test_due_lead(
    now: datetime, lead: timedelta, when: tuple[str, str], expected: datetime
) -> None:
    assert planner(now).due(Rule("lead", lead), appt(*when)) == (expected, None)


def test_due_lead_is_never_later_than_the_lead_moment() -> None:
    """Every start time of a day, every lead: the reminder is at or before start - lead, inside
    the window, or the rule is too late; never after the lead moment."""
    p = planner(at("2026-06-01", "08:00"))
    for lead in (timedelta(minutes=30), timedelta(hours=2), timedelta(hours=24)):
        for minutes in range(0, 24 * 60, 15):
            start = f"{minutes // 60:02d}:{minutes % 60:02d}"
            a = appt("2026-06-12", start)
            due, reason = p.due(Rule("lead", lead), a)
            assert due is not None, (lead, start, reason)
            assert due <= a.start - lead, (lead, start)
            assert p.window.contains(due), (lead, start)


TOO_LATE_CASES = [
    # id, now, rule, appointment day and time, settings
    (
        "days_ahead: window opens after an 08:30 visit",
        AFTER_CLOSE,
        Rule(DAYS_AHEAD),
        ("2026-06-11", "08:30"),
        {},
    ),
    (
        "lead moved earlier is already past and the next opening is after the visit",
        at("2026-06-11", "19:30"),
        Rule("lead_2h", timedelta(hours=2)),
        ("2026-06-12", "08:30"),
        {},
    ),
    (
        "window opens exactly at the start",
        AFTER_CLOSE,
        Rule(DAYS_AHEAD),
        ("2026-06-11", "09:00"),
        {},
    ),
    (
        "lead due within min_lead_hours",
        NOW,
        Rule("lead_2h", timedelta(hours=2)),
        ("2026-06-12", "15:00"),
        {"min_lead_hours": 3},
        "too late: less than 3 h before the appointment",
    ),
    (
        "days_ahead due within min_lead_hours",
        NOW,
        Rule(DAYS_AHEAD),
        ("2026-06-11", "09:30"),
        {"min_lead_hours": 24},
        "too late: less than 24 h before the appointment",
    ),
]


@pytest.mark.parametrize(
    ("now", "rule", "when", "overrides", "reason"),
    [(*row[1:], TOO_LATE)[:5] for row in TOO_LATE_CASES],
    ids=[row[0] for row in TOO_LATE_CASES],
)
def test_due_too_late(
    now: datetime, rule: Rule, when: tuple[str, str], overrides: dict[str, Any], reason: str
) -> None:
    assert planner(now, **overrides).due(rule, appt(*when)) == (None, reason)


def test_due_exactly_min_lead_hours_before_is_in_time() -> None:
    p = planner(NOW, min_lead_hours=2)
    assert p.due(Rule("lead_2h", timedelta(hours=2)), appt("2026-06-12", "15:00")) == (
        at("2026-06-12", "13:00"),
        None,
    )


def test_plan_records_a_too_late_rule_as_skipped() -> None:
    p = planner(AFTER_CLOSE, lead_times=["2h"])
    result = p.plan([appt("2026-06-11", "08:30")], {"P1": patient()})
    assert [(x.rule, x.channel, x.skip_reason, x.due) for x in result.plans] == [
        (DAYS_AHEAD, Channel.SMS, TOO_LATE, at("2026-06-11", "09:00")),
        ("lead_2h", Channel.SMS, TOO_LATE, at("2026-06-11", "09:00")),
    ]


# --- DST ---------------------------------------------------------------------------------------

DST = [
    # id, zone, now, rule, appointment (day, local time), expected start UTC, expected due UTC
    (
        "Rome spring: opening on the change day is 07:00 UTC",
        ROME,
        utc("2026-03-29", "05:00"),
        Rule(DAYS_AHEAD),
        ("2026-03-30", "10:00"),
        utc("2026-03-30", "08:00"),
        utc("2026-03-29", "07:00"),
    ),
    (
        "Rome spring: 2h before 10:00 CEST moves to 18:59 CET the day before",
        ROME,
        utc("2026-03-28", "06:00"),
        Rule("lead_2h", timedelta(hours=2)),
        ("2026-03-29", "10:00"),
        utc("2026-03-29", "08:00"),
        utc("2026-03-28", "17:59"),
    ),
    (
        "Rome spring: 24h before is 24 real hours (09:00 CET)",
        ROME,
        utc("2026-03-27", "06:00"),
        Rule("lead_24h", timedelta(hours=24)),
        ("2026-03-29", "10:00"),
        utc("2026-03-29", "08:00"),
        utc("2026-03-28", "08:00"),
    ),
    (
        "Rome spring: days_ahead the evening before opens at 09:00 CEST",
        ROME,
        utc("2026-03-28", "19:00"),
        Rule(DAYS_AHEAD),
        ("2026-03-29", "11:00"),
        utc("2026-03-29", "09:00"),
        utc("2026-03-29", "07:00"),
    ),
    (
        "Rome autumn: opening on the change day is 08:00 UTC",
        ROME,
        utc("2026-10-25", "05:00"),
        Rule(DAYS_AHEAD),
        ("2026-10-26", "10:00"),
        utc("2026-10-26", "09:00"),
        utc("2026-10-25", "08:00"),
    ),
    (
        "Rome autumn: 2h before 10:00 CET moves to 18:59 CEST the day before",
        ROME,
        utc("2026-10-24", "06:00"),
        Rule("lead_2h", timedelta(hours=2)),
        ("2026-10-25", "10:00"),
        utc("2026-10-25", "09:00"),
        utc("2026-10-24", "16:59"),
    ),
    (
        "Rome autumn: 02:30 in the repeated hour is the first (summer) reading",
        ROME,
        utc("2026-10-24", "06:00"),
        Rule("lead_2h", timedelta(hours=2)),
        ("2026-10-25", "02:30"),
        utc("2026-10-25", "00:30"),
        utc("2026-10-24", "16:59"),
    ),
    (
        "Rome autumn: days_ahead the evening before opens at 09:00 CET",
        ROME,
        utc("2026-10-24", "18:00"),
        Rule(DAYS_AHEAD),
        ("2026-10-25", "11:00"),
        utc("2026-10-25", "10:00"),
        utc("2026-10-25", "08:00"),
    ),
    (
        "New York spring: 2h before 09:30 EDT moves to 18:59 EDT the day before",
        NEW_YORK,
        utc("2026-03-08", "12:00"),
        Rule("lead_2h", timedelta(hours=2)),
        ("2026-03-09", "09:30"),
        utc("2026-03-09", "13:30"),
        utc("2026-03-08", "22:59"),
    ),
    (
        "New York autumn: opening on the change day is 14:00 UTC",
        NEW_YORK,
        utc("2026-11-01", "05:00"),
        Rule(DAYS_AHEAD),
        ("2026-11-02", "09:30"),
        utc("2026-11-02", "14:30"),
        utc("2026-11-01", "14:00"),
    ),
]


@pytest.mark.parametrize(
    ("zone", "now", "rule", "when", "start", "due"),
    [row[1:] for row in DST],
    ids=[row[0] for row in DST],
)
def test_due_across_dst(
    zone: ZoneInfo,
    now: datetime,
    rule: Rule,
    when: tuple[str, str],
    start: datetime,
    due: datetime,
) -> None:
    a = appt(*when, zone=zone)
    assert a.start == start
    assert planner(now, zone=zone, days_ahead=1).due(rule, a) == (due, None)


def test_plan_on_rome_dst_days_gives_utc_dues() -> None:
    spring = appt("2026-03-29", "10:00", key="301")
    autumn = appt("2026-10-25", "10:00", key="302")
    spring_plans = planner(utc("2026-03-28", "20:00"), days_ahead=1, lead_times=["2h"]).plan(
        [spring], {"P1": patient()}
    )
    autumn_plans = planner(utc("2026-10-24", "19:00"), days_ahead=1, lead_times=["2h"]).plan(
        [autumn], {"P1": patient()}
    )
    # Both evenings are after close: days-ahead goes at the next opening; the 2 h rule's moment
    # (08:00 local) was moved to 18:59 the day before, which is past, so it also lands at the
    # opening and collapses into the days-ahead reminder.
    assert [(p.rule, p.due, p.skip_reason) for p in spring_plans.plans] == [
        (DAYS_AHEAD, utc("2026-03-29", "07:00"), None),
        ("lead_2h", utc("2026-03-29", "07:00"), "within an hour of another reminder"),
    ]
    assert [(p.rule, p.due, p.skip_reason) for p in autumn_plans.plans] == [
        (DAYS_AHEAD, utc("2026-10-25", "08:00"), None),
        ("lead_2h", utc("2026-10-25", "08:00"), "within an hour of another reminder"),
    ]
    assert spring_plans.plans[0].appointment_start == utc("2026-03-29", "08:00")
    assert autumn_plans.plans[0].appointment_start == utc("2026-10-25", "09:00")


# --- collapse ------------------------------------------------------------------------------------


def test_collapse_skips_the_later_of_two_rules_within_an_hour() -> None:
    p = planner(NOW, lead_times=["2h", "90m"])
    result = p.plan([appt("2026-06-12", "15:00")], {"P1": patient()})
    plans = by_rule_channel(result.plans)
    assert plans[(DAYS_AHEAD, Channel.SMS)].skip_reason is None
    assert plans[("lead_2h", Channel.SMS)].skip_reason is None
    assert plans[("lead_2h", Channel.SMS)].due == at("2026-06-12", "13:00")
    assert plans[("lead_90m", Channel.SMS)].skip_reason == "within an hour of another reminder"


def test_collapse_late_booking_keeps_days_ahead_only() -> None:
    """Booked now for the day after tomorrow: the 48 h moment has passed, so it would go out in
    the same minute as the days-ahead reminder."""
    p = planner(NOW, lead_times=["48h"])
    lead_48h = p.rules[1].name
    result = p.plan([appt("2026-06-12", "09:30")], {"P1": patient()})
    assert [(x.rule, x.due, x.skip_reason) for x in result.plans] == [
        (DAYS_AHEAD, NOW, None),
        (lead_48h, NOW, "within an hour of another reminder"),
    ]


COLLAPSE = [
    # id, [(rule, channel, local time, skipped before)], expected skipped rules
    ("an hour apart both stay", [("a", "sms", "12:00", None), ("b", "sms", "13:00", None)], []),
    (
        "59 minutes apart: the later goes",
        [("a", "sms", "12:00", None), ("b", "sms", "12:59", None)],
        ["b"],
    ),
    (
        "order of input does not matter",
        [("b", "sms", "12:59", None), ("a", "sms", "12:00", None)],
        ["b"],
    ),
    (
        "other channel is independent",
        [("a", "sms", "12:00", None), ("b", "email", "12:30", None)],
        [],
    ),
    (
        "a skipped plan does not count",
        [("a", "sms", "12:00", "no consent"), ("b", "sms", "12:30", None)],
        [],
    ),
    (
        "a chain is measured from the last kept",
        [("a", "sms", "12:00", None), ("b", "sms", "12:40", None), ("c", "sms", "13:20", None)],
        ["b"],
    ),
]


@pytest.mark.parametrize(
    ("rows", "skipped"), [row[1:] for row in COLLAPSE], ids=[row[0] for row in COLLAPSE]
)
def test_collapse(rows: list[tuple[str, str, str, str | None]], skipped: list[str]) -> None:
    a = appt("2026-06-12", "15:00")
    plans = [
        job_plan(a, at("2026-06-12", hhmm), rule, Channel(channel), reason)
        for rule, channel, hhmm, reason in rows
    ]
    collapsed = planner(NOW)._collapse(plans)
    assert sorted(p.rule for p in collapsed) == sorted(r[0] for r in rows)
    newly = sorted(
        p.rule for p in collapsed if p.skip_reason == "within an hour of another reminder"
    )
    assert newly == skipped
    before = {r[0]: r[3] for r in rows}
    for p in collapsed:
        if p.rule not in skipped:
            assert p.skip_reason == before[p.rule]


# --- blocked() ---------------------------------------------------------------------------------

BLOCKED = [
    # id, settings, appointment changes, patient present, reason
    ("eligible", {}, {}, True, None),
    ("switched off", {"enabled": False}, {}, True, "reminders are switched off"),
    ("patient missing", {}, {}, False, "patient P1 not found on the host"),
    (
        "cancelled",
        {},
        {"status": "x", "status_class": StatusClass.CANCELLED, "eligible": False},
        True,
        "status 'x' (cancelled) is not eligible",
    ),
    (
        "checked in",
        {},
        {"status": "@", "status_class": StatusClass.CHECKED_IN, "eligible": False},
        True,
        "status '@' (checked_in) is not eligible",
    ),
    ("started", {}, {"start": NOW}, True, "appointment has started"),
    (
        "started an hour ago",
        {},
        {"start": NOW - timedelta(hours=1)},
        True,
        "appointment has started",
    ),
    (
        "provider off",
        {"providers_off": ["7"]},
        {},
        True,
        "reminders are off for this provider",
    ),
    (
        "every provider of a group visit off",
        {"providers_off": ["7", "8"]},
        {"provider_keys": ("7", "8")},
        True,
        "reminders are off for this provider",
    ),
    (
        "only one provider of a group visit off",
        {"providers_off": ["7"]},
        {"provider_keys": ("7", "8")},
        True,
        None,
    ),
    ("another provider off", {"providers_off": ["9"]}, {}, True, None),
    ("no provider", {"providers_off": ["7"]}, {"provider_keys": ()}, True, None),
    (
        "service off",
        {"services_off": ["5"]},
        {},
        True,
        "reminders are off for this service",
    ),
    ("another service off", {"services_off": ["6"]}, {}, True, None),
    ("no service", {"services_off": ["5"]}, {"service_key": None}, True, None),
]


@pytest.mark.parametrize(
    ("overrides", "changes", "present", "reason"),
    [row[1:] for row in BLOCKED],
    ids=[row[0] for row in BLOCKED],
)
def test_blocked(
    overrides: dict[str, Any], changes: dict[str, Any], present: bool, reason: str | None
) -> None:
    a = replace(appt("2026-06-11", "10:00"), **changes)
    assert planner(NOW, **overrides).blocked(a, patient() if present else None) == reason


def test_plan_keeps_blocked_occurrences_in_scope_with_their_reason() -> None:
    ok = appt("2026-06-11", "10:00", key="1")
    cancelled = appt(
        "2026-06-11",
        "11:00",
        key="2",
        status="x",
        status_class=StatusClass.CANCELLED,
        eligible=False,
    )
    orphan = appt("2026-06-11", "12:00", key="3", patient_key="P9")
    result = planner(NOW).plan([ok, cancelled, orphan], {"P1": patient()})
    assert result.scope == {ok.ident, cancelled.ident, orphan.ident}
    assert result.reasons == {
        cancelled.ident: "status 'x' (cancelled) is not eligible",
        orphan.ident: "patient P9 not found on the host",
    }
    assert {p.appointment_key for p in result.plans} == {"1"}


# --- channels_for() --------------------------------------------------------------------------

SMS, EMAIL, VOICE = Channel.SMS, Channel.EMAIL, Channel.VOICE

CHANNELS_FOR = [
    # id, settings, preference, channels, reason
    ("default type sms", {}, None, (SMS,), None),
    ("default type call_sms", {"default_type": "call_sms"}, None, (VOICE, SMS), None),
    ("default type email", {"default_type": "email"}, None, (EMAIL,), None),
    (
        "channels win over default type",
        {"channels": ["email", "voice"], "default_type": "sms"},
        None,
        (EMAIL, VOICE),
        None,
    ),
    ("empty channels means default type", {"channels": []}, None, (SMS,), None),
    ("repeated channel once", {"channels": ["sms", "email", "sms"]}, None, (SMS, EMAIL), None),
    ("preference narrows", {"channels": ["sms", "email"]}, ReminderType.EMAIL, (EMAIL,), None),
    (
        "call_sms narrows to what the clinic has",
        {"channels": ["sms", "email"]},
        ReminderType.CALL_SMS,
        (SMS,),
        None,
    ),
    (
        "call_sms keeps clinic order",
        {"channels": ["sms", "voice", "email"]},
        ReminderType.CALL_SMS,
        (SMS, VOICE),
        None,
    ),
    (
        "nothing in common falls back to the clinic's",
        {"channels": ["sms", "email"]},
        ReminderType.CALL,
        (SMS, EMAIL),
        None,
    ),
    (
        "none: every channel skipped",
        {"channels": ["sms", "email"]},
        ReminderType.NONE,
        (SMS, EMAIL),
        "patient asked for no reminders",
    ),
    (
        "preference not allowed is ignored",
        {"channels": ["sms", "email"], "allowed_types": ["sms"]},
        ReminderType.EMAIL,
        (SMS, EMAIL),
        None,
    ),
]


@pytest.mark.parametrize(
    ("overrides", "preference", "channels", "reason"),
    [row[1:] for row in CHANNELS_FOR],
    ids=[row[0] for row in CHANNELS_FOR],
)
def test_channels_for(
    overrides: dict[str, Any],
    preference: ReminderType | None,
    channels: tuple[Channel, ...],
    reason: str | None,
) -> None:
    p = planner(NOW, **overrides)
    assert p.channels_for(patient(preference=preference)) == (channels, reason)


def test_plan_preference_none_skips_every_channel_with_the_reason() -> None:
    p = planner(NOW, channels=["sms", "email"], lead_times=["2h"])
    result = p.plan([appt("2026-06-12", "15:00")], {"P1": patient(preference=ReminderType.NONE)})
    assert sorted((x.rule, x.channel.value) for x in result.plans) == [
        (DAYS_AHEAD, "email"),
        (DAYS_AHEAD, "sms"),
        ("lead_2h", "email"),
        ("lead_2h", "sms"),
    ]
    assert {x.skip_reason for x in result.plans} == {"patient asked for no reminders"}


def test_plan_preference_narrows_the_planned_channels() -> None:
    p = planner(NOW, channels=["sms", "email", "voice"])
    result = p.plan([appt("2026-06-12", "15:00")], {"P1": patient(preference=ReminderType.EMAIL)})
    assert [(x.channel, x.skip_reason) for x in result.plans] == [(EMAIL, None)]


# --- channel_block() ---------------------------------------------------------------------------

LANDLINE_IT = "+390612345678"
MOBILE_IT = "+393331234567"

CHANNEL_BLOCK = [
    # id, consent mode, patient fields, channel, reason
    ("sms ok", "explicit", {}, SMS, None),
    ("email ok", "explicit", {}, EMAIL, None),
    ("voice ok", "explicit", {}, VOICE, None),
    ("deceased", "unless_refused", {"deceased": True}, SMS, "patient is deceased"),
    (
        "consent no, explicit",
        "explicit",
        {"consent": {SMS: Consent.NO}},
        SMS,
        "no consent for sms (refused)",
    ),
    (
        "consent no, unless_refused",
        "unless_refused",
        {"consent": {EMAIL: Consent.NO}},
        EMAIL,
        "no consent for email (refused)",
    ),
    (
        "consent unknown, explicit",
        "explicit",
        {"consent": {VOICE: Consent.UNKNOWN}},
        VOICE,
        "no consent for voice on record",
    ),
    (
        "consent not recorded, explicit",
        "explicit",
        {"consent": {}},
        SMS,
        "no consent for sms on record",
    ),
    (
        "consent unknown, unless_refused",
        "unless_refused",
        {"consent": {SMS: Consent.UNKNOWN}},
        SMS,
        None,
    ),
    ("consent not recorded, unless_refused", "unless_refused", {"consent": {}}, SMS, None),
    (
        "consent on another channel does not count",
        "explicit",
        {"consent": {EMAIL: Consent.YES}},
        SMS,
        "no consent for sms on record",
    ),
    (
        "italian landline cannot receive sms",
        "explicit",
        {"mobile": LANDLINE_IT},
        SMS,
        "mobile number is a landline",
    ),
    ("italian mobile receives sms", "explicit", {"mobile": MOBILE_IT}, SMS, None),
    ("us number receives sms", "explicit", {"mobile": "+12025550103"}, SMS, None),
    ("no mobile", "explicit", {"mobile": None}, SMS, "no mobile number"),
    (
        "invalid mobile",
        "explicit",
        {"mobile": None, "bad_contacts": ("mobile",)},
        SMS,
        "mobile number is not valid",
    ),
    (
        "invalid home phone does not matter to sms",
        "explicit",
        {"mobile": None, "bad_contacts": ("home_phone",)},
        SMS,
        "no mobile number",
    ),
    ("voice falls back to the home phone", "explicit", {"mobile": None}, VOICE, None),
    ("voice calls a landline mobile field", "explicit", {"mobile": LANDLINE_IT}, VOICE, None),
    (
        "voice without phones",
        "explicit",
        {"mobile": None, "home_phone": None},
        VOICE,
        "no phone number",
    ),
    (
        "voice with invalid phones",
        "explicit",
        {"mobile": None, "home_phone": None, "bad_contacts": ("home_phone",)},
        VOICE,
        "phone number is not valid",
    ),
    (
        "voice ignores the work phone",
        "explicit",
        {"mobile": None, "home_phone": None, "work_phone": "+12025550104"},
        VOICE,
        "no phone number",
    ),
    ("no email", "explicit", {"email": None}, EMAIL, "no email"),
    (
        "invalid email",
        "explicit",
        {"email": None, "bad_contacts": ("email",)},
        EMAIL,
        "email address is not valid",
    ),
    ("email missing does not matter to sms", "explicit", {"email": None}, SMS, None),
]


@pytest.mark.parametrize(
    ("consent", "fields", "channel", "reason"),
    [row[1:] for row in CHANNEL_BLOCK],
    ids=[row[0] for row in CHANNEL_BLOCK],
)
def test_channel_block(
    consent: str, fields: dict[str, Any], channel: Channel, reason: str | None
) -> None:
    p = planner(NOW, consent=consent)
    assert p.channel_block(patient(**fields), channel) == reason


def test_channel_block_opt_out_is_per_patient_and_channel() -> None:
    p = planner(NOW, opted_out={("P1", SMS), ("P2", EMAIL)})
    assert p.channel_block(patient("P1"), SMS) == "patient opted out of sms"
    assert p.channel_block(patient("P1"), EMAIL) is None
    assert p.channel_block(patient("P2"), SMS) is None


def test_plan_gated_channel_is_planned_as_skipped() -> None:
    p = planner(NOW, channels=["sms", "email"])
    result = p.plan([appt("2026-06-12", "15:00")], {"P1": patient(mobile=LANDLINE_IT)})
    assert [(x.channel, x.skip_reason) for x in result.plans] == [
        (SMS, "mobile number is a landline"),
        (EMAIL, None),
    ]


# --- already reminded under another host key ---------------------------------------------


def edited_series() -> tuple[Appointment, JobPlan]:
    """OpenEMR edits one occurrence of a series by excluding its date and inserting a new row:
    the visit is the same (patient, start), the host key is new."""
    new_row = appt("2026-06-12", "15:00", key="200")
    old_plan = job_plan(appt("2026-06-12", "15:00", key="150", recurring=True), NOW)
    return new_row, old_plan


@pytest.mark.parametrize(
    ("status", "skipped"),
    [
        (JobStatus.SENT, True),
        (JobStatus.SENDING, True),
        (JobStatus.UNKNOWN, True),
        (JobStatus.PLANNED, False),
        (JobStatus.SKIPPED, False),
        (JobStatus.FAILED, False),
        (JobStatus.CANCELLED, False),
    ],
)
def test_already_reminded_under_another_key(status: JobStatus, skipped: bool) -> None:
    new_row, old_plan = edited_series()
    history = [job(old_plan, status, sent_at=NOW)]
    result = planner(NOW).plan([new_row], {"P1": patient()}, history)
    (plan,) = result.plans
    expected = "already reminded for this visit (as 150)" if skipped else None
    assert plan.skip_reason == expected


def test_already_reminded_same_dedupe_key_is_not_skipped() -> None:
    a = appt("2026-06-12", "15:00", key="200")
    history = [job(job_plan(a, NOW), JobStatus.SENT, sent_at=NOW)]
    (plan,) = planner(NOW).plan([a], {"P1": patient()}, history).plans
    assert plan.skip_reason is None
    assert plan.dedupe_key == history[0].dedupe_key


@pytest.mark.parametrize(
    "change",
    [
        {"channel": Channel.EMAIL},
        {"rule": "lead_2h"},
        {"appointment_start": at("2026-06-12", "16:00")},
        {"patient_key": "P2"},
    ],
    ids=["other channel", "other rule", "other start", "other patient"],
)
def test_already_reminded_needs_same_patient_start_rule_channel(change: dict[str, Any]) -> None:
    new_row, old_plan = edited_series()
    history = [job(replace(old_plan, **change), JobStatus.SENT, sent_at=NOW)]
    (plan,) = planner(NOW).plan([new_row], {"P1": patient()}, history).plans
    assert plan.skip_reason is None


def test_already_reminded_keeps_an_earlier_skip_reason() -> None:
    new_row, old_plan = edited_series()
    history = [job(old_plan, JobStatus.SENT, sent_at=NOW)]
    p = planner(NOW, consent="explicit")
    (plan,) = p.plan([new_row], {"P1": patient(consent={})}, history).plans
    assert plan.skip_reason == "no consent for sms on record"


# --- one per day -------------------------------------------------------------------------------


def one_per_day(now: datetime = NOW, **overrides: Any) -> Planner:
    values: dict[str, Any] = {"one_per_day": True, "days_ahead": 3, "channels": ["sms", "email"]}
    values.update(overrides)
    return planner(now, **values)


def test_one_per_day_moves_the_second_appointment_to_the_next_day() -> None:
    first = appt("2026-06-11", "10:00", key="1")
    second = appt("2026-06-12", "10:00", key="2")
    result = one_per_day().plan([second, first], {"P1": patient()})
    dues = {(p.appointment_key, p.channel): (p.due, p.skip_reason) for p in result.plans}
    assert dues == {
        ("1", SMS): (NOW, None),
        ("1", EMAIL): (NOW, None),
        ("2", SMS): (at("2026-06-11", "09:00"), None),
        ("2", EMAIL): (at("2026-06-11", "09:00"), None),
    }


def test_one_per_day_third_reminder_moves_two_days() -> None:
    appts = [appt(f"2026-06-1{n}", "15:00", key=str(n)) for n in (1, 2, 3)]
    result = one_per_day(channels=["sms"]).plan(appts, {"P1": patient()})
    assert {p.appointment_key: p.due for p in result.plans} == {
        "1": NOW,
        "2": at("2026-06-11", "09:00"),
        "3": at("2026-06-12", "09:00"),
    }


def test_one_per_day_skips_when_the_next_day_is_too_late() -> None:
    """Both due now; the earlier visit (not the smaller key) keeps today, the other would move
    to tomorrow 09:00, after its 08:45 start."""
    early = appt("2026-06-11", "08:30", key="2")
    later = appt("2026-06-11", "08:45", key="1")
    result = one_per_day().plan([later, early], {"P1": patient()})
    reasons = {(p.appointment_key, p.channel): p.skip_reason for p in result.plans}
    assert reasons == {
        ("2", SMS): None,
        ("2", EMAIL): None,
        ("1", SMS): "one reminder per day: already reminded today",
        ("1", EMAIL): "one reminder per day: already reminded today",
    }


def test_one_per_day_moved_to_the_very_start_is_too_late() -> None:
    first = appt("2026-06-11", "08:30", key="1")
    at_opening = appt("2026-06-11", "09:00", key="2")
    result = one_per_day(channels=["sms"]).plan([first, at_opening], {"P1": patient()})
    assert {p.appointment_key: p.skip_reason for p in result.plans} == {
        "1": None,
        "2": "one reminder per day: already reminded today",
    }


def test_one_per_day_respects_min_lead_hours_when_moving() -> None:
    first = appt("2026-06-11", "10:00", key="1")
    second = appt("2026-06-11", "11:00", key="2")
    result = one_per_day(min_lead_hours=3).plan([first, second], {"P1": patient()})
    reasons = {p.appointment_key: p.skip_reason for p in result.plans}
    assert reasons == {"1": None, "2": "one reminder per day: already reminded today"}


def test_one_per_day_channels_of_one_reminder_stay_together() -> None:
    first = appt("2026-06-11", "10:00", key="1")
    second = appt("2026-06-12", "15:00", key="2")
    result = one_per_day(channels=["sms", "email", "voice"]).plan(
        [first, second], {"P1": patient()}
    )
    assert {(p.appointment_key, p.channel, p.due) for p in result.plans} == {
        ("1", SMS, NOW),
        ("1", EMAIL, NOW),
        ("1", VOICE, NOW),
        ("2", SMS, at("2026-06-11", "09:00")),
        ("2", EMAIL, at("2026-06-11", "09:00")),
        ("2", VOICE, at("2026-06-11", "09:00")),
    }
    assert {p.skip_reason for p in result.plans} == {None}


def test_one_per_day_the_day_is_taken_by_the_reminder_not_per_channel() -> None:
    """SMS and voice are gated for this patient; the email alone still takes the day, and the
    gated channels keep their own reason."""
    first = appt("2026-06-11", "10:00", key="1")
    second = appt("2026-06-12", "15:00", key="2")
    result = one_per_day(channels=["sms", "email", "voice"]).plan(
        [first, second], {"P1": patient(home_phone=None, mobile=None)}
    )
    second_plans = [p for p in result.plans if p.appointment_key == "2"]
    assert {p.channel: p.skip_reason for p in second_plans} == {
        SMS: "no mobile number",
        EMAIL: None,
        VOICE: "no phone number",
    }
    active = [p for p in result.plans if p.skip_reason is None]
    assert {(p.appointment_key, p.channel, p.due) for p in active} == {
        ("1", EMAIL, NOW),
        ("2", EMAIL, at("2026-06-11", "09:00")),
    }


def test_one_per_day_a_skipped_reminder_does_not_take_the_day() -> None:
    """After close: tomorrow 08:30 is too late (skipped), so tomorrow's opening stays free for
    the reminder of the day after."""
    too_late = appt("2026-06-11", "08:30", key="1")
    second = appt("2026-06-12", "10:00", key="2")
    result = one_per_day(AFTER_CLOSE, channels=["sms"]).plan([too_late, second], {"P1": patient()})
    assert {p.appointment_key: (p.due, p.skip_reason) for p in result.plans} == {
        "1": (at("2026-06-11", "09:00"), TOO_LATE),
        "2": (at("2026-06-11", "09:00"), None),
    }


def test_one_per_day_different_patients_do_not_interfere() -> None:
    a = appt("2026-06-11", "10:00", key="1", patient_key="P1")
    b = appt("2026-06-12", "10:00", key="2", patient_key="P2")
    result = one_per_day().plan([a, b], {"P1": patient("P1"), "P2": patient("P2")})
    assert {p.due for p in result.plans} == {NOW}


def test_one_per_day_lead_rule_of_the_same_appointment_counts() -> None:
    """Days-ahead goes now; the 24 h reminder would be today at 15:00 too: it moves to
    tomorrow's opening (still before the visit)."""
    result = one_per_day(channels=["sms"], lead_times=["24h"]).plan(
        [appt("2026-06-11", "15:00", key="1")], {"P1": patient()}
    )
    assert {p.rule: (p.due, p.skip_reason) for p in result.plans} == {
        DAYS_AHEAD: (NOW, None),
        "lead_24h": (at("2026-06-11", "09:00"), None),
    }


def test_one_per_day_lead_rule_on_another_day_is_not_moved() -> None:
    result = one_per_day(channels=["sms"], lead_times=["24h"]).plan(
        [appt("2026-06-12", "15:00", key="1")], {"P1": patient()}
    )
    assert {p.rule: (p.due, p.skip_reason) for p in result.plans} == {
        DAYS_AHEAD: (NOW, None),
        "lead_24h": (at("2026-06-11", "15:00"), None),
    }


def test_one_per_day_a_reminder_sent_today_counts() -> None:
    other = appt("2026-06-11", "16:00", key="9")
    sent = job(job_plan(other, NOW - timedelta(hours=1)), sent_at=NOW - timedelta(hours=1))
    a = appt("2026-06-12", "10:00", key="1")
    result = one_per_day().plan([a], {"P1": patient()}, [sent])
    assert {p.due for p in result.plans} == {at("2026-06-11", "09:00")}
    assert {p.skip_reason for p in result.plans} == {None}


def test_one_per_day_today_is_the_clinic_day_not_the_utc_day() -> None:
    """New York, window 09:00-23:00: a reminder sent at 20:30 EDT (00:30 UTC the next day) was
    sent today for the clinic."""
    now = at("2026-06-10", "21:00", NEW_YORK)
    sent_at = at("2026-06-10", "20:30", NEW_YORK)
    other = appt("2026-06-11", "16:00", key="9", zone=NEW_YORK)
    sent = job(job_plan(other, sent_at), sent_at=sent_at)
    a = appt("2026-06-12", "10:00", key="1", zone=NEW_YORK)
    p = one_per_day(now, zone=NEW_YORK, end_hour=23)
    result = p.plan([a], {"P1": patient()}, [sent])
    assert {x.due for x in result.plans} == {at("2026-06-11", "09:00", NEW_YORK)}


def test_one_per_day_a_reminder_sent_yesterday_does_not_count() -> None:
    other = appt("2026-06-11", "16:00", key="9")
    yesterday = NOW - timedelta(days=1)
    sent = job(job_plan(other, yesterday), sent_at=yesterday)
    a = appt("2026-06-12", "10:00", key="1")
    result = one_per_day().plan([a], {"P1": patient()}, [sent])
    assert {p.due for p in result.plans} == {NOW}


@pytest.mark.parametrize("status", [JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.SKIPPED])
def test_one_per_day_a_job_that_did_not_go_out_does_not_count(status: JobStatus) -> None:
    other = appt("2026-06-11", "16:00", key="9")
    # sent_at set on purpose: the status alone must keep it out
    stored = job(job_plan(other, NOW - timedelta(hours=1)), status, sent_at=NOW)
    a = appt("2026-06-12", "10:00", key="1")
    result = one_per_day().plan([a], {"P1": patient()}, [stored])
    assert {p.due for p in result.plans} == {NOW}


@pytest.mark.parametrize("status", [JobStatus.SENDING, JobStatus.UNKNOWN])
def test_one_per_day_a_reminder_in_flight_today_counts(status: JobStatus) -> None:
    other = appt("2026-06-11", "16:00", key="9")
    in_flight = job(job_plan(other, NOW - timedelta(minutes=5)), status, sent_at=None)
    a = appt("2026-06-12", "10:00", key="1")
    result = one_per_day().plan([a], {"P1": patient()}, [in_flight])
    assert {p.due for p in result.plans} == {at("2026-06-11", "09:00")}


def test_one_per_day_two_occurrences_of_one_series_are_two_reminders() -> None:
    first = appt("2026-06-11", "10:00", key="1", recurring=True)
    second = appt("2026-06-12", "10:00", key="1", recurring=True)
    result = one_per_day(channels=["sms"]).plan([first, second], {"P1": patient()})
    assert {p.occurrence: p.due for p in result.plans} == {
        D("2026-06-11"): NOW,
        D("2026-06-12"): at("2026-06-11", "09:00"),
    }


def test_one_per_day_a_reminder_sent_yesterday_does_not_take_today() -> None:
    now = at("2026-06-11", "10:00")
    yesterday = at("2026-06-10", "09:00")
    reminded = appt("2026-06-12", "08:30", key="1")
    booked_today = appt("2026-06-12", "08:45", key="2")
    history = [job(job_plan(reminded, yesterday), sent_at=yesterday)]
    result = one_per_day(now, days_ahead=2, channels=["sms"]).plan(
        [reminded, booked_today], {"P1": patient()}, history
    )
    (new,) = [p for p in result.plans if p.appointment_key == "2"]
    assert (new.due, new.skip_reason) == (now, None)


def test_one_per_day_off_sends_both_today() -> None:
    first = appt("2026-06-11", "10:00", key="1")
    second = appt("2026-06-12", "10:00", key="2")
    result = planner(NOW, days_ahead=3).plan([first, second], {"P1": patient()})
    assert {(p.appointment_key, p.due) for p in result.plans} == {("1", NOW), ("2", NOW)}


# --- plans and their identity --------------------------------------------------------------


def test_plan_fields_and_dedupe_key() -> None:
    a = appt("2026-06-12", "15:00", key="42")
    (plan,) = planner(NOW).plan([a], {"P1": patient()}).plans
    assert plan == JobPlan(
        event=EVENT,
        appointment_key="42",
        occurrence=D("2026-06-12"),
        patient_key="P1",
        rule=DAYS_AHEAD,
        channel=SMS,
        due=NOW,
        appointment_start=a.start,
        skip_reason=None,
    )
    assert plan.dedupe_key == dedupe_key(EVENT, "42", D("2026-06-12"), DAYS_AHEAD, SMS)
    assert plan.dedupe_key == "reminder|42|2026-06-12|days_ahead|sms"


def test_plan_one_plan_per_rule_and_channel() -> None:
    p = planner(NOW, channels=["sms", "email", "voice"], lead_times=["24h", "2h"])
    result = p.plan([appt("2026-06-12", "15:00")], {"P1": patient()})
    keys = [x.dedupe_key for x in result.plans]
    assert len(keys) == len(set(keys)) == 9
