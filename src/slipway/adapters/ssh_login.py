"""Log in to a machine over SSH with paramiko and run commands there: the
:class:`~slipway.services.ports.GuestLogin` port, used by ``image test``."""

from __future__ import annotations

import io
import logging
import socket

import paramiko

from slipway.services.ports import CommandOutput, Login

__all__ = ["SshLogin", "SshShell"]

# paramiko logs every refused handshake with a traceback while a guest boots;
# the callers report what matters themselves.
logging.getLogger("paramiko").addHandler(logging.NullHandler())
logging.getLogger("paramiko").propagate = False

_FAILURES = (TimeoutError, socket.timeout, OSError, EOFError, paramiko.SSHException)


class SshShell:
    """A logged-in paramiko client."""

    def __init__(self, client: paramiko.SSHClient) -> None:
        self._client = client

    def run(self, command: str, timeout: float) -> CommandOutput:
        try:
            _, stdout, stderr = self._client.exec_command(command, timeout=timeout)
            out: bytes = stdout.read()
            err: bytes = stderr.read()
            status = stdout.channel.recv_exit_status()
        except _FAILURES as exc:
            return CommandOutput(-1, "", f"{type(exc).__name__}: {exc}")
        return CommandOutput(status, out.decode(errors="replace"), err.decode(errors="replace"))

    def close(self) -> None:
        self._client.close()


class SshLogin:
    """Logs in with an OpenSSH ed25519 private key; host keys are accepted
    unseen (a machine's host keys are made at its first boot).

    Timeouts in seconds: ``connect`` for TCP, ``banner`` for sshd's first
    line, ``auth`` for the key exchange and the login. A guest under TCG on a
    busy host took 9 s to let a first login in: the defaults leave room."""

    def __init__(self, connect: float = 10.0, banner: float = 20.0, auth: float = 30.0) -> None:
        self.connect_timeout = connect
        self.banner_timeout = banner
        self.auth_timeout = auth

    def login(self, host: str, port: int, user: str, private_key: str) -> Login:
        key = paramiko.Ed25519Key.from_private_key(io.StringIO(private_key))
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        try:
            client.connect(
                host,
                port=port,
                username=user,
                pkey=key,
                timeout=self.connect_timeout,
                banner_timeout=self.banner_timeout,
                auth_timeout=self.auth_timeout,
                allow_agent=False,
                look_for_keys=False,
            )
        except paramiko.AuthenticationException as exc:
            client.close()
            if "timeout" in str(exc).lower():  # too slow to tell, not a refusal
                return Login(None, answered=True, problem=f"login timed out: {exc}")
            return Login(None, answered=True, problem=f"the key was refused: {exc}")
        except _FAILURES as exc:
            client.close()
            return Login(None, answered=False, problem=f"{type(exc).__name__}: {exc}")
        return Login(SshShell(client), answered=True)
