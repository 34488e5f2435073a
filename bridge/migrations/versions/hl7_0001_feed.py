"""HL7 feed: received messages (raw, verdict, dedupe) and the mirror of the host's appointments

Revision ID: hl7_0001
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

UTC_TIME = sa.DateTime(timezone=True)
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

revision = "hl7_0001"
down_revision = "0002"
branch_labels = ("hl7",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "hl7_messages",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("received_at", UTC_TIME, nullable=False),
        sa.Column("last_seen", UTC_TIME, nullable=False),
        sa.Column("times_seen", sa.Integer(), nullable=False),
        sa.Column("origin", sa.String(length=64), nullable=False),
        sa.Column("sender", sa.String(length=255), nullable=False),
        sa.Column("control_id", sa.String(length=255), nullable=False),
        sa.Column("digest", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("version", sa.String(length=16), nullable=False),
        sa.Column("message_time", UTC_TIME, nullable=True),
        sa.Column("appointment_key", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("code", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("charset", sa.String(length=32), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("applied_at", UTC_TIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hl7_messages")),
        sa.UniqueConstraint("sender", "control_id", "digest", name="uq_hl7_messages_identity"),
    )
    op.create_index("ix_hl7_messages_status_id", "hl7_messages", ["status", "id"])
    op.create_index("ix_hl7_messages_appointment_key", "hl7_messages", ["appointment_key"])
    op.create_table(
        "hl7_appointments",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("occurrence", sa.Date(), nullable=True),
        sa.Column("patient_key", sa.String(length=64), nullable=True),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("digest", sa.String(length=32), nullable=True),
        sa.Column("data", sa.Text(), nullable=True),
        sa.Column("echo", sa.Text(), nullable=True),
        sa.Column("message_time", UTC_TIME, nullable=False),
        sa.Column("message_id", ID, nullable=False),
        sa.Column("updated_at", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_hl7_appointments")),
    )
    op.create_index("ix_hl7_appointments_occurrence", "hl7_appointments", ["occurrence"])
    op.create_index("ix_hl7_appointments_patient_key", "hl7_appointments", ["patient_key"])
    op.create_table(
        "hl7_patients",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("digest", sa.String(length=32), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("message_time", UTC_TIME, nullable=False),
        sa.Column("message_id", ID, nullable=False),
        sa.Column("updated_at", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_hl7_patients")),
    )
    op.create_table(
        "hl7_resources",
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("updated_at", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("kind", "key", name=op.f("pk_hl7_resources")),
    )


def downgrade() -> None:
    op.drop_table("hl7_resources")
    op.drop_table("hl7_patients")
    op.drop_index("ix_hl7_appointments_patient_key", table_name="hl7_appointments")
    op.drop_index("ix_hl7_appointments_occurrence", table_name="hl7_appointments")
    op.drop_table("hl7_appointments")
    op.drop_index("ix_hl7_messages_appointment_key", table_name="hl7_messages")
    op.drop_index("ix_hl7_messages_status_id", table_name="hl7_messages")
    op.drop_table("hl7_messages")
