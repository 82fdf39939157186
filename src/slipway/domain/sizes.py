"""Sizes, flavors and the rule that picks a flavor for a size (DESIGN.md §4).

A :class:`Size` is what a definition asks for; a :class:`Flavor` is what a
cloud sells; a :class:`Catalog` lists a cloud's flavors. ``pick_flavor`` returns
the smallest flavor that satisfies every resource: among the flavors no other
satisfying flavor beats on every resource, the cheapest where the catalog has
prices, else the one with the fewest spare resources.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

__all__ = [
    "MAX_CPU",
    "MAX_DISK_GB",
    "MAX_RAM_GB",
    "Catalog",
    "Flavor",
    "FlavorPick",
    "NoFlavorFits",
    "Size",
    "UnknownInstanceType",
    "pick_flavor",
    "resolve_size",
]

# Beyond these a size is a typo, not a request: the largest machines any cloud
# sells today have 896 vCPUs and 32 TiB of RAM.
MAX_CPU = 1024
MAX_RAM_GB = 32768.0
MAX_DISK_GB = 65536.0


@dataclass(frozen=True)
class Size:
    """Requested resources. ``None`` means "no requirement"; RAM and disk in GB."""

    cpu: int | None = None
    ram: float | None = None
    disk: float | None = None

    def problems(self) -> list[tuple[str, str]]:
        """(key, message) for every value that is negative, zero or absurd."""
        found: list[tuple[str, str]] = []
        if self.cpu is not None and not 1 <= self.cpu <= MAX_CPU:
            found.append(("cpu", f"must be between 1 and {MAX_CPU}, got {self.cpu}"))
        for key, value, limit in (("ram", self.ram, MAX_RAM_GB), ("disk", self.disk, MAX_DISK_GB)):
            if value is not None and (not math.isfinite(value) or not 0 < value <= limit):
                found.append((key, f"must be more than 0 and at most {limit:g} GB, got {value:g}"))
        return found

    def merged_over(self, base: Size) -> Size:
        """This size with unset values taken from ``base`` (key-by-key inheritance)."""
        return Size(
            cpu=self.cpu if self.cpu is not None else base.cpu,
            ram=self.ram if self.ram is not None else base.ram,
            disk=self.disk if self.disk is not None else base.disk,
        )

    def __str__(self) -> str:
        parts = []
        if self.cpu is not None:
            parts.append(f"{self.cpu} CPU")
        if self.ram is not None:
            parts.append(f"{self.ram:g} GB RAM")
        if self.disk is not None:
            parts.append(f"{self.disk:g} GB disk")
        return ", ".join(parts) or "any size"


@dataclass(frozen=True)
class Flavor:
    """One flavor / instance type. ``disk`` is ``None`` when the disk is chosen
    separately at deploy time (Exoscale, EC2 EBS); ``price`` is per hour."""

    name: str
    cpu: int
    ram: float
    disk: float | None = None
    price: float | None = None

    def lacks(self, size: Size) -> list[str]:
        """What this flavor is short of for ``size``, in words; empty when it fits."""
        short: list[str] = []
        if size.cpu is not None and self.cpu < size.cpu:
            short.append(f"{size.cpu - self.cpu} CPU")
        if size.ram is not None and self.ram < size.ram:
            short.append(f"{size.ram - self.ram:g} GB RAM")
        if size.disk is not None and self.disk is not None and self.disk < size.disk:
            short.append(f"{size.disk - self.disk:g} GB disk")
        return short

    def fits(self, size: Size) -> bool:
        return not self.lacks(size)

    def describe(self) -> str:
        text = f"{self.name} ({self.cpu} CPU, {self.ram:g} GB RAM"
        if self.disk is not None:
            text += f", {self.disk:g} GB disk"
        return text + ")"


@dataclass(frozen=True)
class Catalog:
    """A cloud's flavors, as one versioned data file."""

    name: str
    flavors: tuple[Flavor, ...]
    source: str = ""
    _by_name: dict[str, Flavor] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {f.name: f for f in self.flavors})

    def get(self, name: str) -> Flavor | None:
        return self._by_name.get(name)

    @property
    def has_prices(self) -> bool:
        return bool(self.flavors) and all(f.price is not None for f in self.flavors)


@dataclass(frozen=True)
class FlavorPick:
    """The outcome for one cloud: the flavor, whether it was named explicitly,
    and warnings a user should see."""

    flavor: Flavor
    explicit: bool = False
    warnings: tuple[str, ...] = ()


class NoFlavorFits(Exception):
    """No flavor satisfies the size; names the closest one and what it lacks."""

    def __init__(self, catalog: str, size: Size, closest: Flavor | None) -> None:
        self.catalog = catalog
        self.size = size
        self.closest = closest
        if closest is None:
            text = f"catalog {catalog} has no flavors"
        else:
            text = (
                f"no flavor in {catalog} fits {size}; the closest is {closest.describe()}, "
                f"which lacks {' and '.join(closest.lacks(size))}"
            )
        super().__init__(text)


class UnknownInstanceType(Exception):
    def __init__(self, catalog: str, name: str, known: Sequence[str]) -> None:
        self.catalog = catalog
        self.name = name
        self.known = tuple(known)
        super().__init__(
            f"instance type {name!r} is not in catalog {catalog}; it has: {', '.join(known)}"
        )


def _dominates(a: Flavor, b: Flavor) -> bool:
    """``a`` is no larger than ``b`` on every resource and smaller on one."""
    a_disk = a.disk if a.disk is not None else 0.0
    b_disk = b.disk if b.disk is not None else 0.0
    no_larger = a.cpu <= b.cpu and a.ram <= b.ram and a_disk <= b_disk
    return no_larger and (a.cpu < b.cpu or a.ram < b.ram or a_disk < b_disk)


def _spare(flavor: Flavor, size: Size) -> float:
    """Spare resources relative to the request, summed over resources."""
    total = flavor.cpu / size.cpu - 1 if size.cpu else float(flavor.cpu)
    total += flavor.ram / size.ram - 1 if size.ram else flavor.ram
    if flavor.disk is not None:
        total += flavor.disk / size.disk - 1 if size.disk else flavor.disk / 1000
    return total


def _shortfall(flavor: Flavor, size: Size) -> float:
    """How far a flavor is from fitting, relative to the request."""
    total = 0.0
    if size.cpu:
        total += max(0.0, size.cpu - flavor.cpu) / size.cpu
    if size.ram:
        total += max(0.0, size.ram - flavor.ram) / size.ram
    if size.disk and flavor.disk is not None:
        total += max(0.0, size.disk - flavor.disk) / size.disk
    return total


def pick_flavor(catalog: Catalog, size: Size) -> Flavor:
    """The smallest flavor of ``catalog`` that satisfies ``size``.

    Raises :class:`NoFlavorFits` naming the closest flavor when none fits.
    """
    fitting = [f for f in catalog.flavors if f.fits(size)]
    if not fitting:
        closest = min(
            catalog.flavors,
            key=lambda f: (_shortfall(f, size), _spare(f, size), f.name),
            default=None,
        )
        raise NoFlavorFits(catalog.name, size, closest)
    smallest = [f for f in fitting if not any(_dominates(o, f) for o in fitting)]
    if catalog.has_prices:
        return min(smallest, key=lambda f: (f.price or 0.0, _spare(f, size), f.name))
    return min(smallest, key=lambda f: (_spare(f, size), f.name))


def resolve_size(catalog: Catalog, size: Size, instance_type: str | None = None) -> FlavorPick:
    """The flavor for ``size`` on the cloud of ``catalog``: the named
    ``instance_type`` when given (it must exist), else :func:`pick_flavor`."""
    if instance_type is None:
        return FlavorPick(pick_flavor(catalog, size))
    flavor = catalog.get(instance_type)
    if flavor is None:
        raise UnknownInstanceType(catalog.name, instance_type, [f.name for f in catalog.flavors])
    warnings: tuple[str, ...] = ()
    if not flavor.fits(size):
        warnings = (
            f"instance type {flavor.name} is smaller than the size ({size}): "
            f"it lacks {' and '.join(flavor.lacks(size))}",
        )
    return FlavorPick(flavor, explicit=True, warnings=warnings)


def sorted_flavors(flavors: Iterable[Flavor]) -> list[Flavor]:
    return sorted(flavors, key=lambda f: (f.cpu, f.ram, f.disk or 0.0, f.name))
