"""Provider sync: subscriptions (with what each last accepted and the lease
of the sync running now), the native images each keeps on its cloud, and
the history of every sync with its steps.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_DOCUMENT = sa.JSON().with_variant(JSONB(), "postgresql")
_WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "subscriptions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(63), nullable=False, unique=True),
        sa.Column("cloud", sa.String(200), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("endorser_dn", sa.Text(), nullable=False),
        sa.Column("endorser_ca", sa.Text(), nullable=True),
        sa.Column("vo", sa.String(253), nullable=True),
        sa.Column("ca_dir", sa.Text(), nullable=False),
        sa.Column("projects", _DOCUMENT, nullable=False),
        sa.Column("interval_s", sa.Integer(), nullable=False),
        sa.Column("grace_s", sa.Integer(), nullable=False),
        sa.Column("only", sa.String(200), nullable=True),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("created_at", _WHEN, nullable=False),
        sa.Column("next_at", _WHEN, nullable=True),
        sa.Column("lease_owner", sa.String(200), nullable=True),
        sa.Column("lease_until", _WHEN, nullable=True),
        sa.Column("list_identifier", sa.String(200), nullable=True),
        sa.Column("list_version", sa.String(200), nullable=True),
        sa.Column("list_digest", sa.String(128), nullable=True),
        sa.Column("list_message", sa.LargeBinary(), nullable=True),
        sa.Column("etag", sa.String(400), nullable=True),
        sa.Column("last_modified", sa.String(100), nullable=True),
        sa.Column("accepted_at", _WHEN, nullable=True),
    )
    op.create_table(
        "sync_images",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "subscription_id",
            sa.Integer(),
            sa.ForeignKey("subscriptions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("key", sa.String(32), nullable=False, unique=True),
        sa.Column("identifier", sa.String(200), nullable=False),
        sa.Column("fields_hash", sa.String(64), nullable=False),
        sa.Column("appliance", sa.String(400), nullable=False),
        sa.Column("vo", sa.String(253), nullable=True),
        sa.Column("version", sa.String(200), nullable=False),
        sa.Column("list_version", sa.String(200), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("sha512", sa.String(128), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("native_id", sa.String(200), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("updated_at", _WHEN, nullable=False),
        sa.Column("synced_at", _WHEN, nullable=True),
        sa.Column("hidden_at", _WHEN, nullable=True),
    )
    op.create_index("ix_sync_images_subscription", "sync_images", ["subscription_id", "state"])
    op.create_index("ix_sync_images_appliance", "sync_images", ["vo", "appliance", "state"])
    op.create_table(
        "sync_runs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "subscription_id",
            sa.Integer(),
            sa.ForeignKey("subscriptions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("started_at", _WHEN, nullable=False),
        sa.Column("finished_at", _WHEN, nullable=True),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("trigger", sa.String(20), nullable=False),
        sa.Column("worker", sa.String(200), nullable=False),
        sa.Column("list_identifier", sa.String(200), nullable=True),
        sa.Column("list_version", sa.String(200), nullable=True),
        sa.Column("problems", _DOCUMENT, nullable=False),
        sa.Column("steps", _DOCUMENT, nullable=False),
    )
    op.create_index("ix_sync_runs_subscription", "sync_runs", ["subscription_id", "id"])


def downgrade() -> None:
    op.drop_table("sync_runs")
    op.drop_table("sync_images")
    op.drop_table("subscriptions")
