"""Settings: precedence, the config file, and the docs that describe them."""

from __future__ import annotations

from pathlib import Path

import pytest

from slipway.config import SETTINGS, load_settings, settings_markdown
from slipway.entrypoints.cli.app import global_options
from slipway.errors import InputError
from tests.conftest import REPO


def test_environment_overrides_the_file_and_options_override_both(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('user = "from-file"\ndata_dir = "/from/file"\n')
    env = {"SLIPWAY_CONFIG": str(config), "SLIPWAY_USER": "from-env"}
    settings = load_settings(env)
    assert (settings.user, settings.data_dir) == ("from-env", "/from/file")
    assert settings.database_url == "sqlite:////from/file/slipway.db"
    assert load_settings(env, {"user": "from-flag"}).user == "from-flag"


def test_an_unknown_key_in_the_config_file_is_named(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('usr = "x"\n')
    with pytest.raises(InputError, match="unknown setting 'usr'"):
        load_settings({"SLIPWAY_CONFIG": str(config)})


def test_every_setting_has_a_command_line_option() -> None:
    import inspect

    options = set(inspect.signature(global_options).parameters) - {"ctx"}
    assert options == {s.name for s in SETTINGS}


def test_the_configuration_doc_shows_the_current_table() -> None:
    assert settings_markdown() in (REPO / "docs" / "configuration.md").read_text()


def test_connector_options_come_from_the_operators_cloud_tables(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[clouds.local]\naccelerator = "tcg"\n[clouds.aws]\nmax_attempts = 3\n')
    settings = load_settings({"SLIPWAY_CONFIG": str(config)})
    assert settings.clouds.for_cloud("local") == {"accelerator": "tcg"}
    assert settings.clouds.for_cloud("aws") == {"max_attempts": 3}
    assert settings.clouds.for_cloud("other") == {}
    hash(settings)  # one runtime per settings: they stay hashable


def test_a_cloud_option_that_is_not_a_plain_value_is_named(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[clouds.local]\nqemu = ["a", "b"]\n')
    with pytest.raises(InputError, match=r"clouds\.local\.qemu: expected a string"):
        load_settings({"SLIPWAY_CONFIG": str(config)})


def test_log_in_limits_come_from_the_settings_and_a_bad_one_is_named() -> None:
    env = {"SLIPWAY_CONFIG": "/nonexistent", "SLIPWAY_LOGIN_FAILURES": "3"}
    limits = load_settings(env, {"login_lockout": "60"}).login_limits
    assert (limits.account.limit, limits.account.lockout_s, limits.address.limit) == (3, 60, 30)
    for name, value in (("login_window", "0"), ("login_per_address", "many")):
        with pytest.raises(InputError, match=rf"{name} must be a whole number"):
            _ = load_settings(env, {name: value}).login_limits
