"""The HL7 sources read the mirror the way the SQL source reads a host: sightings whose digest
is a hash of the mirrored state, patients, one appointment again before a send, the
reference data, and ``bridge check`` lines."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from bridge.clock import ManualClock
from bridge.codec import appointment_to_dict
from bridge.hl7.inbox import store_batch
from bridge.hl7.intake import Intake
from bridge.hl7.mirror import apply_pending, digest_of
from bridge.hl7.settings import Hl7Settings
from bridge.model import StatusClass
from bridge.plugin import PluginContext
from bridge.store import Store
from plugins.sources.hl7_mllp import Hl7Mllp
from tests.hl7_samples import mapping, siu

NOW = datetime(2026, 3, 27, 8, tzinfo=UTC)
ROME = ZoneInfo("Europe/Rome")
WINDOW = (date(2026, 3, 27), date(2026, 3, 31))


def source(store_url: str, tmp_path: Path) -> Hl7Mllp:
    Store.open(store_url).close()
    context = PluginContext(ManualClock(NOW), tmp_path, "US")
    config = Hl7Mllp.Config.model_validate(
        {"store_url": store_url, "mapping": "hl7-siu", "timezone": "Europe/Rome",
         "hl7": Hl7Settings(listen_port=1)}
    )  # fmt: skip
    return Hl7Mllp(config, context)


def feed(src: Hl7Mllp, *messages: bytes) -> None:
    intake = Intake(mapping(), ROME, "US")
    with src.store.begin() as connection:
        store_batch(connection, [intake.receive(m, "test", NOW) for m in messages], NOW)
        apply_pending(connection, NOW, intake)


def test_scan_sees_what_the_mirror_holds_inside_the_window(store_url: str, tmp_path: Path) -> None:
    src = source(store_url, tmp_path)
    feed(
        src,
        siu("C1", "K1", "P1", datetime(2026, 3, 30, 9, 30)),
        siu("C2", "K2", "P2", datetime(2026, 4, 15, 9, 30)),  # outside the window
        siu("C3", "K3", "P3", datetime(2026, 3, 31, 9, 30)),
        siu("C4", "K3", "P3", datetime(2026, 3, 31, 9, 30), event="S17", sent="20260327090000"),
    )
    reference = src.reference()
    sightings = src.scan(WINDOW, reference, ROME, lambda bad: None)
    assert [(s.key, s.occurrence, s.patient_key) for s in sightings] == [
        ("K1", date(2026, 3, 30), "P1")
    ]
    appointment = sightings[0].appointment()
    assert sightings[0].digest == digest_of(
        json.dumps(appointment_to_dict(appointment), sort_keys=True)
    )
    assert appointment.provider_keys == ("P1",)
    assert src.fetch("K1", date(2026, 3, 30), reference, ROME) == appointment
    assert src.fetch("K3", date(2026, 3, 31), reference, ROME) is None  # deleted
    assert [p.key for p in src.patients(["P1", "P9"], lambda bad: None)] == ["P1"]
    src.close()


def test_a_change_changes_the_digest(store_url: str, tmp_path: Path) -> None:
    src = source(store_url, tmp_path)
    feed(src, siu("C1", "K1", "P1", datetime(2026, 3, 30, 9, 30)))
    before = src.scan(WINDOW, src.reference(), ROME, lambda bad: None)[0].digest
    feed(src, siu("C2", "K1", "P1", datetime(2026, 3, 30, 9, 30), event="S14",
                  status="Confirmed", sent="20260327090000"))  # fmt: skip
    after = src.scan(WINDOW, src.reference(), ROME, lambda bad: None)
    assert after[0].digest != before
    assert after[0].appointment().status_class == StatusClass.CONFIRMED
    src.close()


def test_reference_data_comes_from_the_messages(store_url: str, tmp_path: Path) -> None:
    src = source(store_url, tmp_path)
    feed(src, siu("C1", "K1", "P1", datetime(2026, 3, 30, 9, 30)))
    reference = src.reference()
    assert reference.providers["P1"].display_name == "Dr Ada Rossi"
    assert reference.facilities["MAIN"].name == "MAIN"
    assert reference.services["CHECK"].name == "Check-up"
    assert reference.statuses["Booked"].eligible
    assert not reference.statuses["Cancelled"].eligible
    assert src.signature()
    src.close()


def test_check_reports_the_mirror_quarantine_and_listener(store_url: str, tmp_path: Path) -> None:
    src = source(store_url, tmp_path)
    feed(
        src,
        siu("C1", "K1", "P1", datetime(2026, 3, 30, 9, 30), status="Local7"),
        siu("C2", "K2", "P2", datetime(2026, 3, 30, 9, 30), event="S99"),
    )
    lines = {line.level: [] for line in src.check()}
    for line in src.check():
        lines[line.level].append(line.text)
    assert any("mirror: 1 appointments, 1 patients" in t for t in lines["ok"])
    assert any("1 HL7 messages quarantined" in t for t in lines["warning"])
    assert any("Local7" in t for t in lines["warning"])
    assert any("no MLLP listener answers" in t for t in lines["warning"])
    src.close()
