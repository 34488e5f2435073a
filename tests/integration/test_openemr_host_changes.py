"""How the SQL source follows a live OpenEMR: repeating series between full reads, old sites'
zero dates, and ``bridge check`` / ``bridge preview`` against the real database."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from bridge.demo.host import OpenEmrHost, Repeat
from tests.integration.conftest import Bridge

pytestmark = pytest.mark.mariadb

NOW = "2026-03-27T06:30:00Z"  # Friday, 07:30 in Rome
D28, D29 = date(2026, 3, 28), date(2026, 3, 29)
WEEKLY = Repeat(kind=1, freq=1, freq_type=1)


def planned(bridge: Bridge) -> set[tuple[str, str]]:
    return {
        (row["appointment_key"], str(row["occurrence"]))
        for row in bridge.jobs()
        if row["status"] == "planned"
    }


def test_series_changes_between_full_reads_are_seen_in_one_cycle(
    host: OpenEmrHost, make_bridge: Any
) -> None:
    """Full series reads happen every 10 minutes; each change below comes 1 minute apart."""
    for pid in (1, 2, 3, 4):
        host.add_patient(pid, f"Series{pid}", "Synthetic")
    known = host.add_appointment(
        1, date(2026, 3, 1), "10:00", repeat=WEEKLY, end_date=date(2026, 6, 1)
    )
    single = host.add_appointment(2, D28, "11:00")
    bridge: Bridge = make_bridge(NOW, reminders={"channels": ["sms"]})
    bridge.cycle()  # full read
    assert planned(bridge) == {(str(known), "2026-03-29"), (str(single), "2026-03-28")}

    # A new series, inserted after the full read: found through the growing key.
    added = host.add_appointment(
        3, date(2026, 3, 2), "12:00", repeat=WEEKLY, end_date=date(2026, 6, 1)
    )
    bridge.clock.advance(timedelta(minutes=1))
    bridge.cycle()
    assert (str(added), "2026-03-30") in planned(bridge)

    # A known series edited: its Sunday excluded.
    spec = Repeat(kind=1, freq=1, freq_type=1, exdates=("20260329",)).spec()
    host.set_appointment(known, pc_recurrspec=spec)
    bridge.clock.advance(timedelta(minutes=1))
    bridge.cycle()
    assert (str(known), "2026-03-29") not in planned(bridge)

    # A single appointment in the window turned into a series (it left the single query).
    host.set_appointment(
        single, pc_recurrtype=1, pc_recurrspec=WEEKLY.spec(), pc_endDate=date(2026, 5, 1)
    )
    bridge.clock.advance(timedelta(minutes=1))
    bridge.cycle()
    assert (str(single), "2026-03-28") in planned(bridge)

    # A series deleted.
    host.delete_appointment(added)
    bridge.clock.advance(timedelta(minutes=1))
    report = bridge.cycle()
    assert report.gone == 1
    assert str(added) not in {key for key, _ in planned(bridge)}

    # A past appointment turned into a series that reaches the window waits for the next full
    # read of the series (the documented limit), then is planned.
    past = host.add_appointment(4, date(2026, 3, 14), "09:00")  # a Saturday, two weeks ago
    bridge.clock.advance(timedelta(minutes=1))
    bridge.cycle()
    host.set_appointment(
        past, pc_recurrtype=1, pc_recurrspec=WEEKLY.spec(), pc_endDate=date(2026, 5, 1)
    )
    bridge.clock.advance(timedelta(minutes=1))
    bridge.cycle()
    assert (str(past), "2026-03-28") not in planned(bridge)
    bridge.clock.advance(timedelta(minutes=10))
    bridge.cycle()
    assert (str(past), "2026-03-28") in planned(bridge)


def test_old_sites_zero_dates(host: OpenEmrHost, host_url: str, make_bridge: Any) -> None:
    """OpenEMR runs with sql_mode='' and old rows hold '0000-00-00' dates."""
    engine = sa.create_engine(host_url)
    with engine.begin() as connection:
        connection.execute(sa.text("SET SESSION sql_mode = ''"))
        connection.execute(
            sa.text(
                "INSERT INTO patient_data (pid, fname, lname, DOB, phone_cell, hipaa_allowsms, "
                "deceased_date) VALUES (1, 'Zero', 'Synthetic', '0000-00-00', '(202) 555-0101', "
                "'YES', '0000-00-00 00:00:00')"
            )
        )
        for eid, (recurr, spec) in enumerate(
            [(0, Repeat(kind=0, freq=0, freq_type=0).spec()), (1, WEEKLY.spec())], start=1
        ):
            connection.execute(
                sa.text(
                    "INSERT INTO openemr_postcalendar_events (pc_eid, pc_catid, pc_multiple, "
                    "pc_aid, pc_pid, pc_eventDate, pc_endDate, pc_startTime, pc_endTime, "
                    "pc_duration, pc_recurrtype, pc_recurrspec, pc_apptstatus, pc_eventstatus, "
                    "pc_facility) VALUES (:eid, 5, 0, '1', '1', :day, '0000-00-00', '09:00:00', "
                    "'09:15:00', 900, :recurr, :spec, '-', 1, 1)"
                ),
                {
                    "eid": eid,
                    "day": D28 if recurr == 0 else date(2026, 3, 1),
                    "recurr": recurr,
                    "spec": spec,
                },
            )
    engine.dispose()
    bridge: Bridge = make_bridge(NOW, reminders={"channels": ["sms"]})
    plan = bridge.plan(NOW)
    # The single appointment is reminded; the patient with zero dates is not "deceased"; the
    # series with a zero end date lists no date at all, exactly as OpenEMR's calendar.
    assert [(row["appointment"], row["occurrence"]) for row in plan] == [("1", "2026-03-28")]


def test_check_reports_host_mapping_and_unknown_statuses(
    host: OpenEmrHost, host_url: str, make_bridge: Any
) -> None:
    host.add_patient(1, "Check", "Synthetic")
    host.add_appointment(1, date.today() + timedelta(days=1), "09:00")
    engine = sa.create_engine(host_url)
    with engine.begin() as connection:  # a status the site added itself
        connection.execute(
            sa.text(
                "INSERT IGNORE INTO list_options (list_id, option_id, title, seq, "
                "toggle_setting_1) VALUES ('apptstat', 'TEL', 'Telehealth arrived', 99, 1)"
            )
        )
    engine.dispose()
    bridge: Bridge = make_bridge(NOW)
    try:
        status, out = bridge.cli("check")
    finally:
        with sa.create_engine(host_url).begin() as connection:
            connection.execute(sa.text("DELETE FROM list_options WHERE option_id = 'TEL'"))
    assert status == 0, out
    assert "[ok  ] host reachable" in out
    assert "[ok  ] statuses:" in out
    assert "status 'TEL' (Telehealth arrived) is not in the mapping: not eligible, protected" in out
    assert "sample: appointment" in out and "patient 1" in out
    assert "0 errors" in out
    assert "Check" not in out  # no patient names


def test_check_fails_on_a_mapping_that_does_not_fit(
    host: OpenEmrHost, make_bridge: Any, tmp_path: Any
) -> None:
    from pathlib import Path

    shipped = Path(__file__).resolve().parents[2] / "mappings" / "openemr.yaml"
    broken = tmp_path / "site.yaml"
    broken.write_text(shipped.read_text().replace("status: pc_apptstatus", "status: pc_status"))
    bridge: Bridge = make_bridge(NOW, host={"mapping": str(broken)})
    status, out = bridge.cli("check")
    assert status == 1
    assert f"{broken}: appointments.columns.status = 'pc_status': table " in out
    assert "has no such column" in out


def test_preview_shows_text_length_and_segments(host: OpenEmrHost, make_bridge: Any) -> None:
    host.add_patient(1, "Giulia", "Synthetic", language="italian")
    appt = host.add_appointment(1, date(2026, 6, 1), "09:30")  # a Monday
    bridge: Bridge = make_bridge(NOW, mode="testing")
    status, out = bridge.cli("preview", str(appt), "--channel", "sms", "--now", NOW)
    assert status == 0, out
    assert "--- sms (it) ---" in out
    assert "TEST: " in out  # testing mode marks the text
    assert "lunedì 1 giugno" in out
    # è and ì are in the GSM 03.38 alphabet: one 160-character segment, not UCS-2.
    assert "characters, GSM-7, 1 segment of 160]" in out


def test_single_rows_are_read_in_full_only_when_their_checksum_changes(
    host: OpenEmrHost, make_bridge: Any
) -> None:
    """On MariaDB the window's single appointments come with a server-side checksum first: an
    unchanged row is not read again, and every kind of edit (a value of the same length,
    another patient, a deletion) is still seen in the next cycle."""
    for pid in (1, 2, 3):
        host.add_patient(pid, f"Checksum{pid}", "Synthetic")
    first = host.add_appointment(1, D28, "09:00")
    second = host.add_appointment(2, D28, "10:00")
    bridge: Bridge = make_bridge(NOW, reminders={"channels": ["sms"]})
    reader = bridge.runtime.source.appointments  # type: ignore[attr-defined]
    fetched: list[list[str]] = []
    read_by_key = reader._rows_by_key

    def counting(connection: Any, keys: Any, **options: Any) -> Any:
        if options.get("series") is False:  # the window's single rows read in full
            fetched.append(list(keys))
        return read_by_key(connection, keys, **options)

    reader._rows_by_key = counting
    bridge.cycle()
    assert [set(keys) for keys in fetched] == [{str(first), str(second)}]

    def cycle_after(**values: Any) -> tuple[list[list[str]], Any]:
        fetched.clear()
        if values:
            host.set_appointment(first, **values)
        bridge.clock.advance(timedelta(minutes=1))
        report = bridge.cycle()
        return list(fetched), report

    keys, report = cycle_after()
    assert keys == [[]] and report.changed == 0
    for values in (
        {"pc_apptstatus": "*"},  # the same length as '-'
        {"pc_startTime": "09:15:00"},
        {"pc_aid": "2"},
        {"pc_catid": 9},  # the same length as 5
        {"pc_pid": "3"},
    ):
        keys, report = cycle_after(**values)
        assert keys == [[str(first)]], values
        assert report.changed == 1, values
    keys, report = cycle_after(pc_hometext="a note")  # not read for planning: no re-read
    assert keys == [[]] and report.changed == 0
    jobs = {row["appointment_key"]: row for row in bridge.jobs() if row["status"] == "planned"}
    assert jobs[str(first)]["patient_key"] == "3"

    host.delete_appointment(second)
    keys, report = cycle_after()
    assert keys == [[]] and report.gone == 1


def test_an_appointment_moved_to_another_chart_is_reminded_to_its_new_patient_only(
    host: OpenEmrHost, make_bridge: Any
) -> None:
    """Staff picked the wrong chart and fix it: after the cycle planned the reminder, before
    it went out. The last check stops it; the next cycle re-plans it for the right patient."""
    for pid in (1, 2):
        host.add_patient(pid, f"Chart{pid}", "Synthetic")
    visit = host.add_appointment(1, D28, "09:00")
    bridge: Bridge = make_bridge(
        NOW, mode="live", reminders={"channels": ["sms"], "start_hour": 0, "end_hour": 24}
    )
    bridge.cycle()
    host.set_appointment(visit, pc_pid="2")

    assert bridge.dispatch().sent == 0
    [job] = bridge.jobs()
    assert (job["status"], job["last_error"]) == (
        "cancelled",
        "the appointment is now another patient's",
    )
    bridge.clock.advance(timedelta(minutes=1))
    bridge.cycle()
    [job] = bridge.jobs()
    assert (job["status"], job["patient_key"]) == ("planned", "2")
    assert bridge.dispatch().sent == 1
    assert [m["to"] for m in bridge.outbox("sms")] == ["+12025550102"]
