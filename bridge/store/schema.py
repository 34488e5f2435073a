"""The store's tables (SQLAlchemy Core). Alembic migrations in ``bridge/migrations`` create them.

Every instant is stored in UTC through ``UtcDateTime``: SQLite keeps it naive, PostgreSQL as
``timestamptz``; both come back as aware UTC datetimes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# SQLite's INTEGER PRIMARY KEY is its rowid only when the type is exactly INTEGER.
Id = BigInteger().with_variant(Integer(), "sqlite")


class UtcDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime on the way in and out, whatever the dialect keeps."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use aware UTC")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        parsed: datetime = datetime.fromisoformat(value) if isinstance(value, str) else value
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


class JobStatus(StrEnum):
    """Life of a job. ``sending`` holds a lease; an expired lease becomes ``unknown``, never a
    blind resend. ``planned`` and ``skipped`` may still change; the rest are final."""

    PLANNED = "planned"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"
    UNKNOWN = "unknown"


PENDING_STATUSES = (JobStatus.PLANNED, JobStatus.SKIPPED)
DONE_STATUSES = (JobStatus.SENT, JobStatus.SENDING, JobStatus.UNKNOWN, JobStatus.FAILED)

appointments = Table(
    "appointments",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("occurrence", Date, primary_key=True),
    Column("patient_key", String(64), nullable=False),
    Column("start_at", UtcDateTime, nullable=False),
    Column("status", String(32), nullable=False),
    Column("eligible", Boolean, nullable=False),
    Column("row_hash", String(32), nullable=False),
    Column("data", JSON, nullable=False),
    Column("first_seen", UtcDateTime, nullable=False),
    Column("changed_at", UtcDateTime, nullable=False),
    Column("deleted_at", UtcDateTime),
    Index("ix_appointments_occurrence", "occurrence"),
    Index("ix_appointments_patient_key", "patient_key"),
)

patients = Table(
    "patients",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("row_hash", String(32), nullable=False),
    Column("data", JSON, nullable=False),
    Column("first_seen", UtcDateTime, nullable=False),
    Column("changed_at", UtcDateTime, nullable=False),
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("dedupe_key", String(255), nullable=False),
    Column("appointment_key", String(64), nullable=False),
    Column("occurrence", Date, nullable=False),
    Column("patient_key", String(64), nullable=False),
    Column("event", String(32), nullable=False),
    Column("rule", String(32), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("due_at", UtcDateTime, nullable=False),
    Column("lease_until", UtcDateTime),
    Column("last_error", Text),
    Column("appointment_start", UtcDateTime, nullable=False),
    Column("provider_ref", String(128)),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("sent_at", UtcDateTime),
    UniqueConstraint("dedupe_key", name="uq_jobs_dedupe_key"),
    Index("ix_jobs_status_due_at", "status", "due_at"),
    Index("ix_jobs_appointment", "appointment_key", "occurrence"),
    Index("ix_jobs_patient_key", "patient_key"),
)

job_events = Table(
    "job_events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("job_id", Id, ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("detail", Text),
    Index("ix_job_events_job_id", "job_id"),
)

state = Table(
    "state",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

writebacks = Table(
    "writebacks",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("idempotency_key", String(64), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("origin", String(32), nullable=False),
    Column("ref", String(255), nullable=False),
    Column("patient_key", String(64), nullable=False),
    Column("appointment_key", String(64)),
    Column("occurrence", Date),
    Column("channel", String(16)),
    Column("payload", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UtcDateTime, nullable=False),
    Column("lease_until", UtcDateTime),
    Column("last_error", Text),
    Column("result", Text),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("applied_at", UtcDateTime),
    UniqueConstraint("idempotency_key", name="uq_writebacks_idempotency_key"),
    Index("ix_writebacks_status_next", "status", "next_attempt_at"),
    Index("ix_writebacks_appointment", "appointment_key", "occurrence"),
)

rejects = Table(
    "rejects",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("kind", String(32), nullable=False),
    Column("ref", String(255), nullable=False),
    Column("reason", Text, nullable=False),
    Column("payload", Text),
    Column("first_seen", UtcDateTime, nullable=False),
    Column("last_seen", UtcDateTime, nullable=False),
    Column("count", Integer, nullable=False, default=1),
    Column("resolved_at", UtcDateTime),
    UniqueConstraint("kind", "ref", name="uq_rejects_kind_ref"),
)
