"""Write-back into OpenEMR's own tables on MariaDB (project DDL as an old site, and OpenEMR 8.2's
genuine schema), read back the way OpenEMR's calendar reads them."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import phpserialize
import pytest

from bridge.demo.host import OpenEmrHost, Repeat
from bridge.model import Channel
from bridge.plugin import WriteContext
from bridge.store import writebacks as queue
from bridge.writeback import Command, CommandKind, Outcome
from bridge.writeback_expect import EXPECT, expectation
from bridge.writeback_worker import apply_due
from tests.integration.conftest import Bridge

pytestmark = pytest.mark.mariadb

NOW = "2026-03-27T08:00:00Z"  # Friday 09:00 in Rome
TODAY, TOMORROW = date(2026, 3, 27), date(2026, 3, 28)


def command(
    kind: CommandKind,
    eid: int | None,
    day: date | None = TOMORROW,
    channel: Channel | None = Channel.SMS,
    pid: int = 3,
    ref: str = "r1",
    **payload: Any,
) -> Command:
    return Command(kind, "link", ref, str(pid), str(eid) if eid else None, day, channel, payload)


def run(bridge: Bridge, *commands: Command) -> list[queue.QueuedCommand]:
    with bridge.runtime.store.begin() as connection:
        for c in commands:
            queue.enqueue(connection, c, bridge.clock.now())
    apply_due(bridge.runtime)
    with bridge.runtime.store.begin() as connection:
        return list(reversed(queue.recent(connection)))


def calendar(bridge: Bridge, eid: int, first: date, last: date) -> dict[date, str]:
    """Occurrence -> status, as OpenEMR's fetchEvents() lists them (the source mirrors it)."""
    runtime = bridge.runtime
    reference = runtime.source.reference()
    found = runtime.source.occurrences_of(
        str(eid), (first, last), reference, runtime.zone(reference)
    )
    return {a.occurrence: a.status for a in found}


def status(host: OpenEmrHost, eid: int) -> str:
    return str(host.rows("openemr_postcalendar_events", pc_eid=eid)[0]["pc_apptstatus"])


@pytest.fixture
def bridge(make_bridge: Any, host: OpenEmrHost) -> Bridge:
    host.add_patient(3, "Ada", "Synthetic")
    host.add_patient(4, "Ben", "Synthetic")
    made: Bridge = make_bridge(NOW)
    return made


def test_a_confirmation_writes_the_status_of_its_channel(bridge: Bridge, host: OpenEmrHost) -> None:
    eids = [host.add_appointment(3, TOMORROW, f"1{i}:00") for i in range(3)]
    done = run(
        bridge,
        *(
            command(CommandKind.CONFIRM, eid, channel=channel, ref=f"c{eid}")
            for eid, channel in zip(eids, (Channel.SMS, Channel.EMAIL, Channel.VOICE), strict=True)
        ),
    )
    assert [d.status for d in done] == [Outcome.DONE] * 3
    assert [status(host, e) for e in eids] == ["SMS", "EMAIL", "AVM"]
    assert calendar(bridge, eids[1], TOMORROW, TOMORROW) == {TOMORROW: "EMAIL"}
    assert done[0].result is not None and done[0].result["values"]["previous"] == "-"
    assert host.rows("pnotes") == []  # a confirmation needs no note


def test_a_cancellation_is_x_or_late_with_a_note_for_staff(
    bridge: Bridge, host: OpenEmrHost
) -> None:
    early = host.add_appointment(3, TOMORROW, "10:00")  # 25 h away
    late = host.add_appointment(4, TOMORROW, "08:30", provider=2)  # 23.5 h away
    done = run(
        bridge,
        command(CommandKind.CANCEL, early, reason="Sick\x00 today", ref="a"),
        command(CommandKind.CANCEL, late, pid=4, ref="b"),
    )
    assert [d.status for d in done] == [Outcome.DONE, Outcome.DONE]
    assert (status(host, early), status(host, late)) == ("x", "%")
    notes = sorted(host.rows("pnotes"), key=lambda n: n["pid"])
    assert [n["pid"] for n in notes] == [3, 4]
    assert notes[0]["body"].endswith(
        "(bridge to admin) Patient cancelled the appointment of 2026-03-28 at 10:00 through "
        "the confirm/cancel link. Reason: Sick today"
    )
    assert (notes[0]["title"], notes[0]["assigned_to"], notes[0]["message_status"]) == (
        "Patient Reminders",
        "admin",
        "New",
    )
    assert notes[0]["activity"] == 1 and notes[0]["deleted"] == 0


def test_call_back_is_call_with_a_note_once(bridge: Bridge, host: OpenEmrHost) -> None:
    eid = host.add_appointment(3, TOMORROW, "10:00")
    run(
        bridge,
        command(CommandKind.CALLBACK, eid, ref="1"),
        command(CommandKind.CALLBACK, eid, ref="2"),
    )
    assert status(host, eid) == "CALL"
    assert len(host.rows("pnotes")) == 1


def test_opt_out_and_back_in_write_the_consent_flags(bridge: Bridge, host: OpenEmrHost) -> None:
    run(bridge, command(CommandKind.OPT_OUT, None, None, Channel.SMS, ref="s"))
    patient = host.rows("patient_data", pid=3)[0]
    assert (patient["hipaa_allowsms"], patient["hipaa_allowemail"]) == ("NO", "YES")
    run(bridge, command(CommandKind.OPT_OUT, None, None, None, ref="all"))
    patient = host.rows("patient_data", pid=3)[0]
    assert (patient["hipaa_allowsms"], patient["hipaa_allowemail"], patient["hipaa_voice"]) == (
        "NO",
        "NO",
        "NO",
    )
    run(bridge, command(CommandKind.OPT_IN, None, None, Channel.EMAIL, ref="in"))
    assert host.rows("patient_data", pid=3)[0]["hipaa_allowemail"] == "YES"
    assert host.rows("patient_data", pid=4)[0]["hipaa_allowsms"] == "YES"


@pytest.mark.parametrize("protected", ["@", "~", "<", ">", "!", "$", "?"])
def test_protected_statuses_are_never_overwritten(
    bridge: Bridge, host: OpenEmrHost, protected: str
) -> None:
    eid = host.add_appointment(3, TOMORROW, "10:00", status=protected)
    done = run(
        bridge,
        command(CommandKind.CONFIRM, eid, ref="1"),
        command(CommandKind.CANCEL, eid, ref="2"),
        command(CommandKind.CALLBACK, eid, ref="3"),
    )
    assert [d.status for d in done] == [Outcome.REFUSED] * 3
    assert all("protected" in (d.last_error or "") for d in done)
    assert status(host, eid) == protected
    assert host.rows("pnotes") == [] and host.rows("patient_tracker") == []


def test_a_cancelled_appointment_stays_as_staff_left_it(bridge: Bridge, host: OpenEmrHost) -> None:
    eid = host.add_appointment(3, TOMORROW, "10:00", status="x")
    done = run(
        bridge,
        command(CommandKind.CONFIRM, eid, ref="1"),
        command(CommandKind.CANCEL, eid, ref="2"),
    )
    assert [d.status for d in done] == [Outcome.REFUSED, Outcome.DONE]
    assert "already cancelled" in (done[1].result or {}).get("detail", "")
    assert status(host, eid) == "x" and host.rows("pnotes") == []


def test_one_occurrence_of_a_series_is_split_off_as_openemr_does(
    bridge: Bridge, host: OpenEmrHost
) -> None:
    first = TOMORROW - timedelta(days=7)
    series = host.add_appointment(
        3,
        first,
        "10:00",
        repeat=Repeat(kind=1, freq=1, freq_type=1, exdates=("20260321",)),
        end_date=first + timedelta(days=28),
    )
    before = calendar(bridge, series, first, first + timedelta(days=28))
    assert set(before) == {
        TOMORROW,
        TOMORROW + timedelta(days=7),
        TOMORROW + timedelta(days=14),
        TOMORROW + timedelta(days=21),
    }
    [done] = run(bridge, command(CommandKind.CONFIRM, series))
    assert done.status == Outcome.DONE and done.result is not None
    new_key = int(done.result["host_ref"])
    assert new_key != series and done.result["values"]["split_from"] == str(series)
    spec = phpserialize.loads(
        host.rows("openemr_postcalendar_events", pc_eid=series)[0]["pc_recurrspec"].encode(),
        decode_strings=True,
    )
    assert spec["exdate"] == "20260321,20260328"
    standalone = host.rows("openemr_postcalendar_events", pc_eid=new_key)[0]
    assert (
        standalone["pc_recurrtype"],
        standalone["pc_eventDate"],
        standalone["pc_apptstatus"],
    ) == (
        0,
        TOMORROW,
        "SMS",
    )
    assert standalone["pc_pid"] == "3" and str(standalone["pc_startTime"]) in (
        "10:00:00",
        "0:10:00",
    )
    after = calendar(bridge, series, first, first + timedelta(days=28))
    assert TOMORROW not in after and set(after.values()) == {"-"} and len(after) == 3
    assert calendar(bridge, new_key, TOMORROW, TOMORROW) == {TOMORROW: "SMS"}
    # Applied again (the bridge died before the queue heard of it): found done, nothing added.
    runtime = bridge.runtime
    reference = runtime.source.reference()
    context = WriteContext(reference, runtime.zone(reference), runtime.clock.now())
    assert runtime.writer is not None
    again = runtime.writer.apply(command(CommandKind.CONFIRM, series), context)
    assert "already confirmed" in again.detail and again.host_ref == str(new_key)
    assert len(host.rows("openemr_postcalendar_events", pc_pid="3")) == 2


def test_todays_appointment_reaches_the_flow_board(bridge: Bridge, host: OpenEmrHost) -> None:
    eid = host.add_appointment(3, TODAY, "15:00", pc_room="2")
    later = host.add_appointment(3, TOMORROW, "15:00")
    run(
        bridge,
        command(CommandKind.CONFIRM, eid, TODAY, ref="1"),
        command(CommandKind.CONFIRM, later, ref="2"),
    )
    [tracker] = host.rows("patient_tracker")
    assert (tracker["eid"], tracker["pid"], tracker["apptdate"], tracker["lastseq"]) == (
        eid,
        3,
        TODAY,
        "1",
    )
    assert str(tracker["appttime"]) == "15:00:00" and tracker["original_user"] == "bridge"
    [element] = host.rows("patient_tracker_element")
    room = "2" if "pc_room" in host.table("openemr_postcalendar_events").c else ""  # 6.x: none
    assert (element["status"], element["seq"], element["room"]) == ("SMS", "1", room)
    run(bridge, command(CommandKind.CANCEL, eid, TODAY, ref="3"))
    assert host.rows("patient_tracker", id=tracker["id"])[0]["lastseq"] == "2"
    statuses = sorted((e["seq"], e["status"]) for e in host.rows("patient_tracker_element"))
    assert statuses == [("1", "SMS"), ("2", "%")]


def test_a_row_changed_by_staff_in_between_is_not_overwritten(
    bridge: Bridge, host: OpenEmrHost
) -> None:
    eid = host.add_appointment(3, TOMORROW, "10:00")
    runtime = bridge.runtime
    reference = runtime.source.reference()
    seen = runtime.source.fetch(str(eid), TOMORROW, reference, runtime.zone(reference))
    assert seen is not None
    host.set_appointment(eid, pc_startTime="11:30:00")  # staff moved it meanwhile
    [done] = run(bridge, command(CommandKind.CONFIRM, eid, **{EXPECT: expectation(seen)}))
    assert done.status == Outcome.REFUSED
    assert "changed on the host" in (done.last_error or "") and "start" in (done.last_error or "")
    row = host.rows("openemr_postcalendar_events", pc_eid=eid)[0]
    assert row["pc_apptstatus"] == "-" and str(row["pc_startTime"]) == "11:30:00"


def test_a_write_while_the_host_is_down_lands_when_it_is_back(
    make_bridge: Any, host: OpenEmrHost, tcp_proxy: Any
) -> None:
    host.add_patient(3, "Ada", "Synthetic")
    eid = host.add_appointment(3, TOMORROW, "10:00")
    bridge: Bridge = make_bridge(NOW, host={"url": tcp_proxy.url, "mapping": "openemr"})
    bridge.runtime.source.reference()  # connected once, like a running service
    tcp_proxy.down()
    [waiting] = run(bridge, command(CommandKind.CONFIRM, eid))
    assert waiting.status == Outcome.PENDING and "unavailable" in (waiting.last_error or "")
    assert status(host, eid) == "-"
    tcp_proxy.up = True
    bridge.clock.advance(timedelta(seconds=31))
    [landed] = run(bridge)
    assert landed.status == Outcome.DONE and landed.attempts == 2
    assert status(host, eid) == "SMS"
