"""A provider to sync: a data folder with a SQL store holding the example
clouds, a test CA whose endorser signs lists, and a :class:`ListServer`
serving those lists and the image files they name, through versions."""

from __future__ import annotations

import hashlib
import subprocess
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from slipway import bootstrap
from slipway.adapters.definitions.loader import load_paths
from slipway.adapters.imagelists import EndorserCredentials, sign_image_list
from slipway.adapters.imagelists.trust import distinguished_name
from slipway.config import Settings, load_settings
from slipway.connectors.base import Connector
from slipway.domain.imagelists import ImageList, ListedImage
from slipway.services.sync import NewSubscription, SyncService
from tests.endorser_ca import NOW, EndorsingCA, a_list, an_image
from tests.list_server import ListServer

__all__ = ["EXAMPLES", "SyncWorld", "qcow2_bytes"]

EXAMPLES = Path(__file__).parent.parent / "examples"
LIST_PATH = "/vo/vo.example.org/image.list"


def qcow2_bytes(tmp: Path, tag: str, size: str = "16M", written: str = "64k") -> bytes:
    """A small, valid qcow2 whose bytes differ by ``tag``, with ``written``
    bytes of data in it."""
    path = tmp / f"{tag}.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), size], check=True)
    subprocess.run(
        ["qemu-io", "-f", "qcow2", "-c", f"write -P {1 + len(tag) % 200} 0 {written}", str(path)],
        check=True,
        capture_output=True,
    )
    with path.open("ab") as stream:
        stream.write(tag.encode() * 64)
    return path.read_bytes()


@dataclass
class SyncWorld:
    root: Path
    database_url: str
    ca: EndorsingCA = field(default_factory=EndorsingCA)
    server: ListServer = field(default_factory=ListServer)
    settings: Settings = field(init=False)
    endorser: EndorserCredentials = field(init=False)
    tokens: dict[str, str] = field(init=False)
    version: int = 0
    fetch_private: bool = True

    def __post_init__(self) -> None:
        self.endorser = self.ca.issue()
        self.server.start()
        self.settings = load_settings(
            env={
                "SLIPWAY_DATA_DIR": str(self.root / "data"),
                "SLIPWAY_DATABASE_URL": self.database_url,
                "SLIPWAY_USER": "admin",
                "SLIPWAY_FETCH_PRIVATE_ADDRESSES": "yes" if self.fetch_private else "no",
                "SLIPWAY_CA_DIR": str(self.ca.write_dir(self.root / "trusted-cas")),
                "SLIPWAY_CONFIG": str(self.root / "none.toml"),
            }
        )
        identity = bootstrap.identity_service(self.settings)
        identity.add_user("admin", "mallory")  # the first user to act becomes the admin
        self.tokens = {u: identity.create_token(u, "tests").token for u in ("admin", "mallory")}
        wanted = [EXAMPLES / "clouds" / "local.yaml", EXAMPLES / "catalogs" / "local.yaml"]
        catalog = bootstrap.catalog_service(self.settings)
        catalog.import_files(load_paths(wanted, EXAMPLES.parent))

    def close(self) -> None:
        self.server.stop()

    @property
    def data_dir(self) -> Path:
        return Path(self.settings.data_dir)

    @property
    def endorser_dn(self) -> str:
        return distinguished_name(self.endorser.certificate.subject).slash()

    @property
    def list_url(self) -> str:
        return self.server.url + LIST_PATH

    def api(self) -> Any:
        """The API over this world (a TestClient), with the dashboard."""
        from fastapi.testclient import TestClient

        from slipway.entrypoints.api.app import create_app

        return TestClient(create_app(bootstrap.web_services(self.settings)))

    def headers(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[user]}"}

    def sync_to(self, connector: Connector, user: str = "admin") -> SyncService:
        """The sync service with every cloud being ``connector`` (a test double)."""
        from slipway.adapters.store.sql import SqlUnitOfWork
        from slipway.adapters.sync_oci import OciListReader
        from slipway.adapters.sync_sources import HttpListReader, ImageCache, SourceReader

        engine = bootstrap.engine_for(self.settings.database_url)  # the one the world uses
        return SyncService(
            lambda: SqlUnitOfWork(engine),
            user,
            connectors=lambda _: connector,
            clouds=lambda: [connector.cloud],
            reader=SourceReader(
                HttpListReader(fetch_private=True), OciListReader(fetch_private=True)
            ),
            files=ImageCache(self.data_dir / "sync-cache", fetch_private=True),
            worker="test:1",
            default_ca_dir=self.settings.ca_dir,
        )

    def sync(self, user: str = "admin") -> SyncService:
        return bootstrap.sync_for(self.settings)(user)

    def subscribe(
        self, name: str = "site", *, service: SyncService | None = None, **changes: Any
    ) -> None:
        values: dict[str, Any] = {
            "name": name,
            "cloud": "local",
            "source": self.list_url,
            "endorser_dn": self.endorser_dn,
            "grace": timedelta(0),
        }
        values.update(changes)
        (service or self.sync()).add(NewSubscription(**values))

    def image(self, tag: str, data: bytes, **changes: Any) -> ListedImage:
        """A listed image whose file the server serves at /files/TAG."""
        path = f"/files/{tag}.qcow2"
        self.server.files[path] = data
        tail = hashlib.sha256(tag.encode()).hexdigest()[:12]
        fields: dict[str, Any] = {
            "identifier": f"00000000-0000-4000-8000-{tail}",
            "uri": self.server.url + path,
            "size": len(data),
            "sha512": hashlib.sha512(data).hexdigest(),
            "title": f"Image {tag}",
            "appid": tag,
            "version": "1",
            "mpuri": f"https://market.example.org/appliances/{tag}@1",
            "expires": NOW + timedelta(days=30),
        }
        fields.update(changes)
        return an_image(**fields)

    def publish(self, *images: ListedImage, **changes: Any) -> ImageList:
        """Serve a new version of the list holding ``images``, signed."""
        self.version += 1
        image_list = a_list(self.endorser, version=str(self.version), images=images)
        image_list = replace(image_list, **changes)
        self.server.files[LIST_PATH] = sign_image_list(image_list, self.endorser)
        return image_list
