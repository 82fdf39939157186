"""Password hashing with Argon2id (argon2-cffi), the first choice of the
OWASP password-storage guidance and the winner of the Password Hashing
Competition; its defaults are RFC 9106's low-memory profile (64 MiB, 3 passes)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

__all__ = ["Argon2Hasher"]


class Argon2Hasher:
    def __init__(self, *, memory_kib: int = 65536, time_cost: int = 3) -> None:
        self._hasher = PasswordHasher(memory_cost=memory_kib, time_cost=time_cost)

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False
