#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, logfwdr developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: inventory_model
short_description: Check the logfwdr role's whole inventory and build what the role renders
version_added: "0.3.0"
description:
  - Runs on the controller only (an action plugin). Reads the role's own variables (C(logfwdr_collectors),
    C(logfwdr_ingress_interfaces), C(logfwdr_protocols), C(logfwdr_egress_interfaces), C(logfwdr_vrrp_*),
    C(logfwdr_syslog_bridge_*), C(logfwdr_firewall_*), C(logfwdr_ha), C(logfwdr_bgp_*), ...), so no task has to
    pass them on, and the peers' C(logfwdr_ingress_interfaces) through C(hostvars).
  - Checks them together and fails with every problem found, each naming the variable, the list index and the
    field and saying how to fix it, before anything on a host is changed.
  - Parsing and checking live in one place (C(plugins/plugin_utils/inventory.py)); the filters
    P(netops.logfwdr.replication_devices#filter), P(netops.logfwdr.vrrp_instances#filter),
    P(netops.logfwdr.syslog_bridge_targets#filter), P(netops.logfwdr.syslog_bridge_inputs#filter) and
    P(netops.logfwdr.host_firewall#filter) are the views it returns.
  - Used by the role netops.logfwdr.logfwdr (C(tasks/validate.yml)); it needs the role's defaults, so outside the
    role every variable must be defined.
options: {}
attributes:
  check_mode:
    support: full
    description: Changes nothing anywhere; runs the same in check mode.
  diff_mode:
    support: none
    description: Changes nothing, so there is no diff.
  platform:
    support: full
    platforms: posix
    description: Runs on the controller.
extends_documentation_fragment: []
author:
  - logfwdr developers (@netops)
"""

EXAMPLES = r"""
- name: Check the inventory and build the role's views
  netops.logfwdr.inventory_model:
  register: model

- name: Show the replication state tc_mirror gets
  ansible.builtin.debug:
    var: model.devices
"""

RETURN = r"""
devices:
  description: The O(netops.logfwdr.tc_mirror#module:devices) list (P(netops.logfwdr.replication_devices#filter)).
  returned: always
  type: list
  elements: dict
vrrp:
  description: The keepalived instances and checked settings (P(netops.logfwdr.vrrp_instances#filter)); never the
    VRRP password.
  returned: when logfwdr_vrrp is true
  type: dict
syslog_bridge_targets:
  description: The syslog bridge's destinations (P(netops.logfwdr.syslog_bridge_targets#filter)).
  returned: when logfwdr_syslog_bridge is true
  type: list
  elements: dict
syslog_bridge_inputs:
  description: The syslog bridge's listeners and senders (P(netops.logfwdr.syslog_bridge_inputs#filter)).
  returned: when logfwdr_syslog_bridge is true
  type: dict
firewall:
  description: The host firewall's ports and networks (P(netops.logfwdr.host_firewall#filter)).
  returned: when logfwdr_firewall is true
  type: dict
bgp:
  description:
    - The checked BGP settings (C(plugins/plugin_utils/bgp.py)) - C(asn), C(router_id), C(device) (the agent's TUN
      device, C(logfwdr0)), C(service4) and C(service6) (the service addresses as C(/32) and C(/128)), C(neighbors)
      (each with C(address), C(asn), C(family) and the ingress C(interface) whose subnet holds it), C(password)
      (whether one is set; never the password), C(ttl_security), C(bfd), C(bfd_interval), C(bfd_multiplier),
      C(keepalive), C(hold), C(drain_quiet), C(drain_timeout).
    - The service addresses are in every ingress device's C(addresses) in RV(devices) (of the families it has) and
      in RV(syslog_bridge_inputs)'s C(addresses).
  returned: when logfwdr_ha is bgp
  type: dict
"""
