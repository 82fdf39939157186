"""Pieces of a built image that need no tools: GRUB's config, the OVF
descriptor, locking accounts, the cloud-init configuration."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from slipway.imagekit.disk import DiskLayout, grub_config
from slipway.imagekit.first_boot import (
    CLOUD_MODULES,
    MASKED_GENERATORS,
    NOT_AUTOLOADED,
    FirstBoot,
    cloud_cfg,
    early_files,
    files,
    final_commands,
    grub_timeout,
    late_commands,
)
from slipway.imagekit.ova import ovf_descriptor
from slipway.imagekit.rootfs import _lock_accounts

OVF = "{http://schemas.dmtf.org/ovf/envelope/1}"


def test_grub_boots_the_kernel_symlinks_from_the_root_file_system_by_uuid() -> None:
    layout = DiskLayout.new(2 * 1024**3)
    cfg = grub_config(layout)
    assert f"--fs-uuid --set=root {layout.fs_uuid}" in cfg
    assert f"linux /vmlinuz root=UUID={layout.fs_uuid} ro" in cfg
    assert "console=ttyS0" in cfg
    assert layout.blocks == (2 * 1024**3 - 1024**2) // 4096


def test_the_ovf_descriptor_is_xml_that_names_the_disk_and_its_capacity() -> None:
    root = ET.fromstring(ovf_descriptor("img & co", "img-disk1.vmdk", 1234, 2 * 1024**3))
    file_ = root.find(f"{OVF}References/{OVF}File")
    disk = root.find(f"{OVF}DiskSection/{OVF}Disk")
    assert file_ is not None and disk is not None
    assert file_.get(f"{OVF}href") == "img-disk1.vmdk"
    assert file_.get(f"{OVF}size") == "1234"
    assert disk.get(f"{OVF}capacity") == str(2 * 1024**3)
    assert "streamOptimized" in (disk.get(f"{OVF}format") or "")


def test_every_password_in_shadow_is_locked(tmp_path: Path) -> None:
    shadow = tmp_path / "shadow"
    shadow.write_text(
        "root:$6$salt$hash:19000:0:99999:7:::\n"
        "daemon:*:19000:0:99999:7:::\n"
        "guest::19000:0:99999:7:::\n"
        "locked:!$6$x:19000:0:99999:7:::\n"
    )
    _lock_accounts(shadow)
    fields = [line.split(":")[1] for line in shadow.read_text().splitlines()]
    assert fields == ["*", "*", "*", "!$6$x"]


@pytest.mark.parametrize("profile", list(FirstBoot))
def test_every_profile_keeps_the_guidelines_no_root_no_passwords_fresh_host_keys(
    profile: FirstBoot,
) -> None:
    cfg = yaml.safe_load(cloud_cfg(profile))
    assert cfg["ssh_deletekeys"] is True
    assert cfg["disable_root"] is True
    assert cfg["ssh_pwauth"] is False
    assert cfg["manage_etc_hosts"] is True
    assert cfg["locale"] == "C.UTF-8"


def test_the_fast_first_boot_probes_the_usual_clouds_and_makes_no_rsa_host_key() -> None:
    cfg = yaml.safe_load(cloud_cfg(FirstBoot.FAST))
    assert cfg["datasource_list"][0] == "NoCloud"
    assert {"ConfigDrive", "OpenStack", "Ec2", "Exoscale"} <= set(cfg["datasource_list"])
    assert cfg["ssh_genkeytypes"] == ["ed25519", "ecdsa"]


def test_the_fast_first_boot_keeps_what_a_deploy_and_cloud_users_rely_on() -> None:
    cfg = yaml.safe_load(cloud_cfg(FirstBoot.FAST))
    modules = {m for stage in CLOUD_MODULES for m in cfg[stage]}
    # users and keys, growing /, hostname, runcmd and user scripts, packages, the final line
    assert {"users_groups", "ssh", "growpart", "resizefs", "set_hostname"} <= modules
    assert {"runcmd", "scripts_user", "package_update_upgrade_install"} <= modules
    assert {"write_files", "bootcmd", "final_message", "keys_to_console"} <= modules
    assert not {"grub_dpkg", "locale", "set_passwords", "byobu", "snap"} & modules


def test_the_stock_first_boot_leaves_cloud_init_and_the_system_as_shipped() -> None:
    cfg = yaml.safe_load(cloud_cfg(FirstBoot.STOCK))
    assert not {"datasource_list", "ssh_genkeytypes", *CLOUD_MODULES} & set(cfg)
    assert early_files(FirstBoot.STOCK) == {}
    assert late_commands(FirstBoot.STOCK) == ()
    assert grub_timeout(FirstBoot.STOCK) == 1


def test_the_fast_initramfs_lists_the_cloud_disk_drivers_and_grub_does_not_wait() -> None:
    files = early_files(FirstBoot.FAST)
    assert files["/etc/initramfs-tools/conf.d/slipway.conf"][0] == b"MODULES=list\n"
    hook, mode = files["/etc/initramfs-tools/hooks/slipway-disk-drivers"]
    assert mode == 0o755
    assert b"virtio_blk" in hook and b"xen-blkfront" in hook
    assert grub_timeout(FirstBoot.FAST) == 0
    assert "set timeout=0" in grub_config(DiskLayout.new(2 * 1024**3), timeout=0)


def test_the_fast_first_boot_loads_kvm_on_request_only_and_starts_sshd_without_a_dry_run() -> None:
    written = files(FirstBoot.FAST)
    blacklist = written["/etc/modprobe.d/slipway-not-autoloaded.conf"][0].decode()
    assert {f"blacklist {m}" for m in NOT_AUTOLOADED} <= set(blacklist.splitlines())
    assert {"kvm", "kvm_intel", "kvm_amd"} == set(NOT_AUTOLOADED)
    drop_in = written["/etc/systemd/system/ssh.service.d/50-slipway.conf"][0].decode()
    assert "[Service]\nExecStartPre=\n" in drop_in  # clears the unit's `sshd -t`
    assert files(FirstBoot.STOCK) == {}


def test_the_fast_first_boot_skips_generators_with_nothing_to_do_in_a_cloud() -> None:
    script = "\n".join(late_commands(FirstBoot.FAST))
    for name in MASKED_GENERATORS:
        assert f"ln -sf /dev/null /etc/systemd/system-generators/{name}\n" in script
    kept = ("cryptsetup", "fstab", "getty")  # encrypted data volumes, mounts, consoles
    assert not [name for name in MASKED_GENERATORS if any(k in name for k in kept)]


def test_the_fast_first_boot_records_what_cloud_init_reads_for_the_boot_to_read_ahead() -> None:
    (script,) = final_commands(FirstBoot.FAST)
    assert "cloud-init-preload record /usr/lib/slipway/cloud-init-preload.files" in script
    assert final_commands(FirstBoot.STOCK) == ()


def test_clean_removes_keys_histories_logs_state_and_empties_machine_id(tmp_path: Path) -> None:
    from slipway.imagekit.rootfs import clean

    planted = [
        "etc/ssh/ssh_host_ed25519_key",
        "etc/ssh/ssh_host_ed25519_key.pub",
        "root/.bash_history",
        "root/.ssh/authorized_keys",
        "home/debian/.zsh_history",
        "home/debian/.ssh/authorized_keys",
        "var/log/apt/history.log",
        "var/log/journal/x/y",
        "var/lib/cloud/instance/boot-finished",
        "tmp/scratch",
        "var/tmp/scratch",
        "etc/shadow-",
        "var/lib/apt/lists/deb.debian.org_Packages",
        "etc/resolv.conf",
    ]
    kept = [
        "etc/ssh/sshd_config",
        "home/debian/.profile",
        "home/debian/.ssh/config",
        "var/lib/apt/lists/lock",
    ]
    for rel in planted + kept:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x")
    (tmp_path / "etc/machine-id").write_text("0123456789abcdef0123456789abcdef\n")
    (tmp_path / "etc/shadow").write_text("root:$6$x$y:1:0:99999:7:::\n")
    removed = clean(tmp_path)
    assert sorted(removed) == sorted(
        {
            "/" + p
            for p in planted
            if not p.startswith(("var/log/journal", "var/lib/cloud", "root/.ssh"))
        }
        | {"/var/log/journal/x/y", "/var/lib/cloud/instance", "/root/.ssh"}
    )
    for rel in kept:
        assert (tmp_path / rel).exists(), rel
    assert (tmp_path / "etc/machine-id").read_bytes() == b""
    assert (tmp_path / "etc/shadow").read_text().startswith("root:*:")


def _run_install(tmp_path: Path, units: dict[str, str]) -> Path:
    """The preload's install script on a fake root: its unit folders under tmp_path."""
    import subprocess

    from slipway.imagekit.first_boot import final_commands

    shipped = tmp_path / "usr/lib/systemd/system"
    shipped.mkdir(parents=True)
    for name, text in units.items():
        (shipped / name).write_text(text)
    (tmp_path / "etc/systemd/system").mkdir(parents=True)
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin/systemctl").write_text('#!/bin/sh\necho "$@" > "$(dirname $0)/enabled"\n')
    (tmp_path / "bin/systemctl").chmod(0o755)
    script = final_commands(FirstBoot.FAST)[0]
    script = script.replace(
        'shipped="/usr/lib/systemd/system /lib/systemd/system"', f'shipped="{shipped}"', 1
    ).replace("local=/etc/systemd/system", f"local={tmp_path}/etc/systemd/system", 1)
    subprocess.run(
        ["/bin/sh", "-eu", "-c", script],
        env={"PATH": f"{tmp_path}/bin:/usr/bin:/bin"},
        check=True,
    )
    return tmp_path


def test_each_stage_keeps_its_units_other_commands_and_runs_cloud_init_through_the_preload(
    tmp_path: Path,
) -> None:
    # cloud-init 20.4 (Debian 11) has a second command in its local stage
    local = (
        "[Service]\nType=oneshot\nExecStart=/usr/bin/cloud-init init --local\n"
        "ExecStart=/bin/touch /run/cloud-init/network-config-ready\n"
    )
    final = "[Service]\nExecStart=/usr/bin/cloud-init modules --mode=final\n"
    root = _run_install(tmp_path, {"cloud-init-local.service": local, "cloud-final.service": final})
    drop_in = (
        root / "etc/systemd/system/cloud-init-local.service.d/50-slipway-preload.conf"
    ).read_text()
    assert drop_in.splitlines()[-3:] == [
        "ExecStart=",
        "ExecStart=/usr/bin/python3 -S -E /usr/lib/slipway/cloud-init-preload stage init --local",
        "ExecStart=/bin/touch /run/cloud-init/network-config-ready",
    ]
    final_drop_in = root / "etc/systemd/system/cloud-final.service.d/50-slipway-preload.conf"
    assert final_drop_in.read_text().endswith("stage modules --mode=final\n")
    assert "slipway-cloud-init-preload.socket" in (root / "bin/enabled").read_text()


def test_a_cloud_init_that_runs_as_one_process_is_left_as_it_is(tmp_path: Path) -> None:
    root = _run_install(
        tmp_path,
        {
            "cloud-init-main.service": "[Service]\nExecStart=/usr/bin/cloud-init --all-stages\n",
            "cloud-init-local.service": "[Service]\nExecStart=/bin/sh -c 'echo start'\n",
        },
    )
    assert not (root / "etc/systemd/system/cloud-init-local.service.d").exists()
    assert not (root / "bin/enabled").exists()
