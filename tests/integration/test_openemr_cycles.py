"""Cycles against a real MariaDB OpenEMR: change detection, sending, the last check before a send,
crash recovery without duplicates, and what the bridge writes back beside OpenEMR's own module.

Clinic in Europe/Rome; Friday 2026-03-27. 06:30 UTC is before the 09:00 window opens (nothing
goes out), 08:05 UTC is 09:05 in Rome (everything due goes out).
"""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import date, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from bridge.demo.host import OpenEmrHost, Repeat
from bridge.errors import HostUnavailable
from bridge.model import Channel
from bridge.store import jobs as queue
from bridge.store.rejects import open_rejects
from bridge.store.schema import job_events
from tests.integration.conftest import Bridge, utc

pytestmark = pytest.mark.mariadb

BEFORE_WINDOW = "2026-03-27T06:30:00Z"
IN_WINDOW = "2026-03-27T08:05:00Z"
D28, D29, D30 = date(2026, 3, 28), date(2026, 3, 29), date(2026, 3, 30)


def patients(host: OpenEmrHost, count: int) -> None:
    for pid in range(1, count + 1):
        host.add_patient(pid, f"Patient{pid}", "Synthetic")


def by_key(bridge: Bridge) -> dict[tuple[str, str, str, str], dict[str, Any]]:
    """Jobs by (appointment, occurrence, rule, channel); fails on a duplicate."""
    rows = bridge.jobs()
    keys = [(r["appointment_key"], str(r["occurrence"]), r["rule"], r["channel"]) for r in rows]
    assert len(keys) == len(set(keys)), f"duplicate jobs: {Counter(keys).most_common(3)}"
    return dict(zip(keys, rows, strict=True))


def test_changes_between_cycles_change_exactly_the_right_jobs(
    host: OpenEmrHost, make_bridge: Any
) -> None:
    patients(host, 5)
    a = host.add_appointment(1, D28, "09:00")
    b = host.add_appointment(2, D29, "10:00")
    c = host.add_appointment(3, D30, "11:00")
    d = host.add_appointment(4, D29, "12:00")
    e = host.add_appointment(5, D28, "13:00")
    bridge: Bridge = make_bridge(BEFORE_WINDOW, reminders={"channels": ["sms"]})

    first = bridge.cycle()
    assert (first.new, first.jobs.planned) == (5, 5)
    before = by_key(bridge)

    # Notes are not read by the scan (the message is rendered from a fresh read): no change.
    host.set_appointment(a, pc_hometext="bring your insurance card")
    host.set_appointment(b, pc_startTime="15:00:00", pc_endTime="15:15:00")  # moved, same day
    host.set_appointment(c, pc_eventDate=D29, pc_endDate=D29)  # moved to another day
    host.set_appointment(d, pc_apptstatus="x")  # cancelled
    host.delete_appointment(e)  # deleted
    bridge.clock.advance(timedelta(minutes=1))
    second = bridge.cycle()

    assert (second.new, second.changed, second.gone) == (1, 2, 2)
    after = by_key(bridge)
    status = {key: row["status"] for key, row in after.items()}
    assert status == {
        (str(a), "2026-03-28", "days_ahead", "sms"): "planned",
        (str(b), "2026-03-29", "days_ahead", "sms"): "planned",
        (str(c), "2026-03-30", "days_ahead", "sms"): "cancelled",
        (str(c), "2026-03-29", "days_ahead", "sms"): "planned",
        (str(d), "2026-03-29", "days_ahead", "sms"): "cancelled",
        (str(e), "2026-03-28", "days_ahead", "sms"): "cancelled",
    }
    moved = after[(str(b), "2026-03-29", "days_ahead", "sms")]
    assert moved["appointment_start"] == utc("2026-03-29T13:00:00Z")  # 15:00 CEST
    assert moved["id"] == before[(str(b), "2026-03-29", "days_ahead", "sms")]["id"]
    assert after[(str(d), "2026-03-29", "days_ahead", "sms")]["last_error"].startswith(
        "status 'x' (cancelled)"
    )
    assert after[(str(e), "2026-03-28", "days_ahead", "sms")]["last_error"] == (
        "appointment gone from the host"
    )
    assert after[(str(a), "2026-03-28", "days_ahead", "sms")]["updated_at"] == utc(BEFORE_WINDOW)
    assert (second.jobs.planned, second.jobs.replanned, second.jobs.cancelled) == (1, 1, 3)

    # A third cycle with nothing changed on the host changes nothing.
    third = bridge.cycle()
    assert (third.new, third.changed, third.gone) == (0, 0, 0)
    assert by_key(bridge) == after

    # The event log tells each job's story, oldest first.
    with bridge.runtime.store.begin("read") as connection:
        kinds = [
            row.kind
            for row in connection.execute(
                sa.select(job_events.c.kind)
                .where(job_events.c.job_id == moved["id"])
                .order_by(job_events.c.id)
            )
        ]
    assert kinds == ["planned", "replanned"]


def test_sends_once_to_the_patient_and_marks_the_host(host: OpenEmrHost, make_bridge: Any) -> None:
    patients(host, 2)
    a = host.add_appointment(1, D28, "09:00")
    b = host.add_appointment(2, D29, "10:00")
    bridge: Bridge = make_bridge(BEFORE_WINDOW)

    bridge.cycle()
    assert bridge.dispatch().sent == 0  # before the sending window: nothing goes out
    assert bridge.outbox("sms") == []

    bridge.at(IN_WINDOW)
    bridge.cycle()
    report = bridge.dispatch()
    assert report.sent == 4
    sms = bridge.outbox("sms")
    assert sorted(m["to"] for m in sms) == ["+12025550101", "+12025550102"]
    assert all(m["testing"] is False and not m["text"].startswith("TEST") for m in sms)
    assert sorted(m["to"] for m in bridge.outbox("email")) == [
        "patient1@example.test",
        "patient2@example.test",
    ]

    # Beside OpenEMR's own module: flags set, one log row per SMS / email.
    flags = {
        row["pc_eid"]: (row["pc_sendalertsms"], row["pc_sendalertemail"])
        for row in host.rows("openemr_postcalendar_events")
    }
    assert flags == {a: ("YES", "YES"), b: ("YES", "YES")}
    log = host.rows("notification_log")
    assert sorted((r["pc_eid"], r["type"]) for r in log) == [
        (a, "Email"),
        (a, "SMS"),
        (b, "Email"),
        (b, "SMS"),
    ]
    row = next(r for r in log if r["pc_eid"] == a and r["type"] == "SMS")
    assert str(row["pc_startTime"]) in ("9:00:00", "09:00:00")
    assert str(row["dSentDateTime"]) == "2026-03-27 09:05:00"  # clinic-local, as OpenEMR writes
    assert row["sms_gateway_type"] == "outbox"

    # The flags are not part of the row hash: writing them is not a change, and nothing is resent.
    bridge.clock.advance(timedelta(minutes=5))
    again = bridge.cycle()
    assert (again.changed, again.jobs.planned) == (0, 0)
    assert bridge.dispatch().sent == 0
    assert len(bridge.outbox("sms")) == 2


def test_editing_one_occurrence_of_a_reminded_series_does_not_remind_twice(
    host: OpenEmrHost, make_bridge: Any
) -> None:
    patients(host, 1)
    series = host.add_appointment(
        1,
        date(2026, 3, 1),
        "10:00",
        repeat=Repeat(kind=1, freq=1, freq_type=1),
        end_date=date(2026, 5, 31),
    )  # every Sunday
    bridge: Bridge = make_bridge(IN_WINDOW, reminders={"channels": ["sms"]})
    bridge.cycle()
    assert bridge.dispatch().sent == 1  # Sunday the 29th

    # OpenEMR edits "this occurrence only" by excluding its date and inserting a standalone row.
    spec = Repeat(kind=1, freq=1, freq_type=1, exdates=("20260329",)).spec()
    host.set_appointment(series, pc_recurrspec=spec)
    single = host.add_appointment(1, D29, "10:00", status="SMS")
    bridge.clock.advance(timedelta(minutes=10))
    report = bridge.cycle()
    assert report.gone == 1 and report.new == 1
    job = by_key(bridge)[(str(single), "2026-03-29", "days_ahead", "sms")]
    assert job["status"] == "skipped"
    assert job["last_error"] == f"already reminded for this visit (as {series})"
    assert bridge.dispatch().sent == 0
    assert len(bridge.outbox("sms")) == 1


def test_last_check_before_sending_reads_the_host_again(
    host: OpenEmrHost, make_bridge: Any
) -> None:
    patients(host, 3)
    cancelled = host.add_appointment(1, D28, "09:00")
    refused = host.add_appointment(2, D28, "10:00")
    kept = host.add_appointment(3, D28, "11:00")
    bridge: Bridge = make_bridge(BEFORE_WINDOW, reminders={"channels": ["sms"]})
    bridge.cycle()

    # Between the plan and the send, with no cycle in between:
    host.set_appointment(cancelled, pc_apptstatus="x")
    host.set_patient(2, hipaa_allowsms="NO")
    bridge.at(IN_WINDOW)
    report = bridge.dispatch()

    assert (report.sent, report.dropped) == (1, 2)
    assert [m["tags"]["appointment"] for m in bridge.outbox("sms")] == [str(kept)]
    jobs = by_key(bridge)
    assert jobs[(str(cancelled), "2026-03-28", "days_ahead", "sms")]["status"] == "cancelled"
    assert jobs[(str(refused), "2026-03-28", "days_ahead", "sms")]["status"] == "skipped"
    assert jobs[(str(refused), "2026-03-28", "days_ahead", "sms")]["last_error"] == (
        "no consent for sms (refused)"
    )


def test_a_crash_between_claim_and_send_never_sends_twice(
    host: OpenEmrHost, make_bridge: Any
) -> None:
    patients(host, 2)
    host.add_appointment(1, D28, "09:00")
    host.add_appointment(2, D28, "10:00")
    bridge: Bridge = make_bridge(IN_WINDOW, reminders={"channels": ["sms"]})
    bridge.cycle()
    store = bridge.runtime.store
    outbox = bridge.runtime.channels[Channel.SMS]

    # Worker 1 claims both jobs; it sends the first and dies before recording it; it dies
    # before sending the second at all.
    with store.begin() as connection:
        first, second = queue.claim_due(connection, bridge.clock.now(), timedelta(minutes=5), 2)
    from bridge.plugin import OutboundMessage

    outbox.send(OutboundMessage(first.dedupe_key, Channel.SMS, "+12025550101", "reminder"))

    # While the lease runs, nobody else may touch them.
    assert bridge.dispatch().sent == 0
    bridge.clock.advance(timedelta(minutes=6))
    report = bridge.dispatch()

    assert report.unknown == 2
    assert report.sent == 1  # only the one the channel never got
    keys = [m["idempotency_key"] for m in bridge.outbox("sms")]
    assert sorted(keys) == sorted([first.dedupe_key, second.dedupe_key])
    statuses = {row["dedupe_key"]: row["status"] for row in bridge.jobs()}
    assert statuses == {first.dedupe_key: "sent", second.dedupe_key: "sent"}


def test_patient_changes_are_picked_up(host: OpenEmrHost, make_bridge: Any) -> None:
    patients(host, 1)
    host.set_patient(1, hipaa_allowsms="NO")
    appt = host.add_appointment(1, D28, "09:00")
    bridge: Bridge = make_bridge(BEFORE_WINDOW, reminders={"channels": ["sms"]})
    bridge.cycle()
    key = (str(appt), "2026-03-28", "days_ahead", "sms")
    assert by_key(bridge)[key]["status"] == "skipped"

    host.set_patient(1, hipaa_allowsms="YES")
    bridge.clock.advance(timedelta(minutes=1))
    report = bridge.cycle()
    assert report.patients_changed == 1
    assert by_key(bridge)[key]["status"] == "planned"


def test_a_bad_row_is_kept_for_inspection_and_the_rest_goes_on(
    host: OpenEmrHost, make_bridge: Any
) -> None:
    patients(host, 2)
    good = host.add_appointment(1, D28, "09:00")
    bad = host.add_appointment(2, D28, "10:00", repeat=Repeat(kind=1), end_date=D30)
    host.set_appointment(bad, pc_recurrspec="a:2:{s:17:")  # truncated PHP serialize
    bridge: Bridge = make_bridge(BEFORE_WINDOW, reminders={"channels": ["sms"]})
    report = bridge.cycle()
    assert report.rejected == 1
    assert [k[0] for k in by_key(bridge)] == [str(good)]
    with bridge.runtime.store.begin() as connection:
        problems = open_rejects(connection)
    assert [(p.kind, p.ref) for p in problems] == [
        ("host-row", f"openemr_postcalendar_events.pc_eid={bad}")
    ]
    assert "recurrence" in problems[0].reason

    # Fixed on the host: the reject is resolved and the appointment planned.
    host.set_appointment(bad, pc_recurrspec=Repeat(kind=1).spec())
    bridge.cycle()
    with bridge.runtime.store.begin() as connection:
        assert open_rejects(connection) == []
    assert str(bad) in {k[0] for k in by_key(bridge)}


def test_pacing_spaces_sends_and_the_window_closes(host: OpenEmrHost, make_bridge: Any) -> None:
    patients(host, 3)
    for pid in (1, 2, 3):
        host.add_appointment(pid, D28, f"{8 + pid:02d}:00")
    bridge: Bridge = make_bridge(
        "2026-03-27T17:58:00Z",  # 18:58 in Rome; the window closes at 19:00
        reminders={"channels": ["sms"], "delay_seconds": 45},
    )
    bridge.cycle()
    report = bridge.dispatch()
    sent = [utc(m["at"]) for m in bridge.outbox("sms")]
    assert report.sent == 3
    assert [(b - a).total_seconds() for a, b in itertools.pairwise(sent)] == [45, 45]

    host.add_patient(4, "Late", "Synthetic")
    host.add_appointment(4, D28, "15:00")
    bridge.at("2026-03-27T18:30:00Z")  # 19:30 in Rome
    bridge.cycle()
    assert bridge.dispatch().sent == 0


def test_time_zone_comes_from_the_host_when_not_set(host: OpenEmrHost, make_bridge: Any) -> None:
    patients(host, 1)
    host.seed_reference("America/New_York")
    host.add_appointment(1, D28, "09:00")
    bridge: Bridge = make_bridge(BEFORE_WINDOW, clinic={"timezone": None})
    plan = bridge.plan(BEFORE_WINDOW)
    assert {row["start"] for row in plan} == {"2026-03-28T13:00:00Z"}  # 09:00 EDT


def test_host_down_is_a_clear_retriable_error(make_bridge: Any, tmp_path: Any) -> None:
    bridge: Bridge = make_bridge(BEFORE_WINDOW)
    settings = bridge.settings_file.read_text().replace("127.0.0.1:3306", "127.0.0.1:1")
    bridge.settings_file.write_text(settings)
    with pytest.raises(HostUnavailable):
        bridge.cycle()
    status, out = bridge.cli("check")
    assert status == 1
    assert "[FAIL]" in out and "host database unavailable" in out
