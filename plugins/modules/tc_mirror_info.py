#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, logfwdr developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: tc_mirror_info
short_description: Read the replication rules and their counters from the kernel
version_added: "0.1.0"
description:
  - Returns the rules M(netops.logfwdr.tc_mirror) owns, in the shape that module accepts, with per-destination
    counters read from the kernel (packets and bytes copied, drops, overlimits, packets held back by a rate
    limit).
author:
  - logfwdr developers (@netops)
requirements:
  - pyroute2 >= 0.7.2 on the managed host
attributes:
  check_mode:
    support: full
    description: Only reads.
  diff_mode:
    support: none
    description: Changes nothing, so has nothing to show.
  platform:
    support: full
    platforms: posix
    description: Linux hosts.
options:
  priority:
    description: The u32 filter priority M(netops.logfwdr.tc_mirror) was given.
    type: int
    default: 5140
  chain:
    description: The tc chain M(netops.logfwdr.tc_mirror) was given.
    type: int
    default: 0
  devices:
    description:
      - Ingress interfaces to read; when empty, the interfaces M(netops.logfwdr.tc_mirror) wrote rules on
        (recorded in C(/run/logfwdr/devices.json)).
    type: list
    elements: str
    default: []
"""

EXAMPLES = r"""
- name: Read replication rules and counters
  netops.logfwdr.tc_mirror_info:
  register: replication

- name: Show the packets copied to each destination
  ansible.builtin.debug:
    msg: "{{ item.name }}: {{ item.counters.packets }}"
  loop: "{{ replication.devices | map(attribute='ports') | flatten | map(attribute='destinations') | flatten }}"
"""

RETURN = r"""
devices:
  description: Ingress interfaces with the module's rules, in the shape M(netops.logfwdr.tc_mirror) accepts.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The ingress interface.
      type: str
    fragments:
      description: C(first) or C(reassemble) (see O(netops.logfwdr.tc_mirror#module:devices[].fragments)).
      type: str
    reassembly:
      description:
        - Only with C(fragments=reassemble). C(fragments) counts the fragments taken in for reassembly,
          C(datagrams) the whole datagrams that came out of it and were matched again.
      type: dict
      returned: when fragments is reassemble
    ports:
      description: Replicated UDP ports.
      type: list
      elements: dict
      contains:
        port:
          description: UDP destination port.
          type: int
        original:
          description: C(drop) or C(pass).
          type: str
        original_dropped:
          description: Received packets consumed after replication.
          type: int
        capped:
          description: Packets over the port's O(netops.logfwdr.tc_mirror#module:devices[].ports[].rate_limit),
            dropped before any copy (only with a rate limit).
          type: int
        refused:
          description:
            - Packets to the port that were not copied because they were not addressed to the replicator by an
              accepted exporter (another destination address or MAC, broadcast, multicast, a source outside
              O(netops.logfwdr.tc_mirror#module:devices[].sources)).
            - Only on kernels that keep u32 per-key counters (CONFIG_CLS_U32_PERF, as Debian's and Ubuntu's).
          type: int
        destinations:
          description: Destinations with a C(counters) dict (packets, bytes, drops, overlimits, rate_limited).
          type: list
          elements: dict
  sample:
    - name: ens1
      ports:
        - port: 514
          original: pass
          original_dropped: 0
          destinations:
            - name: ids
              mode: mirror
              device: ens4
              counters: {packets: 1200, bytes: 240000, drops: 0, overlimits: 0, rate_limited: 0}
"""

import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.netops.logfwdr.plugins.module_utils.tc import codec, model
from ansible_collections.netops.logfwdr.plugins.module_utils.tc.argspec import tc_mirror_info_spec


def main():
    module = AnsibleModule(argument_spec=tc_mirror_info_spec(), supports_check_mode=True)
    if not codec.HAS_PYROUTE2:
        module.fail_json(msg=missing_required_lib("pyroute2"),
                         exception="".join(traceback.format_exception_only(type(codec.PYROUTE2_IMPORT_ERROR),
                                                                           codec.PYROUTE2_IMPORT_ERROR)))
    from ansible_collections.netops.logfwdr.plugins.module_utils.tc import kernel, runner

    kern = kernel.Kernel()
    try:
        result = runner.info(module.params, kern)
    except model.ValidationError as exc:
        module.fail_json(msg="; ".join(exc.problems))
    finally:
        kern.close()
    module.exit_json(**result)


if __name__ == "__main__":
    main()
