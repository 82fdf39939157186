"""Runs end to end on the in-memory store, a fake cloud and a fake SSH probe:
the states a user sees, what happens on failure, terminate, timeouts, crashes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from slipway.adapters.definitions.loader import LoadedDefinition, load_text
from slipway.adapters.keys import Vault, new_key_pair
from slipway.connectors.fake import FakeConnector
from slipway.domain.machines import RUN_TAG, CloudImage, MachineSpec
from slipway.domain.modules import Right
from slipway.domain.runs import KeepRunning, RunState
from slipway.domain.sizes import Size
from slipway.errors import CloudError, NotFound, PermissionDenied, SizeError
from slipway.services.catalog import CatalogService
from slipway.services.deploy import DeployRequest, RunService
from slipway.services.ports import UnitOfWork
from slipway.services.runner import Runner


@dataclass
class FakeProbe:
    reachable: bool = True
    finished: bool = True
    succeeded: bool = True
    step: str = "done"
    cpu: int | None = 2
    ram_kb: int | None = 995_344
    output_tail: str = ""
    problem: str = ""


@dataclass
class FakeProber:
    """Answers like a guest would: unreachable for a while, then cloud-init runs, then done."""

    unreachable_polls: int = 1
    running_polls: int = 1
    final: FakeProbe = field(default_factory=FakeProbe)
    seen: list[tuple[str, int, str]] = field(default_factory=list)

    def probe(self, host: str, port: int, user: str, private_key: str) -> FakeProbe:
        assert "PRIVATE KEY" in private_key
        self.seen.append((host, port, user))
        if self.unreachable_polls > 0:
            self.unreachable_polls -= 1
            return FakeProbe(reachable=False)
        if self.running_polls > 0:
            self.running_polls -= 1
            return FakeProbe(finished=False)
        return self.final


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def tick(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class World:
    """A catalog, a fake local cloud, a queue that records, and a runner."""

    def __init__(
        self, uow: Callable[[], UnitOfWork], examples: list[LoadedDefinition], tmp: Path
    ) -> None:
        self.uow = uow
        self.clock = Clock()
        self.cloud = FakeConnector(
            "local", images=[CloudImage("debian-12-minimal", "debian")], boot_polls=2
        )
        self.prober = FakeProber()
        self.vault = Vault(tmp / "vault.key")
        self.queued: list[tuple[str, float]] = []
        self.catalog = CatalogService(uow, "alice")
        self.catalog.import_files(examples)
        self.runs = self.service("alice")
        self.runner = self.make_runner("w1")

    def connectors(self, name: str) -> FakeConnector:
        if name != "local":
            raise CloudError("unreachable: connection refused", cloud=name)
        return self.cloud

    def service(self, user: str) -> RunService:
        return RunService(
            self.uow,
            CatalogService(self.uow, user),
            self.connectors,
            self.vault,
            self,
            new_key_pair,
            self.clock,
        )

    def make_runner(self, name: str) -> Runner:
        return Runner(self.uow, self.connectors, self.prober, self.vault, name, self.clock)

    def enqueue(self, run_id: str, delay: float = 0.0) -> None:
        self.queued.append((run_id, delay))

    def drive(self, run_id: str, limit: int = 50) -> RunState:
        for _ in range(limit):
            delay = self.runner.advance(run_id)
            if delay is None:
                break
            self.clock.tick(delay)
        return self.runs.get(run_id).state

    def deploy(self, module: str = "examples/images/debian-12", **kw: object) -> str:
        run, _ = self.runs.deploy(DeployRequest(module, "local", **kw))  # type: ignore[arg-type]
        return run.id


@pytest.fixture
def world(
    memory_uow: Callable[[], UnitOfWork], examples: list[LoadedDefinition], tmp_path: Path
) -> World:
    return World(memory_uow, examples, tmp_path)


def test_a_deploy_reaches_ready_with_an_ssh_link_and_the_guest_size(world: World) -> None:
    run_id = world.deploy()
    assert world.queued == [(run_id, 0.0)]
    assert world.drive(run_id) is RunState.READY
    run = world.runs.get(run_id)
    assert run.parameters["url.ssh"].startswith("ssh://debian@")
    assert run.parameters["guest.cpu"] == 2
    assert run.parameters["flavor"] == "small"
    states = [e.state for e in world.runs.events(run_id)]
    assert states == [
        RunState.PENDING,
        RunState.PROVISIONING,
        RunState.BOOTING,
        RunState.CONTEXTUALIZING,
        RunState.READY,
    ]
    assert set(run.timestamps) >= {"pending", "provisioning", "booting", "ready"}


def test_a_machine_running_at_once_is_seen_without_waiting_for_a_poll(world: World) -> None:
    world.cloud.boot_polls = 0
    world.prober.unreachable_polls = world.prober.running_polls = 0
    run_id = world.deploy()
    assert world.runner.advance(run_id) is None  # one pass: pending → ready
    assert world.runs.get(run_id).state is RunState.READY


def test_waiting_for_cloud_init_writes_nothing_until_something_changes(world: World) -> None:
    world.cloud.boot_polls = 0
    world.prober.unreachable_polls, world.prober.running_polls = 0, 3
    run_id = world.deploy()
    world.runner.advance(run_id)  # → contextualizing: cloud-init still runs
    assert world.runs.get(run_id).state is RunState.CONTEXTUALIZING
    version = world.runs.get(run_id).version
    world.clock.tick(3)
    world.runner.advance(run_id)
    assert world.runs.get(run_id).version == version  # a terminate request would not conflict


def test_the_machine_carries_the_run_tag_and_the_run_key(world: World) -> None:
    run_id = world.deploy()
    world.drive(run_id)
    (machine,) = world.cloud.list_machines({RUN_TAG: run_id})
    spec: MachineSpec = world.cloud._machines[machine.id].spec
    run = world.runs.get(run_id)
    assert run.target.run_key in spec.user_data
    assert "PRIVATE KEY" not in spec.user_data
    assert "PRIVATE KEY" not in str(asdict(run.target))
    assert (spec.cpu, spec.ram_gb) == (1, 1.0)


def test_a_component_opens_its_port_and_gets_a_service_link(world: World) -> None:
    run_id = world.deploy("examples/apps/nginx")
    assert world.drive(run_id) is RunState.READY
    run = world.runs.get(run_id)
    assert run.parameters["url.service.http"].startswith("http://")
    assert run.target.flavor == "large"  # cpu 2, ram 4 on the local catalog
    # The examples' web group, as alice (who imported them) owns it on the cloud.
    assert {g.name for g in run.target.security_groups} == {"slipway:alice:web"}
    assert world.cloud.check_security_group("slipway:alice:web") is not None


def test_a_size_override_picks_another_flavor(world: World) -> None:
    run_id = world.deploy(size=Size(cpu=2, ram=2))
    assert world.runs.get(run_id).target.flavor == "medium"


def test_failed_recipes_fail_the_run_with_the_last_output_and_release_the_machine(
    world: World,
) -> None:
    world.prober.final = FakeProbe(
        succeeded=False,
        step="post_install",
        output_tail="E: Unable to locate package ngnix\n",
        problem="post_install exited 100",
    )
    run_id = world.deploy()
    assert world.drive(run_id) is RunState.FAILED
    run = world.runs.get(run_id)
    assert run.step == "post_install"
    assert "Unable to locate package ngnix" in run.message
    assert world.cloud.list_machines({}) == []


def test_keep_running_on_error_keeps_a_failed_machine_until_terminated(world: World) -> None:
    world.prober.final = FakeProbe(succeeded=False, step="deployment", problem="exited 1")
    run_id = world.deploy(keep_running=KeepRunning.ON_ERROR)
    assert world.drive(run_id) is RunState.FAILED
    assert len(world.cloud.list_machines({})) == 1
    world.runs.terminate(run_id)
    assert world.drive(run_id) is RunState.CANCELLED
    assert world.cloud.list_machines({}) == []


def test_keep_running_never_terminates_after_success(world: World) -> None:
    run_id = world.deploy(keep_running=KeepRunning.NEVER)
    assert world.drive(run_id) is RunState.TERMINATED
    assert world.cloud.list_machines({}) == []


def test_terminate_before_ready_cancels_and_releases(world: World) -> None:
    run_id = world.deploy()
    world.runner.advance(run_id)  # provisioning
    world.runner.advance(run_id)  # machine created, booting
    assert world.runs.get(run_id).state is RunState.BOOTING
    world.runs.terminate(run_id)
    assert world.drive(run_id) is RunState.CANCELLED
    assert world.cloud.list_machines({}) == []


def test_a_cloud_error_fails_the_run_with_the_clouds_message(world: World) -> None:
    world.cloud.fail_next["create_machine"] = CloudError(
        "quota exceeded: 0 of 0 instances left", cloud="local"
    )
    run_id = world.deploy()
    assert world.drive(run_id) is RunState.FAILED
    run = world.runs.get(run_id)
    assert run.step == "provisioning"
    assert "quota exceeded" in run.message
    assert world.cloud.list_machines({}) == []


def test_a_run_stuck_past_its_timeout_fails_and_is_released(world: World) -> None:
    world.prober.unreachable_polls = 10_000
    run_id = world.deploy(timeout_s=120)
    for _ in range(100):
        if world.runner.advance(run_id) is None:
            break
        world.clock.tick(5)
    run = world.runs.get(run_id)
    assert run.state is RunState.FAILED
    assert "timeout" in run.message
    assert world.cloud.list_machines({}) == []


def test_a_crashed_worker_is_replaced_and_nothing_is_created_twice(world: World) -> None:
    run_id = world.deploy()
    one_step = Runner(
        world.uow, world.connectors, world.prober, world.vault, "w0", world.clock, steps_in_a_row=1
    )
    one_step.advance(run_id)  # → provisioning
    # Worker w1 takes the lease, creates the machine, and dies before saving.
    with world.uow() as uow:
        assert uow.runs.claim(
            run_id, "w1/dead", world.clock(), world.clock() + timedelta(seconds=90)
        )
        uow.commit()
    run = world.runs.get(run_id)
    world.cloud.create_machine(
        MachineSpec(
            f"slipway-{run_id}",
            "debian-12-minimal",
            "small",
            1,
            1.0,
            None,
            "#cloud-config\n",
            (),
            {RUN_TAG: run_id},
            client_token=run_id,
        )
    )
    assert run.state is RunState.PROVISIONING
    other = world.make_runner("w2")
    assert other.advance(run_id) is None  # the dead worker's lease still holds
    assert other.requeue_due(lambda _: None) == []
    world.clock.tick(120)
    assert other.requeue_due(lambda _: None) == [run_id]
    world.runner = other
    assert world.drive(run_id) is RunState.READY
    assert len(world.cloud.list_machines({RUN_TAG: run_id})) == 1


def test_reconcile_deletes_orphans_and_keeps_machines_of_live_runs(world: World) -> None:
    live = world.deploy()
    world.drive(live)
    world.cloud.create_machine(
        MachineSpec(
            "orphan",
            "debian-12-minimal",
            "small",
            1,
            1.0,
            None,
            "",
            (),
            {RUN_TAG: "gone-run"},
            client_token="gone",
        )
    )
    report = world.runner.reconcile()
    assert len(report.deleted) == 1 and len(report.adopted) == 1
    assert [m.tags[RUN_TAG] for m in world.cloud.list_machines({})] == [live]


def test_deploy_refuses_bad_requests_before_creating_anything(world: World) -> None:
    with pytest.raises(NotFound, match="unknown cloud 'mars'"):
        world.runs.deploy(DeployRequest("examples/images/debian-12", "mars"))
    world.catalog.import_files(
        [
            load_text(
                "kind: image\nlogin_user: debian\nnative: {local: {id: debian-12-minimal}}\n",
                "only.yaml",
                "alice/only-local",
            )
        ]
    )
    with pytest.raises(NotFound, match="no native image for cloud 'ultimum'") as caught:
        world.runs.deploy(DeployRequest("alice/only-local", "ultimum"))
    assert "local" in (caught.value.hint or "")
    with pytest.raises(SizeError, match="closest is xlarge"):
        world.deploy(size=Size(cpu=64))
    with pytest.raises(CloudError, match="unreachable"):
        world.runs.deploy(DeployRequest("examples/images/debian-12", "ultimum"))
    with pytest.raises(NotFound, match="module examples/images/debian-12 does not exist"):
        world.service("bob").deploy(DeployRequest("examples/images/debian-12", "local"))
    assert world.runs.list() == [] and world.cloud.list_machines({}) == []


def test_deploy_needs_the_deploy_right(world: World) -> None:
    world.catalog.share(
        "examples/images/debian-12",
        group=None,
        group_rights=frozenset(),
        public_rights=frozenset({Right.VIEW}),
    )
    with pytest.raises(PermissionDenied, match="bob lacks the deploy right"):
        world.service("bob").deploy(DeployRequest("examples/images/debian-12", "local"))


def test_a_missing_undeclared_group_is_refused_before_the_deploy(
    world: World, tmp_path: Path
) -> None:
    world.catalog.import_files(
        [
            load_text(
                "kind: image\nparent: examples/images/debian-12\nsecurity_groups: [db]\n",
                "db.yaml",
                "alice/db",
            )
        ]
    )
    with pytest.raises(NotFound, match="security group 'db' does not exist on local"):
        world.deploy("alice/db")


def test_runs_are_private_to_their_owner(world: World) -> None:
    run_id = world.deploy()
    with pytest.raises(NotFound, match=f"run {run_id} does not exist"):
        world.service("bob").get(run_id)
    assert world.service("bob").list() == []


def test_a_run_fails_even_when_its_cloud_refuses_to_release_the_machine(world: World) -> None:
    """A cloud that refuses the create and then the clean-up (credentials
    revoked) still leaves a failed run behind, saying so; the sweeper's
    reconcile deletes the machine later."""
    world.cloud.fail_next["create_machine"] = CloudError("credentials refused", cloud="local")
    world.cloud.fail_next["list_machines"] = CloudError("credentials refused", cloud="local")
    run_id = world.deploy()
    assert world.drive(run_id) is RunState.FAILED
    run = world.runs.get(run_id)
    assert "credentials refused" in run.message
    assert "could not be released" in run.message


def test_a_cloud_that_refuses_the_check_gets_no_run(world: World) -> None:
    world.cloud.fail_next["check"] = CloudError("AuthFailure: credentials refused", cloud="local")
    with pytest.raises(CloudError, match="credentials refused"):
        world.deploy()
    assert world.runs.list() == []
    assert "create_machine" not in world.cloud.calls


def test_a_cloud_without_a_console_is_never_asked_for_one(world: World) -> None:
    from slipway.domain.machines import Capability
    from slipway.errors import Unsupported

    world.cloud.unsupported = {Capability.CONSOLE_LOG: "the console is a VNC session only"}
    run_id = world.deploy()
    world.drive(run_id)

    with pytest.raises(Unsupported, match="console log: the console is a VNC session only"):
        world.runs.console(run_id)
    world.cloud.fail_next["create_machine"] = CloudError("out of quota", cloud="local")
    failed = world.deploy()
    world.drive(failed)

    assert "console_log" not in world.cloud.calls  # refused up front, not tried
    assert "console.tail" not in world.runs.get(failed).parameters
