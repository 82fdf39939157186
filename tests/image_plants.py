"""Small disk images for the image check tests, and the problems planted into them.

A *tiny* image is a tree of a few files laid out like a clean cloud image (one
MBR partition, ext4 written by ``mke2fs -d``): it needs no network and builds
in milliseconds. Problems are planted offline on a raw copy: files with
``debugfs -w``, partitions with ``sfdisk``, stray data with plain writes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

MIB = 1024 * 1024
OFFSET = MIB  # where partition 1 starts in every image made here
TOOLS = ("qemu-img", "qemu-storage-daemon", "debugfs", "e2fsck", "dumpe2fs", "mke2fs", "sfdisk")


def missing_tools(tools: tuple[str, ...] = TOOLS) -> str | None:
    """The first tool that is not installed, or None."""
    for tool in tools:
        if shutil.which(tool) is None and shutil.which(tool, path="/usr/sbin:/sbin") is None:
            return tool
    if not Path("/dev/fuse").exists():
        return "/dev/fuse"
    return None


def run(*args: str | Path, stdin: bytes | None = None) -> str:
    proc = subprocess.run([str(a) for a in args], input=stdin, capture_output=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{args[0]} failed: {proc.stderr.decode(errors='replace')[-500:]}")
    return proc.stdout.decode(errors="replace")


CLEAN_FILES: dict[str, str] = {
    "etc/passwd": "root:x:0:0:root:/root:/bin/bash\n"
    "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
    "sshd:x:100:65534::/run/sshd:/usr/sbin/nologin\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
    "etc/shadow": "root:*:19700:0:99999:7:::\ndaemon:*:19700:0:99999:7:::\n"
    "sshd:!:19700::::::\nnobody:*:19700:0:99999:7:::\n",
    "etc/machine-id": "",
    "etc/fstab": "UUID=0b0e-root / ext4 rw,discard,errors=remount-ro 0 1\n",
    "etc/ssh/sshd_config": "Include /etc/ssh/sshd_config.d/*.conf\n"
    "KbdInteractiveAuthentication no\n"
    "UsePAM yes\nSubsystem sftp /usr/lib/openssh/sftp-server\n",
    "etc/ssh/sshd_config.d/50-slipway.conf": "PasswordAuthentication no\n"
    "PermitRootLogin prohibit-password\n",
    "etc/cloud/cloud.cfg": "disable_root: true\nssh_pwauth: false\n",
    "etc/cloud/cloud.cfg.d/90-datasources.cfg": "datasource_list: [NoCloud, ConfigDrive, "
    "OpenStack, Ec2, None]\n",
    "etc/nftables.conf": "table inet filter {\n chain input {\n"
    "  type filter hook input priority filter; policy drop;\n  tcp dport 22 accept\n }\n}\n",
    "usr/bin/cloud-init": "#!/usr/bin/python3\n",
    "var/lib/dpkg/status": "Package: cloud-init\nStatus: install ok installed\n\n",
    "var/lib/dpkg/info/cloud-init.list": "/usr/bin/cloud-init\n",
}
_UNITS = "/lib/systemd/system"
CLEAN_LINKS = {
    "etc/systemd/system/cloud-init.target.wants/cloud-init.service": f"{_UNITS}/cloud-init.service",
    "etc/systemd/system/multi-user.target.wants/ssh.service": "/lib/systemd/system/ssh.service",
    "etc/systemd/system/sysinit.target.wants/nftables.service": f"{_UNITS}/nftables.service",
}
CLEAN_DIRS = ("root", "home", "var/log", "var/lib/cloud", "tmp", "boot")


def make_tree(root: Path) -> Path:
    """A root tree that passes every check (except none: it is clean)."""
    for d in CLEAN_DIRS:
        (root / d).mkdir(parents=True, exist_ok=True)
    for rel, text in CLEAN_FILES.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (root / "etc/shadow").chmod(0o640)
    for rel, target in CLEAN_LINKS.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.symlink_to(target)
    return root


def make_raw(tree: Path, raw: Path, size_mib: int = 64) -> Path:
    """A sparse raw disk: MBR, one Linux partition at 1 MiB, ext4 from ``tree``."""
    raw.unlink(missing_ok=True)
    with raw.open("wb") as fh:
        fh.truncate(size_mib * MIB)
    run("sfdisk", "-q", raw, stdin=b"start=2048, type=83\n")
    blocks = (size_mib * MIB - OFFSET) // 4096
    run(
        "mke2fs",
        "-q",
        "-F",
        "-t",
        "ext4",
        "-b",
        "4096",
        "-E",
        f"offset={OFFSET}",
        "-d",
        tree,
        raw,
        str(blocks),
    )
    return raw


def convert(src: Path, dst: Path, fmt: str, *options: str) -> Path:
    run("qemu-img", "convert", "-O", fmt, *options, src, dst)
    return dst


def make_ova(vmdk: Path, ova: Path) -> Path:
    """A USTAR OVA: descriptor, manifest, then the disk (the order OVF 1.x asks for)."""
    import hashlib
    import tarfile

    with tempfile.TemporaryDirectory() as tmp:
        ovf = Path(tmp) / "image.ovf"
        ovf.write_text(
            '<?xml version="1.0"?><Envelope><References><File ovf:href="disk.vmdk"/>'
            "</References></Envelope>\n"
        )
        digest = hashlib.sha256(vmdk.read_bytes()).hexdigest()
        mf = Path(tmp) / "image.mf"
        mf.write_text(f"SHA256(disk.vmdk)= {digest}\n")
        with tarfile.open(ova, "w", format=tarfile.USTAR_FORMAT) as tar:
            tar.add(ovf, "image.ovf")
            tar.add(mf, "image.mf")
            tar.add(vmdk, "disk.vmdk")
    return ova


# -- planting problems ---------------------------------------------------------------------


def debugfs_write(raw: Path, commands: list[str], offset: int = OFFSET) -> None:
    with tempfile.NamedTemporaryFile("w", suffix=".cmd") as fh:
        fh.write("\n".join(commands) + "\n")
        fh.flush()
        run("debugfs", "-w", "-f", fh.name, f"{raw}?offset={offset}")


def read_file(raw: Path, path: str, offset: int = OFFSET) -> str:
    return run("debugfs", "-R", f"cat {path}", f"{raw}?offset={offset}")


def put_file(
    raw: Path,
    path: str,
    content: str | bytes,
    mode: int = 0o600,
    gid: int = 0,
    offset: int = OFFSET,
) -> None:
    """Create or replace ``path`` in the image (parents created as needed)."""
    data = content.encode() if isinstance(content, str) else content
    with tempfile.NamedTemporaryFile(delete=False) as src:
        src.write(data)
    parts = path.strip("/").split("/")
    # debugfs's mkdir of an existing directory leaves a half-made inode behind: only
    # make the ones that are missing.
    prefixes = ["/" + "/".join(parts[:i]) for i in range(1, len(parts))]
    mkdirs = [f"mkdir {p}" for p in prefixes if not exists(raw, p, offset)]
    try:
        debugfs_write(
            raw,
            [
                *mkdirs,
                f"rm {path}",
                f"write {src.name} {path}",
                f"sif {path} mode 0{0o100000 | mode:o}",
                f"sif {path} gid {gid}",
            ],
            offset,
        )
    finally:
        Path(src.name).unlink()


def exists(raw: Path, path: str, offset: int = OFFSET) -> bool:
    proc = subprocess.run(
        ["debugfs", "-R", f"stat {path}", f"{raw}?offset={offset}"],
        capture_output=True,
        text=True,
        check=False,
    )
    return "not found" not in proc.stderr


def copy(src: Path, dst: Path) -> Path:
    """A sparse copy (shutil.copyfile would allocate every hole)."""
    run("cp", "--sparse=always", src, dst)
    return dst


def set_root_password(raw: Path, field: str) -> None:
    lines = read_file(raw, "/etc/shadow").splitlines()
    lines = [
        f"root:{field}:" + line.split(":", 2)[2] if line.startswith("root:") else line
        for line in lines
    ]
    put_file(raw, "/etc/shadow", "\n".join(lines) + "\n", mode=0o640, gid=42)


def free_block(raw: Path, offset: int = OFFSET, blocks: int = 2048) -> int:
    """A byte offset in the disk where ``blocks`` free filesystem blocks start."""
    out = run("dumpe2fs", f"{raw}?offset={offset}")
    for line in out.splitlines():
        if line.strip().startswith("Free blocks: ") and "-" in line:
            for part in line.split(":", 1)[1].split(","):
                lo, _, hi = part.strip().partition("-")
                if hi and int(hi) - int(lo) >= blocks + 16:
                    return offset + (int(lo) + 8) * 4096
    raise RuntimeError("no free range large enough")


def dirty_free_space(raw: Path, size: int = 8 * MIB) -> None:
    at = free_block(raw, blocks=size // 4096)
    with raw.open("r+b") as fh:
        fh.seek(at)
        fh.write(os.urandom(size))


def add_partition(raw: Path, size_mib: int, type_code: str) -> int:
    """Grow the disk by ``size_mib`` and append a partition there; return its offset."""
    old = raw.stat().st_size
    with raw.open("r+b") as fh:
        fh.truncate(old + size_mib * MIB)
    run("sfdisk", "-q", "--append", raw, stdin=f"start={old // 512}, type={type_code}\n".encode())
    return old


def write_at(raw: Path, offset: int, data: bytes) -> None:
    with raw.open("r+b") as fh:
        fh.seek(offset)
        fh.write(data)


def swap_signature(size: int = 8 * MIB) -> bytes:
    page = bytearray(4096)
    page[1024:1028] = (1).to_bytes(4, "little")  # version
    page[1028:1032] = (size // 4096 - 1).to_bytes(4, "little")  # last page
    page[4086:4096] = b"SWAPSPACE2"
    return bytes(page)


def lvm_label() -> bytes:
    """The first sectors of an LVM2 physical volume (label in sector 1)."""
    data = bytearray(4096)
    data[512:520] = b"LABELONE"
    data[520:528] = (1).to_bytes(8, "little")
    data[536:544] = b"LVM2 001"
    return bytes(data)


Plant = Callable[[Path], None]

PEM_KEY = (
    "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIDvL000000000000000000000000000000000\n"
    "-----END PRIVATE KEY-----\n"
)
OPENSSH_KEY = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n"
    "-----END OPENSSH PRIVATE KEY-----\n"
)


def _append(raw: Path, path: str, line: str, mode: int = 0o644, gid: int = 0) -> None:
    put_file(raw, path, read_file(raw, path) + line, mode=mode, gid=gid)


def _boot_partition(raw: Path) -> None:
    at = add_partition(raw, 16, "83")
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "grub").mkdir()
        (Path(tmp) / "vmlinuz-6.1.0-cloud-amd64").write_bytes(b"kernel")
        run(
            "mke2fs",
            "-q",
            "-F",
            "-t",
            "ext4",
            "-b",
            "4096",
            "-E",
            f"offset={at},nodiscard",
            "-d",
            tmp,
            raw,
            str(16 * MIB // 4096),
        )


def _allocated_zeros(raw: Path, size: int = 40 * MIB) -> None:
    write_at(raw, free_block(raw, blocks=size // 4096), bytes(size))


def _large_file(raw: Path) -> None:
    with tempfile.NamedTemporaryFile(delete=False) as src:
        src.truncate(70 * MIB)  # sparse: the check looks at the size, not the bytes
    try:
        debugfs_write(raw, [f"write {src.name} /root/dataset.bin"])
    finally:
        Path(src.name).unlink()


_OPEN_NFT = (
    "flush ruleset\ntable inet filter {\n chain input {\n"
    "  type filter hook input priority filter; policy accept;\n }\n}\n"
)

# name -> (finding id the plant must raise, the plant)
PLANTS: dict[str, tuple[str, Plant]] = {
    "swap-partition": (
        "layout.swap-partition",
        lambda r: write_at(r, add_partition(r, 16, "82"), swap_signature()),
    ),
    "lvm-volume": ("layout.lvm", lambda r: write_at(r, add_partition(r, 16, "8e"), lvm_label())),
    "boot-partition": ("layout.separate-boot", _boot_partition),
    "second-partition": (
        "layout.multiple-partitions",
        lambda r: add_partition(r, 16, "83") and None,
    ),
    "password-hash": (
        "accounts.password-hash",
        lambda r: set_root_password(r, "$6$x3k9$O7nYfV4zq0bM2xkz8b1W7p.Jz1"),
    ),
    "empty-password": ("accounts.empty-password", lambda r: set_root_password(r, "")),
    "login-account": (
        "accounts.login-account",
        lambda r: _append(r, "/etc/passwd", "debian:x:1000:1000::/home/debian:/bin/bash\n"),
    ),
    "authorized-keys": (
        "ssh.authorized-keys",
        lambda r: put_file(
            r, "/root/.ssh/authorized_keys", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA test\n"
        ),
    ),
    "private-key-by-header": (
        "secrets.private-key",
        lambda r: put_file(r, "/etc/ssl/private/service.pem", PEM_KEY),
    ),
    "private-key-by-name": (
        "secrets.private-key",
        lambda r: put_file(r, "/home/debian/.ssh/id_ed25519", "x\n"),
    ),
    "shell-history": (
        "secrets.shell-history",
        lambda r: put_file(r, "/root/.bash_history", "mysql -psecret\n"),
    ),
    "ssh-host-keys": (
        "ssh.host-keys",
        lambda r: put_file(r, "/etc/ssh/ssh_host_ed25519_key", OPENSSH_KEY),
    ),
    "machine-id": (
        "identity.machine-id",
        lambda r: put_file(r, "/etc/machine-id", "4c4c4544004a3510804bc4c04f4d3232\n", mode=0o444),
    ),
    "cloud-credentials": (
        "secrets.cloud-credentials",
        lambda r: put_file(r, "/root/.aws/credentials", "[default]\naws_secret_access_key = abc\n"),
    ),
    "swap-fstab": (
        "layout.swap-fstab",
        lambda r: _append(r, "/etc/fstab", "/swapfile none swap sw 0 0\n"),
    ),
    "sshd-root-login": (
        "sshd.root-login",
        lambda r: put_file(
            r, "/etc/ssh/sshd_config.d/00-root.conf", "PermitRootLogin yes\n", mode=0o644
        ),
    ),
    "network-service": (
        "services.network",
        lambda r: debugfs_write(
            r,
            [
                "symlink /etc/systemd/system/multi-user.target.wants/nginx.service "
                "/lib/systemd/system/nginx.service"
            ],
        ),
    ),
    "cloud-init-state": (
        "cloudinit.state",
        lambda r: put_file(r, "/var/lib/cloud/instance/obj.pkl", b"\x80\x04N."),
    ),
    "logs": ("logs.present", lambda r: put_file(r, "/var/log/syslog", "Nov 21 boot\n")),
    "free-space-not-zeroed": ("space.free-not-zeroed", dirty_free_space),
    "allocated-zeros": ("space.allocated-zeros", _allocated_zeros),
    "large-file": ("files.large-unowned", _large_file),
    "firewall-off": (
        "firewall.none",
        lambda r: debugfs_write(
            r, ["rm /etc/systemd/system/sysinit.target.wants/nftables.service"]
        ),
    ),
    "firewall-open": (
        "firewall.open",
        lambda r: put_file(r, "/etc/nftables.conf", _OPEN_NFT, mode=0o755),
    ),
    "cloud-init-disabled": (
        "cloudinit.disabled",
        lambda r: put_file(r, "/etc/cloud/cloud-init.disabled", "", mode=0o644),
    ),
    "sshd-password-login": (
        "sshd.password-login",
        lambda r: put_file(
            r, "/etc/ssh/sshd_config.d/00-pw.conf", "PasswordAuthentication yes\n", mode=0o644
        ),
    ),
    "filesystem-errors": (
        "image.filesystem-errors",
        lambda r: debugfs_write(r, ["sif /etc/passwd links_count 7"]),
    ),
}
