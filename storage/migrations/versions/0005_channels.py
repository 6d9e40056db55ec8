"""Channels: deep-link source on users, short keys for long button payloads.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("source", sa.String(64), nullable=True))
        batch.add_column(sa.Column("start_param", sa.String(64), nullable=True))
    op.create_table(
        "button_payloads",
        sa.Column("key", sa.String(32), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_button_payloads"),
    )


def downgrade() -> None:
    op.drop_table("button_payloads")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("start_param")
        batch.drop_column("source")
