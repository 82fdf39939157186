"""Pieces of the check that need no tool: debugfs output, quoting, range overlaps."""

from __future__ import annotations

import io

import pytest

from slipway.imagekit.checks.layout import _intersect, _scan
from slipway.imagekit.extfs import _parse_ls, is_safe, quote


def test_debugfs_ls_p_lines_become_entries_and_dot_entries_are_skipped() -> None:
    output = "\n".join(
        [
            "/2/040755/0/0/.//",
            "/2/040755/0/0/..//",
            "/12/040700/0/0/.ssh//",
            "/13/100600/1000/1000/authorized_keys/81/",
            "/14/120777/0/0/link//",
            "garbage",
        ]
    )
    entries = list(_parse_ls("/home/debian", output))
    assert [(e.path, e.is_dir, e.is_file, e.is_symlink, e.size) for e in entries] == [
        ("/home/debian/.ssh", True, False, False, 0),
        ("/home/debian/authorized_keys", False, True, False, 81),
        ("/home/debian/link", False, False, True, 0),
    ]
    assert entries[1].uid == 1000 and entries[1].name == "authorized_keys"


def test_names_with_blanks_are_quoted_and_names_that_could_split_a_command_refused() -> None:
    assert quote("/etc/passwd") == "/etc/passwd"
    assert quote("/root/my file") == '"/root/my file"'
    for bad in ('/root/x"y', "/root/a\nb", "/root/a\\b", "/root/\x1b"):
        assert not is_safe(bad)
        with pytest.raises(ValueError):
            quote(bad)


def test_overlaps_of_free_and_stored_ranges() -> None:
    free = [(0, 10), (20, 30), (40, 50)]
    stored = [(5, 25), (45, 100)]
    assert _intersect(free, stored) == [(5, 10), (20, 25), (45, 50)]
    assert _intersect(free, []) == []


def test_scan_counts_zero_and_non_zero_blocks() -> None:
    data = bytes(8192) + b"\x01" + bytes(4095) + bytes(4096)
    assert _scan(io.BytesIO(data), 0, len(data), 4096) == (4096, 12288)


def _view(files: dict[str, str]) -> object:
    """A RootView over a fake filesystem: listing and contents from a dict."""
    from slipway.imagekit.checks.rootfs import RootView
    from slipway.imagekit.extfs import Entry

    entries = {
        path: Entry(path, i + 10, 0o100644, 0, 0, len(text))
        for i, (path, text) in enumerate(files.items())
    }
    view = RootView(fs=None, entries=entries, partition=1)  # type: ignore[arg-type]
    view._cache.update({p: t.encode() for p, t in files.items()})
    return view


def test_shadow_hashes_empty_passwords_and_login_accounts() -> None:
    from slipway.imagekit.checks.secrets import check_accounts

    view = _view(
        {
            "/etc/shadow": "root:!$6$salt$hash:1::::::\ndaemon:*:1::::::\nguest::1::::::\n",
            "/etc/passwd": "root:x:0:0::/root:/bin/bash\ndaemon:x:1:1::/:/usr/sbin/nologin\n"
            "guest:x:1001:1001::/home/guest:/bin/sh\ntoor:x:0:0::/root:/bin/bash\n",
        }
    )
    found = sorted((f.rule_id, f.evidence["account"]) for f in check_accounts(view))  # type: ignore[arg-type]
    assert found == [
        ("accounts.empty-password", "guest"),
        ("accounts.login-account", "guest"),
        ("accounts.login-account", "toor"),
        ("accounts.password-hash", "root"),
    ]


def test_sshd_first_value_wins_across_includes_and_match_blocks_are_ignored() -> None:
    from slipway.imagekit.checks.network import check_sshd

    view = _view(
        {
            "/etc/ssh/sshd_config": "Include /etc/ssh/sshd_config.d/*.conf\n"
            "PermitRootLogin yes\nMatch User x\n  PasswordAuthentication yes\n",
            "/etc/ssh/sshd_config.d/10.conf": "PermitRootLogin no\nPasswordAuthentication no\n",
        }
    )
    assert check_sshd(view) == []  # type: ignore[arg-type]
