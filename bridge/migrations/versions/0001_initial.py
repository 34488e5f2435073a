"""initial store: snapshots, jobs, job events, state, rejects

Revision ID: 0001
Revises: (none)
"""

import sqlalchemy as sa
from alembic import op

# Frozen copies of the types in bridge/store/schema.py: a migration must not change when the
# schema module does.
UTC_TIME = sa.DateTime(timezone=True)
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "appointments",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("occurrence", sa.Date(), nullable=False),
        sa.Column("patient_key", sa.String(length=64), nullable=False),
        sa.Column("start_at", UTC_TIME, nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("eligible", sa.Boolean(), nullable=False),
        sa.Column("row_hash", sa.String(length=32), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("first_seen", UTC_TIME, nullable=False),
        sa.Column("changed_at", UTC_TIME, nullable=False),
        sa.Column("deleted_at", UTC_TIME, nullable=True),
        sa.PrimaryKeyConstraint("key", "occurrence", name=op.f("pk_appointments")),
    )
    op.create_index("ix_appointments_occurrence", "appointments", ["occurrence"])
    op.create_index("ix_appointments_patient_key", "appointments", ["patient_key"])

    op.create_table(
        "jobs",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("dedupe_key", sa.String(length=255), nullable=False),
        sa.Column("appointment_key", sa.String(length=64), nullable=False),
        sa.Column("occurrence", sa.Date(), nullable=False),
        sa.Column("patient_key", sa.String(length=64), nullable=False),
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("rule", sa.String(length=32), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("due_at", UTC_TIME, nullable=False),
        sa.Column("lease_until", UTC_TIME, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("appointment_start", UTC_TIME, nullable=False),
        sa.Column("provider_ref", sa.String(length=128), nullable=True),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("updated_at", UTC_TIME, nullable=False),
        sa.Column("sent_at", UTC_TIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
        sa.UniqueConstraint("dedupe_key", name="uq_jobs_dedupe_key"),
    )
    op.create_index("ix_jobs_appointment", "jobs", ["appointment_key", "occurrence"])
    op.create_index("ix_jobs_patient_key", "jobs", ["patient_key"])
    op.create_index("ix_jobs_status_due_at", "jobs", ["status", "due_at"])

    op.create_table(
        "patients",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("row_hash", sa.String(length=32), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("first_seen", UTC_TIME, nullable=False),
        sa.Column("changed_at", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_patients")),
    )
    op.create_table(
        "rejects",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("ref", sa.String(length=255), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=True),
        sa.Column("first_seen", UTC_TIME, nullable=False),
        sa.Column("last_seen", UTC_TIME, nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("resolved_at", UTC_TIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rejects")),
        sa.UniqueConstraint("kind", "ref", name="uq_rejects_kind_ref"),
    )
    op.create_table(
        "state",
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_at", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_state")),
    )
    op.create_table(
        "job_events",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("job_id", ID, nullable=False),
        sa.Column("at", UTC_TIME, nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_job_events_job_id_jobs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_events")),
    )
    op.create_index("ix_job_events_job_id", "job_events", ["job_id"])


def downgrade() -> None:
    op.drop_index("ix_job_events_job_id", table_name="job_events")

    op.drop_table("job_events")
    op.drop_table("state")
    op.drop_table("rejects")
    op.drop_table("patients")
    op.drop_index("ix_jobs_status_due_at", table_name="jobs")
    op.drop_index("ix_jobs_patient_key", table_name="jobs")
    op.drop_index("ix_jobs_appointment", table_name="jobs")

    op.drop_table("jobs")
    op.drop_index("ix_appointments_patient_key", table_name="appointments")
    op.drop_index("ix_appointments_occurrence", table_name="appointments")

    op.drop_table("appointments")
