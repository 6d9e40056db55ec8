"""Linked messengers and one-time link codes: users.person_id and the link_codes table.

Revision ID: 0014
Revises: 0011
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0011"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("person_id", BigId, nullable=True))
        batch.create_foreign_key(
            "fk_users_person_id_users", "users", ["person_id"], ["id"], ondelete="SET NULL"
        )
        batch.create_index("ix_users_person_id", ["person_id"])
    op.create_table(
        "link_codes",
        sa.Column("code_hash", sa.String(64), nullable=False),
        sa.Column("user_id", BigId, nullable=False),
        sa.Column("target", sa.String(16), nullable=False),
        sa.Column("carry", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_link_codes_user_id_users", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("code_hash", name="pk_link_codes"),
    )


def downgrade() -> None:
    op.drop_table("link_codes")
    with op.batch_alter_table("users") as batch:
        batch.drop_index("ix_users_person_id")
        batch.drop_constraint("fk_users_person_id_users", type_="foreignkey")
        batch.drop_column("person_id")
