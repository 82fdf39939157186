"""Run lists at 100,000 runs: one index per list filter (none, owner, owner
and state, state, cloud), each ending in the list's order (created_at, id), so
a page is read off an index instead of sorting every match. They replace the
single-column indexes, whose lookups they also serve.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

SINGLE = ("owner", "cloud", "state", "created_at")
LISTS = {
    "ix_runs_newest": ["created_at", "id"],
    "ix_runs_owner_newest": ["owner", "created_at", "id"],
    "ix_runs_owner_state_newest": ["owner", "state", "created_at", "id"],
    "ix_runs_state_newest": ["state", "created_at", "id"],
    "ix_runs_cloud_newest": ["cloud", "created_at", "id"],
}


def upgrade() -> None:
    for name, columns in LISTS.items():
        op.create_index(name, "runs", columns)
    for column in SINGLE:
        op.drop_index(f"ix_runs_{column}", "runs")


def downgrade() -> None:
    for column in SINGLE:
        op.create_index(f"ix_runs_{column}", "runs", [column])
    for name in LISTS:
        op.drop_index(name, "runs")
