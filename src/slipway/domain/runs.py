"""Runs: one deployment of an image or component on one cloud (DESIGN.md §6).

    pending → provisioning → booting → contextualizing → ready → terminating → terminated
                                                          ↘ failed (any step)   ↘ cancelled

A run keeps what it was resolved to when it was created (native image, flavor,
login user, security groups), so later edits of the definition never change a
run under way. Its parameters (``url.ssh``, ``instance.id`` …) are what the run
page shows; every state change is timestamped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from slipway.domain.run_target import RunTarget

__all__ = [
    "TERMINAL",
    "TRANSITIONAL",
    "IllegalTransition",
    "KeepRunning",
    "Run",
    "RunEvent",
    "RunState",
]


class RunState(StrEnum):
    PENDING = "pending"
    PROVISIONING = "provisioning"
    BOOTING = "booting"
    CONTEXTUALIZING = "contextualizing"
    READY = "ready"
    TERMINATING = "terminating"
    TERMINATED = "terminated"
    FAILED = "failed"
    CANCELLED = "cancelled"


TRANSITIONAL = frozenset(
    {
        RunState.PENDING,
        RunState.PROVISIONING,
        RunState.BOOTING,
        RunState.CONTEXTUALIZING,
        RunState.TERMINATING,
    }
)
"""States a worker moves a run out of; a run stuck in one past its deadline fails."""
TERMINAL = frozenset({RunState.TERMINATED, RunState.FAILED, RunState.CANCELLED})

_NEXT: dict[RunState, frozenset[RunState]] = {
    RunState.PENDING: frozenset({RunState.PROVISIONING, RunState.TERMINATING}),
    RunState.PROVISIONING: frozenset({RunState.BOOTING, RunState.TERMINATING}),
    RunState.BOOTING: frozenset({RunState.CONTEXTUALIZING, RunState.TERMINATING}),
    RunState.CONTEXTUALIZING: frozenset({RunState.READY, RunState.TERMINATING}),
    RunState.READY: frozenset({RunState.TERMINATING}),
    RunState.TERMINATING: frozenset({RunState.TERMINATED, RunState.CANCELLED}),
    RunState.FAILED: frozenset({RunState.TERMINATING}),
    RunState.TERMINATED: frozenset(),
    RunState.CANCELLED: frozenset(),
}


class KeepRunning(StrEnum):
    """What happens to the machine once the deployment script has run."""

    ALWAYS = "always"
    ON_SUCCESS = "on-success"
    ON_ERROR = "on-error"
    NEVER = "never"

    def keeps(self, succeeded: bool) -> bool:
        if self is KeepRunning.ALWAYS:
            return True
        if self is KeepRunning.NEVER:
            return False
        return succeeded == (self is KeepRunning.ON_SUCCESS)


class IllegalTransition(Exception):
    def __init__(self, run_id: str, current: RunState, target: RunState) -> None:
        super().__init__(f"run {run_id} cannot go from {current} to {target}")


@dataclass(frozen=True)
class RunEvent:
    run_id: str
    at: datetime
    state: RunState
    message: str = ""


@dataclass
class Run:
    """A deployment. ``target`` is the frozen resolution (native image id,
    flavor, cpu, ram, disk, login user, groups, ports, recipes, keys)."""

    id: str
    owner: str
    module: str
    cloud: str
    created_at: datetime
    deadline: datetime
    target: RunTarget
    keep_running: KeepRunning = KeepRunning.ON_SUCCESS
    state: RunState = RunState.PENDING
    step: str = ""
    message: str = ""
    machine_id: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    timestamps: dict[str, str] = field(default_factory=dict)
    version: int = 0

    @property
    def reached_ready(self) -> bool:
        return RunState.READY.value in self.timestamps

    @property
    def is_live(self) -> bool:
        """The run may still own cloud resources that must be kept."""
        return self.state not in TERMINAL or (
            self.state is RunState.FAILED and self.machine_id is not None
        )

    def move(self, target: RunState, now: datetime, message: str = "") -> RunEvent:
        """Go to ``target`` if the state machine allows it; returns the event."""
        if target not in _NEXT[self.state]:
            raise IllegalTransition(self.id, self.state, target)
        self.state = target
        self.step = target.value
        self.message = message
        self.timestamps[target.value] = now.isoformat()
        return RunEvent(self.id, now, target, message)

    def fail(self, step: str, message: str, now: datetime) -> RunEvent:
        """Fail from any non-terminal state, naming the step and the cause."""
        if self.state in TERMINAL:
            raise IllegalTransition(self.id, self.state, RunState.FAILED)
        self.state = RunState.FAILED
        self.step = step
        self.message = message
        self.timestamps[RunState.FAILED.value] = now.isoformat()
        return RunEvent(self.id, now, RunState.FAILED, f"{step}: {message}")

    def expired(self, now: datetime) -> bool:
        return self.state in TRANSITIONAL - {RunState.TERMINATING} and now > self.deadline

    def summary(self) -> dict[str, Any]:
        """The run as plain data (what the CLI's and the API's JSON show);
        the sealed key and the recipes stay out."""
        return {
            "id": self.id,
            "owner": self.owner,
            "module": self.module,
            "cloud": self.cloud,
            "state": self.state.value,
            "step": self.step,
            "message": self.message,
            "keep_running": self.keep_running.value,
            "machine_id": self.machine_id,
            "flavor": self.target.flavor,
            "native_id": self.target.native_id,
            "created_at": self.created_at.isoformat(),
            "deadline": self.deadline.isoformat(),
            "parameters": self.parameters,
            "timestamps": self.timestamps,
        }

    @staticmethod
    def deadline_from(now: datetime, timeout_s: float) -> datetime:
        return now + timedelta(seconds=timeout_s)
