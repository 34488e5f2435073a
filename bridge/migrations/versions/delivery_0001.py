"""delivery: send attempts, inbound callbacks and replies, opt-outs, answers

Revision ID: delivery_0001
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

# Frozen copies of the types in bridge/store/schema.py: a migration must not change when the
# schema module does.
UTC_TIME = sa.DateTime(timezone=True)
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

revision = "delivery_0001"
down_revision = "0002"
branch_labels = ("delivery",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "deliveries",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("token", sa.String(length=32), nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=False),
        sa.Column("job_id", ID, nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("plugin", sa.String(length=32), nullable=False),
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("appointment_key", sa.String(length=64), nullable=True),
        sa.Column("occurrence", sa.Date(), nullable=True),
        sa.Column("patient_key", sa.String(length=64), nullable=True),
        sa.Column("recipient", sa.String(length=255), nullable=False),
        sa.Column("body_digest", sa.String(length=32), nullable=False),
        sa.Column("testing", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("provider_ref", sa.String(length=128), nullable=True),
        sa.Column("error_code", sa.String(length=32), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("segments", sa.Integer(), nullable=True),
        sa.Column("cost", sa.Float(), nullable=True),
        sa.Column("started_at", UTC_TIME, nullable=False),
        sa.Column("accepted_at", UTC_TIME, nullable=True),
        sa.Column("final_at", UTC_TIME, nullable=True),
        sa.Column("updated_at", UTC_TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["jobs.id"],
            name=op.f("fk_deliveries_job_id_jobs"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deliveries")),
        sa.UniqueConstraint("token", name="uq_deliveries_token"),
        sa.UniqueConstraint("idempotency_key", name="uq_deliveries_idempotency_key"),
    )
    op.create_index("ix_deliveries_provider_ref", "deliveries", ["provider_ref"])
    op.create_index("ix_deliveries_recipient", "deliveries", ["channel", "recipient", "started_at"])
    op.create_index("ix_deliveries_job_id", "deliveries", ["job_id"])
    op.create_index("ix_deliveries_started_at", "deliveries", ["started_at"])

    op.create_table(
        "inbound",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("provider_ref", sa.String(length=128), nullable=False),
        sa.Column("delivery_id", ID, nullable=True),
        sa.Column("channel", sa.String(length=16), nullable=True),
        sa.Column("sender", sa.String(length=255), nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("intent", sa.String(length=16), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("received_at", UTC_TIME, nullable=False),
        sa.Column("handled_at", UTC_TIME, nullable=True),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["deliveries.id"],
            name=op.f("fk_inbound_delivery_id_deliveries"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbound")),
        sa.UniqueConstraint("kind", "provider_ref", name="uq_inbound_kind_provider_ref"),
    )
    op.create_index("ix_inbound_status", "inbound", ["status"])

    op.create_table(
        "opt_outs",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("address", sa.String(length=255), nullable=False),
        sa.Column("patient_key", sa.String(length=64), nullable=True),
        sa.Column("opted_out", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("changed_at", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_opt_outs")),
        sa.UniqueConstraint("channel", "address", name="uq_opt_outs_channel_address"),
    )
    op.create_index("ix_opt_outs_patient_key", "opt_outs", ["patient_key"])

    op.create_table(
        "answers",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("appointment_key", sa.String(length=64), nullable=False),
        sa.Column("occurrence", sa.Date(), nullable=False),
        sa.Column("patient_key", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=True),
        sa.Column("origin", sa.String(length=32), nullable=False),
        sa.Column("at", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_answers")),
    )
    op.create_index("ix_answers_appointment", "answers", ["appointment_key", "occurrence"])

    op.create_table(
        "call_scripts",
        sa.Column("token", sa.String(length=32), nullable=False),
        sa.Column("script", sa.Text(), nullable=False),
        sa.Column("voicemail", sa.Text(), nullable=False),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("token", name=op.f("pk_call_scripts")),
    )


def downgrade() -> None:
    op.drop_table("call_scripts")
    op.drop_table("answers")
    op.drop_table("opt_outs")
    op.drop_table("inbound")
    op.drop_table("deliveries")
