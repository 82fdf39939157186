"""Fill the lab cloud (run by ``up`` with Debian's python3 and openstacksdk).

``catalog``: once Keystone answers — the service project, one user per
service, and the catalog of endpoints the services find each other by.
``resources``: once everything answers — the demo project and user, flavors,
one shared flat network, an application credential of the demo user, then a
smoke test (an image, a server that must become ACTIVE, both deleted), and
finally ``clouds.yaml``.
"""

from __future__ import annotations

import io
import json
import os
import sys
import time
from pathlib import Path

import openstack

AUTH_URL = "http://127.0.0.1:5000/v3"
PASSWORD = os.environ["OSLAB_PASSWORD"]
SERVICES = {  # user / catalog name: (type, URL)
    "glance": ("image", "http://127.0.0.1:9292"),
    "placement": ("placement", "http://127.0.0.1:8778"),
    "nova": ("compute", "http://127.0.0.1:8774/v2.1"),
    "neutron": ("network", "http://127.0.0.1:9696"),
}
FLAVORS = [  # name, vCPUs, RAM MiB, disk GB
    ("m1.tiny", 1, 512, 1),
    ("m1.small", 1, 2048, 20),
    ("m1.medium", 2, 4096, 40),
    ("m1.large", 4, 8192, 80),
]


def password_auth(user: str) -> dict[str, str]:
    return {
        "auth_url": AUTH_URL,
        "username": user,
        "password": PASSWORD,
        "project_name": user,
        "user_domain_id": "default",
        "project_domain_id": "default",
    }


def connect(user: str) -> openstack.connection.Connection:
    return openstack.connect(
        auth=password_auth(user), region_name="RegionOne", identity_api_version="3"
    )


def catalog() -> None:
    admin = connect("admin")
    identity = admin.identity
    service_role = identity.find_role("service") or identity.create_role(name="service")
    admin_role = identity.find_role("admin")
    project = identity.find_project("service") or identity.create_project(
        name="service", domain_id="default"
    )
    for name, (kind, url) in SERVICES.items():
        user = identity.find_user(name) or identity.create_user(
            name=name, password=PASSWORD, domain_id="default"
        )
        for role in (admin_role, service_role):
            identity.assign_project_role_to_user(project, user, role)
        service = identity.find_service(name) or identity.create_service(name=name, type=kind)
        for interface in ("public", "internal", "admin"):
            identity.create_endpoint(
                service_id=service.id, interface=interface, url=url, region_id="RegionOne"
            )
    print("catalog ready")


def demo_user(admin: openstack.connection.Connection) -> None:
    identity = admin.identity
    project = identity.find_project("demo") or identity.create_project(
        name="demo", domain_id="default"
    )
    user = identity.find_user("demo") or identity.create_user(
        name="demo", password=PASSWORD, domain_id="default", default_project_id=project.id
    )
    identity.assign_project_role_to_user(project, user, identity.find_role("member"))


def flavors(admin: openstack.connection.Connection) -> None:
    for number, (name, cpu, ram, disk) in enumerate(FLAVORS, start=1):
        if admin.compute.find_flavor(name) is None:
            admin.compute.create_flavor(
                id=str(number), name=name, vcpus=cpu, ram=ram, disk=disk, is_public=True
            )


def network(admin: openstack.connection.Connection) -> None:
    net = admin.network.find_network("public") or admin.network.create_network(
        name="public",
        is_shared=True,
        provider_network_type="flat",
        provider_physical_network="physnet1",
    )
    if not list(admin.network.subnets(network_id=net.id)):
        admin.network.create_subnet(
            name="public-v4", network_id=net.id, ip_version=4, cidr="10.20.0.0/24",
            gateway_ip="10.20.0.1", is_dhcp_enabled=False,
        )  # fmt: skip


def application_credential(demo: openstack.connection.Connection) -> tuple[str, str]:
    """A new application credential of the demo user: (id, secret)."""
    secret = os.urandom(18).hex()
    credential = demo.identity.create_application_credential(
        user=demo.current_user_id, name=f"lab-{int(time.time())}", secret=secret
    )
    return credential.id, secret


def smoke_test(demo: openstack.connection.Connection) -> None:
    """A server must reach ACTIVE: proof that scheduling and port binding work."""
    image = demo.image.create_image(
        "lab-smoke", data=io.BytesIO(b"\0" * 1024), disk_format="raw",
        container_format="bare", allow_duplicates=True,
    )  # fmt: skip
    server = demo.compute.create_server(
        name="lab-smoke", image_id=image.id, flavor_id=demo.compute.find_flavor("m1.tiny").id,
        networks=[{"uuid": demo.network.find_network("public").id}],
    )  # fmt: skip
    try:
        demo.compute.wait_for_server(server, status="ACTIVE", interval=0.5, wait=60)
    finally:
        demo.compute.delete_server(server)
        demo.compute.wait_for_delete(server, interval=0.5, wait=60)
        demo.image.delete_image(image)


def clouds_yaml(credential: tuple[str, str]) -> str:
    """clouds.yaml as JSON, which is YAML too."""
    common = {"region_name": "RegionOne", "identity_api_version": "3"}
    clouds = {
        "lab-admin": {"auth": password_auth("admin"), **common},
        "lab-demo": {"auth": password_auth("demo"), **common},
        "lab-demo-appcred": {
            "auth_type": "v3applicationcredential",
            "auth": {
                "auth_url": AUTH_URL,
                "application_credential_id": credential[0],
                "application_credential_secret": credential[1],
            },
            **common,
        },
    }
    return json.dumps({"clouds": clouds}, indent=2) + "\n"


def resources() -> None:
    started = time.monotonic()
    admin = connect("admin")
    demo_user(admin)
    flavors(admin)
    network(admin)
    demo = connect("demo")
    credential = application_credential(demo)
    smoke_test(demo)
    path = Path(os.environ["OSLAB_DIR"]) / "clouds.yaml"
    path.write_text(clouds_yaml(credential))
    path.chmod(0o600)
    print(f"resources ready, smoke test passed in {time.monotonic() - started:.1f} s")


if __name__ == "__main__":
    {"catalog": catalog, "resources": resources}[sys.argv[1]]()
