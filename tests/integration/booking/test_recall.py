"""Recalls against real OpenEMR tables on MariaDB (own DDL and the genuine schema): who is due
(last visit of a kind plus an interval, lookback, attended only, cancelled and missed visits,
patients booked ahead, the deceased, consent), manual recalls (the host's Recall Board and
``bridge recall add``), the daily run (links, idempotence, the daily cap), the messages in the
outbox, a booking through the link, expiry, and the statistics."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from bridge.booking.access import Access
from bridge.booking.booking import Request, submit
from bridge.booking.offers import Offers
from bridge.booking.recall import run_recall
from bridge.booking.tables import booking_passes, recall_runs, recalls
from bridge.booking.worker import BookingWorker
from bridge.clock import iso_utc
from bridge.demo.host import OpenEmrHost, Repeat
from tests.integration.conftest import Bridge

pytestmark = pytest.mark.mariadb

NOW = "2026-03-27T09:00:00Z"  # Friday, 10:00 in Rome
TODAY = date(2026, 3, 27)
BASE_URL = "https://bridge.example.test"
LINK = re.compile(re.escape(BASE_URL) + r"/b/([A-Za-z0-9_-]{20}\.[A-Za-z0-9_-]{16})")
CHECKED_OUT, NONE, CANCELLED, NO_SHOW = ">", "-", "x", "?"
OFFICE_VISIT, ESTABLISHED, NEW_PATIENT = 5, 9, 10

BOOKING = {
    "enabled": True,
    "reasons": [
        {
            "key": "checkup",
            "name": {"en": "Check-up", "it": "Controllo"},
            "service": "5",
            "flows": ["existing", "recall", "treatment"],
        },
        {"key": "cleaning", "name": "Cleaning", "service": "9"},
    ],
    "blocks": [
        {
            "provider": "1",
            "location": "1",
            "days": ["mon", "tue", "wed", "thu", "fri"],
            "start": "09:00",
            "end": "12:00",
        }
    ],
}

# The Recall Board's table as OpenEMR 8.2 creates it (the project's own DDL has none).
MEDEX_RECALLS = """CREATE TABLE medex_recalls (
  r_ID int(11) NOT NULL AUTO_INCREMENT,
  r_PRACTID int(11) NOT NULL,
  r_pid int(11) NOT NULL,
  r_eventDate date NOT NULL,
  r_facility int(11) NOT NULL,
  r_provider int(11) NOT NULL,
  r_reason varchar(255) DEFAULT NULL,
  r_created timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
  PRIMARY KEY (r_ID),
  UNIQUE KEY r_PRACTID (r_PRACTID, r_pid)
) ENGINE=InnoDB"""


BOTH_STORES = pytest.mark.parametrize("store_url", ["sqlite", "postgresql"], indirect=True)


@pytest.fixture(autouse=True)
def _empty_recall_board(host: OpenEmrHost) -> None:
    """The genuine database is shared by the session: its Recall Board starts empty."""
    with host.engine.begin() as connection:
        if sa.inspect(connection).has_table("medex_recalls"):
            connection.execute(sa.text("DELETE FROM medex_recalls"))


@pytest.fixture
def recall_board(host: OpenEmrHost) -> OpenEmrHost:
    """The host with a Recall Board table (created where the schema has none)."""
    with host.engine.begin() as connection:
        if not sa.inspect(connection).has_table("medex_recalls"):
            connection.execute(sa.text(MEDEX_RECALLS))
    return host


def sections(**recall: Any) -> dict[str, Any]:
    """Settings for a clinic with online booking and the daily recall."""
    return {
        "web": {"base_url": BASE_URL, "secret_key": "synthetic-link-key-for-tests-only"},
        "booking": BOOKING,
        "recall": {"enabled": True, "services": ["5"], "default_interval": "6 months", **recall},
        "reminders": {"days_ahead": 3, "channels": ["sms", "email"], "start_hour": 0},
    }


def cli(bridge: Bridge, *args: str) -> tuple[int, str]:
    """The command line at the bridge's clock (``--now``), as a clinic's day would run it."""
    return bridge.cli(*args, "--now", iso_utc(bridge.clock.now()))


def visit(host: OpenEmrHost, pid: int, day: date, status: str = CHECKED_OUT, **values: Any) -> int:
    return host.add_appointment(pid, day, "10:00", status=status, **values)


def recall_rows(bridge: Bridge) -> list[tuple[Any, ...]]:
    """(patient, source, due, last visit, reason, status) of every recall, by patient."""
    with bridge.runtime.store.begin("read") as connection:
        rows = connection.execute(
            sa.select(
                recalls.c.patient_key,
                recalls.c.source,
                recalls.c.due_on,
                recalls.c.last_visit,
                recalls.c.reason_key,
                recalls.c.status,
            ).order_by(recalls.c.patient_key, recalls.c.id)
        ).all()
    return [tuple(row) for row in rows]


def job_rows(bridge: Bridge, event: str = "recall") -> list[tuple[Any, ...]]:
    """(patient, channel, status, skip reason) of one event's jobs."""
    return sorted(
        (j["patient_key"], j["channel"], j["status"], j["last_error"] or "")
        for j in bridge.jobs()
        if j["event"] == event
    )


def sent(bridge: Bridge, channel: str, event: str = "recall") -> list[dict[str, Any]]:
    """The outbox messages of one event on one channel."""
    return [m for m in bridge.outbox(channel) if m["idempotency_key"].startswith(f"{event}|")]


def links_in(messages: list[dict[str, Any]]) -> dict[str, str]:
    """Recipient -> the token of the booking link in its message."""
    found = {}
    for message in messages:
        match = LINK.search(message["text"])
        assert match, message["text"]
        found[message["to"]] = match.group(1)
    return found


# --- who is due -------------------------------------------------------------------------------


def test_due_by_last_visit_lookback_cancelled_booked_and_deceased(
    make_bridge: Any, host: OpenEmrHost
) -> None:
    for pid in range(10, 21):
        host.add_patient(pid, "Pat", f"Synthetic{pid}")
    host.set_patient(17, deceased_date="2026-01-02 00:00:00")
    visit(host, 10, date(2025, 3, 1))  # an older visit: the last one counts
    visit(host, 10, date(2025, 9, 20))  # due 2026-03-20
    visit(host, 11, date(2025, 10, 15))  # due 2026-04-15: not yet
    visit(host, 12, date(2025, 6, 1), catid=ESTABLISHED)  # not a recalled kind
    visit(host, 13, date(2022, 1, 10))  # beyond the 36-month lookback
    visit(host, 14, date(2025, 1, 5), status=NONE)  # the last visit that happened
    visit(host, 14, date(2025, 8, 1), status=CANCELLED)
    visit(host, 15, date(2025, 8, 1), status=NO_SHOW)  # never came
    visit(host, 16, date(2025, 9, 1))
    host.add_appointment(16, date(2026, 4, 10), "09:00")  # booked ahead
    visit(host, 17, date(2025, 9, 1))  # deceased since
    visit(host, 18, date(2025, 9, 1))
    host.add_appointment(18, date(2026, 4, 10), "09:00", status=CANCELLED)  # not booked ahead
    visit(host, 19, date(2025, 9, 27))  # due today exactly
    visit(host, 20, date(2025, 9, 28))  # due tomorrow
    bridge: Bridge = make_bridge(NOW, **sections())

    report = run_recall(bridge.runtime, TODAY)

    assert recall_rows(bridge) == [
        ("10", "visit:5", date(2026, 3, 20), date(2025, 9, 20), "checkup", "open"),
        ("14", "visit:5", date(2025, 7, 5), date(2025, 1, 5), "checkup", "open"),
        ("18", "visit:5", date(2026, 3, 1), date(2025, 9, 1), "checkup", "open"),
        ("19", "visit:5", date(2026, 3, 27), date(2025, 9, 27), "checkup", "open"),
    ]
    assert (report.due, report.recalled, report.already_booked) == (6, 4, 1)
    assert report.deceased == 1
    assert report.summary().startswith("recall 2026-03-27: 6 due, 4 recalled, 1 already booked")


def test_interval_per_service_and_its_reason(make_bridge: Any, host: OpenEmrHost) -> None:
    for pid in (10, 11, 12):
        host.add_patient(pid, "Pat", f"Synthetic{pid}")
    visit(host, 10, date(2025, 3, 1), catid=ESTABLISHED)  # 1 year: due 2026-03-01
    visit(host, 11, date(2025, 6, 1), catid=ESTABLISHED)  # due 2026-06-01: not yet
    visit(host, 12, date(2025, 12, 20))  # 3 months (the default): due 2026-03-20
    visit(host, 12, date(2025, 2, 1), catid=ESTABLISHED)  # due 2026-02-01: the most overdue
    bridge: Bridge = make_bridge(
        NOW,
        **sections(
            services=["5", "9"],
            default_interval="3 months",
            intervals={"9": "1 year"},
            reasons={"9": "cleaning"},
        ),
    )

    report = run_recall(bridge.runtime, TODAY)

    assert recall_rows(bridge) == [
        ("10", "visit:9", date(2026, 3, 1), date(2025, 3, 1), "cleaning", "open"),
        ("12", "visit:9", date(2026, 2, 1), date(2025, 2, 1), "cleaning", "open"),
    ]
    assert (report.due, report.recalled) == (2, 2)


def test_attended_only_counts_visits_checked_in_or_out(
    make_bridge: Any, host: OpenEmrHost, tmp_path: Path
) -> None:
    for pid in (10, 11, 12):
        host.add_patient(pid, "Pat", f"Synthetic{pid}")
    visit(host, 10, date(2025, 9, 1), status=CHECKED_OUT)
    visit(host, 11, date(2025, 9, 1), status=NONE)  # booked, never marked as attended
    visit(host, 12, date(2025, 9, 1), status="@")  # arrived

    every = make_bridge(NOW, **sections())
    other_store = {"url": f"sqlite:///{tmp_path / 'attended.sqlite'}"}
    attended = make_bridge(NOW, store=other_store, **sections(attended_only=True))

    run_recall(every.runtime, TODAY)
    run_recall(attended.runtime, TODAY)
    assert [row[0] for row in recall_rows(every)] == ["10", "11", "12"]
    assert [row[0] for row in recall_rows(attended)] == ["10", "12"]


def test_lookback_bounds_who_is_recalled_and_channels_how(
    make_bridge: Any, host: OpenEmrHost
) -> None:
    for pid in (10, 11):
        host.add_patient(pid, "Pat", f"Synthetic{pid}")
    visit(host, 10, date(2025, 3, 28))  # inside a 12-month lookback
    visit(host, 11, date(2025, 3, 26))  # just outside
    bridge: Bridge = make_bridge(NOW, **sections(lookback="12 months", channels=["email"]))

    run_recall(bridge.runtime, TODAY)
    assert [row[0] for row in recall_rows(bridge)] == ["10"]
    assert job_rows(bridge) == [("10", "email", "planned", "")]  # recall.channels


def test_no_consent_or_no_contact_is_reported_not_recalled(
    make_bridge: Any, host: OpenEmrHost
) -> None:
    host.add_patient(10, "Pat", "Synthetic10", hipaa_allowsms="NO")  # email only
    host.add_patient(11, "Pat", "Synthetic11", hipaa_allowsms="NO", hipaa_allowemail="NO")
    host.add_patient(12, "Pat", "Synthetic12", phone_cell="", email="")
    for pid in (10, 11, 12):
        visit(host, pid, date(2025, 9, 1))
    bridge: Bridge = make_bridge(NOW, **sections())

    report = run_recall(bridge.runtime, TODAY)

    assert [row[0] for row in recall_rows(bridge)] == ["10"]
    assert job_rows(bridge) == [
        ("10", "email", "planned", ""),
        ("10", "sms", "skipped", "no consent for sms (refused)"),
    ]
    assert (report.due, report.recalled, report.unreachable) == (3, 1, 2)
    assert "2 unreachable (no consent or no contact)" in report.summary()


def table(out: str) -> list[list[str]]:
    """The rows of a table the command line printed (cells split on two spaces or more)."""
    lines = out.splitlines()
    rule = next(i for i, line in enumerate(lines) if line.startswith("--"))
    return [re.split(r"\s{2,}", line.strip()) for line in lines[rule + 1 :] if line.strip()]


def board(host: OpenEmrHost, pid: int, due: date, reason: str = "Annual check") -> None:
    """A recall staff put on OpenEMR's Recall Board."""
    with host.engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO medex_recalls (r_PRACTID, r_pid, r_eventDate, r_facility,"
                " r_provider, r_reason) VALUES (:pid, :pid, :due, 1, 1, :reason)"
            ),
            {"pid": pid, "due": due, "reason": reason},
        )


def test_manual_recalls_from_the_recall_board_and_the_command_line(
    make_bridge: Any, recall_board: OpenEmrHost
) -> None:
    host = recall_board
    for pid in range(30, 38):
        host.add_patient(pid, "Pat", f"Synthetic{pid}")
    board(host, 30, date(2026, 3, 25))
    board(host, 35, date(2026, 4, 20))  # not due yet
    surgery = host.add_appointment(32, date(2025, 9, 10), "11:00", catid=NEW_PATIENT, status=">")
    visit(host, 36, date(2025, 9, 1))  # due by visit too: the manual recall is chosen
    bridge: Bridge = make_bridge(NOW, **sections())

    assert cli(bridge, "recall", "add", "31", "--due", "2026-03-20", "--note", "after x-ray") == (
        0,
        "manual recall 1: patient 31 due on 2026-03-20\n",
    )
    after = ("--appointment", str(surgery), "--after", "6m")
    assert cli(bridge, "recall", "add", "32", *after, "--reason", "cleaning") == (
        0,
        "manual recall 2: patient 32 due on 2026-03-10\n",
    )
    weekly = host.add_appointment(
        33, date(2026, 1, 5), "08:00", repeat=Repeat(freq=1, freq_type=1), end_date="2026-06-29"
    )
    series = ("--appointment", str(weekly), "--after", "6 weeks")  # after Monday 23 March
    assert cli(bridge, "recall", "add", "33", *series)[1] == (
        "manual recall 3: patient 33 due on 2026-05-04\n"
    )
    assert cli(bridge, "recall", "add", "34", "--due", "2026-03-01")[0] == 0
    assert cli(bridge, "recall", "add", "36", "--due", "2026-03-26")[0] == 0
    refused = [
        cli(bridge, "recall", "add", "999", "--due", "2026-03-01"),  # no such patient
        cli(bridge, "recall", "add", "31", *after),  # another patient's appointment
        cli(bridge, "recall", "add", "31", "--due", "2026-03-01", "--reason", "nope"),
        cli(bridge, "recall", "add", "31"),  # no date at all
    ]
    assert [status for status, _ in refused] == [2, 2, 2, 2]
    assert cli(bridge, "recall", "cancel", "4") == (0, "manual recall 4 cancelled\n")
    assert cli(bridge, "recall", "cancel", "4") == (
        1,
        "manual recall 4: not found or already cancelled\n",
    )
    status, out = cli(bridge, "recall", "list")
    assert status == 0
    assert table(out) == [
        ["4", "34", "2026-03-01", "cancelled"],
        ["2", "32", "2026-03-10", "cleaning", str(surgery)],
        ["1", "31", "2026-03-20"],
        ["5", "36", "2026-03-26"],
        ["3", "33", "2026-05-04", str(weekly)],
    ]

    status, out = bridge.cli("recall", "run", "--date", "2026-03-27", "--now", NOW)

    assert status == 0
    assert out.startswith("recall 2026-03-27: 4 due, 4 recalled, 0 already booked")
    assert recall_rows(bridge) == [
        ("30", "host-list", date(2026, 3, 25), None, "checkup", "open"),
        ("31", "manual:1", date(2026, 3, 20), None, "checkup", "open"),
        ("32", "manual:2", date(2026, 3, 10), None, "cleaning", "open"),
        ("36", "manual:5", date(2026, 3, 26), None, "checkup", "open"),
    ]
    assert {(r[0], r[1]) for r in job_rows(bridge)} == {
        (pid, channel) for pid in ("30", "31", "32", "36") for channel in ("email", "sms")
    }
    assert {j["rule"] for j in bridge.jobs()} == {"manual"}


def test_a_used_manual_recall_does_not_hold_back_the_next_recall_by_visit(
    make_bridge: Any, host: OpenEmrHost
) -> None:
    host.add_patient(37, "Pat", "Synthetic37")
    bridge: Bridge = make_bridge("2025-09-01T09:00:00Z", **sections(link_days=10))
    assert cli(bridge, "recall", "add", "37", "--due", "2025-09-01")[0] == 0
    assert run_recall(bridge.runtime, date(2025, 9, 1)).recalled == 1
    visit(host, 37, date(2025, 9, 15))  # came in (booked by phone)
    bridge.at(NOW)

    report = run_recall(bridge.runtime, TODAY)

    assert report.recalled == 1
    assert recall_rows(bridge) == [
        ("37", "manual:1", date(2025, 9, 1), None, "checkup", "expired"),
        ("37", "visit:5", date(2026, 3, 15), date(2025, 9, 15), "checkup", "open"),
    ]


def test_a_manual_recall_is_answered_by_a_visit_after_its_due_date(
    make_bridge: Any, recall_board: OpenEmrHost
) -> None:
    host = recall_board
    for pid in (38, 39):
        host.add_patient(pid, "Pat", f"Synthetic{pid}")
    board(host, 38, date(2026, 3, 1))
    board(host, 39, date(2026, 3, 1))
    host.add_appointment(38, date(2026, 3, 10), "10:00", catid=NEW_PATIENT)  # booked by phone
    host.add_appointment(39, date(2026, 2, 20), "10:00", catid=NEW_PATIENT)  # before it fell due
    host.add_appointment(39, date(2026, 3, 12), "10:00", status=NO_SHOW)  # did not come
    bridge: Bridge = make_bridge(NOW, **sections())
    assert cli(bridge, "recall", "add", "38", "--due", "2026-03-05")[0] == 0

    report = run_recall(bridge.runtime, TODAY)

    assert recall_rows(bridge) == [
        ("39", "host-list", date(2026, 3, 1), None, "checkup", "open"),
    ]
    assert (report.due, report.recalled) == (1, 1)


# --- the daily run, the messages, a booking, expiry, statistics ------------------------------


def book_with(bridge: Bridge, token: str, day: date) -> str:
    """The patient opens the link and books the first free slot of ``day`` (as the page does
    once the birth date is checked); returns the booking's state."""
    runtime = bridge.runtime
    link = Access(runtime).open(token, None)
    assert link is not None and link.flow == "recall"
    offers = Offers(runtime)
    reason = offers.reason("checkup", "recall", link.reasons)
    assert reason is not None
    slot = offers.slots(reason, day, day)[0]
    request = Request(
        flow="recall",
        reason=reason,
        slot=slot,
        language="en",
        patient_key=link.patient_key,
        link=link,
    )
    return submit(runtime, request).state


@BOTH_STORES
def test_daily_run_links_outbox_booking_expiry_and_statistics(
    make_bridge: Any, host: OpenEmrHost
) -> None:
    for pid in (40, 41, 42):
        host.add_patient(pid, "Pat", f"Synthetic{pid}")
        visit(host, pid, date(2025, 9, pid - 30))  # due 2026-03-10, -11, -12
    bridge: Bridge = make_bridge(NOW, **sections(max_per_run=2, link_days=7))
    run = ("recall", "run", "--date", "2026-03-27", "--now", NOW)

    status, out = bridge.cli(*run)
    assert status == 0
    assert out == (
        "recall 2026-03-27: 3 due, 2 recalled, 0 already booked, 0 already recalled, "
        "0 not on the host, 0 deceased, 0 unreachable (no consent or no contact), "
        "1 over the daily cap; 0 links expired\n"
    )
    assert [r[0] for r in recall_rows(bridge)] == ["40", "41"]  # the most overdue first
    planned = bridge.jobs()
    assert len(planned) == 4
    again = bridge.cli(*run)
    assert again[1] == out.replace("\n", " (this day had run already: nothing changed)\n")
    assert bridge.jobs() == planned
    assert [r[0] for r in recall_rows(bridge)] == ["40", "41"]

    report = bridge.dispatch()

    assert report.sent == 4
    sms, email = sent(bridge, "sms"), sent(bridge, "email")
    assert sorted(m["to"] for m in sms) == ["+12025550140", "+12025550141"]
    assert sorted(m["to"] for m in email) == ["patient40@example.test", "patient41@example.test"]
    tokens = links_in(sms)
    assert links_in(email) == {
        f"patient{m['to'][-2:]}@example.test": t for m in sms for t in [tokens[m["to"]]]
    }
    assert len(set(tokens.values())) == 2
    for message in sms:
        assert message["text"].startswith("Synthetic Clinic: Hi Pat, it is time for your Check-up")
        url = LINK.search(message["text"]).group(0)  # type: ignore[union-attr]
        assert not re.search(r"Pat|Synthetic|40|41|555", url.removeprefix(BASE_URL))
    assert email[0]["subject"] == "Time for your Check-up at Synthetic Clinic"

    # Patient 40 books through the link; patient 41 books by phone.
    assert book_with(bridge, tokens["+12025550140"], date(2026, 3, 30)) == "booked"
    [made] = host.rows("openemr_postcalendar_events", pc_pid="40", pc_eventDate=date(2026, 3, 30))
    assert (made["pc_catid"], str(made["pc_startTime"])) == (OFFICE_VISIT, "09:00:00")
    assert Access(bridge.runtime).open(tokens["+12025550140"], None) is None  # used
    host.add_appointment(41, date(2026, 4, 10), "09:00")

    bridge.at("2026-03-28T09:00:00Z")
    status, out = bridge.cli("recall", "run", "--now", "2026-03-28T09:00:00Z")
    assert out.startswith("recall 2026-03-28: 3 due, 1 recalled, 2 already booked, 0 already")
    bridge.dispatch()
    assert len(sent(bridge, "sms")) == 3
    [confirmation] = sent(bridge, "sms", "booked")
    assert confirmation["to"] == "+12025550140"
    assert recall_rows(bridge) == [
        ("40", "visit:5", date(2026, 3, 10), date(2025, 9, 10), "checkup", "booked"),
        ("41", "visit:5", date(2026, 3, 11), date(2025, 9, 11), "checkup", "scheduled"),
        ("42", "visit:5", date(2026, 3, 12), date(2025, 9, 12), "checkup", "open"),
    ]
    bridge.at("2026-04-05T09:00:00Z")
    late = links_in(sent(bridge, "sms"))["+12025550142"]
    assert Access(bridge.runtime).open(late, None) is None  # its 7 days are over
    status, out = bridge.cli("recall", "run", "--now", "2026-04-05T09:00:00Z")
    assert out.startswith("recall 2026-04-05: 2 due, 0 recalled, 1 already booked, 1 already")
    assert out.endswith("0 over the daily cap; 1 links expired\n")
    assert [r[5] for r in recall_rows(bridge)] == ["booked", "scheduled", "expired"]

    status, out = bridge.cli("recall", "stats", "--from", "2026-03-01", "--to", "2026-04-30")
    assert status == 0
    lines = out.splitlines()
    assert lines[0] == "recall runs 2026-03-01 .. 2026-04-30: 3 days"
    assert table(out.split("patients due")[0]) == [
        ["2026-03", "visit", "3", "3", "1", "1", "1", "0", "67 %"]
    ]
    assert "patients due but already booked (not recalled): 3" in lines
    assert "online bookings: booked 1" in lines
    assert "invitations: none" in lines


def test_the_worker_runs_the_recall_once_a_day_from_its_hour(
    make_bridge: Any, host: OpenEmrHost
) -> None:
    for pid in (40, 41):
        host.add_patient(pid, "Pat", f"Synthetic{pid}")
        visit(host, pid, date(2025, 9, 1))
    bridge: Bridge = make_bridge("2026-03-27T08:59:00Z", **sections(hour=10))
    worker = BookingWorker(bridge.runtime)

    assert worker.recall_if_due() is False  # 09:59 in Rome
    assert recall_rows(bridge) == []
    bridge.at("2026-03-27T09:00:00Z")
    worker.round()
    assert [r[0] for r in recall_rows(bridge)] == ["40", "41"]
    assert worker.recall_if_due() is False  # done for today
    with bridge.runtime.store.begin("read") as connection:
        runs = connection.execute(sa.select(recall_runs.c.run_on)).scalars().all()
    assert runs == [TODAY]

    # Patient 41 books by phone before the messages go out: theirs are not sent.
    host.add_appointment(41, date(2026, 4, 2), "15:00")
    bridge.dispatch()
    assert job_rows(bridge) == [
        ("40", "email", "sent", ""),
        ("40", "sms", "sent", ""),
        ("41", "email", "cancelled", "the patient booked meanwhile"),
        ("41", "sms", "cancelled", "the patient booked meanwhile"),
    ]
    assert [m["to"] for m in sent(bridge, "sms")] == ["+12025550140"]


def test_recall_needs_online_booking(make_bridge: Any, host: OpenEmrHost) -> None:
    bridge: Bridge = make_bridge(NOW, **{**sections(), "booking": {"enabled": False}})
    status, _ = bridge.cli("recall", "run", "--now", NOW)
    assert status == 2
    with bridge.runtime.store.begin("read") as connection:
        assert connection.execute(sa.select(booking_passes)).all() == []
