"""The links the bridge sent, in its own store: one row per link, found by the token's lookup key.

A row says what the link is for (appointment occurrence, patient, the channel the message went
out on, the patient's language), what the appointment looked like when it was sent (to show
"this appointment changed"), when it expires, how many wrong birth dates it got (locked at the
limit), the patient's verified session, and the answer given through it (a link answers once).
Nothing here is shown to anyone who has not proved who they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Date,
    Index,
    Integer,
    String,
    Table,
    UniqueConstraint,
    case,
    select,
    update,
)

from bridge.model import Channel
from bridge.store.engine import insert_ignore
from bridge.store.schema import Id, UtcDateTime, metadata

patient_links = Table(
    "patient_links",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("lookup", String(32), nullable=False),
    Column("purpose", String(16), nullable=False),
    Column("job_id", Id),
    Column("appointment_key", String(64), nullable=False),
    Column("occurrence", Date, nullable=False),
    Column("patient_key", String(64), nullable=False),
    Column("channel", String(16)),
    Column("language", String(16), nullable=False),
    Column("sent_start", UtcDateTime, nullable=False),
    Column("sent_digest", String(32), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("tries", Integer, nullable=False, default=0),
    Column("locked_at", UtcDateTime),
    Column("session", String(32)),
    Column("session_until", UtcDateTime),
    Column("used_at", UtcDateTime),
    Column("answer", String(16)),
    Column("writeback_id", Id),
    UniqueConstraint("lookup", name="uq_patient_links_lookup"),
    Index("ix_patient_links_appointment", "appointment_key", "occurrence"),
)


@dataclass(frozen=True)
class Link:
    """A link as the store holds it."""

    id: int
    lookup: str
    purpose: str
    appointment_key: str
    occurrence: date
    patient_key: str
    channel: Channel | None
    language: str
    sent_start: datetime
    sent_digest: str
    created_at: datetime
    expires_at: datetime
    tries: int
    locked_at: datetime | None
    session: str | None
    session_until: datetime | None
    used_at: datetime | None
    answer: str | None
    writeback_id: int | None

    def is_open(self, now: datetime) -> bool:
        """Not expired and not locked (a used link stays open for its session's result page)."""
        return self.locked_at is None and now < self.expires_at

    def has_session(self, session_hash: str | None, now: datetime) -> bool:
        return (
            session_hash is not None
            and self.session == session_hash
            and self.session_until is not None
            and now < self.session_until
        )


def add_link(connection: Connection, values: dict[str, Any]) -> bool:
    """Store a link unless one with its lookup key exists (a retried job renders it again)."""
    return insert_ignore(connection, patient_links, {"tries": 0, **values}, keys=("lookup",))


def find_link(connection: Connection, lookup: str) -> Link | None:
    row = connection.execute(select(patient_links).where(patient_links.c.lookup == lookup)).first()
    if row is None:
        return None
    values = dict(row._mapping)
    values["channel"] = Channel(values["channel"]) if values["channel"] else None
    values.pop("job_id")
    return Link(**values)


def record_wrong_answer(
    connection: Connection, link_id: int, now: datetime, limit: int, table: Table = patient_links
) -> None:
    """Count one wrong birth date; the ``limit``-th locks the link. ``table``: any link table
    with ``tries`` and ``locked_at`` (the booking links' too)."""
    tries = table.c.tries + 1
    connection.execute(
        update(table)
        .where(table.c.id == link_id)
        .values(tries=tries, locked_at=case((tries >= limit, now), else_=table.c.locked_at))
    )


def start_session(
    connection: Connection,
    link_id: int,
    session_hash: str,
    until: datetime,
    table: Table = patient_links,
) -> None:
    """The patient proved who they are: one session per link (a new one replaces the old)."""
    connection.execute(
        update(table)
        .where(table.c.id == link_id)
        .values(session=session_hash, session_until=until, tries=0)
    )


def claim_answer(connection: Connection, link_id: int, answer: str, now: datetime) -> bool:
    """Record the link's one answer; False when it already has one (a second tab, a replay)."""
    result = connection.execute(
        update(patient_links)
        .where(patient_links.c.id == link_id, patient_links.c.used_at.is_(None))
        .values(used_at=now, answer=answer)
    )
    return bool(result.rowcount == 1)


def set_writeback(connection: Connection, link_id: int, writeback_id: int) -> None:
    connection.execute(
        update(patient_links).where(patient_links.c.id == link_id).values(writeback_id=writeback_id)
    )
