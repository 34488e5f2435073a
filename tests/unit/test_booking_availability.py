"""Free slots (``bridge.booking.availability``) and reasons (``bridge.booking.reasons``): the host's
In Office / Out Of Office markers read as OpenEMR's ``find_appt_popup.php`` reads them, bridge
blocks by weekday, date range and reason, busy times, the grid, the day's frame and the notice.

Friday 27 March 2026 is the day most cases use; every time is clinic-local wall time.
"""

from __future__ import annotations

from datetime import date, datetime, time

import pytest

from bridge.booking.availability import (
    BRIDGE,
    HOST,
    Opening,
    Rules,
    Slot,
    block_openings,
    busy_for,
    busy_times,
    day_slots,
    fits,
    host_openings,
    openings_for,
)
from bridge.booking.reasons import for_flow, resolve
from bridge.booking.settings import BlockSettings, BookingSettings
from bridge.model import Facility, Provider, Service
from bridge.plugin import CalendarEntry, Reference

FRI = date(2026, 3, 27)
SAT = date(2026, 3, 28)
DAY_END = time(17)


def t(text: str) -> time:
    return time.fromisoformat(text)


def marker(kind: str, at: str, *, facility: str = "1", service: str | None = None) -> CalendarEntry:
    return CalendarEntry(kind, FRI, t(at), None, "7", facility, service)


def busy(start: str, end: str, provider: str = "7", day: date = FRI) -> CalendarEntry:
    return CalendarEntry("busy", day, t(start), t(end), provider, "1")


def rules(
    minutes: int = 15,
    step: int = 15,
    *,
    day_start: str = "08:00",
    day_end: str = "17:00",
    earliest: datetime = datetime(2026, 3, 26, 0, 0),
    host_blocks: bool = True,
) -> Rules:
    return Rules(minutes, step, t(day_start), t(day_end), host_blocks, earliest)


def spans(openings: list[Opening]) -> list[tuple[str, str, str | None]]:
    return [(f"{o.start:%H:%M}", f"{o.end:%H:%M}", o.facility_key) for o in openings]


def starts(slots: list[Slot]) -> list[str]:
    return [f"{s.start:%H:%M}" for s in slots]


# --- the host's markers -------------------------------------------------------------------------

MARKERS = [
    # id, markers (kind, time, facility, preferred service), openings for service "5"
    ("nothing: the day is closed", [], []),
    ("in office alone: open to the day's end", [("in_office", "09:00")], [("09:00", "17:00")]),
    (
        "in, out, in, out: two stretches",
        [
            ("in_office", "09:00"),
            ("out_of_office", "12:00"),
            ("in_office", "13:00"),
            ("out_of_office", "16:00"),
        ],
        [("09:00", "12:00"), ("13:00", "16:00")],
    ),
    ("out of office alone opens nothing", [("out_of_office", "09:00")], []),
    (
        "markers in any order",
        [("out_of_office", "12:00"), ("in_office", "09:00")],
        [("09:00", "12:00")],
    ),
    (
        "a second in office while open changes nothing",
        [("in_office", "09:00"), ("in_office", "10:00"), ("out_of_office", "11:00")],
        [("09:00", "11:00")],
    ),
    (
        "in and out at the same time: out wins (OpenEMR tests the out bit last)",
        [("in_office", "09:00"), ("out_of_office", "12:00"), ("in_office", "12:00")],
        [("09:00", "12:00")],
    ),
    (
        "in office kept for another category closes the day for this one",
        [("in_office", "09:00"), ("in_office", "11:00", "1", "10")],
        [("09:00", "11:00")],
    ),
    (
        "in office kept for this category opens it",
        [("in_office", "09:00", "1", "5"), ("out_of_office", "10:00")],
        [("09:00", "10:00")],
    ),
    (
        "in office kept for another category alone opens nothing",
        [("in_office", "09:00", "1", "10")],
        [],
    ),
    ("an in office at the day's end opens nothing", [("in_office", "17:00")], []),
]


@pytest.mark.parametrize(
    ("found", "expected"),
    [(m, e) for _, m, e in MARKERS],
    ids=[i for i, _, _ in MARKERS],
)
def test_host_openings_follow_in_and_out_of_office_markers(
    found: list[tuple[str, ...]], expected: list[tuple[str, str]]
) -> None:
    entries = [
        marker(
            m[0], m[1], facility=m[2] if len(m) > 2 else "1", service=m[3] if len(m) > 3 else None
        )
        for m in found
    ]
    openings = host_openings(entries, "5", DAY_END)
    assert spans(openings) == [(a, b, "1") for a, b in expected]
    assert {o.office for o in openings} <= {HOST}


def test_a_move_to_another_facility_closes_one_place_and_opens_the_other() -> None:
    entries = [
        marker("in_office", "09:00", facility="1"),
        marker("in_office", "12:00", facility="2"),
        marker("out_of_office", "15:00", facility="2"),
    ]
    assert spans(host_openings(entries, "5", DAY_END)) == [
        ("09:00", "12:00", "1"),
        ("12:00", "15:00", "2"),
    ]


def test_busy_entries_are_not_markers() -> None:
    assert host_openings([busy("09:00", "10:00")], "5", DAY_END) == []


# --- blocks kept in the bridge --------------------------------------------------------------------


def block(**values: object) -> BlockSettings:
    base: dict[str, object] = {
        "provider": "7",
        "location": "1",
        "days": ["fri"],
        "start": "09:00",
        "end": "12:00",
    }
    return BlockSettings.model_validate({**base, **values})


def test_blocks_by_weekday_provider_and_reason() -> None:
    blocks = [
        block(),
        block(days=["Saturday"], start="10:00", end="11:00"),
        block(provider="8"),
        block(start="14:00", end="16:00", reasons=["cleaning"]),
    ]
    assert spans(block_openings(blocks, "7", FRI, "checkup")) == [("09:00", "12:00", "1")]
    assert spans(block_openings(blocks, "7", FRI, "cleaning")) == [
        ("09:00", "12:00", "1"),
        ("14:00", "16:00", "1"),
    ]
    assert spans(block_openings(blocks, "7", SAT, "checkup")) == [("10:00", "11:00", "1")]
    assert spans(block_openings(blocks, "8", FRI, "checkup")) == [("09:00", "12:00", "1")]
    assert {o.office for o in block_openings(blocks, "7", FRI, "cleaning")} == {BRIDGE}


@pytest.mark.parametrize(
    ("from_date", "until", "covered"),
    [
        (None, None, True),
        ("2026-03-27", None, True),
        ("2026-03-28", None, False),
        (None, "2026-03-27", True),
        (None, "2026-03-26", False),
        ("2026-03-01", "2026-03-31", True),
    ],
)
def test_blocks_by_date_range(from_date: str | None, until: str | None, covered: bool) -> None:
    found = block_openings([block(from_date=from_date, until=until)], "7", FRI, "checkup")
    assert bool(found) is covered


def test_a_block_must_end_after_it_starts_and_name_weekdays() -> None:
    with pytest.raises(ValueError, match="end must be after start"):
        block(start="12:00", end="12:00")
    with pytest.raises(ValueError, match="is not a weekday"):
        block(days=["fry"])


# --- busy times ---------------------------------------------------------------------------------


def test_busy_times_take_appointments_events_and_closures_whole_days_whole() -> None:
    entries = [
        busy("10:00", "10:30"),
        CalendarEntry("busy", FRI, time(0), None, "7", "1", all_day=True),
        CalendarEntry("closed", FRI, time(0), None, "", None, all_day=True),
        marker("in_office", "09:00"),
        CalendarEntry("busy", FRI, t("11:00"), None, "7", "1"),  # no end: the whole day
    ]
    assert busy_times(entries) == [
        (time(0), time(23, 59, 59)),
        (time(0), time(23, 59, 59)),
        (time(0), time(23, 59, 59)),
        (t("10:00"), t("10:30")),
    ]


def test_busy_for_a_provider_counts_their_entries_and_clinic_closures_only() -> None:
    entries = [
        busy("10:00", "10:30"),
        busy("11:00", "11:30", provider="8"),
        busy("12:00", "12:30", day=SAT),
        CalendarEntry("closed", FRI, t("15:00"), t("16:00"), "", None),
    ]
    assert busy_for(entries, "7", FRI) == [(t("10:00"), t("10:30")), (t("15:00"), t("16:00"))]
    assert busy_for(entries, "8", FRI) == [(t("11:00"), t("11:30")), (t("15:00"), t("16:00"))]


# --- the slots of a day ---------------------------------------------------------------------------


def open_at(start: str, end: str, facility: str | None = "1", office: str = HOST) -> Opening:
    return Opening(t(start), t(end), facility, office)


def test_slots_fill_an_opening_on_the_grid_and_stop_where_a_visit_no_longer_fits() -> None:
    slots = day_slots([open_at("09:00", "10:00")], [], rules(minutes=30), FRI, "7")
    assert starts(slots) == ["09:00", "09:15", "09:30"]
    first = slots[0]
    assert (first.end, first.provider_key, first.facility_key, first.office) == (
        t("09:30"),
        "7",
        "1",
        HOST,
    )
    assert slots[0].key == "7.1.202603270900"


def test_the_grid_counts_from_midnight_not_from_the_opening() -> None:
    slots = day_slots([open_at("09:10", "10:00")], [], rules(step=20, minutes=20), FRI, "7")
    assert starts(slots) == ["09:20", "09:40"]


def test_existing_appointments_take_their_time() -> None:
    taken = [(t("09:30"), t("09:45"))]
    slots = day_slots([open_at("09:00", "10:30")], taken, rules(minutes=30), FRI, "7")
    # 09:00-09:30 ends as the appointment starts; 09:45 starts as it ends.
    assert starts(slots) == ["09:00", "09:45", "10:00"]


def test_the_minimum_notice_hides_slots_starting_too_soon() -> None:
    soon = rules(earliest=datetime(2026, 3, 27, 9, 20))
    slots = day_slots([open_at("09:00", "10:00")], [], soon, FRI, "7")
    assert starts(slots) == ["09:30", "09:45"]
    exact = rules(earliest=datetime(2026, 3, 27, 9, 30))
    assert starts(day_slots([open_at("09:00", "10:00")], [], exact, FRI, "7")) == ["09:30", "09:45"]


def test_openings_are_cut_to_the_hosts_day() -> None:
    early_late = [open_at("06:00", "08:30"), open_at("16:30", "20:00", office=BRIDGE)]
    slots = day_slots(early_late, [], rules(step=30, minutes=30), FRI, "7")
    assert starts(slots) == ["08:00", "16:30"]


def test_a_host_opening_and_a_block_at_the_same_place_give_one_slot_marked_host() -> None:
    both = [open_at("09:00", "09:30", office=BRIDGE), open_at("09:00", "09:30")]
    slots = day_slots(both, [], rules(minutes=30), FRI, "7")
    assert [(starts([s])[0], s.office) for s in slots] == [("09:00", HOST)]
    elsewhere = [open_at("09:00", "09:30"), open_at("09:00", "09:30", facility="2", office=BRIDGE)]
    found = day_slots(elsewhere, [], rules(minutes=30), FRI, "7")
    assert [(s.facility_key, s.office) for s in found] == [("1", HOST), ("2", BRIDGE)]


def test_a_whole_day_closure_leaves_nothing() -> None:
    closed = busy_times([CalendarEntry("closed", FRI, time(0), None, "", None, all_day=True)])
    assert day_slots([open_at("09:00", "12:00")], closed, rules(), FRI, "7") == []


def test_openings_for_one_provider_and_day_from_the_host_and_the_bridge() -> None:
    entries = [
        marker("in_office", "09:00"),
        marker("out_of_office", "10:00"),
        CalendarEntry("in_office", FRI, t("08:00"), None, "8", "1"),  # another provider
        CalendarEntry("in_office", SAT, t("08:00"), None, "7", "1"),  # another day
    ]
    blocks = [block(start="14:00", end="15:00")]
    both = openings_for(entries, blocks, "7", FRI, "checkup", "5", rules())
    assert spans(both) == [("09:00", "10:00", "1"), ("14:00", "15:00", "1")]
    bridge_only = openings_for(entries, blocks, "7", FRI, "checkup", "5", rules(host_blocks=False))
    assert spans(bridge_only) == [("14:00", "15:00", "1")]


# --- the writer's re-check ------------------------------------------------------------------------


def slot(start: str, end: str, facility: str | None = "1") -> Slot:
    return Slot(FRI, t(start), t(end), "7", facility, HOST)


def test_fits_inside_open_hours_and_overlapping_nothing() -> None:
    openings = [open_at("09:00", "12:00")]
    assert fits([], openings, slot("09:00", "09:30")) is None
    assert fits([], openings, slot("11:45", "12:15")) == (
        "the provider no longer takes bookings at that time"
    )
    assert fits([], openings, slot("09:00", "09:30", facility="2")) == (
        "the provider no longer takes bookings at that time"
    )
    assert fits([busy("09:15", "09:30")], openings, slot("09:00", "09:30")) == (
        "the time was taken in the meantime"
    )
    assert fits([busy("09:15", "09:30", provider="8")], openings, slot("09:00", "09:30")) is None
    assert fits([busy("09:30", "10:00")], openings, slot("09:00", "09:30")) is None
    closure = CalendarEntry("closed", FRI, time(0), None, "", None, all_day=True)
    assert fits([closure], openings, slot("09:00", "09:30")) == (
        "the time was taken in the meantime"
    )


def test_fits_treats_no_facility_as_none() -> None:
    assert (
        fits([], [Opening(t("09:00"), t("10:00"), "", HOST)], slot("09:00", "09:15", None)) is None
    )


# --- reasons --------------------------------------------------------------------------------------


def reference() -> Reference:
    return Reference(
        providers={
            "7": Provider("7", "Ada", "Rossi"),
            "8": Provider("8", "Ben", "Okafor"),
            "9": Provider("9", "Old", "Doctor", active=False),
        },
        facilities={"1": Facility("1", "Main"), "2": Facility("2", "North")},
        services={
            "2": Service("2", "In Office", 0, "in_office", for_patients=False),
            "5": Service("5", "Office Visit", 15, "office_visit"),
            "10": Service("10", "New Patient", 30, "new_patient"),
            "12": Service("12", "Assessment", 0, "assessment"),
        },
    )


def booking(*reasons: dict[str, object]) -> BookingSettings:
    return BookingSettings.model_validate({"enabled": True, "reasons": list(reasons)})


def test_reason_duration_comes_from_the_category_unless_the_reason_sets_minutes() -> None:
    settings = booking(
        {"key": "visit", "name": "Visit", "service": "5"},
        {"key": "first", "name": "First visit", "service": "10"},
        {"key": "long", "name": "Long visit", "service": "5", "minutes": 45},
        {"key": "plain", "name": "Assessment", "service": "12"},
    )
    reasons, problems = resolve(settings, reference())
    assert problems == []
    assert [(r.key, r.minutes, r.service_name) for r in reasons] == [
        ("visit", 15, "Office Visit"),
        ("first", 30, "New Patient"),
        ("long", 45, "Office Visit"),
        ("plain", 15, "Assessment"),  # a category without a duration: OpenEMR's 15 minutes
    ]


def test_reasons_name_active_providers_and_known_places() -> None:
    settings = booking(
        {"key": "all", "name": "All", "service": "5"},
        {"key": "ada", "name": "Ada", "service": "5", "providers": ["7", "42"]},
        {"key": "gone", "name": "Gone", "service": "5", "providers": ["9"]},
        {"key": "north", "name": "North", "service": "5", "locations": ["2", "3"]},
        {"key": "marker", "name": "Marker", "service": "2"},
        {"key": "missing", "name": "Missing", "service": "99"},
    )
    reasons, problems = resolve(settings, reference())
    assert [(r.key, r.providers, r.locations) for r in reasons] == [
        ("all", ("7", "8"), ()),
        ("ada", ("7",), ()),
        ("north", ("7", "8"), ("2", "3")),
    ]
    assert problems == [
        "booking.reasons[1] (ada): provider '42' is not on the host",
        "booking.reasons[2] (gone): none of its providers is active on the host",
        "booking.reasons[3] (north): location '3' is not a facility on the host",
        "booking.reasons[4] (marker): service '2' is for provider or clinic events",
        "booking.reasons[5] (missing): service '99' is not a visit category on the host",
    ]


def test_reasons_by_flow_and_by_the_keys_a_link_allows() -> None:
    settings = booking(
        {
            "key": "first",
            "name": {"en": "First visit", "it": "Prima visita"},
            "service": "10",
            "flows": ["new"],
        },
        {"key": "visit", "name": "Visit", "service": "5", "flows": ["existing", "recall"]},
        {"key": "clean", "name": "Cleaning", "service": "5"},
    )
    reasons, _ = resolve(settings, reference())
    assert [r.key for r in for_flow(reasons, "new")] == ["first", "clean"]
    assert [r.key for r in for_flow(reasons, "recall")] == ["visit", "clean"]
    assert [r.key for r in for_flow(reasons, "recall", ["clean"])] == ["clean"]
    assert [r.key for r in for_flow(reasons, "treatment", [])] == []
    assert reasons[0].label("it") == "Prima visita"
    assert reasons[0].label("fr") == "First visit"
