"""Start, watch and end runs, as one user (DESIGN.md §6).

``deploy`` does every check that can fail before anything is created — the
module and the deploy right, a native image for the cloud, a flavor that fits,
security groups that must already exist, the cloud reachable, valid user data —
then records the run as ``pending`` with its resolution frozen and queues its
first step. Workers move it on (:mod:`slipway.services.runner`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from slipway.connectors.base import Connector, require
from slipway.domain.machines import Capability
from slipway.domain.modules import Right
from slipway.domain.run_target import Recipes, RunGroup, RunTarget, ServicePort
from slipway.domain.runs import TERMINAL, KeepRunning, Run, RunEvent, RunState
from slipway.domain.security import GroupAction
from slipway.domain.sizes import Flavor, NoFlavorFits, Size, pick_flavor
from slipway.errors import Conflict, InputError, NotFound, PermissionDenied, SizeError
from slipway.services.catalog import CatalogService
from slipway.services.ports import KeyPair, Queue, UnitOfWork, Vault
from slipway.services.resolve import CloudTarget
from slipway.services.userdata import build_user_data

__all__ = ["DeployRequest", "RunService", "user_data_for"]

DEFAULT_TIMEOUT_S = 30 * 60.0


@dataclass(frozen=True)
class DeployRequest:
    module: str
    cloud: str
    size: Size | None = None
    public_keys: tuple[str, ...] = ()
    keep_running: KeepRunning | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S


def user_data_for(run_id: str, target: RunTarget, *, validate: bool = True) -> str:
    """The cloud-init document of a run, rebuilt from its frozen target; checked
    against cloud-init's schema unless ``validate`` is False (the deploy checked
    the very same document already)."""

    document = build_user_data(
        login_user=target.login_user,
        public_keys=target.public_keys,
        platform=target.platform or "other",
        recipes=target.recipes,
        hostname=f"slipway-{run_id}",
        open_ports=[(p.port, p.protocol) for p in target.ports],
    )
    if validate:
        from slipway.adapters.cloudinit import validate_user_data

        validate_user_data(document.text)
    return document.text


def _service_ports(document: Mapping[str, Any]) -> tuple[ServicePort, ...]:
    """The ports an effective definition declares."""
    return tuple(
        ServicePort(int(p["port"]), p.get("protocol") or "tcp", p.get("name"))
        for p in document.get("ports") or ()
    )


def _recipes(document: Mapping[str, Any]) -> Recipes:
    """The recipes an effective definition declares; absent ones are empty."""
    declared = document.get("recipes") or {}
    return Recipes(
        tuple(declared.get("packages") or ()),
        declared.get("pre_install") or "",
        declared.get("post_install") or "",
        declared.get("deployment") or "",
    )


class RunService:
    """Runs as ``user`` sees them."""

    def __init__(
        self,
        unit_of_work: Callable[[], UnitOfWork],
        catalog: CatalogService,
        connectors: Callable[[str], Connector],
        vault: Vault,
        queue: Queue,
        new_key_pair: Callable[[str], KeyPair],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._uow = unit_of_work
        self.catalog = catalog
        self.user = catalog.user
        self._connectors = connectors
        self._vault = vault
        self._queue = queue
        self._new_key_pair = new_key_pair
        self._clock = clock

    # -- starting ---------------------------------------------------------------

    def deploy(self, request: DeployRequest) -> tuple[Run, list[str]]:
        """Check everything, record the run, queue its first step.
        Returns the run and the warnings the user should see."""
        if request.size is not None and request.size.problems():
            key, message = request.size.problems()[0]
            raise InputError(f"--size {key} {message}")
        if not 60 <= request.timeout_s <= 24 * 3600:
            raise InputError("the run timeout must be between 60 s and 24 h")
        resolved = self.catalog.resolve(request.module, clouds=[request.cloud], right=Right.DEPLOY)
        target = resolved.targets[request.cloud]
        document = resolved.document
        flavor, warnings = self._flavor(target, request.size, resolved.size)
        connector = self._connectors(request.cloud)
        connector.check()  # an unreachable cloud or refused credentials: no run at all
        groups, group_warnings = self._check_groups(connector, target)
        warnings += group_warnings
        if not target.login_user:
            raise InputError(f"{resolved.module.label} has no login_user for {request.cloud}")

        run_id = uuid.uuid4().hex[:12]
        keys = self._new_key_pair(f"slipway-run-{run_id}")
        frozen = RunTarget(
            native_id=target.native_id,
            flavor=flavor.name,
            cpu=flavor.cpu,
            ram=flavor.ram,
            login_user=target.login_user,
            kind=resolved.module.kind,
            driver=target.cloud.driver,
            run_key=keys.public,
            sealed_key=self._vault.seal(keys.private),
            disk=(request.size or resolved.size).disk,
            platform=document.get("platform"),
            security_groups=groups,
            ports=_service_ports(document),
            recipes=_recipes(document),
            user_keys=request.public_keys,
        )
        user_data_for(run_id, frozen)
        keep = request.keep_running or KeepRunning(document.get("keep_running", "on-success"))
        now = self._clock()
        run = Run(
            id=run_id,
            owner=self.user,
            module=resolved.module.label,
            cloud=request.cloud,
            created_at=now,
            deadline=Run.deadline_from(now, request.timeout_s),
            target=frozen,
            keep_running=keep,
            timestamps={"pending": now.isoformat()},
            parameters={
                "cloud": request.cloud,
                "native.image": target.native_id,
                "flavor": flavor.name,
                "login.user": target.login_user,
            },
        )
        with self._uow() as uow:
            uow.runs.add(run)
            uow.runs.add_event(
                RunEvent(
                    run.id, now, RunState.PENDING, f"{resolved.module.label} on {request.cloud}"
                )
            )
            uow.commit()
        self._queue.enqueue(run.id)
        return run, warnings

    def _flavor(
        self, target: CloudTarget, size: Size | None, default: Size
    ) -> tuple[Flavor, list[str]]:
        if size is not None:
            catalog = self.catalog.flavors(target.cloud.name)[1]
            try:
                return pick_flavor(catalog, size.merged_over(default)), []
            except NoFlavorFits as exc:
                raise SizeError(str(exc)) from None
        if target.pick is None:
            raise SizeError(target.problem or f"no flavor fits on {target.cloud.name}")
        return target.pick.flavor, list(target.pick.warnings)

    def _check_groups(
        self, connector: Connector, target: CloudTarget
    ) -> tuple[tuple[RunGroup, ...], list[str]]:
        groups: list[RunGroup] = []
        warnings: list[str] = []
        for plan in target.groups:
            if plan.warning:
                warnings.append(plan.warning)
            if plan.action is GroupAction.UNSUPPORTED:
                continue
            if plan.action is GroupAction.MUST_EXIST:
                if Capability.SECURITY_GROUPS in connector.unsupported:
                    continue
                if connector.check_security_group(plan.on_cloud) is None:
                    raise NotFound(
                        f"security group {plan.group!r} does not exist on {target.cloud.name}",
                        hint="create it there, or declare it in Slipway (kind: security-group) "
                        "so that it is created for you",
                    )
            # By what the cloud calls it: the owner's own group.
            groups.append(RunGroup(plan.on_cloud, plan.action, plan.rules))
        return tuple(groups), warnings

    # -- reading ------------------------------------------------------------------

    def _visible(self, uow: UnitOfWork, run_id: str) -> Run:
        """The run; someone else's is answered as one that does not exist."""
        run = uow.runs.get(run_id)
        if run is None or (run.owner != self.user and not uow.identity.is_admin(self.user)):
            raise NotFound(f"run {run_id} does not exist", hint="slipway runs lists your runs")
        return run

    def get(self, run_id: str) -> Run:
        with self._uow() as uow:
            return self._visible(uow, run_id)

    def events(self, run_id: str) -> list[RunEvent]:
        with self._uow() as uow:
            self._visible(uow, run_id)
            return list(uow.runs.events(run_id))

    def list(
        self,
        *,
        everyone: bool = False,
        states: Sequence[RunState] | None = None,
        cloud: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Run]:
        """The user's runs (an admin's ``everyone``: all runs), newest first,
        in any of ``states`` and on ``cloud`` when given."""
        with self._uow() as uow:
            if everyone and not uow.identity.is_admin(self.user):
                raise PermissionDenied(
                    f"only an admin sees everyone's runs; {self.user} is not one"
                )
            return list(
                uow.runs.list(
                    owner=None if everyone else self.user,
                    states=states,
                    cloud=cloud,
                    limit=limit,
                    offset=offset,
                )
            )

    def access(self, run_id: str) -> tuple[str, int, str, str]:
        """(host, port, user, private key) to reach a ready run's machine."""
        run = self.get(run_id)
        host, port = run.parameters.get("hostname"), run.parameters.get("ssh.port")
        if not host or not port:
            raise Conflict(f"run {run_id} is {run.state}: its machine has no address yet")
        return (
            str(host),
            int(port),
            run.target.login_user,
            self._vault.open(run.target.sealed_key),
        )

    def console(self, run_id: str, lines: int = 100) -> str:
        run = self.get(run_id)
        if run.machine_id is None:
            raise Conflict(f"run {run_id} has no machine (it is {run.state})")
        connector = self._connectors(run.cloud)
        require(connector, Capability.CONSOLE_LOG)
        return connector.console_log(run.machine_id, lines)

    # -- ending ---------------------------------------------------------------------

    def terminate(self, run_id: str) -> Run:
        """Ask for the run's resources to be released, from any state."""
        for _ in range(5):
            with self._uow() as uow:
                run = self._visible(uow, run_id)
                if run.state in TERMINAL - {RunState.FAILED} or run.state is RunState.TERMINATING:
                    return run
                if run.state is RunState.FAILED and run.machine_id is None:
                    return run
                event = run.move(RunState.TERMINATING, self._clock(), f"requested by {self.user}")
                try:
                    uow.runs.save(run)
                except Conflict:
                    continue  # a worker moved it meanwhile: look again
                uow.runs.add_event(event)
                uow.commit()
            self._queue.enqueue(run_id)
            return run
        raise Conflict(f"run {run_id} keeps changing; try again")
