"""Register an Open vSwitch agent for the fake compute host, once, and exit.

ML2's openvswitch mechanism driver binds a port only on a host with a live
agent of that type; without a bound port Nova fails the server with
``PortBindingFailed``. Nothing else of an agent is needed by a cloud whose
machines are fake, so one state report over Neutron's own RPC is enough
(``agent_down_time`` in neutron.conf keeps it alive). Nothing is plumbed:
ports stay DOWN. Usage: ``fake_ovs_agent.py HOST --config-file neutron.conf``.
"""

from __future__ import annotations

import os
import sys

from neutron.agent import rpc as agent_rpc
from neutron.common import config as common_config
from neutron.conf.agent import common as agent_config
from neutron_lib import context
from neutron_lib import rpc as n_rpc
from neutron_lib.agent import topics
from oslo_config import cfg


def report(host: str) -> object:
    state = {
        "binary": "neutron-openvswitch-agent",
        "host": host,
        "topic": topics.AGENT,
        "agent_type": "Open vSwitch agent",
        "start_flag": True,
        "configurations": {
            "bridge_mappings": {"physnet1": "br-physnet1"},
            "integration_bridge": "br-int",
            "tunnel_types": [],
            "ovs_hybrid_plug": False,
            "datapath_type": "system",
            "ovs_capabilities": {"datapath_types": ["system"], "iface_types": []},
        },
    }
    api = agent_rpc.PluginReportStateAPI(topics.REPORTS)
    return api.report_state(context.get_admin_context(), state, use_call=True)


if __name__ == "__main__":
    common_config.register_common_config_options()
    agent_config.register_agent_state_opts_helper(cfg.CONF)
    cfg.CONF(sys.argv[2:], project="neutron")
    n_rpc.init(cfg.CONF)
    print("agent state reported:", report(sys.argv[1]), flush=True)
    os._exit(0)  # oslo.messaging's teardown at exit takes seconds and is not needed
