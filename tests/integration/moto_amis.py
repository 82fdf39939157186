"""The AMIs moto knows: its own defaults plus every AMI the example images
name, so the examples deploy on moto unchanged. moto reads the file named by
``MOTO_AMIS_PATH`` when it is imported; loading only these (not moto's
thousands of per-region AMIs) also keeps ``describe_images`` fast."""

from __future__ import annotations

import json
import re
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DEBIAN_OWNER = "136693071363"
_AMI = re.compile(r"\bami-[0-9a-f]{8,17}\b")


def example_amis() -> list[str]:
    """AMI ids named in the example image definitions, in order."""
    found: dict[str, None] = {}
    for path in sorted((EXAMPLES / "images").glob("*.yaml")):
        found.update(dict.fromkeys(_AMI.findall(path.read_text())))
    return list(found)


def write_moto_amis(folder: Path) -> Path:
    """Write the AMI list for ``MOTO_AMIS_PATH`` into ``folder``; its path."""
    from moto.utilities.utils import load_resource

    amis = list(load_resource("ec2/resources/amis.json"))
    for ami_id in example_amis():
        amis.append(
            {
                "ami_id": ami_id,
                "name": f"slipway-example-{ami_id}",
                "description": "An AMI an example image definition names",
                "owner_id": DEBIAN_OWNER,
                "public": True,
                "state": "available",
                "image_type": "machine",
                "architecture": "x86_64",
                "virtualization_type": "hvm",
                "hypervisor": "xen",
                "root_device_type": "ebs",
                "root_device_name": "/dev/xvda",
                "sriov": "simple",
            }
        )
    path = folder / "amis.json"
    path.write_text(json.dumps(amis, default=str))
    return path
