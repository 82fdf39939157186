"""The catalog store's tables (SQLAlchemy 2 ORM). The schema itself is made
by the Alembic migrations next to this module; a test checks they agree."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

__all__ = [
    "ApplianceArtifactRow",
    "ApplianceFileRow",
    "ApplianceRow",
    "ApplianceVersionRow",
    "Base",
    "GroupRow",
    "LoginAttemptRow",
    "MembershipRow",
    "ModuleRow",
    "RunEventRow",
    "RunRow",
    "SessionRow",
    "SubscriptionRow",
    "SyncImageRow",
    "SyncRunRow",
    "TokenRow",
    "UserRow",
    "VersionRow",
    "VoEntryRow",
    "VoListRow",
    "VoMemberRow",
    "VoRow",
]

Document = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    pass


class UserRow(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    admin: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    password_hash: Mapped[str | None] = mapped_column(String(200))


class GroupRow(Base):
    __tablename__ = "groups"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)


class MembershipRow(Base):
    __tablename__ = "memberships"

    group_id: Mapped[int] = mapped_column(
        ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    # An editor may also create modules in the group's namespace (GROUP/…).
    editor: Mapped[bool] = mapped_column(default=False, server_default=false())


class ModuleRow(Base):
    __tablename__ = "modules"
    # Covers the rights check of a list, so counting matches reads no rows.
    __table_args__ = (
        Index("ix_modules_access", "kind", "owner", "public_rights", "group_name", "group_rights"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(400), unique=True)
    kind: Mapped[str] = mapped_column(String(40), index=True)
    owner: Mapped[str] = mapped_column(String(200), index=True)
    group_name: Mapped[str | None] = mapped_column(String(200))
    group_rights: Mapped[str] = mapped_column(String(40), default="")
    public_rights: Mapped[str] = mapped_column(String(40), default="")
    latest_version: Mapped[int] = mapped_column(Integer)
    # Search facets of the latest version after inheritance; clouds is
    # ",a,b," (NULL: not computed yet) so a cloud filter is one LIKE.
    description: Mapped[str] = mapped_column(Text, default="")
    os: Mapped[str] = mapped_column(String(100), default="", index=True)
    clouds: Mapped[str | None] = mapped_column(Text)
    parent: Mapped[str | None] = mapped_column(String(400), index=True)
    versions: Mapped[list[VersionRow]] = relationship(
        back_populates="module", order_by="VersionRow.version"
    )


class VersionRow(Base):
    __tablename__ = "module_versions"
    __table_args__ = (UniqueConstraint("module_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    module_id: Mapped[int] = mapped_column(ForeignKey("modules.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    document: Mapped[dict[str, Any]] = mapped_column(Document)
    content_hash: Mapped[str] = mapped_column(String(64))
    author: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    source: Mapped[str] = mapped_column(Text, default="")
    copied_from: Mapped[str | None] = mapped_column(String(420))
    comment: Mapped[str] = mapped_column(Text, default="")
    module: Mapped[ModuleRow] = relationship(back_populates="versions")


class RunRow(Base):
    __tablename__ = "runs"
    # One per list filter, each ending in the list's order (newest first, then
    # id), so a page is read off an index, not sorted from every match.
    __table_args__ = (
        Index("ix_runs_newest", "created_at", "id"),
        Index("ix_runs_owner_newest", "owner", "created_at", "id"),
        Index("ix_runs_owner_state_newest", "owner", "state", "created_at", "id"),
        Index("ix_runs_state_newest", "state", "created_at", "id"),
        Index("ix_runs_cloud_newest", "cloud", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    owner: Mapped[str] = mapped_column(String(200))
    module: Mapped[str] = mapped_column(String(420))
    cloud: Mapped[str] = mapped_column(String(63))
    state: Mapped[str] = mapped_column(String(20))
    step: Mapped[str] = mapped_column(String(40), default="")
    message: Mapped[str] = mapped_column(Text, default="")
    keep_running: Mapped[str] = mapped_column(String(20))
    machine_id: Mapped[str | None] = mapped_column(String(200))
    target: Mapped[dict[str, Any]] = mapped_column(Document)
    parameters: Mapped[dict[str, Any]] = mapped_column(Document)
    timestamps: Mapped[dict[str, Any]] = mapped_column(Document)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    deadline: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    version: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    next_step_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)


class RunEventRow(Base):
    __tablename__ = "run_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    state: Mapped[str] = mapped_column(String(20))
    message: Mapped[str] = mapped_column(Text, default="")


class TokenRow(Base):
    """An API token: only the SHA-256 of the token is kept."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SessionRow(Base):
    """A dashboard login: the SHA-256 of the cookie and the CSRF token."""

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    csrf: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class LoginAttemptRow(Base):
    """Log-in tries counted for one account or client address (its
    :func:`~slipway.domain.lockouts.account_subject` or ``address_subject``)."""

    __tablename__ = "login_attempts"

    subject: Mapped[str] = mapped_column(String(64), primary_key=True)
    count: Mapped[int] = mapped_column(Integer)
    window_start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


# -- the marketplace ----------------------------------------------------------


class ApplianceRow(Base):
    """An appliance, with the rights a module has."""

    __tablename__ = "appliances"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(400), unique=True)
    identifier: Mapped[str] = mapped_column(String(36), unique=True)
    owner: Mapped[str] = mapped_column(String(200), index=True)
    group_name: Mapped[str | None] = mapped_column(String(200))
    group_rights: Mapped[str] = mapped_column(String(40), default="")
    public_rights: Mapped[str] = mapped_column(String(40), default="")
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    os: Mapped[str] = mapped_column(String(100), default="", index=True)
    arch: Mapped[str] = mapped_column(String(40), default="", index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ApplianceVersionRow(Base):
    """One immutable version of an appliance; ``checks`` maps check → outcome."""

    __tablename__ = "appliance_versions"
    __table_args__ = (UniqueConstraint("appliance_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    appliance_id: Mapped[int] = mapped_column(ForeignKey("appliances.id", ondelete="CASCADE"))
    version: Mapped[str] = mapped_column(String(64))
    author: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    notes: Mapped[str] = mapped_column(Text, default="")
    expires: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    checks: Mapped[dict[str, Any]] = mapped_column(Document)


class ApplianceFileRow(Base):
    """An image file of an appliance version, found by its SHA-512 when served."""

    __tablename__ = "appliance_files"
    __table_args__ = (UniqueConstraint("version_id", "position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("appliance_versions.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    format: Mapped[str] = mapped_column(String(20))
    size: Mapped[int] = mapped_column(BigInteger)
    sha512: Mapped[str] = mapped_column(String(128), index=True)
    verified: Mapped[bool] = mapped_column(Boolean)
    url: Mapped[str | None] = mapped_column(Text)
    stored: Mapped[str | None] = mapped_column(String(63))
    details: Mapped[dict[str, Any]] = mapped_column(Document)


class ApplianceArtifactRow(Base):
    """An OCI artifact a file was pushed as, pinned by its manifest digest."""

    __tablename__ = "appliance_artifacts"
    __table_args__ = (UniqueConstraint("file_id", "reference"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    file_id: Mapped[int] = mapped_column(ForeignKey("appliance_files.id", ondelete="CASCADE"))
    reference: Mapped[str] = mapped_column(Text)
    pushed_by: Mapped[str] = mapped_column(String(200))
    pushed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class VoRow(Base):
    __tablename__ = "vos"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    title: Mapped[str] = mapped_column(String(200), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    list_identifier: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    obsoleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class VoMemberRow(Base):
    __tablename__ = "vo_members"

    vo_id: Mapped[int] = mapped_column(ForeignKey("vos.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    manager: Mapped[bool] = mapped_column(Boolean, default=False)


class VoEntryRow(Base):
    """An appliance version in a VO's draft list: one per appliance."""

    __tablename__ = "vo_entries"

    vo_id: Mapped[int] = mapped_column(ForeignKey("vos.id", ondelete="CASCADE"), primary_key=True)
    appliance_id: Mapped[int] = mapped_column(
        ForeignKey("appliances.id", ondelete="CASCADE"), primary_key=True
    )
    version_id: Mapped[int] = mapped_column(ForeignKey("appliance_versions.id", ondelete="CASCADE"))
    added_by: Mapped[str] = mapped_column(String(200))
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class VoListRow(Base):
    """A published version of a VO's list: the signed bytes as served."""

    __tablename__ = "vo_lists"
    __table_args__ = (UniqueConstraint("vo_id", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    vo_id: Mapped[int] = mapped_column(ForeignKey("vos.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    author: Mapped[str] = mapped_column(String(200))
    published_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    entries: Mapped[list[Any]] = mapped_column(Document)
    signed: Mapped[bytes] = mapped_column(LargeBinary)
    document: Mapped[bytes] = mapped_column(LargeBinary)
    etag: Mapped[str] = mapped_column(String(64))
    comment: Mapped[str] = mapped_column(Text, default="")


class SubscriptionRow(Base):
    """A cloud kept equal to an image list, with what it last accepted and
    the lease of the sync running now (if any)."""

    __tablename__ = "subscriptions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    cloud: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(Text)
    endorser_dn: Mapped[str] = mapped_column(Text)
    endorser_ca: Mapped[str | None] = mapped_column(Text, nullable=True)
    vo: Mapped[str | None] = mapped_column(String(253), nullable=True)
    ca_dir: Mapped[str] = mapped_column(Text)
    projects: Mapped[dict[str, Any]] = mapped_column(Document)
    interval_s: Mapped[int] = mapped_column(Integer)
    grace_s: Mapped[int] = mapped_column(Integer)
    only: Mapped[str | None] = mapped_column(String(200), nullable=True)
    owner: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    next_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    lease_owner: Mapped[str | None] = mapped_column(String(200), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    list_identifier: Mapped[str | None] = mapped_column(String(200), nullable=True)
    list_version: Mapped[str | None] = mapped_column(String(200), nullable=True)
    list_digest: Mapped[str | None] = mapped_column(String(128), nullable=True)
    list_message: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    etag: Mapped[str | None] = mapped_column(String(400), nullable=True)
    last_modified: Mapped[str | None] = mapped_column(String(100), nullable=True)
    accepted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class SyncImageRow(Base):
    """One native image a subscription keeps (or kept) on its cloud."""

    __tablename__ = "sync_images"
    __table_args__ = (
        Index("ix_sync_images_subscription", "subscription_id", "state"),
        Index("ix_sync_images_appliance", "vo", "appliance", "state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("subscriptions.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(32), unique=True)
    identifier: Mapped[str] = mapped_column(String(200))
    fields_hash: Mapped[str] = mapped_column(String(64))
    appliance: Mapped[str] = mapped_column(String(400))
    vo: Mapped[str | None] = mapped_column(String(253), nullable=True)
    version: Mapped[str] = mapped_column(String(200))
    list_version: Mapped[str] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(Text)
    sha512: Mapped[str] = mapped_column(String(128))
    size: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(20))
    native_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    synced_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    hidden_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class SyncRunRow(Base):
    """One sync of a subscription: its outcome and every step it took."""

    __tablename__ = "sync_runs"
    __table_args__ = (Index("ix_sync_runs_subscription", "subscription_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("subscriptions.id", ondelete="CASCADE"))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    outcome: Mapped[str] = mapped_column(String(20))
    trigger: Mapped[str] = mapped_column(String(20))
    worker: Mapped[str] = mapped_column(String(200))
    list_identifier: Mapped[str | None] = mapped_column(String(200), nullable=True)
    list_version: Mapped[str | None] = mapped_column(String(200), nullable=True)
    problems: Mapped[list[Any]] = mapped_column(Document)
    steps: Mapped[list[Any]] = mapped_column(Document)
