"""The root file system of a built image: bootstrap with mmdebstrap, write the
cloud configuration and the recipe's files, run its steps, then remove
everything that must not ship (host keys, machine-id, logs, histories, caches).
"""

from __future__ import annotations

import os
import shlex
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

from slipway.errors import ToolError
from slipway.imagekit import first_boot
from slipway.imagekit.disk import DiskLayout, grub_config
from slipway.imagekit.distribution import Distribution
from slipway.imagekit.first_boot import FirstBoot
from slipway.imagekit.recipe import Recipe, RecipeFile
from slipway.imagekit.tools import run, run_reporting

__all__ = ["DPKG_EXCLUDES", "bootstrap", "clean", "package_manifest"]

SSHD_CFG = """\
# Written by slipway image build: keys only, never root.
PermitRootLogin no
PasswordAuthentication no
KbdInteractiveAuthentication no
"""

# Documentation, manual pages and translations are dead weight in a cloud image.
DPKG_EXCLUDES = (
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/locale/*",
    "path-include=/usr/share/locale/locale.alias",
    "path-exclude=/usr/share/lintian/*",
)


def _system_files(layout: DiskLayout, profile: FirstBoot) -> list[RecipeFile]:
    fstab = f"UUID={layout.fs_uuid} / ext4 errors=remount-ro 0 1\n"
    hosts = "127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n"
    grub_cfg = grub_config(layout, timeout=first_boot.grub_timeout(profile))
    extra = [RecipeFile(p, c, m) for p, (c, m) in first_boot.files(profile).items()]
    return [
        *extra,
        RecipeFile("/etc/cloud/cloud.cfg.d/90_slipway.cfg", first_boot.cloud_cfg(profile).encode()),
        RecipeFile("/etc/ssh/sshd_config.d/50-slipway.conf", SSHD_CFG.encode()),
        RecipeFile("/etc/fstab", fstab.encode()),
        RecipeFile("/etc/hostname", b"localhost\n"),
        RecipeFile("/etc/hosts", hosts.encode()),
        RecipeFile("/boot/grub/grub.cfg", grub_cfg.encode()),
    ]


def _stage(files: list[RecipeFile], staging: Path) -> None:
    for item in files:
        dest = staging / item.path.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(item.content)
        dest.chmod(item.mode)


def bootstrap(
    recipe: Recipe,
    rootfs: Path,
    workdir: Path,
    cache: Path,
    layout: DiskLayout,
    on_step: Callable[[str], None] | None = None,
) -> None:
    """Bootstrap ``rootfs`` with mmdebstrap (as root), customised by ``recipe``.

    Downloaded packages are kept in ``cache`` and offered to the next build;
    ``on_step`` hears mmdebstrap's own phases as they start.
    """
    if os.geteuid() != 0:
        raise ToolError(
            "mmdebstrap",
            "building an image needs root (mmdebstrap --mode=root)",
            hint="run the build as root, e.g. with sudo",
        )
    dist = Distribution(recipe.distribution)
    traits = dist.traits
    suite = dist.suite(recipe.release)
    assert suite is not None  # the recipe was validated
    staging = workdir / "staging"
    _stage([*_system_files(layout, recipe.first_boot), *recipe.files], staging)
    early = workdir / "early"
    early_files = first_boot.early_files(recipe.first_boot)
    _stage([RecipeFile(p, c, m) for p, (c, m) in early_files.items()], early)
    early.mkdir(parents=True, exist_ok=True)
    steps = workdir / "steps"
    steps.mkdir(parents=True, exist_ok=True)
    commands = [
        *first_boot.late_commands(recipe.first_boot),
        *recipe.steps,
        *first_boot.final_commands(recipe.first_boot),
    ]
    for i, step in enumerate(commands):
        (steps / f"{i:02d}.sh").write_text(step + "\n", encoding="utf-8")
    cache.mkdir(parents=True, exist_ok=True)
    packages = [*traits.base_packages, traits.kernel_package, *recipe.packages]
    q = shlex.quote
    archives = '"$1"/var/cache/apt/archives'
    untar = 'tar -C "$1" -x --keep-directory-symlink --no-overwrite-dir --no-same-owner'
    hooks = [
        "--setup-hook=mkdir -p " + archives,
        f'--setup-hook=for f in {q(str(cache))}/*.deb; do [ -e "$f" ] || continue; '
        f'cp -l "$f" {archives}/ 2>/dev/null || cp "$f" {archives}/; done',
        f'--customize-hook=for f in {archives}/*.deb; do [ -e "$f" ] || continue; '
        f'[ -e {q(str(cache))}/"${{f##*/}}" ] || cp -l "$f" {q(str(cache))}/ 2>/dev/null '
        f'|| cp "$f" {q(str(cache))}/; done',
        # Before the kernel's package: its first initramfs is already the right one.
        f"--essential-hook=tar -C {q(str(early))} -c . | {untar}",
        # --no-overwrite-dir: a file for /root must not make /root 0755.
        f"--customize-hook=tar -C {q(str(staging))} -c . | {untar}",
    ]
    for script in sorted(steps.iterdir()):
        hooks += [
            f'--customize-hook=cp {q(str(script))} "$1"/tmp/slipway-step.sh',
            '--customize-hook=chroot "$1" env DEBIAN_FRONTEND=noninteractive '
            "/bin/sh -eu /tmp/slipway-step.sh",
        ]
    args: list[str | Path] = [
        "mmdebstrap",
        "--variant=minbase",
        "--mode=root",
        "--format=directory",
        f"--architectures={recipe.arch}",
        f"--components={','.join(traits.components)}",
        "--include=" + ",".join(packages),
        *(f"--dpkgopt={opt}" for opt in DPKG_EXCLUDES),
        "--skip=essential/unlink",
        *hooks,
        suite,
        rootfs,
        recipe.mirror or traits.mirror,
    ]
    if dist is not Distribution.DEBIAN and Path(traits.keyring).exists():
        args.insert(1, f"--keyring={traits.keyring}")

    def report(line: str) -> None:
        # mmdebstrap's "I: installing remaining packages…" lines are its phases.
        if on_step is not None and line.startswith("I: "):
            on_step(line[3:].rstrip("."))

    run_reporting(args, report)


def package_manifest(rootfs: Path) -> list[tuple[str, str, str]]:
    """Installed packages as (name, version, architecture), sorted by name."""
    proc = run(
        [
            "dpkg-query",
            f"--admindir={rootfs / 'var/lib/dpkg'}",
            "-W",
            "-f=${Package}\t${Version}\t${Architecture}\n",
        ]
    )
    rows = [line.split("\t") for line in proc.stdout.decode().splitlines() if line]
    return sorted((r[0], r[1], r[2]) for r in rows)


def _files(root: Path, pattern: str) -> Iterator[Path]:
    yield from (p for p in root.glob(pattern) if p.is_file() or p.is_symlink())


def clean(rootfs: Path) -> list[str]:
    """Remove what must not ship; return the image paths removed or emptied."""
    removed: list[str] = []

    def drop(path: Path) -> None:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
        removed.append("/" + str(path.relative_to(rootfs)))

    for pattern in (
        "etc/ssh/ssh_host_*",
        "root/.bash_history",
        "root/.*_history",
        "home/*/.*_history",
        "root/.ssh",
        "home/*/.ssh/authorized_keys*",
        "var/lib/dbus/machine-id",
        "etc/resolv.conf",
        "var/lib/systemd/random-seed",
        "etc/*-",
        "var/cache/apt/*.bin",
        "var/cache/apt/archives/*.deb",
        "var/cache/debconf/*-old",
        "var/lib/dpkg/*-old",
    ):
        for path in list(rootfs.glob(pattern)):
            if path.exists() or path.is_symlink():
                drop(path)
    for folder in ("var/lib/cloud", "tmp", "var/tmp", "var/lib/apt/lists"):
        for path in list((rootfs / folder).glob("*")):
            if path.name not in {"lock", "partial"}:
                drop(path)
    for path in list(_files(rootfs, "var/log/**/*")):
        drop(path)
    (rootfs / "etc/machine-id").write_bytes(b"")
    _lock_accounts(rootfs / "etc/shadow")
    return removed


def _lock_accounts(shadow: Path) -> None:
    """No account may have a password: empty fields and hashes become ``*``."""
    lines = shadow.read_text(encoding="utf-8").splitlines()
    out = []
    for line in lines:
        fields = line.split(":")
        if len(fields) > 1 and not fields[1].startswith(("*", "!")):
            fields[1] = "*"
        out.append(":".join(fields))
    shadow.write_text("\n".join(out) + "\n", encoding="utf-8")
