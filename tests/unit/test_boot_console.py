"""What the serial console tells ``image test`` before anyone can log in:
excerpts of real Debian 12 boots under TCG (colour codes included)."""

from __future__ import annotations

from slipway.services.boot_console import GRACE_S, BootWatch, strip_colours

KERNEL = (
    "[    0.000000] Linux version 6.1.0-50-cloud-amd64 (debian-kernel@lists.debian.org)\n"
    "[    0.000000] Command line: BOOT_IMAGE=/vmlinuz root=UUID=0b0e ro console=ttyS0,115200\n"
)
CLOUD_INIT_LOCAL = (
    "[   38.743290] cloud-init[249]: Cloud-init v. 22.4.2 running 'init-local' at "
    "Sun, 29 Nov 2026 04:57:32 +0000. Up 38.26 seconds.\n"
)
LOGIN = "\nDebian GNU/Linux 12 localhost ttyS0\n\nlocalhost login: "
CLOUD_INIT_DONE = (
    "[  145.337107] cloud-init[458]: Cloud-init v. 22.4.2 finished at Sun, 29 Nov 2026 "
    "04:59:19 +0000. Datasource DataSourceNoCloud [seed=/dev/vdb][dsmode=net].  Up 145.21 seconds\n"
)
SSHD_FAILED = (
    "\x1b[0;1;31mFAILED\x1b[0m] Failed to start \x1b[0;1;39mssh.servic…[0m - OpenBSD Secure "
    "Shell server.\nSee 'systemctl status ssh.service' for details.\n"
)


def test_colour_codes_go_even_when_systemd_cut_their_escape_off() -> None:
    assert strip_colours(SSHD_FAILED).startswith(
        "FAILED] Failed to start ssh.servic… - OpenBSD Secure Shell server."
    )
    assert strip_colours("[   38.743290] cloud-init") == "[   38.743290] cloud-init"


def test_a_normal_boot_gives_no_verdict_while_it_goes_on() -> None:
    watch = BootWatch()
    watch.see_console(KERNEL, 3)
    watch.see_console(KERNEL + CLOUD_INIT_LOCAL + LOGIN, 100)
    watch.see_console(CLOUD_INIT_DONE, 150)
    assert (watch.kernel_at, watch.cloud_init_at, watch.login_prompt_at) == (3, 100, 100)
    assert watch.cloud_init_done_at == 150
    assert watch.datasource == "DataSourceNoCloud"
    assert watch.verdict(150 + GRACE_S - 1) is None


def test_signals_stay_seen_when_their_lines_scroll_out_of_the_tail() -> None:
    watch = BootWatch()
    watch.see_console(KERNEL + CLOUD_INIT_LOCAL, 40)
    watch.see_console("[   60.2] something else entirely\n", 60)
    assert watch.kernel_at == 40 and watch.cloud_init_at == 40


def test_no_ssh_a_grace_after_cloud_init_finished_fails_ssh() -> None:
    watch = BootWatch()
    watch.see_console(KERNEL + CLOUD_INIT_LOCAL + LOGIN + CLOUD_INIT_DONE, 140)
    watch.see_login(False, "SSHException: Error reading SSH protocol banner", 141)
    verdict = watch.verdict(140 + GRACE_S)
    assert verdict is not None and verdict.check == "ssh"
    assert verdict.detail.startswith(
        f"nothing answered SSH on port 22 {GRACE_S:.0f} s after cloud-init finished"
    )


def test_sshd_that_answers_but_refuses_the_key_is_named() -> None:
    watch = BootWatch()
    watch.see_console(KERNEL + CLOUD_INIT_LOCAL + CLOUD_INIT_DONE, 140)
    watch.see_login(True, "the key was refused: Authentication failed.", 150)
    verdict = watch.verdict(200)
    assert verdict is not None and verdict.check == "ssh"
    assert "refused the login key" in verdict.detail and "Authentication failed" in verdict.detail


def test_a_login_prompt_without_any_cloud_init_line_fails_cloud_init() -> None:
    watch = BootWatch()
    watch.see_console(KERNEL + SSHD_FAILED + LOGIN, 80)
    assert watch.sshd_failed.startswith("Failed to start ssh.servic…")
    assert watch.verdict(80 + GRACE_S - 1) is None
    verdict = watch.verdict(80 + GRACE_S)
    assert verdict is not None and verdict.check == "cloud-init"
    assert verdict.detail.startswith("cloud-init did not run: the boot reached its login prompt")


def test_a_silent_console_at_the_timeout_means_no_boot() -> None:
    watch = BootWatch()
    watch.see_console("", 30)
    assert watch.verdict(30) is None
    verdict = watch.timed_out(30)
    assert verdict.check == "boot"
    assert verdict.detail.startswith("nothing on the serial console within 30 s")


def test_a_boot_stuck_in_the_initramfs_at_the_timeout_is_a_boot_failure() -> None:
    watch = BootWatch()
    stuck = KERNEL + "ALERT!  UUID=0b0e does not exist.  Dropping to a shell!\n(initramfs) "
    watch.see_console(stuck, 20)
    verdict = watch.timed_out(600)
    assert verdict.check == "boot"
    assert "neither cloud-init nor a login prompt" in verdict.detail


def test_cloud_init_running_without_ssh_at_the_timeout_names_ssh_and_says_so() -> None:
    watch = BootWatch()
    watch.see_console(KERNEL + CLOUD_INIT_LOCAL, 40)
    verdict = watch.timed_out(600)
    assert verdict.check == "ssh"
    assert verdict.detail.endswith("cloud-init had not finished either")
    assert "within 600 s" in verdict.detail


def test_a_login_that_timed_out_on_a_busy_host_is_not_taken_for_a_refusal() -> None:
    watch = BootWatch()
    watch.see_console(KERNEL + CLOUD_INIT_LOCAL + CLOUD_INIT_DONE, 140)
    watch.see_login(True, "login timed out: Authentication timeout.", 150)
    assert watch.verdict(140 + 5 * GRACE_S) is None
    watch.see_login(True, "the key was refused: Authentication failed.", 460)
    verdict = watch.verdict(460)
    assert verdict is not None and verdict.check == "ssh"
