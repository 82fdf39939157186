"""Deploy-to-ready on the local cloud against a plain script.

The baseline boots the same image with the same QEMU flags (copy-on-write
overlay, NoCloud seed and disk as virtio drives, user-mode networking with an
SSH forward, ``-accel tcg,thread=multi``) and the same cloud-init user data,
then polls SSH once a second until cloud-init reports done. Slipway does the
same through ``RunService.deploy`` and its workers, from the request to the
run's ``ready`` state. Rounds alternate so both see the same machine load.

    python bench/deploy_overhead.py --image .cache/test-images/…/debian-12-minimal.qcow2

Prints one line per round and a summary; ``--json`` for the raw numbers.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import paramiko
import pycdlib

# paramiko logs every refused handshake while the guest boots; we poll on purpose.
logging.getLogger("paramiko").addHandler(logging.NullHandler())
logging.getLogger("paramiko").propagate = False

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

from slipway.adapters.keys import new_key_pair  # noqa: E402
from slipway.services.userdata import build_user_data, readiness_command  # noqa: E402

CPU, RAM_MB, DISK_GB = 1, 1024, 4  # examples/images/debian-12 on the local catalog


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _seed(folder: Path, user_data: str) -> Path:
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=3, joliet=3, rock_ridge="1.09", vol_ident="cidata")
    for name, text in (("user-data", user_data), ("meta-data", "instance-id: bench\n")):
        data = text.encode()
        iso.add_fp(
            io.BytesIO(data),
            len(data),
            f"/{name.upper().replace('-', '')}.;1",
            rr_name=name,
            joliet_path=f"/{name}",
        )
    path = folder / "seed.iso"
    iso.write(str(path))
    iso.close()
    return path


def _ready(port: int, key: paramiko.PKey) -> bool:
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    try:
        client.connect(
            "127.0.0.1",
            port=port,
            username="debian",
            pkey=key,
            timeout=5,
            banner_timeout=5,
            auth_timeout=5,
            allow_agent=False,
            look_for_keys=False,
        )
        _, out, _ = client.exec_command(readiness_command(), timeout=20)
        return out.read().decode().startswith("done")
    except (OSError, paramiko.SSHException, EOFError):
        return False
    finally:
        client.close()


def baseline(image: Path) -> float:
    """Seconds from starting QEMU to cloud-init done, by hand."""
    with tempfile.TemporaryDirectory(prefix="bench-plain-") as tmp:
        folder = Path(tmp)
        keys = new_key_pair("bench")
        user_data = build_user_data(
            login_user="debian", public_keys=[keys.public], platform="debian", hostname="bench"
        ).text
        start = time.monotonic()
        disk = folder / "disk.qcow2"
        subprocess.run(
            [
                "qemu-img",
                "create",
                "-q",
                "-f",
                "qcow2",
                "-b",
                str(image),
                "-F",
                "qcow2",
                str(disk),
                f"{DISK_GB}G",
            ],
            check=True,
        )
        seed = _seed(folder, user_data)
        port = _free_port()
        pidfile = folder / "pid"
        subprocess.run(
            [
                "qemu-system-x86_64",
                "-accel",
                "tcg,thread=multi",
                "-machine",
                "q35",
                "-smp",
                str(CPU),
                "-m",
                str(RAM_MB),
                "-nodefaults",
                "-no-user-config",
                "-display",
                "none",
                "-vga",
                "none",
                "-drive",
                f"file={disk},if=virtio,format=qcow2,discard=unmap",
                "-drive",
                f"file={seed},if=virtio,format=raw,readonly=on",
                "-netdev",
                f"user,id=net0,hostfwd=tcp:127.0.0.1:{port}-:22",
                "-device",
                "virtio-net-pci,netdev=net0",
                "-device",
                "virtio-rng-pci",
                "-serial",
                f"file:{folder / 'console.log'}",
                "-pidfile",
                str(pidfile),
                "-daemonize",
            ],
            check=True,
        )
        key = paramiko.Ed25519Key.from_private_key(io.StringIO(keys.private))
        try:
            while not _ready(port, key):
                time.sleep(1)
            return time.monotonic() - start
        finally:
            os.kill(int(pidfile.read_text()), signal.SIGKILL)


def slipway(image: Path) -> float:
    """Seconds from ``deploy`` to the run's ``ready``, through Slipway."""
    from slipway.adapters.definitions.loader import load_paths
    from slipway.bootstrap import runtime
    from slipway.config import load_settings
    from slipway.domain.runs import RunState
    from slipway.entrypoints.worker import EmbeddedWorker
    from slipway.services.deploy import DeployRequest

    with tempfile.TemporaryDirectory(prefix="bench-slipway-") as tmp:
        data = Path(tmp)
        (data / "images").mkdir()
        shutil.copy(image, data / "images" / "debian-12-minimal.qcow2")
        settings = load_settings(
            {
                "SLIPWAY_DATA_DIR": tmp,
                "SLIPWAY_USER": "bench",
                "SLIPWAY_CONFIG": str(data / "none.toml"),
            }
        )
        rt = runtime(settings)
        rt.catalog.import_files(load_paths([REPO / "examples"], REPO))
        # The accelerator probe runs once per data folder (it boots the
        # image under KVM for up to 20 s); the baseline knows TCG already, so
        # probe before the clock starts.
        rt.connectors("local").probe_accelerator(  # type: ignore[attr-defined]
            data / "images" / "debian-12-minimal.qcow2"
        )
        with EmbeddedWorker(rt):
            start = time.monotonic()
            run, _ = rt.runs.deploy(DeployRequest("examples/images/debian-12", "local"))
            while (state := rt.runs.get(run.id).state) not in (RunState.READY, RunState.FAILED):
                time.sleep(0.2)
            took = time.monotonic() - start
            rt.runs.terminate(run.id)
            while rt.runs.get(run.id).state is not RunState.TERMINATED:
                time.sleep(0.2)
        if state is not RunState.READY:
            raise SystemExit(f"the run failed: {rt.runs.get(run.id).message}")
        return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    args.image = args.image.resolve()  # a backing file path must not be relative
    plain: list[float] = []
    ours: list[float] = []
    for round_ in range(args.rounds):
        plain.append(baseline(args.image))
        ours.append(slipway(args.image))
        print(
            f"round {round_ + 1}: plain script {plain[-1]:.1f} s, slipway {ours[-1]:.1f} s",
            file=sys.stderr,
        )
    a, b = statistics.median(plain), statistics.median(ours)
    result = {
        "plain_s": plain,
        "slipway_s": ours,
        "plain_median_s": round(a, 1),
        "slipway_median_s": round(b, 1),
        "ratio": round(b / a, 3),
        "overhead_pct": round((b - a) / a * 100, 1),
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(
            f"plain script median {a:.1f} s; slipway median {b:.1f} s; ratio {b / a:.3f} "
            f"(overhead {result['overhead_pct']} % of the boot)"
        )


if __name__ == "__main__":
    main()
