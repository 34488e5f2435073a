"""The delivery tables (migration ``delivery_0001``), on the store's shared ``metadata``.

- ``deliveries``: one row per send attempt, written *before* the provider is called. Its
  ``token`` is opaque (it goes into callback URLs and provider references: no patient data in a
  URL); its ``idempotency_key`` is the job's identity plus the attempt number.
- ``inbound``: every accepted provider callback and patient reply, with what became of it;
  free-text replies wait here for staff (``status = 'staff'``).
- ``opt_outs``: per channel and address (carriers opt a *number* out), with the patient it
  belonged to when known.
- ``answers``: an appointment occurrence the patient answered; its other pending attempts stop.
- ``call_scripts``: what a call says (and leaves on a machine), served to the provider when the
  call is answered; kept with the attempt's token only.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from bridge.store.schema import Id, UtcDateTime, metadata

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("token", String(32), nullable=False),
    Column("idempotency_key", String(255), nullable=False),
    Column("job_id", Id, ForeignKey("jobs.id", ondelete="SET NULL")),
    Column("attempt", Integer, nullable=False),
    Column("channel", String(16), nullable=False),
    Column("plugin", String(32), nullable=False),
    Column("event", String(32), nullable=False),
    Column("appointment_key", String(64)),
    Column("occurrence", Date),
    Column("patient_key", String(64)),
    Column("recipient", String(255), nullable=False),
    Column("body_digest", String(32), nullable=False),
    Column("testing", Boolean, nullable=False),
    Column("status", String(16), nullable=False),
    Column("provider_ref", String(128)),
    Column("error_code", String(32)),
    Column("error", Text),
    Column("segments", Integer),
    Column("cost", Float),
    Column("started_at", UtcDateTime, nullable=False),
    Column("accepted_at", UtcDateTime),
    Column("final_at", UtcDateTime),
    Column("updated_at", UtcDateTime, nullable=False),
    UniqueConstraint("token", name="uq_deliveries_token"),
    UniqueConstraint("idempotency_key", name="uq_deliveries_idempotency_key"),
    Index("ix_deliveries_provider_ref", "provider_ref"),
    Index("ix_deliveries_recipient", "channel", "recipient", "started_at"),
    Index("ix_deliveries_job_id", "job_id"),
    Index("ix_deliveries_started_at", "started_at"),
)

inbound = Table(
    "inbound",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("kind", String(32), nullable=False),
    Column("provider_ref", String(128), nullable=False),
    Column("delivery_id", Id, ForeignKey("deliveries.id", ondelete="SET NULL")),
    Column("channel", String(16)),
    Column("sender", String(255)),
    Column("text", Text),
    Column("intent", String(16)),
    Column("status", String(16), nullable=False),
    Column("detail", Text),
    Column("received_at", UtcDateTime, nullable=False),
    Column("handled_at", UtcDateTime),
    UniqueConstraint("kind", "provider_ref", name="uq_inbound_kind_provider_ref"),
    Index("ix_inbound_status", "status"),
)

opt_outs = Table(
    "opt_outs",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("channel", String(16), nullable=False),
    Column("address", String(255), nullable=False),
    Column("patient_key", String(64)),
    Column("opted_out", Boolean, nullable=False),
    Column("source", String(32), nullable=False),
    Column("changed_at", UtcDateTime, nullable=False),
    UniqueConstraint("channel", "address", name="uq_opt_outs_channel_address"),
    Index("ix_opt_outs_patient_key", "patient_key"),
)

answers = Table(
    "answers",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("appointment_key", String(64), nullable=False),
    Column("occurrence", Date, nullable=False),
    Column("patient_key", String(64), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("channel", String(16)),
    Column("origin", String(32), nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Index("ix_answers_appointment", "appointment_key", "occurrence"),
)

call_scripts = Table(
    "call_scripts",
    metadata,
    Column("token", String(32), primary_key=True),
    Column("script", Text, nullable=False),
    Column("voicemail", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)
