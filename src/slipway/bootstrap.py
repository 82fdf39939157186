"""The composition root: the CLI, the API and the workers build their objects
here, from a :class:`~slipway.config.Settings` passed in explicitly."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine

from slipway.config import Settings
from slipway.domain.clouds import Cloud
from slipway.services.catalog import CatalogService
from slipway.services.identity import IdentityService

if TYPE_CHECKING:
    from huey import Huey

    from slipway.adapters.host import HostCheck
    from slipway.adapters.keys import Vault
    from slipway.adapters.marketfiles import BootTest
    from slipway.adapters.queue import HueyQueue
    from slipway.connectors.base import Connector
    from slipway.entrypoints.api.deps import Services
    from slipway.imagekit.store import ImageStore
    from slipway.services.boottest import BootImage, BootTester
    from slipway.services.deploy import RunService
    from slipway.services.marketplace import MarketplaceService
    from slipway.services.runner import Runner
    from slipway.services.sync import SyncService

__all__ = [
    "IMAGE_TEST_CLOUD",
    "Runtime",
    "boot_image",
    "boot_tester",
    "catalog_service",
    "cloud_details",
    "connector_options",
    "engine_for",
    "host_checks",
    "identity_service",
    "image_store",
    "marketplace_for",
    "marketplace_service",
    "runtime",
    "sync_for",
    "sync_service",
    "web_services",
]


@cache
def engine_for(database_url: str) -> Engine:
    """One migrated engine per database URL and process."""
    from slipway.adapters.store.database import make_engine, migrate

    engine = make_engine(database_url)
    migrate(engine)
    return engine


def _data_folder(settings: Settings) -> Path:
    """The data folder, created 0700 before anything is put in it."""
    from slipway.adapters.private_files import private_folder

    return private_folder(settings.data_path)


def _unit_of_work(settings: Settings) -> Any:
    from slipway.adapters.store.sql import SqlUnitOfWork

    _data_folder(settings)
    engine = engine_for(settings.database_url)
    return lambda: SqlUnitOfWork(engine)


def catalog_service(settings: Settings) -> CatalogService:
    return CatalogService(_unit_of_work(settings), settings.user)


def image_store(settings: Settings) -> ImageStore:
    """The local image store; it asks the run store which live runs use an image."""
    from slipway.domain.runs import TERMINAL, RunState
    from slipway.imagekit.check import check_image
    from slipway.imagekit.store import ImageStore

    uow = _unit_of_work(settings)
    maybe_live = [s for s in RunState if s not in TERMINAL] + [RunState.FAILED]

    def users_of(name: str) -> list[str]:
        with uow() as unit:
            runs = unit.runs.list(states=maybe_live, limit=100_000)
        return [
            run.id
            for run in runs
            if run.is_live and run.target.driver == "local" and run.target.native_id == name
        ]

    return ImageStore(_data_folder(settings) / "images", users_of=users_of, checker=check_image)


IMAGE_TEST_CLOUD = "image-test"
"""The local cloud ``image test`` boots on: machines under the same data
folder, but a cloud of their own, which no run's reconcile ever claims."""


def boot_image(settings: Settings, image: str) -> BootImage:
    """``image`` (a qcow2 file or a stored image's name) as ``image test`` boots it."""
    from slipway.imagekit.bootable import find_bootable
    from slipway.imagekit.store import ImageStore

    return find_bootable(image, ImageStore(Path(settings.data_dir) / "images"))


def boot_tester(settings: Settings, accelerator: str = "auto") -> BootTester:
    """``image test`` on the local cloud under the data folder, with the
    accelerator the local cloud chooses (or the one given: auto, kvm, tcg)."""
    from slipway.adapters.keys import new_key_pair
    from slipway.adapters.ssh_login import SshLogin
    from slipway.connectors.local import LocalConnector
    from slipway.imagekit.store import ImageStore
    from slipway.services.boottest import BootTester

    store = ImageStore(Path(settings.data_dir) / "images")

    def image_path(image_id: str) -> Path:
        # The operator's own command may boot any file they name; the local
        # cloud that runs deploys only ever boots store entries.
        path = Path(image_id)
        return path if path.is_absolute() else store.image_path(image_id)

    local = settings.clouds.for_cloud("local")
    connector = LocalConnector(
        IMAGE_TEST_CLOUD,
        Path(settings.data_dir),
        image_path=image_path,
        accelerator=accelerator if accelerator != "auto" else str(local.get("accelerator", "auto")),
        qemu=str(local.get("qemu", "qemu-system-x86_64")),
        qemu_img=str(local.get("qemu_img", "qemu-img")),
    )

    def chosen() -> str:
        choice = connector.accelerator_choice()
        return choice.accelerator if choice else ""

    return BootTester(connector, SshLogin(), new_key_pair, accelerator=chosen)


def marketplace_service(
    settings: Settings, user: str | None = None, *, boot_test: BootTest | None = None
) -> MarketplaceService:
    """The marketplace as ``user`` (the configured one by default) sees it.
    ``boot_test`` boot-tests a stored image that has not passed one yet
    (the command line's register does; the API refuses such an image)."""
    return marketplace_for(settings, boot_test=boot_test)(settings.user if user is None else user)


def marketplace_for(
    settings: Settings, *, boot_test: BootTest | None = None
) -> Callable[[str], MarketplaceService]:
    """The marketplace as each user sees it, signing VO lists with the
    operator's ``[vos.NAME]`` credentials; its parts are built once."""
    from slipway.adapters.imagelists.signing import ConfiguredSigner
    from slipway.adapters.marketfiles import MarketFiles
    from slipway.adapters.oci.appliances import OciPusher
    from slipway.services.marketplace import MarketplaceService

    qemu = str(settings.clouds.for_cloud("local").get("qemu", "qemu-system-x86_64"))

    def can_boot() -> str | None:
        return None if shutil.which(qemu) else f"{qemu} is not installed on this host"

    files = MarketFiles(
        _data_folder(settings) / "marketplace",
        image_store(settings),
        can_boot=can_boot,
        boot_test=boot_test,
        fetch_private=settings.fetches_private,
    )
    uow = _unit_of_work(settings)
    signer = ConfiguredSigner(settings.vos.options)
    pusher = OciPusher()
    return lambda user: MarketplaceService(
        uow, user, files=files, signer=signer, public_url=settings.public_url, pusher=pusher
    )


def sync_for(settings: Settings) -> Callable[[str], SyncService]:
    """Subscriptions and syncs as each user sees them, on this process's
    connectors; lists and image files are read under the address guard."""
    from slipway.adapters.sync_oci import OciListReader
    from slipway.adapters.sync_sources import HttpListReader, ImageCache, SourceReader
    from slipway.services.sync import SyncService

    rt = runtime(settings)
    uow = _unit_of_work(settings)
    reader = SourceReader(
        HttpListReader(fetch_private=settings.fetches_private),
        OciListReader(fetch_private=settings.fetches_private),
    )
    files = ImageCache(
        _data_folder(settings) / "sync-cache", fetch_private=settings.fetches_private
    )

    def clouds() -> list[str]:
        return [cloud.name for cloud, _ in rt.catalog.clouds()]

    return lambda user: SyncService(
        uow,
        user,
        connectors=rt.connectors,
        clouds=clouds,
        reader=reader,
        files=files,
        worker=_worker_name(),
        default_ca_dir=settings.ca_dir,
    )


def sync_service(settings: Settings, user: str | None = None) -> SyncService:
    """Subscriptions and syncs as ``user`` (the configured one by default) sees them."""
    return sync_for(settings)(settings.user if user is None else user)


def identity_service(settings: Settings) -> IdentityService:
    """Users, groups, passwords, sessions and API tokens, with Argon2id
    password hashes and the operator's log-in limits."""
    from slipway.adapters.security.passwords import Argon2Hasher

    return IdentityService(_unit_of_work(settings), Argon2Hasher(), limits=settings.login_limits)


def web_services(settings: Settings) -> Services:
    """What ``slipway serve`` runs on: the catalog as each user sees it, who is who, runs."""
    from slipway.entrypoints.api.deps import Services

    uow = _unit_of_work(settings)
    rt = runtime(settings)
    return Services(
        catalog=lambda user: CatalogService(uow, user),
        identity=identity_service(settings),
        runs=rt.runs_for,
        cloud_details=cloud_details(settings),
        market=marketplace_for(settings),
        images=image_store(settings),
        ca_dir=Path(settings.ca_dir),
        sync=sync_for(settings),
    )


class Connectors:
    """Cloud name → connector, built from the cloud's definition on first use."""

    def __init__(self, settings: Settings, catalog: CatalogService) -> None:
        self._settings = settings
        self._catalog = catalog
        self._built: dict[str, Connector] = {}
        self._lock = threading.Lock()

    def __call__(self, name: str) -> Connector:
        with self._lock:
            if name not in self._built:
                self._built[name] = self._build(name)
            return self._built[name]

    def _build(self, name: str) -> Connector:
        from slipway.connectors.registry import CloudDriver

        cloud, _ = self._catalog.flavors(name)
        return CloudDriver.parse(cloud.driver).connect(
            name, connector_options(self._settings, cloud)
        )


def connector_options(settings: Settings, cloud: Cloud) -> dict[str, Any]:
    """The definition says which cloud (region, credentials' name); how to
    reach it is the operator's configuration alone."""
    return {
        "region": cloud.region,
        "credentials": cloud.credentials,
        **settings.clouds.for_cloud(cloud.name),
        "data_dir": settings.data_dir,
    }


def cloud_details(settings: Settings) -> Callable[[Cloud], dict[str, str]]:
    """What a cloud's definition cannot tell: whether this server can use it
    (``usable``, and ``why_not``), and for a local cloud the accelerator its
    machines start with and why. Never probes, never connects to a remote
    cloud."""
    from slipway.connectors.registry import unavailable_reason

    def details(cloud: Cloud) -> dict[str, str]:
        why_not = unavailable_reason(cloud.driver)
        if why_not is not None:
            return {"usable": "no", "why_not": why_not}
        if cloud.driver != "local":
            return {"usable": "yes"}
        from slipway.connectors.local import connect

        local = connect(cloud.name, connector_options(settings, cloud)).details()
        return {"usable": "yes", **local}

    return details


BASE_IMAGE = "debian-12-minimal"
"""The local cloud's base image: what ``scripts/demo`` builds and deploys."""


def host_checks(settings: Settings) -> list[tuple[str, Callable[[], list[HostCheck]]]]:
    """``slipway doctor``'s checks, each named for a progress line; run in order."""
    from slipway.adapters import host
    from slipway.connectors.local import available_accelerators, connect
    from slipway.imagekit.store import ImageStore
    from slipway.imagekit.tools import PACKAGES

    data = Path(settings.data_dir)
    local = {**settings.clouds.for_cloud("local"), "data_dir": settings.data_dir}
    qemu = str(local.get("qemu", "qemu-system-x86_64"))
    base = ImageStore(data / "images").image_path(BASE_IMAGE)

    def tools() -> list[HostCheck]:
        found = []
        for tool, package in PACKAGES.items():
            runs_machines = tool in ("qemu-img", "qemu-system-x86_64")
            found.append(host.check_tool(
                qemu if tool == "qemu-system-x86_64" else tool, package,
                needed_for="local machines" if runs_machines else "building images",
                blocking=runs_machines or not base.is_file(),
            ))  # fmt: skip
        return found

    def accelerator() -> list[HostCheck]:
        connector = connect("local", local)
        guest = base if base.is_file() else None

        def choose() -> tuple[str, str]:
            choice = connector.probe_accelerator(guest, fresh=True)
            return choice.accelerator, choice.reason

        if shutil.which(qemu) is None:
            return []  # the tools' check says so
        return host.check_accelerators(available_accelerators(qemu), choose)

    def base_image() -> list[HostCheck]:
        if base.is_file():
            size = base.stat().st_size / 1024**2
            return [host.HostCheck("base image", host.Status.OK, f"{BASE_IMAGE} ({size:.0f} MB)")]
        return [host.HostCheck(
            "base image", host.Status.WARNING, f"{BASE_IMAGE} is not in the local image store yet",
            "scripts/demo builds it (about a minute): slipway image build "
            f"examples/recipes/{BASE_IMAGE}.yaml --store {BASE_IMAGE}",
        )]  # fmt: skip

    def database() -> list[HostCheck]:
        return [host.check_database(settings.database_url, _open_database)]

    def queue() -> list[HostCheck]:
        return [host.check_queue(settings.queue_url, _ping_queue)]

    return [
        ("tools", tools),
        ("base image", base_image),
        ("accelerator (boots the base image under KVM)", accelerator),
        ("free space", lambda: [host.check_free_space(data)]),
        ("database", database),
        ("task queue", queue),
    ]


def _open_database(url: str) -> None:
    from sqlalchemy import text

    from slipway.adapters.store.database import make_engine

    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    finally:
        engine.dispose()


def _ping_queue(url: str) -> None:
    if url.startswith("sqlite:///"):
        import sqlite3

        path = Path(url.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.closing(sqlite3.connect(path, timeout=5)) as connection:
            connection.execute("SELECT 1")
        return
    import redis

    client = redis.Redis.from_url(url, socket_timeout=3, socket_connect_timeout=3)
    try:
        client.ping()
    finally:
        client.close()


@dataclass
class Runtime:
    """Everything that deploys and moves runs, for one process."""

    settings: Settings
    catalog: CatalogService
    runs: RunService
    runner: Runner
    queue: HueyQueue
    huey: Huey
    connectors: Connectors
    vault: Vault

    def runs_for(self, user: str) -> RunService:
        """The run service acting as ``user`` (the API serves many users)."""
        from slipway.adapters.keys import new_key_pair
        from slipway.services.deploy import RunService

        uow = _unit_of_work(self.settings)
        return RunService(
            uow, CatalogService(uow, user), self.connectors, self.vault, self.queue, new_key_pair
        )


def _worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@cache
def _runtime(settings: Settings) -> Runtime:
    return _build_runtime(settings)


def runtime(settings: Settings) -> Runtime:
    """The process's runtime for ``settings``: one queue, one set of connectors."""
    return _runtime(settings)


def _build_runtime(settings: Settings) -> Runtime:
    from slipway.adapters.keys import Vault, new_key_pair
    from slipway.adapters.queue import HueyQueue, make_huey
    from slipway.adapters.ssh import SshProber
    from slipway.services.deploy import RunService
    from slipway.services.runner import Runner

    uow = _unit_of_work(settings)  # makes the data folder
    catalog = CatalogService(uow, settings.user)
    connectors = Connectors(settings, catalog)
    vault = Vault(Path(settings.data_dir) / "vault.key")
    runner = Runner(uow, connectors, SshProber(), vault, _worker_name())
    huey = make_huey(settings.queue_url)
    queue = HueyQueue(huey, runner.advance)
    runs = RunService(uow, catalog, connectors, vault, queue, new_key_pair)
    return Runtime(settings, catalog, runs, runner, queue, huey, connectors, vault)
