"""Foundation: users, conversation state, transcript, processed updates.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Stamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("platform_user_id", sa.String(64), nullable=False),
        sa.Column("chat_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("first_seen", Stamp, nullable=False),
        sa.Column("last_seen", Stamp, nullable=False),
        sa.Column("reachable", sa.Boolean(), nullable=False),
        sa.Column("municipality_id", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("channel", "platform_user_id", name="uq_users_channel"),
    )
    op.create_table(
        "conversation_states",
        sa.Column("user_id", BigId, nullable=False),
        sa.Column("step", sa.String(128), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("last_buttons", sa.JSON(), nullable=True),
        sa.Column("updated_at", Stamp, nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name="fk_conversation_states_user_id_users",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", name="pk_conversation_states"),
    )
    op.create_table(
        "transcript",
        sa.Column("id", BigId, nullable=False),
        sa.Column("user_id", BigId, nullable=False),
        sa.Column("direction", sa.String(3), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("buttons", sa.JSON(), nullable=True),
        sa.Column("payload", sa.String(255), nullable=True),
        sa.Column("platform_message_id", sa.String(64), nullable=True),
        sa.Column("platform_update_id", sa.String(64), nullable=True),
        sa.Column("created_at", Stamp, nullable=False),
        sa.Column("status", sa.String(16), nullable=True),
        sa.Column("error", sa.String(500), nullable=True),
        sa.Column("sent_at", Stamp, nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_transcript_user_id_users", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_transcript"),
    )
    op.create_index("ix_transcript_user_created", "transcript", ["user_id", "created_at"])
    op.create_table(
        "processed_updates",
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("update_id", sa.String(64), nullable=False),
        sa.Column("created_at", Stamp, nullable=False),
        sa.PrimaryKeyConstraint("channel", "update_id", name="pk_processed_updates"),
    )


def downgrade() -> None:
    op.drop_table("processed_updates")
    op.drop_index("ix_transcript_user_created", table_name="transcript")
    op.drop_table("transcript")
    op.drop_table("conversation_states")
    op.drop_table("users")
