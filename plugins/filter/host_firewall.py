# -*- coding: utf-8 -*-
# Copyright: (c) 2026, logfwdr developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
name: host_firewall
short_description: Check the role's host firewall settings and build what its nftables ruleset admits
version_added: "0.3.0"
description:
  - Takes the role's C(logfwdr_firewall_*) settings (a dict keyed by the variable names), the replication state
    (the UDP ports the collectors want) and the syslog bridge's listeners, and returns the ports and networks the
    role's nftables ruleset admits on the ingress interfaces.
  - Fails with every problem found, each naming the variable, before anything on a host is changed.
positional: devices, bridge
options:
  _input:
    description: The settings, keyed by variable name - C(logfwdr_firewall_management_networks),
      C(logfwdr_firewall_ssh_port). Missing keys take the role's defaults.
    type: dict
    required: true
  devices:
    description: The replication state (P(netops.logfwdr.replication_devices#filter)'s result); its ports are the
      monitoring ports admitted.
    type: list
    elements: dict
    required: true
  bridge:
    description: The syslog bridge's listeners (P(netops.logfwdr.syslog_bridge_inputs#filter)'s result), or
      nothing when the bridge is off.
    type: dict
author:
  - logfwdr developers
"""

EXAMPLES = r"""
- name: Build the host firewall's ports
  ansible.builtin.set_fact:
    firewall: >-
      {{ {'logfwdr_firewall_management_networks': ['192.0.2.0/24']}
         | netops.logfwdr.host_firewall(devices, bridge_inputs) }}
"""

RETURN = r"""
_value:
  description: C(udp_ports) (sorted), C(tcp_ports) (the bridge's), C(bridge_senders) and C(bridge_senders6) (its
    IPv4 and IPv6 allowed senders), C(management_networks) and C(management_networks6) (IPv4 and IPv6), C(ssh_port).
  type: dict
"""

import ipaddress

from ansible.errors import AnsibleFilterError

from ansible_collections.netops.logfwdr.plugins.filter.json_query import plain
from ansible_collections.netops.logfwdr.plugins.plugin_utils.inventory import (
    Problems, parse_port, prefixes, role_defaults_under)

PREFIX = "logfwdr_firewall_"
DEFAULTS = role_defaults_under(PREFIX)


def host_firewall(settings, devices, bridge=None):
    settings, devices, bridge = plain(settings) or {}, plain(devices) or [], plain(bridge) or {}
    unknown = sorted(k for k in settings if not (k.startswith(PREFIX) and k[len(PREFIX):] in DEFAULTS))
    if unknown:
        raise AnsibleFilterError("host_firewall: unknown settings %s" % ", ".join(unknown))
    s = dict(DEFAULTS)
    s.update((k[len(PREFIX):], v) for k, v in settings.items())
    problems = Problems()
    networks = prefixes(s["management_networks"], PREFIX + "management_networks", problems, hosts="management hosts")
    port = parse_port(s["ssh_port"])
    if port is None:
        problems.add(PREFIX + "ssh_port", "%r is not a TCP port; use 1-65535 (22 is SSH's)" % (s["ssh_port"],))
    problems.fail("host firewall settings")
    udp = sorted(set(int(p["port"]) for d in devices for p in d.get("ports", [])))
    tcp = sorted(set(int(i["port"]) for i in bridge.get("inputs", [])))
    senders = [ipaddress.ip_network(n) for n in bridge.get("allowed_senders", [])]
    return {"udp_ports": udp, "tcp_ports": tcp, "ssh_port": port,
            "bridge_senders": [str(n) for n in senders if n.version == 4],
            "bridge_senders6": [str(n) for n in senders if n.version == 6],
            "management_networks": [str(n) for n in networks if n.version == 4],
            "management_networks6": [str(n) for n in networks if n.version == 6]}


class FilterModule(object):
    def filters(self):
        return {"host_firewall": host_firewall}
