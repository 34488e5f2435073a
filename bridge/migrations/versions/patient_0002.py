"""online booking: booking links, bookings, invitations, recalls

Revision ID: patient_0002
Revises: patient_0001
"""

import sqlalchemy as sa
from alembic import op

UTC_TIME = sa.DateTime(timezone=True)
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

revision = "patient_0002"
down_revision = "patient_0001"
branch_labels = None
depends_on = None

TABLES = ("recall_runs", "manual_recalls", "recalls", "invitations", "bookings", "booking_passes")


def upgrade() -> None:
    op.create_table(
        "booking_passes",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("lookup", sa.String(length=32), nullable=False),
        sa.Column("identity", sa.String(length=64), nullable=False),
        sa.Column("flow", sa.String(length=16), nullable=False),
        sa.Column("patient_key", sa.String(length=64), nullable=True),
        sa.Column("reasons", sa.Text(), nullable=True),
        sa.Column("provider_key", sa.String(length=64), nullable=True),
        sa.Column("language", sa.String(length=16), nullable=False),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("expires_at", UTC_TIME, nullable=False),
        sa.Column("tries", sa.Integer(), nullable=False),
        sa.Column("locked_at", UTC_TIME, nullable=True),
        sa.Column("session", sa.String(length=32), nullable=True),
        sa.Column("session_until", UTC_TIME, nullable=True),
        sa.Column("used_at", UTC_TIME, nullable=True),
        sa.Column("revoked_at", UTC_TIME, nullable=True),
        sa.Column("booking_id", ID, nullable=True),
        sa.Column("recall_id", ID, nullable=True),
        sa.Column("invitation_id", ID, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_booking_passes")),
        sa.UniqueConstraint("lookup", name="uq_booking_passes_lookup"),
    )
    op.create_table(
        "bookings",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("reference", sa.String(length=16), nullable=False),
        sa.Column("flow", sa.String(length=16), nullable=False),
        sa.Column("pass_id", ID, nullable=True),
        sa.Column("patient_key", sa.String(length=64), nullable=True),
        sa.Column("new_patient", sa.Boolean(), nullable=False),
        sa.Column("reason_key", sa.String(length=32), nullable=False),
        sa.Column("service_key", sa.String(length=64), nullable=False),
        sa.Column("provider_key", sa.String(length=64), nullable=False),
        sa.Column("facility_key", sa.String(length=64), nullable=True),
        sa.Column("start_at", UTC_TIME, nullable=False),
        sa.Column("end_at", UTC_TIME, nullable=False),
        sa.Column("language", sa.String(length=16), nullable=False),
        sa.Column("approval", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("writeback_id", ID, nullable=True),
        sa.Column("appointment_key", sa.String(length=64), nullable=True),
        sa.Column("recall_id", ID, nullable=True),
        sa.Column("invitation_id", ID, nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("updated_at", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bookings")),
        sa.UniqueConstraint("reference", name="uq_bookings_reference"),
    )
    op.create_index("ix_bookings_status", "bookings", ["status"])
    op.create_table(
        "invitations",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("patient_key", sa.String(length=64), nullable=True),
        sa.Column("email", sa.String(length=255), nullable=False),
        sa.Column("host_email", sa.String(length=255), nullable=True),
        sa.Column("language", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("pass_id", ID, nullable=True),
        sa.Column("sends", sa.Integer(), nullable=False),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("expires_at", UTC_TIME, nullable=False),
        sa.Column("enrolled_at", UTC_TIME, nullable=True),
        sa.Column("revoked_at", UTC_TIME, nullable=True),
        sa.Column("updated_at", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invitations")),
    )
    op.create_index("ix_invitations_patient_key", "invitations", ["patient_key"])
    op.create_index("ix_invitations_status", "invitations", ["status"])
    op.create_table(
        "recalls",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("patient_key", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("last_visit", sa.Date(), nullable=True),
        sa.Column("reason_key", sa.String(length=32), nullable=False),
        sa.Column("run_on", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("pass_id", ID, nullable=True),
        sa.Column("booking_id", ID, nullable=True),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("expires_at", UTC_TIME, nullable=False),
        sa.Column("updated_at", UTC_TIME, nullable=False),
        sa.Column("closed_at", UTC_TIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recalls")),
        sa.UniqueConstraint("patient_key", "source", "due_on", name="uq_recalls_patient_key"),
    )
    op.create_index("ix_recalls_run_on", "recalls", ["run_on"])
    op.create_index("ix_recalls_status", "recalls", ["status"])
    op.create_table(
        "manual_recalls",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("patient_key", sa.String(length=64), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("reason_key", sa.String(length=32), nullable=True),
        sa.Column("appointment_key", sa.String(length=64), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("cancelled_at", UTC_TIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_manual_recalls")),
    )
    op.create_index("ix_manual_recalls_due_on", "manual_recalls", ["due_on"])
    op.create_table(
        "recall_runs",
        sa.Column("run_on", sa.Date(), nullable=False),
        sa.Column("started_at", UTC_TIME, nullable=False),
        sa.Column("finished_at", UTC_TIME, nullable=True),
        sa.Column("counts", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("run_on", name=op.f("pk_recall_runs")),
    )


def downgrade() -> None:
    for name in TABLES:
        op.drop_table(name)
