"""Marketplace use cases: appliances and their versions, VOs and their
lists — each acting as one user, checking rights before it acts.

* Appliances have owner / group / public rights as modules do; a new one is
  created only in a namespace of the user's
  (:meth:`~slipway.domain.modules.Access.may_create`); one the user may not
  view answers as one that does not exist.
* Admins create VOs and name the first manager. Managers change the VO's
  members, draft and list; members see the draft; everyone reads what is
  published. A VO list is public, so it endorses only public appliances.
* Publishing signs the draft as a new, numbered list version in the same
  transaction that keeps it: a publish that fails (no endorser, an expired
  version, a race with another publish) writes nothing, and the previous
  version stays the one served.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from slipway.domain.endorsers import Endorser
from slipway.domain.imagelists import ImageList, ListedImage
from slipway.domain.marketplace import (
    MAX_DESCRIPTION_CHARS,
    MAX_FILES_PER_VERSION,
    MAX_TITLE_CHARS,
    Appliance,
    ApplianceQuery,
    ApplianceVersion,
    Endorsement,
    ImageFile,
    ListPublication,
    Vo,
    VoRole,
    appliance_name_problem,
    image_identifier,
    new_appliance_identifier,
    text_problem,
    version_label_problem,
    vo_name_problem,
)
from slipway.domain.modules import Access, Right, Rights
from slipway.errors import Conflict, Gone, InputError, NotFound, PermissionDenied
from slipway.services.identity import access_of, enrol, first_write_access
from slipway.services.ports import MarketStore, MarketUnitOfWork

__all__ = [
    "DEFAULT_LIST_DAYS",
    "OCI_KEY",
    "ApplianceFiles",
    "ApplianceView",
    "ArtifactPusher",
    "FileSource",
    "ListSigner",
    "MarketplaceService",
    "NewAppliance",
    "PreparedFile",
    "PushRequest",
    "PushResult",
    "VoView",
]

DEFAULT_LIST_DAYS = 30
OCI_KEY = "slipway:oci"
"""The image field of a published list naming the OCI artifact (pinned by its
manifest digest) the file was pushed as: the list's signature covers it."""
MAX_LIST_DAYS = 3660


class ListSigner(Protocol):
    """Signs a VO's list with the endorser key the operator configured for it."""

    def endorser(self, vo: str) -> Endorser:
        """Who signs ``vo``'s list; raises ``Conflict`` when nobody is configured."""
        ...

    def sign(self, vo: str, image_list: ImageList) -> tuple[bytes, bytes]:
        """The S/MIME bytes to serve and the JSON bytes they sign."""
        ...


@dataclass(frozen=True)
class FileSource:
    """Where a new version's file comes from: a local image store entry
    (``stored``) or a URL, with the checksum and size taken on trust when
    both are given (else Slipway downloads the file once to compute them)."""

    stored: str | None = None
    url: str | None = None
    format: str | None = None
    sha512: str | None = None
    size: int | None = None


@dataclass(frozen=True)
class PreparedFile:
    """A file ready to be registered, with what was checked of it."""

    file: ImageFile
    checks: tuple[tuple[str, str], ...] = ()


class ApplianceFiles(Protocol):
    """Image files: measured, checked and, when store-backed, kept where
    Slipway serves them from."""

    def prepare(self, source: FileSource) -> PreparedFile: ...

    def refuse_private(self, host: str) -> None:
        """Raise ``InputError`` when ``host`` is on the server's own network
        and the operator has not allowed that."""
        ...

    def path_of(self, image: ImageFile) -> Path | None:
        """The local copy of a store-backed file, None when there is none."""
        ...


@dataclass(frozen=True, repr=False)
class PushRequest:
    """Where to push a version's image (``oci://HOST/REPO[:TAG]``), as whom,
    and the image's login user for EGI's ``os_admin_user``. The password is
    never shown."""

    target: str
    username: str | None = None
    password: str | None = None
    admin_user: str | None = None
    sha512_prefix: str | None = None

    def __repr__(self) -> str:
        return f"PushRequest({self.target!r}, username={self.username!r})"


@dataclass(frozen=True)
class PushResult:
    """What the registry holds now: ``reference`` is pinned by digest."""

    reference: str
    manifest_digest: str
    layer_digest: str
    size: int
    uploaded: bool


class ArtifactPusher(Protocol):
    """Sends a file to an OCI registry."""

    def host_of(self, target: str) -> str:
        """The registry host ``target`` names; ``InputError`` when it is not a reference."""
        ...

    def push(
        self,
        path: Path,
        appliance: Appliance,
        version: ApplianceVersion,
        image: ImageFile,
        request: PushRequest,
        *,
        source: str,
        progress: Callable[[Any], None] | None = None,
    ) -> PushResult: ...


@dataclass(frozen=True)
class NewAppliance:
    """What a first registration says of the appliance itself."""

    title: str
    description: str = ""
    os: str = "Linux"
    arch: str = "x86_64"


@dataclass(frozen=True)
class ApplianceView:
    """An appliance as its page shows it: versions newest first, and which
    VO lists endorse which version (VO, version, list number)."""

    appliance: Appliance
    versions: tuple[ApplianceVersion, ...]
    endorsements: tuple[tuple[str, str, int], ...]
    file_urls: dict[str, str]  # sha512 → where subscribers fetch it


@dataclass(frozen=True)
class VoView:
    """A VO as one user sees it: members and draft only for its members."""

    vo: Vo
    role: VoRole | None
    members: tuple[tuple[str, VoRole], ...] | None
    draft: tuple[Endorsement, ...] | None
    publications: tuple[ListPublication, ...]


class MarketplaceService:
    """The marketplace as seen by ``user``."""

    def __init__(
        self,
        unit_of_work: Callable[[], MarketUnitOfWork],
        user: str,
        *,
        files: ApplianceFiles,
        signer: ListSigner,
        public_url: str,
        pusher: ArtifactPusher | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._uow = unit_of_work
        self.user = user
        self._files = files
        self._signer = signer
        self._pusher = pusher
        self.public_url = public_url.rstrip("/")
        self._now = clock

    # -- appliances -------------------------------------------------------------

    def register(
        self,
        name: str,
        version: str,
        sources: Sequence[FileSource],
        *,
        appliance: NewAppliance | None = None,
        notes: str = "",
        expires: datetime | None = None,
        details: dict[str, int | str] | None = None,
    ) -> ApplianceVersion:
        """Add version ``version`` of appliance ``name`` (created with
        ``appliance``'s title and so on when it does not exist yet)."""
        _check_name(name)
        for field, problem in (
            ("version", version_label_problem(version)),
            ("notes", text_problem("notes", notes, MAX_DESCRIPTION_CHARS, multi_line=True)),
        ):
            if problem:
                raise InputError(problem, field=field)
        if not sources:
            raise InputError("a version needs at least one image file", field="files")
        if len(sources) > MAX_FILES_PER_VERSION:
            raise InputError(f"a version has at most {MAX_FILES_PER_VERSION} files", field="files")
        if appliance is not None:
            _check_appliance_text(appliance)
        # Rights and a taken version first: a refused registration never makes
        # the server download a file or boot an image.
        with self._uow() as uow:
            self._may_add_version(uow, name, appliance)
            if uow.market.version(name, version) is not None:
                raise Conflict(f"{name}@{version} already exists: versions never change")
        prepared = [self._files.prepare(s) for s in sources]
        files = tuple(_with_details(p.file, details or {}) for p in prepared)
        slots = [f.slot for f in files]
        if len(set(slots)) != len(slots):
            raise InputError(
                "two files of one version have the same architecture, hypervisor and format",
                field="files",
            )
        checks = tuple(c for p in prepared for c in p.checks)
        now = self._now()
        new = ApplianceVersion(
            appliance=name,
            version=version,
            files=files,
            author=self.user,
            created_at=now,
            notes=notes,
            expires=expires,
            checks=checks,
        )
        with self._uow() as uow:
            access = self._may_add_version(uow, name, appliance)
            if uow.market.appliance(name) is None:
                assert appliance is not None
                enrol(uow.identity, self.user)
                uow.market.add_appliance(_new_appliance(name, appliance, access.user, now))
            uow.market.add_version(new)
            uow.commit()
        return new

    def _may_add_version(
        self, uow: MarketUnitOfWork, name: str, appliance: NewAppliance | None
    ) -> Access:
        existing = uow.market.appliance(name)
        if existing is None:
            access = first_write_access(uow.identity, self.user)
            if not access.may_create(name):
                raise PermissionDenied(
                    f"{self.user} may not create {name}: appliances are created in your "
                    f"namespace ({self.user}/…) or that of a group you edit",
                )
            if appliance is None:
                raise InputError(f"{name} is a new appliance: give it a title", field="title")
            return access
        access = access_of(uow.identity, self.user)
        if not existing.may(access, Right.VIEW):
            raise _no_appliance(name)
        if not existing.may(access, Right.EDIT):
            raise PermissionDenied(f"{self.user} may not edit {name}")
        return access

    def appliances(self, query: ApplianceQuery) -> tuple[Sequence[Appliance], int]:
        """A page of the appliances the user may view; ``query.viewer`` is set here."""
        with self._uow() as uow:
            viewer = self._viewer(uow)
            return uow.market.search(replace(query, viewer=viewer))

    def appliance(self, name: str) -> ApplianceView:
        with self._uow() as uow:
            found = self._viewable(uow, name)
            versions = tuple(reversed(uow.market.versions(name)))
            endorsements = tuple(uow.market.endorsements_of(name))
        urls = {f.sha512: self.file_url(f) for v in versions for f in v.files}
        return ApplianceView(found, versions, endorsements, urls)

    def version(self, name: str, label: str) -> ApplianceVersion:
        with self._uow() as uow:
            self._viewable(uow, name)
            found = uow.market.version(name, label)
        if found is None:
            raise NotFound(f"{name} has no version {label}")
        return found

    def share(
        self,
        name: str,
        *,
        group: str | None = None,
        group_rights: frozenset[Right] | None = None,
        public_rights: frozenset[Right] | None = None,
    ) -> Appliance:
        """Grant view / edit to a group or everyone (the owner or an admin)."""
        with self._uow() as uow:
            found = self._viewable(uow, name)
            access = access_of(uow.identity, self.user)
            if not (access.admin or access.user == found.rights.owner):
                raise PermissionDenied(f"only the owner of {name} or an admin may share it")
            if group is not None and not uow.identity.group_exists(group):
                raise NotFound(f"no group {group}", hint="slipway group add creates one")
            rights = found.rights
            if group is not None:
                rights = replace(rights, group=group)
            if group_rights is not None:
                rights = replace(rights, group_rights=group_rights)
            if public_rights is not None:
                rights = replace(rights, public_rights=public_rights)
            uow.market.set_appliance_rights(name, rights)
            uow.commit()
        return replace(found, rights=rights)

    def file_url(self, image: ImageFile) -> str:
        """Where a subscriber fetches ``image``: its URL, or Slipway's own
        for a store-backed file."""
        if image.url is not None:
            return image.url
        return f"{self.public_url}/files/sha512/{image.sha512}"

    def file_to_push(
        self, reference: str, sha512_prefix: str | None = None
    ) -> tuple[Appliance, ApplianceVersion, ImageFile, Path]:
        """The file of ``APPLIANCE@VERSION`` that Slipway keeps, to push as an
        OCI artifact (the user must be able to edit the appliance);
        ``sha512_prefix`` picks one of several files."""
        name, label = _versioned(reference)
        with self._uow() as uow:
            appliance = self._viewable(uow, name)
            if not appliance.may(access_of(uow.identity, self.user), Right.EDIT):
                raise PermissionDenied(f"{self.user} may not edit {name}")
            version = uow.market.version(name, label)
        if version is None:
            raise NotFound(f"{name} has no version {label}")
        kept = [
            f
            for f in version.files
            if f.stored is not None and f.sha512.startswith((sha512_prefix or "").lower())
        ]
        if len(kept) != 1:
            raise InputError(
                f"{version.label} has {len(kept)} matching files Slipway keeps; "
                "push one that came from the local image store, named by its SHA-512's start",
                field="--file",
            )
        path = self._files.path_of(kept[0])
        if path is None:
            raise NotFound(f"the file of {version.label} is no longer kept here")
        return appliance, version, kept[0], path

    def push(
        self,
        reference: str,
        request: PushRequest,
        progress: Callable[[Any], None] | None = None,
    ) -> PushResult:
        """Push ``APPLIANCE@VERSION``'s image to a registry and note the
        artifact with the file (``record_artifact``). The registry must not be
        on the server's own network unless the operator allows it."""
        if self._pusher is None:
            raise NotFound("this server pushes no OCI artifacts")
        appliance, version, image, path = self.file_to_push(reference, request.sha512_prefix)
        self._files.refuse_private(self._pusher.host_of(request.target))
        pushed = self._pusher.push(
            path,
            appliance,
            version,
            image,
            request,
            source=f"{self.public_url}/appliances/{appliance.name}@{version.version}",
            progress=progress,
        )
        self.record_artifact(reference, image.sha512, pushed.reference)
        return pushed

    def record_artifact(self, reference: str, sha512: str, artifact: str) -> None:
        """Note that a file of ``APPLIANCE@VERSION`` now also lives at the OCI
        ``artifact`` (``oci://…@sha256:…``): lists published from now on name it."""
        name, label = _versioned(reference)
        if "@sha256:" not in artifact:
            raise InputError("an artifact is recorded pinned by its digest", field="artifact")
        with self._uow() as uow:
            appliance = self._viewable(uow, name)
            if not appliance.may(access_of(uow.identity, self.user), Right.EDIT):
                raise PermissionDenied(f"{self.user} may not edit {name}")
            uow.market.add_artifact(name, label, sha512, artifact, self.user, self._now())
            uow.commit()

    def served_file(self, sha512: str) -> tuple[ImageFile, Path]:
        """A store-backed file the user may download, and where it is."""
        with self._uow() as uow:
            access = self._viewer(uow)
            found = [
                image
                for appliance, image in uow.market.files_by_sha512(sha512.lower())
                if image.stored is not None and _may_view(access, appliance)
            ]
        for image in found:
            path = self._files.path_of(image)
            if path is not None:
                return image, path
        raise NotFound(f"no image file with SHA-512 {sha512[:16]}…")

    # -- VOs ------------------------------------------------------------------------

    def create_vo(self, name: str, manager: str, *, title: str = "", description: str = "") -> Vo:
        """A new VO with ``manager`` as its first manager (admins only)."""
        problem = (
            vo_name_problem(name)
            or text_problem("title", title, MAX_TITLE_CHARS)
            or text_problem("description", description, MAX_DESCRIPTION_CHARS, multi_line=True)
        )
        if problem:
            raise InputError(problem, field="name" if "VO name" in problem else None)
        now = self._now()
        vo = Vo(
            name=name,
            title=title or name,
            description=description,
            list_identifier=_list_identifier(name, now),
            created_at=now,
        )
        with self._uow() as uow:
            if not first_write_access(uow.identity, self.user).admin:
                raise PermissionDenied("only an admin may create a VO")
            enrol(uow.identity, self.user)
            if not uow.identity.user_exists(manager):
                raise NotFound(f"no user {manager}", hint="slipway user add creates one")
            uow.market.add_vo(vo)
            uow.market.set_member(name, manager, VoRole.MANAGER)
            uow.commit()
        return vo

    def vos(self) -> Sequence[Vo]:
        with self._uow() as uow:
            return uow.market.vos()

    def vo(self, name: str) -> VoView:
        with self._uow() as uow:
            vo = _require_vo(uow.market, name)
            access = access_of(uow.identity, self.user)
            role = uow.market.role_of(name, self.user)
            insider = role is not None or access.admin
            return VoView(
                vo=vo,
                role=role,
                members=tuple(uow.market.members(name)) if insider else None,
                draft=tuple(uow.market.draft(name)) if insider else None,
                publications=tuple(uow.market.publications(name)),
            )

    def set_member(self, vo: str, user: str, role: VoRole | None) -> None:
        """Add, promote, demote or (None) remove a member (managers, admins).
        The last manager is never removed or demoted."""
        with self._uow() as uow:
            self._manager(uow, vo)
            if not uow.identity.user_exists(user):
                raise NotFound(f"no user {user}", hint="slipway user add creates one")
            managers = [u for u, r in uow.market.members(vo) if r is VoRole.MANAGER]
            if managers == [user] and role is not VoRole.MANAGER:
                raise Conflict(f"{user} is the last manager of {vo}: name another one first")
            uow.market.set_member(vo, user, role)
            uow.commit()

    def endorse(self, vo: str, reference: str) -> Endorsement:
        """Put ``APPLIANCE@VERSION`` in the VO's draft, in place of any other
        version of that appliance."""
        name, label = _versioned(reference)
        with self._uow() as uow:
            self._manager(uow, vo)
            appliance = self._viewable(uow, name)
            found = uow.market.version(name, label)
            if found is None:
                raise NotFound(f"{name} has no version {label}")
            if not appliance.is_public:
                raise Conflict(
                    f"{name} is not public, but a VO list is read by everyone",
                    hint=f"slipway appliance share {name} --public view",
                )
            if found.is_expired(self._now()):
                raise Conflict(f"{found.label} expired at {_when(found.expires)}")
            endorsement = Endorsement(name, label, self.user, self._now())
            uow.market.endorse(vo, endorsement)
            uow.commit()
        return endorsement

    def withdraw(self, vo: str, appliance: str) -> None:
        """Take an appliance out of the VO's draft (the next publish obsoletes it)."""
        with self._uow() as uow:
            self._manager(uow, vo)
            if not uow.market.withdraw(vo, appliance):
                raise NotFound(f"{appliance} is not in the draft of {vo}")
            uow.commit()

    def publish(
        self, vo: str, *, days: int = DEFAULT_LIST_DAYS, comment: str = ""
    ) -> ListPublication:
        """Sign the draft as the VO's next list version, valid for ``days``."""
        if not 1 <= days <= MAX_LIST_DAYS:
            raise InputError(f"a list is valid for 1 to {MAX_LIST_DAYS} days", field="days")
        problem = text_problem("comment", comment, MAX_TITLE_CHARS)
        if problem:
            raise InputError(problem, field="comment")
        with self._uow() as uow:
            found = self._manager(uow, vo)
            now = self._now()
            previous = uow.market.publication(vo, None)
            number = 1 if previous is None else previous.number + 1
            entries = uow.market.draft(vo)
            images = self._listed_images(uow.market, entries, now)
            image_list = ImageList(
                identifier=found.list_identifier,
                version=str(number),
                created=now,
                expires=now + timedelta(days=days),
                endorser=self._signer.endorser(vo),
                images=images,
                title=found.title,
                description=found.description,
                source=self.public_url + "/",
                uri=f"{self.public_url}/vo/{vo}/image.list",
                vo=vo,
            )
            signed, document = self._signer.sign(vo, image_list)
            publication = ListPublication(
                vo=vo,
                number=number,
                author=self.user,
                published_at=now,
                expires=image_list.expires,
                entries=tuple((e.appliance, e.version) for e in entries),
                signed=signed,
                document=document,
                etag=hashlib.sha256(signed).hexdigest(),
                comment=comment,
            )
            uow.market.add_publication(publication)
            if found.obsoleted_at is not None:
                uow.market.set_obsoleted(vo, None)
            uow.commit()
        return publication

    def _listed_images(
        self, market: MarketStore, entries: Sequence[Endorsement], now: datetime
    ) -> tuple[ListedImage, ...]:
        images: list[ListedImage] = []
        for entry in entries:
            appliance = market.appliance(entry.appliance)
            version = market.version(entry.appliance, entry.version)
            if appliance is None or version is None:
                raise NotFound(f"{entry.appliance}@{entry.version} no longer exists")
            if not appliance.is_public:
                raise Conflict(
                    f"{appliance.name} is no longer public, but a VO list is read by everyone",
                    hint=f"withdraw it, or slipway appliance share {appliance.name} --public view",
                )
            if version.is_expired(now):
                raise Conflict(
                    f"{version.label} expired at {_when(version.expires)}",
                    hint="withdraw it or endorse a newer version",
                )
            images.extend(self._listed(appliance, version, f) for f in version.files)
        return tuple(images)

    def _listed(self, appliance: Appliance, version: ApplianceVersion, f: ImageFile) -> ListedImage:
        os_label = "/".join(p for p in (f.os_name, f.os_version, f.hypervisor) if p)
        return ListedImage(
            identifier=image_identifier(appliance.identifier, f),
            uri=self.file_url(f),
            size=f.size,
            sha512=f.sha512,
            title=f"Image for {appliance.title} [{os_label}]",
            description=version.notes or appliance.description,
            version=version.version,
            format=f.format.upper(),
            hypervisor=f.hypervisor,
            arch=f.arch,
            os=appliance.os,
            os_name=f.os_name or None,
            os_version=f.os_version or None,
            comments=version.notes,
            ram_minimum=f.ram_minimum,
            ram_recommended=f.ram_recommended,
            core_minimum=f.core_minimum,
            core_recommended=f.core_recommended,
            expires=version.expires,
            mpuri=f"{self.public_url}/appliances/{appliance.name}@{version.version}",
            appid=appliance.name,
            user_fullname=version.author,
            extras=((OCI_KEY, f.artifacts[-1]),) if f.artifacts else (),
        )

    def obsolete(self, vo: str) -> Vo:
        """Stop serving the VO's list (until it publishes again)."""
        with self._uow() as uow:
            found = self._manager(uow, vo)
            if uow.market.publication(vo, None) is None:
                raise Conflict(f"{vo} has published no list")
            now = self._now()
            uow.market.set_obsoleted(vo, now)
            uow.commit()
        return replace(found, obsoleted_at=now)

    def published(self, vo: str, number: int | None = None) -> ListPublication:
        """A published version of the VO's list (the newest by default); anyone
        may read it. The newest one of an obsoleted list is :class:`Gone`."""
        with self._uow() as uow:
            found = _require_vo(uow.market, vo)
            publication = uow.market.publication(vo, number)
        if publication is None:
            raise NotFound(
                f"{vo} has published no list" if number is None else f"{vo} has no list {number}"
            )
        if number is None and found.obsoleted_at is not None:
            raise Gone(f"the list of {vo} was obsoleted at {_when(found.obsoleted_at)}")
        return publication

    # -- helpers --------------------------------------------------------------------

    def _viewer(self, uow: MarketUnitOfWork) -> Access | None:
        """The acting user's access, None for an anonymous caller."""
        if not self.user or not uow.identity.user_exists(self.user):
            return None
        return access_of(uow.identity, self.user)

    def _viewable(self, uow: MarketUnitOfWork, name: str) -> Appliance:
        found = uow.market.appliance(name)
        if found is None or not _may_view(self._viewer(uow), found):
            raise _no_appliance(name)
        return found

    def _manager(self, uow: MarketUnitOfWork, vo: str) -> Vo:
        found = _require_vo(uow.market, vo)
        if uow.market.role_of(vo, self.user) is not VoRole.MANAGER and not (
            uow.identity.user_exists(self.user) and uow.identity.is_admin(self.user)
        ):
            raise PermissionDenied(f"only a manager of {vo} may change its list or members")
        return found


def _may_view(access: Access | None, appliance: Appliance) -> bool:
    if access is None:
        return appliance.is_public
    return appliance.may(access, Right.VIEW)


def _require_vo(market: MarketStore, name: str) -> Vo:
    found = market.vo(name)
    if found is None:
        raise NotFound(f"no VO {name}", hint="slipway vo list shows them")
    return found


def _no_appliance(name: str) -> NotFound:
    return NotFound(f"no appliance {name}", hint="slipway appliance list shows what you can see")


def _check_name(name: str) -> None:
    problem = appliance_name_problem(name)
    if problem:
        raise InputError(problem, field="name")


def _check_appliance_text(appliance: NewAppliance) -> None:
    for field, text, limit in (
        ("title", appliance.title, MAX_TITLE_CHARS),
        ("os", appliance.os, 100),
        ("arch", appliance.arch, 40),
    ):
        problem = text_problem(field, text, limit)
        if problem:
            raise InputError(problem, field=field)
    if not appliance.title.strip():
        raise InputError("an appliance needs a title", field="title")
    problem = text_problem(
        "description", appliance.description, MAX_DESCRIPTION_CHARS, multi_line=True
    )
    if problem:
        raise InputError(problem, field="description")


_DETAIL_FIELDS = {
    "os_name": str,
    "os_version": str,
    "arch": str,
    "hypervisor": str,
    "core_minimum": int,
    "core_recommended": int,
    "ram_minimum": int,
    "ram_recommended": int,
}


def _with_details(image: ImageFile, details: dict[str, int | str]) -> ImageFile:
    """``image`` with what the author said of it (cores, RAM …) on top of
    what was measured."""
    given = {}
    for key, value in details.items():
        kind = _DETAIL_FIELDS.get(key)
        if kind is None or not isinstance(value, kind):
            raise InputError(f"{key}: not a detail of an image file, or of the wrong type")
        if kind is str:
            problem = text_problem(key, str(value), 100)
            if problem:
                raise InputError(problem, field=key)
        elif not 0 < int(value) <= 1 << 24:
            raise InputError(f"{key} must be a positive whole number", field=key)
        given[key] = value
    return replace(image, **given)  # type: ignore[arg-type]


def _new_appliance(name: str, new: NewAppliance, owner: str, now: datetime) -> Appliance:
    return Appliance(
        name=name,
        identifier=new_appliance_identifier(name, now),
        title=new.title,
        description=new.description,
        os=new.os,
        arch=new.arch,
        rights=Rights(owner),
        created_at=now,
    )


def _list_identifier(vo: str, now: datetime) -> str:
    return new_appliance_identifier(f"vo:{vo}", now)


def _versioned(reference: str) -> tuple[str, str]:
    name, at, label = reference.rpartition("@")
    if not at or not name or not label:
        raise InputError(
            f"{reference!r}: name an appliance version as APPLIANCE@VERSION", field="appliance"
        )
    return name, label


def _when(moment: datetime | None) -> str:
    return "" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
