"""Write the lab's configuration files (run by ``up`` with Debian's python3).

Reads the folders, the message-bus URL and the database URL prefix from the
environment ``up`` sets; the password of every service user is the lab's one
password. Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

ETC = Path(os.environ["OSLAB_ETC"])
STATE = Path(os.environ["OSLAB_STATE"])
LOGS = Path(os.environ["OSLAB_LOGS"])
TRANSPORT = os.environ["OSLAB_TRANSPORT"]
DB_PREFIX = os.environ["OSLAB_DB_PREFIX"]
PASSWORD = os.environ["OSLAB_PASSWORD"]
KEYSTONE = "http://127.0.0.1:5000"


def database(name: str) -> str:
    return f"{DB_PREFIX}{name}?charset=utf8"


def service_auth(section: str, user: str) -> str:
    """Credentials a service uses to call another one (a ``[section]`` block)."""
    return f"""[{section}]
auth_type = password
auth_url = {KEYSTONE}
project_domain_name = Default
user_domain_name = Default
project_name = service
username = {user}
password = {PASSWORD}
region_name = RegionOne
"""


def token_check(user: str) -> str:
    """The ``[keystone_authtoken]`` block that lets a service check tokens."""
    return service_auth("keystone_authtoken", user).replace(
        "[keystone_authtoken]\n", f"[keystone_authtoken]\nwww_authenticate_uri = {KEYSTONE}\n"
    )


def uwsgi(name: str, port: int, script: str, env: list[str], processes: int = 1) -> str:
    """A uwsgi ini for one WSGI service. ``Connection: close`` because clients
    that reuse connections hang on uwsgi's plain HTTP socket."""
    lines = [
        "[uwsgi]",
        "plugins = python3",
        f"http-socket = 127.0.0.1:{port}",
        f"wsgi-file = {script}",
        "master = true",
        f"processes = {processes}",
        "threads = 4",
        "lazy-apps = true",
        "need-app = true",
        "enable-threads = true",
        "die-on-term = true",
        "no-orphans = true",
        "buffer-size = 65535",
        "add-header = Connection: close",
        f"logto = {LOGS}/{name}-uwsgi.log",
    ]
    lines += [f"env = {e}" for e in env]
    return "\n".join(lines) + "\n"


def keystone() -> None:
    (ETC / "keystone/keystone.conf").write_text(f"""[DEFAULT]
log_file = {LOGS}/keystone.log
[database]
connection = {database("keystone")}
[identity]
# the cheapest bcrypt: password checks dominate test time otherwise
password_hash_rounds = 4
[token]
provider = fernet
[fernet_tokens]
key_repository = {STATE}/keystone/fernet-keys
[fernet_receipts]
key_repository = {STATE}/keystone/fernet-keys
[credential]
key_repository = {STATE}/keystone/credential-keys
""")
    (ETC / "keystone/uwsgi.ini").write_text(
        uwsgi("keystone", 5000, "/usr/bin/keystone-wsgi-public",
              [f"OS_KEYSTONE_CONFIG_DIR={ETC}/keystone"])
    )  # fmt: skip


def glance() -> None:
    shutil.copy("/etc/glance/glance-api-paste.ini", ETC / "glance")
    (ETC / "glance/glance-api.conf").write_text(f"""[DEFAULT]
bind_host = 127.0.0.1
bind_port = 9292
workers = 0
log_file = {LOGS}/glance-api.log
enabled_backends = file:file
[glance_store]
default_backend = file
[file]
filesystem_store_datadir = {STATE}/glance/images
[os_glance_staging_store]
filesystem_store_datadir = {STATE}/glance/staging
[os_glance_tasks_store]
filesystem_store_datadir = {STATE}/glance/tasks
[database]
connection = {database("glance")}
[paste_deploy]
flavor = keystone
[oslo_concurrency]
lock_path = {STATE}/glance/lock
{token_check("glance")}""")


def placement() -> None:
    (ETC / "placement/placement.conf").write_text(f"""[DEFAULT]
log_file = {LOGS}/placement.log
[placement_database]
connection = {database("placement")}
[api]
auth_strategy = keystone
{token_check("placement")}""")
    (ETC / "placement/uwsgi.ini").write_text(
        uwsgi("placement", 8778, "/usr/bin/placement-api",
              [f"OS_PLACEMENT_CONFIG_DIR={ETC}/placement"])
    )  # fmt: skip


def nova() -> None:
    shutil.copy("/etc/nova/api-paste.ini", ETC / "nova")
    (ETC / "nova/nova.conf").write_text(f"""[DEFAULT]
transport_url = {TRANSPORT}
compute_driver = fake.FakeDriver
host = fake-compute-1
my_ip = 127.0.0.1
# periodic tasks (the scheduler's host discovery) at once, not after 0-60 s
periodic_fuzzy_delay = 0
state_path = {STATE}/nova
instances_path = {STATE}/nova/instances
log_dir = {LOGS}
enabled_apis = osapi_compute
[api]
auth_strategy = keystone
[wsgi]
api_paste_config = {ETC}/nova/api-paste.ini
[conductor]
workers = 1
[scheduler]
workers = 1
discover_hosts_in_cells_interval = 2
[oslo_concurrency]
lock_path = {STATE}/nova/lock
[oslo_messaging_notifications]
driver = noop
[vnc]
enabled = false
[glance]
region_name = RegionOne
{token_check("nova")}
{service_auth("placement", "placement")}
{service_auth("neutron", "neutron")}""")
    # Everything but the compute service reads the databases from here.
    (ETC / "nova/nova-db.conf").write_text(f"""[api_database]
connection = {database("nova_api")}
[database]
connection = {database("nova")}
""")
    # Under uwsgi, eventlet's hub sleeps between requests: RabbitMQ heartbeats
    # must come from a real thread, or an idle API loses its reply queue and
    # its next call to the compute service (console output) times out.
    (ETC / "nova/nova-api.conf").write_text(
        "[oslo_messaging_rabbit]\nheartbeat_in_pthread = true\n"
    )
    # nova-api-wsgi takes its paste pipeline from the first file of the list.
    (ETC / "nova/uwsgi.ini").write_text(
        uwsgi("nova-api", 8774, "/usr/bin/nova-api-wsgi",
              [f"OS_NOVA_CONFIG_DIR={ETC}/nova",
               "OS_NOVA_CONFIG_FILES=api-paste.ini;nova.conf;nova-db.conf;nova-api.conf"],
              processes=2)
    )  # fmt: skip


def neutron() -> None:
    (ETC / "neutron/neutron.conf").write_text(f"""[DEFAULT]
core_plugin = ml2
service_plugins =
auth_strategy = keystone
bind_host = 127.0.0.1
bind_port = 9696
api_workers = 1
rpc_workers = 1
rpc_state_report_workers = 0
transport_url = {TRANSPORT}
state_path = {STATE}/neutron
log_file = {LOGS}/neutron-server.log
api_paste_config = /etc/neutron/api-paste.ini
notify_nova_on_port_status_changes = false
notify_nova_on_port_data_changes = false
dhcp_agent_notification = false
# the fake agent reports once: it must count as alive for as long as the lab runs
agent_down_time = 315360000
[database]
connection = {database("neutron")}
[oslo_concurrency]
lock_path = {STATE}/neutron/lock
[oslo_messaging_notifications]
driver = noop
{token_check("neutron")}
[ml2]
type_drivers = flat
tenant_network_types =
mechanism_drivers = openvswitch
extension_drivers = port_security
[ml2_type_flat]
flat_networks = physnet1
[securitygroup]
enable_security_group = true
firewall_driver = noop
""")


if __name__ == "__main__":
    for write in (keystone, glance, placement, nova, neutron):
        write()
