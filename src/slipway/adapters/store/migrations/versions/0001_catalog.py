"""The catalog: users, groups, modules and their immutable versions.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("admin", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "groups",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
    )
    op.create_table(
        "memberships",
        sa.Column(
            "group_id",
            sa.Integer(),
            sa.ForeignKey("groups.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
        ),
    )
    op.create_table(
        "modules",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(400), nullable=False, unique=True),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("group_name", sa.String(200), nullable=True),
        sa.Column("group_rights", sa.String(40), nullable=False),
        sa.Column("public_rights", sa.String(40), nullable=False),
        sa.Column("latest_version", sa.Integer(), nullable=False),
    )
    op.create_index("ix_modules_kind", "modules", ["kind"])
    op.create_index("ix_modules_owner", "modules", ["owner"])
    op.create_table(
        "module_versions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "module_id",
            sa.Integer(),
            sa.ForeignKey("modules.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "document", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("author", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("copied_from", sa.String(420), nullable=True),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.UniqueConstraint("module_id", "version"),
    )


def downgrade() -> None:
    op.drop_table("module_versions")
    op.drop_index("ix_modules_owner", "modules")
    op.drop_index("ix_modules_kind", "modules")
    op.drop_table("modules")
    op.drop_table("memberships")
    op.drop_table("groups")
    op.drop_table("users")
