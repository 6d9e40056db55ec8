"""Staff console: staff accounts, their sessions and failed sign-ins; who did what in the
audit log; full-text search over the transcript; indexes for the conversation list.

Revision ID: 0010
Revises: 0006
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

from storage import search

revision = "0010"
down_revision = "0006"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Stamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "staff_users",
        sa.Column("id", BigId, nullable=False),
        sa.Column("login", sa.String(64), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", Stamp, nullable=False),
        sa.Column("password_changed_at", Stamp, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_staff_users"),
        sa.UniqueConstraint("login", name="uq_staff_users_login"),
    )
    op.create_table(
        "staff_sessions",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("staff_id", BigId, nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("unmasked", sa.JSON(), nullable=False),
        sa.Column("created_at", Stamp, nullable=False),
        sa.Column("last_seen", Stamp, nullable=False),
        sa.ForeignKeyConstraint(
            ["staff_id"],
            ["staff_users.id"],
            name="fk_staff_sessions_staff_id_staff_users",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_staff_sessions"),
    )
    op.create_index("ix_staff_sessions_staff_id", "staff_sessions", ["staff_id"])
    op.create_table(
        "staff_sign_in_attempts",
        sa.Column("id", BigId, nullable=False),
        sa.Column("login", sa.String(64), nullable=False),
        sa.Column("address", sa.String(64), nullable=False),
        sa.Column("created_at", Stamp, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_staff_sign_in_attempts"),
    )
    op.create_index(
        "ix_staff_sign_in_attempts_login", "staff_sign_in_attempts", ["login", "created_at"]
    )
    op.create_index(
        "ix_staff_sign_in_attempts_address", "staff_sign_in_attempts", ["address", "created_at"]
    )
    with op.batch_alter_table("audit_log") as batch:
        batch.add_column(sa.Column("staff_login", sa.String(64), nullable=True))
        batch.add_column(sa.Column("user_id", sa.BigInteger(), nullable=True))
    op.create_index("ix_users_last_seen", "users", ["last_seen"])
    op.create_index("ix_faq_unanswered_user", "faq_unanswered", ["user_id"])
    statements = (
        search.SQLITE_DDL if op.get_context().dialect.name == "sqlite" else search.POSTGRESQL_DDL
    )
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    dialect = op.get_context().dialect.name
    for statement in search.SQLITE_DROP if dialect == "sqlite" else search.POSTGRESQL_DROP:
        op.execute(statement)
    op.drop_index("ix_faq_unanswered_user", table_name="faq_unanswered")
    op.drop_index("ix_users_last_seen", table_name="users")
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_column("user_id")
        batch.drop_column("staff_login")
    op.drop_table("staff_sign_in_attempts")
    op.drop_table("staff_sessions")
    op.drop_table("staff_users")
