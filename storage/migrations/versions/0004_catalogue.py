"""Catalogue and enrollment requests: programs, consents, children, requests, audit log.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Stamp = sa.DateTime(timezone=True)
OPEN = sa.text("status IN ('new', 'accepted')")


def upgrade() -> None:
    op.create_table(
        "programs",
        sa.Column("id", BigId, nullable=False),
        sa.Column("navigator_id", sa.String(32), nullable=False),
        sa.Column("title", sa.String(255), nullable=False),
        sa.Column("organisation", sa.String(255), nullable=False),
        sa.Column("municipality_id", sa.String(64), nullable=False),
        sa.Column("address", sa.String(255), nullable=False),
        sa.Column("direction", sa.String(16), nullable=False),
        sa.Column("age_from", sa.Integer(), nullable=False),
        sa.Column("age_to", sa.Integer(), nullable=False),
        sa.Column("funding", sa.String(16), nullable=False),
        sa.Column("price", sa.Integer(), nullable=True),
        sa.Column("schedule", sa.String(255), nullable=False),
        sa.Column("places_left", sa.Integer(), nullable=True),
        sa.Column("url", sa.String(500), nullable=False),
        sa.Column("sample", sa.Boolean(), nullable=False),
        sa.Column("search_text", sa.Text(), nullable=False),
        sa.Column("updated_at", Stamp, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_programs"),
        sa.UniqueConstraint("navigator_id", name="uq_programs_navigator_id"),
    )
    op.create_index("ix_programs_search", "programs", ["municipality_id", "direction", "funding"])
    op.create_index("ix_programs_organisation", "programs", ["organisation"])

    op.create_table(
        "consents",
        sa.Column("id", BigId, nullable=False),
        sa.Column("user_id", BigId, nullable=False),
        sa.Column("region", sa.String(32), nullable=False),
        sa.Column("text_version", sa.String(64), nullable=False),
        sa.Column("given_at", Stamp, nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_consents_user_id_users", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_consents"),
    )
    op.create_index("ix_consents_user_id", "consents", ["user_id"])

    op.create_table(
        "children",
        sa.Column("id", BigId, nullable=False),
        sa.Column("user_id", BigId, nullable=False),
        sa.Column("full_name", sa.String(255), nullable=False),
        sa.Column("birth_date", sa.Date(), nullable=False),
        sa.Column("certificate_number", sa.String(32), nullable=True),
        sa.Column("created_at", Stamp, nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_children_user_id_users", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_children"),
    )
    op.create_index("ix_children_user_id", "children", ["user_id"])

    op.create_table(
        "enrollment_requests",
        sa.Column("id", BigId, nullable=False),
        sa.Column("user_id", BigId, nullable=False),
        sa.Column("child_id", BigId, nullable=False),
        sa.Column("program_id", BigId, nullable=False),
        sa.Column("phone", sa.String(32), nullable=False),
        sa.Column("comment", sa.String(1000), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(1000), nullable=False),
        sa.Column("submit_key", sa.String(64), nullable=False),
        sa.Column("created_at", Stamp, nullable=False),
        sa.Column("updated_at", Stamp, nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name="fk_enrollment_requests_user_id_users",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["child_id"],
            ["children.id"],
            name="fk_enrollment_requests_child_id_children",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["program_id"],
            ["programs.id"],
            name="fk_enrollment_requests_program_id_programs",
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_enrollment_requests"),
        sa.UniqueConstraint("submit_key", name="uq_enrollment_requests_submit_key"),
    )
    op.create_index("ix_enrollment_requests_user_id", "enrollment_requests", ["user_id"])
    op.create_index("ix_enrollment_requests_created", "enrollment_requests", ["created_at"])
    op.create_index(
        "uq_enrollment_requests_open",
        "enrollment_requests",
        ["child_id", "program_id"],
        unique=True,
        sqlite_where=OPEN,
        postgresql_where=OPEN,
    )

    op.create_table(
        "audit_log",
        sa.Column("id", BigId, nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("actor", sa.String(16), nullable=False),
        sa.Column("request_id", sa.BigInteger(), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("created_at", Stamp, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
    )
    op.create_index("ix_audit_log_created_at", "audit_log", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_audit_log_created_at", table_name="audit_log")
    op.drop_table("audit_log")
    op.drop_index("uq_enrollment_requests_open", table_name="enrollment_requests")
    op.drop_index("ix_enrollment_requests_created", table_name="enrollment_requests")
    op.drop_index("ix_enrollment_requests_user_id", table_name="enrollment_requests")
    op.drop_table("enrollment_requests")
    op.drop_index("ix_children_user_id", table_name="children")
    op.drop_table("children")
    op.drop_index("ix_consents_user_id", table_name="consents")
    op.drop_table("consents")
    op.drop_index("ix_programs_organisation", table_name="programs")
    op.drop_index("ix_programs_search", table_name="programs")
    op.drop_table("programs")
