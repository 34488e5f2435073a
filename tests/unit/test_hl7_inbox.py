"""Storing received messages in batches: resends recognised, quarantined ones judged again.
On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from bridge.hl7.inbox import quarantined_ids, recent, requeue, store_batch, stored_message
from bridge.hl7.intake import Intake, Received
from bridge.hl7.tables import MessageStatus
from bridge.store import Store
from tests.hl7_samples import mapping, siu, store_fixture  # noqa: F401 (the store fixture)

NOW = datetime(2026, 3, 27, 8, tzinfo=UTC)
START = datetime(2026, 3, 30, 9, 30)


def receive(raw: bytes) -> Received:
    return Intake(mapping(), ZoneInfo("Europe/Rome"), "US").receive(raw, "test", NOW)


def test_new_messages_are_stored_with_their_verdict(store: Store) -> None:
    good = receive(siu("C1", "K1", "P1", START))
    bad = receive(siu("C2", "", "P1", START).replace(b"SCH|-P||", b"SCH|||"))
    with store.begin() as connection:
        stored = store_batch(connection, [good, bad], NOW)
    assert [(s.accepted, s.duplicate) for s in stored] == [(True, False), (False, False)]
    assert stored[1].problem is not None and stored[1].problem.code == 101
    with store.begin() as connection:
        rows = {m.control_id: m for m in recent(connection)}
        assert quarantined_ids(connection) == [stored[1].id]
    assert rows["C1"].status == MessageStatus.PENDING and rows["C1"].appointment_key == "K1"
    assert rows["C1"].raw == siu("C1", "K1", "P1", START)
    assert rows["C2"].status == MessageStatus.QUARANTINED
    assert rows["C2"].reason is not None and "no appointment key" in rows["C2"].reason


def test_a_resend_is_acknowledged_again_not_stored_twice(store: Store) -> None:
    raw = siu("C1", "K1", "P1", START)
    with store.begin() as connection:
        first = store_batch(connection, [receive(raw)], NOW)[0]
    later = datetime(2026, 3, 27, 9, tzinfo=UTC)
    with store.begin() as connection:
        again = store_batch(connection, [receive(raw), receive(raw)], later)
    assert [(s.id, s.accepted, s.duplicate) for s in again] == [(first.id, True, True)] * 2
    with store.begin() as connection:
        rows = recent(connection)
    assert len(rows) == 1 and rows[0].times_seen == 3 and rows[0].last_seen == later


def test_a_control_id_reused_for_other_content_loses_nothing(store: Store) -> None:
    booked = receive(siu("C1", "K1", "P1", START))
    cancelled = receive(siu("C1", "K1", "P1", START, event="S15", status="Cancelled"))
    with store.begin() as connection:
        stored = store_batch(connection, [booked, cancelled], NOW)
    assert stored[0].id != stored[1].id and not any(s.duplicate for s in stored)


def test_a_resent_quarantined_message_is_judged_again(store: Store) -> None:
    raw = siu("C1", "K1", "P1", START, event="S99")
    with store.begin() as connection:
        first = store_batch(connection, [receive(raw)], NOW)[0]
    assert not first.accepted and first.problem is not None and first.problem.code == 201
    # The site adds the event to its mapping; the sender resends the same message.
    fixed = mapping().model_copy(update={"events": {**mapping().events, "SIU^S99": "modified"}})
    item = Intake(fixed, ZoneInfo("Europe/Rome"), "US").receive(raw, "test", NOW)
    with store.begin() as connection:
        again = store_batch(connection, [item], NOW)[0]
        row = stored_message(connection, first.id)
    assert (again.id, again.accepted, again.duplicate) == (first.id, True, True)
    assert row is not None and row.status == MessageStatus.PENDING and row.reason is None


def test_requeue_stores_a_new_verdict(store: Store) -> None:
    with store.begin() as connection:
        first = store_batch(connection, [receive(siu("C1", "K1", "P1", START))], NOW)[0]
        keyless = siu("C1", "", "P1", START).replace(b"SCH|-P||", b"SCH|||")
        requeue(connection, first.id, receive(keyless))
        row = stored_message(connection, first.id)
    assert row is not None and row.status == MessageStatus.QUARANTINED
