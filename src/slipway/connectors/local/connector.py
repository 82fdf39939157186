"""The local cloud: real VMs on this machine with QEMU (DESIGN.md §7).

A machine is a folder under ``<data_dir>/machines/`` (layout in ``_layout``)
and a daemonised QEMU process. Nothing lives only in this process's memory,
so a new connector — after a crash or a restart — finds every machine again.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from slipway.connectors.limits import limits_of
from slipway.connectors.local import _process
from slipway.connectors.local._accel import (
    PROBE_TIMEOUT,
    AcceleratorChoice,
    ProbeOutcome,
    accelerator_args,
    available_accelerators,
    choose_accelerator,
    reached_user_space,
    read_choice,
    remember_accelerator,
)
from slipway.connectors.local._layout import MachineFolder, write_json
from slipway.connectors.local._seed import write_seed
from slipway.connectors.local._watchdog import KvmWatch, settled
from slipway.connectors.local.images import LocalImages, StoreImages
from slipway.domain.machines import (
    Capability,
    CloudImage,
    ImageSource,
    ImageStream,
    Machine,
    MachineSpec,
    MachineState,
    PortForward,
    Rule,
    SecurityGroup,
    ingress_tcp_ports,
)
from slipway.domain.sizes import Flavor
from slipway.errors import CloudError, InputError, NotFound, ToolError, Unsupported

__all__ = ["ImagePath", "LocalConnector"]

log = logging.getLogger(__name__)

ImagePath = Callable[[str], Path]
"""Resolves a native image id of the local cloud to its qcow2 file (overrides
the image store's own resolution)."""

_HOST = "127.0.0.1"
_CONFIGURED = "set in the configuration"
_PORT_ATTEMPTS = 3  # a free port can be taken between choosing it and QEMU binding it
_PROBE_PREFIX = "probe-"
_PROBE_LOCK = "prober.lock"
_PROBE_LOCKLESS_S = 600.0  # a probe folder not locked after this long was abandoned


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((_HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def _rule_json(rule: Rule) -> dict[str, str]:
    return {"protocol": rule.protocol, "ports": rule.ports, "source": rule.source}


def _group_from_json(data: Mapping[str, Any]) -> SecurityGroup:
    rules = tuple(Rule(r["protocol"], r.get("ports", ""), r.get("source", "0.0.0.0/0"))
                  for r in data["rules"])  # fmt: skip
    return SecurityGroup(data["name"], rules, id=data["name"])


class LocalConnector:
    """Machines as QEMU processes under ``data_dir``; ``image_path`` resolves
    image ids (by default: the local image store in ``<data_dir>/images``)."""

    def __init__(
        self,
        cloud: str,
        data_dir: Path,
        *,
        images: LocalImages | None = None,
        image_path: ImagePath | None = None,
        qemu: str = "qemu-system-x86_64",
        qemu_img: str = "qemu-img",
        accelerator: str = "auto",
        kvm_watch: KvmWatch | None = None,
        probe_timeout: float = PROBE_TIMEOUT,
    ) -> None:
        if accelerator not in ("auto", "kvm", "tcg"):
            raise InputError(f"accelerator must be auto, kvm or tcg, got {accelerator!r}")
        self.cloud = cloud
        self.data_dir = data_dir
        self.qemu = qemu
        self.qemu_img = qemu_img
        self._choice: AcceleratorChoice | None = None
        if accelerator != "auto":
            self._choice = AcceleratorChoice(accelerator, _CONFIGURED)
        self._choice_lock = threading.Lock()
        self._probe_timeout = probe_timeout
        self.kvm_watch = kvm_watch or KvmWatch()
        self.images_store = images or StoreImages(data_dir / "images")
        self._image_path = image_path or self.images_store.path
        # Security groups become port forwards, client tokens become machine
        # ids, images go into the local image store.
        self.unsupported: Mapping[Capability, str] = limits_of("local")

    def check(self) -> None:
        """QEMU is installed: the local cloud has no credentials to refuse."""
        for tool in (self.qemu, self.qemu_img):
            if shutil.which(tool) is None:
                raise CloudError(
                    f"{tool} is not installed on this host", cloud=self.cloud, hint="slipway doctor"
                )

    # -- paths -------------------------------------------------------------------

    @property
    def _machines(self) -> Path:
        return self.data_dir / "machines"

    def _group_file(self, name: str) -> Path:
        if not name or "/" in name or name.startswith("."):
            raise InputError(f"security group name {name!r} is not valid")
        return self.data_dir / "clouds" / self.cloud / "security-groups" / f"{name}.json"

    def _folder(self, machine_id: str) -> MachineFolder:
        if not machine_id or "/" in machine_id or machine_id.startswith("."):
            raise NotFound(f"{self.cloud}: machine {machine_id!r} does not exist")
        return MachineFolder(self._machines / machine_id)

    @property
    def _accelerator_cache(self) -> Path:
        return self.data_dir / "local-accelerator.json"

    def accelerator_choice(self) -> AcceleratorChoice | None:
        """The accelerator machines start with and why, without probing:
        ``None`` until the first machine (or ``probe_accelerator``) chose it."""
        return self._choice or read_choice(self.qemu, self._accelerator_cache)

    def details(self) -> dict[str, str]:
        """The accelerator and why, for ``slipway clouds list``."""
        choice = self.accelerator_choice()
        if choice is None:
            return {
                "accelerator": "not chosen yet",
                "accelerator_reason": "tried when the first machine starts; "
                "slipway doctor tries it now",
            }
        return {"accelerator": choice.accelerator, "accelerator_reason": choice.reason}

    def probe_accelerator(self, guest: Path | None, *, fresh: bool = False) -> AcceleratorChoice:
        """Choose: try KVM with the Linux image ``guest`` unless a final
        answer is cached (``fresh``: even then, as ``slipway doctor`` does)."""
        if self._choice is not None and self._choice.reason == _CONFIGURED:
            return self._choice
        probe = None if guest is None else (lambda timeout: self._probe_kvm(guest, timeout))
        choice = choose_accelerator(self.qemu, self._accelerator_cache, probe,
                                    timeout=self._probe_timeout, fresh=fresh)  # fmt: skip
        self._choice = choice
        return choice

    def _accelerator_for(self, base: Path) -> str:
        """The accelerator a machine on ``base`` starts with; the first one
        asked probes KVM with ``base`` itself."""
        with self._choice_lock:
            self._sweep_stale_probes()
            if self._choice is None or not self._choice.final:
                self.probe_accelerator(base)
                assert self._choice is not None
                if self._choice.accelerator == "tcg" and "tcg" not in available_accelerators(
                    self.qemu
                ):
                    raise ToolError(
                        self.qemu,
                        f"can run no guest here: not under KVM ({self._choice.reason}), "
                        "and it has no software emulation (TCG)",
                        hint="apt-get install qemu-system-x86; slipway doctor says more",
                    )
            assert self._choice is not None
            return self._choice.accelerator

    def _use_tcg_from_now_on(self, reason: str) -> None:
        with self._choice_lock:
            self._choice = AcceleratorChoice("tcg", reason)
            remember_accelerator(self.qemu, self._accelerator_cache, self._choice)

    # -- translation -------------------------------------------------------------

    def _to_machine(self, folder: MachineFolder, record: Mapping[str, Any]) -> Machine:
        pid = _process.pid_of(folder)
        message = ""
        if pid is None:
            # Never started (a crash during create) or QEMU exited: the guest powered off.
            state = MachineState.STOPPED if folder.pidfile.exists() else MachineState.PENDING
            if folder.pidfile.exists():
                message = "the QEMU process has exited"
        else:
            status = _process.qemu_status(folder)
            state = _process.QEMU_STATES.get(status or "", MachineState.UNKNOWN)
            if status is None:
                state, message = MachineState.RUNNING, "QMP did not answer"
            elif state is MachineState.ERROR:
                message = f"QEMU reports {status}"
        forwards = tuple(PortForward(f["guest_port"], f["host"], f["host_port"])
                         for f in record.get("forwards", []))  # fmt: skip
        ssh = next((f.host_port for f in forwards if f.guest_port == 22), 22)
        running = state is MachineState.RUNNING
        return Machine(
            id=folder.id,
            name=record["name"],
            state=state,
            address=_HOST if running else None,
            ssh_port=ssh,
            forwards=tuple(f for f in forwards if f.guest_port != 22),
            tags=dict(record.get("tags", {})),
            image_id=record.get("image_id", ""),
            flavor=record.get("flavor", ""),
            cloud_message=message,
            notices=tuple(record.get("notices", ())),
        )

    # -- machines ----------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self, folder: MachineFolder) -> Iterator[None]:
        with folder.lock.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _machine_id(self, spec: MachineSpec) -> str:
        if spec.client_token:
            token = f"{self.cloud}\0{spec.client_token}".encode()
            return "vm-" + hashlib.sha256(token).hexdigest()[:12]
        return "vm-" + uuid.uuid4().hex[:12]

    def create_machine(self, spec: MachineSpec) -> Machine:
        if spec.cpu < 1 or spec.ram_mb < 128:
            raise InputError(f"a local machine needs at least 1 CPU and 128 MB RAM, got {spec}")
        folder = MachineFolder(self._machines / self._machine_id(spec))
        if folder.read() is None:
            # Before anything is created: the image exists and QEMU can run it here.
            self._accelerator_for(self._base_image(spec.image_id))
        folder.root.parent.mkdir(parents=True, exist_ok=True)
        # Private: the seed holds the user data, which may hold recipes with secrets.
        folder.root.mkdir(mode=0o700, exist_ok=True)
        with self._locked(folder):
            record = folder.read()
            if record is None:
                record = self._prepare(folder, spec)
            elif record.get("cloud") != self.cloud:
                raise CloudError(f"machine {folder.id} belongs to another cloud", cloud=self.cloud)
            if not folder.pidfile.exists():
                self._launch(folder, record)
            return self._to_machine(folder, record)

    def _prepare(self, folder: MachineFolder, spec: MachineSpec) -> dict[str, Any]:
        """Overlay, seed, rules and the record; undone if anything fails."""
        try:
            groups = [self._read_group(name) for name in spec.security_groups]
            base = self._base_image(spec.image_id)
            self._create_overlay(folder.disk, base, spec.disk_gb)
            write_seed(folder.seed, instance_id=folder.id, hostname=spec.name,
                       user_data=spec.user_data)  # fmt: skip
            write_json(folder.groups, [
                {"name": g.name, "rules": [_rule_json(r) for r in g.rules]} for g in groups
            ])  # fmt: skip
            ports = [22, *(p for p in ingress_tcp_ports(groups) if p != 22)]
            record: dict[str, Any] = {
                "cloud": self.cloud,
                "name": spec.name,
                "image_id": spec.image_id,
                "base": str(base),
                "flavor": spec.flavor,
                "cpu": spec.cpu,
                "ram_mb": spec.ram_mb,
                "disk_gb": spec.disk_gb,
                "tags": dict(spec.tags),
                "client_token": spec.client_token,
                "guest_ports": ports,
                "forwards": [],
                "created": time.time(),
            }
            write_json(folder.record, record)
        except BaseException:
            shutil.rmtree(folder.root, ignore_errors=True)
            raise
        return record

    def _base_image(self, image_id: str) -> Path:
        base = self._image_path(image_id)
        if not base.is_file():
            # The id only: the server's folders are nobody else's business.
            raise CloudError(f"image {image_id} is not in the local image store",
                             cloud=self.cloud)  # fmt: skip
        return base

    def _read_group(self, name: str) -> SecurityGroup:
        try:
            return _group_from_json(json.loads(self._group_file(name).read_text()))
        except FileNotFoundError:
            raise CloudError(f"security group {name} does not exist", cloud=self.cloud) from None

    def _create_overlay(self, disk: Path, base: Path, disk_gb: float | None) -> None:
        info = self._run_tool([self.qemu_img, "info", "--output=json", str(base)])
        image = json.loads(info)
        if image.get("format") != "qcow2":
            raise CloudError(f"image {base} is {image.get('format')}, not qcow2", cloud=self.cloud)
        size = int(image["virtual-size"])
        if disk_gb is not None:
            size = max(size, int(disk_gb * 1024**3))
        self._run_tool([self.qemu_img, "create", "-q", "-f", "qcow2", "-b", str(base.resolve()),
                        "-F", "qcow2", str(disk), str(size)])  # fmt: skip

    def _run_tool(self, command: list[str]) -> str:
        try:
            result = subprocess.run(command, capture_output=True, text=True, check=False)
        except FileNotFoundError as exc:
            raise ToolError(command[0], "not installed", hint="apt-get install qemu-utils") from exc
        if result.returncode != 0:
            raise ToolError(command[0], result.stderr.strip() or f"exit {result.returncode}")
        return result.stdout

    def _command(self, folder: MachineFolder, record: Mapping[str, Any]) -> list[str]:
        forwards = ",".join(f"hostfwd=tcp:{f['host']}:{f['host_port']}-:{f['guest_port']}"
                            for f in record["forwards"])  # fmt: skip
        return [
            self.qemu, "-name", f"slipway-{folder.id},process=slipway-{folder.id}",
            *accelerator_args(record["accelerator"]),
            "-machine", "q35", "-smp", str(record["cpu"]), "-m", str(record["ram_mb"]),
            "-nodefaults", "-no-user-config", "-display", "none", "-vga", "none",
            # The seed goes in as a virtio disk: Debian's cloud kernel has no AHCI for -cdrom.
            "-drive", f"file={folder.disk},if=virtio,format=qcow2,discard=unmap",
            "-drive", f"file={folder.seed},if=virtio,format=raw,readonly=on",
            "-netdev", f"user,id=net0,{forwards}", "-device", "virtio-net-pci,netdev=net0",
            "-device", "virtio-rng-pci",
            "-serial", f"file:{folder.console}",
            "-qmp", f"unix:{folder.qmp},server=on,wait=off",
            "-pidfile", str(folder.pidfile), "-daemonize",
        ]  # fmt: skip

    def _launch(self, folder: MachineFolder, record: dict[str, Any]) -> None:
        folder.qmp.parent.mkdir(parents=True, exist_ok=True)
        if record.get("accelerator") not in ("kvm", "tcg"):
            record["accelerator"] = self._accelerator_for(Path(record["base"]))
        for attempt in range(_PORT_ATTEMPTS):
            record["forwards"] = [
                {"guest_port": port, "host": _HOST, "host_port": _free_port()}
                for port in record["guest_ports"]
            ]
            record["launched"] = time.time()
            write_json(folder.record, record)
            try:
                result = _process.start(self._command(folder, record), folder)
            except FileNotFoundError as exc:
                raise ToolError(self.qemu, "not installed",
                                hint="apt-get install qemu-system-x86") from exc  # fmt: skip
            if result.returncode == 0:
                return
            message = result.stderr.strip()
            if "hostfwd" in message or "host forwarding" in message:
                log.info("port taken while starting %s (attempt %d), retrying", folder.id, attempt)
                continue
            folder.pidfile.unlink(missing_ok=True)
            if record["accelerator"] == "kvm" and "kvm" in message.lower():
                # KVM passed the probe but fails real guests: use TCG from now on.
                log.warning("KVM failed to start %s (%s); falling back to TCG", folder.id, message)
                record["accelerator"] = "tcg"
                self._use_tcg_from_now_on(f"QEMU could not start a machine under KVM: {message}")
                continue
            raise CloudError(f"QEMU did not start: {message}", cloud=self.cloud)
        raise CloudError("QEMU did not start: no free host port for the forwards", cloud=self.cloud)

    def get_machine(self, machine_id: str) -> Machine:
        folder = self._folder(machine_id)
        record = folder.read()
        if record is None or record.get("cloud") != self.cloud:
            raise NotFound(f"{self.cloud}: machine {machine_id} does not exist")
        machine = self._to_machine(folder, record)
        if record.get("accelerator") == "kvm" and not record.get("settled"):
            machine = self._watch(folder, record, machine)
        return machine

    # -- the KVM watchdog --------------------------------------------------------------

    def _watch(self, folder: MachineFolder, record: dict[str, Any], machine: Machine) -> Machine:
        """Restart a KVM machine whose guest is in trouble under TCG (see ``_watchdog``)."""
        try:
            stat = folder.console.stat()
            size, last_output = stat.st_size, stat.st_mtime
        except FileNotFoundError:
            size, last_output = 0, None
        if size and settled(self._console_tail(folder, 8192)):
            with self._locked(folder):
                current = folder.read()
                if current is not None and current.get("accelerator") == "kvm":
                    current["settled"] = True
                    write_json(folder.record, current)
            return machine
        reason = self.kvm_watch.trouble(
            machine.state,
            machine.cloud_message,
            console_bytes=size,
            last_output=last_output,
            launched=float(record.get("launched", record.get("created", 0.0))),
            now=time.time(),
        )
        if reason is None:
            return machine
        with self._locked(folder):
            current = folder.read()
            if current is None:
                raise NotFound(f"{self.cloud}: machine {folder.id} does not exist")
            if current.get("accelerator") == "kvm":  # not restarted by another look meanwhile
                self._restart_under_tcg(folder, current, reason)
            return self._to_machine(folder, current)

    def _restart_under_tcg(
        self, folder: MachineFolder, record: dict[str, Any], reason: str
    ) -> None:
        """Same machine, same seed, a fresh overlay, TCG; remembered for the host."""
        log.warning("%s: %s; restarting it under TCG", folder.id, reason)
        _process.kill(folder)
        folder.pidfile.unlink(missing_ok=True)
        with contextlib.suppress(FileNotFoundError):
            folder.console.replace(folder.root / "console-kvm.log")  # kept to diagnose the host
        folder.disk.unlink(missing_ok=True)
        self._create_overlay(folder.disk, Path(record["base"]), record.get("disk_gb"))
        record["accelerator"] = "tcg"
        record["notices"] = [*record.get("notices", ()),
                             f"{reason}; restarted it under TCG (software emulation)"]  # fmt: skip
        self._use_tcg_from_now_on(f"a machine {reason}")
        self._launch(folder, record)

    def _probe_kvm(self, base: Path, timeout: float) -> ProbeOutcome:
        """Boot ``base`` under KVM with a real machine's arguments until its
        guest reaches user space, for at most ``timeout`` seconds."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._sweep_stale_probes()
        folder = MachineFolder(Path(tempfile.mkdtemp(prefix=_PROBE_PREFIX, dir=self.data_dir)))
        # Held while this process probes: a probe folder whose lock can be taken
        # lost its prober (killed mid-probe), and its QEMU is swept by the next one.
        owner = (folder.root / _PROBE_LOCK).open("w")
        fcntl.flock(owner, fcntl.LOCK_EX)
        try:
            self._create_overlay(folder.disk, base, None)
            write_seed(folder.seed, instance_id=folder.id, hostname="slipway-probe",
                       user_data="#cloud-config\n{}\n")  # fmt: skip
            record = {
                "cpu": 1,
                "ram_mb": 512,
                "accelerator": "kvm",
                "forwards": [{"guest_port": 22, "host": _HOST, "host_port": _free_port()}],
            }
            started = time.monotonic()
            result = _process.start(self._command(folder, record), folder)
            if result.returncode != 0:
                said = (result.stderr.strip().splitlines() or [f"exit {result.returncode}"])[0]
                return ProbeOutcome(False, f"did not start ({said.removeprefix(self.qemu + ': ')})")
            console = b""
            while (elapsed := time.monotonic() - started) < timeout:
                with contextlib.suppress(FileNotFoundError):
                    console = folder.console.read_bytes()
                if reached_user_space(console):
                    return ProbeOutcome(True, f"reached user space in {elapsed:.1f} s")
                if _process.pid_of(folder) is None:
                    return ProbeOutcome(False, "stopped before reaching user space")
                status = _process.qemu_status(folder, timeout=1.0)
                if status in ("internal-error", "guest-panicked", "shutdown"):
                    return ProbeOutcome(False, f"ended in QEMU's {status} state")
                time.sleep(0.2)
            said = "did not reach user space" if console else "printed nothing on its console"
            return ProbeOutcome(False, f"{said} in {timeout:g} s")
        finally:
            _process.kill(folder, grace=1.0)
            shutil.rmtree(folder.root, ignore_errors=True)
            owner.close()

    def _sweep_stale_probes(self) -> None:
        """Stop the QEMU of every probe whose prober is gone, and remove its folder.

        QEMU is daemonised, so a prober killed with SIGKILL leaves its guest
        running; the folder's lock, released by the kernel with the prober,
        tells such a probe from one under way in another process."""
        for root in self.data_dir.glob(_PROBE_PREFIX + "*"):
            try:
                lock = (root / _PROBE_LOCK).open("r")
            except FileNotFoundError:
                # Just made by a prober that has not locked it yet, or left
                # by one killed in between (then it holds no QEMU): wait a while.
                with contextlib.suppress(FileNotFoundError):
                    if time.time() - root.stat().st_mtime > _PROBE_LOCKLESS_S:
                        shutil.rmtree(root, ignore_errors=True)
                continue
            with lock:
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # its prober is alive
                log.warning("stopping the accelerator probe %s left by a killed prober", root.name)
                _process.kill(MachineFolder(root), grace=1.0)
                shutil.rmtree(root, ignore_errors=True)

    def delete_machine(self, machine_id: str) -> None:
        folder = self._folder(machine_id)
        if not folder.root.is_dir():
            return
        record = folder.read()
        if record is not None and record.get("cloud") != self.cloud:
            raise NotFound(f"{self.cloud}: machine {machine_id} does not exist")
        with self._locked(folder):
            _process.kill(folder)
            folder.qmp.unlink(missing_ok=True)
            shutil.rmtree(folder.root, ignore_errors=True)

    def list_machines(self, tags: Mapping[str, str]) -> list[Machine]:
        machines = []
        for root in sorted(self._machines.glob("vm-*")):
            folder = MachineFolder(root)
            record = folder.read()
            if record is None or record.get("cloud") != self.cloud:
                continue
            if all(record.get("tags", {}).get(k) == v for k, v in tags.items()):
                machines.append(self._to_machine(folder, record))
        return machines

    def console_log(self, machine_id: str, lines: int = 100) -> str:
        folder = self._folder(machine_id)
        if folder.read() is None:
            raise NotFound(f"{self.cloud}: machine {machine_id} does not exist")
        tail = self._console_tail(folder, 256 * max(lines, 1)).decode("utf-8", errors="replace")
        return "\n".join(tail.replace("\r", "").splitlines()[-lines:])

    @staticmethod
    def _console_tail(folder: MachineFolder, size: int) -> bytes:
        try:
            with folder.console.open("rb") as console:
                console.seek(0, os.SEEK_END)
                console.seek(max(0, console.tell() - size))
                return console.read()
        except FileNotFoundError:
            return b""

    # -- catalog and images --------------------------------------------------------

    def flavors(self) -> list[Flavor]:
        """Sizes this host can run: 1, 2, 4 … CPUs up to its own count, RAM from
        0.5 GB to half of its memory (GB)."""
        cpus = os.cpu_count() or 1
        ram_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
        result = []
        cpu = 1
        while cpu <= cpus:
            ram = 0.5
            while ram <= max(ram_gb / 2, 1.0):
                result.append(Flavor(f"c{cpu}-m{ram:g}", cpu, ram))
                ram *= 2
            cpu *= 2
        return result

    def images(self) -> list[CloudImage]:
        return [i for i in self.images_store.list() if not i.hidden]

    def upload_image(self, path: Path, name: str, properties: Mapping[str, str]) -> CloudImage:
        """Put ``path`` in the local image store under ``name`` (converted to
        qcow2). A qcow2 file on the store's file system is hard-linked, not
        copied: the caller must not write to it afterwards."""
        if not path.is_file():
            raise NotFound(f"image file {path} does not exist")
        return self.images_store.add(path, name, properties)

    def stream_image(
        self, stream: ImageStream, name: str, properties: Mapping[str, str]
    ) -> CloudImage:
        raise Unsupported(self.unsupported[Capability.IMAGE_STREAMING], cloud=self.cloud)

    def register_image(
        self, source: ImageSource, name: str, properties: Mapping[str, str]
    ) -> CloudImage:
        raise Unsupported(self.unsupported[Capability.IMAGE_FROM_URL], cloud=self.cloud)

    def find_images(self, properties: Mapping[str, str]) -> list[CloudImage]:
        """The store's entries carrying ``properties``: an entry exists only
        once complete, so there is never an unfinished one to find."""
        return [
            i
            for i in self.images_store.list()
            if all(i.properties.get(k) == v for k, v in properties.items())
        ]

    def share_image(self, image_id: str, project: str) -> None:
        raise Unsupported(self.unsupported[Capability.IMAGE_SHARING], cloud=self.cloud)

    def hide_image(self, image_id: str) -> None:
        self.images_store.hide(image_id)

    def delete_image(self, image_id: str) -> None:
        self.images_store.remove(image_id)

    def image_users(self, image_id: str) -> list[str]:
        return [m.id for m in self.list_machines({}) if m.image_id == image_id]

    # -- security groups -------------------------------------------------------------

    def ensure_security_group(self, name: str, rules: Sequence[Rule]) -> SecurityGroup:
        """Keep the rules; machines created later forward their ingress TCP ports.
        Every group of the local cloud is Slipway's: a file only Slipway writes."""
        for rule in rules:
            problems = rule.problems()
            if problems:
                raise InputError(f"security group {name}: {'; '.join(problems)}")
        path = self._group_file(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        group = SecurityGroup(name, tuple(dict.fromkeys(rules)), id=name)
        write_json(path, {"name": name, "rules": [_rule_json(r) for r in group.rules]})
        return group

    def check_security_group(self, name: str) -> SecurityGroup | None:
        try:
            return self._read_group(name)
        except CloudError:
            return None
