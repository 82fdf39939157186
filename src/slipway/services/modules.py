"""The modules a command can see: definitions read from files, layered over
the latest versions in the store.

A reference without a version finds the file first, then the store's latest; a
pinned reference (``name@7``) always reads the store. Clouds, catalogs and
declared security groups are built from the modules on first use and cached.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from slipway.domain.clouds import Cloud
from slipway.domain.inheritance import ChainLink
from slipway.domain.machines import Rule
from slipway.domain.modules import Kind, ModuleRef, ModuleVersion
from slipway.domain.security import GroupDefinition
from slipway.domain.sizes import Catalog, Flavor
from slipway.errors import DefinitionError, NotFound
from slipway.services.ports import CatalogStore, DefinitionFile

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


class Modules:
    """Files over store; the universe that validation and resolution look in."""

    def __init__(
        self, store: CatalogStore | None = None, files: Iterable[DefinitionFile] = ()
    ) -> None:
        self.store = store
        self.files = {f.name: Module.from_file(f) for f in files}
        self._clouds: dict[str, tuple[Cloud, Module]] | None = None
        self._catalogs: dict[str, Catalog] = {}
        self._groups: dict[str, GroupDefinition] | None = None

    def get(self, ref: ModuleRef | str) -> Module | None:
        if isinstance(ref, str):
            ref = ModuleRef.parse(ref)
        if ref.version is None and ref.name in self.files:
            return self.files[ref.name]
        if self.store is None:
            return None
        stored = (
            self.store.latest(ref.name)
            if ref.version is None
            else self.store.get(ref.name, ref.version)
        )
        return Module.from_store(stored) if stored else None

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
                found.setdefault(stored.name, Module.from_store(stored))
        return [found[name] for name in sorted(found)]

    # -- clouds, catalogs, security groups ---------------------------------

    def clouds(self) -> dict[str, tuple[Cloud, Module]]:
        """Cloud name → (cloud, the module that defines it)."""
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

    def declared_groups(self) -> dict[str, GroupDefinition]:
        if self._groups is None:
            self._groups = {
                m.document["name"]: security_group_from(m)
                for m in self.of_kind(Kind.SECURITY_GROUP)
            }
        return self._groups


def cloud_from(module: Module) -> Cloud:
    doc = module.document
    capabilities = doc.get("capabilities", {})
    return Cloud(
        name=doc["name"],
        driver=doc["driver"],
        catalog=ModuleRef.parse(doc["catalog"]).name,
        region=doc.get("region", ""),
        security_groups=capabilities.get("security_groups", True),
        image_upload=capabilities.get("image_upload", True),
        module=module.label,
        description=doc.get("description", ""),
        credentials=doc.get("credentials", ""),
    )


def security_group_from(module: Module) -> GroupDefinition:
    doc = module.document
    rules: Sequence[Rule] = tuple(
        # "any" in a file is the empty port range of a Rule: every port.
        Rule(r["protocol"], "" if r["ports"] == "any" else str(r["ports"]), r["source"])
        for r in doc.get("rules", ())
    )
    return GroupDefinition(doc["name"], tuple(rules), doc.get("description", ""))
