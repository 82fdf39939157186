"""SSH key pairs for runs, and the vault that keeps their private halves
encrypted at rest (Fernet: AES-128-CBC with an HMAC, from ``cryptography``).

The vault key is a file in the data folder, created 0600 on first use; the
store only ever holds ciphertext.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from slipway.errors import SlipwayError

__all__ = ["KeyPair", "Vault", "new_key_pair"]


class KeyPair:
    """An OpenSSH private key (text) and its public line."""

    def __init__(self, private: str, public: str) -> None:
        self.private = private
        self.public = public

    def __repr__(self) -> str:  # never print the private half
        return f"KeyPair(public={self.public!r})"


def new_key_pair(comment: str) -> KeyPair:
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )
    return KeyPair(private, f"{public} {comment}")


class Vault:
    """Encrypts and decrypts secrets with the key in ``key_file``."""

    def __init__(self, key_file: Path) -> None:
        self.key_file = key_file
        self._fernet: Fernet | None = None

    def _cipher(self) -> Fernet:
        if self._fernet is None:
            if not self.key_file.exists():
                self._create_key()
            self._fernet = Fernet(self.key_file.read_bytes().strip())
        return self._fernet

    def _create_key(self) -> None:
        """Write a new key unless another thread or process got there first.
        The key is written whole to a private file and then linked into place,
        so nobody ever reads a key file that exists but is still empty."""
        self.key_file.parent.mkdir(parents=True, exist_ok=True)
        fd, draft = tempfile.mkstemp(prefix=".vault-", dir=self.key_file.parent)  # 0600
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(Fernet.generate_key())
            with contextlib.suppress(FileExistsError):  # the first link wins
                os.link(draft, self.key_file)
        finally:
            Path(draft).unlink()

    def seal(self, secret: str) -> str:
        return self._cipher().encrypt(secret.encode()).decode()

    def open(self, sealed: str) -> str:
        try:
            return self._cipher().decrypt(sealed.encode()).decode()
        except InvalidToken:
            raise SlipwayError(
                f"cannot decrypt a run key with {self.key_file}",
                hint="the vault key file was replaced; runs created before cannot be reached "
                "over SSH, but can still be terminated",
            ) from None
