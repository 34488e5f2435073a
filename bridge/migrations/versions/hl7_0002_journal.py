"""HL7 feed: the last receipt-journal number the store holds

Revision ID: hl7_0002
Revises: hl7_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "hl7_0002"
down_revision = "hl7_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "hl7_journal",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_hl7_journal")),
    )


def downgrade() -> None:
    op.drop_table("hl7_journal")
