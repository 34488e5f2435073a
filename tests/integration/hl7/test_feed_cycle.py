"""The planner, dispatcher and ``bridge plan`` work the same whatever feeds them: appointments
that arrived over MLLP are planned, reminded and stopped like those of a SQL host; under
``bridge run`` a new booking is planned within seconds of its ACK; a folder feed works through
``bridge plan`` too."""

from __future__ import annotations

import contextlib
import io
import json
import threading
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
import yaml

from bridge.cli import main
from bridge.clock import ManualClock, parse_instant
from bridge.cycle import run_cycle
from bridge.dispatcher import Dispatcher
from bridge.hl7.worker import run_worker
from bridge.runtime import Runtime
from bridge.settings import load_settings
from bridge.store.schema import jobs
from tests.hl7_samples import answers, free_port, siu
from tests.integration.hl7.conftest import Running, Sender, codes, wait_for

ROME = ZoneInfo("Europe/Rome")
MONDAY = datetime(2026, 3, 30, 9, 30)


def settings_file(folder: Path, store_url: str, **sections: Any) -> Path:
    settings: dict[str, Any] = {
        "mode": "live",
        "clinic": {"name": "Synthetic Clinic", "timezone": "Europe/Rome", "region": "US"},
        "host": {"source": "hl7-mllp", "mapping": "hl7-siu", "writer": None},
        "store": {"url": store_url},
        "reminders": {"days_ahead": 2, "channels": ["sms", "email"], "consent": "unless_refused"},
        "channels": {
            c: {"plugin": "outbox", "folder": "outbox"} for c in ("sms", "email", "voice")
        },
        "log": {"level": "WARNING"},
    }
    for section, values in sections.items():
        settings[section] = {**settings.get(section, {}), **values}
    path = folder / "settings.yaml"
    path.write_text(yaml.safe_dump(settings))
    return path


def plan(settings: Path, now: str) -> list[dict[str, Any]]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["--config", str(settings), "plan", "--json", "--now", now]) == 0
    return [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]


def send(running: Running, *messages: bytes) -> None:
    sender = Sender(running.port)
    for raw in messages:
        assert codes(sender.send(raw)) == ["AA"]
    sender.close()
    running.settle()


def test_bridge_plan_lists_what_the_feed_booked(
    listener: Any, store_url: str, tmp_path: Path
) -> None:
    running = listener(timezone="Europe/Rome")
    send(
        running,
        siu("C1", "K1", "P1", MONDAY),
        siu("C2", "K2", "P2", MONDAY),
        siu("C3", "K2", "P2", MONDAY, event="S15", status="Cancelled", sent="20260327090000"),
        siu("C4", "K3", "P3", MONDAY + timedelta(days=10)),  # outside days_ahead
    )
    settings = settings_file(tmp_path, store_url)
    planned = plan(settings, "2026-03-28T06:00:00Z")
    assert {
        (p["appointment"], p["occurrence"], p["patient"], p["channel"], p["rule"]) for p in planned
    } == {
        ("K1", "2026-03-30", "P1", "sms", "days_ahead"),
        ("K1", "2026-03-30", "P1", "email", "days_ahead"),
    }
    assert all(p["start"] == "2026-03-30T07:30:00Z" for p in planned)


def test_reminders_go_out_and_a_cancellation_stops_its_own(
    listener: Any, store_url: str, tmp_path: Path
) -> None:
    running = listener(timezone="Europe/Rome")
    send(running, siu("C1", "K1", "P1", MONDAY), siu("C2", "K2", "P2", MONDAY))
    settings = load_settings(settings_file(tmp_path, store_url))
    clock = ManualClock(parse_instant("2026-03-29T05:00:00Z"))  # 07:00 in Rome
    runtime = Runtime.build(settings, clock)
    try:
        report = run_cycle(runtime)
        assert (report.scanned, report.new) == (2, 2)
        # K2 is cancelled on the host after planning, before the window opens: no new cycle.
        send(
            running,
            siu("C3", "K2", "P2", MONDAY, event="S15", status="Cancelled", sent="20260328090000"),
        )
        clock.set(parse_instant("2026-03-29T08:00:00Z"))
        sent = Dispatcher(runtime).run_due()
        assert sent.sent == 2 and sent.dropped == 2  # K1 by SMS and email; K2 stopped
        outbox = (tmp_path / "outbox" / "sms.jsonl").read_text().splitlines()
        assert len(outbox) == 1 and json.loads(outbox[0])["to"] == "+12025550123"
        with runtime.store.begin() as connection:
            states = {
                (r.appointment_key, r.channel): (r.status, r.last_error)
                for r in connection.execute(sa.select(jobs))
            }
        assert states[("K1", "sms")][0] == "sent"
        assert states[("K2", "sms")][0] == "cancelled"
        assert "not eligible" in (states[("K2", "sms")][1] or "")
        # The next cycle sees the cancellation as a change, as it would on a SQL host.
        assert run_cycle(runtime).changed == 1
    finally:
        runtime.close()


def test_under_bridge_run_a_new_booking_is_planned_within_seconds(
    store_url: str, tmp_path: Path
) -> None:
    port = free_port()
    settings = load_settings(
        settings_file(tmp_path, store_url, hl7={"listen_port": port}, host={"poll_seconds": 3600})
    )
    runtime = Runtime.build(settings)
    stopping = threading.Event()
    worker = threading.Thread(target=run_worker, args=(runtime, stopping))
    worker.start()
    try:
        wait_for(lambda: answers(port), 30)
        tomorrow = datetime.now(ROME).replace(tzinfo=None, hour=11, minute=0, second=0) + timedelta(
            days=1
        )
        sender = Sender(port)
        assert codes(sender.send(siu("NEW1", "K1", "P1", tomorrow))) == ["AA"]
        sender.close()

        def planned() -> bool:
            with runtime.store.begin() as connection:
                keys = connection.execute(sa.select(jobs.c.appointment_key)).scalars().all()
            return "K1" in keys

        wait_for(planned, 15)  # the poll is an hour away: this was the prompt cycle
    finally:
        stopping.set()
        worker.join(timeout=30)
        runtime.close()
    assert not worker.is_alive()


def test_a_folder_feed_through_bridge_plan(store_url: str, tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "batch.hl7").write_bytes(siu("F1", "K1", "P1", MONDAY) + siu("F2", "K2", "P2", MONDAY))
    settings = settings_file(
        tmp_path,
        store_url,
        host={"source": "hl7-files"},
        hl7={"folder": "drop", "folder_settle_seconds": 0},
    )
    planned = plan(settings, "2026-03-28T06:00:00Z")
    assert {p["appointment"] for p in planned} == {"K1", "K2"}
    assert (drop / "processed" / "batch.hl7").exists()
    assert not (drop / "batch.hl7").exists()
