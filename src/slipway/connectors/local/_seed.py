"""The NoCloud seed: an ISO 9660 image labelled ``cidata`` holding
``meta-data`` and ``user-data``, written in pure Python with pycdlib (~2 ms)."""

from __future__ import annotations

import io
import json
from pathlib import Path

__all__ = ["write_seed"]


def write_seed(path: Path, *, instance_id: str, hostname: str, user_data: str) -> None:
    """Write the seed ISO to ``path`` (atomically: a temporary file, then a rename)."""
    import pycdlib  # lazily: only creating a local machine needs it

    meta_data = json.dumps({"instance-id": instance_id, "local-hostname": hostname}) + "\n"
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=3, vol_ident="cidata", joliet=3, rock_ridge="1.09")
    for name, text in (("meta-data", meta_data), ("user-data", user_data)):
        data = text.encode()
        iso.add_fp(
            io.BytesIO(data),
            len(data),
            f"/{name.replace('-', '').upper()}.;1",
            rr_name=name,
            joliet_path=f"/{name}",
        )
    partial = path.with_suffix(".part")
    partial.touch(mode=0o600)  # user data may hold secrets: readable by the owner only
    try:
        iso.write(str(partial))
    finally:
        iso.close()
    partial.replace(path)
