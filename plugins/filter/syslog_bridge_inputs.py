# -*- coding: utf-8 -*-
# Copyright: (c) 2026, logfwdr developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
name: syslog_bridge_inputs
short_description: Check the TCP syslog bridge's settings and build its listeners and sender allow-list
version_added: "0.2.0"
description:
  - Takes the role's C(logfwdr_syslog_bridge_*) settings (a dict keyed by the variable names) and returns what the
    bridge's rsyslog configuration needs - the TCP listeners (plain, and TLS when C(logfwdr_syslog_bridge_tls) is
    on), the senders allowed to connect, the per-collector queue size and the counters interval.
  - An empty C(logfwdr_syslog_bridge_allowed_senders) allows the subnets of the ingress interfaces (from their
    C(address) and C(address6)). IPv4 and IPv6 prefixes may be mixed; C(/0), which would admit everybody, is
    refused.
  - Fails with every problem found, each naming the variable and saying how to fix it.
positional: ingress_interfaces
options:
  _input:
    description:
      - The settings, keyed by variable name - C(logfwdr_syslog_bridge_port), C(logfwdr_syslog_bridge_allowed_senders),
        C(logfwdr_syslog_bridge_tls), C(logfwdr_syslog_bridge_tls_port), C(logfwdr_syslog_bridge_tls_ca_file),
        C(logfwdr_syslog_bridge_tls_cert_file), C(logfwdr_syslog_bridge_tls_key_file),
        C(logfwdr_syslog_bridge_tls_auth_mode), C(logfwdr_syslog_bridge_tls_permitted_peers),
        C(logfwdr_syslog_bridge_queue_size), C(logfwdr_syslog_bridge_stats_interval),
        C(logfwdr_syslog_bridge_tls_only), C(logfwdr_syslog_bridge_max_sessions),
        C(logfwdr_syslog_bridge_max_sessions_per_sender), C(logfwdr_syslog_bridge_memory_max). Missing keys take the role's defaults.
    type: dict
    required: true
  ingress_interfaces:
    description:
      - The ingress interfaces (C(logfwdr_ingress_interfaces)); their subnets are the default allow-list, and the
        listeners bind to their addresses, IPv4 and IPv6 (and, with O(vrrp), their virtual addresses), only.
    type: list
    elements: dict
    required: true
  vrrp:
    description: The virtual addresses are the replicator's too (C(logfwdr_vrrp)); the bridge listens on them.
    type: bool
    default: false
  service_addresses:
    description:
      - The BGP service addresses (C(logfwdr_bgp_service_addresses) with C(logfwdr_ha=bgp)), bare, as the inventory
        model checked them; the bridge listens on them too. Passed through, not checked here.
    type: list
    elements: str
  exporter_networks:
    description:
      - With C(logfwdr_ha=bgp), the routed exporters' prefixes (C(logfwdr_exporter_networks) and the ingress
        interfaces' C(exporter_networks), as the inventory model checked them); an empty
        C(logfwdr_syslog_bridge_allowed_senders) allows them besides the ingress subnets.
    type: list
    elements: str
author:
  - logfwdr developers
"""

EXAMPLES = r"""
- name: Check the bridge's settings and build its listeners
  ansible.builtin.set_fact:
    bridge_inputs: >-
      {{ {'logfwdr_syslog_bridge_port': 514, 'logfwdr_syslog_bridge_tls': true,
          'logfwdr_syslog_bridge_tls_cert_file': '/etc/ssl/bridge.pem',
          'logfwdr_syslog_bridge_tls_key_file': '/etc/ssl/private/bridge.key'}
         | netops.logfwdr.syslog_bridge_inputs(logfwdr_ingress_interfaces) }}

# result (ingress interfaces 10.10.1.2/24 with address6 2001:db8:10::2/64, and 10.10.2.2/24):
#   allowed_senders: [10.10.1.0/24, 2001:db8:10::/64, 10.10.2.0/24]
#   addresses: [10.10.1.2, 2001:db8:10::2, 10.10.2.2]
#   families: [4, 6]
#   inputs:
#     - {port: 514, tls: false}
#     - {port: 6514, tls: true, auth_mode: anon, ca_file: '', cert_file: /etc/ssl/bridge.pem,
#        key_file: /etc/ssl/private/bridge.key, permitted_peers: []}
#   tls_files:
#     - {variable: logfwdr_syslog_bridge_tls_cert_file, path: /etc/ssl/bridge.pem}
#     - {variable: logfwdr_syslog_bridge_tls_key_file, path: /etc/ssl/private/bridge.key}
#   queue_size: 50000
#   stats_interval: 10
"""

RETURN = r"""
_value:
  description:
    - C(allowed_senders) (IPv4 and IPv6 prefixes), C(addresses) (the IPv4 and IPv6 addresses every listener binds
      to), C(families) (the address families of those, C([4]) or C([4, 6])),
      C(inputs) (one per TCP port - C(port), C(tls), and with TLS C(auth_mode), C(ca_file), C(cert_file),
      C(key_file), C(permitted_peers); no plain one with C(logfwdr_syslog_bridge_tls_only)), C(tls_files) (the
      TLS files that must exist on the replicator, each with its C(variable) and C(path)), C(queue_size),
      C(stats_interval), C(max_sessions), C(max_sessions_per_sender) and C(memory_max).
  type: dict
"""

import ipaddress
import re

from ansible.errors import AnsibleFilterError

from ansible_collections.netops.logfwdr.plugins.filter.json_query import plain
from ansible_collections.netops.logfwdr.plugins.plugin_utils.inventory import (
    Problems, boolean, interface_address, interface_address6, prefixes, role_defaults_under, whole)

PREFIX = "logfwdr_syslog_bridge_"
DEFAULTS = role_defaults_under(PREFIX)
AUTH_MODES = {
    "anon": "encryption only, any client",
    "x509/certvalid": "clients need a certificate signed by the CA",
    "x509/name": "clients need a certificate signed by the CA whose name is in the permitted peers",
}
# a value rsyslog reads as one string, without quoting surprises
UNSAFE = ('"', "\\", "\n", "\r", "\0")
MEMORY_RE = re.compile(r"^[1-9][0-9]*[KMG]$")  # systemd MemoryMax=, with a unit


def _own(item, fields):
    """The ingress interface's addresses (IPv4Interface, IPv6Interface) in these fields that parse."""
    if not isinstance(item, dict):
        return []
    parsed = [(interface_address6 if field.endswith("6") else interface_address)(item.get(field)) for field in fields]
    return [p for p in parsed if p is not None]


def syslog_bridge_inputs(settings, ingress_interfaces, vrrp=False, service_addresses=None, exporter_networks=None):
    settings, ingress_interfaces = plain(settings), plain(ingress_interfaces)
    if not isinstance(settings, dict):
        raise AnsibleFilterError("syslog_bridge_inputs: the settings must be a dict keyed by variable name")
    unknown = sorted(k for k in settings if not (k.startswith(PREFIX) and k[len(PREFIX):] in DEFAULTS))
    if unknown:
        raise AnsibleFilterError("syslog_bridge_inputs: unknown settings %s" % ", ".join(unknown))
    s = dict(DEFAULTS)
    s.update((k[len(PREFIX):], v) for k, v in settings.items())
    problems = Problems()

    def bad(field, text):
        problems.add(PREFIX + field, text)

    port = whole(s["port"], 1, 65535)
    if port is None:
        bad("port", "%r is not a TCP port; use 1-65535 (514 is syslog's)" % (s["port"],))

    allowed = s["allowed_senders"]
    senders = []
    if not isinstance(allowed, list):
        bad("allowed_senders", "must be a list of IPv4 or IPv6 prefixes, like [10.10.1.0/24, 2001:db8:10::/64], "
                               "or [] for the ingress subnets")
        allowed = []
    senders = [str(n) for n in prefixes(allowed, PREFIX + "allowed_senders", problems, hosts="senders")]
    if not allowed:
        for item in ingress_interfaces or []:
            for own in _own(item, ("address", "address6")):  # replication_devices names a bad address
                if str(own.network) not in senders:
                    senders.append(str(own.network))
        # logfwdr_ha: bgp: the exporters are routed to the replicators, from these prefixes (checked by the model)
        for prefix in plain(exporter_networks) or []:
            if str(prefix) not in senders:
                senders.append(str(prefix))
        if not senders:
            bad("allowed_senders", "empty, and no ingress interface has an address to take the subnet of; list the "
                                   "senders' prefixes")

    for field in ("queue_size", "stats_interval"):
        if whole(s[field], 1, 2 ** 31 - 1) is None:
            bad(field, "%r; use a whole number above 0" % (s[field],))
    if whole(s["max_sessions"], 1, 65535) is None:
        bad("max_sessions", "%r; use the number of TCP sessions the bridge accepts per port, 1-65535"
            % (s["max_sessions"],))
    if whole(s["max_sessions_per_sender"], 1, 65535) is None:
        bad("max_sessions_per_sender", "%r; use the number of TCP sessions one sender may hold per port, 1-65535"
            % (s["max_sessions_per_sender"],))
    if not isinstance(s["memory_max"], str) or not MEMORY_RE.match(s["memory_max"]):
        bad("memory_max", "%r; use a size with its unit, like 512M or 2G (systemd MemoryMax=)" % (s["memory_max"],))

    # the replicator's own addresses (and virtual ones) on the exporter segments, never 0.0.0.0 or [::]
    addresses = []
    vrrp = boolean(vrrp)
    fields = ("address", "address6") + (("virtual_address", "virtual_address6") if vrrp else ())
    for item in ingress_interfaces or []:
        for own in _own(item, fields):  # replication_devices names a bad address
            if str(own.ip) not in addresses:
                addresses.append(str(own.ip))
    # logfwdr_ha: bgp: the service addresses the exporters send to (the agent puts them on logfwdr0)
    for address in plain(service_addresses) or []:
        if address not in addresses:
            addresses.append(address)

    tls_only = boolean(s["tls_only"])
    if tls_only is None:
        bad("tls_only", "%r; use true or false" % (s["tls_only"],))
    inputs = [] if tls_only else [{"port": port, "tls": False}]
    tls_files = []
    tls = boolean(s["tls"])
    if tls is None:
        bad("tls", "%r; use true or false" % (s["tls"],))
    if tls_only and not tls:
        bad("tls_only", "needs logfwdr_syslog_bridge_tls: true (and its certificate and key); without TLS the bridge "
                        "would have no listener")
    if tls:
        tls_port = whole(s["tls_port"], 1, 65535)
        if tls_port is None:
            bad("tls_port", "%r is not a TCP port; use 1-65535 (6514 is syslog over TLS)" % (s["tls_port"],))
        elif tls_port == port and not tls_only:
            bad("tls_port", "%d is also logfwdr_syslog_bridge_port; the plain and the TLS listener need their own "
                            "ports (6514 is syslog over TLS)" % tls_port)
        mode = s["tls_auth_mode"]
        if mode not in AUTH_MODES:
            bad("tls_auth_mode", "%r; use %s" % (mode, ", ".join("%s (%s)" % item for item in AUTH_MODES.items())))
        for kind in ("ca", "cert", "key"):
            field = "tls_%s_file" % kind
            path = s[field]
            if path in (None, ""):
                if kind != "ca":
                    bad(field, "required with logfwdr_syslog_bridge_tls: true: the path on the replicator of the "
                               "bridge's %s (PEM)" % ("certificate" if kind == "cert" else "private key"))
                elif mode in AUTH_MODES and mode != "anon":
                    bad(field, "required with logfwdr_syslog_bridge_tls_auth_mode: %s: the path on the replicator of "
                               "the CA certificate (PEM) that signed the senders' certificates" % mode)
            elif not isinstance(path, str) or not path.startswith("/") or any(ch in path for ch in UNSAFE):
                bad(field, "%r; use an absolute path without quotes or backslashes" % (path,))
            else:
                tls_files.append({"variable": PREFIX + field, "path": path})
        peers = s["tls_permitted_peers"]
        if not isinstance(peers, list):
            bad("tls_permitted_peers", "must be a list of certificate names, like [router1.example.net]")
            peers = []
        for i, peer in enumerate(peers):
            if not isinstance(peer, str) or not peer or any(ch in peer for ch in UNSAFE):
                bad("tls_permitted_peers[%d]" % i, "%r; use a certificate name (CN or DNS SAN) without quotes or "
                                                   "backslashes" % (peer,))
        if mode == "x509/name" and not peers:
            bad("tls_permitted_peers", "required with logfwdr_syslog_bridge_tls_auth_mode: x509/name: the names "
                                       "(CN or DNS SAN) of the senders' certificates, like [router1.example.net]; "
                                       "wildcards like *.example.net work")
        elif mode in ("anon", "x509/certvalid") and peers:
            bad("tls_permitted_peers", "only used with logfwdr_syslog_bridge_tls_auth_mode: x509/name; remove it "
                                       "or use x509/name")
        inputs.append({"port": tls_port, "tls": True, "auth_mode": mode, "ca_file": s["tls_ca_file"] or "",
                       "cert_file": s["tls_cert_file"], "key_file": s["tls_key_file"], "permitted_peers": peers})

    problems.fail("syslog bridge settings")
    return {"allowed_senders": senders, "addresses": addresses,
            "families": sorted(set(ipaddress.ip_address(a).version for a in addresses)),
            "inputs": inputs, "tls_files": tls_files,
            "queue_size": whole(s["queue_size"], 1, 2 ** 31 - 1),
            "stats_interval": whole(s["stats_interval"], 1, 2 ** 31 - 1),
            "max_sessions": whole(s["max_sessions"], 1, 65535),
            "max_sessions_per_sender": whole(s["max_sessions_per_sender"], 1, 65535), "memory_max": s["memory_max"]}


class FilterModule(object):
    def filters(self):
        return {"syslog_bridge_inputs": syslog_bridge_inputs}
