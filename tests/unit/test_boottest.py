"""``image test`` as a use case, on the in-memory cloud with a scripted guest:
what it reports, and that the machine is gone afterwards whatever happened."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from slipway.adapters.keys import KeyPair, new_key_pair
from slipway.connectors.fake import FakeConnector
from slipway.domain.machines import CloudImage, Machine, MachineSpec
from slipway.errors import InputError
from slipway.services.boot_console import GRACE_S
from slipway.services.boottest import (
    TEST_TAG,
    BootImage,
    BootTester,
    Phase,
    disk_bytes,
    user_data,
)
from slipway.services.ports import CommandOutput, Login
from tests.unit.test_guest_checks import EXAMPLE_OUTPUT

GIB = 1024**3
IMAGE = BootImage("debian-12-minimal", 2 * GIB, "debian-12-minimal")
DONE_CONSOLE = (
    "[    0.000000] Linux version 6.1.0-50-cloud-amd64\n"
    "[   38.7] cloud-init[249]: Cloud-init v. 22.4.2 running 'init-local' at now.\n"
    "[  145.3] cloud-init[458]: Cloud-init v. 22.4.2 finished at now. Datasource "
    "DataSourceNoCloud [seed=/dev/vdb][dsmode=net].  Up 145.21 seconds\n"
)


class Clock:
    """Time that passes only when the code under test sleeps or runs a command."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class Shell:
    def __init__(self, clock: Clock, answers: dict[str, CommandOutput]) -> None:
        self.clock = clock
        self.answers = answers
        self.commands: list[str] = []
        self.closed = False

    def run(self, command: str, timeout: float) -> CommandOutput:
        self.commands.append(command)
        self.clock.sleep(2)
        for start, answer in self.answers.items():
            if command.startswith(start) or start in command:
                return answer
        return CommandOutput(127, "", "not found")

    def close(self) -> None:
        self.closed = True


class Guests:
    """Refuses ``refusals`` logins, then lets in with ``shell``; ``on_login`` may raise."""

    def __init__(
        self,
        shell: Shell | None,
        refusals: int = 0,
        on_login: Callable[[], None] | None = None,
    ) -> None:
        self.shell = shell
        self.refusals = refusals
        self.on_login = on_login
        self.logins: list[tuple[str, int, str]] = []

    def login(self, host: str, port: int, user: str, private_key: str) -> Login:
        self.logins.append((host, port, user))
        if self.on_login is not None:
            self.on_login()
        if self.shell is None or len(self.logins) <= self.refusals:
            return Login(None, answered=False, problem="ConnectionResetError")
        return Login(self.shell, answered=True)


DONE = CommandOutput(0, "....\nstatus: done\n")
CHECKS = CommandOutput(0, EXAMPLE_OUTPUT)


def world(
    guests_for: Callable[[Clock], Guests], connector: FakeConnector | None = None
) -> tuple[BootTester, FakeConnector, Clock, Guests]:
    clock = Clock()
    cloud = connector or FakeConnector("image-test", images=[CloudImage(IMAGE.image_id, "d")])
    guests = guests_for(clock)
    tester = BootTester(
        cloud,
        guests,
        new_key_pair,
        accelerator=lambda: "tcg",
        clock=clock,
        sleep=clock.sleep,
    )
    return tester, cloud, clock, guests


def test_an_image_that_boots_passes_and_its_machine_is_deleted() -> None:
    def guests(clock: Clock) -> Guests:
        shell = Shell(clock, {"timeout ": DONE, "sudo -n sh -c": CHECKS})
        return Guests(shell, refusals=3)

    tester, cloud, _, seen = world(guests)
    phases: list[Phase] = []
    report = tester.test(IMAGE, on_phase=lambda phase, _: phases.append(phase))
    assert report.passed, report.failure
    assert [c.status.value for c in report.checks] == ["ok"] * 9
    assert report.seconds_to_ssh == 3.0  # three refusals, a second apart
    assert report.seconds_to_cloud_init == 5.0
    assert report.accelerator == "tcg" and report.disk_bytes == 3 * GIB
    assert report.console_tail == ""
    assert phases == list(Phase)
    assert cloud.list_machines({}) == []
    assert seen.shell is not None and seen.shell.closed
    assert {user for _, _, user in seen.logins} == {"slipway"}


def test_the_machine_gets_a_bigger_disk_and_user_data_with_the_throwaway_key() -> None:
    specs: list[MachineSpec] = []
    keys: list[KeyPair] = []

    class Recording(FakeConnector):
        def create_machine(self, spec: MachineSpec) -> Machine:
            specs.append(spec)
            return super().create_machine(spec)

    def new_key(comment: str) -> KeyPair:
        keys.append(new_key_pair(comment))
        return keys[-1]

    cloud = Recording("image-test", images=[CloudImage(IMAGE.image_id, "d")])
    clock = Clock()
    shell = Shell(clock, {"timeout ": DONE, "sudo -n sh -c": CHECKS})
    tester = BootTester(cloud, Guests(shell), new_key, clock=clock, sleep=clock.sleep)
    tester.test(IMAGE, login_user="tester")
    (spec,) = specs
    assert spec.disk_gb == 3.0 and spec.image_id == "debian-12-minimal"
    assert spec.tags[TEST_TAG] and spec.client_token == spec.tags[TEST_TAG]
    assert keys[0].public in spec.user_data
    assert "name: tester" in spec.user_data and "sudo: ALL=(ALL) NOPASSWD:ALL" in spec.user_data
    assert "ssh_genkeytypes" not in spec.user_data  # the image's own configuration is tested


def test_an_image_without_sshd_fails_ssh_with_the_console_tail() -> None:
    tester, cloud, clock, _ = world(lambda clock: Guests(None))
    original = cloud.console_log

    def console(machine_id: str, lines: int = 100) -> str:
        return DONE_CONSOLE if clock.now > 1020 else original(machine_id, lines)

    cloud.console_log = console  # type: ignore[method-assign]
    report = tester.test(IMAGE)
    assert not report.passed and report.failure is not None
    assert report.failure.check == "ssh"
    assert "nothing answered SSH" in report.failure.detail
    statuses = {c.name: c.status.value for c in report.checks}
    assert statuses["boot"] == "ok" and statuses["ssh"] == "failed"
    assert statuses["cloud-init"] == "skipped" and statuses["firewall"] == "skipped"
    assert "Cloud-init v. 22.4.2 finished" in report.console_tail
    assert report.seconds <= 20 + GRACE_S + 2
    assert cloud.list_machines({}) == []


def test_a_boot_that_never_gets_anywhere_fails_at_the_timeout() -> None:
    tester, cloud, _, _ = world(lambda clock: Guests(None))
    cloud.console_log = lambda machine_id, lines=100: ""  # type: ignore[method-assign]
    report = tester.test(IMAGE, timeout=30)
    assert report.failure is not None and report.failure.check == "boot"
    assert report.seconds == pytest.approx(30, abs=1.5)
    assert cloud.list_machines({}) == []


def test_cloud_init_that_never_finishes_fails_and_skips_the_guest_checks() -> None:
    running = CommandOutput(124, "..............")
    tester, cloud, _, _ = world(lambda clock: Guests(Shell(clock, {"timeout ": running})))
    report = tester.test(IMAGE, timeout=60)
    assert report.failure is not None and report.failure.check == "cloud-init"
    assert report.failure.detail == "cloud-init still running after 60 s"
    assert report.seconds_to_ssh is not None and report.seconds_to_cloud_init is None
    assert {c.name: c.status.value for c in report.checks}["root-fs"] == "skipped"
    assert cloud.list_machines({}) == []


def test_cloud_init_errors_fail_it_but_the_guest_checks_still_run() -> None:
    error = CommandOutput(1, "status: error\n")
    failing = EXAMPLE_OUTPUT.replace(
        '"errors": [], "finished": 1795928295.09', '"errors": ["boom"]'
    )
    answers = {"timeout ": error, "sudo -n sh -c": CommandOutput(0, failing)}
    tester, _, _, _ = world(lambda clock: Guests(Shell(clock, answers)))
    report = tester.test(IMAGE)
    assert report.failure is not None and report.failure.check == "cloud-init"
    assert report.failure.detail == "finished with status error: init: boom"
    assert {c.name: c.status.value for c in report.checks}["firewall"] == "ok"


def test_checks_that_cannot_run_as_root_fail_each_with_what_sudo_said() -> None:
    sudo = CommandOutput(1, "", "sudo: a password is required\n")
    tester, _, _, _ = world(
        lambda clock: Guests(Shell(clock, {"timeout ": DONE, "sudo -n sh -c": sudo}))
    )
    report = tester.test(IMAGE)
    assert report.failure is not None and report.failure.check == "root-fs"
    assert report.failure.detail == "cannot run them as root: sudo: a password is required"


def test_ctrl_c_while_waiting_deletes_the_machine() -> None:
    def interrupt() -> None:
        raise KeyboardInterrupt

    tester, cloud, _, _ = world(lambda clock: Guests(None, on_login=interrupt))
    with pytest.raises(KeyboardInterrupt):
        tester.test(IMAGE)
    assert cloud.list_machines({}) == []
    assert "delete_machine" in cloud.calls


def test_ctrl_c_during_creation_deletes_the_machine_found_by_its_tag() -> None:
    class Interrupted(FakeConnector):
        def create_machine(self, spec: MachineSpec) -> Machine:
            super().create_machine(spec)
            raise KeyboardInterrupt  # after QEMU started, before the id came back

    cloud = Interrupted("image-test", images=[CloudImage(IMAGE.image_id, "d")])
    tester, _, _, _ = world(lambda clock: Guests(None), connector=cloud)
    with pytest.raises(KeyboardInterrupt):
        tester.test(IMAGE)
    assert cloud.list_machines({}) == []


def test_a_bad_login_user_or_timeout_is_refused_before_anything_is_created() -> None:
    tester, cloud, _, _ = world(lambda clock: Guests(None))
    with pytest.raises(InputError, match="login user"):
        tester.test(IMAGE, login_user="Robert'); DROP")
    with pytest.raises(InputError, match="timeout"):
        tester.test(IMAGE, timeout=0)
    assert "create_machine" not in cloud.calls


def test_the_disk_leaves_an_ungrown_root_well_below_the_grown_threshold() -> None:
    assert disk_bytes(2 * GIB) == 3 * GIB
    assert disk_bytes(40 * GIB) == 50 * GIB
    for size in (512 * 1024**2, 2 * GIB, 40 * GIB, 1000 * GIB):
        assert size / disk_bytes(size) <= 0.8


def test_user_data_is_a_cloud_config_with_only_the_login_user() -> None:
    text = user_data("slipway", "ssh-ed25519 AAAA test")
    assert text.startswith("#cloud-config\n")
    assert text.splitlines()[1] == "users:"
    with pytest.raises(InputError):
        user_data("root", "ssh-ed25519 AAAA test")


def test_the_report_says_where_the_boots_time_went() -> None:
    profile = CommandOutput(
        0,
        "@@ startup\nStartup finished in 4.2s (kernel) + 30.1s (userspace) = 34.3s\n"
        "@@ units\n12.5s cloud-init-local.service\n"
        "@@ cloud-init\n-- Boot Record 01 --\n     01.50000s (init-network/config-ssh)\n",
    )

    def guests(clock: Clock) -> Guests:
        answers = {"systemd-analyze time": profile, "timeout ": DONE, "sudo -n sh -c": CHECKS}
        return Guests(Shell(clock, answers))

    tester, _, _, _ = world(guests)
    report = tester.test(IMAGE)
    assert report.passed, report.failure
    data = report.to_dict()["profile"]
    assert data["stages"] == [
        {"name": "kernel", "seconds": 4.2},
        {"name": "userspace", "seconds": 30.1},
    ]
    assert data["units"] == [{"name": "cloud-init-local.service", "seconds": 12.5}]
    assert data["cloud_init"] == [{"name": "init-network/config-ssh", "seconds": 1.5}]
