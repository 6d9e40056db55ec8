"""Handoff to a person, statistics events and the anonymous daily counts kept by retention.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Stamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "handoffs",
        sa.Column("id", BigId, nullable=False),
        sa.Column("user_id", BigId, nullable=False),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.Column("question", sa.Text(), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_at", Stamp, nullable=False),
        sa.Column("waiting_since", Stamp, nullable=False),
        sa.Column("taken_by", sa.String(64), nullable=True),
        sa.Column("taken_at", Stamp, nullable=True),
        sa.Column("first_reply_at", Stamp, nullable=True),
        sa.Column("last_operator_reply_at", Stamp, nullable=True),
        sa.Column("last_parent_message_at", Stamp, nullable=True),
        sa.Column("closed_at", Stamp, nullable=True),
        sa.Column("closed_by", sa.String(64), nullable=True),
        sa.Column("returned", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_handoffs_user_id_users", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_handoffs"),
    )
    op.create_index("ix_handoffs_state_created", "handoffs", ["state", "created_at"])
    op.create_index(
        "uq_handoffs_open_user",
        "handoffs",
        ["user_id"],
        unique=True,
        sqlite_where=sa.text("state != 'closed'"),
        postgresql_where=sa.text("state != 'closed'"),
    )
    op.create_table(
        "events",
        sa.Column("id", BigId, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("detail", sa.String(64), nullable=True),
        sa.Column("channel", sa.String(16), nullable=True),
        sa.Column("user_id", BigId, nullable=True),
        sa.Column("created_at", Stamp, nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_events_user_id_users", ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_events"),
    )
    op.create_index("ix_events_kind_created", "events", ["kind", "created_at"])
    op.create_table(
        "stats_daily",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("metric", sa.String(32), nullable=False),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day", "channel", "metric", name="pk_stats_daily"),
    )


def downgrade() -> None:
    op.drop_table("stats_daily")
    op.drop_index("ix_events_kind_created", table_name="events")
    op.drop_table("events")
    op.drop_index("uq_handoffs_open_user", table_name="handoffs")
    op.drop_index("ix_handoffs_state_created", table_name="handoffs")
    op.drop_table("handoffs")
