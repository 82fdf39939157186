"""Runs on Exoscale: the run service, the runner and the SQL store with the
real Exoscale connector, built by ``bootstrap.Connectors`` from the example
cloud definitions and the operator's ``[clouds.NAME]`` options, talking to the
fake v2 API over HTTP (DESIGN.md §4, §6, §11).

The fake's instances have addresses but no machine behind them, so readiness
comes from a prober that finds the instance by its address and answers with
its instance type's CPUs and memory, as the guest would. Everything else is
production code.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from slipway.adapters.definitions.loader import load_text
from slipway.adapters.keys import Vault, new_key_pair
from slipway.adapters.store.database import make_engine, migrate
from slipway.adapters.store.sql import SqlUnitOfWork
from slipway.bootstrap import Connectors
from slipway.config import OperatorTables, Settings
from slipway.domain.machines import RUN_TAG
from slipway.domain.runs import RunState
from slipway.errors import CloudError
from slipway.services.catalog import CatalogService
from slipway.services.deploy import DeployRequest, RunService
from slipway.services.runner import Runner
from tests.integration.ec2_world import Probe, example_definitions
from tests.integration.exoscale_fake import FakeExoscale

GVA, DK = "exoscale-ch-gva", "exoscale-ch-dk"
ZONES = {GVA: "ch-gva-2", DK: "ch-dk-2"}
# examples/images/debian-12's native templates in the two zones
DEBIAN = {"ch-gva-2": "3e5f0a92-2b8c-4d4f-a6e1-4e3f2a1b1201",
          "ch-dk-2": "9c1a4f32-75e6-4d2c-9f2a-8b3b4e9d1201"}  # fmt: skip


class InstanceTypeProber:
    """Stands in for SSH: answers as the guest of the instance at ``host``
    would, with its instance type's CPUs and memory."""

    def __init__(self, fake: FakeExoscale) -> None:
        self.fake = fake

    def probe(self, host: str, port: int, user: str, private_key: str) -> Probe:
        assert "PRIVATE KEY" in private_key and port == 22
        for zone in ZONES.values():
            for instance in self.fake.instances(zone):
                if instance["public-ip"] == host:
                    kind = self.fake.instance_types[instance["instance-type"]["id"]]
                    return Probe(cpu=kind["cpus"], ram_kb=kind["memory"] // 1024)
        return Probe(reachable=False, finished=False, problem=f"nothing at {host}")


class QueueLeftAlone:
    """Runs are advanced by the test itself, step by step."""

    def enqueue(self, run_id: str, delay: float = 0.0) -> None:
        pass


class World:
    def __init__(self, tmp: Path, fake: FakeExoscale, **options: object) -> None:
        cloud_options = {"endpoint": fake.endpoint, "api_key": fake.key,
                         "api_secret": fake.secret, "poll_interval": 0.02, **options}  # fmt: skip
        self.settings = Settings(
            data_dir=str(tmp),
            database_url=f"sqlite:///{tmp / 'slipway.db'}",
            user="alice",
            queue_url=f"sqlite:///{tmp / 'queue.db'}",
            ssh_public_key="",
            worker_threads="1",
            host="127.0.0.1",
            port="8000",
            clouds=OperatorTables.of({GVA: cloud_options, DK: cloud_options}),  # type: ignore[dict-item]
        )
        self.engine = make_engine(self.settings.database_url)
        migrate(self.engine)
        uow = lambda: SqlUnitOfWork(self.engine)  # noqa: E731
        self.catalog = CatalogService(uow, "alice")
        self.catalog.import_files(example_definitions())
        connectors = Connectors(self.settings, self.catalog)
        vault = Vault(tmp / "vault.key")
        self.runner = Runner(uow, connectors, InstanceTypeProber(fake), vault, "worker-1")
        self.runs = RunService(uow, self.catalog, connectors, vault, QueueLeftAlone(), new_key_pair)

    def deploy(self, module: str, cloud: str) -> str:
        run, _ = self.runs.deploy(DeployRequest(module, cloud))
        return run.id

    def drive(self, run_id: str, limit: int = 100) -> RunState:
        for _ in range(limit):
            delay = self.runner.advance(run_id)
            if delay is None:
                break
            time.sleep(min(delay, 0.05))
        return self.runs.get(run_id).state


@pytest.fixture
def fake() -> Iterator[FakeExoscale]:
    fake = FakeExoscale(tuple(ZONES.values())).start()
    for zone, template in DEBIAN.items():
        fake.add_template(zone, template, "Debian 12 (Slipway)", size_gb=4)
    yield fake
    fake.stop()


@pytest.fixture
def world(tmp_path: Path, fake: FakeExoscale) -> Iterator[World]:
    world = World(tmp_path, fake)
    yield world
    world.engine.dispose()


def _instance(fake: FakeExoscale, cloud: str, run_id: str) -> dict[str, Any]:
    (instance,) = [i for i in fake.instances(ZONES[cloud]) if i["labels"][RUN_TAG] == run_id]
    return instance


def test_a_copy_sized_for_one_zone_gets_the_tutorials_instance_type_in_each(
    world: World, fake: FakeExoscale
) -> None:
    copy = world.catalog.copy("examples/images/debian-12", "alice/debian-12-zones")
    document = {**copy.document, "clouds": {GVA: {"instance_type": "Small"}}}
    world.catalog.import_files(
        [load_text(yaml.safe_dump(document), "debian-12-zones.yaml", "alice/debian-12-zones")]
    )
    on_gva = world.deploy("alice/debian-12-zones", GVA)
    on_dk = world.deploy("alice/debian-12-zones", DK)
    assert world.drive(on_gva) is RunState.READY, world.runs.get(on_gva).message
    assert world.drive(on_dk) is RunState.READY, world.runs.get(on_dk).message

    # cpu 1, ram 1 everywhere but ch-gva: Small (2, 2) there, Tiny (1, 1) in ch-dk.
    expected = {GVA: ("Small", "standard.small", 2, 2.0), DK: ("Tiny", "standard.tiny", 1, 1.0)}
    for cloud, run_id in ((GVA, on_gva), (DK, on_dk)):
        run, instance = world.runs.get(run_id), _instance(fake, cloud, run_id)
        flavor, kind, cpu, ram = expected[cloud]
        assert run.parameters["flavor"] == flavor
        assert fake.type_name(instance["instance-type"]["id"]) == kind
        assert (run.parameters["guest.cpu"], run.parameters["guest.ram_gb"]) == (cpu, ram)
        assert instance["template"]["id"] == DEBIAN[ZONES[cloud]]
        assert run.parameters["url.ssh"] == f"ssh://debian@{instance['public-ip']}:22"
        assert run.machine_id == instance["id"]
    group = fake.group("slipway_managed")  # one for the organisation, as on Exoscale
    assert [g["id"] for g in _instance(fake, DK, on_dk)["security-groups"]] == [group["id"]]


def test_terminate_deletes_the_runs_instance(world: World, fake: FakeExoscale) -> None:
    run_id = world.deploy("examples/images/debian-12", GVA)
    assert world.drive(run_id) is RunState.READY
    world.runs.terminate(run_id)
    assert world.drive(run_id) is RunState.TERMINATED
    assert fake.instances(ZONES[GVA]) == []


def test_a_refused_secret_is_found_before_a_run_exists(tmp_path: Path, fake: FakeExoscale) -> None:
    """The real connector, a secret the API refuses: the deploy says so at
    once, and no run and no instance exist."""
    world = World(tmp_path, fake, api_secret="not-the-secret")
    try:
        with pytest.raises(CloudError, match="403"):
            world.deploy("examples/images/debian-12", GVA)
        assert world.runs.list() == []
        assert fake.instances(ZONES[GVA]) == []
    finally:
        world.engine.dispose()
