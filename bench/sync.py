"""Provider sync of one image to the local store, against the SHA-512 of the
file alone (the floor: ``sha512sum``) and against a sequential pipeline (the
baseline a naive tool would run), measured in the same run.

    .venv/bin/python bench/sync.py [--size 2G] [--rounds 3] [--cold] [--output json]

The image is a qcow2 of ``--size`` whose every cluster is written (pattern
0x5a), so the file is about that many bytes. It is served from disk over
HTTP on 127.0.0.1 (``sendfile``) in this process. Three routes, each run
``--rounds`` times in rotating order, medians reported:

- **hash limit**: ``sha512sum`` of the served file;
- **sequential**: ``curl -o`` of the file, ``sha512sum`` of the download,
  ``qemu-img convert -O qcow2``, ``cp`` into a store folder: timed as a whole;
- **Slipway**: ``SyncService.run`` of a subscription to a signed list naming
  the image, target the local cloud (fetch and verify the list, download and
  hash the file, put it in the image store), in a fresh data folder each
  round; the record's steps give the split.

Before each measurement the previous one's files are deleted and dirty pages
written out (``sync``), so none of a route's writing falls on the next; with
``--cold`` the page cache is dropped too (needs root).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, BinaryIO

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

MIB = 1024 * 1024
GIB = 1024 * MIB
_WRITE = 256 * MIB  # qemu-io allocates a buffer of each write's length
HASH_GOAL = 1.3  # Slipway / hash limit, at most
SEQUENTIAL_GOAL = 2.0  # sequential / Slipway, at least


def parse_size(text: str) -> int:
    """Bytes in ``text``: a number with an optional K, M or G (powers of 1024)."""
    units = {"K": 1024, "M": MIB, "G": GIB}
    suffix = text[-1:].upper()
    if suffix in units:
        return int(float(text[:-1]) * units[suffix])
    return int(text)


def make_image(path: Path, size: int) -> None:
    """A qcow2 of ``size`` bytes, every cluster written."""
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", path, str(size)], check=True)
    writes: list[str] = []
    for offset in range(0, size, _WRITE):
        writes += ["-c", f"write -P 0x5a {offset} {min(_WRITE, size - offset)}"]
    subprocess.run(["qemu-io", "-f", "qcow2", *writes, path], check=True, capture_output=True)


class _FileHandler(SimpleHTTPRequestHandler):
    """Files from a folder, sent with ``sendfile`` (no copy through Python)."""

    def log_message(self, *args: Any) -> None:
        pass

    def copyfile(self, source: BinaryIO, outputfile: Any) -> None:  # type: ignore[override]
        self.connection.sendfile(source)


@contextmanager
def serving(folder: Path) -> Iterator[str]:
    """An HTTP server on 127.0.0.1 serving ``folder``; yields its URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_FileHandler, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def settle(cold: bool, *leftovers: Path) -> None:
    """Delete ``leftovers``, write dirty pages out and, if ``cold``, drop the page cache."""
    for path in leftovers:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    os.sync()
    if cold:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")


def sha512sum(path: Path) -> str:
    out = subprocess.run(["sha512sum", path], check=True, capture_output=True, text=True).stdout
    return out.split()[0]


@dataclass
class Routes:
    """The three routes over one served image, and what each round measured."""

    work: Path
    image: Path
    url: str
    sha512: str
    cold: bool
    glance: Path | None = None  # a clouds.yaml whose lab-admin entry's Glance is the target
    seconds: dict[str, list[float]] = field(default_factory=dict)
    steps: list[dict[str, float]] = field(default_factory=list)
    syncs: int = 0

    def _sdk(self) -> Any:
        import openstack
        from openstack import config

        assert self.glance is not None
        region = config.OpenStackConfig(config_files=[str(self.glance)], load_envvars=False)
        return openstack.connection.Connection(config=region.get_one(cloud="lab-admin"))

    def _connector(self) -> Any:
        from slipway.connectors.registry import CloudDriver

        return CloudDriver.OPENSTACK.connect(
            "lab", {"credentials": "lab-admin", "clouds_yaml": str(self.glance),
                    "region": "RegionOne"},
        )  # fmt: skip

    def hash_limit(self) -> float:
        settle(self.cold)
        started = time.perf_counter()
        found = sha512sum(self.image)
        elapsed = time.perf_counter() - started
        assert found == self.sha512
        return elapsed

    def sequential(self) -> float:
        folder = self.work / "sequential"
        settle(self.cold, folder)
        store = folder / "store"
        store.mkdir(parents=True)
        download, converted = folder / "download.qcow2", folder / "converted.qcow2"
        started = time.perf_counter()
        subprocess.run(["curl", "-sSf", "-o", download, f"{self.url}/image.qcow2"], check=True)
        if sha512sum(download) != self.sha512:
            raise RuntimeError("the sequential download's SHA-512 is not the list's")
        subprocess.run(["qemu-img", "convert", "-O", "qcow2", download, converted], check=True)
        if self.glance is None:
            subprocess.run(["cp", converted, store / "image.qcow2"], check=True)
            return time.perf_counter() - started
        sdk = self._sdk()  # what `openstack image create --file` does
        image = sdk.create_image(
            "bench-sequential", filename=str(converted), disk_format="qcow2",
            container_format="bare", wait=True,
        )  # fmt: skip
        elapsed = time.perf_counter() - started
        sdk.image.delete_image(image, ignore_missing=True)
        return elapsed

    def slipway(self) -> float:
        from tests.endorser_ca import NOW, an_image
        from tests.sync_world import SyncWorld

        from slipway.domain.sync import SyncOutcome
        from slipway.imagekit.store import ImageStore

        # A new folder and database each round: bootstrap keeps one engine per URL.
        self.syncs += 1
        settle(False, self.work / f"slipway-{self.syncs - 1}")
        folder = self.work / f"slipway-{self.syncs}"
        folder.mkdir()
        world = SyncWorld(folder, f"sqlite:///{folder}/slipway.db")
        try:
            listed = an_image(
                identifier="00000000-0000-4000-8000-0000000be9c5",
                uri=f"{self.url}/image.qcow2",
                size=self.image.stat().st_size,
                sha512=self.sha512,
                title="Bench image",
                appid="bench",
                mpuri="https://market.example.org/appliances/bench@1",
                expires=NOW + timedelta(days=30),
            )
            world.publish(listed)
            if self.glance is None:
                world.subscribe()
                service = world.sync()
            else:
                connector = self._connector()
                service = world.sync_to(connector)
                world.subscribe(cloud="lab", service=service)
            settle(self.cold)
            started = time.perf_counter()
            record = service.run("site")
            elapsed = time.perf_counter() - started
        finally:
            world.close()
        if record.outcome is not SyncOutcome.SUCCEEDED:
            raise RuntimeError(f"the sync ended {record.outcome}: {record.steps}")
        if self.glance is None:
            stored = ImageStore(world.data_dir / "images").list()
            assert [e.sha512 for e in stored] == [self.sha512]
        else:
            (held,) = service.status("site").images
            sdk = self._sdk()
            assert sdk.image.get_image(held.native_id).hash_value == self.sha512
            sdk.image.delete_image(held.native_id, ignore_missing=True)
        split: dict[str, float] = {}
        for step in record.steps:
            split[step.step] = split.get(step.step, 0.0) + step.seconds
        # An upload beside the download (to Glance) spends the same seconds.
        beside = any(s.step == "upload" and s.detail == "while downloading" for s in record.steps)
        overlap = min(split.get("download", 0.0), split.get("upload", 0.0)) if beside else 0.0
        split["bookkeeping"] = elapsed - sum(split.values()) + overlap
        self.steps.append(split)
        return elapsed

    def measure(self, rounds: int) -> None:
        routes: list[tuple[str, Callable[[], float]]] = [
            ("hash limit", self.hash_limit),
            ("sequential", self.sequential),
            ("slipway", self.slipway),
        ]
        for turn in range(rounds):
            for name, route in routes[turn % 3 :] + routes[: turn % 3]:
                elapsed = route()
                self.seconds.setdefault(name, []).append(elapsed)
                print(f"  round {turn + 1}: {name} {elapsed:.2f} s", file=sys.stderr, flush=True)
        settle(False, self.work / "sequential", self.work / f"slipway-{self.syncs}")


def report(routes: Routes, size: int, output: str) -> None:
    last_step = "openstacksdk upload" if routes.glance else "`cp`"
    target = "Glance" if routes.glance else "the local store"
    medians = {name: statistics.median(found) for name, found in routes.seconds.items()}
    names = sorted({name for split in routes.steps for name in split})
    steps = {n: statistics.median(s.get(n, 0.0) for s in routes.steps) for n in names}
    hash_ratio = medians["slipway"] / medians["hash limit"]
    sequential_ratio = medians["sequential"] / medians["slipway"]
    if output == "json":
        print(
            json.dumps(
                {
                    "bytes": size,
                    "cold": routes.cold,
                    "seconds": routes.seconds,
                    "median_seconds": medians,
                    "slipway_steps": routes.steps,
                    "slipway_over_hash_limit": hash_ratio,
                    "sequential_over_slipway": sequential_ratio,
                },
                indent=2,
            )
        )
        return
    cache = "cold" if routes.cold else "warm"
    print(f"image: qcow2, {size / MIB:.0f} MiB, to {target}; page cache {cache}; medians of "
          f"{len(routes.steps)} rounds")  # fmt: skip
    print("| route | seconds (median) | rounds | MiB/s | vs hash limit |")
    print("|---|---|---|---|---|")
    for name, label in (
        ("hash limit", "hash limit: `sha512sum`"),
        ("sequential", f"sequential: `curl`, `sha512sum`, `qemu-img convert`, {last_step}"),
        ("slipway", "Slipway: `SyncService.run`"),
    ):
        found = ", ".join(f"{s:.1f}" for s in routes.seconds[name])
        print(
            f"| {label} | {medians[name]:.2f} | {found} | {size / MIB / medians[name]:.0f} "
            f"| {medians[name] / medians['hash limit']:.2f}x |"
        )
    print()
    print("| Slipway step | seconds (median) |")
    print("|---|---|")
    for name in names:
        print(f"| {name} | {steps[name]:.2f} |")
    print()
    hash_ok = "met" if hash_ratio <= HASH_GOAL else "missed"
    sequential_ok = "met" if sequential_ratio >= SEQUENTIAL_GOAL else "missed"
    print(f"Slipway / hash limit: {hash_ratio:.2f}x (goal <= {HASH_GOAL}x: {hash_ok})")
    print(
        f"sequential / Slipway: {sequential_ratio:.2f}x "
        f"(goal >= {SEQUENTIAL_GOAL}x: {sequential_ok})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="2G", help="image size: bytes, or with K, M or G")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cold", action="store_true", help="drop the page cache before each")
    parser.add_argument("--output", choices=("table", "json"), default="table")
    parser.add_argument("--work", default="/var/tmp", help="folder for the files (~4x --size)")
    parser.add_argument(
        "--glance",
        metavar="CLOUDS_YAML",
        help="sync to the Glance of this clouds.yaml's lab-admin (tests/openstack_lab/up "
        "prints it) instead of the local store; the sequential route then uploads with "
        "openstacksdk",
    )
    args = parser.parse_args()
    for tool in ("qemu-img", "qemu-io", "curl", "sha512sum"):
        if shutil.which(tool) is None:
            parser.error(f"{tool} is not installed")
    size = parse_size(args.size)
    with tempfile.TemporaryDirectory(prefix="bench-sync-", dir=args.work) as tmp:
        work = Path(tmp)
        served = work / "served"
        served.mkdir()
        image = served / "image.qcow2"
        print(f"making a {size / MIB:.0f} MiB qcow2", file=sys.stderr, flush=True)
        make_image(image, size)
        digest = hashlib.sha512()
        with image.open("rb") as stream:
            while chunk := stream.read(4 * MIB):
                digest.update(chunk)
        with serving(served) as url:
            glance = Path(args.glance) if args.glance else None
            routes = Routes(work, image, url, digest.hexdigest(), args.cold, glance)
            routes.measure(args.rounds)
        report(routes, image.stat().st_size, args.output)


if __name__ == "__main__":
    main()
