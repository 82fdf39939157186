"""Web access and search: password hashes, API tokens, dashboard sessions,
and the search facets kept on each module.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("users", sa.Column("password_hash", sa.String(200), nullable=True))
    # Existing modules get their facets computed by the catalog service
    # (clouds NULL marks them), since that needs inheritance resolved.
    op.add_column("modules", sa.Column("description", sa.Text(), nullable=False, server_default=""))
    op.add_column("modules", sa.Column("os", sa.String(100), nullable=False, server_default=""))
    op.add_column("modules", sa.Column("clouds", sa.Text(), nullable=True))
    op.add_column("modules", sa.Column("parent", sa.String(400), nullable=True))
    op.create_index("ix_modules_os", "modules", ["os"])
    op.create_index("ix_modules_parent", "modules", ["parent"])
    op.create_index(
        "ix_modules_access",
        "modules",
        ["kind", "owner", "public_rights", "group_name", "group_rights"],
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "user_id",
            sa.Integer(),
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_api_tokens_user_id", "api_tokens", ["user_id"])
    op.create_table(
        "web_sessions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "user_id",
            sa.Integer(),
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("csrf", sa.String(64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_web_sessions_user_id", "web_sessions", ["user_id"])


def downgrade() -> None:
    op.drop_table("web_sessions")
    op.drop_table("api_tokens")
    op.drop_index("ix_modules_access", "modules")
    op.drop_index("ix_modules_parent", "modules")
    op.drop_index("ix_modules_os", "modules")
    with op.batch_alter_table("modules") as batch:
        for column in ("parent", "clouds", "os", "description"):
            batch.drop_column(column)
    with op.batch_alter_table("users") as batch:
        batch.drop_column("password_hash")
