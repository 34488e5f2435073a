"""Patients racing for slots, with real threads against real MariaDB OpenEMR tables and the store
on SQLite and on PostgreSQL: twenty bookings of one slot at once give exactly one appointment
(the issue's Show item), and bookings of different slots, or of different providers by new
patients, all succeed side by side.

Every thread calls ``bridge.booking.booking.submit`` on one shared runtime, as the booking pages'
worker threads do; a barrier starts them together.
"""

from __future__ import annotations

import threading
import time as _time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, time
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa

from bridge.booking.availability import Slot
from bridge.booking.booking import BookingResult, NewPatient, Request, submit
from bridge.booking.offers import Offers
from bridge.booking.reasons import Reason
from bridge.booking.tables import bookings
from bridge.demo.host import OpenEmrHost
from bridge.store.schema import jobs, writebacks
from tests.integration.conftest import Bridge

pytestmark = pytest.mark.mariadb

NOW = "2026-03-27T07:00:00Z"  # Friday 08:00 in Rome
MON = date(2026, 3, 30)
RACERS = 20
POOL = 15  # the writer's connections: SQLAlchemy's pool of 5 and 10 more; the rest wait for one
HOLD_SECONDS = 8.0  # below the booking lock's 10 s wait
FIRST_PID = 10
LATE_PID = FIRST_PID + RACERS  # not racing
IN_OFFICE, OUT_OF_OFFICE = 2, 3

BOOKING: dict[str, Any] = {
    "enabled": True,
    "reasons": [
        {"key": "checkup", "name": "Check-up", "service": "5"},
        {"key": "first", "name": "First visit", "service": "10", "flows": ["new"]},
    ],
}
BOTH_STORES = pytest.mark.parametrize("store_url", ["sqlite", "postgresql"], indirect=True)
T = TypeVar("T")


@pytest.fixture
def bridge(make_bridge: Any, host: OpenEmrHost) -> Bridge:
    """Dr Rossi (1) and Dr Okafor (2) in office on Monday 09:00-12:00; twenty patients."""
    for provider in (1, 2):
        for catid, at in ((IN_OFFICE, "09:00"), (OUT_OF_OFFICE, "12:00")):
            host.add_appointment(None, MON, at, minutes=0, catid=catid, provider=provider)
    for pid in range(FIRST_PID, FIRST_PID + RACERS + 1):
        host.add_patient(pid, f"Racer{pid}", "Synthetic")
    made: Bridge = make_bridge(NOW, booking=BOOKING)
    return made


def offered(bridge: Bridge, key: str, flow: Any, provider: str) -> tuple[Reason, dict[str, Slot]]:
    offers = Offers(bridge.runtime)
    reason = offers.reason(key, flow)
    assert reason is not None
    slots = offers.slots(reason, MON, MON, provider=provider)
    return reason, {f"{s.start:%H:%M}": s for s in slots}


def together(calls: list[Callable[[], T]], meanwhile: Callable[[], None] | None = None) -> list[T]:
    """Run ``calls`` in threads released at the same moment (and ``meanwhile`` in this one);
    their results in order."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = calls[index]()
        except BaseException as exc:  # the test reports it, with the thread's own error
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    if meanwhile is not None:
        meanwhile()
    for thread in threads:
        thread.join(timeout=120)
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, errors[0]
    return results


@contextmanager
def host_held(host: OpenEmrHost, racers: int) -> Iterator[Callable[[], None]]:
    """The appointments table write-locked by another session (as a long report or a backup
    would), so that every racing booking reaches the host and waits there, for the table or for
    the booking's own named lock; the callable releases the table once they all wait (or after
    ``HOLD_SECONDS``), letting them go at the same moment."""
    database = host.engine.url.database
    waiting = sa.text(
        "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = :db "
        "AND (STATE LIKE '%metadata lock%' OR STATE = 'User lock')"
    )
    with host.engine.connect() as holder, host.engine.connect() as watcher:
        holder.execute(sa.text("LOCK TABLES openemr_postcalendar_events WRITE"))
        released = False

        def release() -> None:
            nonlocal released
            deadline = _time.monotonic() + HOLD_SECONDS
            while _time.monotonic() < deadline:
                found = watcher.execute(waiting, {"db": database}).scalar_one()
                watcher.commit()
                if found >= min(racers, POOL):
                    break
                _time.sleep(0.02)
            holder.execute(sa.text("UNLOCK TABLES"))
            released = True

        try:
            yield release
        finally:
            if not released:
                holder.execute(sa.text("UNLOCK TABLES"))


def booking_of(bridge: Bridge, request: Request) -> Callable[[], BookingResult]:
    return lambda: submit(bridge.runtime, request)


def appointments(host: OpenEmrHost) -> list[dict[str, Any]]:
    """The patients' rows of Monday (the markers have no patient)."""
    return sorted(
        (r for r in host.rows("openemr_postcalendar_events") if r["pc_pid"]),
        key=lambda r: (r["pc_aid"], r["pc_startTime"]),
    )


def store_rows(bridge: Bridge, table: sa.Table) -> list[dict[str, Any]]:
    with bridge.runtime.store.begin("read") as connection:
        return [dict(r._mapping) for r in connection.execute(sa.select(table))]


@BOTH_STORES
def test_twenty_patients_racing_for_one_slot_make_exactly_one_appointment(
    bridge: Bridge, host: OpenEmrHost
) -> None:
    reason, slots = offered(bridge, "checkup", "existing", "1")
    # The clinic has been taking bookings: the writer knows the host's tables already.
    early = Request("existing", reason, slots["09:00"], "en", patient_key=str(LATE_PID))
    assert submit(bridge.runtime, early).state == "booked"
    slot = slots["10:00"]
    requests = [
        Request("existing", reason, slot, "en", patient_key=str(pid))
        for pid in range(FIRST_PID, FIRST_PID + RACERS)
    ]
    with host_held(host, RACERS) as release:
        results = together([booking_of(bridge, r) for r in requests], meanwhile=release)

    assert Counter(r.state for r in results) == {"booked": 1, "taken": RACERS - 1}
    winner = next(i for i, r in enumerate(results) if r.state == "booked")
    assert {r.detail for r in results if r.state == "taken"} == {
        "the time was taken in the meantime"
    }
    [early_row, row] = appointments(host)
    assert (early_row["pc_pid"], early_row["pc_startTime"]) == (str(LATE_PID), time(9))
    assert (row["pc_pid"], row["pc_aid"], row["pc_startTime"], row["pc_endTime"]) == (
        str(FIRST_PID + winner),
        "1",
        time(10),
        time(10, 15),
    )
    assert results[winner].reference in row["pc_hometext"]
    stored = store_rows(bridge, bookings)
    assert Counter(b["status"] for b in stored) == {"booked": 2, "refused": RACERS - 1}
    assert Counter(w["status"] for w in store_rows(bridge, writebacks)) == {
        "done": 2,
        "refused": RACERS - 1,
    }
    # One staff note, one confirmation (SMS and email), for the winner only.
    assert sorted(n["pid"] for n in host.rows("pnotes")) == [FIRST_PID + winner, LATE_PID]
    assert sorted(
        (j["patient_key"], j["channel"])
        for j in store_rows(bridge, jobs)
        if j["patient_key"] != str(LATE_PID)
    ) == [(str(FIRST_PID + winner), "email"), (str(FIRST_PID + winner), "sms")]
    # The losers see the slot gone; the next one is still there.
    _, after = offered(bridge, "checkup", "existing", "1")
    assert "10:00" not in after and "10:15" in after


@BOTH_STORES
def test_different_slots_of_one_provider_booked_at_once_all_succeed(
    bridge: Bridge, host: OpenEmrHost
) -> None:
    reason, slots = offered(bridge, "checkup", "existing", "1")
    wanted = ["09:00", "09:15", "10:30", "11:45"]
    requests = [
        Request("existing", reason, slots[at], "en", patient_key=str(FIRST_PID + i))
        for i, at in enumerate(wanted)
    ]
    with host_held(host, len(requests)) as release:
        results = together([booking_of(bridge, r) for r in requests], meanwhile=release)
    assert [r.state for r in results] == ["booked"] * len(wanted)
    assert [(r["pc_pid"], f"{r['pc_startTime']:%H:%M}") for r in appointments(host)] == [
        (str(FIRST_PID + i), at) for i, at in enumerate(wanted)
    ]


def test_overlapping_visits_of_different_lengths_at_once_only_one_lands(
    bridge: Bridge, host: OpenEmrHost
) -> None:
    """A 30-minute first visit at 11:00 and a 15-minute check-up at 11:15 are different slots
    that overlap: whichever the host takes first, the other is refused."""
    checkup, slots = offered(bridge, "checkup", "existing", "1")
    first, long_slots = offered(bridge, "first", "new", "1")
    newcomer = NewPatient(
        "Nova", "Synthetic", date(1990, 1, 2), "female", "+12025550160", None, True, False, "en"
    )
    calls = [
        booking_of(bridge, Request("existing", checkup, slots["11:15"], "en", "10")),
        booking_of(bridge, Request("new", first, long_slots["11:00"], "en", new_patient=newcomer)),
    ]
    with host_held(host, len(calls)) as release:
        results = together(calls, meanwhile=release)
    assert sorted(r.state for r in results) == ["booked", "taken"] or sorted(
        r.state for r in results
    ) == ["pending", "taken"]
    [row] = appointments(host)
    if results[0].state == "booked":
        assert (row["pc_pid"], f"{row['pc_startTime']:%H:%M}") == ("10", "11:15")
        assert [p for p in host.rows("patient_data") if p["fname"] == "Nova"] == []
    else:
        assert (f"{row['pc_startTime']:%H:%M}", row["pc_endTime"]) == ("11:00", time(11, 30))


def test_new_patients_booking_two_providers_at_once_get_a_chart_each(
    bridge: Bridge, host: OpenEmrHost
) -> None:
    """Different providers are different locks: the two registrations run side by side, and
    ``MAX(pid) + 1`` read under a row lock still gives each its own number."""
    calls = []
    for index, provider in enumerate(("1", "2")):
        reason, slots = offered(bridge, "first", "new", provider)
        person = NewPatient(
            f"New{index}",
            "Synthetic",
            date(1990, 1, 2 + index),
            "male",
            None,
            f"new{index}@example.test",
            False,
            True,
            "en",
        )
        calls.append(
            booking_of(bridge, Request("new", reason, slots["09:00"], "en", new_patient=person))
        )
    with host_held(host, len(calls)) as release:
        results = together(calls, meanwhile=release)
    assert [r.state for r in results] == ["pending", "pending"]
    by_name = {
        p["fname"]: str(p["pid"]) for p in host.rows("patient_data") if p["fname"].startswith("New")
    }
    last = LATE_PID
    assert sorted(int(pid) for pid in by_name.values()) == [last + 1, last + 2]
    assert [(r["pc_aid"], r["pc_pid"]) for r in appointments(host)] == [
        ("1", by_name["New0"]),
        ("2", by_name["New1"]),
    ]
