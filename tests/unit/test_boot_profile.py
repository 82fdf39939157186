"""Where a boot's time went: canned output of systemd-analyze (systemd 252) and
cloud-init analyze (22.4), as a Debian 12 guest prints it."""

from __future__ import annotations

import pytest

from slipway.services.boot_profile import (
    Cost,
    parse_cloud_init_blame,
    parse_duration,
    parse_startup,
    parse_systemd_blame,
    profile_script,
    read_profile,
)

STARTUP = """\
Startup finished in 15.490s (kernel) + 1min 31.921s (userspace) = 1min 47.411s
multi-user.target reached after 1min 31.102s in userspace
"""

BLAME = """\
25.668s cloud-init-local.service
18.376s cloud-config.service
 1min 2.5s slow-thing.service
    812ms systemd-journald.service
     93us sys-kernel-tracing.mount
16.563s cloud-init.service
"""

CLOUD_INIT_BLAME = """\
-- Boot Record 01 --
     04.95700s (init-network/config-growpart)
     02.66000s (modules-config/config-grub-dpkg)
     00.00200s (modules-final/config-final-message)
     02.10200s (init-local/search-NoCloud)

-- Boot Record 02 --
     09.00000s (init-network/config-growpart)

2 boot records analyzed
"""


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("15.490s", 15.49),
        ("1min 31.921s", 91.921),
        ("812ms", 0.812),
        ("93us", 0.0),
        ("2h 3min", 7380.0),
        ("", None),
        ("soon", None),
        ("12s extra", None),
    ],
)
def test_systemd_durations_read_as_seconds(text: str, seconds: float | None) -> None:
    assert parse_duration(text) == seconds


def test_the_startup_line_gives_the_seconds_of_each_stage() -> None:
    assert parse_startup(STARTUP) == (Cost("kernel", 15.49), Cost("userspace", 91.921))
    with_initrd = "Startup finished in 1.2s (kernel) + 3.5s (initrd) + 20s (userspace) = 24.7s"
    assert [c.name for c in parse_startup(with_initrd)] == ["kernel", "initrd", "userspace"]


def test_a_boot_not_finished_has_no_stages() -> None:
    assert parse_startup("Bootup is not yet finished (org.freedesktop.systemd1...).") == ()


def test_the_slowest_units_come_first_and_only_the_top_ones_are_kept() -> None:
    units = parse_systemd_blame(BLAME, top=3)
    assert units == (
        Cost("slow-thing.service", 62.5),
        Cost("cloud-init-local.service", 25.668),
        Cost("cloud-config.service", 18.376),
    )


def test_cloud_init_modules_come_from_the_first_boot_record_only() -> None:
    modules = parse_cloud_init_blame(CLOUD_INIT_BLAME, top=2)
    assert modules == (
        Cost("init-network/config-growpart", 4.957),
        Cost("modules-config/config-grub-dpkg", 2.66),
    )


def test_the_script_output_becomes_a_profile_and_missing_tools_leave_parts_empty() -> None:
    assert "systemd-analyze time" in profile_script()
    output = f"@@ startup\n{STARTUP}@@ units\n{BLAME}@@ cloud-init\nsh: 1: cloud-init: not found\n"
    profile = read_profile(output)
    assert [c.name for c in profile.stages] == ["kernel", "userspace"]
    assert profile.units[0].name == "slow-thing.service"
    assert profile.cloud_init == ()
    assert profile.to_dict()["stages"][0] == {"name": "kernel", "seconds": 15.49}
