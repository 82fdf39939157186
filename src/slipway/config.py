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
    "OperatorTables",
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


def _default_public_url(partial: Settings | None) -> str:
    assert partial is not None
    host = "127.0.0.1" if partial.host in ("", "0.0.0.0", "::") else partial.host
    return f"http://{host}:{partial.port or '8000'}"


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
        "public_url",
        "The address clients reach `slipway serve` at: published image lists and the "
        "image files they name carry URLs under it.",
        _default_public_url,
    ),
    Setting(
        "ca_dir",
        "Trusted CAs for verifying image lists over the API and for subscriptions "
        "(unless one names its own): OpenSSL hashed names (9da13359.0) and CRLs (*.r0), "
        "as the IGTF packages install them.",
        lambda _: "/etc/grid-security/certificates",
    ),
    Setting(
        "fetch_private_addresses",
        "`yes` lets the server download appliance files, and subscriptions' lists and "
        "images, from loopback, private and link-local addresses (its own network); "
        "`no` refuses such URLs.",
        lambda _: "no",
    ),
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
class OperatorTables:
    """Named tables of the config file, which only the operator writes:
    ``[clouds.NAME]`` says how the server reaches each cloud (binaries,
    endpoints, profiles, accelerators), ``[vos.NAME]`` which certificate and
    key sign a VO's list. Definitions and requests never can."""

    tables: tuple[tuple[str, tuple[tuple[str, OptionValue], ...]], ...] = ()

    @classmethod
    def of(cls, tables: Mapping[str, Mapping[str, OptionValue]]) -> OperatorTables:
        return cls(tuple((name, tuple(sorted(o.items()))) for name, o in sorted(tables.items())))

    def options(self, name: str) -> dict[str, OptionValue]:
        """The options of table ``name`` (empty when there is none)."""
        return next((dict(options) for table, options in self.tables if table == name), {})

    def for_cloud(self, name: str) -> dict[str, OptionValue]:
        return self.options(name)


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
    public_url: str = ""
    ca_dir: str = "/etc/grid-security/certificates"
    fetch_private_addresses: str = "no"
    login_failures: str = str(_LIMITS.account.limit)
    login_window: str = f"{_LIMITS.account.window_s:g}"
    login_lockout: str = f"{_LIMITS.account.lockout_s:g}"
    login_per_address: str = str(_LIMITS.address.limit)
    clouds: OperatorTables = OperatorTables()
    vos: OperatorTables = OperatorTables()

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
    def fetches_private(self) -> bool:
        """``fetch_private_addresses`` as a flag; anything but yes/no is an input error."""
        value = self.fetch_private_addresses.strip().lower()
        if value not in ("yes", "no"):
            raise InputError(f"fetch_private_addresses must be yes or no, got {value!r}")
        return value == "yes"

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
    known = {s.name for s in SETTINGS} | set(_TABLES)
    unknown = sorted(set(data) - known)
    if unknown:
        raise InputError(
            f"{path}: unknown setting {unknown[0]!r}",
            hint=f"known settings: {', '.join(sorted(known))}",
        )
    for key, value in data.items():
        if key not in _TABLES and not isinstance(value, str):
            raise InputError(f"{path}: {key}: expected a string, got {type(value).__name__}")
    for table, example in _TABLES.items():
        data[table] = _named_tables(path, table, example, data.get(table, {}))
    return data


_TABLES = {"clouds": "[clouds.local]", "vos": '[vos."vo.example.org"]'}
"""The config file's named tables, each with an example heading."""


def _named_tables(path: Path, table: str, example: str, tables: Any) -> OperatorTables:
    if not isinstance(tables, dict):
        raise InputError(f"{path}: {table}: expected tables like {example}")
    for name, options in tables.items():
        if not isinstance(options, dict):
            raise InputError(f"{path}: {table}.{name}: expected a table of options")
        for key, value in options.items():
            if not isinstance(value, OptionValue):
                raise InputError(
                    f"{path}: {table}.{name}.{key}: expected a string, number or boolean, "
                    f"got {type(value).__name__}"
                )
    return OperatorTables.of(tables)


def load_settings(
    env: Mapping[str, str] | None = None, overrides: Mapping[str, str | None] | None = None
) -> Settings:
    """Build the settings from defaults, the config file, ``env`` and ``overrides``."""
    env = os.environ if env is None else env
    values: dict[str, str] = {}
    from_file = _read_config_file(env)
    clouds = from_file.pop("clouds", OperatorTables())
    vos = from_file.pop("vos", OperatorTables())
    for setting in SETTINGS:
        value = (
            (overrides or {}).get(setting.name)
            or env.get(env_name(setting))
            or from_file.get(setting.name)
        )
        if value is None:
            blank = {f.name: "" for f in fields(Settings) if f.name not in _TABLES}
            partial = Settings(**{**blank, **values})  # type: ignore[arg-type]
            value = setting.default(partial)
        values[setting.name] = value
    return Settings(**values, clouds=clouds, vos=vos)


def settings_markdown() -> str:
    """The settings table as Markdown, for ``docs/configuration.md``."""
    lines = ["| setting | environment | meaning |", "|---|---|---|"]
    for setting in SETTINGS:
        lines.append(f"| `{setting.name}` | `{env_name(setting)}` | {setting.help} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(settings_markdown(), end="")
