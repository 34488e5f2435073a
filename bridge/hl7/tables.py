"""The HL7 feed's tables in the store (migration ``hl7_0001``).

- ``hl7_messages``: every message received, raw bytes as sent, with its verdict. Unique on
  (sender, MSH-10, content digest): a resend is recognised and not processed twice, while a
  sender that reuses a control id for different content (fixtures 01/02 and 11/12 do) loses
  nothing. The digest leaves MSH-7 out, so a resend with a fresh timestamp is still a resend.
- ``hl7_appointments`` / ``hl7_patients``: the mirror, the latest state of each appointment and
  patient the feed has told us, with the MSH-7 of the message that set it (an older message
  never rolls it back). The HL7 sources read these as the SQL source reads host tables.
- ``hl7_resources``: providers, locations and services named in messages, for the templates.
- ``hl7_journal`` (migration ``hl7_0002``): the last receipt-journal number the store holds,
  written in the same transaction as the messages (``bridge.hl7.journal``).
"""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from bridge.store.schema import Id, UtcDateTime, metadata


class MessageStatus(StrEnum):
    """What became of a received message."""

    PENDING = "pending"  # accepted and ACKed, waiting to be applied to the mirror
    APPLIED = "applied"  # the mirror now holds what it said
    STALE = "stale"  # older (MSH-7) than what the mirror holds: kept, changed nothing
    IGNORED = "ignored"  # an event the mapping ignores (blocked slots...)
    QUARANTINED = "quarantined"  # refused (AE); ``reason`` says why; replayable


messages = Table(
    "hl7_messages",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("received_at", UtcDateTime, nullable=False),
    Column("last_seen", UtcDateTime, nullable=False),
    Column("times_seen", Integer, nullable=False, default=1),
    Column("origin", String(64), nullable=False),
    Column("sender", String(255), nullable=False),
    Column("control_id", String(255), nullable=False),
    Column("digest", String(32), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("version", String(16), nullable=False),
    Column("message_time", UtcDateTime),
    Column("appointment_key", String(64)),
    Column("status", String(16), nullable=False),
    Column("code", Integer),
    Column("reason", Text),
    Column("charset", String(32), nullable=False),
    Column("raw", LargeBinary, nullable=False),
    Column("applied_at", UtcDateTime),
    UniqueConstraint("sender", "control_id", "digest", name="uq_hl7_messages_identity"),
    Index("ix_hl7_messages_status_id", "status", "id"),
    Index("ix_hl7_messages_appointment_key", "appointment_key"),
)

appointments = Table(
    "hl7_appointments",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("occurrence", Date),
    Column("patient_key", String(64)),
    Column("deleted", Boolean, nullable=False, default=False),
    Column("digest", String(32)),
    Column("data", Text),
    Column("echo", Text),
    Column("message_time", UtcDateTime, nullable=False),
    Column("message_id", Id, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Index("ix_hl7_appointments_occurrence", "occurrence"),
    Index("ix_hl7_appointments_patient_key", "patient_key"),
)

patients = Table(
    "hl7_patients",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("digest", String(32), nullable=False),
    Column("data", Text, nullable=False),
    Column("message_time", UtcDateTime, nullable=False),
    Column("message_id", Id, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

resources = Table(
    "hl7_resources",
    metadata,
    Column("kind", String(16), primary_key=True),
    Column("key", String(64), primary_key=True),
    Column("data", Text, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

journal_marks = Table(
    "hl7_journal",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("seq", BigInteger, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)
