"""OpenEMR rows to sightings, appointments and patients: pure functions on dict rows.

Rows are shaped as pymysql returns them from OpenEMR (``pc_eid`` an int, ``pc_pid`` a varchar,
DATE as ``date``, TIME as ``timedelta``, an old ``pc_endDate`` as the string ``'0000-00-00'``),
keyed by the roles of the real ``mappings/openemr.yaml``. The clinic is in Europe/Rome (CEST in
June: UTC+2; the 2026 spring change is on Sunday 29 March).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import phpserialize
import pytest

from bridge.errors import BadHostRow
from bridge.mapping import mapping_path, read_mapping_data, validate_mapping
from bridge.mapping.sql import ConsentColumn, PreferenceColumn, SqlMapping
from bridge.model import Appointment, Channel, Consent, Patient, ReminderType, Service, StatusClass
from bridge.plugin import Reference, Sighting
from plugins.sources import sql_sightings
from plugins.sources.sql_rows import patient_from_row
from plugins.sources.sql_sightings import sightings_from_rows

ROME = ZoneInfo("Europe/Rome")
WINDOW = (date(2026, 6, 10), date(2026, 6, 12))
TABLE_KEY = "openemr_postcalendar_events.pc_eid"


def load_openemr() -> SqlMapping:
    path = mapping_path("openemr")
    return validate_mapping(SqlMapping, read_mapping_data(path), path)


MAPPING = load_openemr()
# OpenEMR categories: 5 "Office Visit" is a patient category (pc_cattype 0); 2 "In Office" is a
# provider category (pc_cattype 1), which gets no reminders.
REFERENCE = Reference(
    statuses={code: MAPPING.statuses.host_status(code) for code in MAPPING.statuses.known_codes()},
    services={
        "5": Service("5", "Office Visit", 15),
        "2": Service("2", "In Office", 0, for_patients=False),
    },
)


def spec(**fields: str) -> str:
    """A ``pc_recurrspec`` as OpenEMR's add_edit_event.php writes it (PHP strings)."""
    values = {
        "event_repeat_freq": "0",
        "event_repeat_freq_type": "0",
        "event_repeat_on_num": "1",
        "event_repeat_on_day": "0",
        "event_repeat_on_freq": "0",
        "exdate": "",
    }
    values.update(fields)
    return str(phpserialize.dumps(values).decode("utf-8"))


NO_REPEAT = spec()
DAILY = spec(event_repeat_freq="1", event_repeat_freq_type="0")


def row(key: int | str = 12, **values: Any) -> dict[str, Any]:
    """One appointment row as pymysql returns it, by mapping role."""
    base: dict[str, Any] = {
        "key": key,
        "patient": "1",
        "status": "-",
        "date": date(2026, 6, 11),
        "start_time": timedelta(hours=9, minutes=30),
        "end_time": timedelta(hours=10),
        "duration": 1800,
        "all_day": 0,
        "provider": "7",
        "facility": 3,
        "service": 5,
        "room": "",
        "notes": "",
        "end_date": "0000-00-00",
        "recurrence_type": 0,
        "recurrence_spec": NO_REPEAT,
        "group": 0,
    }
    base.update(values)
    return base


def series(key: int = 20, **values: Any) -> dict[str, Any]:
    """A daily series from 1 to 30 June 2026."""
    fields: dict[str, Any] = {
        "date": date(2026, 6, 1),
        "end_date": date(2026, 6, 30),
        "recurrence_type": 1,
        "recurrence_spec": DAILY,
    }
    fields.update(values)
    return row(key, **fields)


def scan(
    rows: list[dict[str, Any]],
    window: tuple[date, date] = WINDOW,
    reject: Callable[[BadHostRow], None] | None = None,
) -> list[Sighting]:
    rejected: list[BadHostRow] = []
    found = sightings_from_rows(rows, MAPPING, REFERENCE, ROME, window, reject or rejected.append)
    if reject is None:
        assert rejected == [], [str(r) for r in rejected]
    return found


def scan_with_rejects(
    rows: list[dict[str, Any]], window: tuple[date, date] = WINDOW
) -> tuple[list[Sighting], list[BadHostRow]]:
    rejected: list[BadHostRow] = []
    return scan(rows, window, rejected.append), rejected


def one(rows: list[dict[str, Any]], window: tuple[date, date] = WINDOW) -> Appointment:
    (sighting,) = scan(rows, window)
    return sighting.appointment()


def utc(day: str, hhmm: str) -> datetime:
    return datetime.combine(date.fromisoformat(day), time.fromisoformat(hhmm), tzinfo=UTC)


# --- single rows --------------------------------------------------------------------------


def test_pymysql_row_becomes_one_appointment() -> None:
    (sighting,) = scan([row()])
    assert (sighting.key, sighting.occurrence, sighting.patient_key) == (
        "12",
        date(2026, 6, 11),
        "1",
    )
    appt = sighting.appointment()
    assert appt == Appointment(
        key="12",
        occurrence=date(2026, 6, 11),
        patient_key="1",
        start=utc("2026-06-11", "07:30"),
        end=utc("2026-06-11", "08:00"),
        status="-",
        status_class=StatusClass.SCHEDULED,
        eligible=True,
        all_day=False,
        provider_keys=("7",),
        facility_key="3",
        service_key="5",
        room="",
        notes="",
        recurring=False,
        host_keys=("12",),
    )


def test_string_values_and_zero_dates_read_the_same() -> None:
    """Other drivers (and old rows) give strings; a zero ``pc_endDate`` on a single row is
    simply not used."""
    as_strings = row(
        key="12",
        date="2026-06-11",
        start_time="09:30:00",
        end_time="10:00:00",
        duration="1800",
        all_day="0",
        facility="3",
        service="5",
        recurrence_type="0",
        group="0",
    )
    assert one([as_strings]) == one([row()])


def test_bytes_values_are_text() -> None:
    appt = one([row(notes=b"bring the test card", room=b"2", patient=b"1")])
    assert (appt.notes, appt.room, appt.patient_key) == ("bring the test card", "2", "1")


STATUSES = [
    # code, class, eligible
    ("-", StatusClass.SCHEDULED, True),
    ("SMS", StatusClass.CONFIRMED, True),
    ("x", StatusClass.CANCELLED, False),
    ("?", StatusClass.NO_SHOW, False),
    ("@", StatusClass.CHECKED_IN, False),
    ("ZZ", StatusClass.OTHER, False),  # a status the site added and the mapping does not list
]


@pytest.mark.parametrize(("code", "status_class", "eligible"), STATUSES)
def test_status_meaning_comes_from_the_mapping(
    code: str, status_class: StatusClass, eligible: bool
) -> None:
    appt = one([row(status=code)])
    assert (appt.status, appt.status_class, appt.eligible) == (code, status_class, eligible)


def test_non_patient_service_is_skipped_without_reject() -> None:
    found, rejected = scan_with_rejects([row(12, service=2), row(13, service=99), row(14)])
    assert sorted(s.key for s in found) == ["13", "14"]
    assert rejected == []


def test_single_row_outside_the_window_is_not_seen() -> None:
    rows = [row(12, date=date(2026, 6, 9)), row(13, date=date(2026, 6, 13)), row(14)]
    assert [s.key for s in scan(rows)] == ["14"]


BAD_ROWS = [
    # id, row changes, reason
    ("zero date", {"date": "0000-00-00"}, "date: no date"),
    ("no date", {"date": None}, "date: no date"),
    ("not a date", {"date": "yesterday"}, "date: 'yesterday' is not a date"),
    ("no start time", {"start_time": None}, "start_time: 'None' is not a time of day"),
    (
        "time beyond the day",
        {"start_time": timedelta(hours=25)},
        "start_time: '1 day, 1:00:00' is not a time of day",
    ),
]


@pytest.mark.parametrize(
    ("changes", "reason"), [r[1:] for r in BAD_ROWS], ids=[r[0] for r in BAD_ROWS]
)
def test_bad_row_is_rejected_naming_the_row_and_the_scan_goes_on(
    changes: dict[str, Any], reason: str
) -> None:
    found, rejected = scan_with_rejects([row(12, **changes), row(14)])
    assert [s.key for s in found] == ["14"]
    (bad,) = rejected
    assert (bad.ref, bad.reason) == (f"{TABLE_KEY}=12", reason)


def test_all_day_row_needs_no_start_time() -> None:
    appt = one([row(all_day=1, start_time=None, end_time=None, duration=0)])
    assert appt.all_day is True
    assert appt.start == utc("2026-06-10", "22:00")  # local midnight, CEST
    assert appt.end == utc("2026-06-11", "22:00")  # next local midnight


END = [
    # id, row changes, end (UTC)
    ("end time", {}, utc("2026-06-11", "08:00")),
    ("end time not after start: duration", {"end_time": timedelta(hours=9)}, "07:30+30"),
    ("no end time: duration in seconds", {"end_time": None, "duration": 2700}, "07:30+45"),
    ("nothing to tell", {"end_time": None, "duration": 0}, None),
]


@pytest.mark.parametrize(("changes", "end"), [r[1:] for r in END], ids=[r[0] for r in END])
def test_end(changes: dict[str, Any], end: datetime | str | None) -> None:
    appt = one([row(**changes)])
    if isinstance(end, str):
        minutes = int(end.split("+")[1])
        end = utc("2026-06-11", "07:30") + timedelta(minutes=minutes)
    assert appt.end == end


def test_start_and_end_to_utc_in_winter() -> None:
    appt = one(
        [row(date=date(2026, 1, 15), start_time=timedelta(hours=15), end_time=None)],
        window=(date(2026, 1, 14), date(2026, 1, 16)),
    )
    assert appt.start == utc("2026-01-15", "14:00")  # CET: UTC+1
    assert appt.end == utc("2026-01-15", "14:30")


# --- series -------------------------------------------------------------------------------


def test_series_expands_to_its_dates_in_the_window() -> None:
    found = scan([series()])
    assert [(s.key, s.occurrence) for s in found] == [
        ("20", date(2026, 6, 10)),
        ("20", date(2026, 6, 11)),
        ("20", date(2026, 6, 12)),
    ]
    appts = [s.appointment() for s in found]
    assert [a.start for a in appts] == [
        utc("2026-06-10", "07:30"),
        utc("2026-06-11", "07:30"),
        utc("2026-06-12", "07:30"),
    ]
    assert [a.end for a in appts] == [
        utc("2026-06-10", "08:00"),
        utc("2026-06-11", "08:00"),
        utc("2026-06-12", "08:00"),
    ]
    assert {a.recurring for a in appts} == {True}
    assert len({s.digest for s in found}) == 3


def test_series_excluded_date_is_not_seen() -> None:
    found = scan([series(recurrence_spec=spec(event_repeat_freq="1", exdate="20260611"))])
    assert [s.occurrence for s in found] == [date(2026, 6, 10), date(2026, 6, 12)]


def test_series_ending_inside_the_window() -> None:
    found = scan([series(end_date=date(2026, 6, 10))])
    assert [s.occurrence for s in found] == [date(2026, 6, 10)]


def test_series_with_a_zero_end_date_lists_nothing_as_openemr_does() -> None:
    found, rejected = scan_with_rejects([series(end_date="0000-00-00"), series(21, end_date=None)])
    assert (found, rejected) == ([], [])


def test_series_across_spring_forward_keeps_the_local_time() -> None:
    found = scan([series()], window=(date(2026, 3, 28), date(2026, 3, 30)))
    assert found == []  # the series starts in June
    found = scan(
        [series(date=date(2026, 3, 1), end_date=date(2026, 4, 30))],
        window=(date(2026, 3, 28), date(2026, 3, 30)),
    )
    assert [s.appointment().start for s in found] == [
        utc("2026-03-28", "08:30"),  # CET
        utc("2026-03-29", "07:30"),  # CEST from 02:00 that day
        utc("2026-03-30", "07:30"),
    ]


BAD_SPECS = [
    ("not serialized", "garbage"),
    ("negative frequency", spec(event_repeat_freq="-1")),
    ("frequency type 5", spec(event_repeat_freq="1", event_repeat_freq_type="5")),
    ("NULL", None),
]


@pytest.mark.parametrize("bad", [r[1] for r in BAD_SPECS], ids=[r[0] for r in BAD_SPECS])
def test_bad_recurrence_is_rejected_naming_the_row(bad: str | None) -> None:
    found, rejected = scan_with_rejects([series(13, recurrence_spec=bad), row(14)])
    assert [s.key for s in found] == ["14"]
    (problem,) = rejected
    assert isinstance(problem, BadHostRow)
    assert problem.ref == f"{TABLE_KEY}=13"
    assert problem.reason.startswith("recurrence: ")
    assert str(problem).startswith(f"{TABLE_KEY}=13: recurrence: ")


def test_bad_recurrence_outside_any_series_is_not_read() -> None:
    """A single row never reads its spec (fetchEvents does not either)."""
    assert [s.key for s in scan([row(12, recurrence_spec="garbage")])] == ["12"]


# --- several providers: one visit -----------------------------------------------------------


def test_rows_sharing_a_group_are_one_visit_keyed_by_the_smallest_key() -> None:
    rows = [
        row(10, group=55, provider="7"),
        row(9, group=55, provider="8"),
        row(30, provider="7"),  # group 0: a visit of its own
    ]
    found = scan(rows)
    assert sorted((s.key, s.occurrence) for s in found) == [
        ("30", date(2026, 6, 11)),
        ("9", date(2026, 6, 11)),  # 9 < 10 as numbers, not as text
    ]
    visit = next(s for s in found if s.key == "9").appointment()
    assert visit.provider_keys == ("8", "7")
    assert visit.host_keys == ("9", "10")


def test_group_digest_does_not_depend_on_row_order() -> None:
    rows = [row(10, group=55, provider="7"), row(9, group=55, provider="8")]
    (forward,) = scan(rows)
    (backward,) = scan(list(reversed(rows)))
    assert forward.digest == backward.digest
    assert forward.appointment() == backward.appointment()


def test_group_the_same_provider_twice_is_listed_once() -> None:
    rows = [row(10, group=55, provider="7"), row(9, group=55, provider="7")]
    (visit,) = scan(rows)
    assert visit.appointment().provider_keys == ("7",)


def test_group_of_series_is_one_visit_per_date() -> None:
    rows = [series(41, group=77, provider="7"), series(40, group=77, provider="8")]
    found = scan(rows)
    assert [(s.key, s.occurrence) for s in found] == [
        ("40", date(2026, 6, 10)),
        ("40", date(2026, 6, 11)),
        ("40", date(2026, 6, 12)),
    ]
    assert {s.appointment().provider_keys for s in found} == {("8", "7")}


def test_provider_zero_is_no_provider() -> None:
    assert one([row(provider="0")]).provider_keys == ()
    assert one([row(provider=None)]).provider_keys == ()


# --- digests and deferred building ------------------------------------------------------------


def test_digest_is_stable_for_identical_rows() -> None:
    (first,) = scan([row()])
    (second,) = scan([row()])
    assert first.digest == second.digest
    assert len(first.digest) == 32


CHANGES = [
    ("patient", "2"),
    ("status", "x"),
    ("date", date(2026, 6, 12)),
    ("start_time", timedelta(hours=9, minutes=31)),
    ("end_time", timedelta(hours=10, minutes=1)),
    ("duration", 1801),
    ("all_day", 1),
    ("provider", "8"),
    ("facility", 4),
    ("service", 6),
    ("room", "3"),
    ("notes", "changed"),
    ("end_date", date(2026, 6, 11)),
    ("recurrence_spec", spec(event_repeat_freq="2")),
    ("group", 5),
]


@pytest.mark.parametrize(("role", "value"), CHANGES, ids=[c[0] for c in CHANGES])
def test_digest_changes_when_any_value_changes(role: str, value: Any) -> None:
    (before,) = scan([row()])
    (after,) = scan([row(**{role: value})])
    assert after.digest != before.digest


def test_digest_of_a_group_changes_with_any_member() -> None:
    rows = [row(10, group=55, provider="7"), row(9, group=55, provider="8")]
    (before,) = scan(rows)
    (after,) = scan([rows[0] | {"notes": "changed"}, rows[1]])
    assert after.digest != before.digest


def test_build_waits_for_appointment(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = sql_sightings._appointment

    def counting(*args: Any, **kwargs: Any) -> Appointment:
        calls.append("built")
        return real(*args, **kwargs)

    monkeypatch.setattr(sql_sightings, "_appointment", counting)
    found = scan([row(12), series(20)])
    assert len(found) == 4
    assert calls == []
    first = found[0].appointment()
    assert found[0].appointment() is first
    assert calls == ["built"]


# --- patients ------------------------------------------------------------------------------

LANGUAGES = {"english": "en", "french": "fr", "spanish": "es", "italian": "it"}


def patient_row(**values: Any) -> dict[str, Any]:
    """One ``patient_data`` row as pymysql returns it, by mapping role."""
    base: dict[str, Any] = {
        "key": 1,
        "first_name": "Test",
        "last_name": "Patient",
        "mrn": "T-0001",
        "birth_date": date(1980, 2, 3),
        "sex": "Female",
        "language": "English",
        "mobile": "(202) 555-0123",
        "home_phone": "202.555.0145",
        "work_phone": "",
        "email": "test.patient@example.test",
        "deceased_date": None,
        "street": "1 Test Street",
        "city": "Testville",
        "postal_code": "20001",
        "consent_sms": "YES",
        "consent_email": "NO",
        "consent_voice": "",
    }
    base.update(values)
    return base


def to_patient(region: str = "US", table: Any = None, **values: Any) -> Patient:
    return patient_from_row(patient_row(**values), table or MAPPING.patients, LANGUAGES, region)


def test_patient_row_becomes_a_patient() -> None:
    assert to_patient() == Patient(
        key="1",
        first_name="Test",
        last_name="Patient",
        mrn="T-0001",
        birth_date=date(1980, 2, 3),
        sex="Female",
        language="en",
        mobile="+12025550123",
        home_phone="+12025550145",
        work_phone=None,
        email="test.patient@example.test",
        bad_contacts=(),
        deceased=False,
        consent={
            Channel.SMS: Consent.YES,
            Channel.EMAIL: Consent.NO,
            Channel.VOICE: Consent.UNKNOWN,
        },
        preference=None,
        street="1 Test Street",
        city="Testville",
        postal_code="20001",
    )


PHONES = [
    # id, region, raw, E.164
    ("us local", "US", "(202) 555-0123", "+12025550123"),
    ("us with extension", "US", "202-555-0123 ext 4", "+12025550123"),
    ("international in the us", "US", "+39 333 123 4567", "+393331234567"),
    ("italian landline", "IT", "06 1234 5678", "+390612345678"),
    ("italian mobile", "IT", "333 123 4567", "+393331234567"),
    ("us number with country code in italy", "IT", "+1 202 555 0123", "+12025550123"),
]


@pytest.mark.parametrize(
    ("region", "raw", "e164"), [r[1:] for r in PHONES], ids=[r[0] for r in PHONES]
)
def test_patient_phones_to_e164_in_the_clinic_region(region: str, raw: str, e164: str) -> None:
    found = to_patient(region, mobile=raw, home_phone=raw, work_phone=raw)
    assert (found.mobile, found.home_phone, found.work_phone) == (e164, e164, e164)
    assert found.bad_contacts == ()


def test_patient_bad_phone_is_recorded_without_its_value() -> None:
    found = to_patient(mobile="call 4477 after six", home_phone="", work_phone=None)
    assert (found.mobile, found.home_phone, found.work_phone) == (None, None, None)
    assert found.bad_contacts == ("mobile",)
    for f in dataclasses.fields(found):
        assert "4477" not in str(getattr(found, f.name)), f.name
    assert "4477" not in repr(found)


def test_patient_us_number_read_in_italy_is_bad() -> None:
    found = to_patient("IT", mobile="202 555 0123", home_phone="06 1234 5678")
    assert (found.mobile, found.home_phone, found.bad_contacts) == (
        None,
        "+390612345678",
        ("mobile",),
    )


def test_patient_bad_email_is_recorded_without_its_value() -> None:
    found = to_patient(email="test.patient at example")
    assert (found.email, found.bad_contacts) == (None, ("email",))
    assert "example" not in str(dataclasses.astuple(found))


def test_patient_blank_email_is_missing_not_bad() -> None:
    found = to_patient(email="  ")
    assert (found.email, found.bad_contacts) == (None, ())


CONSENT = [
    ("YES", Consent.YES),
    ("yes", Consent.YES),
    (" YES ", Consent.YES),
    ("NO", Consent.NO),
    ("no", Consent.NO),
    ("", Consent.UNKNOWN),
    (None, Consent.UNKNOWN),
    ("MAYBE", Consent.UNKNOWN),
]


@pytest.mark.parametrize(("value", "consent"), CONSENT, ids=[repr(c[0]) for c in CONSENT])
def test_patient_consent(value: str | None, consent: Consent) -> None:
    found = to_patient(consent_sms=value, consent_email=value, consent_voice=value)
    assert found.consent == {Channel.SMS: consent, Channel.EMAIL: consent, Channel.VOICE: consent}


def test_patient_consent_column_missing_on_the_host_is_unknown() -> None:
    values = patient_row()
    del values["consent_voice"]
    found = patient_from_row(values, MAPPING.patients, LANGUAGES, "US")
    assert found.consent_for(Channel.VOICE) == Consent.UNKNOWN
    assert found.consent_for(Channel.SMS) == Consent.YES


LANGUAGE = [
    ("English", "en"),
    ("english", "en"),
    ("french", "fr"),
    ("French", "fr"),
    ("FRENCH", "fr"),
    (" Spanish ", "es"),
    ("it", "it"),
    ("klingon", ""),
    ("", ""),
    (None, ""),
]


@pytest.mark.parametrize(("value", "iso"), LANGUAGE, ids=[repr(v[0]) for v in LANGUAGE])
def test_patient_language_through_the_language_list(value: str | None, iso: str) -> None:
    assert to_patient(language=value).language == iso


DECEASED = [
    (None, False),
    ("", False),
    ("0000-00-00 00:00:00", False),
    ("0000-00-00", False),
    (datetime(2025, 1, 2, 0, 0), True),
    (date(2025, 1, 2), True),
    ("2025-01-02 00:00:00", True),
]


@pytest.mark.parametrize(("value", "deceased"), DECEASED, ids=[repr(d[0]) for d in DECEASED])
def test_patient_deceased_date(value: Any, deceased: bool) -> None:
    assert to_patient(deceased_date=value).deceased is deceased


@pytest.mark.parametrize(
    ("value", "birth"),
    [("0000-00-00", None), (None, None), ("1980-02-03", date(1980, 2, 3))],
)
def test_patient_birth_date(value: Any, birth: date | None) -> None:
    assert to_patient(birth_date=value).birth_date == birth


def test_patient_preference_through_the_mapping() -> None:
    table = MAPPING.patients.model_copy(
        update={
            "preference": PreferenceColumn(
                column="reminder_type", values={"TXT": "sms", "NONE": "none", "BOTH": "call_sms"}
            )
        }
    )
    assert to_patient(table=table, preference="TXT").preference == ReminderType.SMS
    assert to_patient(table=table, preference="BOTH").preference == ReminderType.CALL_SMS
    assert to_patient(table=table, preference="NONE").preference == ReminderType.NONE
    assert to_patient(table=table, preference="other").preference is None
    assert to_patient(table=table, preference=None).preference is None


def test_patient_consent_values_of_another_host_compare_case_blind() -> None:
    table = MAPPING.patients.model_copy(
        update={
            "consent": {
                Channel.SMS: ConsentColumn(column="sms_ok", given=["y", "1"], refused=["n", "0"])
            }
        }
    )
    assert to_patient(table=table, consent_sms="Y").consent == {Channel.SMS: Consent.YES}
    assert to_patient(table=table, consent_sms="1").consent == {Channel.SMS: Consent.YES}
    assert to_patient(table=table, consent_sms="n").consent == {Channel.SMS: Consent.NO}
    assert to_patient(table=table, consent_sms="YES").consent == {Channel.SMS: Consent.UNKNOWN}
