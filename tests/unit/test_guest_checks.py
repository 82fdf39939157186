"""What ``image test`` concludes from what a guest printed: canned output of
the checks script, as a Debian 12 guest prints it."""

from __future__ import annotations

import json

from slipway.services.guest_checks import (
    GUEST_CHECKS,
    CheckStatus,
    check_datasource,
    check_failed_units,
    check_firewall,
    check_host_keys,
    check_password,
    check_root_fs,
    checks_script,
    cloud_init_errors,
    cloud_init_status,
    evaluate,
)

GIB = 1024**3
DISK = 3 * GIB

STATUS_JSON = json.dumps(
    {
        "v1": {
            "datasource": "DataSourceNoCloud [seed=/dev/vdb][dsmode=net]",
            "init": {"errors": [], "finished": 1795928295.09, "start": 1795928275.46},
            "modules-final": {"errors": [], "finished": 1795928359.38, "start": 1795928352.05},
            "stage": None,
        }
    }
)


def _nft(*chains: tuple[str, str, str]) -> str:
    items: list[dict[str, object]] = [{"metainfo": {"version": "1.0.6"}}]
    for family, hook, policy in chains:
        items.append(
            {
                "chain": {
                    "family": family,
                    "table": "filter",
                    "name": hook,
                    "type": "filter",
                    "hook": hook,
                    "prio": 0,
                    "policy": policy,
                }
            }
        )
    return json.dumps({"nftables": items})


EXAMPLE_OUTPUT = f"""\
@@ root-fs
 1B-blocks Filesystem
3129757696 /dev/vda1
@@ failed-units
@@ host-keys
1795928214
1795928294 /etc/ssh/ssh_host_ecdsa_key
1795928294 /etc/ssh/ssh_host_ed25519_key
@@ datasource
{STATUS_JSON}
@@ firewall
tool nftables
unit active
{_nft(("inet", "input", "drop"), ("inet", "forward", "drop"), ("inet", "output", "accept"))}
@@ no-password
slipway:!:20786:0:99999:7:::
"""


def test_the_example_image_passes_every_check() -> None:
    results = evaluate(EXAMPLE_OUTPUT, disk_bytes=DISK, login_user="slipway")
    assert [r.name for r in results] == list(GUEST_CHECKS)
    assert [(r.name, r.detail) for r in results if not r.ok] == []
    details = {r.name: r.detail for r in results}
    assert details["root-fs"] == "/ (/dev/vda1) is 2.91 GiB on a 3.00 GiB disk: grown at first boot"
    assert details["host-keys"] == "ecdsa, ed25519 generated at this boot (80 s after it began)"
    assert details["datasource"] == "DataSourceNoCloud [seed=/dev/vdb][dsmode=net]"
    assert details["firewall"] == "nftables (active): input policy drop for IPv4 and IPv6"


def test_a_check_without_output_fails_as_not_run() -> None:
    partial = EXAMPLE_OUTPUT.split("@@ firewall")[0]
    results = {r.name: r for r in evaluate(partial, disk_bytes=DISK, login_user="slipway")}
    assert results["firewall"].status is CheckStatus.FAILED
    assert "did not run" in results["firewall"].detail
    assert results["no-password"].status is CheckStatus.FAILED
    assert results["root-fs"].ok


def test_a_root_file_system_that_kept_the_image_size_did_not_grow() -> None:
    result = check_root_fs(" 1B-blocks Filesystem\n2086600704 /dev/vda1\n", DISK)
    assert result.status is CheckStatus.FAILED
    assert result.detail.startswith("/ (/dev/vda1) is 1.94 GiB on a 3.00 GiB disk: it did not grow")


def test_unreadable_df_output_fails_the_root_fs_check() -> None:
    result = check_root_fs("df: /: No such file or directory\n", DISK)
    assert result.status is CheckStatus.FAILED and "cannot read the size of /" in result.detail


def test_failed_units_are_named() -> None:
    text = (
        "nftables.service loaded failed failed nftables\n"
        "● systemd-networkd-wait-online.service loaded failed failed Wait for Network\n"
    )
    result = check_failed_units(text)
    assert result.status is CheckStatus.FAILED
    assert result.detail == "failed: nftables.service, systemd-networkd-wait-online.service"


def test_systemctl_that_cannot_reach_systemd_fails_rather_than_passes() -> None:
    result = check_failed_units("Failed to connect to bus: No such file or directory\n")
    assert result.status is CheckStatus.FAILED and "cannot ask systemd" in result.detail


def test_host_keys_older_than_the_boot_were_baked_into_the_image() -> None:
    text = (
        "1795928214\n"
        "1795000000 /etc/ssh/ssh_host_rsa_key\n"
        "1795928294 /etc/ssh/ssh_host_ed25519_key\n"
    )
    result = check_host_keys(text)
    assert result.status is CheckStatus.FAILED
    assert result.detail.startswith("/etc/ssh/ssh_host_rsa_key older than this boot: baked")


def test_no_host_keys_at_all_fails() -> None:
    result = check_host_keys("1795928214\n")
    assert result.status is CheckStatus.FAILED and result.detail == "no SSH host keys in /etc/ssh"


def test_the_none_datasource_means_the_seed_was_not_found() -> None:
    status = json.dumps({"v1": {"datasource": "DataSourceNone", "init": {"errors": []}}})
    result = check_datasource(status)
    assert result.status is CheckStatus.FAILED
    assert "found no datasource (DataSourceNone)" in result.detail


def test_another_datasource_than_nocloud_fails() -> None:
    status = json.dumps({"v1": {"datasource": "DataSourceEc2Local"}})
    result = check_datasource(status)
    assert result.status is CheckStatus.FAILED and "DataSourceEc2Local" in result.detail


def test_a_missing_status_file_fails_the_datasource_check() -> None:
    result = check_datasource("cat: /run/cloud-init/status.json: No such file or directory")
    assert result.status is CheckStatus.FAILED and "no cloud-init status" in result.detail


def test_cloud_init_errors_are_collected_from_every_stage() -> None:
    status = json.dumps(
        {
            "v1": {
                "datasource": "DataSourceNoCloud",
                "init": {"errors": []},
                "modules-config": {"errors": ["('set_passwords', ValueError('bad'))"]},
                "stage": None,
            }
        }
    )
    assert cloud_init_errors(status) == ["modules-config: ('set_passwords', ValueError('bad'))"]
    assert cloud_init_errors("not json") == []


def test_cloud_init_status_reads_the_last_word_of_status_wait() -> None:
    assert cloud_init_status("......\nstatus: done\n") == "done"
    assert cloud_init_status("status: running\n") == "running"
    assert cloud_init_status("status: not run\n") == "not run"
    assert cloud_init_status("status: error\n") == "error"
    assert cloud_init_status("status: done\nextended_status: degraded done\n") == "degraded"
    assert cloud_init_status("......") is None


def test_an_nftables_ruleset_that_drops_only_ipv4_leaves_ipv6_open() -> None:
    text = "tool nftables\nunit active\n" + _nft(("ip", "input", "drop"))
    result = check_firewall(text)
    assert result.status is CheckStatus.FAILED
    assert result.detail == "nftables (active): IPv6 input is not filtered"


def test_nftables_installed_but_not_loaded_lets_everything_in() -> None:
    text = "tool nftables\nunit inactive\n" + _nft()
    result = check_firewall(text)
    assert result.status is CheckStatus.FAILED
    assert result.detail.startswith("nftables (inactive): no input chain with policy drop")


def test_separate_ip_and_ip6_tables_count_for_both_families() -> None:
    text = "tool nftables\nunit active\n" + _nft(("ip", "input", "drop"), ("ip6", "input", "drop"))
    assert check_firewall(text).ok


def test_no_firewall_installed_fails_with_a_clear_message() -> None:
    result = check_firewall("tool none\n")
    assert result.status is CheckStatus.FAILED
    assert result.detail.startswith("no firewall: neither ufw, firewalld, nftables nor iptables")


def test_ufw_and_firewalld_are_read_as_they_report_themselves() -> None:
    assert check_firewall("tool ufw\nStatus: active\n\nTo Action From\n").ok
    assert not check_firewall("tool ufw\nStatus: inactive\n").ok
    assert check_firewall("tool firewalld\nrunning\n").ok
    assert not check_firewall("tool firewalld\nnot running\n").ok


def test_iptables_needs_a_drop_policy_for_ipv4_and_ipv6() -> None:
    assert check_firewall("tool iptables\n-P INPUT DROP\n-P INPUT DROP\n").ok
    result = check_firewall("tool iptables\n-P INPUT DROP\n-P INPUT ACCEPT\n")
    assert result.status is CheckStatus.FAILED


def test_a_locked_or_starred_password_field_is_no_password() -> None:
    for field in ("!", "*", "!*", "!!"):
        assert check_password(f"slipway:{field}:20786:0:99999:7:::", "slipway").ok, field


def test_a_password_hash_fails_even_when_locked() -> None:
    hashed = check_password("slipway:$y$j9T$abc$def:20786:0:99999:7:::", "slipway")
    assert hashed.status is CheckStatus.FAILED
    assert hashed.detail == "slipway has a password hash in /etc/shadow"
    locked = check_password("slipway:!$y$j9T$abc$def:20786:0:99999:7:::", "slipway")
    assert locked.detail.endswith("(locked, but the hash is there)")


def test_an_empty_password_field_lets_anyone_in() -> None:
    result = check_password("slipway::20786:0:99999:7:::", "slipway")
    assert result.status is CheckStatus.FAILED and "empty password" in result.detail


def test_a_missing_shadow_entry_fails() -> None:
    assert check_password("", "slipway").detail == "slipway has no entry in /etc/shadow"


def test_the_script_quotes_the_login_user_and_prints_every_section() -> None:
    script = checks_script("slipway")
    for name in GUEST_CHECKS:
        assert f"echo '@@ {name}'" in script
    assert "getent shadow slipway" in script
    assert "getent shadow 'a b'" in checks_script("a b")
