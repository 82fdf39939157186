"""The worker side of runs: one step at a time, idempotent, resumable.

``advance(run_id)`` takes the run's lease, does the step its state calls for,
saves the outcome and says when to look again. Cloud calls happen outside any
database transaction; every resource carries the run id as a tag and is created
with the run id as client token, so a step repeated after a crash adopts what
the first attempt made instead of making it twice. ``requeue_due`` picks up runs
whose worker died; ``reconcile`` deletes machines that belong to no live run.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from slipway.connectors.base import Connector, supports
from slipway.domain.machines import RUN_TAG, Capability, MachineSpec, MachineState
from slipway.domain.runs import TERMINAL, Run, RunEvent, RunState
from slipway.errors import CloudError, Conflict, NotFound, SlipwayError
from slipway.services.deploy import user_data_for
from slipway.services.ports import Prober, ProbeResult, UnitOfWork, Vault

__all__ = ["ReconcileReport", "Runner"]

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=90)
OVERDUE = timedelta(seconds=20)
STEPS_IN_A_ROW = 8
"""Steps one ``advance`` takes under one lease while each says the next is due at once."""
BOOT_POLL_S = 2.0
CONTEXT_POLL_S = 3.0


@dataclass
class ReconcileReport:
    adopted: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


class Runner:
    def __init__(
        self,
        unit_of_work: Callable[[], UnitOfWork],
        connectors: Callable[[str], Connector],
        prober: Prober,
        vault: Vault,
        worker: str,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        *,
        steps_in_a_row: int = STEPS_IN_A_ROW,
    ) -> None:
        self._uow = unit_of_work
        self._steps_in_a_row = steps_in_a_row
        self._connectors = connectors
        self._prober = prober
        self._vault = vault
        self.worker = worker
        self._clock = clock

    # -- the loop body ---------------------------------------------------------------

    def advance(self, run_id: str) -> float | None:
        """Do the run's next step, and the ones after it while each is due at
        once (a lease taken and given back per step is most of a step's cost);
        the delay (s) before the next one, or None."""
        now = self._clock()
        worker = f"{self.worker}/{threading.get_ident()}"
        with self._uow() as uow:
            if not uow.runs.claim(run_id, worker, now, now + LEASE):
                return None  # another worker has it
            uow.commit()
            run = uow.runs.get(run_id)
        delay: float | None = None
        previous: RunState | None = None
        try:
            for _ in range(self._steps_in_a_row):
                delay = None  # what a step that raises leaves: due at once, for the sweeper
                if run is None or run.state in TERMINAL:
                    break
                state = run.state
                try:
                    delay = self._step(run, first_attempt=previous is RunState.PENDING)
                except Conflict:
                    # Someone (a terminate request) changed the run: look again.
                    # Saves are optimistic, so the run in hand is current otherwise.
                    delay, previous = 0.0, None
                    with self._uow() as uow:
                        run = uow.runs.get(run_id)
                    continue
                previous = state
                if delay != 0 or self._clock() - now > LEASE / 3:
                    break  # (a long chain hands over well before its lease ends)
        finally:
            with self._uow() as uow:
                due = None if delay is None else self._clock() + timedelta(seconds=delay)
                uow.runs.release(run_id, worker, due)
                uow.commit()
        return delay

    def _step(self, run: Run, *, first_attempt: bool = False) -> float | None:
        """``first_attempt``: the run has just left ``pending`` under this lease,
        so provisioning cannot have created anything for it yet."""
        if run.expired(self._clock()):
            minutes = (run.deadline - run.created_at).total_seconds() / 60
            return self._fail(
                run, run.state.value, f"still {run.state} after the {minutes:g}-minute timeout"
            )
        handlers: dict[RunState, Callable[[Run], float | None]] = {
            RunState.PENDING: self._pending,
            RunState.PROVISIONING: lambda run: self._provision(run, first_attempt),
            RunState.BOOTING: self._boot,
            RunState.CONTEXTUALIZING: self._contextualize,
            RunState.TERMINATING: self._terminate,
        }
        handler = handlers.get(run.state)
        if handler is None:
            return None
        try:
            return handler(run)
        except Conflict:
            raise  # not a failure: ``advance`` reads the run again
        except SlipwayError as exc:
            log.info("run %s failed in %s: %s", run.id, run.state, exc.message)
            return self._fail(run, run.state.value, exc.message)

    # -- persistence -------------------------------------------------------------------

    def _save(self, run: Run, *events: RunEvent) -> None:
        with self._uow() as uow:
            uow.runs.save(run)
            for event in events:
                uow.runs.add_event(event)
            uow.commit()

    def _move(self, run: Run, state: RunState, message: str = "") -> None:
        self._save(run, run.move(state, self._clock(), message))

    def _fail(
        self,
        run: Run,
        step: str,
        message: str,
        *,
        recipes_failed: bool = False,
        events: tuple[RunEvent, ...] = (),
    ) -> float | None:
        """Fail the run; release its machine unless its recipes failed and the
        keep-running policy keeps failed machines (for debugging). A cloud that
        refuses the release too (revoked credentials, an outage) does not keep
        the run from failing: the message says so, and the sweeper's reconcile
        deletes the machine once the cloud answers."""
        connector = self._connector_or_none(run)
        if (
            connector is not None
            and run.machine_id is not None
            and supports(connector, Capability.CONSOLE_LOG)
        ):
            with contextlib.suppress(SlipwayError):
                run.parameters["console.tail"] = connector.console_log(run.machine_id, 30)
        keep = recipes_failed and run.keep_running.keeps(False)
        if not keep and connector is not None:
            try:
                self._release(connector, run)
            except SlipwayError as exc:
                message = f"{message} (its machines could not be released yet: {exc.message})"
        self._save(run, *events, run.fail(step, message, self._clock()))
        return None

    # -- steps ---------------------------------------------------------------------------

    def _pending(self, run: Run) -> float:
        self._move(run, RunState.PROVISIONING)
        return 0.0

    def _provision(self, run: Run, first_attempt: bool) -> float:
        connector = self._connectors(run.cloud)
        target = run.target
        for group in target.ensured_groups:
            connector.ensure_security_group(group.name, group.rules)
        spec = MachineSpec(
            name=f"slipway-{run.id}",
            image_id=target.native_id,
            flavor=target.flavor,
            cpu=target.cpu,
            ram_gb=target.ram,
            disk_gb=target.disk,
            user_data=user_data_for(run.id, target, validate=False),
            security_groups=tuple(g.name for g in target.security_groups),
            tags={RUN_TAG: run.id, "slipway-owner": run.owner},
            client_token=run.id,
            first_attempt=first_attempt,
        )
        machine = connector.create_machine(spec)
        run.machine_id = machine.id
        run.parameters["instance.id"] = machine.id
        self._move(run, RunState.BOOTING, f"machine {machine.id}")
        return 0.0  # a first look at once: some clouds have the machine running already

    def _boot(self, run: Run) -> float | None:
        assert run.machine_id is not None
        machine = self._connectors(run.cloud).get_machine(run.machine_id)
        notices = self._notices(run, machine.notices)
        if machine.state in (MachineState.ERROR, MachineState.TERMINATED, MachineState.STOPPED):
            raise CloudError(
                f"the machine is {machine.state}: {machine.cloud_message}".rstrip(": "),
                cloud=run.cloud,
            )
        if machine.state is not MachineState.RUNNING or not machine.address:
            if notices:
                self._save(run, *notices)
            return BOOT_POLL_S
        params = run.parameters
        if params.get("hostname") != machine.address:
            params.update(
                {
                    "hostname": machine.address,
                    "ip": machine.address,
                    "ssh.port": machine.ssh_port,
                    "url.ssh": f"ssh://{run.target.login_user}@{machine.address}"
                    f":{machine.ssh_port}",
                }
            )
            forwards = {f.guest_port: f for f in machine.forwards}
            for port in run.target.ports:
                guest = port.port
                if guest in forwards:
                    host, host_port = forwards[guest].host, forwards[guest].host_port
                else:
                    host, host_port = machine.address, guest
                scheme = "https" if guest == 443 else "http"
                params[f"url.service.{port.link_name}"] = f"{scheme}://{host}:{host_port}/"
            changed = True
        else:
            changed = False
        probe = self._probe(run)
        if not probe.reachable:
            if changed or notices:
                self._save(run, *notices)
            return BOOT_POLL_S
        # The same look tells whether cloud-init is done: often it is by then.
        return self._contextualize(
            run, probe, *notices, run.move(RunState.CONTEXTUALIZING, self._clock(), "SSH answers")
        )

    def _notices(self, run: Run, notices: tuple[str, ...]) -> tuple[RunEvent, ...]:
        """Events for what the cloud did to the machine that the run has not
        recorded yet (``machine.notices`` counts those recorded)."""
        seen = int(run.parameters.get("machine.notices", 0))
        if len(notices) <= seen:
            return ()
        run.parameters["machine.notices"] = len(notices)
        now = self._clock()
        return tuple(RunEvent(run.id, now, run.state, text) for text in notices[seen:])

    def _probe(self, run: Run) -> ProbeResult:
        return self._prober.probe(
            str(run.parameters["hostname"]),
            int(run.parameters["ssh.port"]),
            run.target.login_user,
            self._vault.open(run.target.sealed_key),
        )

    def _contextualize(
        self, run: Run, probe: ProbeResult | None = None, *events: RunEvent
    ) -> float | None:
        """Ready once cloud-init has finished and the recipes exited 0.
        ``probe``: a look just taken; ``events``: moves not saved yet."""
        probe = probe or self._probe(run)
        if not probe.finished:
            if events:
                self._save(run, *events)
            return CONTEXT_POLL_S
        if probe.cpu is not None:
            run.parameters["guest.cpu"] = probe.cpu
        if probe.ram_kb is not None:
            run.parameters["guest.ram_kb"] = probe.ram_kb
            run.parameters["guest.ram_gb"] = round(probe.ram_kb / 1024 / 1024, 2)
        if not probe.succeeded:
            run.parameters["recipes.output"] = probe.output_tail
            tail = probe.output_tail.strip().splitlines()[-5:]
            return self._fail(
                run,
                probe.step or "contextualizing",
                probe.problem + (": " + " | ".join(tail) if tail else ""),
                recipes_failed=True,
                events=events,
            )
        ready = run.move(
            RunState.READY, self._clock(), "cloud-init finished and the recipes exited 0"
        )
        self._save(run, *events, ready)
        if not run.keep_running.keeps(True):
            self._move(run, RunState.TERMINATING, f"keep_running is {run.keep_running}")
            return 0.0
        return None

    def _terminate(self, run: Run) -> None:
        connector = self._connector_or_none(run)
        if connector is not None:
            self._release(connector, run)
        self._move(run, RunState.TERMINATED if run.reached_ready else RunState.CANCELLED)
        return

    # -- resources -------------------------------------------------------------------------

    def _connector_or_none(self, run: Run) -> Connector | None:
        try:
            return self._connectors(run.cloud)
        except SlipwayError:
            return None

    def _release(self, connector: Connector, run: Run) -> None:
        """Delete every machine tagged with the run, recorded or not."""
        ids = {m.id for m in connector.list_machines({RUN_TAG: run.id})}
        if run.machine_id:
            ids.add(run.machine_id)
        for machine_id in sorted(ids):
            with contextlib.suppress(NotFound):
                connector.delete_machine(machine_id)
        run.machine_id = None

    def requeue_due(self, enqueue: Callable[[str], None]) -> list[str]:
        """Queue the runs a dead worker left behind: overdue by more than
        ``OVERDUE`` — a step due a moment ago is most likely still waiting in a
        busy queue, and queueing it again would make it run twice (and
        schedule its next step twice, and so on)."""
        with self._uow() as uow:
            due = list(uow.runs.due(self._clock() - OVERDUE))
        for run_id in due:
            enqueue(run_id)
        return due

    def reconcile(self, clouds: Iterable[str] | None = None) -> ReconcileReport:
        """Adopt machines of live runs, delete those that belong to none, on
        ``clouds`` (default: every cloud a run was ever deployed on)."""
        report = ReconcileReport()
        if clouds is None:
            with self._uow() as uow:
                clouds = list(uow.runs.clouds())
        for cloud in clouds:
            try:
                connector = self._connectors(cloud)
                machines = connector.list_machines({})
            except SlipwayError as exc:
                report.failed.append(f"{cloud}: {exc.message}")
                continue
            for machine in machines:
                run_id = machine.tags.get(RUN_TAG)
                with self._uow() as uow:
                    run = uow.runs.get(run_id) if run_id else None
                if run is not None and run.is_live:
                    # Its own steps go on with it: provisioning finds it by its
                    # token, terminating deletes it by its tag.
                    report.adopted.append(machine.id)
                    continue
                try:
                    connector.delete_machine(machine.id)
                    report.deleted.append(machine.id)
                except SlipwayError as exc:
                    report.failed.append(f"{cloud}: {machine.id}: {exc.message}")
        return report
