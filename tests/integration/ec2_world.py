"""Slipway wired as ``bootstrap.runtime`` wires it — SQL store, Huey on SQLite,
the real EC2 connector — pointed at moto behind the delay/fault proxy.

Two things differ from production, both because moto's instances are not
machines: readiness comes from :class:`InstanceTypeProber` (no SSH server
answers at a moto address), and the ``local`` cloud is the in-memory fake
(no QEMU in these tests).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slipway.adapters.definitions.loader import LoadedDefinition, load_paths
from slipway.adapters.keys import Vault, new_key_pair
from slipway.adapters.queue import HueyQueue, make_huey
from slipway.adapters.store.database import make_engine, migrate
from slipway.adapters.store.sql import SqlUnitOfWork
from slipway.bootstrap import Connectors, Runtime
from slipway.config import OperatorTables, Settings
from slipway.connectors.base import Connector
from slipway.connectors.fake import FakeConnector
from slipway.domain.machines import CloudImage
from slipway.domain.runs import TERMINAL, Run, RunState
from slipway.services.catalog import CatalogService
from slipway.services.deploy import DeployRequest, RunService
from slipway.services.ports import Prober
from slipway.services.runner import Runner

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
AWS = "aws-eu-west-1"
REGION = "eu-west-1"


def aws_options(endpoint_url: str, **options: object) -> OperatorTables:
    """The operator's configuration that points the example EC2 cloud at
    ``endpoint_url`` (moto); the definition itself stays the example's."""
    return OperatorTables.of({AWS: {"endpoint_url": endpoint_url, **options}})  # type: ignore[dict-item]


def example_definitions() -> list[LoadedDefinition]:
    """Every example definition."""
    folders = ("images", "apps", "clouds", "catalogs", "security-groups")
    return load_paths([EXAMPLES / f for f in folders], REPO)


@dataclass(frozen=True)
class Probe:
    reachable: bool = True
    finished: bool = True
    succeeded: bool = True
    step: str = "done"
    cpu: int | None = None
    ram_kb: int | None = None
    output_tail: str = ""
    problem: str = ""


class InstanceTypeProber:
    """Stands in for SSH: a moto instance has an address but nothing listens
    there. Finds the instance by its address (asking moto directly, not through
    the fault proxy) and answers as its guest would: cloud-init done, the
    instance type's vCPUs and memory. A ``local`` fake machine answers 1 CPU."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.probes = 0

    def probe(self, host: str, port: int, user: str, private_key: str) -> Probe:
        assert "PRIVATE KEY" in private_key
        self.probes += 1
        for key in ("ip-address", "private-ip-address"):
            reservations = self.client.describe_instances(
                Filters=[{"Name": key, "Values": [host]}]
            )["Reservations"]
            for reservation in reservations:
                for instance in reservation["Instances"]:
                    kind = instance["InstanceType"]
                    info = self.client.describe_instance_types(InstanceTypes=[kind])
                    spec = info["InstanceTypes"][0]
                    return Probe(
                        cpu=spec["VCpuInfo"]["DefaultVCpus"],
                        ram_kb=spec["MemoryInfo"]["SizeInMiB"] * 1024,
                    )
        return Probe(cpu=1, ram_kb=1024 * 1024)  # the fake local cloud's machine


class Ec2World:
    """A store, a catalog with the examples, Huey, a runner and the run service."""

    def __init__(
        self,
        tmp: Path,
        database_url: str,
        endpoint_url: str,
        moto_client: Any,
        *,
        cloud_options: dict[str, object] | None = None,
        prober: Prober | None = None,
        clouds: OperatorTables | None = None,
    ) -> None:
        """``clouds`` replaces the operator's cloud tables that point the
        example EC2 cloud at moto (to point another example cloud elsewhere)."""
        self.settings = Settings(
            data_dir=str(tmp),
            database_url=database_url,
            user="alice",
            queue_url=f"sqlite:///{tmp / 'queue.db'}",
            ssh_public_key="",
            worker_threads="4",
            host="127.0.0.1",
            port="8000",
            clouds=clouds or aws_options(endpoint_url, **(cloud_options or {})),
        )
        self.engine = make_engine(database_url)
        migrate(self.engine)
        self.uow = lambda: SqlUnitOfWork(self.engine)
        self.catalog = CatalogService(self.uow, "alice")
        self.catalog.import_files(example_definitions())
        self.ec2 = Connectors(self.settings, self.catalog)
        self.local = FakeConnector(
            "local", images=[CloudImage("debian-12-minimal", "debian")], boot_polls=1
        )
        self.moto = moto_client
        self.prober = prober or InstanceTypeProber(moto_client)
        self.vault = Vault(tmp / "vault.key")
        self.runner = self.make_runner("worker-1")
        self.huey = make_huey(self.settings.queue_url)
        self.queue = HueyQueue(self.huey, self.runner.advance)
        self.runs = RunService(
            self.uow, self.catalog, self.connectors, self.vault, self.queue, new_key_pair
        )
        self.runtime = Runtime(
            self.settings,
            self.catalog,
            self.runs,
            self.runner,
            self.queue,
            self.huey,
            self.ec2,
            self.vault,
        )

    def connectors(self, name: str) -> Connector:
        return self.local if name == "local" else self.ec2(name)

    def make_runner(
        self, name: str, connectors: Callable[[str], Connector] | None = None
    ) -> Runner:
        return Runner(self.uow, connectors or self.connectors, self.prober, self.vault, name)

    def deploy(self, module: str = "examples/images/debian-12", cloud: str = AWS) -> str:
        run, _ = self.runs.deploy(DeployRequest(module, cloud))
        return run.id

    def drive(self, run_id: str, runner: Runner | None = None, limit: int = 200) -> RunState:
        """Advance the run step by step in this thread, without the queue's waits."""
        runner = runner or self.runner
        for _ in range(limit):
            delay = runner.advance(run_id)
            if delay is None:
                break
            time.sleep(min(delay, 0.2))
        return self.runs.get(run_id).state

    def wait(self, run_ids: Iterable[str], timeout: float = 120) -> dict[str, Run]:
        """Wait until every run is ready or has ended; the runs by id."""
        pending = list(run_ids)
        deadline = time.monotonic() + timeout
        while True:
            runs = {run_id: self.runs.get(run_id) for run_id in pending}
            if all(r.state is RunState.READY or r.state in TERMINAL for r in runs.values()):
                return runs
            if time.monotonic() > deadline:
                states = {run_id: str(r.state) for run_id, r in runs.items()}
                raise AssertionError(f"runs still moving after {timeout} s: {states}")
            time.sleep(0.2)

    def instances(self, **filters: str) -> list[dict[str, Any]]:
        """Instances moto holds that are not terminated, tags as a dict."""
        wanted = [{"Name": f"tag:{k}", "Values": [v]} for k, v in filters.items()]
        wanted.append({"Name": "instance-state-name", "Values": ["pending", "running", "stopped"]})
        found = []
        for reservation in self.moto.describe_instances(Filters=wanted)["Reservations"]:
            for instance in reservation["Instances"]:
                instance["TagMap"] = {t["Key"]: t["Value"] for t in instance.get("Tags", [])}
                found.append(instance)
        return found

    def close(self) -> None:
        self.engine.dispose()
