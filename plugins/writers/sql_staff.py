"""What the front desk sees besides the status: OpenEMR's Patient Flow Board and staff notes.

Flow Board: the same rows as ``manage_tracker_status()`` (``library/patient_tracker.inc.php``,
``PatientTrackerService``): one ``patient_tracker`` row per appointment and day, found by
(``apptdate``, ``appttime``, ``eid``, ``pid``), and one ``patient_tracker_element`` row per status
it went through, numbered by ``lastseq`` (a varchar). A status equal to the last one adds
nothing. OpenEMR skips repeating rows here; the writer has split the occurrence off first, so the
row it tracks never repeats.

Notes: ``addPnote()`` starts the body with ``YYYY-MM-DD HH:MM (user to assigned_to)``; the
Messages screen lists notes by ``assigned_to``.
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

from sqlalchemy import Connection, Insert, Table, insert, select, update

from bridge.errors import SourceError
from bridge.host_sql import key_value
from bridge.mapping.sql import FlowBoard, StaffNotes


def track(
    connection: Connection,
    trackers: Table,
    elements: Table,
    board: FlowBoard,
    *,
    eid: str,
    pid: str,
    day: date,
    start: time,
    status: str,
    room: str,
    now: datetime,
) -> int:
    """Record ``status`` on the Flow Board for today's appointment ``eid``; returns the tracker
    id. ``now`` is clinic-local and naive, as OpenEMR writes ``date('Y-m-d H:i:s')``."""
    found = connection.execute(
        select(trackers.c.id, trackers.c.lastseq)
        .where(
            trackers.c.apptdate == day,
            trackers.c.appttime == start,
            trackers.c.eid == key_value(eid),
            trackers.c.pid == key_value(pid),
        )
        .with_for_update()
    ).first()
    if found is None:
        tracker_id = inserted_key(
            connection,
            insert(trackers).values(
                date=now,
                apptdate=day,
                appttime=start,
                eid=key_value(eid),
                pid=key_value(pid),
                original_user=board.user,
                encounter=0,
                lastseq="1",
            ),
        )
        _element(connection, elements, tracker_id, 1, status, room, board.user, now)
        return tracker_id
    tracker_id, lastseq = int(found.id), _seq(found.lastseq)
    last = connection.execute(
        select(elements.c.status, elements.c.room).where(
            elements.c.pt_tracker_id == tracker_id, elements.c.seq == str(lastseq)
        )
    ).first()
    if last is not None and (last.status, last.room) == (status, room):
        return tracker_id
    connection.execute(
        update(trackers).where(trackers.c.id == tracker_id).values(lastseq=str(lastseq + 1))
    )
    _element(connection, elements, tracker_id, lastseq + 1, status, room, board.user, now)
    return tracker_id


def _element(
    connection: Connection,
    elements: Table,
    tracker_id: int,
    seq: int,
    status: str,
    room: str,
    user: str,
    now: datetime,
) -> None:
    connection.execute(
        insert(elements).values(
            pt_tracker_id=tracker_id,
            start_datetime=now,
            user=user,
            status=status,
            room=room,
            seq=str(seq),
        )
    )


def _seq(value: Any) -> int:
    text = str(value or "").strip()
    return int(text) if text.isdigit() else 0


def add_note(
    connection: Connection,
    notes_table: Table,
    notes: StaffNotes,
    *,
    patient_key: str,
    text: str,
    now: datetime,
) -> int:
    """Insert one staff note; returns its key. ``now`` is clinic-local and naive."""
    prefix = notes.user + (f" to {notes.assigned_to}" if notes.assigned_to else "")
    vocabulary: dict[str, Any] = {
        "patient_key": key_value(patient_key),
        "title": notes.title,
        "body": f"{now:%Y-%m-%d %H:%M} ({prefix}) {text}",
        "assigned_to": notes.assigned_to,
        "user": notes.user,
        "now": now,
        "empty": "",
    }
    values = dict(notes.constants)
    values.update({name: vocabulary[role] for name, role in notes.columns.items()})
    return inserted_key(connection, insert(notes_table).values(**values))


def inserted_key(connection: Connection, statement: Insert) -> int:
    """Run an INSERT into a table with an auto-increment key; the new key."""
    key = connection.execute(statement).inserted_primary_key
    if not key or key[0] is None:
        raise SourceError("the host returned no key for a new row")
    return int(key[0])
