# -*- coding: utf-8 -*-
# Copyright: (c) 2026, logfwdr developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
name: replication_expected
short_description: What the replication check must find in the kernel for a replication state
version_added: "0.2.0"
description:
  - Takes the O(netops.logfwdr.tc_mirror#module:devices) list (the output of P(netops.logfwdr.replication_devices#filter))
    and returns, per ingress interface and UDP port, how many mirred actions M(netops.logfwdr.tc_mirror) installs
    there. The role writes the result to C(/etc/logfwdr/replication-expected.json); the check script
    C(/usr/local/libexec/logfwdr/check-replication), which keepalived runs, compares the kernel with it.
  - Each destination becomes one u32 node with one mirred action per allow-listed source prefix (overlapping
    prefixes are merged first, as tc_mirror does), or one node when it has no allow-list.
  - With O(previous), the result is the lower of the two expectations per interface and port (ports and interfaces
    missing from either are left out). The role writes that before it changes the rules, so that removing a
    collector never makes the check fail while the rules change.
positional: priority
options:
  _input:
    description: The devices list, as O(netops.logfwdr.tc_mirror#module:devices) takes it.
    type: list
    elements: dict
    required: true
  priority:
    description: The tc filter priority of the replication rules (C(logfwdr_priority)).
    type: int
    required: true
  previous:
    description:
      - The expectation written before - the file's text or its parsed content. Empty, unreadable or missing
        (C('')) means nothing was expected, so nothing is. Not given - the full expectation.
    type: raw
author:
  - logfwdr developers
"""

EXAMPLES = r"""
- name: Write what the replication check must find
  ansible.builtin.copy:
    content: "{{ __logfwdr_devices | netops.logfwdr.replication_expected(logfwdr_priority) | to_nice_json }}\n"
    dest: /etc/logfwdr/replication-expected.json
    mode: "0644"
"""

RETURN = r"""
_value:
  description:
    - C(priority), C(chain) (0) and C(devices), one per ingress interface in the order given, each with C(name), the
      total C(mirred) count and C(ports) (C(port) and C(mirred)).
  type: dict
"""

import ipaddress
import json

from ansible.errors import AnsibleFilterError

from ansible_collections.netops.logfwdr.plugins.filter.json_query import plain


def destination_nodes(dest):
    """How many u32 nodes (each with one mirred action) tc_mirror installs for one destination."""
    sources = dest.get("sources") or []
    if not sources:
        return 1
    # model.validate collapses the allow-list before building one node per prefix
    return len(list(ipaddress.collapse_addresses(ipaddress.IPv4Network(str(s), strict=True) for s in sources)))


def _expected(devices, priority):
    out = []
    for dev in devices or []:
        ports = []
        for port in dev.get("ports") or []:
            count = sum(destination_nodes(d) for d in port.get("destinations") or [])
            ports.append({"port": int(port["port"]), "mirred": count})
        out.append({"name": dev["name"], "mirred": sum(p["mirred"] for p in ports), "ports": ports})
    return {"priority": int(priority), "chain": 0, "devices": out}


def _relaxed(new, previous):
    old_devices = dict((d.get("name"), d) for d in previous.get("devices") or [] if isinstance(d, dict))
    devices = []
    for dev in new["devices"]:
        old = old_devices.get(dev["name"])
        if old is None:
            continue
        old_ports = dict((p.get("port"), p.get("mirred", 0)) for p in old.get("ports") or [] if isinstance(p, dict))
        ports = [{"port": p["port"], "mirred": min(p["mirred"], int(old_ports[p["port"]]))}
                 for p in dev["ports"] if p["port"] in old_ports]
        devices.append({"name": dev["name"], "mirred": sum(p["mirred"] for p in ports), "ports": ports})
    return {"priority": int(previous.get("priority", new["priority"])), "chain": int(previous.get("chain", 0)),
            "devices": devices}


def replication_expected(devices, priority, previous=None):
    devices, previous = plain(devices), plain(previous)
    try:
        new = _expected(devices, priority)
    except (KeyError, TypeError, ValueError) as exc:
        raise AnsibleFilterError("replication_expected: not a tc_mirror devices list (%s)" % exc)
    if previous is None:
        return new
    if isinstance(previous, str):
        try:
            previous = json.loads(previous)
        except ValueError:
            previous = None
    try:
        if isinstance(previous, dict) and isinstance(previous.get("devices"), list):
            return _relaxed(new, previous)
    except (AttributeError, KeyError, TypeError, ValueError):
        pass
    return {"priority": new["priority"], "chain": 0, "devices": []}  # nothing (readable) expected before


class FilterModule(object):
    def filters(self):
        return {"replication_expected": replication_expected}
