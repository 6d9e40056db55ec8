"""Knowledge-base upkeep: the search terms of each stored question, what the parent did
next, and how staff marked its group; handoffs found by parent and time.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

Stamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("faq_unanswered") as batch:
        batch.add_column(sa.Column("terms", sa.Text(), nullable=True))
        batch.add_column(sa.Column("message_id", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("next_step", sa.String(16), nullable=True))
        batch.add_column(sa.Column("resolution", sa.String(16), nullable=True))
        batch.add_column(sa.Column("resolved_by", sa.String(64), nullable=True))
        batch.add_column(sa.Column("resolved_at", Stamp, nullable=True))
    op.create_index("ix_handoffs_user_created", "handoffs", ["user_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_handoffs_user_created", table_name="handoffs")
    with op.batch_alter_table("faq_unanswered") as batch:
        for name in (
            "resolved_at",
            "resolved_by",
            "resolution",
            "next_step",
            "message_id",
            "terms",
        ):
            batch.drop_column(name)
