"""The vault key: created once, even when many deploys need it at the same moment."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from slipway.adapters.keys import Vault


def test_concurrent_first_uses_agree_on_one_key(tmp_path: Path) -> None:
    for attempt in range(20):
        key_file = tmp_path / f"vault-{attempt}.key"
        barrier = threading.Barrier(8)

        def seal(_: int, key_file: Path = key_file, barrier: threading.Barrier = barrier) -> str:
            vault = Vault(key_file)  # one per thread, as separate processes would have
            barrier.wait()
            return vault.seal("secret")

        with ThreadPoolExecutor(8) as pool:
            sealed = list(pool.map(seal, range(8)))
        assert {Vault(key_file).open(s) for s in sealed} == {"secret"}
        assert oct(key_file.stat().st_mode & 0o777) == "0o600"
