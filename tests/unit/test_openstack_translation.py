"""The OpenStack connector's edge, without a cloud: clouds.yaml entries become
the right keystoneauth plugin, Nova servers and Neutron rules our values."""

from __future__ import annotations

from pathlib import Path

import pytest

from slipway.connectors.openstack import cloud_region
from slipway.connectors.openstack._groups import to_neutron_rule, to_rule
from slipway.connectors.openstack.connector import _to_machine, reachable_address
from slipway.domain.machines import MachineState, Rule
from slipway.errors import CloudError

EGI = """\
clouds:
  egi-site:
    auth_type: v3oidcaccesstoken
    auth:
      auth_url: https://keystone.example.org:5000/v3
      identity_provider: egi.eu
      protocol: openid
      project_id: 0123456789abcdef
      access_token: token-in-clouds-yaml
    region_name: RegionOne
"""


@pytest.fixture
def egi_clouds(tmp_path: Path) -> Path:
    path = tmp_path / "clouds.yaml"
    path.write_text(EGI)
    return path


def test_an_oidc_access_token_entry_becomes_keystoneauths_oidc_plugin(egi_clouds: Path) -> None:
    from keystoneauth1.identity.v3 import OidcAccessToken

    region = cloud_region("egi", {"credentials": "egi-site", "clouds_yaml": str(egi_clouds)})
    auth = region.get_auth()
    assert region.config["auth_type"] == "v3oidcaccesstoken"
    assert isinstance(auth, OidcAccessToken)
    assert (auth.identity_provider, auth.protocol) == ("egi.eu", "openid")
    assert auth.access_token == "token-in-clouds-yaml"
    assert region.region_name == "RegionOne"


def test_an_access_token_file_replaces_the_token_of_the_entry(
    egi_clouds: Path, tmp_path: Path
) -> None:
    token = tmp_path / "token"
    token.write_text("fresh-from-the-agent\n")
    options = {"credentials": "egi-site", "clouds_yaml": str(egi_clouds)}
    region = cloud_region("egi", {**options, "access_token_file": str(token)})
    assert region.get_auth().access_token == "fresh-from-the-agent"  # type: ignore[attr-defined]


def test_an_unreadable_access_token_file_is_said_so(egi_clouds: Path, tmp_path: Path) -> None:
    options = {"credentials": "egi-site", "clouds_yaml": str(egi_clouds)}
    with pytest.raises(CloudError, match="cannot read the access token file"):
        cloud_region("egi", {**options, "access_token_file": str(tmp_path / "none")})


def test_the_operator_names_the_entry_over_the_definition(egi_clouds: Path) -> None:
    options = {"credentials": "not-there", "cloud": "egi-site", "clouds_yaml": str(egi_clouds)}
    assert cloud_region("egi", options).name == "egi-site"
    with pytest.raises(CloudError, match=r"clouds\.yaml entry 'not-there'"):
        cloud_region("egi", {"credentials": "not-there", "clouds_yaml": str(egi_clouds)})


def test_a_region_the_entry_does_not_have_is_refused(egi_clouds: Path) -> None:
    options = {"credentials": "egi-site", "clouds_yaml": str(egi_clouds), "region": "Elsewhere"}
    with pytest.raises(CloudError, match="Elsewhere is not a valid region"):
        cloud_region("egi", options)


def _address(addr: str, kind: str, version: int = 4) -> dict[str, object]:
    return {"addr": addr, "version": version, "OS-EXT-IPS:type": kind}


def test_ssh_goes_to_a_floating_address_before_a_fixed_one() -> None:
    addresses = {
        "private": [_address("fd00::5", "fixed", 6), _address("192.168.0.5", "fixed")],
        "public": [_address("203.0.113.7", "floating")],
    }
    assert reachable_address(addresses) == "203.0.113.7"
    assert reachable_address({"private": addresses["private"]}) == "192.168.0.5"
    assert reachable_address({"v6": [_address("2001:db8::1", "fixed", 6)]}) == "2001:db8::1"
    assert reachable_address({}) is None


def _server(**body: object) -> object:
    from openstack.compute.v2.server import Server

    return Server.existing(id="s-1", name="run-1", **body)


@pytest.mark.parametrize(
    ("status", "task_state", "state"),
    [
        ("BUILD", None, MachineState.PENDING),
        ("ACTIVE", None, MachineState.RUNNING),
        ("ACTIVE", "deleting", MachineState.TERMINATED),
        ("SHUTOFF", None, MachineState.STOPPED),
        ("ERROR", None, MachineState.ERROR),
        ("SOFT_DELETED", None, MachineState.TERMINATED),
        ("SOMETHING_NEW", None, MachineState.UNKNOWN),
    ],
)
def test_nova_states_become_ours(status: str, task_state: str | None, state: MachineState) -> None:
    body = {"status": status, "OS-EXT-STS:task_state": task_state}
    assert _to_machine(_server(**body)).state is state  # type: ignore[arg-type]


def test_a_server_in_error_carries_novas_fault_and_hides_the_token() -> None:
    server = _server(
        status="ERROR",
        fault={"message": "No valid host was found.", "code": 500},
        metadata={"slipway-run": "run-1", "slipway-token": "run-1/create"},
        addresses={"public": [_address("10.20.0.3", "fixed")]},
    )
    machine = _to_machine(server)  # type: ignore[arg-type]
    assert machine.cloud_message == "No valid host was found."
    assert machine.address is None  # only a running machine is reached
    assert machine.tags == {"slipway-run": "run-1"}


@pytest.mark.parametrize(
    ("rule", "neutron"),
    [
        (Rule("tcp", "22"), {"protocol": "tcp", "port_range_min": 22, "port_range_max": 22}),
        (
            Rule("udp", "8000-8080"),
            {"protocol": "udp", "port_range_min": 8000, "port_range_max": 8080},
        ),
        (Rule("tcp", "0-65535"), {"protocol": "tcp"}),
        (Rule("icmp"), {"protocol": "icmp"}),
        (Rule("all"), {}),
    ],
)
def test_rules_become_neutron_ingress_rules(rule: Rule, neutron: dict[str, object]) -> None:
    expected = {"direction": "ingress", "ethertype": "IPv4", "remote_ip_prefix": "0.0.0.0/0"}
    assert to_neutron_rule(rule) == {**expected, **neutron}


def test_neutron_rules_read_back_in_our_words() -> None:
    assert to_rule({"protocol": "tcp", "port_range_min": 80, "port_range_max": 80,
                    "ethertype": "IPv4", "remote_ip_prefix": "10.0.0.0/8"}) == Rule(
        "tcp", "80", "10.0.0.0/8")  # fmt: skip
    assert to_rule({"protocol": None, "ethertype": "IPv6", "remote_ip_prefix": None}) == Rule(
        "all", "", "::/0"
    )
    assert to_rule({"protocol": "6", "ethertype": "IPv4"}) == Rule("tcp", "", "0.0.0.0/0")
    from_group = to_rule({"protocol": None, "ethertype": "IPv4", "remote_group_id": "g-1"})
    assert from_group.source == "group:g-1"  # matches no declared rule: removed when ensured
    ipv6 = to_neutron_rule(Rule("tcp", "443", "::/0"))
    assert ipv6["ethertype"] == "IPv6"


def test_a_glance_hashing_without_sha512_is_checked_by_md5_even_when_nothing_was_hashed(
    tmp_path: Path,
) -> None:
    import hashlib
    import io
    import types

    from slipway.connectors.openstack import _images
    from slipway.errors import CloudError

    path = tmp_path / "disk.qcow2"
    path.write_bytes(b"QFI\xfb" + bytes(4092))
    known = hashlib.sha512(b"not hashed on the way").hexdigest()
    reader = _images._HashingReader(io.BytesIO(), 4096, known)  # sent, never hashed
    good = hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()

    def image(checksum: str) -> types.SimpleNamespace:
        return types.SimpleNamespace(
            hash_algo="sha256", hash_value="ab", checksum=checksum, size=4096, name="disk"
        )

    _images._verify("lab", image(good), reader, 4096, path)
    with pytest.raises(CloudError, match=r"Glance holds 4096 bytes hashing to 0{32}"):
        _images._verify("lab", image("0" * 32), reader, 4096, path)
