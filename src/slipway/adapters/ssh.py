"""SSH to a run's machine with paramiko: is it reachable, has cloud-init
finished, did the recipes exit 0, and what CPU and RAM does the guest see."""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass

import paramiko

from slipway.services.userdata import RECIPES_LOG, parse_marker, readiness_command

__all__ = ["Probe", "SshProber"]

# paramiko logs every refused handshake with a traceback while a guest boots;
# the prober reports what matters itself.
logging.getLogger("paramiko").addHandler(logging.NullHandler())
logging.getLogger("paramiko").propagate = False

_FACTS = "nproc; sed -n 's/^MemTotal: *\\([0-9]*\\) kB/\\1/p' /proc/meminfo"


@dataclass(frozen=True)
class Probe:
    """What a look over SSH found. ``finished`` is False while cloud-init runs."""

    reachable: bool
    finished: bool = False
    succeeded: bool = False
    step: str = ""
    cpu: int | None = None
    ram_kb: int | None = None
    output_tail: str = ""
    problem: str = ""


class SshProber:
    """Runs the readiness check over SSH with the run's private key."""

    def __init__(self, connect_timeout: float = 10.0, command_timeout: float = 30.0) -> None:
        self.connect_timeout = connect_timeout
        self.command_timeout = command_timeout

    def _client(self, host: str, port: int, user: str, private_key: str) -> paramiko.SSHClient:
        key = paramiko.Ed25519Key.from_private_key(io.StringIO(private_key))
        client = paramiko.SSHClient()
        # Host keys are generated at first boot and unknown to us by design.
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        client.connect(
            host,
            port=port,
            username=user,
            pkey=key,
            timeout=self.connect_timeout,
            banner_timeout=self.connect_timeout,
            auth_timeout=self.connect_timeout,
            allow_agent=False,
            look_for_keys=False,
        )
        return client

    def _run(self, client: paramiko.SSHClient, command: str) -> str:
        _, stdout, _ = client.exec_command(command, timeout=self.command_timeout)
        output: bytes = stdout.read()
        return output.decode(errors="replace")

    def probe(self, host: str, port: int, user: str, private_key: str) -> Probe:
        try:
            client = self._client(host, port, user, private_key)
        except (TimeoutError, OSError, paramiko.SSHException, EOFError) as exc:
            return Probe(reachable=False, problem=f"{type(exc).__name__}: {exc}")
        try:
            status = self._run(client, readiness_command()).split()
            if not status or status[0] in ("running", "not"):
                return Probe(reachable=True)
            marker = parse_marker(" ".join(status[1:3])) if len(status) >= 3 else None
            facts = self._run(client, _FACTS).split()
            cpu = int(facts[0]) if facts and facts[0].isdigit() else None
            ram = int(facts[1]) if len(facts) > 1 and facts[1].isdigit() else None
            if status[0] != "done" or marker is None or not marker.succeeded:
                tail = self._run(
                    client,
                    f"sudo -n tail -n 20 {RECIPES_LOG} 2>/dev/null || "
                    f"tail -n 20 {RECIPES_LOG} 2>/dev/null",
                )
                step = marker.step if marker else "cloud-init"
                problem = (
                    f"cloud-init status {status[0]}"
                    if marker is None
                    else f"{marker.step} exited {marker.exit_code}"
                )
                return Probe(True, True, False, step, cpu, ram, tail, problem)
            return Probe(True, True, True, marker.step, cpu, ram)
        except (TimeoutError, OSError, paramiko.SSHException) as exc:
            return Probe(reachable=True, problem=f"{type(exc).__name__}: {exc}")
        finally:
            client.close()
