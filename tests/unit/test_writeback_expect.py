"""A command's picture of the appointment and what staff changed since."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

from bridge.clock import parse_instant
from bridge.model import Appointment, StatusClass
from bridge.writeback_expect import differences, expectation

START = parse_instant("2026-03-28T09:00:00Z")
APPT = Appointment(
    "12",
    date(2026, 3, 28),
    "3",
    START,
    None,
    "-",
    StatusClass.SCHEDULED,
    True,
    provider_keys=("1",),
    facility_key="4",
)


def test_nothing_expected_means_nothing_changed() -> None:
    assert differences(None, APPT) == []
    assert differences({}, replace(APPT, status="@")) == []


def test_each_change_is_named_without_patient_data() -> None:
    seen = expectation(APPT)
    assert differences(seen, APPT) == []
    moved = replace(APPT, start=START + timedelta(minutes=30), status="@", provider_keys=("2",))
    changed = differences(seen, moved)
    assert [c.split()[0] for c in changed] == ["status", "start", "providers"]
    assert "'-' -> '@'" in changed[0]


def test_the_picture_survives_json() -> None:
    import json

    assert differences(json.loads(json.dumps(expectation(APPT))), APPT) == []
