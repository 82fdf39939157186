import subprocess

import pytest
import yaml

from slipway.adapters.cloudinit import validate_user_data
from slipway.errors import InputError
from slipway.services.userdata import (
    MARKER_PATH,
    Marker,
    Recipes,
    build_user_data,
    parse_marker,
    readiness_command,
)

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDk run-1"
USER_KEY = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ alice@laptop"


def _doc(**kwargs):
    data = build_user_data(login_user="debian", public_keys=[USER_KEY, KEY], **kwargs)
    assert data.text.startswith("#cloud-config\n")
    return yaml.safe_load(data.text)


def _runner(doc):
    return next(f for f in doc["write_files"] if f["path"].endswith("run-recipes.sh"))["content"]


def test_login_user_gets_the_users_keys_and_the_runs_key_and_passwordless_sudo():
    doc = _doc()
    (user,) = doc["users"]
    assert user["name"] == "debian"
    assert user["ssh_authorized_keys"] == [USER_KEY, KEY]
    assert user["lock_passwd"] is True
    assert doc["ssh_pwauth"] is False
    assert doc["disable_root"] is True


def test_only_ed25519_and_ecdsa_host_keys_are_generated():
    assert _doc()["ssh_genkeytypes"] == ["ed25519", "ecdsa"]


def test_root_login_user_puts_keys_on_root():
    data = build_user_data(login_user="root", public_keys=[KEY])
    doc = yaml.safe_load(data.text)
    assert "users" not in doc
    assert doc["ssh_authorized_keys"] == [KEY]
    assert doc["disable_root"] is False


def test_recipes_run_in_order_pre_install_packages_post_install_deployment():
    doc = _doc(
        recipes=Recipes(
            packages=("nginx", "curl"),
            pre_install="echo pre",
            post_install="systemctl enable --now nginx",
            deployment="echo deploy",
        )
    )
    runner = _runner(doc)
    order = [
        runner.index(s)
        for s in (
            "step pre_install",
            "apt-get install",
            "step post_install",
            "step deployment",
            "finish 0 done",
        )
    ]
    assert order == sorted(order)
    assert "nginx curl" in runner
    assert doc["runcmd"] == [["/var/lib/slipway/run-recipes.sh"]]
    assert "packages" not in doc  # installed by the runner, after pre-install


def test_redhat_and_suse_use_their_own_package_manager():
    assert "dnf -y install" in _runner(_doc(platform="redhat", recipes=Recipes(packages=("x",))))
    assert "zypper" in _runner(_doc(platform="suse", recipes=Recipes(packages=("x",))))


def test_unknown_package_manager_falls_back_to_cloud_inits_packages():
    doc = _doc(platform="other", recipes=Recipes(packages=("x",)))
    assert doc["packages"] == ["x"]


def test_recipe_without_shebang_runs_with_sh_e_and_a_shebang_is_kept():
    doc = _doc(recipes=Recipes(pre_install="false\necho never", deployment="#!/bin/bash\necho hi"))
    files = {f["path"].rsplit("/", 1)[-1]: f["content"] for f in doc["write_files"]}
    assert files["pre_install.sh"].startswith("#!/bin/sh -e\n")
    assert files["deployment.sh"].startswith("#!/bin/bash\n")


def test_generated_user_data_passes_cloud_inits_schema():
    data = build_user_data(
        login_user="debian",
        public_keys=[KEY],
        recipes=Recipes(packages=("nginx",), pre_install="echo 'a: b'", deployment="echo x"),
        hostname="run-1",
    )
    validate_user_data(data.text)


def test_repr_and_str_never_show_the_recipes():
    data = build_user_data(
        login_user="debian", public_keys=[KEY], recipes=Recipes(deployment="export TOKEN=s3cret")
    )
    assert "s3cret" not in repr(data)
    assert "s3cret" not in str(data)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"public_keys": []}, "at least one SSH public key"),
        ({"public_keys": ["-----BEGIN OPENSSH PRIVATE KEY-----"]}, "must start with its type"),
        ({"platform": "beos"}, "unknown platform"),
        ({"platform": "windows"}, "Windows"),
        ({"login_user": "bad user"}, "not a valid user name"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(kwargs, message):
    args = {"login_user": "debian", "public_keys": [KEY], **kwargs}
    with pytest.raises(InputError, match=message):
        build_user_data(**args)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("users: []\n", "must start with a '#cloud-config' line"),
        ("#cloud-config\n: [\n", "not valid YAML"),
        ("#cloud-config\n- a\n", "must be a mapping"),
        ("#cloud-config\nruncmd: 3\n", "runcmd: fails the schema's check type"),
        ("#cloud-config\nssh_pwauht: false\n", "unknown top-level key 'ssh_pwauht'"),
    ],
)
def test_invalid_user_data_is_rejected_naming_the_key(text, message):
    with pytest.raises(InputError, match=message):
        validate_user_data(text)


@pytest.mark.parametrize(
    "text",
    [
        "#cloud-config\nruncmd: 3\npackages: [1, [2]]\nwrite_files: [{path: 4}]\n",
        "#cloud-config\nusers: {name: 42}\nntp: {enabled: maybe}\napt: {sources: 3}\n",
        "#cloud-config\nswap: {size: big}\nresize_rootfs: sometimes\nbootcmd: [[], {}]\n",
    ],
)
def test_the_check_finds_what_cloud_inits_whole_schema_finds(text):
    """The check skips the schema's parts for keys a document lacks; it must
    report the same problems as a check against the whole schema."""
    import jsonschema
    import yaml

    from slipway.adapters.cloudinit import _schema

    whole = jsonschema.Draft4Validator(_schema()).iter_errors(yaml.safe_load(text))
    expected = {".".join(map(str, e.absolute_path)) for e in whole}
    assert expected
    with pytest.raises(InputError) as info:
        validate_user_data(text)
    found = {p.split(":")[0] for p in str(info.value).split(": ", 1)[1].split("; ")}
    assert found == expected


def test_schema_errors_never_quote_the_users_values():
    with pytest.raises(InputError) as info:
        validate_user_data("#cloud-config\nusers: {name: 42, passwd: s3cret}\nruncmd: s3cret\n")
    assert "s3cret" not in str(info.value)


def test_marker_parsing():
    assert parse_marker("0 done\n") == Marker(0, "done")
    assert parse_marker("3 post_install") == Marker(3, "post_install")
    assert not parse_marker("3 post_install").succeeded
    assert parse_marker("") is None
    assert parse_marker("garbage") is None


def test_runner_writes_the_marker_with_the_failing_steps_exit_code(tmp_path):
    """Run the generated runner script for real, with paths moved into tmp_path."""
    doc = _doc(recipes=Recipes(pre_install="echo ok", post_install="exit 3", deployment="echo no"))
    root = str(tmp_path)
    for f in doc["write_files"]:
        path = tmp_path / f["path"].lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        content = f["content"].replace("/var/", root + "/var/")
        path.write_text(content)
        path.chmod(0o700)
    (tmp_path / "var/log").mkdir(parents=True, exist_ok=True)
    runner = tmp_path / "var/lib/slipway/run-recipes.sh"
    result = subprocess.run([str(runner)], check=False)
    assert result.returncode == 3
    marker = (tmp_path / MARKER_PATH.lstrip("/")).read_text()
    assert parse_marker(marker) == Marker(3, "post_install")
    log = (tmp_path / "var/log/slipway-recipes.log").read_text()
    assert "step pre_install" in log
    assert "step deployment" not in log


def test_readiness_command_reads_the_marker():
    command = readiness_command()
    assert MARKER_PATH in command
    assert "cloud-init status" in command


def test_declared_ports_are_opened_in_the_guests_firewall_before_the_recipes() -> None:
    from slipway.services.userdata import build_user_data

    text = build_user_data(
        login_user="debian",
        public_keys=["ssh-ed25519 AAAA k"],
        open_ports=[(80, "tcp")],
        recipes=Recipes(pre_install="echo hi"),
    ).text
    runner = text[text.index("run-recipes.sh") :]
    assert "nft add rule inet filter input tcp dport 80 accept" in runner
    assert runner.index("dport 80") < runner.index("step pre_install")
