"""Watching machines started under KVM until their guest has settled.

Whatever the accelerator probe said, a KVM guest can still hang: it then
prints nothing, or stops printing, or QEMU ends in ``internal-error``,
``guest-panicked`` or ``shutdown``. The connector asks :meth:`KvmWatch.trouble`
on every look at a KVM machine that has not settled yet (a login prompt or
cloud-init's final line on its console); a reason back means: restart the
machine under TCG.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from slipway.domain.machines import MachineState

__all__ = ["KvmWatch", "settled"]

# getty's prompt on the serial console, or cloud-init's last word.
_SETTLED = re.compile(rb"\S login: |Cloud-init v\. \S+ finished at ")


def settled(console_tail: bytes) -> bool:
    """True when the console shows a guest that has finished booting."""
    return _SETTLED.search(console_tail) is not None


@dataclass(frozen=True)
class KvmWatch:
    """Bounds (seconds) for a KVM guest that has not settled yet."""

    first_output: float = 30.0
    """From launch to the first byte on the serial console (a working KVM
    guest's kernel prints within a few seconds)."""
    stall: float = 180.0
    """Without a new console byte, once it has printed something (cloud-init
    installing packages can be quiet for a while; a hung guest is quiet forever)."""

    def trouble(
        self,
        state: MachineState,
        cloud_message: str,
        *,
        console_bytes: int,
        last_output: float | None,
        launched: float,
        now: float,
    ) -> str | None:
        """Why the machine must leave KVM, or ``None`` while it looks fine.
        ``last_output``/``launched``/``now`` are epoch seconds."""
        if state in (MachineState.ERROR, MachineState.STOPPED):
            return f"under KVM the machine stopped before it was ready ({cloud_message})"
        if console_bytes == 0 or last_output is None:
            if now - launched > self.first_output:
                return (
                    f"under KVM the guest printed nothing on its serial console "
                    f"in {self.first_output:g} s"
                )
            return None
        if now - max(last_output, launched) > self.stall:
            return f"under KVM the guest's console made no progress for {self.stall:g} s"
        return None
