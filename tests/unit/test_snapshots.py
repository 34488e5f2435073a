"""Snapshots on both stores: what changed between two scans, patients, and the JSON codec.

``sync_appointments`` gets ``Sighting`` objects; a sighting whose digest is unchanged must never
be built (a counting build function proves it).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import select

from bridge.codec import (
    appointment_from_dict,
    appointment_to_dict,
    patient_from_dict,
    patient_to_dict,
)
from bridge.model import Appointment, Channel, Consent, Patient, ReminderType, StatusClass
from bridge.plugin import Sighting
from bridge.store import Store, snapshots
from bridge.store.schema import appointments, patients
from bridge.store.snapshots import AppointmentChange

D = date.fromisoformat
T0 = datetime(2026, 6, 10, 8, 0, tzinfo=UTC)
T1 = T0 + timedelta(minutes=1)
T2 = T0 + timedelta(minutes=2)
WINDOW = (D("2026-06-10"), D("2026-06-12"))


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    opened = Store.open(store_url)
    try:
        yield opened
    finally:
        opened.close()


def appt(key: str = "100", day: str = "2026-06-11", hour: int = 8, **fields: Any) -> Appointment:
    start = datetime.combine(D(day), datetime.min.time(), tzinfo=UTC) + timedelta(hours=hour)
    values: dict[str, Any] = {
        "key": key,
        "occurrence": D(day),
        "patient_key": "P1",
        "start": start,
        "end": start + timedelta(minutes=30),
        "status": "-",
        "status_class": StatusClass.SCHEDULED,
        "eligible": True,
        "provider_keys": ("7",),
        "facility_key": "3",
        "service_key": "5",
        "room": "2",
        "notes": "bring the test card",
    }
    values.update(fields)
    return Appointment(**values)


def patient(key: str = "P1", **fields: Any) -> Patient:
    values: dict[str, Any] = {
        "first_name": "Test",
        "last_name": "Patient",
        "mrn": "T-0001",
        "birth_date": D("1980-02-03"),
        "sex": "Female",
        "language": "it",
        "mobile": "+12025550101",
        "home_phone": "+12025550102",
        "work_phone": None,
        "email": "test.patient@example.test",
        "bad_contacts": ("work_phone",),
        "consent": {Channel.SMS: Consent.YES, Channel.EMAIL: Consent.NO},
        "preference": ReminderType.CALL_SMS,
        "street": "1 Test Street",
        "city": "Testville",
        "postal_code": "00100",
    }
    values.update(fields)
    return Patient(key=key, **values)


class Counting:
    """Sightings whose build is counted: proves which appointments are built."""

    def __init__(self) -> None:
        self.built: list[tuple[str, date]] = []

    def sighting(self, appointment: Appointment, digest: str | None = None) -> Sighting:
        def build() -> Appointment:
            self.built.append(appointment.ident)
            return appointment

        return Sighting(
            appointment.key,
            appointment.occurrence,
            appointment.patient_key,
            digest or appointment.fingerprint(),
            build,
        )


def sync(
    store: Store, seen: list[Sighting], now: datetime = T0, window: tuple[date, date] = WINDOW
) -> list[AppointmentChange]:
    with store.begin() as connection:
        return snapshots.sync_appointments(connection, seen, window, now)


def kinds(changes: list[AppointmentChange]) -> list[tuple[str, str, date]]:
    return sorted((c.kind, c.key, c.occurrence) for c in changes)


def stored_rows(store: Store) -> dict[tuple[str, date], dict[str, Any]]:
    with store.begin() as connection:
        return {
            (row.key, row.occurrence): dict(row._mapping)
            for row in connection.execute(select(appointments))
        }


# --- sync_appointments -----------------------------------------------------------------------


def test_first_scan_everything_is_new(store: Store) -> None:
    a, b = appt("100"), appt("101", "2026-06-12")
    changes = sync(store, [Sighting.of(a), Sighting.of(b)])
    assert kinds(changes) == [("new", "100", a.occurrence), ("new", "101", b.occurrence)]
    assert {c.key: (c.before, c.after) for c in changes} == {"100": (None, a), "101": (None, b)}
    rows = stored_rows(store)
    assert rows[a.ident]["row_hash"] == a.fingerprint()
    assert rows[a.ident]["start_at"] == a.start
    assert (rows[a.ident]["deleted_at"], rows[a.ident]["first_seen"]) == (None, T0)
    assert (rows[a.ident]["patient_key"], rows[a.ident]["status"]) == ("P1", "-")


def test_unchanged_sightings_are_never_built(store: Store) -> None:
    a, b = appt("100"), appt("101", "2026-06-12")
    sync(store, [Sighting.of(a), Sighting.of(b)])
    before = stored_rows(store)
    counting = Counting()
    changes = sync(store, [counting.sighting(a), counting.sighting(b)], now=T1)
    assert changes == []
    assert counting.built == []
    assert stored_rows(store) == before


def test_only_changed_sightings_are_built(store: Store) -> None:
    a, b = appt("100"), appt("101", "2026-06-12")
    sync(store, [Sighting.of(a), Sighting.of(b)])
    counting = Counting()
    changed_b = replace(b, status="x", status_class=StatusClass.CANCELLED, eligible=False)
    changes = sync(store, [counting.sighting(a), counting.sighting(changed_b)], now=T1)
    assert counting.built == [b.ident]
    (change,) = changes
    assert (change.kind, change.key, change.before, change.after) == (
        "changed",
        "101",
        b,
        changed_b,
    )
    assert change.moved is False
    row = stored_rows(store)[b.ident]
    assert (row["status"], row["eligible"], row["row_hash"], row["changed_at"]) == (
        "x",
        False,
        changed_b.fingerprint(),
        T1,
    )
    assert row["first_seen"] == T0


def test_a_different_digest_is_a_change_even_with_equal_values(store: Store) -> None:
    """The digest is the source's: it may change while the mapped values do not."""
    a = appt()
    counting = Counting()
    sync(store, [counting.sighting(a, digest="d1" * 16)])
    changes = sync(store, [counting.sighting(a, digest="d2" * 16)], now=T1)
    assert kinds(changes) == [("changed", "100", a.occurrence)]
    assert stored_rows(store)[a.ident]["row_hash"] == "d2" * 16


def test_moved_start_is_a_changed_moved_occurrence(store: Store) -> None:
    a = appt(hour=8)
    assert a.end is not None
    sync(store, [Sighting.of(a)])
    later = replace(a, start=a.start + timedelta(hours=2), end=a.end + timedelta(hours=2))
    (change,) = sync(store, [Sighting.of(later)], now=T1)
    assert (change.kind, change.moved) == ("changed", True)
    assert change.before is not None and change.before.start == a.start
    assert change.after is not None and change.after.start == later.start
    assert stored_rows(store)[a.ident]["start_at"] == later.start


def test_moved_property() -> None:
    a = appt()
    later = replace(a, start=a.start + timedelta(minutes=15))
    relabelled = replace(a, notes="other notes")
    assert AppointmentChange("changed", a.key, a.occurrence, a, later).moved is True
    assert AppointmentChange("changed", a.key, a.occurrence, a, relabelled).moved is False
    assert AppointmentChange("new", a.key, a.occurrence, None, a).moved is False
    assert AppointmentChange("gone", a.key, a.occurrence, a, None).moved is False


def test_not_seen_in_window_is_gone(store: Store) -> None:
    a, b = appt("100"), appt("101", "2026-06-12")
    sync(store, [Sighting.of(a), Sighting.of(b)])
    changes = sync(store, [Sighting.of(a)], now=T1)
    assert kinds(changes) == [("gone", "101", b.occurrence)]
    (gone,) = changes
    assert (gone.before, gone.after, gone.moved) == (b, None, False)
    row = stored_rows(store)[b.ident]
    assert (row["deleted_at"], row["changed_at"]) == (T1, T1)
    # gone once: the next scan without it reports nothing
    assert sync(store, [Sighting.of(a)], now=T2) == []
    assert stored_rows(store)[b.ident]["deleted_at"] == T1


def test_empty_scan_makes_the_whole_window_gone(store: Store) -> None:
    a, b = appt("100"), appt("101", "2026-06-12")
    sync(store, [Sighting.of(a), Sighting.of(b)])
    assert kinds(sync(store, [], now=T1)) == [
        ("gone", "100", a.occurrence),
        ("gone", "101", b.occurrence),
    ]


def test_out_of_window_is_not_gone(store: Store) -> None:
    yesterday = appt("99", "2026-06-09")
    later = appt("105", "2026-06-20")
    inside = appt("100")
    sync(
        store,
        [Sighting.of(yesterday), Sighting.of(later), Sighting.of(inside)],
        window=(D("2026-06-09"), D("2026-06-20")),
    )
    changes = sync(store, [Sighting.of(inside)], now=T1)
    assert changes == []
    rows = stored_rows(store)
    assert rows[yesterday.ident]["deleted_at"] is None
    assert rows[later.ident]["deleted_at"] is None


def test_reappeared_after_gone_is_new(store: Store) -> None:
    a = appt()
    sync(store, [Sighting.of(a)])
    sync(store, [], now=T1)
    counting = Counting()
    (change,) = sync(store, [counting.sighting(a)], now=T2)  # same digest as before it went
    assert (change.kind, change.before, change.after) == ("new", None, a)
    assert counting.built == [a.ident]
    row = stored_rows(store)[a.ident]
    assert (row["deleted_at"], row["changed_at"], row["first_seen"]) == (None, T2, T0)
    assert sync(store, [Sighting.of(a)], now=T2 + timedelta(minutes=1)) == []


def test_a_sighting_repeated_in_one_scan_counts_once(store: Store) -> None:
    a = appt()
    changes = sync(store, [Sighting.of(a), Sighting.of(a)])
    assert kinds(changes) == [("new", "100", a.occurrence)]
    assert len(stored_rows(store)) == 1


def test_occurrences_of_one_series_are_separate_snapshots(store: Store) -> None:
    days = ("2026-06-10", "2026-06-11", "2026-06-12")
    series = [appt("100", day, recurring=True) for day in days]
    assert len(sync(store, [Sighting.of(a) for a in series])) == 3
    changes = sync(store, [Sighting.of(a) for a in series[:2]], now=T1)
    assert kinds(changes) == [("gone", "100", D("2026-06-12"))]


def test_many_occurrences_in_batches(store: Store) -> None:
    """More than one batch (500) of upserts and of gone updates."""
    many = [appt(str(1000 + n)) for n in range(700)]
    assert len(sync(store, [Sighting.of(a) for a in many])) == 700
    assert sync(store, [Sighting.of(a) for a in many], now=T1) == []
    changes = sync(store, [Sighting.of(a) for a in many[:50]], now=T2)
    assert len(changes) == 650 and {c.kind for c in changes} == {"gone"}


def test_load_appointment_and_active_appointments(store: Store) -> None:
    a, b = appt("100"), appt("101", "2026-06-12", patient_key="P2")
    sync(store, [Sighting.of(a), Sighting.of(b)])
    with store.begin() as connection:
        assert snapshots.load_appointment(connection, "100", a.occurrence) == a
        assert snapshots.load_appointment(connection, "100", D("2026-06-12")) is None
        assert sorted(x.key for x in snapshots.active_appointments(connection, WINDOW)) == [
            "100",
            "101",
        ]
        assert [x.key for x in snapshots.active_appointments(connection, WINDOW, ["P2"])] == ["101"]
    sync(store, [Sighting.of(b)], now=T1)
    with store.begin() as connection:
        assert snapshots.load_appointment(connection, "100", a.occurrence) is None
        assert snapshots.load_appointments(connection, [a.ident]) == {a.ident: a}
        assert [x.key for x in snapshots.active_appointments(connection, WINDOW)] == ["101"]


# --- patients ----------------------------------------------------------------------------


def sync_patients(store: Store, seen: list[Patient], now: datetime = T0) -> set[str]:
    with store.begin() as connection:
        return snapshots.sync_patients(connection, seen, now)


def test_sync_patients_returns_new_and_changed_keys_only(store: Store) -> None:
    one, two, three = patient("P1"), patient("P2"), patient("P3")
    assert sync_patients(store, [one, two, three]) == {"P1", "P2", "P3"}
    assert sync_patients(store, [one, two, three], now=T1) == set()
    changed = [
        replace(one, mobile="+12025550109"),
        two,
        replace(three, consent={Channel.SMS: Consent.NO}),
    ]
    assert sync_patients(store, changed, now=T2) == {"P1", "P3"}
    with store.begin() as connection:
        rows = {
            row.key: (row.first_seen, row.changed_at)
            for row in connection.execute(select(patients))
        }
    assert rows == {"P1": (T0, T2), "P2": (T0, T0), "P3": (T0, T2)}


@pytest.mark.parametrize(
    "change",
    [
        {"preference": ReminderType.EMAIL},
        {"preference": None},
        {"consent": {Channel.SMS: Consent.YES, Channel.EMAIL: Consent.UNKNOWN}},
        {"deceased": True},
        {"bad_contacts": ()},
        {"language": "en"},
        {"email": None},
    ],
    ids=["preference", "no preference", "consent", "deceased", "bad contacts", "language", "email"],
)
def test_sync_patients_sees_every_field(store: Store, change: dict[str, Any]) -> None:
    sync_patients(store, [patient()])
    assert sync_patients(store, [replace(patient(), **change)], now=T1) == {"P1"}
    with store.begin() as connection:
        assert snapshots.load_patients(connection, ["P1"]) == {"P1": replace(patient(), **change)}


def test_load_patients_and_known_keys(store: Store) -> None:
    one, two = patient("P1"), patient("P2", preference=None, consent={}, birth_date=None)
    sync_patients(store, [one, two])
    with store.begin() as connection:
        loaded = snapshots.load_patients(connection, ["P1", "P2", "P9", "P1"])
        known = snapshots.known_patient_keys(connection, ["P2", "P9", "P1"])
        assert snapshots.load_patients(connection, []) == {}
        assert snapshots.known_patient_keys(connection, []) == set()
    assert loaded == {"P1": one, "P2": two}
    assert loaded["P1"].consent == {Channel.SMS: Consent.YES, Channel.EMAIL: Consent.NO}
    assert loaded["P1"].preference == ReminderType.CALL_SMS
    assert known == {"P1", "P2"}


def test_stored_appointment_keeps_every_value(store: Store) -> None:
    a = appt(
        provider_keys=("7", "8"),
        host_keys=("100", "101"),
        all_day=True,
        recurring=True,
        end=None,
        facility_key=None,
        service_key=None,
        notes="Übung, 2° piano — «test»",
    )
    sync(store, [Sighting.of(a)])
    with store.begin() as connection:
        (loaded,) = snapshots.load_appointments(connection, [a.ident]).values()
    assert loaded == a
    assert loaded.start.tzinfo is not None and loaded.start.utcoffset() == timedelta(0)


# --- codec --------------------------------------------------------------------------------

APPOINTMENTS = [
    ("plain", appt()),
    (
        "every field",
        appt(
            provider_keys=("7", "8"),
            host_keys=("100", "101"),
            all_day=True,
            recurring=True,
            status="@",
            status_class=StatusClass.CHECKED_IN,
            eligible=False,
        ),
    ),
    ("no end, no facility, no service", appt(end=None, facility_key=None, service_key=None)),
]


@pytest.mark.parametrize("original", [r[1] for r in APPOINTMENTS], ids=[r[0] for r in APPOINTMENTS])
def test_codec_appointment_round_trip(original: Appointment) -> None:
    data = json.loads(json.dumps(appointment_to_dict(original)))
    restored = appointment_from_dict(data)
    assert restored == original
    assert restored.fingerprint() == original.fingerprint()
    assert isinstance(restored.provider_keys, tuple) and isinstance(restored.host_keys, tuple)


def test_codec_instants_in_another_offset_come_back_utc() -> None:
    rome_summer = timezone(timedelta(hours=2))
    original = appt()
    assert original.end is not None
    data = appointment_to_dict(original)
    data["start"] = original.start.astimezone(rome_summer).isoformat()
    data["end"] = original.end.astimezone(rome_summer).isoformat()
    restored = appointment_from_dict(data)
    assert restored == original
    assert restored.start.utcoffset() == timedelta(0)
    assert restored.end is not None and restored.end.utcoffset() == timedelta(0)


PATIENTS = [
    ("every field", patient()),
    ("nothing but the key", Patient(key="P2")),
    (
        "all consents, no preference",
        patient(
            consent={
                Channel.SMS: Consent.YES,
                Channel.EMAIL: Consent.UNKNOWN,
                Channel.VOICE: Consent.NO,
            },
            preference=None,
        ),
    ),
    ("preference none", patient(preference=ReminderType.NONE, deceased=True)),
]


@pytest.mark.parametrize("original", [r[1] for r in PATIENTS], ids=[r[0] for r in PATIENTS])
def test_codec_patient_round_trip(original: Patient) -> None:
    data = json.loads(json.dumps(patient_to_dict(original)))
    restored = patient_from_dict(data)
    assert restored == original
    assert restored.consent == original.consent
    assert restored.preference == original.preference
    assert restored.fingerprint() == original.fingerprint()


def test_codec_patient_values_are_plain_json() -> None:
    data = patient_to_dict(patient())
    assert data["consent"] == {"sms": "yes", "email": "no"}
    assert data["preference"] == "call_sms"
    assert data["birth_date"] == "1980-02-03"
    assert data["bad_contacts"] == ["work_phone"]
