"""What makes an image's first boot fast, and the stock settings it replaces.

Every second of a first boot is paid by every user on every deploy, and
under emulation (TCG) cloud-init with its stock settings is most of a Debian
boot. A recipe's ``first_boot`` picks one of two profiles:

``fast`` (the default)
    cloud-init runs in one process (:mod:`slipway.imagekit.cloud_init_preload`:
    Python and cloud-init are loaded once, early, instead of once per stage)
    and only the modules a cloud image uses: users and keys,
    hostname and ``/etc/hosts``, growing ``/``, mounts, ``bootcmd``,
    ``write_files``, ``runcmd`` and user scripts, packages, phone-home,
    power state and the final message. It generates only the host-key types
    that are cheap to make (Ed25519, ECDSA — never RSA, whose key generation
    dominates first boot under emulation) and probes only the usual cloud
    datasources. The files cloud-init's import reads are recorded at build
    time and read ahead at boot. The locale is written at build time rather
    than by cloud-init, the initramfs carries only the disk drivers clouds
    use, units and systemd generators a cloud VM never needs are masked, kvm
    is loaded on request only, sshd starts without a dry run, and GRUB does
    not wait.
``stock``
    The distribution's own cloud-init module lists, datasources and host-key
    types, its initramfs and units, a GRUB menu that waits one second: the
    baseline the ``fast`` profile is measured against
    (``bench/boot_time.py``). Both profiles keep every guideline of the
    image kit (no password, no root login, host keys made at first boot).

What ``fast`` leaves out of cloud-init — Puppet, Chef, Salt, Landscape, LXD,
snap, ``ssh_import_id``, ``chpasswd``/``password``, ``apt:`` sources, NTP
configuration, keyboard layouts — is documented in docs/imagekit.md; a recipe
that needs one uses ``first_boot: stock``.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from slipway.imagekit.cloud_init_preload import READ_AHEAD

__all__ = [
    "CLOUD_MODULES",
    "DISK_DRIVERS",
    "MASKED_GENERATORS",
    "MASKED_UNITS",
    "NOT_AUTOLOADED",
    "FirstBoot",
    "cloud_cfg",
    "early_files",
    "files",
    "final_commands",
    "grub_timeout",
    "late_commands",
]


class FirstBoot(StrEnum):
    """A recipe's ``first_boot`` profile."""

    FAST = "fast"
    STOCK = "stock"


# The guidelines of DESIGN.md §8, whatever the profile.
_GUIDELINES = """\
ssh_deletekeys: true
disable_root: true
ssh_pwauth: false
manage_etc_hosts: true
locale: C.UTF-8
"""

_DATASOURCES = "[NoCloud, ConfigDrive, OpenStack, Ec2, Exoscale, GCE, Azure, None]"

CLOUD_MODULES: dict[str, tuple[str, ...]] = {
    "cloud_init_modules": (
        "bootcmd",
        "write_files",
        "mounts",
        "set_hostname",
        "update_hostname",
        "update_etc_hosts",
        "users_groups",
        "ssh",
    ),
    # Growing / takes seconds of shell under emulation; here it runs while
    # sshd already answers, and still before runcmd, packages and scripts.
    "cloud_config_modules": ("growpart", "resizefs", "timezone", "runcmd"),
    "cloud_final_modules": (
        "package_update_upgrade_install",
        "write_files_deferred",
        "scripts_vendor",
        "scripts_per_once",
        "scripts_per_boot",
        "scripts_per_instance",
        "scripts_user",
        "keys_to_console",
        "phone_home",
        "final_message",
        "power_state_change",
    ),
}
"""cloud-init's modules per stage in the ``fast`` profile (the stock lists
have 15, 13 and 23)."""

DISK_DRIVERS = (
    "virtio_pci",
    "virtio_blk",
    "virtio_scsi",
    "sd_mod",
    "ata_piix",
    "ahci",
    "xen-blkfront",
    "hv_storvsc",
)
"""Block drivers the ``fast`` initramfs carries (KVM, Xen, Hyper-V, emulated
IDE/SATA); NVMe and ext4 are built into the cloud kernel."""

MASKED_UNITS = (
    "e2scrub_reap.service",
    "e2scrub_all.timer",
    "getty-static.service",
    "systemd-pstore.service",
    "modprobe@dm_mod.service",
    "modprobe@loop.service",
)
"""Units a cloud VM never needs at boot: ext4 snapshot scrubbing (no LVM),
gettys on virtual consoles nobody can log in on (no passwords), the pstore
archive (no persistent store on a cloud VM), and loading device-mapper and
loop ahead of use (both load on first use of their device nodes)."""

MASKED_GENERATORS = (
    "systemd-gpt-auto-generator",
    "systemd-hibernate-resume-generator",
    "systemd-system-update-generator",
    "systemd-integritysetup-generator",
    "systemd-veritysetup-generator",
)
"""systemd generators with nothing to do in a cloud VM: partitions found by
GPT type when ``root=`` and fstab name them already, resuming from a swap
the guidelines forbid, offline updates, dm-integrity and dm-verity volumes
(neither is configured by a cloud). systemd runs every generator before it
starts a single unit; each costs ~0.1 s of CPU under emulation.
``cryptsetup`` stays: encrypted data volumes are a cloud use."""

NOT_AUTOLOADED = ("kvm_intel", "kvm_amd", "kvm")
"""Kernel modules udev would load because the virtual CPU advertises
nested virtualisation: loading kvm costs ~1.5 s of an emulated boot, for a
guest that rarely runs guests itself. ``modprobe kvm_intel`` (or
``kvm_amd``) still loads them."""

_NOT_AUTOLOADED_CONF = "# Written by slipway image build: loaded on request only.\n" + "".join(
    f"blacklist {module}\n" for module in NOT_AUTOLOADED
)

_SSHD_DROP_IN = """\
# Written by slipway image build: sshd checks its configuration as it starts;
# a separate `sshd -t` first only adds a process to the way to a first login.
[Service]
ExecStartPre=
"""

_INITRAMFS_HOOK = """\
#!/bin/sh
# Written by slipway image build: the disk drivers clouds use, nothing else
# (with MODULES=list); udev loads the one the machine has.
case "$1" in prereqs) exit 0 ;; esac
. /usr/share/initramfs-tools/hook-functions
for module in {modules}; do
    manual_add_modules "$module"
done
"""


PRELOAD = "/usr/lib/slipway/cloud-init-preload"
_PRELOAD_UNIT = "slipway-cloud-init-preload"
_STAGES = ("cloud-init-local", "cloud-init", "cloud-config", "cloud-final")
"""The units of cloud-init's four stages; each runs ``cloud-init ARGS``."""
_PRELOAD_SOCKET = f"""\
# Written by slipway image build: where cloud-init's stages find the
# preloaded cloud-init ({PRELOAD}).
[Unit]
Description=cloud-init in one process (socket)
DefaultDependencies=no
Before=cloud-init-local.service shutdown.target
Conflicts=shutdown.target

[Socket]
ListenSequentialPacket=/run/slipway-cloud-init.sock
SocketMode=0600

[Install]
WantedBy=cloud-init.target
"""
_PRELOAD_SERVICE = f"""\
# Written by slipway image build: Python and cloud-init loaded once, early,
# for cloud-init's four stages.
[Unit]
Description=cloud-init in one process
DefaultDependencies=no
Requires={_PRELOAD_UNIT}.socket
After={_PRELOAD_UNIT}.socket
Before=shutdown.target
Conflicts=shutdown.target

[Service]
ExecStart=/usr/bin/python3 {PRELOAD} serve
# What the stages start (runcmd's daemons) outlives this process.
KillMode=process
TasksMax=infinity

[Install]
WantedBy=cloud-init.target
"""
_DROP_IN_HEAD = f"""\
# Written by slipway image build from the unit cloud-init installed: this
# stage runs in the preloaded cloud-init; without it, cloud-init by itself.
[Unit]
Wants={_PRELOAD_UNIT}.socket
After={_PRELOAD_UNIT}.socket

[Service]
ExecStart=
"""
# Each drop-in repeats its unit's ExecStart lines (older units have more than
# one), with cloud-init's own run through the preload. cloud-init 24.3 and
# later run their stages in one process by themselves: then nothing is done.
_INSTALL_PRELOAD = f"""\
shipped="/usr/lib/systemd/system /lib/systemd/system"
local=/etc/systemd/system
unit_file() {{
    for folder in $shipped; do
        [ -e "$folder/$1" ] && echo "$folder/$1" && return 0
    done
    return 1
}}
if unit_file cloud-init-main.service >/dev/null; then
    rm -f $local/{_PRELOAD_UNIT}.socket $local/{_PRELOAD_UNIT}.service
else
    stage="ExecStart=/usr/bin/python3 -S -E {PRELOAD} stage "
    for unit in {" ".join(_STAGES)}; do
        file=$(unit_file $unit.service) || continue
        grep -q '^ExecStart=/usr/bin/cloud-init ' "$file" || continue
        mkdir -p $local/$unit.service.d
        {{ printf '%s' '{_DROP_IN_HEAD}'
          sed -n -e "s|^ExecStart=/usr/bin/cloud-init |$stage|p" -e t -e '/^ExecStart=/p' "$file"
        }} > $local/$unit.service.d/50-slipway-preload.conf
    done
    systemctl enable --quiet {_PRELOAD_UNIT}.socket {_PRELOAD_UNIT}.service
    # What the import reads, read ahead at boot; without the list, nothing is.
    python3 {PRELOAD} record {READ_AHEAD} || rm -f {READ_AHEAD}
fi"""


def files(profile: FirstBoot) -> dict[str, tuple[bytes, int]]:
    """Files (path -> content, mode) written with the recipe's own."""
    if profile is FirstBoot.STOCK:
        return {}
    script = Path(__file__).with_name("cloud_init_preload.py").read_bytes()
    return {
        "/etc/modprobe.d/slipway-not-autoloaded.conf": (_NOT_AUTOLOADED_CONF.encode(), 0o644),
        "/etc/systemd/system/ssh.service.d/50-slipway.conf": (_SSHD_DROP_IN.encode(), 0o644),
        PRELOAD: (b"#!/usr/bin/python3\n" + script, 0o755),
        f"/etc/systemd/system/{_PRELOAD_UNIT}.socket": (_PRELOAD_SOCKET.encode(), 0o644),
        f"/etc/systemd/system/{_PRELOAD_UNIT}.service": (_PRELOAD_SERVICE.encode(), 0o644),
    }


def cloud_cfg(profile: FirstBoot) -> str:
    """The cloud-init configuration the build writes for ``profile``."""
    text = "# Written by slipway image build.\n" + _GUIDELINES
    if profile is FirstBoot.STOCK:
        return text
    text += f"datasource_list: {_DATASOURCES}\n"
    text += "ssh_genkeytypes: [ed25519, ecdsa]\n"
    for stage, modules in CLOUD_MODULES.items():
        text += f"{stage}:\n" + "".join(f"  - {m}\n" for m in modules)
    return text


def early_files(profile: FirstBoot) -> dict[str, tuple[bytes, int]]:
    """Files (path -> content, mode) that must be in place before the kernel
    is installed, so that its first initramfs is already the right one."""
    if profile is FirstBoot.STOCK:
        return {}
    hook = _INITRAMFS_HOOK.format(modules=" ".join(DISK_DRIVERS))
    return {
        "/etc/initramfs-tools/conf.d/slipway.conf": (b"MODULES=list\n", 0o644),
        "/etc/initramfs-tools/hooks/slipway-disk-drivers": (hook.encode(), 0o755),
        "/etc/default/locale": (b"LANG=C.UTF-8\n", 0o644),
    }


def late_commands(profile: FirstBoot) -> tuple[str, ...]:
    """Shell commands run in the image root (chroot) after the packages,
    before the recipe's steps."""
    if profile is FirstBoot.STOCK:
        return ()
    generators = "/etc/systemd/system-generators"
    return (
        f"systemctl mask --quiet {' '.join(MASKED_UNITS)}",
        f"mkdir -p {generators}\n"
        + "".join(f"ln -sf /dev/null {generators}/{name}\n" for name in MASKED_GENERATORS),
    )


def final_commands(profile: FirstBoot) -> tuple[str, ...]:
    """Shell commands run in the image root after the recipe's own steps:
    a step may have installed another cloud-init, so the preload is wired
    to the one the image ends with."""
    if profile is FirstBoot.STOCK:
        return ()
    return (_INSTALL_PRELOAD,)


def grub_timeout(profile: FirstBoot) -> int:
    """Seconds GRUB shows its menu: nobody is there to choose in a cloud."""
    return 1 if profile is FirstBoot.STOCK else 0
