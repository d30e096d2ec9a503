# -*- coding: utf-8 -*-
# Copyright: (c) 2026, logfwdr developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
name: replication_devices
short_description: Turn the collector inventory into the devices list of tc_mirror
version_added: "0.1.0"
description:
  - Takes the role's inventory (collectors, ingress interfaces, protocol names, optionally egress interfaces) and
    returns the O(netops.logfwdr.tc_mirror#module:devices) list - every ingress interface with every protocol
    some collector wants, and that protocol's collectors as destinations.
  - Collectors are selected per protocol and ingress interface with JMESPath.
  - Checks the whole inventory first and fails with every problem found, each naming the variable, the list
    index and the field, and saying how to fix it - before anything on a host is changed.
  - The egress interface of forward collectors is not in the result, nor their next hop's MAC address unless the
    collector sets C(next_hop_mac); M(netops.logfwdr.tc_mirror) looks them up in the host's routes and neighbour
    table.
positional: ingress_interfaces, protocols
options:
  _input:
    description:
      - The collectors (C(logfwdr_collectors)). Each has a C(name) (at most 16 printable ASCII characters,
        stored in the kernel), C(protocols) (names from O(protocols) or UDP port numbers), and either
        C(address) (C(mode=forward), the default) or C(device) (C(mode=mirror)). Optional C(ports)
        (protocol to the port the collector listens on), C(sources) (allow-list of exporter prefixes, for
        every protocol, or a dict of lists per protocol),
        C(rate_limit) and C(burst) (packets per second), C(sample) (every Nth packet only),
        C(pool) (collectors with the same pool name share each protocol's load, each exporter to one of them),
        C(ingress) (only these ingress interfaces),
        C(next_hop_mac) (forward only - the MAC the copies are sent to, instead of looking it up).
      - C(syslog_format) (C(rfc5424), the default, or C(rfc3164)) is the format in which a forward collector that
        receives syslog gets the messages of the TCP syslog bridge (P(netops.logfwdr.syslog_bridge_targets#filter));
        the tc rules ignore it.
    type: list
    elements: dict
    required: true
  ingress_interfaces:
    description:
      - The ingress interfaces (C(logfwdr_ingress_interfaces)), each with C(name) and C(address), optionally
        C(virtual_address) and C(virtual_router_id) (VRRP, see O(vrrp)), C(exporter_networks) and C(fragments)
        (C(reassemble) or C(first), passed on as the device's O(netops.logfwdr.tc_mirror#module:devices[].fragments)).
    type: list
    elements: dict
    required: true
  protocols:
    description: Protocol names and their UDP ports (C(logfwdr_protocols)).
    type: dict
    required: true
  egress_interfaces:
    description:
      - The egress interfaces (C(logfwdr_egress_interfaces)). When given, forward collectors must be on an egress
        subnet or behind one of its routes, and mirror collectors must use an egress interface.
    type: list
    elements: dict
  vrrp:
    description:
      - C(logfwdr_vrrp). When true, every ingress interface needs C(virtual_address) (in the subnet of its
        C(address)) and C(virtual_router_id) (1-255, unique per host).
    type: bool
    default: false
  service_addresses:
    description:
      - The BGP service addresses (C(logfwdr_bgp_service_addresses) with C(logfwdr_ha=bgp)), bare, as the inventory
        model checked them; every ingress interface's rules accept those of the families it has (IPv6 only with
        C(address6)). Passed through, not checked here.
    type: list
    elements: str
requirements:
  - jmespath on the Ansible controller
author:
  - logfwdr developers
"""

EXAMPLES = r"""
- name: Build the replication state from the inventory
  ansible.builtin.set_fact:
    replication_state: >-
      {{ logfwdr_collectors | netops.logfwdr.replication_devices(logfwdr_ingress_interfaces, logfwdr_protocols,
                                                                 egress_interfaces=logfwdr_egress_interfaces) }}

# collectors:                         result:
#   - name: syslog-a                    - name: vec1
#     address: 10.20.1.31                 ports:
#     protocols: [syslog]                   - port: 514
#     ports: {syslog: 1514}                   destinations:
#   - name: ids                                 - {name: syslog-a, mode: forward, address: 10.20.1.31, port: 1514}
#     mode: mirror                              - {name: ids, mode: mirror, device: vec4}
#     device: vec4
#     protocols: [syslog]
"""

RETURN = r"""
_value:
  description:
    - The O(netops.logfwdr.tc_mirror#module:devices) list, one entry per ingress interface in inventory order
      (with an empty C(ports) list when no collector wants anything from it); ports in ascending order;
      destinations in collector order.
  type: list
  elements: dict
"""

import ipaddress
import json

from ansible_collections.netops.logfwdr.plugins.filter.json_query import json_query, plain
from ansible_collections.netops.logfwdr.plugins.plugin_utils.inventory import (
    Problems, check_same_target, parse_replication, whole)


def _destination(c, port):
    dest = {"name": c["name"], "mode": c["mode"]}
    if c["mode"] == "forward":
        dest["address"] = c["address"]
        if c.get("next_hop_mac"):
            dest["next_hop_mac"] = c["next_hop_mac"]
        if port in c["rewrite"]:
            dest["port"] = c["rewrite"][port]
    else:
        dest["device"] = c["device"]
    if c["sources"].get(port):
        dest["sources"] = list(c["sources"][port])
    if c["rate_limit"]:
        dest["rate_limit"] = c["rate_limit"]
        if c["burst"]:
            dest["burst"] = c["burst"]
    if c.get("sample") and c["sample"] > 1:
        dest["sample"] = c["sample"]
    if c.get("pool"):
        dest["pool"] = c["pool"]
    return dest


def replication_devices(collectors, ingress_interfaces, protocols, egress_interfaces=None, vrrp=False,
                        exporter_networks=None, port_rate_limit=0, port_burst=0, service_addresses=None):
    problems = Problems()
    model = parse_replication(plain(collectors), plain(ingress_interfaces), plain(protocols),
                              plain(egress_interfaces), vrrp=vrrp, exporter_networks=plain(exporter_networks),
                              problems=problems, service_addresses=plain(service_addresses))
    cap = {}
    for field, value in (("logfwdr_port_rate_limit", port_rate_limit), ("logfwdr_port_burst", port_burst)):
        if isinstance(value, str) or whole(value, 0) is None:
            problems.add(field, "%r; use a whole number of packets (0: %s)" % (
                value, "no cap" if field == "logfwdr_port_rate_limit" else "a tenth of the rate"))
        elif value:
            cap[field.split("_", 2)[2]] = whole(value, 0)
    if "burst" in cap and "rate_limit" not in cap:
        problems.add("logfwdr_port_burst", "only meaningful with logfwdr_port_rate_limit")
    problems.fail("replication inventory")

    valid = model["collectors"]
    by_name = dict((c["name"], c) for c in valid)
    wanted = sorted(set(p for c in valid for p in c["ports"]))
    check_same_target(valid, wanted, problems)
    # a forward collector gets the exporters of its own address family: only from segments that have one
    families = dict((name, set(ipaddress.ip_address(a).version for a in scope.get("addresses", [])))
                    for name, scope in model["scopes"].items())
    for c in valid:
        if c["mode"] == "forward":
            family = ipaddress.ip_address(c["address"]).version
            if not any(family in families.get(n, ()) for n in c["ingress"]):
                problems.add("logfwdr_collectors[%d].address" % c["index"], "%s is an IPv%d address, and none of its "
                             "ingress interfaces (%s) has an IPv%d address%s; it would get nothing" % (
                                 c["address"], family, ", ".join(c["ingress"]), family,
                                 " (address6)" if family == 6 else ""))
    problems.fail("replication inventory")
    devices = []
    for ifname in model["ingress"]:
        ports = []
        for port in wanted:
            # collectors that want this port from this interface, in inventory order
            names = json_query(valid, "[?contains(ports, `%d`) && contains(ingress, `%s`)].name"
                               % (port, json.dumps(ifname)))
            names = [n for n in names if by_name[n]["mode"] != "forward"
                     or ipaddress.ip_address(by_name[n]["address"]).version in families.get(ifname, ())]
            if names:
                ports.append(dict({"port": port, "destinations": [_destination(by_name[n], port) for n in names]},
                                  **cap))
        devices.append(dict({"name": ifname, "ports": ports}, **model["scopes"].get(ifname, {})))
    return devices


class FilterModule(object):
    def filters(self):
        return {"replication_devices": replication_devices}
