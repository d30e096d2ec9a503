# -*- coding: utf-8 -*-
# Copyright: (c) 2026, logfwdr developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Argument specs shared by tc_mirror and tc_mirror_info."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.netops.logfwdr.plugins.module_utils.tc.layout import DEFAULT_PRIORITY


def _destination():
    return dict(
        name=dict(type="str"),
        mode=dict(type="str", choices=["forward", "mirror"], default="forward"),
        address=dict(type="str"),
        port=dict(type="int"),
        device=dict(type="str"),
        next_hop_mac=dict(type="str"),
        sources=dict(type="list", elements="str"),
        rate_limit=dict(type="int"),
        burst=dict(type="int"),
        sample=dict(type="int"),
        pool=dict(type="str"),
        # tc_mirror_info adds these; accepted (and ignored) so its output can be fed back
        counters=dict(type="dict"),
    )


def tc_mirror_spec():
    return dict(
        state=dict(type="str", choices=["present", "absent"], default="present"),
        priority=dict(type="int", default=DEFAULT_PRIORITY),
        chain=dict(type="int", default=0),
        pending=dict(type="str", choices=["allow", "fail"], default="allow"),
        devices=dict(type="list", elements="dict", default=[], options=dict(
            name=dict(type="str", required=True),
            addresses=dict(type="list", elements="str"),
            sources=dict(type="list", elements="str"),
            fragments=dict(type="str", choices=["first", "reassemble"], default="first"),
            # tc_mirror_info adds this; accepted (and ignored) so its output can be fed back
            reassembly=dict(type="dict"),
            ports=dict(type="list", elements="dict", default=[], options=dict(
                port=dict(type="raw", required=True),
                original=dict(type="str", choices=["drop", "pass"]),
                rate_limit=dict(type="int"),
                burst=dict(type="int"),
                # tc_mirror_info adds these; accepted (and ignored) so its output can be fed back
                original_dropped=dict(type="int"),
                capped=dict(type="int"),
                refused=dict(type="int"),
                destinations=dict(type="list", elements="dict", default=[], options=_destination()),
            )),
        )),
    )


def tc_mirror_info_spec():
    return dict(
        priority=dict(type="int", default=DEFAULT_PRIORITY),
        chain=dict(type="int", default=0),
        devices=dict(type="list", elements="str", default=[]),
    )
