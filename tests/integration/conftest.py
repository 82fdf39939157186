"""Integration fixtures: moto in server mode on 127.0.0.1 behind the delay/fault
proxy, and the OpenStack test lab's clouds.yaml when one runs."""

from __future__ import annotations

import logging
import os
import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.ec2_proxy import Ec2Proxy
from tests.integration.moto_amis import write_moto_amis
from tests.integration.moto_gaps import fill_moto_gaps


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def moto_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    # moto reads these when it is imported, so before anything imports it.
    os.environ["MOTO_ENABLE_AMI_VALIDATION"] = "true"
    os.environ["MOTO_EC2_ENABLE_INSTANCE_TYPE_VALIDATION"] = "true"
    # moto's own AMIs plus those the examples name.
    os.environ["MOTO_AMIS_PATH"] = str(write_moto_amis(tmp_path_factory.mktemp("moto")))
    from moto.server import ThreadedMotoServer

    fill_moto_gaps()

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield port
    server.stop()


@pytest.fixture
def ec2_proxy(moto_port: int, monkeypatch: pytest.MonkeyPatch) -> Iterator[Ec2Proxy]:
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    }.items():
        monkeypatch.setenv(key, value)
    reset = urllib.request.Request(f"http://127.0.0.1:{moto_port}/moto-api/reset", method="POST")
    urllib.request.urlopen(reset).close()
    proxy = Ec2Proxy(moto_port).start()
    yield proxy
    proxy.stop()


@pytest.fixture(scope="session")
def openstack_clouds() -> Path:
    """The clouds.yaml of a running OpenStack test lab (``tests/openstack_lab/up``
    prints its path; ``.ci/run`` starts one and sets the variable)."""
    path = os.environ.get("SLIPWAY_TEST_OPENSTACK_CLOUDS")
    if not path:
        pytest.skip(
            "SLIPWAY_TEST_OPENSTACK_CLOUDS is not set: no OpenStack to test against "
            "(start one with tests/openstack_lab/up)"
        )
    if not Path(path).is_file():
        pytest.fail(f"SLIPWAY_TEST_OPENSTACK_CLOUDS names {path}, which does not exist")
    return Path(path)
