"""patient links (confirm / cancel pages)

Revision ID: patient_0001
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

UTC_TIME = sa.DateTime(timezone=True)
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

revision = "patient_0001"
down_revision = "0002"
branch_labels = ("patient",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "patient_links",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("lookup", sa.String(length=32), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("job_id", ID, nullable=True),
        sa.Column("appointment_key", sa.String(length=64), nullable=False),
        sa.Column("occurrence", sa.Date(), nullable=False),
        sa.Column("patient_key", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=True),
        sa.Column("language", sa.String(length=16), nullable=False),
        sa.Column("sent_start", UTC_TIME, nullable=False),
        sa.Column("sent_digest", sa.String(length=32), nullable=False),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("expires_at", UTC_TIME, nullable=False),
        sa.Column("tries", sa.Integer(), nullable=False),
        sa.Column("locked_at", UTC_TIME, nullable=True),
        sa.Column("session", sa.String(length=32), nullable=True),
        sa.Column("session_until", UTC_TIME, nullable=True),
        sa.Column("used_at", UTC_TIME, nullable=True),
        sa.Column("answer", sa.String(length=16), nullable=True),
        sa.Column("writeback_id", ID, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patient_links")),
        sa.UniqueConstraint("lookup", name="uq_patient_links_lookup"),
    )
    op.create_index(
        "ix_patient_links_appointment", "patient_links", ["appointment_key", "occurrence"]
    )


def downgrade() -> None:
    op.drop_index("ix_patient_links_appointment", table_name="patient_links")
    op.drop_table("patient_links")
