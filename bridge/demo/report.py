"""What the demo prints: the jobs the cycle planned and the messages that reached the outbox.

The demo's patients are synthetic, so showing names and texts here is fine; the service itself
never prints or logs them.
"""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select

from bridge.booking.recall import RecallReport
from bridge.cycle import CycleReport
from bridge.dispatcher import DispatchReport
from bridge.model import Channel
from bridge.runtime import Runtime
from bridge.store import snapshots
from bridge.store.schema import jobs
from bridge.table import format_table


def print_report(
    runtime: Runtime,
    folder: Path,
    cycle: CycleReport,
    recall: RecallReport,
    sent: DispatchReport,
) -> None:
    settings = runtime.settings
    reference = runtime.source.reference()
    zone = runtime.zone(reference)
    print(f"Reminder Bridge demo - {settings.clinic.name} ({zone}), mode: {settings.mode}")
    print(f"Demo host: {folder / 'demo-host.sqlite'} (OpenEMR tables, synthetic patients)")
    print(f"Cycle: {cycle.summary()}")
    print(f"Recall: {recall.summary()}")
    print(f"Dispatch: {sent.summary()}\n")

    with runtime.store.begin("read jobs") as connection:
        rows = connection.execute(select(jobs).order_by(jobs.c.due_at, jobs.c.id)).all()
        patients = snapshots.load_patients(connection, {row.patient_key for row in rows})
    # A recalled patient has no visit in the window, so the cycle did not read them.
    missing = {row.patient_key for row in rows} - set(patients)
    patients.update((p.key, p) for p in runtime.source.patients(missing, lambda _: None))
    table = [
        (
            row.event,
            row.appointment_key,
            row.appointment_start.astimezone(zone).strftime("%a %d %b %H:%M")
            if row.event == "reminder"
            else "",
            patients[row.patient_key].full_name if row.patient_key in patients else row.patient_key,
            row.channel,
            row.rule,
            row.status,
            row.last_error or "",
        )
        for row in rows
    ]
    print("Messages planned (reminders by the cycle, recalls by the recall run)")
    print(
        format_table(
            [
                "message",
                "about",
                "appointment time",
                "patient",
                "channel",
                "rule",
                "status",
                "note",
            ],
            table,
        )
    )

    print(f"\nMessages in the outbox ({folder / 'outbox'}), all sent to the testing contacts:")
    for channel in Channel:
        path = folder / "outbox" / f"{channel.value}.jsonl"
        if not path.exists():
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            body = record["subject"] if channel == Channel.EMAIL else record["text"]
            print(f"  [{channel.value} -> {record['to']}] {body}")
