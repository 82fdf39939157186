"""OVA files: a USTAR tar holding the OVF descriptor first, then the manifest
(``SHA256(name)= hex`` lines), then a streamOptimized VMDK.

Reading finds the disk inside the tar and gives its byte offset, so QEMU can
read it in place without unpacking.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

from slipway.errors import ImageFileError

__all__ = ["OvaDisk", "find_disk", "ovf_descriptor", "write_ova"]

_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class OvaDisk:
    """A disk inside an OVA: its member name, byte offset and size in bytes."""

    name: str
    offset: int
    size: int


def ovf_descriptor(name: str, disk_name: str, disk_file_bytes: int, capacity: int) -> str:
    """A minimal OVF 1.0 descriptor for one VM with one disk (sizes in bytes)."""
    n = escape(name)
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1"
    xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1"
    xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData"
    xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData">
  <References>
    <File ovf:id="file1" ovf:href="{escape(disk_name)}" ovf:size="{disk_file_bytes}"/>
  </References>
  <DiskSection>
    <Info>Virtual disks</Info>
    <Disk ovf:diskId="vmdisk1" ovf:fileRef="file1" ovf:capacity="{capacity}"
        ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/>
  </DiskSection>
  <NetworkSection>
    <Info>Logical networks</Info>
    <Network ovf:name="NAT"><Description>NAT</Description></Network>
  </NetworkSection>
  <VirtualSystem ovf:id="{n}">
    <Info>A virtual machine</Info>
    <Name>{n}</Name>
    <OperatingSystemSection ovf:id="96">
      <Info>The guest operating system</Info>
      <Description>Debian_64</Description>
    </OperatingSystemSection>
    <VirtualHardwareSection>
      <Info>Virtual hardware requirements</Info>
      <System>
        <vssd:ElementName>Virtual Hardware Family</vssd:ElementName>
        <vssd:InstanceID>0</vssd:InstanceID>
        <vssd:VirtualSystemType>vmx-10</vssd:VirtualSystemType>
      </System>
      <Item>
        <rasd:AllocationUnits>hertz * 10^6</rasd:AllocationUnits>
        <rasd:ElementName>1 virtual CPU</rasd:ElementName>
        <rasd:InstanceID>1</rasd:InstanceID>
        <rasd:ResourceType>3</rasd:ResourceType>
        <rasd:VirtualQuantity>1</rasd:VirtualQuantity>
      </Item>
      <Item>
        <rasd:AllocationUnits>byte * 2^20</rasd:AllocationUnits>
        <rasd:ElementName>1024 MB of memory</rasd:ElementName>
        <rasd:InstanceID>2</rasd:InstanceID>
        <rasd:ResourceType>4</rasd:ResourceType>
        <rasd:VirtualQuantity>1024</rasd:VirtualQuantity>
      </Item>
      <Item>
        <rasd:Address>0</rasd:Address>
        <rasd:ElementName>SCSI controller</rasd:ElementName>
        <rasd:InstanceID>3</rasd:InstanceID>
        <rasd:ResourceSubType>lsilogic</rasd:ResourceSubType>
        <rasd:ResourceType>6</rasd:ResourceType>
      </Item>
      <Item>
        <rasd:AddressOnParent>0</rasd:AddressOnParent>
        <rasd:ElementName>disk1</rasd:ElementName>
        <rasd:HostResource>ovf:/disk/vmdisk1</rasd:HostResource>
        <rasd:InstanceID>4</rasd:InstanceID>
        <rasd:Parent>3</rasd:Parent>
        <rasd:ResourceType>17</rasd:ResourceType>
      </Item>
      <Item>
        <rasd:AutomaticAllocation>true</rasd:AutomaticAllocation>
        <rasd:Connection>NAT</rasd:Connection>
        <rasd:ElementName>Ethernet adapter</rasd:ElementName>
        <rasd:InstanceID>5</rasd:InstanceID>
        <rasd:ResourceSubType>E1000</rasd:ResourceSubType>
        <rasd:ResourceType>10</rasd:ResourceType>
      </Item>
    </VirtualHardwareSection>
  </VirtualSystem>
</Envelope>
"""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    info.mtime = int(time.time())
    tar.addfile(info, io.BytesIO(data))


def write_ova(vmdk: Path, target: Path, *, name: str, capacity: int) -> None:
    """Pack a streamOptimized ``vmdk`` of ``capacity`` bytes into the OVA ``target``."""
    disk_name = f"{name}-disk1.vmdk"
    ovf_name = f"{name}.ovf"
    ovf = ovf_descriptor(name, disk_name, vmdk.stat().st_size, capacity).encode()
    manifest = (
        f"SHA256({ovf_name})= {hashlib.sha256(ovf).hexdigest()}\n"
        f"SHA256({disk_name})= {_sha256(vmdk)}\n"
    ).encode()
    with tarfile.open(target, "w", format=tarfile.USTAR_FORMAT) as tar:
        _add_bytes(tar, ovf_name, ovf)
        _add_bytes(tar, f"{name}.mf", manifest)
        info = tar.gettarinfo(str(vmdk), arcname=disk_name)
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        info.mode = 0o644
        with vmdk.open("rb") as fh:
            tar.addfile(info, fh)


def find_disk(ova: Path) -> OvaDisk:
    """The first disk image inside ``ova``; an unreadable tar raises ImageFileError."""
    try:
        with tarfile.open(ova, "r:") as tar:
            for member in tar:
                lower = member.name.lower()
                if member.isfile() and lower.endswith((".vmdk", ".qcow2", ".img", ".raw")):
                    return OvaDisk(member.name, member.offset_data, member.size)
    except (tarfile.TarError, OSError) as exc:
        raise ImageFileError(f"{ova}: not a readable OVA (tar) file: {exc}") from exc
    raise ImageFileError(f"{ova}: no disk image inside the OVA")
