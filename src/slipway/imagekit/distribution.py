"""The distributions the image kit builds from, and what differs between them.

Debian and Ubuntu go through the same tool (mmdebstrap); only the mirror, the
suite names, the kernel package and the components change. Adding a release
is one line here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["Distribution", "DistributionTraits"]


@dataclass(frozen=True)
class DistributionTraits:
    """What the build needs to know about one distribution."""

    mirror: str
    components: tuple[str, ...]
    kernel_package: str
    suites: dict[str, str]  # release number -> suite name
    # Packages every cloud image needs: boot, network, cloud-init, ssh, resize.
    base_packages: tuple[str, ...]
    keyring: str


_COMMON = (
    "systemd-sysv",
    "udev",
    "cloud-init",
    "cloud-guest-utils",
    "openssh-server",
    "netbase",
    "iproute2",
    "sudo",
    "ca-certificates",
    # Not essential in bookworm, yet cloud-init's resizefs needs resize2fs.
    "e2fsprogs",
)

_TRAITS: dict[str, DistributionTraits] = {
    "debian": DistributionTraits(
        mirror="http://deb.debian.org/debian",
        components=("main",),
        kernel_package="linux-image-cloud-amd64",
        suites={"11": "bullseye", "12": "bookworm", "13": "trixie"},
        base_packages=(*_COMMON, "ifupdown", "isc-dhcp-client"),
        keyring="/usr/share/keyrings/debian-archive-keyring.gpg",
    ),
    "ubuntu": DistributionTraits(
        mirror="http://archive.ubuntu.com/ubuntu",
        components=("main", "universe"),
        kernel_package="linux-image-kvm",
        suites={"22.04": "jammy", "24.04": "noble"},
        base_packages=(*_COMMON, "netplan.io"),
        keyring="/usr/share/keyrings/ubuntu-archive-keyring.gpg",
    ),
}


class Distribution(StrEnum):
    """A distribution a recipe can name as its base."""

    DEBIAN = "debian"
    UBUNTU = "ubuntu"

    @property
    def traits(self) -> DistributionTraits:
        return _TRAITS[self.value]

    def releases(self) -> list[str]:
        return list(self.traits.suites)

    def suite(self, release: str) -> str | None:
        """The suite name for a release number or name (``"12"`` or ``"bookworm"``)."""
        suites = self.traits.suites
        if release in suites:
            return suites[release]
        return release if release in suites.values() else None
