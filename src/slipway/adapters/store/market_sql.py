"""The marketplace in SQL: appliances, versions and files; VOs, members,
draft entries and published lists (tables in ``tables.py``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, false, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from slipway.adapters.store._times import utc, utc_or_none
from slipway.adapters.store.tables import (
    ApplianceArtifactRow,
    ApplianceFileRow,
    ApplianceRow,
    ApplianceVersionRow,
    UserRow,
    VoEntryRow,
    VoListRow,
    VoMemberRow,
    VoRow,
)
from slipway.domain.marketplace import (
    Appliance,
    ApplianceQuery,
    ApplianceVersion,
    Endorsement,
    ImageFile,
    ListPublication,
    Vo,
    VoRole,
)
from slipway.domain.modules import Rights, parse_rights
from slipway.errors import Conflict, NotFound

__all__ = ["SqlMarketStore"]

_DETAILS = (
    "os_name",
    "os_version",
    "arch",
    "hypervisor",
    "core_minimum",
    "core_recommended",
    "ram_minimum",
    "ram_recommended",
)


def _rights_text(rights: frozenset[Any]) -> str:
    return ",".join(sorted(r.value for r in rights))


def _appliance(row: ApplianceRow) -> Appliance:
    return Appliance(
        name=row.name,
        identifier=row.identifier,
        title=row.title,
        description=row.description,
        os=row.os,
        arch=row.arch,
        rights=Rights(
            row.owner,
            row.group_name,
            parse_rights(row.group_rights),
            parse_rights(row.public_rights),
        ),
        created_at=utc(row.created_at),
    )


def _file(row: ApplianceFileRow, artifacts: tuple[str, ...] = ()) -> ImageFile:
    details = {k: v for k, v in row.details.items() if k in _DETAILS}
    return ImageFile(
        artifacts=artifacts,
        format=row.format,
        size=row.size,
        sha512=row.sha512,
        verified=row.verified,
        url=row.url,
        stored=row.stored,
        **details,
    )


class SqlMarketStore:
    """The marketplace's rows in one session; the unit of work commits."""

    def __init__(self, session: Session) -> None:
        self.session = session

    # -- appliances -------------------------------------------------------------

    def _appliance_row(self, name: str) -> ApplianceRow | None:
        return self.session.scalars(
            select(ApplianceRow).where(ApplianceRow.name == name)
        ).one_or_none()

    def appliance(self, name: str) -> Appliance | None:
        row = self._appliance_row(name)
        return None if row is None else _appliance(row)

    def add_appliance(self, appliance: Appliance) -> None:
        rights = appliance.rights
        self.session.add(
            ApplianceRow(
                name=appliance.name,
                identifier=appliance.identifier,
                owner=rights.owner,
                group_name=rights.group,
                group_rights=_rights_text(rights.group_rights),
                public_rights=_rights_text(rights.public_rights),
                title=appliance.title,
                description=appliance.description,
                os=appliance.os,
                arch=appliance.arch,
                created_at=appliance.created_at,
            )
        )
        self._flush(f"an appliance named {appliance.name} already exists")

    def set_appliance_rights(self, name: str, rights: Rights) -> None:
        row = self._require_appliance(name)
        row.group_name = rights.group
        row.group_rights = _rights_text(rights.group_rights)
        row.public_rights = _rights_text(rights.public_rights)
        self.session.flush()

    def _require_appliance(self, name: str) -> ApplianceRow:
        row = self._appliance_row(name)
        if row is None:
            raise NotFound(f"no appliance {name}")
        return row

    def add_version(self, version: ApplianceVersion) -> None:
        appliance = self._require_appliance(version.appliance)
        row = ApplianceVersionRow(
            appliance_id=appliance.id,
            version=version.version,
            author=version.author,
            created_at=version.created_at,
            notes=version.notes,
            expires=version.expires,
            checks=dict(version.checks),
        )
        self.session.add(row)
        self._flush(f"{version.label} already exists: versions never change")
        for position, image in enumerate(version.files):
            self.session.add(
                ApplianceFileRow(
                    version_id=row.id,
                    position=position,
                    format=image.format,
                    size=image.size,
                    sha512=image.sha512,
                    verified=image.verified,
                    url=image.url,
                    stored=image.stored,
                    details={k: getattr(image, k) for k in _DETAILS},
                )
            )
        self.session.flush()

    def versions(self, name: str) -> Sequence[ApplianceVersion]:
        """Oldest first."""
        rows = self.session.execute(
            select(ApplianceVersionRow)
            .join(ApplianceRow, ApplianceRow.id == ApplianceVersionRow.appliance_id)
            .where(ApplianceRow.name == name)
            .order_by(ApplianceVersionRow.id)
        ).scalars()
        return [self._version(name, row) for row in rows]

    def version(self, name: str, label: str) -> ApplianceVersion | None:
        row = self.session.execute(
            select(ApplianceVersionRow)
            .join(ApplianceRow, ApplianceRow.id == ApplianceVersionRow.appliance_id)
            .where(ApplianceRow.name == name, ApplianceVersionRow.version == label)
        ).scalar_one_or_none()
        return None if row is None else self._version(name, row)

    def _version(self, name: str, row: ApplianceVersionRow) -> ApplianceVersion:
        files = list(
            self.session.scalars(
                select(ApplianceFileRow)
                .where(ApplianceFileRow.version_id == row.id)
                .order_by(ApplianceFileRow.position)
            )
        )
        artifacts: dict[int, list[str]] = {}
        for file_id, reference in self.session.execute(
            select(ApplianceArtifactRow.file_id, ApplianceArtifactRow.reference)
            .where(ApplianceArtifactRow.file_id.in_([f.id for f in files]))
            .order_by(ApplianceArtifactRow.id)
        ):
            artifacts.setdefault(file_id, []).append(reference)
        return ApplianceVersion(
            appliance=name,
            version=row.version,
            files=tuple(_file(f, tuple(artifacts.get(f.id, ()))) for f in files),
            author=row.author,
            created_at=utc(row.created_at),
            notes=row.notes,
            expires=utc_or_none(row.expires),
            checks=tuple((str(k), str(v)) for k, v in row.checks.items()),
        )

    def add_artifact(
        self, name: str, version: str, sha512: str, reference: str, by: str, at: datetime
    ) -> None:
        """Note that the version's file ``sha512`` was pushed as ``reference``."""
        file_id = self.session.scalar(
            select(ApplianceFileRow.id)
            .join(ApplianceVersionRow, ApplianceVersionRow.id == ApplianceFileRow.version_id)
            .join(ApplianceRow, ApplianceRow.id == ApplianceVersionRow.appliance_id)
            .where(
                ApplianceRow.name == name,
                ApplianceVersionRow.version == version,
                ApplianceFileRow.sha512 == sha512,
            )
        )
        if file_id is None:
            raise NotFound(f"{name}@{version} has no file with that SHA-512")
        known = self.session.scalar(
            select(ApplianceArtifactRow.id).where(
                ApplianceArtifactRow.file_id == file_id,
                ApplianceArtifactRow.reference == reference,
            )
        )
        if known is None:
            self.session.add(
                ApplianceArtifactRow(
                    file_id=file_id, reference=reference, pushed_by=by, pushed_at=at
                )
            )
            self.session.flush()

    def search(self, query: ApplianceQuery) -> tuple[Sequence[Appliance], int]:
        conditions = self._conditions(query)
        total = self.session.scalar(select(func.count(ApplianceRow.id)).where(*conditions)) or 0
        rows = self.session.scalars(
            select(ApplianceRow)
            .where(*conditions)
            .order_by(ApplianceRow.name)
            .offset(query.offset)
            .limit(query.limit)
        )
        return [_appliance(r) for r in rows], total

    def _conditions(self, query: ApplianceQuery) -> list[ColumnElement[bool]]:
        found: list[ColumnElement[bool]] = []
        viewer = query.viewer
        if viewer is None:
            found.append(ApplianceRow.public_rights != "")
        elif not viewer.admin:
            found.append(
                or_(
                    ApplianceRow.owner == viewer.user,
                    ApplianceRow.public_rights != "",
                    and_(
                        ApplianceRow.group_name.in_(sorted(viewer.groups)),
                        ApplianceRow.group_rights != "",
                    )
                    if viewer.groups
                    else false(),
                )
            )
        if query.text:
            pattern = "%" + _escape_like(query.text.lower()) + "%"
            found.append(
                or_(
                    func.lower(ApplianceRow.name).like(pattern, escape="\\"),
                    func.lower(ApplianceRow.title).like(pattern, escape="\\"),
                    func.lower(ApplianceRow.description).like(pattern, escape="\\"),
                )
            )
        if query.os:
            found.append(func.lower(ApplianceRow.os) == query.os.lower())
        if query.arch:
            found.append(ApplianceRow.arch == query.arch)
        if query.vo is not None:
            endorsed = self._endorsed_in_latest(query.vo)
            found.append(ApplianceRow.name.in_(sorted(endorsed)))
        return found

    def _endorsed_in_latest(self, vo: str) -> set[str]:
        """What the VO's newest list holds; nothing once the list is obsolete."""
        row = self._vo_row(vo)
        latest = self.publication(vo, None)
        if row is None or row.obsoleted_at is not None or latest is None:
            return set()
        return {appliance for appliance, _ in latest.entries}

    def files_by_sha512(self, sha512: str) -> Sequence[tuple[Appliance, ImageFile]]:
        """Every appliance with a file of that content, and the file."""
        rows = self.session.execute(
            select(ApplianceRow, ApplianceFileRow)
            .join(ApplianceVersionRow, ApplianceVersionRow.appliance_id == ApplianceRow.id)
            .join(ApplianceFileRow, ApplianceFileRow.version_id == ApplianceVersionRow.id)
            .where(ApplianceFileRow.sha512 == sha512)
            .order_by(ApplianceFileRow.id)
        )
        return [(_appliance(a), _file(f)) for a, f in rows]

    # -- VOs ----------------------------------------------------------------------

    def _vo_row(self, name: str) -> VoRow | None:
        return self.session.scalars(select(VoRow).where(VoRow.name == name)).one_or_none()

    def _require_vo(self, name: str) -> VoRow:
        row = self._vo_row(name)
        if row is None:
            raise NotFound(f"no VO {name}")
        return row

    def vo(self, name: str) -> Vo | None:
        row = self._vo_row(name)
        return None if row is None else _vo(row)

    def vos(self) -> Sequence[Vo]:
        return [_vo(r) for r in self.session.scalars(select(VoRow).order_by(VoRow.name))]

    def add_vo(self, vo: Vo) -> None:
        self.session.add(
            VoRow(
                name=vo.name,
                title=vo.title,
                description=vo.description,
                list_identifier=vo.list_identifier,
                created_at=vo.created_at,
                obsoleted_at=vo.obsoleted_at,
            )
        )
        self._flush(f"a VO named {vo.name} already exists")

    def set_obsoleted(self, name: str, when: datetime | None) -> None:
        self._require_vo(name).obsoleted_at = when
        self.session.flush()

    def set_member(self, vo: str, user: str, role: VoRole | None) -> None:
        """Make ``user`` a member or manager of ``vo``, or (None) neither."""
        vo_row = self._require_vo(vo)
        user_id = self.session.scalar(select(UserRow.id).where(UserRow.name == user))
        if user_id is None:
            raise NotFound(f"no user {user}")
        member = self.session.get(VoMemberRow, (vo_row.id, user_id))
        if role is None:
            if member is not None:
                self.session.delete(member)
        elif member is None:
            self.session.add(
                VoMemberRow(vo_id=vo_row.id, user_id=user_id, manager=role is VoRole.MANAGER)
            )
        else:
            member.manager = role is VoRole.MANAGER
        self.session.flush()

    def members(self, vo: str) -> Sequence[tuple[str, VoRole]]:
        rows = self.session.execute(
            select(UserRow.name, VoMemberRow.manager)
            .join(VoMemberRow, VoMemberRow.user_id == UserRow.id)
            .join(VoRow, VoRow.id == VoMemberRow.vo_id)
            .where(VoRow.name == vo)
            .order_by(UserRow.name)
        )
        return [(name, VoRole.MANAGER if manager else VoRole.MEMBER) for name, manager in rows]

    def role_of(self, vo: str, user: str) -> VoRole | None:
        manager = self.session.scalar(
            select(VoMemberRow.manager)
            .join(VoRow, VoRow.id == VoMemberRow.vo_id)
            .join(UserRow, UserRow.id == VoMemberRow.user_id)
            .where(VoRow.name == vo, UserRow.name == user)
        )
        if manager is None:
            return None
        return VoRole.MANAGER if manager else VoRole.MEMBER

    # -- the draft list -------------------------------------------------------------

    def draft(self, vo: str) -> Sequence[Endorsement]:
        rows = self.session.execute(
            select(ApplianceRow.name, ApplianceVersionRow.version, VoEntryRow)
            .join(VoRow, VoRow.id == VoEntryRow.vo_id)
            .join(ApplianceRow, ApplianceRow.id == VoEntryRow.appliance_id)
            .join(ApplianceVersionRow, ApplianceVersionRow.id == VoEntryRow.version_id)
            .where(VoRow.name == vo)
            .order_by(ApplianceRow.name)
        )
        return [
            Endorsement(name, version, entry.added_by, utc(entry.added_at))
            for name, version, entry in rows
        ]

    def endorse(self, vo: str, endorsement: Endorsement) -> None:
        """Put the version in the draft, in place of any other version of
        the same appliance."""
        vo_row = self._require_vo(vo)
        version_row = self.session.execute(
            select(ApplianceVersionRow)
            .join(ApplianceRow, ApplianceRow.id == ApplianceVersionRow.appliance_id)
            .where(
                ApplianceRow.name == endorsement.appliance,
                ApplianceVersionRow.version == endorsement.version,
            )
        ).scalar_one_or_none()
        if version_row is None:
            raise NotFound(f"no appliance version {endorsement.appliance}@{endorsement.version}")
        entry = self.session.get(VoEntryRow, (vo_row.id, version_row.appliance_id))
        if entry is None:
            entry = VoEntryRow(vo_id=vo_row.id, appliance_id=version_row.appliance_id)
            self.session.add(entry)
        entry.version_id = version_row.id
        entry.added_by = endorsement.added_by
        entry.added_at = endorsement.added_at
        self.session.flush()

    def withdraw(self, vo: str, appliance: str) -> bool:
        """Take the appliance out of the draft; False when it was not in it."""
        vo_row = self._require_vo(vo)
        appliance_id = self.session.scalar(
            select(ApplianceRow.id).where(ApplianceRow.name == appliance)
        )
        if appliance_id is None:
            return False
        result = self.session.execute(
            delete(VoEntryRow).where(
                VoEntryRow.vo_id == vo_row.id, VoEntryRow.appliance_id == appliance_id
            )
        )
        return bool(getattr(result, "rowcount", 0))

    # -- published lists ------------------------------------------------------------

    def add_publication(self, publication: ListPublication) -> None:
        """Keep a published list version; its number must not exist yet (a
        publish that raced another one fails here, writing nothing)."""
        vo_row = self._require_vo(publication.vo)
        self.session.add(
            VoListRow(
                vo_id=vo_row.id,
                number=publication.number,
                author=publication.author,
                published_at=publication.published_at,
                expires=publication.expires,
                entries=[list(e) for e in publication.entries],
                signed=publication.signed,
                document=publication.document,
                etag=publication.etag,
                comment=publication.comment,
            )
        )
        self._flush(
            f"version {publication.number} of the {publication.vo} list was published meanwhile"
        )

    def publication(self, vo: str, number: int | None) -> ListPublication | None:
        """The list version ``number`` of ``vo``, or its newest (None)."""
        statement = (
            select(VoListRow)
            .join(VoRow, VoRow.id == VoListRow.vo_id)
            .where(VoRow.name == vo)
            .order_by(VoListRow.number.desc())
            .limit(1)
        )
        if number is not None:
            statement = statement.where(VoListRow.number == number)
        row = self.session.scalars(statement).one_or_none()
        return None if row is None else _publication(vo, row)

    def publications(self, vo: str) -> Sequence[ListPublication]:
        """Every published version, newest first."""
        rows = self.session.scalars(
            select(VoListRow)
            .join(VoRow, VoRow.id == VoListRow.vo_id)
            .where(VoRow.name == vo)
            .order_by(VoListRow.number.desc())
        )
        return [_publication(vo, r) for r in rows]

    def endorsements_of(self, appliance: str) -> Sequence[tuple[str, str, int]]:
        """(VO, version, list number) for each VO whose newest published,
        not obsoleted list holds ``appliance``."""
        newest = (
            select(VoListRow.vo_id, func.max(VoListRow.number).label("number"))
            .group_by(VoListRow.vo_id)
            .subquery()
        )
        rows = self.session.execute(
            select(VoRow.name, VoListRow)
            .join(VoListRow, VoListRow.vo_id == VoRow.id)
            .join(
                newest,
                and_(newest.c.vo_id == VoListRow.vo_id, newest.c.number == VoListRow.number),
            )
            .where(VoRow.obsoleted_at.is_(None))
            .order_by(VoRow.name)
        )
        found = []
        for vo, row in rows:
            for name, version in row.entries:
                if name == appliance:
                    found.append((vo, str(version), row.number))
        return found

    def _flush(self, conflict: str) -> None:
        try:
            self.session.flush()
        except IntegrityError:
            self.session.rollback()
            raise Conflict(conflict) from None


def _vo(row: VoRow) -> Vo:
    return Vo(
        name=row.name,
        title=row.title,
        description=row.description,
        list_identifier=row.list_identifier,
        created_at=utc(row.created_at),
        obsoleted_at=utc_or_none(row.obsoleted_at),
    )


def _publication(vo: str, row: VoListRow) -> ListPublication:
    return ListPublication(
        vo=vo,
        number=row.number,
        author=row.author,
        published_at=utc(row.published_at),
        expires=utc(row.expires),
        entries=tuple((str(a), str(v)) for a, v in row.entries),
        signed=bytes(row.signed),
        document=bytes(row.document),
        etag=row.etag,
        comment=row.comment,
    )


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
