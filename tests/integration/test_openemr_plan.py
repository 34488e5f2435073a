"""``bridge plan --json`` on a real MariaDB OpenEMR, asserted exactly.

The clinic is in Europe/Rome and the window spans the spring DST change (2026-03-29, 02:00 CET
-> 03:00 CEST). "Now" is Friday 2026-03-27 06:30 UTC (07:30 in Rome, before the 09:00 sending
window opens); reminders go out from tomorrow through 3 days out, by SMS and email, plus a
24-hour lead-time reminder.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import pytest

from bridge.demo.host import IN_OFFICE, OpenEmrHost, Repeat
from tests.integration.conftest import Bridge

pytestmark = pytest.mark.mariadb

NOW = "2026-03-27T06:30:00Z"
D27, D28, D29, D30 = (date(2026, 3, d) for d in (27, 28, 29, 30))


def build_scenario(host: OpenEmrHost) -> dict[str, int]:
    """Every case the foundation issue lists; returns appointment keys by label."""
    for pid, first in enumerate(
        [
            "Alice",
            "Bruno",
            "Carla",
            "Dario",
            "Elena",
            "Fabio",
            "Gina",
            "Hugo",
            "Ivo",
            "Jana",
            "Karl",
            "Lea",
            "Mario",
            "Nina",
        ],
        start=1,
    ):
        host.add_patient(pid, first, "Synthetic")
    host.set_patient(9, hipaa_allowsms="NO")
    host.set_patient(10, hipaa_allowsms="")
    host.set_patient(11, phone_cell="")
    host.set_patient(12, phone_cell="12345", email="")
    host.set_patient(13, deceased_date=datetime(2026, 1, 5, 10, 0))

    keys = {
        "A": host.add_appointment(1, D28, "09:00"),
        # Daily series; one excluded date in each of OpenEMR's two spellings.
        "B": host.add_appointment(
            2,
            date(2026, 3, 20),
            "10:00",
            repeat=Repeat(kind=1, freq=1, freq_type=0, exdates=("20260328", "2026-03-30")),
            end_date=date(2026, 4, 30),
        ),
        # Last Monday of every month.
        "C": host.add_appointment(
            3,
            date(2026, 1, 26),
            "11:00",
            repeat=Repeat(kind=2, freq=0, freq_type=0, on_num=5, on_day=1, on_freq=1),
            end_date=date(2026, 12, 31),
        ),
        # Sundays and Tuesdays (OpenEMR days 1 = Sunday, 3 = Tuesday).
        "D": host.add_appointment(
            4,
            date(2026, 3, 1),
            "12:00",
            repeat=Repeat(kind=3, freq="1,3", freq_type=6),
            end_date=date(2026, 6, 1),
        ),
        # Saturdays and Mondays (7, 2), Saturday the 28th excluded (dashed form).
        "D2": host.add_appointment(
            4,
            date(2026, 3, 2),
            "16:00",
            repeat=Repeat(kind=3, freq="7,2", freq_type=6, exdates=("2026-03-28",)),
            end_date=date(2026, 6, 1),
        ),
        # The 4th Saturday of every month: March 28th, excluded.
        "C2": host.add_appointment(
            3,
            date(2026, 1, 24),
            "17:00",
            repeat=Repeat(
                kind=2, freq=0, freq_type=0, on_num=4, on_day=6, on_freq=1, exdates=("20260328",)
            ),
            end_date=date(2026, 12, 31),
        ),
        "F": host.add_appointment(6, D28, "13:00", status="x"),
        "G": host.add_appointment(7, D28, "14:00", status="?"),
        "H": host.add_appointment(8, D28, "16:00", status="@"),
        "I": host.add_appointment(9, D30, "09:30"),
        "J": host.add_appointment(10, D30, "10:30"),
        "K": host.add_appointment(11, D29, "11:30"),
        "L": host.add_appointment(12, D29, "12:30"),
        "M": host.add_appointment(13, D28, "17:00"),
        "N1": host.add_appointment(14, D27, "15:00"),
        "N2": host.add_appointment(14, date(2026, 4, 1), "10:00"),
    }
    # One visit with two providers: two rows sharing pc_multiple.
    keys["E"] = min(host.add_group_visit(5, D29, "15:00", providers=(1, 2)))
    # Provider events: "In Office" with no patient, and a row whose pc_pid is '0'.
    host.add_appointment(None, D28, "08:00", catid=IN_OFFICE, minutes=600)
    host.add_appointment("0", D28, "09:30", provider=2)
    return keys


def line(
    key: int, occurrence: date, patient: int, channel: str, rule: str, due: str, start: str
) -> dict[str, Any]:
    return {
        "appointment": str(key),
        "occurrence": occurrence.isoformat(),
        "patient": str(patient),
        "channel": channel,
        "rule": rule,
        "due": due,
        "start": start,
        "event": "reminder",
    }


def expected_plan(k: dict[str, int]) -> list[dict[str, Any]]:
    opening = "2026-03-27T08:00:00Z"  # Friday 09:00 CET, the first open minute after "now"
    both = ("sms", "email")
    rows: list[dict[str, Any]] = []

    def add(label: str, occ: date, pid: int, start: str, lead_due: str | None, channels=both):
        for channel in channels:
            rows.append(line(k[label], occ, pid, channel, "days_ahead", opening, start))
            if lead_due:
                rows.append(line(k[label], occ, pid, channel, "lead_24h", lead_due, start))

    # A: Sat 09:00 CET = 08:00Z; its 24 h reminder would be due with the days-ahead one, so it
    # collapses into it.
    add("A", D28, 1, "2026-03-28T08:00:00Z", None)
    # B: Sun 10:00 CEST = 08:00Z (the 28th and 30th are excluded); 24 h before is Sat 09:00 CET.
    add("B", D29, 2, "2026-03-29T08:00:00Z", "2026-03-28T08:00:00Z")
    # C: Mon 30th 11:00 CEST = 09:00Z, the last Monday of March.
    add("C", D30, 3, "2026-03-30T09:00:00Z", "2026-03-29T09:00:00Z")
    # D: Sun 12:00 CEST = 10:00Z.
    add("D", D29, 4, "2026-03-29T10:00:00Z", "2026-03-28T10:00:00Z")
    # D2: Monday the 30th only (its Saturday is excluded); C2: nothing (its date is excluded).
    add("D2", D30, 4, "2026-03-30T14:00:00Z", "2026-03-29T14:00:00Z")
    # E: one reminder for the two-provider visit, keyed by its first row.
    add("E", D29, 5, "2026-03-29T13:00:00Z", "2026-03-28T13:00:00Z")
    # I, J: SMS consent refused / not on record: email only. K: no mobile: email only.
    add("I", D30, 9, "2026-03-30T07:30:00Z", "2026-03-29T07:30:00Z", ("email",))
    add("J", D30, 10, "2026-03-30T08:30:00Z", "2026-03-29T08:30:00Z", ("email",))
    add("K", D29, 11, "2026-03-29T09:30:00Z", "2026-03-28T09:30:00Z", ("email",))
    return sorted(
        rows,
        key=lambda r: (r["due"], r["occurrence"], r["appointment"], r["rule"], r["channel"]),
    )


def test_plan_json_is_exact(host: OpenEmrHost, make_bridge: Any) -> None:
    keys = build_scenario(host)
    bridge: Bridge = make_bridge(reminders={"days_ahead": 3, "lead_times": ["24h"]})

    assert bridge.plan(NOW) == expected_plan(keys)


def test_plan_all_gives_the_reasons(host: OpenEmrHost, make_bridge: Any) -> None:
    keys = build_scenario(host)
    bridge: Bridge = make_bridge()
    status, out = bridge.cli("plan", "--json", "--all", "--now", NOW)
    assert status == 0
    import json

    skipped = {
        (r["appointment"], r["channel"]): r["skipped"]
        for r in map(json.loads, out.splitlines())
        if "skipped" in r and r["rule"] == "days_ahead"
    }
    assert skipped == {
        (str(keys["I"]), "sms"): "no consent for sms (refused)",
        (str(keys["J"]), "sms"): "no consent for sms on record",
        (str(keys["K"]), "sms"): "no mobile number",
        (str(keys["L"]), "sms"): "mobile number is not valid",
        (str(keys["L"]), "email"): "no email",
        (str(keys["M"]), "sms"): "patient is deceased",
        (str(keys["M"]), "email"): "patient is deceased",
    }


def test_plan_writes_nothing_to_the_host(host: OpenEmrHost, make_bridge: Any) -> None:
    build_scenario(host)
    before = host.rows("openemr_postcalendar_events")
    make_bridge().plan(NOW)
    assert host.rows("openemr_postcalendar_events") == before
    assert host.rows("notification_log") == []


def test_consent_unless_refused_sends_on_empty_consent(host: OpenEmrHost, make_bridge: Any) -> None:
    keys = build_scenario(host)
    bridge: Bridge = make_bridge(reminders={"consent": "unless_refused"})
    planned = {(r["appointment"], r["channel"]) for r in bridge.plan(NOW)}
    assert (str(keys["J"]), "sms") in planned  # consent '' is not a refusal
    assert (str(keys["I"]), "sms") not in planned  # 'NO' still is
