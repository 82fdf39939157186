"""A run's target as the ``runs.target`` JSON column holds it.

The keys are those deploys have written since runs were first stored, so
every stored run loads without a data migration. Keys this version does not
know are ignored; a missing optional key gets its default; a missing required
key, or a value of the wrong kind, is an error naming the run and the key.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from slipway.domain.machines import Rule
from slipway.domain.modules import Kind
from slipway.domain.run_target import Recipes, RunGroup, RunTarget, ServicePort
from slipway.domain.security import GroupAction
from slipway.errors import SlipwayError

__all__ = ["target_from_json", "target_to_json"]

T = TypeVar("T")
_REQUIRED: Any = object()


def target_to_json(target: RunTarget) -> dict[str, Any]:
    """The JSON document stored for ``target``."""
    return {
        "native_id": target.native_id,
        "flavor": target.flavor,
        "cpu": target.cpu,
        "ram": target.ram,
        "disk": target.disk,
        "login_user": target.login_user,
        "platform": target.platform,
        "security_groups": [_group_to_json(g) for g in target.security_groups],
        "ports": [{"port": p.port, "protocol": p.protocol, "name": p.name} for p in target.ports],
        "recipes": _recipes_to_json(target.recipes),
        "kind": target.kind.value,
        "user_keys": list(target.user_keys),
        "run_key": target.run_key,
        "sealed_key": target.sealed_key,
        "driver": target.driver,
    }


def _group_to_json(group: RunGroup) -> dict[str, Any]:
    return {
        "name": group.name,
        "action": group.action.value,
        "rules": [
            {"protocol": r.protocol, "ports": r.ports, "source": r.source} for r in group.rules
        ],
    }


def _recipes_to_json(recipes: Recipes) -> dict[str, Any]:
    return {
        "packages": list(recipes.packages),
        "pre_install": recipes.pre_install,
        "post_install": recipes.post_install,
        "deployment": recipes.deployment,
    }


def target_from_json(run_id: str, stored: Mapping[str, Any]) -> RunTarget:
    """The target of run ``run_id`` from its stored JSON document.
    Raises :class:`SlipwayError` naming the run and the key at fault."""
    read = _StoredTarget(run_id, stored)
    return RunTarget(
        native_id=read("native_id", _text),
        flavor=read("flavor", _text),
        cpu=read("cpu", _whole),
        ram=read("ram", _number),
        login_user=read("login_user", _text),
        kind=read("kind", Kind),
        driver=read("driver", _text),
        run_key=read("run_key", _text),
        sealed_key=read("sealed_key", _text),
        disk=read("disk", _number, None),
        platform=read("platform", _text, None),
        security_groups=read("security_groups", _each(_group), ()),
        ports=read("ports", _each(_port), ()),
        recipes=read("recipes", _recipes, Recipes()),
        user_keys=read("user_keys", _each(_text), ()),
    )


class _StoredTarget:
    """Reads one key of a stored target at a time, so an error can name it."""

    def __init__(self, run_id: str, stored: Mapping[str, Any]) -> None:
        if not isinstance(stored, Mapping):
            raise _unreadable(run_id, "is not a JSON object")
        self.run_id = run_id
        self.stored = stored

    def __call__(self, key: str, convert: Callable[[Any], T], default: T = _REQUIRED) -> T:
        value = self.stored.get(key)
        if value is None:
            if default is _REQUIRED:
                raise _unreadable(self.run_id, f"has no {key!r}")
            return default
        try:
            return convert(value)
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            # The value itself stays out of the message: it may be a key.
            raise _unreadable(self.run_id, f"has a {key!r} Slipway cannot read") from exc


def _unreadable(run_id: str, problem: str) -> SlipwayError:
    return SlipwayError(
        f"run {run_id}: its stored target {problem}",
        hint="the runs table holds what no version of Slipway wrote, or what a newer "
        "one did; the run's machine, if it has one, may need ending on its cloud by hand",
    )


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected text, got {type(value).__name__}")
    return value


def _whole(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected a whole number, got {type(value).__name__}")
    return value


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected a number, got {type(value).__name__}")
    return float(value)


def _each(convert: Callable[[Any], T]) -> Callable[[Any], tuple[T, ...]]:
    def each(values: Any) -> tuple[T, ...]:
        if not isinstance(values, list):
            raise TypeError(f"expected a list, got {type(values).__name__}")
        return tuple(convert(v) for v in values)

    return each


def _group(stored: Mapping[str, Any]) -> RunGroup:
    return RunGroup(
        _text(stored["name"]),
        GroupAction(stored["action"]),
        _each(_rule)(stored.get("rules") or []),
    )


def _rule(stored: Mapping[str, Any]) -> Rule:
    return Rule(_text(stored["protocol"]), _text(stored["ports"]), _text(stored["source"]))


def _port(stored: Mapping[str, Any]) -> ServicePort:
    name = stored.get("name")
    return ServicePort(
        _whole(stored["port"]),
        _text(stored.get("protocol") or "tcp"),
        None if name is None else _text(name),
    )


def _recipes(stored: Mapping[str, Any]) -> Recipes:
    return Recipes(
        _each(_text)(stored.get("packages") or []),
        _text(stored.get("pre_install") or ""),
        _text(stored.get("post_install") or ""),
        _text(stored.get("deployment") or ""),
    )
