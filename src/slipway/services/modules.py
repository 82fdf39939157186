"""The modules a command can see: definitions read from files, layered over
the latest versions in the store.

A reference without a version finds the file first, then the store's latest; a
pinned reference (``name@7``) always reads the store. Clouds, catalogs and
declared security groups are built from the modules on first use and cached.

With a viewer, stored modules the viewer may not view are left out, as if they
did not exist, so that nothing resolves through them; a reference to one fails
exactly as a reference to nothing does (:meth:`Modules.missing`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from slipway.connectors.limits import limits_of
from slipway.domain.clouds import Cloud
from slipway.domain.inheritance import ChainLink
from slipway.domain.machines import Capability, Rule
from slipway.domain.modules import Access, Kind, ModuleRef, ModuleVersion, Right, Rights
from slipway.domain.security import MANAGED_GROUP, MANAGED_PREFIX, GroupDefinition
from slipway.domain.sizes import Catalog, Flavor
from slipway.domain.sync import SyncedImage
from slipway.errors import DefinitionError, NotFound, RefusedReference
from slipway.services.identity import access_of
from slipway.services.ports import CatalogStore, DefinitionFile, IdentityStore

__all__ = ["Module", "Modules"]


@dataclass(frozen=True)
class Module:
    """A definition from a file (``version`` None) or a stored version."""

    name: str
    kind: Kind
    document: dict[str, Any]
    version: int | None = None
    file: DefinitionFile | None = None
    stored: ModuleVersion | None = None

    @property
    def label(self) -> str:
        return self.name if self.version is None else f"{self.name}@{self.version}"

    @property
    def source(self) -> str:
        return self.file.file if self.file is not None else f"{self.label} (store)"

    def error(self, message: str, *path: str | int, hint: str | None = None) -> DefinitionError:
        """An error pointing at ``path`` in this module's file, or at the stored version."""
        if self.file is not None:
            return self.file.error(message, *path, hint=hint)
        key = ".".join(str(p) for p in path) or None
        return DefinitionError(message, file=self.source, key=key, hint=hint)

    def link(self) -> ChainLink:
        return ChainLink(self.label, self.document, self.source)

    @classmethod
    def from_file(cls, loaded: DefinitionFile) -> Module:
        return cls(loaded.name, loaded.kind, loaded.document, file=loaded)

    @classmethod
    def from_store(cls, stored: ModuleVersion) -> Module:
        return cls(stored.name, stored.kind, stored.document, stored.version, stored=stored)


Synced = Callable[[str, str], Sequence[tuple[str, SyncedImage]]]
"""(VO, appliance) → the images subscriptions keep of it, with each one's cloud."""


class Modules:
    """Files over store; the universe that validation and resolution look in.
    ``viewer``: who is looking (None: whoever sees everything); ``people``:
    who owners are (whether an admin declared a security group), None: all
    plain users."""

    def __init__(
        self,
        store: CatalogStore | None = None,
        files: Iterable[DefinitionFile] = (),
        viewer: Access | None = None,
        people: IdentityStore | None = None,
        synced: Synced | None = None,
    ) -> None:
        self.store = store
        self.people = people
        self.synced = synced
        self.files = {f.name: Module.from_file(f) for f in files}
        self.viewer = viewer
        self._access: dict[str, Access] = {viewer.user: viewer} if viewer else {}
        self._clouds: dict[str, tuple[Cloud, Module]] | None = None
        self._catalogs: dict[str, Catalog] = {}
        self._groups: list[Module] | None = None

    @property
    def who(self) -> str:
        """The viewer, in messages."""
        return self.viewer.user if self.viewer is not None else "you"

    def visible(self, stored: ModuleVersion) -> bool:
        return self.viewer is None or self.viewer.can(Right.VIEW, stored.rights)

    def _stored(self, ref: ModuleRef) -> ModuleVersion | None:
        if self.store is None:
            return None
        if ref.version is None:
            return self.store.latest(ref.name)
        return self.store.get(ref.name, ref.version)

    def get(self, ref: ModuleRef | str) -> Module | None:
        if isinstance(ref, str):
            ref = ModuleRef.parse(ref)
        if ref.version is None and ref.name in self.files:
            return self.files[ref.name]
        stored = self._stored(ref)
        return Module.from_store(stored) if stored and self.visible(stored) else None

    def require(self, ref: ModuleRef | str) -> Module:
        found = self.get(ref)
        if found is None:
            raise NotFound(
                f"module {ref} does not exist",
                hint="slipway images list shows what the store holds",
            )
        return found

    def of_kind(self, kind: Kind) -> list[Module]:
        found = {m.name: m for m in self.files.values() if m.kind is kind}
        if self.store is not None:
            for stored in self.store.list_latest(kind):
                if self.visible(stored):
                    found.setdefault(stored.name, Module.from_store(stored))
        return [found[name] for name in sorted(found)]

    def missing(
        self,
        module: Module,
        *path: str | int,
        exists: str,
        refused: str,
        hint: str | None = None,
    ) -> DefinitionError | RefusedReference:
        """The error for a reference in ``module``, at ``path``, that names
        nothing the viewer may view. Whoever sees everything (no viewer, an
        admin) is told what is wrong (``exists``); anyone else is refused with
        the same words (``refused``) whether the module is missing or not
        shared with them, so a refusal gives away nothing of others'."""
        if self.viewer is None or self.viewer.admin:
            return module.error(exists, *path, hint=hint)
        located = module.error(refused, *path).location
        return RefusedReference(
            refused,
            file=located.file,
            line=located.line,
            key=located.key,
            hint="it does not exist, or its owner has not shared it with you",
        )

    # -- owners and their scope ----------------------------------------------

    def access_of(self, user: str) -> Access:
        if user not in self._access:
            self._access[user] = (
                access_of(self.people, user) if self.people is not None else Access(user)
            )
        return self._access[user]

    def rights_of(self, module: Module) -> Rights:
        """Who owns ``module`` and who else may use it; a file is saved with
        the rights of the version it replaces, or as its importer's own."""
        if module.stored is not None:
            return module.stored.rights
        stored = self._stored(ModuleRef(module.name))
        if stored is not None and self.visible(stored):
            return stored.rights
        return Rights(owner=self.viewer.user if self.viewer else "")

    def owner_of(self, module: Module) -> str:
        return self.rights_of(module).owner

    # -- clouds, catalogs, security groups ---------------------------------

    def clouds(self) -> dict[str, tuple[Cloud, Module]]:
        """Cloud name → (cloud, the module that defines it). With a viewer who
        is not an admin, a cloud whose catalog they may not view is left out:
        they could not size anything on it."""
        if self._clouds is None:
            clouds: dict[str, tuple[Cloud, Module]] = {}
            for module in self.of_kind(Kind.CLOUD):
                cloud = cloud_from(module)
                if cloud.name in clouds:
                    other = clouds[cloud.name][1]
                    raise module.error(
                        f"cloud {cloud.name!r} is already defined by {other.source}", "name"
                    )
                clouds[cloud.name] = (cloud, module)
            if self.viewer is not None and not self.viewer.admin:
                clouds = {n: c for n, c in clouds.items() if self.get(c[0].catalog) is not None}
            self._clouds = clouds
        return self._clouds

    def cloud(self, name: str) -> Cloud:
        clouds = self.clouds()
        if name not in clouds:
            known = ", ".join(sorted(clouds)) or "none (import the cloud definitions first)"
            raise NotFound(f"unknown cloud {name!r}", hint=f"known clouds: {known}")
        return clouds[name][0]

    def catalog(self, ref: str) -> Catalog:
        """The catalog module ``ref``, built once."""
        if ref not in self._catalogs:
            module = self.get(ref)
            if module is None or module.kind is not Kind.CATALOG:
                raise NotFound(f"catalog {ref} does not exist")
            flavors = tuple(
                Flavor(
                    f["name"],
                    f["cpu"],
                    float(f["ram"]),
                    None if f.get("disk") is None else float(f["disk"]),
                    f.get("price"),
                )
                for f in module.document["flavors"]
            )
            self._catalogs[ref] = Catalog(module.label, flavors, module.document.get("source", ""))
        return self._catalogs[ref]

    def _declared(self) -> list[Module]:
        """Every declared security group, files over store, whoever may view it."""
        if self._groups is None:
            found = {m.name: m for m in self.files.values() if m.kind is Kind.SECURITY_GROUP}
            if self.store is not None:
                for stored in self.store.list_latest(Kind.SECURITY_GROUP):
                    found.setdefault(stored.name, Module.from_store(stored))
            self._groups = [found[name] for name in sorted(found)]
        return self._groups

    def groups_named(self, owner: str, name: str) -> list[Module]:
        """The declarations ``name`` means in ``owner``'s scope: their own; else
        those of admins that ``owner`` may view (the site's groups). Nobody
        else's: a bare name never reaches another user's group, so publishing
        a group cannot change the firewall of anyone else's definitions."""
        named = [m for m in self._declared() if m.document["name"] == name]
        own = [m for m in named if self.owner_of(m) == owner]
        if own:
            return own
        access = self.access_of(owner)
        return [
            m
            for m in named
            if self.access_of(self.owner_of(m)).admin and access.can(Right.VIEW, self.rights_of(m))
        ]

    def security_groups(
        self, module: Module, names: Sequence[str] | None
    ) -> dict[str, GroupDefinition]:
        """The declared groups among ``names`` (``module``'s effective list),
        in the module's own scope: a bare name (``db``) as :meth:`groups_named`
        finds it for the module's owner; a module name (``alice/groups/db``)
        that exact declaration, which the viewer must be able to view."""
        owner = self.owner_of(module)
        found: dict[str, GroupDefinition] = {}
        for index, name in enumerate(names or ()):
            if name == MANAGED_GROUP:
                continue
            if name.startswith(MANAGED_PREFIX):
                raise module.error(
                    f"{name!r}: names starting with {MANAGED_PREFIX!r} are those Slipway gives "
                    "declared groups on a cloud; name the group as it is declared",
                    "security_groups",
                    index,
                )
            if "/" in name:
                found[name] = self._group_module(module, name, index)
                continue
            declared = self.groups_named(owner, name)
            if len(declared) > 1:
                sources = ", ".join(m.label for m in declared)
                raise module.error(
                    f"security group {name!r} is declared by more than one module ({sources})",
                    "security_groups",
                    index,
                    hint="name the one you mean by its module name",
                )
            if declared:
                found[name] = security_group_from(declared[0], self.owner_of(declared[0]))
        return found

    def _group_module(self, module: Module, reference: str, index: int) -> GroupDefinition:
        try:
            ref = ModuleRef.parse(reference)
        except ValueError as exc:
            raise module.error(str(exc), "security_groups", index) from None
        if ref.version is not None:
            # A cloud holds one set of rules per group: the latest.
            raise module.error(
                f"{reference!r}: a security group is named without @version",
                "security_groups",
                index,
            )
        target = self.get(ref)
        if target is None:
            raise self.missing(
                module,
                "security_groups",
                index,
                exists=f"security group {reference!r} does not exist",
                refused=f"security group {reference!r} names no module {self.who} may view",
            )
        if target.kind is not Kind.SECURITY_GROUP:
            raise module.error(
                f"{reference!r} is a {target.kind}, not a security group", "security_groups", index
            )
        return security_group_from(target, self.owner_of(target))


def cloud_from(module: Module) -> Cloud:
    """The cloud a definition describes. A capability is the driver's to
    give: the definition may only take one away (a cloud without security
    groups), never claim one its connector lacks."""
    doc = module.document
    claimed = doc.get("capabilities", {})
    lacking = limits_of(doc["driver"])

    def able(capability: Capability) -> bool:
        return bool(claimed.get(capability.value, True)) and capability not in lacking

    return Cloud(
        name=doc["name"],
        driver=doc["driver"],
        catalog=ModuleRef.parse(doc["catalog"]).name,
        region=doc.get("region", ""),
        security_groups=able(Capability.SECURITY_GROUPS),
        image_upload=able(Capability.IMAGE_UPLOAD),
        module=module.label,
        description=doc.get("description", ""),
        credentials=doc.get("credentials", ""),
    )


def security_group_from(module: Module, owner: str) -> GroupDefinition:
    doc = module.document
    rules: Sequence[Rule] = tuple(
        # "any" in a file is the empty port range of a Rule: every port.
        Rule(r["protocol"], "" if r["ports"] == "any" else str(r["ports"]), r["source"])
        for r in doc.get("rules", ())
    )
    return GroupDefinition(
        doc["name"], tuple(rules), doc.get("description", ""), owner, module.label
    )
