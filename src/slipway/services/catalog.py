"""Catalog use cases: validate, import, show, resolve, history, diff, copy,
share and list — each acting as one user, checking rights before it acts.
Who the user is, and what groups they are in, the identity store says
(:func:`~slipway.services.identity.access_of`).

Writes happen in one unit of work: an import of a folder is all-or-nothing, and
a refused action changes nothing.

A user sees only what they may view: a module they may not view answers as
one that does not exist, and a new module is created only in a namespace the
user owns (:meth:`~slipway.domain.modules.Access.may_create`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from slipway.domain.clouds import Cloud
from slipway.domain.diff import Change, diff_documents
from slipway.domain.modules import (
    Access,
    Kind,
    ModuleRef,
    ModuleVersion,
    Right,
    Rights,
    namespace_of,
)
from slipway.domain.sizes import Catalog, Flavor, Size
from slipway.domain.text import control_character
from slipway.errors import Conflict, InputError, NotFound, PermissionDenied
from slipway.services.definitions import Report, validate
from slipway.services.identity import access_of, enrol, first_write_access
from slipway.services.modules import Module, Modules
from slipway.services.ports import DefinitionFile, ModuleQuery, UnitOfWork
from slipway.services.resolve import ResolvedDefinition, resolve_module
from slipway.services.search import Page, refresh_facets
from slipway.services.sizes import SizeRow, resolve_everywhere

__all__ = ["CatalogService", "ImportResult", "Saved"]


def content_hash(document: dict[str, Any]) -> str:
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class Saved:
    name: str
    kind: Kind
    version: int
    status: str  # "new", "updated" or "unchanged"


@dataclass
class ImportResult:
    saved: list[Saved] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


class CatalogService:
    """The catalog as seen by ``user``."""

    def __init__(self, unit_of_work: Callable[[], UnitOfWork], user: str) -> None:
        self._uow = unit_of_work
        self.user = user

    # -- helpers ------------------------------------------------------------

    def _access(self, uow: UnitOfWork) -> Access:
        return access_of(uow.identity, self.user)

    def _importer(self, uow: UnitOfWork) -> Access:
        """The user as an import would make them: the first user of an empty
        store becomes its admin."""
        return first_write_access(uow.identity, self.user)

    def _require(self, access: Access, right: Right, version: ModuleVersion) -> None:
        if not access.can(right, version.rights):
            raise PermissionDenied(
                f"{self.user} lacks the {right} right on {version.name} "
                f"(owner {version.rights.owner})",
                hint="copy it into your own namespace with slipway copy"
                if right is Right.EDIT and access.can(Right.VIEW, version.rights)
                else None,
            )

    def _require_admin(self, access: Access, what: str) -> None:
        """Clouds are the operator's: only admins define, change or copy them."""
        if not access.admin:
            raise PermissionDenied(
                f"{what} is an admin's right; {self.user} is not an admin",
                hint="ask an admin of this Slipway to add the cloud",
            )

    def _viewable(
        self, uow: UnitOfWork, ref: ModuleRef | str, access: Access | None = None
    ) -> ModuleVersion:
        """The module ``ref`` names; one the user may not view is answered
        exactly as one that does not exist."""
        if isinstance(ref, str):
            ref = _parse(ref)
        store = uow.store
        latest = store.latest(ref.name)
        if latest is None or not (access or self._access(uow)).can(Right.VIEW, latest.rights):
            raise NotFound(
                f"module {ref.name} does not exist",
                hint="slipway images list shows what the store holds",
            )
        if ref.version is None:
            return latest
        found = store.get(ref.name, ref.version)
        if found is None:
            raise NotFound(f"{ref.name} has no version {ref.version} (latest is {latest.version})")
        return found

    def _modules(
        self,
        uow: UnitOfWork,
        files: Sequence[DefinitionFile] = (),
        access: Access | None = None,
    ) -> Modules:
        """The modules as the user may see them (files over store)."""
        sync = getattr(uow, "sync", None)  # a store that keeps syncs (SQL)
        return Modules(
            uow.store,
            files,
            viewer=access or self._access(uow),
            people=uow.identity,
            synced=sync.synced if sync is not None else None,
        )

    def _refuse_creating(
        self, access: Access, names: Sequence[str], denied: Sequence[str] = ()
    ) -> None:
        """Refuse, naming each with its namespace, the ``names`` the user may
        not create, along with the ``denied`` writes (one line each)."""
        outside: dict[str | None, list[str]] = {}
        for name in names:
            if not access.may_create(name):
                outside.setdefault(namespace_of(name), []).append(name)
        if not outside and not denied:
            return
        lines = []
        for namespace, refused in outside.items():
            where = (
                f"{namespace}/ is not a namespace {self.user} may create modules in"
                if namespace is not None
                else "only an admin creates a module outside a namespace (NAMESPACE/…)"
            )
            lines.append(f"{self.user} cannot create {', '.join(refused)}: {where}")
        raise PermissionDenied(
            "\n".join([*lines, *denied]),
            hint=f"name it {self.user}/…: a user creates modules under their own name, "
            "and under a group's name if they are one of its editors"
            if outside
            else "copy it into your own namespace with slipway copy",
        )

    def _plan_writes(
        self, uow: UnitOfWork, access: Access, files: Sequence[DefinitionFile]
    ) -> list[tuple[DefinitionFile, ModuleVersion | None, str]]:
        """(file, the version it replaces, its hash) for each file, once the
        user's right to write each is checked. A module the user may not view
        counts as one that does not exist: it needs a namespace of theirs."""
        plan: list[tuple[DefinitionFile, ModuleVersion | None, str]] = []
        new: list[str] = []
        denied: list[str] = []
        for file in files:
            latest = uow.store.latest(file.name)
            digest = content_hash(file.document)
            if file.kind is Kind.CLOUD and (latest is None or latest.content_hash != digest):
                self._require_admin(access, f"defining or changing the cloud {file.name}")
            if latest is None or not access.can(Right.VIEW, latest.rights):
                if not access.may_create(file.name):
                    new.append(file.name)
                elif latest is not None:  # someone else's, in a namespace the user shares
                    denied.append(f"{self.user} lacks the edit right on {file.name}")
            elif latest.content_hash != digest:
                # Re-importing an unchanged module writes nothing, so needs no right.
                if not access.can(Right.EDIT, latest.rights):
                    denied.append(
                        f"{self.user} lacks the edit right on {latest.name} "
                        f"(owner {latest.rights.owner})"
                    )
                elif latest.kind is not file.kind:
                    raise file.error(
                        f"{file.name} is a {latest.kind} in the store; "
                        f"it cannot become a {file.kind}",
                        "kind",
                    )
            plan.append((file, latest, digest))
        self._refuse_creating(access, new, denied)
        return plan

    # -- reading --------------------------------------------------------------

    def validate(self, files: Sequence[DefinitionFile]) -> Report:
        """Check ``files`` against each other and the store, and the user's
        right to save each, as an import would; writes nothing."""
        with self._uow() as uow:
            access = self._importer(uow)
            modules = self._modules(uow, files, access)
            report = validate(modules, [f.name for f in files])
            if not (report.errors or report.refused):
                self._plan_writes(uow, access, files)
            return report

    def show(self, ref: str) -> ModuleVersion:
        with self._uow() as uow:
            return self._viewable(uow, ref)

    def rights_on(self, ref: str) -> frozenset[Right]:
        """What the user may do with ``ref`` (view right needed to ask)."""
        with self._uow() as uow:
            version = self._viewable(uow, ref)
            return self._access(uow).rights_on(version.rights)

    def resolve(
        self, ref: str, clouds: list[str] | None = None, *, right: Right = Right.VIEW
    ) -> ResolvedDefinition:
        """The effective definition of ``ref`` with its per-cloud targets; the
        user needs ``right`` on the module and view on its parents."""
        with self._uow() as uow:
            access = self._access(uow)
            version = self._viewable(uow, ref, access)
            self._require(access, right, version)
            modules = self._modules(uow, access=access)
            return resolve_module(modules, Module.from_store(version), clouds=clouds)

    def history(self, name: str) -> list[ModuleVersion]:
        with self._uow() as uow:
            module = _parse(name).name
            self._viewable(uow, module)
            return list(uow.store.versions(module))

    def diff(self, a: str, b: str) -> tuple[ModuleVersion, ModuleVersion, list[Change]]:
        with self._uow() as uow:
            old, new = self._viewable(uow, a), self._viewable(uow, b)
            return old, new, diff_documents(old.document, new.document)

    def list_modules(
        self, *, kinds: Sequence[Kind] = (Kind.IMAGE, Kind.COMPONENT), cloud: str | None = None
    ) -> list[tuple[ModuleVersion, list[str]]]:
        """Viewable modules of ``kinds`` with the clouds each has a native image
        for (after inheritance); only those with ``cloud`` when given."""
        if cloud is not None:
            with self._uow() as uow:
                # An unknown cloud is an error, not an empty list.
                self._modules(uow).cloud(cloud)
        self.refresh_index()
        page = self.search(kinds=kinds, cloud=cloud, limit=None)
        return [(row.version, list(row.facets.clouds)) for row in page.items]

    def search(
        self,
        *,
        kinds: Sequence[Kind] = (Kind.IMAGE, Kind.COMPONENT),
        text: str | None = None,
        os: str | None = None,
        cloud: str | None = None,
        owner: str | None = None,
        limit: int | None = 50,
        offset: int = 0,
    ) -> Page:
        """One page, by name, of the latest versions the user may view that
        match every filter given (``text``: in the name or description)."""
        with self._uow() as uow:
            query = ModuleQuery(
                tuple(kinds),
                text or None,
                os or None,
                cloud or None,
                owner or None,
                self._access(uow),
                limit,
                offset,
            )
            items, total = uow.store.search(query)
            return Page(list(items), total, limit, offset)

    def refresh_index(self) -> int:
        """Compute the search facets of modules saved before they existed."""
        with self._uow() as uow:
            names = uow.store.unindexed()
            if not names:
                return 0
            count = refresh_facets(uow.store, uow.identity, names)
            uow.commit()
            return count

    def clouds(self) -> list[tuple[Cloud, Catalog]]:
        """Every cloud the user may view, with its catalog, by name."""
        with self._uow() as uow:
            modules = self._modules(uow)
            return [
                (cloud, modules.catalog(cloud.catalog))
                for cloud, _ in sorted(modules.clouds().values(), key=lambda c: c[0].name)
            ]

    def flavors(self, cloud: str) -> tuple[Cloud, Catalog]:
        with self._uow() as uow:
            modules = self._modules(uow)
            found = modules.cloud(cloud)
            return found, modules.catalog(found.catalog)

    def size_table(self, size: Size, clouds: Sequence[str] | None = None) -> list[SizeRow]:
        """The flavor ``size`` resolves to on every cloud (or on ``clouds``)."""
        problems = size.problems()
        if problems:
            key, message = problems[0]
            raise InputError(f"--{key} {message}")
        with self._uow() as uow:
            modules = self._modules(uow)
            if not modules.clouds():
                raise NotFound(
                    "the store has no clouds yet", hint="import some first: slipway import examples"
                )
            names = list(clouds) if clouds else sorted(modules.clouds())
            return resolve_everywhere(modules, size, names)

    def refresh_catalog(self, cloud: str, flavors: Sequence[Flavor], source: str) -> Saved:
        """Save ``flavors`` (what the cloud sells now, from its connector) as a
        new version of ``cloud``'s catalog module; prices of flavors it already
        listed are kept (no cloud API gives them). Needs the edit right on the
        catalog. An unchanged list saves nothing."""
        with self._uow() as uow:
            modules = self._modules(uow)
            found = modules.cloud(cloud)
            latest = uow.store.latest(found.catalog)
            enrol(uow.identity, self.user)
            access = self._access(uow)
            if latest is not None:
                self._require(access, Right.EDIT, latest)
            else:
                self._refuse_creating(access, [found.catalog])
            old = latest.document if latest else {}
            prices = {f["name"]: f["price"] for f in old.get("flavors", []) if "price" in f}
            rows: list[dict[str, Any]] = []
            for flavor in sorted(flavors, key=lambda f: (f.cpu, f.ram, f.name)):
                if flavor.cpu < 1 or flavor.ram <= 0:
                    continue  # nothing a size could ask for
                row: dict[str, Any] = {"name": flavor.name, "cpu": flavor.cpu, "ram": flavor.ram}
                if flavor.disk is not None:
                    row["disk"] = flavor.disk
                price = prices.get(flavor.name, flavor.price)
                if price is not None:
                    row["price"] = price
                rows.append(row)
            if not rows:
                raise NotFound(f"{cloud} offers no flavors: the catalog is left as it was")
            document: dict[str, Any] = {"kind": "catalog"}
            if old.get("description"):
                document["description"] = old["description"]
            document.update(source=source, flavors=rows)
            if latest is not None and rows == old.get("flavors"):  # only the date would change
                return Saved(latest.name, latest.kind, latest.version, "unchanged")
            number = 1 if latest is None else latest.version + 1
            uow.store.add_version(
                ModuleVersion(
                    name=found.catalog,
                    kind=Kind.CATALOG,
                    version=number,
                    document=document,
                    rights=latest.rights if latest else Rights(owner=self.user),
                    author=self.user,
                    created_at=datetime.now(UTC),
                    source=f"refreshed from {cloud}",
                    copied_from=latest.copied_from if latest else None,
                    comment=f"slipway sizes refresh --cloud {cloud}",
                    content_hash=content_hash(document),
                )
            )
            uow.commit()
            return Saved(
                found.catalog, Kind.CATALOG, number, "new" if latest is None else "updated"
            )

    # -- writing ---------------------------------------------------------------

    def import_files(self, files: Sequence[DefinitionFile], comment: str = "") -> ImportResult:
        """Save every file as a new version, or nothing at all."""
        if (found := control_character(comment, multi_line=True)) is not None:
            raise InputError(
                f"the comment may not hold the control character {found}", field="comment"
            )
        with self._uow() as uow:
            store = uow.store
            access = self._importer(uow)
            report = validate(self._modules(uow, files, access), [f.name for f in files])
            report.raise_errors()
            plan = self._plan_writes(uow, access, files)
            enrol(uow.identity, self.user)
            now = datetime.now(UTC)
            result = ImportResult(warnings=report.warnings)
            for file, latest, digest in plan:
                if latest is not None and latest.content_hash == digest:
                    result.saved.append(Saved(file.name, file.kind, latest.version, "unchanged"))
                    continue
                number = 1 if latest is None else latest.version + 1
                rights = latest.rights if latest else Rights(owner=self.user)
                store.add_version(
                    ModuleVersion(
                        name=file.name,
                        kind=file.kind,
                        version=number,
                        document=file.document,
                        rights=rights,
                        author=self.user,
                        created_at=now,
                        source=file.file,
                        copied_from=latest.copied_from if latest else None,
                        comment=comment,
                        content_hash=digest,
                    )
                )
                result.saved.append(
                    Saved(file.name, file.kind, number, "new" if latest is None else "updated")
                )
            changed = [s.name for s in result.saved if s.status != "unchanged"]
            refresh_facets(store, uow.identity, changed)
            uow.commit()
            return result

    def copy(self, source: str, destination: str) -> ModuleVersion:
        """Copy ``source`` (view right needed) to ``destination``, in a
        namespace of the user's, owned by them and private; the document,
        parent reference included, is unchanged."""
        target = _parse(destination)
        if target.version is not None:
            raise InputError(f"the destination {destination!r} cannot name a version")
        with self._uow() as uow:
            original = self._viewable(uow, source)
            if original.kind is Kind.CLOUD:
                self._require_admin(self._access(uow), f"copying the cloud {original.name}")
            self._refuse_creating(self._importer(uow), [target.name])
            if uow.store.latest(target.name) is not None:
                raise Conflict(
                    f"{target.name} already exists", hint="choose another name for the copy"
                )
            enrol(uow.identity, self.user)
            copied = ModuleVersion(
                name=target.name,
                kind=original.kind,
                version=1,
                document=original.document,
                rights=Rights(owner=self.user),
                author=self.user,
                created_at=datetime.now(UTC),
                source=original.source,
                copied_from=original.label,
                comment=f"copy of {original.label}",
                content_hash=original.content_hash,
            )
            uow.store.add_version(copied)
            refresh_facets(uow.store, uow.identity, [copied.name])
            uow.commit()
            return copied

    def share(
        self,
        name: str,
        *,
        group: str | None,
        group_rights: frozenset[Right],
        public_rights: frozenset[Right],
    ) -> Rights:
        """Set who else may view, edit or deploy ``name``; only its owner or an admin."""
        with self._uow() as uow:
            latest = self._viewable(uow, _parse(name).name)
            access = self._access(uow)
            if not (access.admin or latest.rights.owner == self.user):
                raise PermissionDenied(
                    f"only the owner ({latest.rights.owner}) or an admin can share {latest.name}"
                )
            if group is not None and not uow.identity.group_exists(group):
                raise NotFound(
                    f"group {group} does not exist",
                    hint=f"create it with slipway group add {group}",
                )
            rights = Rights(
                latest.rights.owner, group, group_rights if group else frozenset(), public_rights
            )
            uow.store.set_rights(latest.name, rights)
            uow.commit()
            return rights


def _parse(text: str) -> ModuleRef:
    try:
        return ModuleRef.parse(text)
    except ValueError as exc:
        raise InputError(str(exc)) from None
