"""Slipway's settings: one table that yields the file keys, the environment
variables, the docs and a frozen :class:`Settings` object passed explicitly.

Precedence, lowest first: built-in default, the config file
(``$SLIPWAY_CONFIG`` or ``<config dir>/config.toml``), environment variables,
then what a command line sets through :func:`load_settings` ``overrides``.
Nothing here is read at import time.
"""

from __future__ import annotations

import getpass
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import platformdirs

from slipway.domain.lockouts import LockoutRule, LoginLimits
from slipway.errors import InputError

__all__ = [
    "SETTINGS",
    "CloudOptions",
    "Setting",
    "Settings",
    "load_settings",
    "settings_markdown",
]


def _data_dir() -> str:
    return platformdirs.user_data_dir("slipway", appauthor=False)


def _config_dir() -> str:
    return platformdirs.user_config_dir("slipway", appauthor=False)


def _default_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry, e.g. in a bare container
        return "local"


@dataclass(frozen=True)
class Setting:
    name: str
    help: str
    default: Callable[[Settings | None], str]


def _default_database_url(partial: Settings | None) -> str:
    assert partial is not None
    return "sqlite:///" + str(Path(partial.data_dir) / "slipway.db")


def _default_queue_url(partial: Settings | None) -> str:
    assert partial is not None
    return "sqlite:///" + str(Path(partial.data_dir) / "queue.db")


def _default_public_key(_: Settings | None) -> str:
    for name in ("id_ed25519.pub", "id_ecdsa.pub", "id_rsa.pub"):
        candidate = Path.home() / ".ssh" / name
        if candidate.is_file():
            return str(candidate)
    return ""


_LIMITS = LoginLimits()

SETTINGS: tuple[Setting, ...] = (
    Setting(
        "data_dir", "Folder for the store, the image store, caches and runs.", lambda _: _data_dir()
    ),
    Setting(
        "database_url",
        "SQLAlchemy URL of the catalog store (SQLite or PostgreSQL).",
        _default_database_url,
    ),
    Setting("user", "The user the command line acts as.", lambda _: _default_user()),
    Setting(
        "queue_url",
        "Task queue: sqlite:///FILE on one machine, redis://HOST:PORT/DB "
        "when workers run on several.",
        _default_queue_url,
    ),
    Setting(
        "ssh_public_key",
        "Your SSH public key file, installed on every machine you deploy "
        "(besides the run's own key).",
        _default_public_key,
    ),
    Setting("worker_threads", "Threads per worker process that move runs along.", lambda _: "8"),
    Setting(
        "host",
        "Address `slipway serve` listens on (0.0.0.0 for every interface).",
        lambda _: "127.0.0.1",
    ),
    Setting("port", "TCP port `slipway serve` listens on.", lambda _: "8000"),
    Setting(
        "login_failures",
        "Wrong passwords an account may get within `login_window` before its log-ins wait "
        "`login_lockout`; a right one starts the count afresh.",
        lambda _: str(_LIMITS.account.limit),
    ),
    Setting(
        "login_window",
        "Seconds over which an account's wrong passwords are counted.",
        lambda _: f"{_LIMITS.account.window_s:g}",
    ),
    Setting(
        "login_lockout",
        "Seconds an account's log-ins wait once it had `login_failures` wrong passwords "
        "(and after each further one within `login_window`).",
        lambda _: f"{_LIMITS.account.lockout_s:g}",
    ),
    Setting(
        "login_per_address",
        "Log-ins one client address may try per minute, right or wrong, before it waits a minute.",
        lambda _: str(_LIMITS.address.limit),
    ),
)


OptionValue = str | int | float | bool


@dataclass(frozen=True)
class CloudOptions:
    """How the server reaches each cloud — connector options (binaries,
    endpoints, profiles, accelerators) from the ``[clouds.NAME]`` tables of the
    config file. Only the operator writes these; definitions never can."""

    tables: tuple[tuple[str, tuple[tuple[str, OptionValue], ...]], ...] = ()

    @classmethod
    def of(cls, tables: Mapping[str, Mapping[str, OptionValue]]) -> CloudOptions:
        return cls(tuple((name, tuple(sorted(o.items()))) for name, o in sorted(tables.items())))

    def for_cloud(self, name: str) -> dict[str, OptionValue]:
        return next((dict(options) for cloud, options in self.tables if cloud == name), {})


@dataclass(frozen=True)
class Settings:
    data_dir: str
    database_url: str
    user: str
    queue_url: str
    ssh_public_key: str
    worker_threads: str
    host: str
    port: str
    login_failures: str = str(_LIMITS.account.limit)
    login_window: str = f"{_LIMITS.account.window_s:g}"
    login_lockout: str = f"{_LIMITS.account.lockout_s:g}"
    login_per_address: str = str(_LIMITS.address.limit)
    clouds: CloudOptions = CloudOptions()

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir)

    @property
    def port_number(self) -> int:
        """``port`` as a number; a bad one is an input error naming the setting."""
        if not self.port.isdigit() or not 1 <= int(self.port) <= 65535:
            raise InputError(f"port must be a number from 1 to 65535, got {self.port!r}")
        return int(self.port)

    @property
    def login_limits(self) -> LoginLimits:
        """The log-in lockout rules; a bad number is an input error naming its setting."""

        def number(name: str, low: int, high: int) -> int:
            value: str = getattr(self, name)
            if not value.isdigit() or not low <= int(value) <= high:
                raise InputError(
                    f"{name} must be a whole number from {low} to {high}, got {value!r}"
                )
            return int(value)

        day = 24 * 3600
        window = number("login_window", 1, day)
        account = LockoutRule(
            number("login_failures", 1, 1000), window, number("login_lockout", 1, day)
        )
        per_minute = number("login_per_address", 1, 100_000)
        return LoginLimits(account, LockoutRule(per_minute, 60, 60))


def env_name(setting: Setting) -> str:
    return "SLIPWAY_" + setting.name.upper()


def _read_config_file(env: Mapping[str, str]) -> dict[str, Any]:
    path = Path(env.get("SLIPWAY_CONFIG") or Path(_config_dir()) / "config.toml")
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path}: not valid TOML: {exc}") from exc
    known = {s.name for s in SETTINGS} | {"clouds"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise InputError(
            f"{path}: unknown setting {unknown[0]!r}",
            hint=f"known settings: {', '.join(sorted(known))}",
        )
    for key, value in data.items():
        if key != "clouds" and not isinstance(value, str):
            raise InputError(f"{path}: {key}: expected a string, got {type(value).__name__}")
    data["clouds"] = _cloud_tables(path, data.get("clouds", {}))
    return data


def _cloud_tables(path: Path, clouds: Any) -> CloudOptions:
    if not isinstance(clouds, dict):
        raise InputError(f"{path}: clouds: expected tables like [clouds.local]")
    for name, options in clouds.items():
        if not isinstance(options, dict):
            raise InputError(f"{path}: clouds.{name}: expected a table of connector options")
        for key, value in options.items():
            if not isinstance(value, OptionValue):
                raise InputError(
                    f"{path}: clouds.{name}.{key}: expected a string, number or boolean, "
                    f"got {type(value).__name__}"
                )
    return CloudOptions.of(clouds)


def load_settings(
    env: Mapping[str, str] | None = None, overrides: Mapping[str, str | None] | None = None
) -> Settings:
    """Build the settings from defaults, the config file, ``env`` and ``overrides``."""
    env = os.environ if env is None else env
    values: dict[str, str] = {}
    from_file = _read_config_file(env)
    clouds = from_file.pop("clouds", CloudOptions())
    for setting in SETTINGS:
        value = (
            (overrides or {}).get(setting.name)
            or env.get(env_name(setting))
            or from_file.get(setting.name)
        )
        if value is None:
            blank = {f.name: "" for f in fields(Settings) if f.name != "clouds"}
            partial = Settings(**{**blank, **values})  # type: ignore[arg-type]
            value = setting.default(partial)
        values[setting.name] = value
    return Settings(**values, clouds=clouds)


def settings_markdown() -> str:
    """The settings table as Markdown, for ``docs/configuration.md``."""
    lines = ["| setting | environment | meaning |", "|---|---|---|"]
    for setting in SETTINGS:
        lines.append(f"| `{setting.name}` | `{env_name(setting)}` | {setting.help} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(settings_markdown(), end="")
