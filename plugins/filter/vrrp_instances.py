# -*- coding: utf-8 -*-
# Copyright: (c) 2026, logfwdr developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
name: vrrp_instances
short_description: Check the role's VRRP settings and build the keepalived configuration data
version_added: "0.2.0"
description:
  - Takes the ingress interfaces (with C(virtual_address) and C(virtual_router_id)), the egress interfaces and the
    role's C(logfwdr_vrrp_*) variables, checks them together and returns what the role's keepalived.conf template
    renders - one VRRP instance per ingress interface.
  - Fails with every problem found, each naming the variable (and the list index and field) and saying how to fix
    it, before anything on a host is changed.
  - The peers (the other replicators) are checked too when their variables are known - the same virtual address
    and virtual router id on every interface, and, with unicast, the peer's own address on the same-named
    interface, which becomes C(unicast_peer).
positional: egress_interfaces, settings
options:
  _input:
    description: The ingress interfaces (C(logfwdr_ingress_interfaces)), already checked by
      P(netops.logfwdr.replication_devices#filter) with O(netops.logfwdr.replication_devices#filter:vrrp=true).
    type: list
    elements: dict
    required: true
  egress_interfaces:
    description: The egress interfaces (C(logfwdr_egress_interfaces)); every instance tracks them.
    type: list
    elements: dict
    required: true
  settings:
    description:
      - The role's VRRP variables by name - C(logfwdr_vrrp_priority), C(logfwdr_vrrp_version),
        C(logfwdr_vrrp_advert_interval), C(logfwdr_vrrp_unicast), C(logfwdr_vrrp_auth_pass),
        C(logfwdr_vrrp_preempt), C(logfwdr_vrrp_preempt_delay), C(logfwdr_vrrp_check_interval),
        C(logfwdr_vrrp_check_fall), C(logfwdr_vrrp_check_rise), C(logfwdr_vrrp_garp_repeat),
        C(logfwdr_vrrp_garp_delay), C(logfwdr_vrrp_macs), C(logfwdr_vrrp_pair_link),
        C(logfwdr_vrrp_require_pair_link) (parsed by plugins/plugin_utils/vrrp.py; true without a pair link is an
        error).
      - With C(logfwdr_vrrp_pair_link) (C(name) and C(address) of a link that joins the two replicators only),
        every instance sends and receives its adverts there, unicast to the peer's pair-link address, and keeps its
        virtual address on its ingress interface, which it tracks; no advert is taken from an exporter segment.
    type: dict
    required: true
  hostname:
    description:
      - This host's inventory name (C(inventory_hostname)), keepalived's C(router_id). Refused unless it is a plain
        host name (letters, digits, C(.), C(-), C(_)), so that no inventory name can add a line to keepalived.conf.
    type: str
  peers:
    description: The other replicators' inventory names (C(logfwdr_vrrp_peers), or the rest of group C(replicators)).
    type: list
    elements: str
  hostvars:
    description: C(hostvars), to read each peer's C(logfwdr_ingress_interfaces) (and C(logfwdr_vrrp_macs),
      C(logfwdr_vrrp_pair_link)).
    type: raw
  links:
    description:
      - This host's interfaces as read in this run (interface name to MAC, from C(ip -json link show)); its
        C(logfwdr_vrrp_macs) is checked against them. None - not checked.
    type: dict
  peer_links:
    description:
      - Each peer's interfaces as read from the peer in this run (peer name to a dict of interface name to MAC, or
        None when the peer did not read them - not in the play). Given and without a pair link, every peer's
        adverts are bound to its MAC on the segment (C(vrrp_sources[].mac)) - its C(logfwdr_vrrp_macs) entry when
        it has one, else the MAC read here; a peer whose MAC is known neither way is an error naming it.
      - None - the MAC is the peer's C(logfwdr_vrrp_macs) entry or none (address only).
    type: dict
  nftables:
    description: Whether the role's nftables table checks the adverts (C(logfwdr_nftables)); only changes the
      wording of the warning. None counts as true.
    type: bool
author:
  - logfwdr developers
"""

EXAMPLES = r"""
- name: Check the VRRP settings
  ansible.builtin.set_fact:
    vrrp: >-
      {{ logfwdr_ingress_interfaces | netops.logfwdr.vrrp_instances(
           logfwdr_egress_interfaces, {'logfwdr_vrrp_priority': 150, 'logfwdr_vrrp_version': 3},
           peers=['replicator2'], hostvars=hostvars) }}
"""

RETURN = r"""
_value:
  description:
    - C(instances) (C(name), C(interface) - where the adverts go, C(vip_interface) - where the virtual address
      lives, the ingress interface, C(virtual_router_id), C(virtual_address), C(track_interfaces),
      C(vrrp_sources) - the peers' C(address) and C(mac) (or none) on that interface, the only senders the host
      firewall admits VRRP from - and with unicast C(unicast_src_ip) and C(unicast_peers)), and the checked
      settings C(router_id), C(priority), C(version), C(advert_int) (text, as keepalived reads it), C(unicast),
      C(auth) (true when a password is set; the password itself is never in the result, which C(-v) would print),
      C(preempt), C(preempt_delay), C(check_interval), C(check_fall), C(check_rise), C(garp_repeat),
      C(garp_delay), C(macs) (this host's own MACs by interface), C(peers), C(pair_link) (C(name), C(address), or
      none), C(require_pair_link), C(warnings) (without a pair link - which forgery is still possible, and the
      cure), and C(vrrp_rules), the host firewall's VRRP rules (C(interface), C(address), C(mac)), one per sender.
  type: dict
"""

import ipaddress
import re
from decimal import Decimal, InvalidOperation


from ansible_collections.netops.logfwdr.plugins.filter.json_query import plain
from ansible_collections.netops.logfwdr.plugins.plugin_utils import vrrp as vrrp_utils
from ansible_collections.netops.logfwdr.plugins.plugin_utils.inventory import (
    IFNAME_RE, Problems, boolean, interface_address, is_ipv6, parse_mac, role_defaults, virtual6, whole)

DEFAULTS = role_defaults((
    "logfwdr_vrrp_priority",
    "logfwdr_vrrp_version",
    "logfwdr_vrrp_advert_interval",
    "logfwdr_vrrp_unicast",
    "logfwdr_vrrp_auth_pass",
    "logfwdr_vrrp_preempt",
    "logfwdr_vrrp_preempt_delay",
    "logfwdr_vrrp_check_interval",
    "logfwdr_vrrp_check_fall",
    "logfwdr_vrrp_check_rise",
    "logfwdr_vrrp_garp_repeat",
    "logfwdr_vrrp_garp_delay",
    "logfwdr_vrrp_macs",
    "logfwdr_vrrp_pair_link",
))
DEFAULTS.update(vrrp_utils.DEFAULTS)  # logfwdr_vrrp_require_pair_link, parsed in plugin_utils/vrrp.py
AUTH_RE = re.compile(r"^[A-Za-z0-9_.:@%+=-]{1,8}$")  # VRRPv2 simple text: 8 bytes; nothing keepalived would parse
# keepalived.conf has no quoting: a name with a space, a newline, a brace or a quote would start a new keyword
HOSTNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,252}$")


def _ranged(settings, name, low, high, problems, hint):
    value = whole(settings[name])
    if value is None or not low <= value <= high:
        problems.add(name, "%r; %s" % (settings[name], hint))
        return None
    return value


def _settings(raw, problems):
    s = dict(DEFAULTS)
    s.update(dict((k, v) for k, v in (raw or {}).items() if v is not None))
    out = {}
    out["priority"] = _ranged(s, "logfwdr_vrrp_priority", 1, 254, problems,
                              "use 1-254, higher on the primary (e.g. 150) than on the backup (e.g. 100)")
    version = whole(s["logfwdr_vrrp_version"])
    if version not in (2, 3):
        problems.add("logfwdr_vrrp_version", "%r; use 3 (RFC 5798, sub-second adverts) or 2"
                     % (s["logfwdr_vrrp_version"],))
    out["version"] = version
    try:
        interval = Decimal(str(s["logfwdr_vrrp_advert_interval"]))
        if isinstance(s["logfwdr_vrrp_advert_interval"], bool) or not interval.is_finite():
            raise InvalidOperation()
    except (InvalidOperation, ValueError):
        interval = None
        problems.add("logfwdr_vrrp_advert_interval", "%r is not a number of seconds, like 0.2"
                     % (s["logfwdr_vrrp_advert_interval"],))
    out["advert_int"] = None
    if interval is not None and version == 3:
        if not Decimal("0.01") <= interval <= Decimal("40.95") or interval % Decimal("0.01"):
            problems.add("logfwdr_vrrp_advert_interval", "%s; VRRPv3 advertises every 0.01 to 40.95 seconds in "
                                                         "steps of 0.01 (centiseconds), like 0.2" % interval)
        else:
            out["advert_int"] = str(interval.normalize()) if interval % 1 else str(int(interval))
    elif interval is not None and version == 2:
        if interval % 1 or not 1 <= interval <= 255:
            problems.add("logfwdr_vrrp_advert_interval", "%s; VRRPv2 advertises in whole seconds: use 1-255, or "
                                                         "logfwdr_vrrp_version: 3 for sub-second adverts" % interval)
        else:
            out["advert_int"] = str(int(interval))
    for key in ("unicast", "preempt"):
        name = "logfwdr_vrrp_" + key
        out[key] = boolean(s[name])
        if out[key] is None:
            problems.add(name, "%r; use true or false" % (s[name],))
    auth = s["logfwdr_vrrp_auth_pass"]
    out["auth"] = False
    if auth not in ("", None):
        if version == 3:
            problems.add("logfwdr_vrrp_auth_pass", "VRRPv3 has no authentication (RFC 5798 removed it); leave "
                                                   "logfwdr_vrrp_auth_pass empty, or set logfwdr_vrrp_version: 2")
        elif not isinstance(auth, str) or not AUTH_RE.match(auth):
            problems.add("logfwdr_vrrp_auth_pass", "use 1-8 characters of A-Z a-z 0-9 _ . : @ % + = - (VRRPv2 "
                                                   "sends at most 8 bytes, in clear text)")
        else:
            out["auth"] = True
    out["preempt_delay"] = _ranged(s, "logfwdr_vrrp_preempt_delay", 0, 1000, problems,
                                   "use 0-1000 seconds (0: take the addresses back at once)")
    out["check_interval"] = _ranged(s, "logfwdr_vrrp_check_interval", 1, 3600, problems,
                                    "use a whole number of seconds, at least 1")
    for key in ("check_fall", "check_rise"):
        out[key] = _ranged(s, "logfwdr_vrrp_" + key, 1, 100, problems,
                           "use a number of consecutive checks, 1-100")
    out["garp_repeat"] = _ranged(s, "logfwdr_vrrp_garp_repeat", 1, 100, problems,
                                 "use 1-100 gratuitous ARPs per batch")
    out["garp_delay"] = _ranged(s, "logfwdr_vrrp_garp_delay", 0, 1000, problems,
                                "use 0-1000 seconds (0: no second batch)")
    out["macs"] = _macs(s["logfwdr_vrrp_macs"], "logfwdr_vrrp_macs", problems)
    out["pair_link"] = _pair_link(s["logfwdr_vrrp_pair_link"], "logfwdr_vrrp_pair_link", problems)
    out.update(vrrp_utils.settings(s, problems))
    return out


def _pair_link(value, where, problems):
    """{name, address} of the link between the two replicators, checked; None when there is none."""
    if value in (None, "", {}):
        return None
    hint = "like {name: eth9, address: 10.255.255.1/30} (an interface that joins the two replicators only)"
    if not isinstance(value, dict) or set(value) - {"name", "address"}:
        problems.add(where, "must be a dict with name and address, %s" % hint)
        return None
    name, address = value.get("name"), interface_address(value.get("address"))
    ok = True
    if not isinstance(name, str) or not IFNAME_RE.match(name):
        problems.add(where + ".name", "%r is not an interface name (1-15 of A-Z a-z 0-9 _ . -); %s"
                     % (value.get("name"), hint))
        ok = False
    if address is None or address.network.prefixlen == 32:
        problems.add(where + ".address", "%r is not an IPv4 address with its prefix%s; %s"
                     % (value.get("address"), "; the pair link carries the IPv4 VRRP adverts (an IPv6 virtual "
                        "address moves with them: virtual_address6)" if is_ipv6(value.get("address")) else "", hint))
        ok = False
    return {"name": name, "address": str(address)} if ok else None


def _macs(value, where, problems):
    """{interface: MAC} of logfwdr_vrrp_macs (a host's own MACs on its ingress interfaces), checked."""
    if value in (None, ""):
        return {}
    if not isinstance(value, dict):
        problems.add(where, "must be a dict of ingress interface names to MAC addresses, like {eno1: "
                            "'52:54:00:12:34:56'}")
        return {}
    out = {}
    for name, mac in value.items():
        if parse_mac(mac) is None:
            problems.add("%s.%s" % (where, name), "%r is not a MAC address like 52:54:00:12:34:56" % (mac,))
        else:
            out[str(name)] = parse_mac(mac)
    return out


def _peer_interfaces(peer, hostvars):
    """A peer's ingress interfaces by name, or None when its variables are not known."""
    if hostvars is None:
        return None
    try:
        if peer not in hostvars:
            return None
        host = hostvars[peer]
        ifaces = host.get("logfwdr_ingress_interfaces") if hasattr(host, "get") else None
    except Exception:  # an undefined or broken variable of the peer: nothing to compare
        return None
    ifaces = plain(ifaces)
    if not isinstance(ifaces, list):
        return None
    return dict((i.get("name"), i) for i in ifaces if isinstance(i, dict))


def _peer_macs(peer, hostvars):
    """The peer's logfwdr_vrrp_macs ({} when unknown or unusable: its own run reports a bad one)."""
    try:
        host = hostvars[peer]
        value = plain(host.get("logfwdr_vrrp_macs")) if hasattr(host, "get") else None
    except Exception:  # an undefined or broken variable of the peer
        return {}
    return _macs(value, "", Problems())


def _peer_pair_link(peer, hostvars):
    """The peer's logfwdr_vrrp_pair_link (None when unknown or unusable: its own run reports a bad one)."""
    try:
        host = hostvars[peer]
        value = plain(host.get("logfwdr_vrrp_pair_link")) if hasattr(host, "get") else None
    except Exception:  # an undefined or broken variable of the peer
        return None
    return _pair_link(value, "", Problems())


def _vrrp_rules(instances):
    """The host firewall's VRRP rules: one per interface and sender, in order, none twice."""
    rules = []
    for inst in instances:
        for source in inst["vrrp_sources"] or [{"address": None, "mac": None}]:
            rule = {"interface": inst["interface"], "address": source["address"], "mac": source["mac"]}
            if rule not in rules:
                rules.append(rule)
    return rules


def vrrp_instances(ingress_interfaces, egress_interfaces, settings, peers=None, hostvars=None, hostname=None,
                   links=None, peer_links=None, nftables=None):
    ingress_interfaces, egress_interfaces, settings = plain(ingress_interfaces), plain(egress_interfaces), plain(settings)
    peers = plain(peers) or []
    links, peer_links = plain(links), plain(peer_links)
    problems = Problems()
    out = _settings(settings, problems)
    vrrp_utils.check_own_macs(out["macs"], links, hostname, problems)
    vrrp_utils.require_pair_link(out["require_pair_link"], out["pair_link"], problems)
    warning = vrrp_utils.exposure(out["pair_link"], out["unicast"], True if nftables is None else nftables)
    out["warnings"] = [warning] if warning else []
    out["router_id"] = None
    if hostname is not None:
        if isinstance(hostname, str) and HOSTNAME_RE.match(hostname):
            out["router_id"] = hostname
        else:
            problems.add("inventory_hostname", "%r cannot be keepalived's router_id: use a host name of letters, "
                                               "digits, '.', '-' and '_' (no spaces, newlines, quotes or braces), "
                                               "or rename the host in the inventory" % (hostname,))
    if not isinstance(peers, list) or not all(isinstance(p, str) and p for p in peers):
        problems.add("logfwdr_vrrp_peers", "must be a list of inventory host names (the other replicators)")
        peers = []
    out["peers"] = peers
    known = {}
    for n, peer in enumerate(peers):
        if hostvars is not None and peer not in hostvars:
            problems.add("logfwdr_vrrp_peers[%d]" % n, "%r is not a host of the inventory" % (peer,))
            continue
        known[peer] = _peer_interfaces(peer, hostvars)
    if out["unicast"] and not peers:
        problems.add("logfwdr_vrrp_peers", "logfwdr_vrrp_unicast needs the other replicator(s): group replicators "
                                           "has no other host; list them in logfwdr_vrrp_peers")

    all_names = [i.get("name") for i in (ingress_interfaces or []) + (egress_interfaces or []) if isinstance(i, dict)]
    ingress_names = [i.get("name") for i in (ingress_interfaces or []) if isinstance(i, dict)]
    for name in sorted(set(out["macs"]) - set(ingress_names)):
        problems.add("logfwdr_vrrp_macs.%s" % name, "is no ingress interface; list the MACs of %s only"
                     % ", ".join(str(n) for n in ingress_names))
    pair = out["pair_link"]
    pair_peers = []
    own_pair = ipaddress.IPv4Interface(pair["address"]) if pair is not None else None
    if pair is not None:
        if pair["name"] in all_names:
            problems.add("logfwdr_vrrp_pair_link.name", "%s is also an ingress or egress interface; the pair link "
                                                        "is a link of its own between the replicators" % pair["name"])
        for peer in peers:
            if hostvars is None or peer not in hostvars:
                continue
            theirs = _peer_pair_link(peer, hostvars)
            if theirs is None:
                problems.add("logfwdr_vrrp_pair_link", "%s has no (valid) logfwdr_vrrp_pair_link; set it on both "
                                                       "replicators" % peer)
                continue
            their_ip = ipaddress.IPv4Interface(theirs["address"]).ip
            if their_ip == own_pair.ip:
                problems.add("logfwdr_vrrp_pair_link.address", "%s is also %s's pair-link address"
                             % (own_pair.ip, peer))
            elif their_ip not in own_pair.network:
                problems.add("logfwdr_vrrp_pair_link.address", "%s's pair-link address, %s, is not in %s; give both "
                                                               "ends addresses in one subnet" % (peer, their_ip,
                                                                                                 own_pair.network))
            else:
                pair_peers.append(str(their_ip))
        vrids = [whole(i.get("virtual_router_id")) for i in (ingress_interfaces or []) if isinstance(i, dict)]
        for vrid in sorted(set(v for v in vrids if v is not None and vrids.count(v) > 1)):
            problems.add("logfwdr_ingress_interfaces", "virtual_router_id %d is used on more than one ingress "
                                                       "interface; with logfwdr_vrrp_pair_link all instances share "
                                                       "one link, so give each its own id" % vrid)
    instances = []
    for i, item in enumerate(ingress_interfaces or []):
        where = "logfwdr_ingress_interfaces[%d]" % i
        name = item.get("name")
        own = interface_address(item.get("address"))
        virtual = interface_address(item.get("virtual_address"))
        vrid = whole(item.get("virtual_router_id"))
        if virtual is None or vrid is None or own is None:
            problems.add(where, "needs address, virtual_address and virtual_router_id for logfwdr_vrrp")
            continue
        # with a pair link the adverts go there and the ingress interface, now not keepalived's own, is tracked
        advert_if = pair["name"] if pair is not None else name
        inst = {"name": "logfwdr_%s" % name, "interface": advert_if, "vip_interface": name, "virtual_router_id": vrid,
                "virtual_address": str(virtual), "track_interfaces": [n for n in all_names if n != advert_if],
                "virtual_address6": str(virtual6(item)) if virtual6(item) is not None else None}
        unicast_peers = []
        sources = []
        for peer in peers:
            theirs = known.get(peer)
            if theirs is None:
                if out["unicast"] and peer in known:
                    problems.add("logfwdr_vrrp_peers", "%s: its logfwdr_ingress_interfaces are unknown here, so "
                                                       "its address on %s (unicast_peer) is too; define them in "
                                                       "the inventory" % (peer, name))
                continue
            other = theirs.get(name)
            if other is None:
                problems.add(where + ".name", "%s has no ingress interface %s; both replicators need the same "
                                              "ingress interfaces" % (peer, name))
                continue
            peer_addr = interface_address(other.get("address"))
            if interface_address(other.get("virtual_address")) != virtual:
                problems.add(where + ".virtual_address", "%s here but %r on %s; both replicators must share the "
                                                         "same virtual address" % (virtual, other.get("virtual_address"),
                                                                                   peer))
            if (virtual6(other) or None) != (virtual6(item) or None):
                problems.add(where + ".virtual_address6", "%s here but %r on %s; both replicators must share the "
                                                          "same IPv6 virtual address" % (
                                                              item.get("virtual_address6"),
                                                              other.get("virtual_address6"), peer))
            if whole(other.get("virtual_router_id")) != vrid:
                problems.add(where + ".virtual_router_id", "%d here but %r on %s; both replicators must use the "
                                                           "same virtual router id"
                             % (vrid, other.get("virtual_router_id"), peer))
            if peer_addr is None:
                if out["unicast"]:
                    problems.add("logfwdr_vrrp_peers", "%s: no address on %s to send VRRP adverts to" % (peer, name))
                continue
            if peer_addr.ip == own.ip:
                problems.add(where + ".address", "%s is also %s's address on %s" % (own.ip, peer, name))
            elif peer_addr.ip not in own.network:
                problems.add(where + ".address", "%s's address on %s, %s, is not in %s; the replicators must share "
                                                 "the segment" % (peer, name, peer_addr.ip, own.network))
            else:
                unicast_peers.append(str(peer_addr.ip))
                listed = _peer_macs(peer, hostvars) if hostvars is not None else {}
                if peer_links is not None and pair is None:
                    # the peer's MAC on this segment, read from the peer in this run (or its logfwdr_vrrp_macs)
                    mac = vrrp_utils.peer_mac(peer, name, listed, peer_links.get(peer), where + ".name", problems,
                                              out["router_id"])
                else:
                    mac = listed.get(name)
                sources.append({"address": str(peer_addr.ip), "mac": mac})
        if pair is not None:
            sources = [{"address": a, "mac": None} for a in pair_peers]
            unicast_peers = list(pair_peers)
        inst["vrrp_sources"] = sources
        if out["unicast"]:
            inst["unicast_src_ip"] = str((own_pair or own).ip)
            inst["unicast_peers"] = unicast_peers
        instances.append(inst)
    if not instances and not problems:
        problems.add("logfwdr_ingress_interfaces", "no ingress interface to run VRRP on")
    problems.fail("VRRP settings")
    out["instances"] = instances
    out["vrrp_rules"] = _vrrp_rules(instances)
    return out


class FilterModule(object):
    def filters(self):
        return {"vrrp_instances": vrrp_instances}
