"""What a run was resolved to when it was created (DESIGN.md §6).

A deploy freezes the resolution into a :class:`RunTarget`: the native image,
the flavor, the login user, the security groups, the service ports, the
recipes and the run's own key. Every later step reads it from there, so an
edit of the definition never changes a run under way.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from slipway.domain.machines import Rule
from slipway.domain.modules import Kind
from slipway.domain.security import GroupAction

__all__ = ["Recipes", "RunGroup", "RunTarget", "ServicePort"]


@dataclass(frozen=True)
class Recipes:
    """A component's recipes (DESIGN.md §3); empty strings mean "nothing"."""

    packages: tuple[str, ...] = ()
    pre_install: str = ""
    post_install: str = ""
    deployment: str = ""


@dataclass(frozen=True)
class ServicePort:
    """A port a component serves on: opened in the guest's firewall and shown
    as the run's ``url.service.NAME`` link."""

    port: int
    protocol: str = "tcp"
    name: str | None = None

    @property
    def link_name(self) -> str:
        """The ``NAME`` of the run's ``url.service.NAME`` parameter."""
        return self.name or str(self.port)


@dataclass(frozen=True)
class RunGroup:
    """A security group the run's machine joins, by its name on the cloud.
    An ``ENSURE`` group is created or updated with ``rules`` first; a
    ``MUST_EXIST`` group is used as the cloud has it."""

    name: str
    action: GroupAction
    rules: tuple[Rule, ...] = ()


@dataclass(frozen=True)
class RunTarget:
    """A run's frozen resolution. ``cpu`` counts CPUs; ``ram`` and ``disk``
    are in GB (``disk`` is ``None`` when the flavor decides); ``platform`` is
    ``None`` when the definition names none. ``sealed_key`` is the run's
    private key as the vault sealed it; it and the recipes stay out of the
    ``repr``."""

    native_id: str
    flavor: str
    cpu: int
    ram: float
    login_user: str
    kind: Kind
    driver: str
    run_key: str
    sealed_key: str = field(repr=False)
    disk: float | None = None
    platform: str | None = None
    security_groups: tuple[RunGroup, ...] = ()
    ports: tuple[ServicePort, ...] = ()
    recipes: Recipes = field(default=Recipes(), repr=False)
    user_keys: tuple[str, ...] = ()

    @property
    def public_keys(self) -> tuple[str, ...]:
        """The keys the login user accepts: the user's own, then the run's."""
        return (*self.user_keys, self.run_key)

    @property
    def ensured_groups(self) -> tuple[RunGroup, ...]:
        """The groups Slipway creates or updates before the machine."""
        return tuple(g for g in self.security_groups if g.action is GroupAction.ENSURE)
