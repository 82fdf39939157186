"""The file formats of definitions (DESIGN.md §3), as strict pydantic models.

Validation is strict (no silent coercion of ``"two"`` to a number or of a
number to a string) and closed (unknown keys are errors). The models only check
shape and ranges; references between modules are checked by
:mod:`slipway.services.definitions`. :func:`normalise` returns the document
as plain data containing only what the author wrote, which is what inheritance
needs (an absent key inherits).
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from slipway.domain.clouds import CLOUD_DRIVERS
from slipway.domain.sizes import MAX_CPU, MAX_DISK_GB, MAX_RAM_GB
from slipway.domain.text import control_character

__all__ = ["MODELS", "normalise"]


def _one_line(text: str) -> str:
    found = control_character(text)
    if found is not None:
        raise ValueError(f"the control character {found} is not allowed here")
    return text


def _lines(text: str) -> str:
    found = control_character(text, multi_line=True)
    if found is not None:
        raise ValueError(f"the control character {found} is not allowed (tabs and newlines are)")
    return text


Inherited = Literal["inherited"]
Line = Annotated[str, AfterValidator(_one_line)]
"""Text on one line: no control character (terminals obey them)."""
Name = Annotated[Line, Field(min_length=1, max_length=200)]
Text = Annotated[str, AfterValidator(_lines)]
"""Text of several lines (descriptions, recipes): tabs and newlines only."""


class _Strict(BaseModel):
    # A store cannot keep an infinite or undefined number as JSON, and no
    # size or price is one.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


class SizeDoc(_Strict):
    cpu: Annotated[int, Field(ge=1, le=MAX_CPU)] | Inherited | None = None
    ram: Annotated[float, Field(gt=0, le=MAX_RAM_GB)] | Inherited | None = None
    disk: Annotated[float, Field(gt=0, le=MAX_DISK_GB)] | Inherited | None = None


class OsDoc(_Strict):
    # A search facet, kept in 100 characters.
    distribution: Annotated[Line, Field(min_length=1, max_length=100)] | Inherited | None = None
    version: Name | Inherited | None = None
    arch: Literal["x86_64", "aarch64", "i686", "ppc64le", "s390x"] | Inherited | None = None

    @field_validator("version", mode="before")
    @classmethod
    def _version_text(cls, value: Any) -> Any:
        if isinstance(value, bool):
            return value
        if isinstance(value, int):
            return str(value)
        if isinstance(value, float):
            raise ValueError(
                f'write the version in quotes ("{value}"): as a number YAML '
                "drops trailing zeros, so 22.10 would read as 22.1"
            )
        return value


class NativeDoc(_Strict):
    id: Name
    login_user: Name | None = None


class CloudConfDoc(_Strict):
    instance_type: Name | Inherited | None = None
    network: Name | Inherited | None = None


Platform = Literal["debian", "ubuntu", "redhat", "suse", "windows", "other"]


ApplianceRef = Annotated[
    str,
    Field(
        max_length=700,
        pattern=r"^[a-z0-9]([a-z0-9.-]{0,252})/[A-Za-z0-9_.\-/]{1,400}(@[A-Za-z0-9._+~-]{1,64})?$",
        description="VO/APPLIANCE or VO/APPLIANCE@VERSION: the native image of every "
        "cloud a subscription synced it to",
    ),
]


class ImageDoc(_Strict):
    kind: Literal["image"]
    description: Text | Inherited | None = None
    platform: Platform | Inherited | None = None
    os: OsDoc | Inherited | None = None
    login_user: Name | Inherited | None = None
    parent: Name | None = None
    native: dict[Name, NativeDoc | Inherited] | None = None
    appliance: ApplianceRef | Inherited | None = None
    size: SizeDoc | Inherited | None = None
    clouds: dict[Name, CloudConfDoc | Inherited] | None = None
    security_groups: list[Name] | Inherited | None = None


class PortDoc(_Strict):
    port: Annotated[int, Field(ge=1, le=65535)]
    protocol: Literal["tcp", "udp"] = "tcp"
    name: Name | None = None

    @model_validator(mode="before")
    @classmethod
    def _explicit_protocol(cls, value: Any) -> Any:
        if isinstance(value, dict) and "protocol" not in value:
            return {**value, "protocol": "tcp"}
        return value


class RecipesDoc(_Strict):
    packages: list[Name] | None = None
    pre_install: Text | None = None
    post_install: Text | None = None
    deployment: Text | None = None


class ComponentDoc(_Strict):
    kind: Literal["component"]
    description: Text | Inherited | None = None
    image: Name
    size: SizeDoc | Inherited | None = None
    clouds: dict[Name, CloudConfDoc | Inherited] | None = None
    ports: list[PortDoc] | Inherited | None = None
    security_groups: list[Name] | Inherited | None = None
    recipes: RecipesDoc | None = None
    keep_running: Literal["always", "on-success", "on-error", "never"] | None = None


class FlavorDoc(_Strict):
    name: Name
    cpu: Annotated[int, Field(ge=1, le=MAX_CPU)]
    ram: Annotated[float, Field(gt=0, le=MAX_RAM_GB)]
    disk: Annotated[float, Field(gt=0, le=MAX_DISK_GB)] | None = None
    price: Annotated[float, Field(ge=0)] | None = None


class CatalogDoc(_Strict):
    kind: Literal["catalog"]
    description: Text | None = None
    source: Line | None = None
    flavors: Annotated[list[FlavorDoc], Field(min_length=1)]

    @field_validator("flavors")
    @classmethod
    def _unique_names(cls, flavors: list[FlavorDoc]) -> list[FlavorDoc]:
        seen: set[str] = set()
        for flavor in flavors:
            if flavor.name in seen:
                raise ValueError(f"flavor {flavor.name!r} is listed twice")
            seen.add(flavor.name)
        return flavors


class CapabilitiesDoc(_Strict):
    security_groups: bool = True
    image_upload: bool = True


class CloudDoc(_Strict):
    """Which cloud this is; how the server reaches it is the operator's
    configuration (``[clouds.NAME]`` in config.toml), never a definition's."""

    kind: Literal["cloud"]
    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=63)]
    description: Text | None = None
    driver: Literal[CLOUD_DRIVERS]  # type: ignore[valid-type]
    region: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=63)] | None = (
        None
    )
    credentials: (
        Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@-]*$", max_length=128)] | None
    ) = None
    capabilities: CapabilitiesDoc | None = None
    catalog: Name

    @model_validator(mode="before")
    @classmethod
    def _no_connector_options(cls, value: Any) -> Any:
        if isinstance(value, dict) and "endpoint" in value:
            raise ValueError(
                "'endpoint' is not allowed: how Slipway reaches a cloud (endpoints, "
                "binaries, folders, profiles) is set by the operator in config.toml "
                "([clouds.NAME]); a cloud definition names its credentials only "
                "(credentials: NAME)"
            )
        return value


class RuleDoc(_Strict):
    protocol: Literal["tcp", "udp", "icmp", "all"]
    ports: str | int = "any"
    source: str = "0.0.0.0/0"

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {"ports": "any", "source": "0.0.0.0/0", **value}
        return value

    @field_validator("ports")
    @classmethod
    def _port_range(cls, value: str | int) -> str:
        text = str(value)
        if text == "any":
            return text
        low, _, high = text.partition("-")
        if not (low.isdigit() and (not high or high.isdigit())):
            raise ValueError(f"ports must be a port, a range like 8000-8080, or any; got {text!r}")
        if not 1 <= int(low) <= int(high or low) <= 65535:
            raise ValueError(f"ports {text!r} are outside 1-65535 or reversed")
        return text

    @field_validator("source")
    @classmethod
    def _cidr(cls, value: str) -> str:
        try:
            return str(ipaddress.ip_network(value, strict=False))
        except ValueError:
            raise ValueError(f"source must be a CIDR like 192.0.2.0/24, got {value!r}") from None


class SecurityGroupDoc(_Strict):
    kind: Literal["security-group"]
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=255)]
    description: Text | None = None
    rules: list[RuleDoc]


MODELS: dict[str, type[_Strict]] = {
    "image": ImageDoc,
    "component": ComponentDoc,
    "cloud": CloudDoc,
    "security-group": SecurityGroupDoc,
    "catalog": CatalogDoc,
}


def normalise(model: BaseModel) -> dict[str, Any]:
    """Plain data with only the keys the author wrote."""
    return model.model_dump(mode="json", exclude_unset=True)
