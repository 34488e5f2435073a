"""The online booking tables (migration ``patient_0002``), on the store's shared ``metadata``.

- ``booking_passes``: one row per personal booking link (a recall's, an invitation's, a planned
  treatment's, one sent on request): found by a keyed hash of its token, what it allows, when it
  expires, the birth-date tries and the verified session, the booking made with it.
- ``bookings``: every online booking request, its host write-back and what became of it.
- ``invitations``: invitations to book online and their status (invited, enrolled, expired,
  revoked), with the address on file when invited (a change revokes the invitation).
- ``recalls``: each recall the bridge made (one per patient, reason and due date), its link
  and its outcome; ``manual_recalls``: recalls staff set through the command line;
  ``recall_runs``: one row per daily run (what makes a run idempotent) with its counts.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from bridge.store.schema import Id, UtcDateTime, metadata

booking_passes = Table(
    "booking_passes",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("lookup", String(32), nullable=False),
    Column("identity", String(64), nullable=False),
    Column("flow", String(16), nullable=False),
    Column("patient_key", String(64)),
    Column("reasons", Text),
    Column("provider_key", String(64)),
    Column("language", String(16), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("tries", Integer, nullable=False, default=0),
    Column("locked_at", UtcDateTime),
    Column("session", String(32)),
    Column("session_until", UtcDateTime),
    Column("used_at", UtcDateTime),
    Column("revoked_at", UtcDateTime),
    Column("booking_id", Id),
    Column("recall_id", Id),
    Column("invitation_id", Id),
    UniqueConstraint("lookup", name="uq_booking_passes_lookup"),
)

bookings = Table(
    "bookings",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("reference", String(16), nullable=False),
    Column("flow", String(16), nullable=False),
    Column("pass_id", Id),
    Column("patient_key", String(64)),
    Column("new_patient", Boolean, nullable=False),
    Column("reason_key", String(32), nullable=False),
    Column("service_key", String(64), nullable=False),
    Column("provider_key", String(64), nullable=False),
    Column("facility_key", String(64)),
    Column("start_at", UtcDateTime, nullable=False),
    Column("end_at", UtcDateTime, nullable=False),
    Column("language", String(16), nullable=False),
    Column("approval", Boolean, nullable=False),
    Column("status", String(16), nullable=False),
    Column("writeback_id", Id),
    Column("appointment_key", String(64)),
    Column("recall_id", Id),
    Column("invitation_id", Id),
    Column("detail", Text),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    UniqueConstraint("reference", name="uq_bookings_reference"),
    Index("ix_bookings_status", "status"),
)

invitations = Table(
    "invitations",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("patient_key", String(64)),
    Column("email", String(255), nullable=False),
    Column("host_email", String(255)),
    Column("language", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("detail", Text),
    Column("pass_id", Id),
    Column("sends", Integer, nullable=False, default=1),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("enrolled_at", UtcDateTime),
    Column("revoked_at", UtcDateTime),
    Column("updated_at", UtcDateTime, nullable=False),
    Index("ix_invitations_patient_key", "patient_key"),
    Index("ix_invitations_status", "status"),
)

recalls = Table(
    "recalls",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("patient_key", String(64), nullable=False),
    Column("source", String(32), nullable=False),
    Column("due_on", Date, nullable=False),
    Column("last_visit", Date),
    Column("reason_key", String(32), nullable=False),
    Column("run_on", Date, nullable=False),
    Column("status", String(16), nullable=False),
    Column("pass_id", Id),
    Column("booking_id", Id),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("closed_at", UtcDateTime),
    UniqueConstraint("patient_key", "source", "due_on", name="uq_recalls_patient_key"),
    Index("ix_recalls_run_on", "run_on"),
    Index("ix_recalls_status", "status"),
)

manual_recalls = Table(
    "manual_recalls",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("patient_key", String(64), nullable=False),
    Column("due_on", Date, nullable=False),
    Column("reason_key", String(32)),
    Column("appointment_key", String(64)),
    Column("note", Text),
    Column("created_at", UtcDateTime, nullable=False),
    Column("cancelled_at", UtcDateTime),
    Index("ix_manual_recalls_due_on", "due_on"),
)

recall_runs = Table(
    "recall_runs",
    metadata,
    Column("run_on", Date, primary_key=True),
    Column("started_at", UtcDateTime, nullable=False),
    Column("finished_at", UtcDateTime),
    Column("counts", Text),
)
