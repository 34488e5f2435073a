"""The mirror: applied in arrival order, an older MSH-7 never rolls an appointment back, an
ending event without timing ends what is held (or leaves a tombstone). SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from bridge.hl7.inbox import recent, store_batch
from bridge.hl7.intake import Intake
from bridge.hl7.mirror import apply_pending, held_appointment, read_patients
from bridge.hl7.tables import MessageStatus, resources
from bridge.model import StatusClass
from bridge.store import Store
from tests.hl7_samples import mapping, siu, store_fixture  # noqa: F401 (the store fixture)

NOW = datetime(2026, 3, 27, 8, tzinfo=UTC)
START = datetime(2026, 3, 30, 9, 30)
LATER = datetime(2026, 3, 31, 15, 0)


def feed(store: Store, *messages: bytes) -> None:
    """Store ``messages`` (in this order) and apply them."""
    intake = Intake(mapping(), ZoneInfo("Europe/Rome"), "US")
    with store.begin() as connection:
        store_batch(connection, [intake.receive(m, "test", NOW) for m in messages], NOW)
        apply_pending(connection, NOW, intake)


def held(store: Store, key: str = "K1") -> tuple[object, dict[str, str]]:
    with store.begin() as connection:
        return held_appointment(connection, key)


def statuses(store: Store) -> dict[str, str]:
    with store.begin() as connection:
        return {m.control_id: m.status for m in recent(connection)}


def test_a_booking_then_a_move_then_a_cancellation(store: Store) -> None:
    feed(store, siu("C1", "K1", "P1", START, sent="20260327080000"))
    appointment, echo = held(store)
    assert appointment.start == datetime(2026, 3, 30, 7, 30, tzinfo=UTC)
    assert echo["filler"] == "K1"
    feed(store, siu("C2", "K1", "P1", LATER, event="S13", sent="20260327090000"))
    assert held(store)[0].start == datetime(2026, 3, 31, 13, 0, tzinfo=UTC)
    feed(
        store, siu("C3", "K1", "P1", LATER, event="S15", status="Cancelled", sent="20260327100000")
    )
    appointment = held(store)[0]
    assert appointment.status_class == StatusClass.CANCELLED and not appointment.eligible
    assert set(statuses(store).values()) == {MessageStatus.APPLIED}


def test_an_older_message_arriving_late_changes_nothing(store: Store) -> None:
    cancelled = siu("C2", "K1", "P1", START, event="S15", status="Cancelled", sent="20260327100000")
    booked = siu("C1", "K1", "P1", START, sent="20260327080000")
    feed(store, cancelled)
    feed(store, booked)  # the S12 sent first arrives second
    assert held(store)[0].status_class == StatusClass.CANCELLED
    assert statuses(store) == {"C2": "applied", "C1": "stale"}
    with store.begin() as connection:
        reason = next(m.reason for m in recent(connection) if m.control_id == "C1")
    assert reason is not None and "older than the state held" in reason


def test_in_one_batch_the_same_rule_holds_and_ties_go_to_the_later_arrival(store: Store) -> None:
    feed(
        store,
        siu("C3", "K1", "P1", LATER, event="S14", sent="20260327100000"),
        siu("C1", "K1", "P1", START, sent="20260327080000"),
        siu("C4", "K1", "P1", LATER, event="S26", status="Cancelled", sent="20260327100000"),
    )
    assert held(store)[0].status_class == StatusClass.NO_SHOW
    assert statuses(store) == {"C3": "applied", "C1": "stale", "C4": "applied"}


def test_an_ending_event_without_timing_ends_what_is_held(store: Store) -> None:
    feed(store, siu("C1", "K1", "P1", START, sent="20260327080000"))
    cancel = siu("C2", "K1", "P1", START, event="S15", status="Cancelled", sent="20260327090000")
    cancel = cancel.replace(b"^^30^20260330093000^20260330100000", b"").replace(
        b"|CHECK^Check-up|20260330093000", b"|CHECK^Check-up|"
    )
    feed(store, cancel)
    appointment = held(store)[0]
    assert appointment.status_class == StatusClass.CANCELLED
    assert appointment.start == datetime(2026, 3, 30, 7, 30, tzinfo=UTC)  # kept from the S12


def test_a_cancellation_of_an_unknown_appointment_leaves_a_tombstone(store: Store) -> None:
    cancel = siu("C2", "K9", "P1", START, event="S15", status="Cancelled", sent="20260327090000")
    cancel = cancel.replace(b"^^30^20260330093000^20260330100000", b"").replace(
        b"|CHECK^Check-up|20260330093000", b"|CHECK^Check-up|"
    )
    feed(store, cancel)
    assert held(store, "K9")[0] is None
    feed(store, siu("C1", "K9", "P1", START, sent="20260327080000"))  # the older booking
    assert held(store, "K9")[0] is None  # stays dead
    assert statuses(store) == {"C2": "applied", "C1": "stale"}


def test_a_deleted_appointment_is_no_longer_held(store: Store) -> None:
    feed(store, siu("C1", "K1", "P1", START, sent="20260327080000"))
    feed(store, siu("C2", "K1", "P1", START, event="S17", status="Deleted", sent="20260327090000"))
    appointment, echo = held(store)
    assert appointment is None and echo["filler"] == "K1"


def test_patients_follow_their_newest_message_and_resources_are_kept(store: Store) -> None:
    feed(store, siu("C2", "K2", "P1", START, mobile="+12025550199", sent="20260327090000"))
    feed(store, siu("C1", "K1", "P1", START, mobile="+12025550123", sent="20260327080000"))
    with store.begin() as connection:
        patient = read_patients(connection, ["P1", "nobody"])
        kinds = {(r.kind, r.key) for r in connection.execute(sa.select(resources))}
    assert [p.mobile for p in patient] == ["+12025550199"]
    assert kinds == {("provider", "P1"), ("facility", "MAIN"), ("service", "CHECK")}


def test_ignored_events_are_kept_and_never_applied(store: Store) -> None:
    feed(store, siu("C1", "K1", "P1", START, event="S23"))
    assert held(store)[0] is None
    assert statuses(store) == {"C1": "ignored"}


def test_a_message_the_mapping_no_longer_reads_is_quarantined_when_applied(store: Store) -> None:
    accepted = Intake(mapping(), ZoneInfo("Europe/Rome"), "US")
    with store.begin() as connection:
        store_batch(connection, [accepted.receive(siu("C1", "K1", "P1", START), "test", NOW)], NOW)
    # The site's mapping changed between the ACK and the apply: S12 is no longer listed.
    changed = mapping().model_copy(update={"events": {"SIU^S13": "moved"}})
    with store.begin() as connection:
        report = apply_pending(connection, NOW, Intake(changed, ZoneInfo("Europe/Rome"), "US"))
        row = recent(connection)[0]
    assert (report.handled, report.applied) == (1, 0)
    assert row.status == "quarantined" and row.code == 201
    assert held(store)[0] is None
