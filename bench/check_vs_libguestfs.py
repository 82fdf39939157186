"""``slipway image check`` against libguestfs on the same images: times, ratio, findings.

The libguestfs route is what one would script without Slipway: ``virt-inspector``
(OS, filesystems, mountpoints, packages) plus one guestfish session (read-only,
``--listen``/``--remote``) that reads the partition table, /etc/shadow,
/etc/passwd, the file list, /etc, /root and /home as tars, and runs ``find`` and
``grep`` in the guest for large files, logs and private-key headers. Its
answers are mapped to the same finding ids as ``check`` so the two can be
compared: the goal is that ``check`` finds everything the libguestfs route finds.

Images: the built example image (clean) and a copy with every planted problem of
the tests at once (qcow2, zlib). Run as root, from the repository:

    LIBGUESTFS_BACKEND=direct LIBGUESTFS_BACKEND_SETTINGS=force_tcg \\
        .venv/bin/python -m bench.check_vs_libguestfs [--runs 3] [IMAGE ...]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import statistics
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

from slipway.imagekit.check import check_image

GUESTFS_ENV = {"LIBGUESTFS_BACKEND": "direct", "LIBGUESTFS_BACKEND_SETTINGS": "force_tcg"}
# Plants that can share one image (two would overwrite root's password).
COMBINED = (
    "swap-partition",
    "lvm-volume",
    "boot-partition",
    "password-hash",
    "login-account",
    "authorized-keys",
    "private-key-by-header",
    "private-key-by-name",
    "shell-history",
    "ssh-host-keys",
    "machine-id",
    "cloud-credentials",
    "swap-fstab",
    "sshd-root-login",
    "network-service",
    "cloud-init-state",
    "logs",
    "free-space-not-zeroed",
    "large-file",
)
_HISTORIES = {".bash_history", ".zsh_history", ".sh_history", ".ash_history", ".python_history"}
_KEY_NAMES = {"id_rsa", "id_dsa", "id_ecdsa", "id_ed25519"}
_KEY_HEADER = re.compile(rb"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----")
_NETWORK = {"nginx", "apache2", "mysql", "postgresql", "rpcbind", "smbd", "vsftpd", "telnet"}


class Guestfish:
    """One read-only libguestfs appliance, driven with ``guestfish --remote``."""

    def __init__(self, image: Path, fmt: str) -> None:
        env = {**os.environ, **GUESTFS_ENV}
        # --listen forks a server that keeps stdout open: read the one line it
        # prints instead of waiting for the end of the output.
        proc = subprocess.Popen(
            ["guestfish", "--listen", "--ro", f"--format={fmt}", "-a", str(image)],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert proc.stdout is not None
        line = proc.stdout.readline()
        proc.stdout.close()
        proc.wait()
        self.pid = re.search(r"GUESTFISH_PID=(\d+)", line).group(1)  # type: ignore[union-attr]
        self.env = env

    def __call__(self, *args: str, check: bool = True) -> str:
        proc = subprocess.run(
            ["guestfish", f"--remote={self.pid}", "--", *args],
            capture_output=True,
            text=True,
            env=self.env,
            check=False,
        )
        if check and proc.returncode != 0:
            raise RuntimeError(f"guestfish {args[0]}: {proc.stderr.strip()}")
        return proc.stdout

    def close(self) -> None:
        self("exit", check=False)


def libguestfs_route(image: Path, fmt: str) -> tuple[set[str], float]:
    """Finding ids the libguestfs route reports, and its wall time in seconds."""
    started = time.monotonic()
    subprocess.run(
        ["virt-inspector", f"--format={fmt}", "-a", str(image)],
        capture_output=True,
        env={**os.environ, **GUESTFS_ENV},
        check=True,
    )
    g = Guestfish(image, fmt)
    found: set[str] = set()
    try:
        g("run")
        roots = g("inspect-os").split()
        found |= _layout(g, roots[0] if roots else None)
        if not roots:
            return found | {"image.no-root-filesystem"}, time.monotonic() - started
        g("mount-ro", roots[0], "/")
        with tempfile.TemporaryDirectory() as tmp:
            g("find0", "/", f"{tmp}/files")
            paths = ["/" + p for p in Path(f"{tmp}/files").read_bytes().decode().split("\0") if p]
            trees: dict[str, bytes] = {}
            for top in ("/etc", "/root", "/home"):
                g("tar-out", top, f"{tmp}/t.tar")
                with tarfile.open(f"{tmp}/t.tar") as tar:
                    for m in tar.getmembers():
                        if m.isfile() and m.size <= 64 * 1024:
                            data = tar.extractfile(m)
                            trees[f"{top}/{m.name.removeprefix('./')}"] = (
                                data.read() if data else b""
                            )
        found |= _files(g, paths, trees)
    finally:
        g.close()
    return found, time.monotonic() - started


def _layout(g: Guestfish, root: str | None) -> set[str]:
    """Swap, LVM, a separate /boot and extra partitions, from what the appliance sees."""
    found: set[str] = set()
    filesystems = dict(line.split(": ", 1) for line in g("list-filesystems").splitlines())
    for fstype in filesystems.values():
        if fstype == "swap":
            found.add("layout.swap-partition")
    for part in g("list-partitions").split():
        mbr = g("part-get-mbr-id", "/dev/sda", part.removeprefix("/dev/sda"), check=False)
        fstype = filesystems.get(part, "unknown")
        if mbr.strip() == "0x8e" or fstype == "LVM2_member":
            found.add("layout.lvm")
        elif mbr.strip() == "0x82" or fstype == "swap":
            found.add("layout.swap-partition")
        elif part != root:
            # Like check: a partition with a kernel or GRUB at its top is /boot.
            names: list[str] = []
            if fstype.startswith("ext"):
                g("mount-ro", part, "/")
                names = g("ls", "/").split()
                g("umount", "/")
            boot = any(n.startswith(("vmlinuz", "initrd", "grub")) for n in names)
            found.add("layout.separate-boot" if boot else "layout.multiple-partitions")
    if root is not None:
        mounts = g("inspect-get-mountpoints", root)
        if re.search(r"^/boot:", mounts, re.MULTILINE):
            found.add("layout.separate-boot")
    return found


def _files(g: Guestfish, paths: list[str], trees: dict[str, bytes]) -> set[str]:
    found: set[str] = set()
    text = {p: d.decode(errors="replace") for p, d in trees.items()}
    for line in text.get("/etc/shadow", "").splitlines():
        secret = [*line.split(":"), ""][1]
        if secret == "":
            found.add("accounts.empty-password")
        elif len(secret.lstrip("!*")) > 1:
            found.add("accounts.password-hash")
    for line in text.get("/etc/passwd", "").splitlines():
        f = line.split(":")
        if (
            len(f) >= 7
            and f[2].isdigit()
            and 1000 <= int(f[2]) < 65534
            and not f[6].endswith(("nologin", "false"))
        ):
            found.add("accounts.login-account")
    names = {p.rsplit("/", 1)[-1] for p in paths}
    hosts = {p for p in paths if re.fullmatch(r"/etc/ssh/ssh_host_\w+_key", p)}
    if hosts:
        found.add("ssh.host-keys")
    if "authorized_keys" in names:
        found.add("ssh.authorized-keys")
    if names & _HISTORIES:
        found.add("secrets.shell-history")
    if names & _KEY_NAMES or any(_KEY_HEADER.search(d) for p, d in trees.items() if p not in hosts):
        found.add("secrets.private-key")
    if any(p.endswith("/.aws/credentials") for p in paths):
        found.add("secrets.cloud-credentials")
    if text.get("/etc/machine-id", "").strip():
        found.add("identity.machine-id")
    if any(
        len(line.split()) > 2 and line.split()[2] == "swap"
        for line in text.get("/etc/fstab", "").splitlines()
        if not line.startswith("#")
    ):
        found.add("layout.swap-fstab")
    sshd = "\n".join(d for p, d in sorted(text.items()) if p.startswith("/etc/ssh/sshd_config"))
    if re.search(r"^\s*PermitRootLogin\s+yes", sshd, re.MULTILINE | re.IGNORECASE):
        found.add("sshd.root-login")
    wants = [p for p in paths if p.startswith("/etc/systemd/system/") and ".wants/" in p]
    if any(p.rsplit("/", 1)[-1].split(".")[0] in _NETWORK for p in wants):
        found.add("services.network")
    if "/usr/bin/cloud-init" not in paths:
        found.add("cloudinit.missing")
    if g("sh", "find /var/lib/cloud -type f | head -1", check=False).strip():
        found.add("cloudinit.state")
    if g("sh", "find /var/log -type f -size +0 | head -1", check=False).strip():
        found.add("logs.present")
    for big in g("sh", "find / -xdev -type f -size +64M", check=False).split():
        owner = g("sh", f"dpkg -S {big} 2>/dev/null || true", check=False)
        if not owner.strip():
            found.add("files.large-unowned")
    return found


def planted_image(folder: Path) -> Path:
    """The built example image with every problem of COMBINED planted, as zlib qcow2."""
    from tests import image_plants as ip
    from tests.imagekit_support import cached_build

    raw = ip.convert(cached_build(), folder / "planted.raw", "raw")
    for name in COMBINED:
        ip.PLANTS[name][1](raw)
    return ip.convert(raw, folder / "planted.qcow2", "qcow2", "-c")


def measure(images: list[Path], runs: int) -> list[dict[str, object]]:
    rows = []
    for image in images:
        times = []
        for _ in range(runs):
            report = check_image(image)
            times.append(report.seconds)
        check_ids = set(report.ids)
        fmt = report.format or "raw"
        guest_ids, guest_seconds = libguestfs_route(image, fmt)
        fast = statistics.median(times)
        rows.append(
            {
                "image": image.name,
                "format": fmt,
                "check_s": round(fast, 2),
                "libguestfs_s": round(guest_seconds, 1),
                "ratio": round(guest_seconds / fast, 1),
                "check_findings": sorted(check_ids),
                "libguestfs_findings": sorted(guest_ids),
                "missed_by_check": sorted(guest_ids - check_ids),
                "only_check": sorted(check_ids - guest_ids),
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("images", nargs="*", type=Path)
    parser.add_argument("--runs", type=int, default=3, help="check runs per image (median)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="slipway-bench-") as tmp:
        images = args.images
        if not images:
            from tests.imagekit_support import cached_build

            images = [cached_build(), planted_image(Path(tmp))]
        rows = measure(images, args.runs)
    out = io.StringIO()
    out.write(
        "| image | format | check (s) | libguestfs (s) | ratio | findings check / libguestfs "
        "| missed by check |\n|---|---|---|---|---|---|---|\n"
    )
    for r in rows:
        out.write(
            f"| {r['image']} | {r['format']} | {r['check_s']} | {r['libguestfs_s']} | "
            f"{r['ratio']}x | {len(r['check_findings'])} / "  # type: ignore[arg-type]
            f"{len(r['libguestfs_findings'])} | "  # type: ignore[arg-type]
            f"{', '.join(r['missed_by_check']) or 'none'} |\n"
        )  # type: ignore[arg-type]
    print(out.getvalue())
    print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
