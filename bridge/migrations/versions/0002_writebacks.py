"""write-back command queue

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

UTC_TIME = sa.DateTime(timezone=True)
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "writebacks",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("idempotency_key", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("origin", sa.String(length=32), nullable=False),
        sa.Column("ref", sa.String(length=255), nullable=False),
        sa.Column("patient_key", sa.String(length=64), nullable=False),
        sa.Column("appointment_key", sa.String(length=64), nullable=True),
        sa.Column("occurrence", sa.Date(), nullable=True),
        sa.Column("channel", sa.String(length=16), nullable=True),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UTC_TIME, nullable=False),
        sa.Column("lease_until", UTC_TIME, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("updated_at", UTC_TIME, nullable=False),
        sa.Column("applied_at", UTC_TIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_writebacks")),
        sa.UniqueConstraint("idempotency_key", name="uq_writebacks_idempotency_key"),
    )
    op.create_index("ix_writebacks_status_next", "writebacks", ["status", "next_attempt_at"])
    op.create_index("ix_writebacks_appointment", "writebacks", ["appointment_key", "occurrence"])


def downgrade() -> None:
    op.drop_index("ix_writebacks_appointment", table_name="writebacks")
    op.drop_index("ix_writebacks_status_next", table_name="writebacks")
    op.drop_table("writebacks")
