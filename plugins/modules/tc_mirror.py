#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, logfwdr developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: tc_mirror
short_description: Replicate UDP monitoring traffic in the kernel with tc ingress rules
version_added: "0.1.0"
description:
  - Makes the ingress tc rules of a host match a whole desired replication state, through netlink
    (pyroute2); it never runs C(tc).
  - For each ingress interface, each UDP destination port (syslog, snmptrap, sflow, netflow, ipfix or a
    number) is copied to a list of destinations. A C(forward) destination gets a copy with the egress
    interface's MAC as source, the next hop's MAC as destination and the collector's address as destination
    IP (checksums fixed); the exporter's source address is kept. A C(mirror) destination gets an unchanged
    copy out of a tool port.
  - Each destination is its own u32 node, so adding, changing or removing one destination touches only that
    destination's node; a change is an atomic replace, and traffic to the other destinations never stops.
    There is no limit of 7 destinations per port.
  - Only packets addressed to the replicator are copied - frames sent to the ingress interface's own MAC address
    (never broadcast, multicast or frames for other hosts), to one of O(devices[].addresses), from one of
    O(devices[].sources) - so that a spoofed, broadcast or misaddressed packet is never multiplied. The kernel's
    reverse-path filter does not protect here, because tc ingress runs before it.
  - Every object the module writes carries a mark (a cookie starting with byte 0xf1). Filters without the mark
    are never changed or deleted; finding one at O(priority) and O(chain) of a listed interface is an error
    that names it. Interfaces not listed are never read, except those the module itself wrote rules on
    before (recorded in C(/run/logfwdr/devices.json)), which lose those rules (the list is the whole desired
    state).
  - One run at a time. The module, C(logfwdr apply) and the logfwdr agent take an exclusive lock
    (C(/run/lock/logfwdr.lock)); a second run waits up to 30 seconds, then fails and changes nothing.
  - Everything is validated, and the egress interface and the next hop's MAC address are looked up in the
    kernel's route and neighbour tables (with an ARP request when the neighbour is not known yet), before the
    kernel is changed. If the kernel refuses a change part-way, the changes already made are undone, and the
    interfaces' ingress filters are compared with what was there before the run (the error says whether they
    are the same).
author:
  - logfwdr developers (@netops)
requirements:
  - pyroute2 >= 0.7.2 on the managed host
  - a kernel with sch_ingress, cls_u32, act_mirred; forward destinations also need act_skbmod, act_pedit and
    act_csum, a rate limit act_police, O(devices[].ports[].original=drop) act_gact
attributes:
  check_mode:
    support: full
    description:
      - Reads the kernel, validates and plans; reports the changes and the C(tc) lines without making them.
      - On a host without pyroute2 (a fresh host the role has not installed it on yet), reports a change and
        warns instead of failing.
  diff_mode:
    support: full
    description: Shows the replication rules before and after, one line per destination.
  platform:
    support: full
    platforms: posix
    description: Linux hosts with tc (sch_ingress, cls_u32, act_mirred).
options:
  state:
    description:
      - C(present) makes the rules match O(devices); C(absent) removes every rule the module owns
        (on the listed devices, or on all devices when O(devices) is empty).
    type: str
    choices: [present, absent]
    default: present
  priority:
    description:
      - The u32 filter priority the module owns on each ingress interface, 1-65535.
      - The default stays clear of 49152 and the priorities just below it, which the kernel gives filters
        added without a priority.
      - IPv6 is copied by a second classifier (protocol ipv6) at the next priority, O(priority) + 1; it exists
        only on interfaces with an IPv6 address in O(devices[].addresses).
    type: int
    default: 5140
  chain:
    description:
      - The tc chain the module's filters live in (0-4294967295). Something else must jump to a chain other
        than 0.
    type: int
    default: 0
  pending:
    description:
      - What to do with a forward destination whose next hop does not answer ARP (a collector that is down).
      - C(allow) leaves it out (no rule), lists it in RV(pending) and warns once per collector; the run succeeds and
        the other destinations get their rules. The C(logfwdr agent) on the host installs it once it answers.
      - C(fail) fails the run without changing anything.
    type: str
    choices: [allow, fail]
    default: allow
  devices:
    description: Ingress interfaces and what to replicate from each.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: The ingress interface (where the exporters' packets arrive).
        type: str
        required: true
      addresses:
        description:
          - The IPv4 and IPv6 addresses exporters send to on this interface (the replicator's own and its virtual
            address). Packets to any other destination address are not copied.
          - IPv6 is copied only on an interface with an IPv6 address here; IPv4 unless every address is IPv6.
          - When not set, packets to any destination address are copied (still only frames sent to the
            interface's own MAC address), and the module warns.
        type: list
        elements: str
      sources:
        description:
          - IPv4 and IPv6 prefixes of the exporters allowed on this interface; packets from other sources are not
            copied. Each family copied needs at least one.
          - Default the interface's own connected subnets of each family copied (read from the kernel; IPv6
            link-local excluded). C(0.0.0.0/0) or C(::/0) accepts any source.
        type: list
        elements: str
      fragments:
        description:
          - What happens to fragmented UDP datagrams sent to this interface. Only the first fragment of a
            fragmented datagram carries the UDP header (and so the port).
          - C(first) matches and copies only first fragments, truncated to that fragment; the other fragments
            are not copied.
          - C(reassemble) reassembles every fragmented datagram in the kernel (act_ct, then C(ct clear) so no
            conntrack entry stays) and copies the whole datagram to each destination of its port, fragmented
            again to the egress MTU. Needs the kernel's C(act_ct) (C(CONFIG_NET_ACT_CT)).
        type: str
        choices: [first, reassemble]
        default: first
      reassembly:
        description: Ignored. M(netops.logfwdr.tc_mirror_info) returns it; accepted so that output can be
          given back as it is.
        type: dict
      ports:
        description: UDP destination ports to replicate.
        type: list
        elements: dict
        default: []
        suboptions:
          port:
            description:
              - A UDP port number, or one of C(syslog) (514), C(snmptrap) (162), C(sflow) (6343),
                C(netflow) (2055), C(ipfix) (4739).
            type: raw
            required: true
          original:
            description:
              - What happens to the received packet once it has been copied. C(drop) consumes it; C(pass) lets it
                go up the local stack unchanged (only possible when every destination is a mirror, because
                forward destinations rewrite the packet in place).
              - Default C(drop) when the port has a forward destination, C(pass) otherwise.
            type: str
            choices: [drop, pass]
          rate_limit:
            description:
              - At most this many packets per second of this port, on this interface, are copied at all; the rest
                are dropped before any copy is made (and counted), so a flood of N packets never becomes N copies
                per destination. Needs act_police.
            type: int
          burst:
            description: Packets allowed above O(devices[].ports[].rate_limit) in a burst (default a tenth of the
              rate, at least 10).
            type: int
          original_dropped:
            description: Ignored. M(netops.logfwdr.tc_mirror_info) returns it; accepted so that output can be
              given back as it is.
            type: int
          capped:
            description: Ignored. M(netops.logfwdr.tc_mirror_info) returns it; accepted so that output can be
              given back as it is.
            type: int
          refused:
            description: Ignored. M(netops.logfwdr.tc_mirror_info) returns it; accepted so that output can be
              given back as it is.
            type: int
          destinations:
            description: Where copies go.
            type: list
            elements: dict
            default: []
            suboptions:
              name:
                description:
                  - Identifies the destination (at most 15 printable ASCII characters); stored with the rule, after
                    the ownership mark.
                  - Defaults to O(devices[].ports[].destinations[].address) for forward destinations and to
                    O(devices[].ports[].destinations[].device) for mirror destinations.
                type: str
              mode:
                description: C(forward) to a collector's address, or C(mirror) out of a tool port unchanged.
                type: str
                choices: [forward, mirror]
                default: forward
              address:
                description:
                  - The collector's IPv4 or IPv6 address (forward only). It gets the exporters' packets of its own
                    address family; an IPv6 next hop is found by neighbour discovery.
                type: str
              port:
                description: Rewrite the UDP destination port to this one (forward only).
                type: int
              device:
                description:
                  - The egress interface. Required for mirror destinations; for forward destinations it is
                    taken from the route to O(devices[].ports[].destinations[].address) when not given.
                type: str
              next_hop_mac:
                description:
                  - The next hop's MAC address; looked up in the neighbour table (or by ARP, or neighbour discovery
                    for IPv6) when not given.
                type: str
              sources:
                description:
                  - Only packets from these IPv4 or IPv6 prefixes go to this destination (a forward destination
                    takes prefixes of its collector's family only).
                type: list
                elements: str
              rate_limit:
                description: At most this many packets per second go to this destination; the rest are not copied.
                type: int
              burst:
                description: Packets allowed above O(devices[].ports[].destinations[].rate_limit) in a burst
                  (default a tenth of the rate, at least 10).
                type: int
              sample:
                description:
                  - Copy only every Nth packet of the port to this destination (deterministic 1-in-N sampling,
                    2 to 65535; not set or 1 - every packet). The count runs in the kernel per destination, so of
                    S packets exactly S // N are copied, and the destination's counters count those copies.
                  - Needs the kernel's C(act_gact).
                type: int
              pool:
                description:
                  - Destinations of one port with the same pool name share its load. Each exporter's packets go
                    to exactly one member, chosen by the last octet of the exporter's IPv4 address, so a
                    collector sees whole streams.
                  - The 256 possible octets are spread over the members by rendezvous hashing of (octet, member
                    name). A member added takes only the octets it wins (about 1/(N+1) of them); a member removed,
                    or pending (its next hop does not answer), gives each of its octets to that octet's
                    runner-up, and gets them back when it returns. No other exporter moves.
                  - A move is one atomic replace of the bucket's rule; no packet is lost or copied twice.
                  - At most 14 printable ASCII characters, at most 16 members, all of one kind (all mirror, all
                    forward, or all forward with O(devices[].ports[].destinations[].port)); a member cannot have
                    O(devices[].ports[].destinations[].sources), O(devices[].ports[].destinations[].rate_limit)
                    or O(devices[].ports[].destinations[].sample).
                type: str
              counters:
                description: Ignored. M(netops.logfwdr.tc_mirror_info) returns it; accepted so that output can be
                  given back as it is.
                type: dict
notes:
  - Rules written by version 0.1 (priority 49152, no mark) are not this module's; remove them with
    C(tc filter del dev IFACE ingress prio 49152) before the first run of this version.
  - Only the first fragment of a fragmented datagram carries the UDP header, so with O(devices[].fragments=first)
    only it is matched and copied; O(devices[].fragments=reassemble) copies whole datagrams.
  - Packets with IP options are not matched.
  - Counters restart when a destination's rule is replaced.
seealso:
  - module: netops.logfwdr.tc_mirror_info
"""

EXAMPLES = r"""
- name: Replicate syslog and traps from ens1 to three collectors and an IDS tool port
  netops.logfwdr.tc_mirror:
    devices:
      - name: ens1
        addresses: [10.10.1.2, 10.10.1.1]
        sources: [10.10.1.0/24, 172.16.0.0/12]
        ports:
          - port: syslog
            rate_limit: 25000
            destinations:
              - name: splunk
                address: 192.0.2.10
              - name: graylog
                address: 192.0.2.11
                port: 1514
              - name: ids
                mode: mirror
                device: ens4
          - port: snmptrap
            destinations:
              - name: zabbix
                address: 198.51.100.5
                sources: [10.20.0.0/16]
                rate_limit: 2000

- name: Remove every replication rule the module owns
  netops.logfwdr.tc_mirror:
    state: absent
"""

RETURN = r"""
pending:
  description:
    - Forward destinations left out because their next hop did not answer ARP (O(pending=allow)), one item per
      ingress interface and port.
  returned: always
  type: list
  elements: dict
  sample:
    - name: splunk
      device: ens1
      port: 514
      address: 192.0.2.10
      next_hop: 192.0.2.10
      egress_device: ens3
      reason: next hop 192.0.2.10 on ens3 did not answer ARP
commands:
  description: The equivalent C(tc) command lines of the changes (would be) made.
  returned: always
  type: list
  elements: str
  sample: ["tc filter add dev ens1 ingress protocol ip prio 5140 handle 100: u32 divisor 1"]
pyroute2_missing:
  description: Only in check mode on a host without pyroute2, when the kernel could not be read.
  returned: when pyroute2 is missing in check mode
  type: bool
warnings:
  description: Settings that leave the rules more open than they could be (no O(devices[].addresses)).
  returned: always
  type: list
  elements: str
devices:
  description:
    - The module-owned rules after the run (in check mode, the rules the run would leave), in the shape the
      O(devices) option accepts, with names, next-hop MACs and egress interfaces resolved.
  returned: always
  type: list
  elements: dict
  sample:
    - name: ens1
      ports:
        - port: 514
          original: drop
          destinations:
            - name: splunk
              mode: forward
              address: 192.0.2.10
              device: ens3
              next_hop_mac: "52:54:00:12:34:56"
"""

import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.netops.logfwdr.plugins.module_utils.tc import codec, model
from ansible_collections.netops.logfwdr.plugins.module_utils.tc.argspec import tc_mirror_spec


def main():
    module = AnsibleModule(argument_spec=tc_mirror_spec(), supports_check_mode=True)
    if not codec.HAS_PYROUTE2 and module.check_mode:
        # a fresh host in a check run: the role would install pyroute2 first; say so rather than fail
        module.warn("pyroute2 is not installed on this host, so the kernel's rules could not be read; a real run "
                    "needs python3-pyroute2 (the role installs it) and would then make the rules match: reported "
                    "as changed")
        module.exit_json(changed=bool(module.params["devices"]) or module.params["state"] == "absent",
                         commands=[], devices=[], pyroute2_missing=True)
    if not codec.HAS_PYROUTE2:
        module.fail_json(msg=missing_required_lib("pyroute2"),
                         exception="".join(traceback.format_exception_only(type(codec.PYROUTE2_IMPORT_ERROR),
                                                                           codec.PYROUTE2_IMPORT_ERROR)))
    from ansible_collections.netops.logfwdr.plugins.module_utils.tc import kernel, runner

    kern = kernel.Kernel()
    try:
        result = runner.run(module.params, kern, check_mode=module.check_mode)
    except model.ValidationError as exc:
        module.fail_json(msg="invalid replication state, nothing was changed: " + "; ".join(exc.problems),
                         problems=exc.problems, changed=False)
    except runner.RunError as exc:
        module.fail_json(msg=str(exc), changed=False, **exc.details)
    finally:
        kern.close()
    for warning in runner.pending_warnings(result["pending"]):
        module.warn(warning)
    if not module._diff:
        result.pop("diff")
    for warning in result.pop("warnings", []):
        module.warn(warning)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
