"""Group editors: a member marked ``editor`` may create modules in the
group's namespace (``GROUP/…``); existing members are not editors.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("memberships") as table:
        table.add_column(
            sa.Column("editor", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("memberships") as table:
        table.drop_column("editor")
