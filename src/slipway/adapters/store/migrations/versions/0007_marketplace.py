"""The marketplace: appliances with immutable versions, their image files
and the OCI artifacts those were pushed as; VOs with members and managers, a
draft list each, and every published list version with the signed bytes as
served.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_DOCUMENT = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "appliances",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(400), nullable=False, unique=True),
        sa.Column("identifier", sa.String(36), nullable=False, unique=True),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("group_name", sa.String(200), nullable=True),
        sa.Column("group_rights", sa.String(40), nullable=False),
        sa.Column("public_rights", sa.String(40), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("os", sa.String(100), nullable=False),
        sa.Column("arch", sa.String(40), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    for column in ("owner", "os", "arch"):
        op.create_index(f"ix_appliances_{column}", "appliances", [column])
    op.create_table(
        "appliance_versions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "appliance_id",
            sa.Integer(),
            sa.ForeignKey("appliances.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("author", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("expires", sa.DateTime(timezone=True), nullable=True),
        sa.Column("checks", _DOCUMENT, nullable=False),
        sa.UniqueConstraint("appliance_id", "version"),
    )
    op.create_table(
        "appliance_files",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "version_id",
            sa.Integer(),
            sa.ForeignKey("appliance_versions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("format", sa.String(20), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha512", sa.String(128), nullable=False),
        sa.Column("verified", sa.Boolean(), nullable=False),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("stored", sa.String(63), nullable=True),
        sa.Column("details", _DOCUMENT, nullable=False),
        sa.UniqueConstraint("version_id", "position"),
    )
    op.create_index("ix_appliance_files_sha512", "appliance_files", ["sha512"])
    op.create_table(
        "appliance_artifacts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "file_id",
            sa.Integer(),
            sa.ForeignKey("appliance_files.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("reference", sa.Text(), nullable=False),
        sa.Column("pushed_by", sa.String(200), nullable=False),
        sa.Column("pushed_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("file_id", "reference"),
    )
    op.create_table(
        "vos",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("list_identifier", sa.String(36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("obsoleted_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "vo_members",
        sa.Column(
            "vo_id", sa.Integer(), sa.ForeignKey("vos.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column(
            "user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("manager", sa.Boolean(), nullable=False),
    )
    op.create_table(
        "vo_entries",
        sa.Column(
            "vo_id", sa.Integer(), sa.ForeignKey("vos.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column(
            "appliance_id",
            sa.Integer(),
            sa.ForeignKey("appliances.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "version_id",
            sa.Integer(),
            sa.ForeignKey("appliance_versions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("added_by", sa.String(200), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "vo_lists",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "vo_id", sa.Integer(), sa.ForeignKey("vos.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("author", sa.String(200), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires", sa.DateTime(timezone=True), nullable=False),
        sa.Column("entries", _DOCUMENT, nullable=False),
        sa.Column("signed", sa.LargeBinary(), nullable=False),
        sa.Column("document", sa.LargeBinary(), nullable=False),
        sa.Column("etag", sa.String(64), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.UniqueConstraint("vo_id", "number"),
    )


def downgrade() -> None:
    for table in ("vo_lists", "vo_entries", "vo_members", "vos", "appliance_artifacts"):
        op.drop_table(table)
    op.drop_table("appliance_files")
    op.drop_table("appliance_versions")
    op.drop_table("appliances")
