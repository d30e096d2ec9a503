# -*- coding: utf-8 -*-
# Copyright: (c) 2026, logfwdr developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
name: syslog_bridge_targets
short_description: The collectors the TCP syslog bridge sends each message to, from the collector inventory
version_added: "0.2.0"
description:
  - Takes the same collector inventory as P(netops.logfwdr.replication_devices#filter) (C(logfwdr_collectors)) and
    returns the destinations of the TCP-to-UDP syslog bridge (rsyslog) - every forward collector whose C(protocols)
    include syslog (the name C(syslog) or its port, C(514) unless O(protocols) says otherwise), with the UDP port it
    listens on for syslog (C(ports.syslog), else the syslog port), its C(syslog_format), and the senders whose
    messages it gets.
  - Mirror collectors (C(mode=mirror)) get no bridge copies - a TCP stream cannot be mirrored unchanged.
  - A collector's C(sources) (a list, or a dict with a C(syslog) key) restricts the senders exactly as it restricts
    the UDP syslog the tc rules copy. A collector's C(ingress) restricts them to senders on the subnets of those
    ingress interfaces (TCP reaches the bridge on any interface, so the sender's address stands for the
    interface); with both, a sender must match both.
  - Collectors with the same C(pool) share the bridge's messages as they share the UDP syslog the kernel copies -
    each sender's messages go to exactly one member, the one the kernel's rules map the last octet of the sender's
    address to (rendezvous hashing over the members' names, the same function). The members of a pool must get the
    same senders (the same C(ingress)), so that the mapping is the kernel's for every sender.
  - Checks the whole inventory first, with the same messages as P(netops.logfwdr.replication_devices#filter) (each
    naming the variable, the index and the field), and fails with every problem found.
positional: ingress_interfaces, protocols
options:
  _input:
    description: The collectors (C(logfwdr_collectors)), as P(netops.logfwdr.replication_devices#filter) takes them.
    type: list
    elements: dict
    required: true
  ingress_interfaces:
    description: The ingress interfaces (C(logfwdr_ingress_interfaces)), each with C(name) and C(address).
    type: list
    elements: dict
    required: true
  protocols:
    description: Protocol names and their UDP ports (C(logfwdr_protocols)); C(syslog) is the syslog port (514 when absent).
    type: dict
    required: true
  egress_interfaces:
    description:
      - The egress interfaces (C(logfwdr_egress_interfaces)). When given, forward collectors must be on an egress
        subnet or behind one of its routes.
    type: list
    elements: dict
author:
  - logfwdr developers
"""

EXAMPLES = r"""
- name: Build the syslog bridge's destinations
  ansible.builtin.set_fact:
    bridge_targets: >-
      {{ logfwdr_collectors | netops.logfwdr.syslog_bridge_targets(logfwdr_ingress_interfaces, logfwdr_protocols,
                                                                   egress_interfaces=logfwdr_egress_interfaces) }}

# collectors:                                result:
#   - name: siem                               - name: siem
#     address: 10.20.1.31                        action: to-siem
#     protocols: [syslog, snmptrap]              address: 10.20.1.31
#     ports: {syslog: 1514}                      port: 1514
#     syslog_format: rfc3164                     format: rfc3164
#     sources: {syslog: [10.10.2.0/25]}          senders: [10.10.2.0/25]
#   - name: ids                                  ranges: [[168428032, 168428159]]
#     mode: mirror
#     device: vec4
#     protocols: [syslog]
"""

RETURN = r"""
_value:
  description:
    - One entry per collector that gets the bridge's messages, in inventory order, each with C(name), C(action)
      (C(to-<name>), the rsyslog action and queue name in the bridge's counters), C(address), C(port) (UDP),
      C(format) (C(rfc5424) or C(rfc3164)), C(senders) (the IPv4 and IPv6 prefixes whose messages it gets,
      overlapping ones merged; empty for every sender), C(ranges) (its IPv4 prefixes as C([first, last]) address
      numbers, as rsyslog's C(ip42num()) computes them) and C(prefixes6) (its IPv6 prefixes as the texts that the
      sender's address, written as 32 hex digits, starts with; rsyslog has no IPv6 number).
    - A pool member also has C(pool), C(octets) - the last octets of the IPv4 senders it gets, as C([first, last])
      runs - and C(octets6) - the same for the last byte of an IPv6 sender's address; every other collector has
      C(pool) null and both empty. A family's senders are shared by the members of that family, as the kernel's
      rules share its exporters; by all members when no member is of it.
  type: list
  elements: dict
"""

import ipaddress

from ansible_collections.netops.logfwdr.plugins.filter.json_query import plain
from ansible_collections.netops.logfwdr.plugins.module_utils.tc.layout import pool_buckets
from ansible_collections.netops.logfwdr.plugins.plugin_utils.inventory import (
    Problems, check_same_target, parse_replication)

SYSLOG_PORT = 514  # when logfwdr_protocols has no syslog entry


def _intersect(left, right):
    """The addresses in both prefix lists (two prefixes are nested or disjoint: keep the smaller)."""
    out = []
    for a in left:
        for b in right:
            if a.version == b.version and a.overlaps(b):
                out.append(a if a.prefixlen >= b.prefixlen else b)
    return out


def _runs(numbers):
    """Sorted whole numbers -> [[first, last], ...] of consecutive runs."""
    out = []
    for n in numbers:
        if out and out[-1][1] == n - 1:
            out[-1][1] = n
        else:
            out.append([n, n])
    return out


def hex_prefixes(net):
    """The texts an IPv6 address in `net`, written as 32 hex digits, starts with: one, or a few when the prefix
    ends inside a hex digit (/65: ...0000 followed by 8-f). The syslog bridge tests IPv6 senders that way, since
    rsyslog has no IPv6 number (its ip42num() is IPv4 only)."""
    digits = "%032x" % int(net.network_address)
    whole_digits, bits = divmod(net.prefixlen, 4)
    if not bits and whole_digits:
        return [digits[:whole_digits]]
    # the values of the next digit that share its first `bits` bits (::/0: every digit, never an IPv4 sender's "-")
    first = int(digits[whole_digits], 16)
    return [digits[:whole_digits] + "%x" % v for v in range(first, first + (1 << (4 - bits)))]


def _share_pools(targets, problems):
    """Each pool member's octets (IPv4 senders) and octets6 (IPv6 senders): the buckets the kernel's rules give it
    (layout.pool_buckets). The kernel shares a family's exporters among the members of that family (and mirror
    members, which the bridge cannot send to): rendezvous hashing over the bridge's members of the family gives each
    of them the same buckets as the kernel does. A family no member is of is shared by all members (the bridge,
    unlike the kernel, can send a message to a collector of the other family)."""
    pools = {}
    for t in targets:
        if t["pool"]:
            pools.setdefault(t["pool"], []).append(t)
    for name, members in pools.items():
        odd = [m for m in members if m["senders"] != members[0]["senders"]]
        for m in odd:
            problems.add("logfwdr_collectors[%d].ingress" % m["index"],
                         "the members of pool %r must get syslog from the same senders (%s gets %s, %s gets %s): "
                         "the syslog bridge maps each sender to one member by its address alone; give the members "
                         "the same ingress" % (name, members[0]["name"], ", ".join(members[0]["senders"]) or "all",
                                               m["name"], ", ".join(m["senders"]) or "all"))
        for family, field in ((4, "octets"), (6, "octets6")):
            own = [m for m in members if ipaddress.ip_address(m["address"]).version == family] or members
            owners = [o["name"] for o in pool_buckets([{"name": m["name"]} for m in own])]
            for m in members:
                m[field] = _runs([b for b, owner in enumerate(owners) if owner == m["name"]])


def syslog_bridge_targets(collectors, ingress_interfaces, protocols, egress_interfaces=None):
    problems = Problems()
    model = parse_replication(plain(collectors), plain(ingress_interfaces), plain(protocols),
                              plain(egress_interfaces), problems=problems)
    problems.fail("replication inventory")
    valid = model["collectors"]
    syslog = model["protocols"].get("syslog", SYSLOG_PORT)
    check_same_target(valid, [syslog], problems)
    problems.fail("replication inventory")

    everywhere = [ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0")]
    targets = []
    for c in valid:
        if c["mode"] != "forward" or syslog not in c["ports"]:
            continue
        allowed = [ipaddress.ip_network(s) for s in c["sources"].get(syslog) or []] or everywhere
        if set(c["ingress"]) != set(model["ingress"]):  # restricted to some ingress interfaces
            allowed = _intersect(allowed, [net for n in c["ingress"] for net in model["ingress_subnets"].get(n, [])])
        nets = [n for family in (4, 6) for n in ipaddress.collapse_addresses(
            [a for a in allowed if a.version == family])]
        if nets == everywhere:
            nets = []
        elif not nets:
            continue  # sources and ingress exclude each other: this collector gets nothing
        targets.append({
            "name": c["name"],
            "action": "to-" + c["name"],
            "address": c["address"],
            "port": c["rewrite"].get(syslog, syslog),
            "format": c["syslog_format"],
            "senders": [str(n) for n in nets],
            "ranges": [[int(n.network_address), int(n.broadcast_address)] for n in nets if n.version == 4],
            "prefixes6": [p for n in nets if n.version == 6 for p in hex_prefixes(n)],
            "pool": c["pool"],
            "octets": [],
            "octets6": [],
            "index": c["index"],
        })
    _share_pools(targets, problems)
    problems.fail("replication inventory")
    for t in targets:
        del t["index"]
    return targets


class FilterModule(object):
    def filters(self):
        return {"syslog_bridge_targets": syslog_bridge_targets}
