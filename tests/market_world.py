"""A marketplace to test against: a data folder with a SQL store, a local
image store holding one checked and boot-tested image, an endorser
certificate from a test CA configured for ``vo.example.org``, and the API
over it — with alice (an image author), bob (the VO's manager), mallory (a
hostile user) and an admin."""

from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from fastapi.testclient import TestClient

from slipway import bootstrap
from slipway.adapters.imagelists import EndorserCredentials
from slipway.config import Settings, load_settings
from slipway.services.marketplace import MarketplaceService
from tests.endorser_ca import EndorsingCA

__all__ = ["VO", "MarketWorld", "stored_image"]

VO = "vo.example.org"
PUBLIC_URL = "http://slipway.test"


def stored_image(
    data_dir: Path, name: str, *, passed: bool | None = True, findings: Any = ()
) -> str:
    """A small qcow2 in the local image store, with a clean check and a boot
    test on record (as ``image import`` and ``image test`` leave them);
    returns its SHA-512. ``passed=None``: never boot-tested."""
    images = data_dir / "images"
    images.mkdir(parents=True, exist_ok=True)
    path = images / f"{name}.qcow2"
    subprocess.run(
        ["qemu-img", "create", "-q", "-f", "qcow2", str(path), "64M"], check=True, timeout=60
    )
    with path.open("ab") as stream:  # distinct bytes per name
        stream.write(name.encode() * 100)
    sha512 = hashlib.sha512(path.read_bytes()).hexdigest()
    meta = {
        "id": name,
        "name": name,
        "format": "qcow2",
        "source_format": "qcow2",
        "virtual_size": 64 * 1024 * 1024,
        "file_size": path.stat().st_size,
        "sha512": sha512,
        "imported_at": "2026-11-29T10:00:00Z",
        "os": {"distribution": "debian", "version": "12"},
        "check": {"findings": list(findings), "has_errors": False},
        "tested": None
        if passed is None
        else {"passed": passed, "sha512": sha512, "seconds_to_ssh": 41.5},
    }
    (images / f"{name}.json").write_text(json.dumps(meta))
    return sha512


@dataclass
class MarketWorld:
    root: Path
    database_url: str
    ca: EndorsingCA = field(default_factory=EndorsingCA)
    settings: Settings = field(init=False)
    endorser: EndorserCredentials = field(init=False)
    client: TestClient = field(init=False)
    tokens: dict[str, str] = field(default_factory=dict)
    fetch_private: bool = False

    def __post_init__(self) -> None:
        self.endorser = self.ca.issue()
        certificate = self.root / "endorser.pem"
        key = self.root / "endorser.key"
        certificate.write_bytes(self.endorser.certificate.public_bytes(serialization.Encoding.PEM))
        key.write_bytes(
            self.endorser.key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        config = self.root / "config.toml"
        config.write_text(
            f'[vos."{VO}"]\ncertificate = "{certificate}"\nkey = "{key}"\n'
            'name = "VO managers"\nemail = "managers@vo.example.org"\n'
        )
        self.settings = load_settings(
            env={
                "SLIPWAY_CONFIG": str(config),
                "SLIPWAY_DATA_DIR": str(self.root / "data"),
                "SLIPWAY_DATABASE_URL": self.database_url,
                "SLIPWAY_USER": "admin",
                "SLIPWAY_PUBLIC_URL": PUBLIC_URL,
                "SLIPWAY_FETCH_PRIVATE_ADDRESSES": "yes" if self.fetch_private else "no",
                "SLIPWAY_CA_DIR": str(self.ca.write_dir(self.root / "trusted-cas")),
            }
        )
        identity = bootstrap.identity_service(self.settings)
        # The first user to act on an empty store becomes its admin.
        for user in ("alice", "bob", "mallory"):
            identity.add_user("admin", user)
        for user in ("admin", "alice", "bob", "mallory"):
            self.tokens[user] = identity.create_token(user, "tests").token
        from slipway.entrypoints.api.app import create_app

        self.client = TestClient(create_app(bootstrap.web_services(self.settings)))

    @property
    def data_dir(self) -> Path:
        return Path(self.settings.data_dir)

    def market(self, user: str) -> MarketplaceService:
        return bootstrap.marketplace_service(self.settings, user)

    def headers(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[user]}"}

    def call(self, user: str | None, method: str, path: str, **kwargs: Any) -> Any:
        headers = {**(self.headers(user) if user else {}), **kwargs.pop("headers", {})}
        return self.client.request(method, path, headers=headers, **kwargs)
