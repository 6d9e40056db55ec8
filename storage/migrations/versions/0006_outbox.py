"""Outbox and inbox: kinds and authors of outgoing messages, chat leases for the
delivery workers, conversations taken by a person, stored incoming updates, long-poll
cursors.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("outbox_owner", sa.String(64), nullable=True))
        batch.add_column(sa.Column("outbox_lease_until", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("with_person_since", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("transcript") as batch:
        batch.add_column(sa.Column("kind", sa.String(16), nullable=True))
        batch.add_column(sa.Column("author", sa.String(64), nullable=True))
    op.create_index(
        "ix_transcript_pending",
        "transcript",
        ["user_id", "id"],
        sqlite_where=sa.text("status = 'pending'"),
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_table(
        "inbox",
        sa.Column("id", BigId, nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("update_id", sa.String(64), nullable=False),
        sa.Column("platform_user_id", sa.String(64), nullable=False),
        sa.Column("incoming", sa.JSON(), nullable=False),
        sa.Column("owner", sa.String(64), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_inbox"),
        sa.UniqueConstraint("channel", "update_id", name="uq_inbox_channel"),
    )
    op.create_table(
        "channel_cursors",
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("cursor", sa.String(128), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("channel", name="pk_channel_cursors"),
    )


def downgrade() -> None:
    op.drop_table("channel_cursors")
    op.drop_table("inbox")
    op.drop_index("ix_transcript_pending", table_name="transcript")
    with op.batch_alter_table("transcript") as batch:
        batch.drop_column("author")
        batch.drop_column("kind")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("with_person_since")
        batch.drop_column("outbox_lease_until")
        batch.drop_column("outbox_owner")
