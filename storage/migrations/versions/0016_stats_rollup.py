"""Statistics: how far the daily counts are rolled up; indexes for today's live counts
and new parents by day.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stats_rollup",
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("through", sa.Date(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_stats_rollup"),
    )
    op.create_index("ix_transcript_created", "transcript", ["created_at"])
    # Covering: new parents of a period by source and channel read the index only.
    op.create_index(
        "ix_users_first_seen", "users", ["first_seen", "source", "channel", "person_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_users_first_seen", table_name="users")
    op.drop_index("ix_transcript_created", table_name="transcript")
    op.drop_table("stats_rollup")
