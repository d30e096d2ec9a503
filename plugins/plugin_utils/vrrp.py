# -*- coding: utf-8 -*-
# Copyright: (c) 2026, logfwdr developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Who may send this host VRRP adverts on an exporter segment: the peer's MAC there, read from the peer itself in
this run (its `ip -json link show`, registered by tasks/validate.yml as __logfwdr_links) unless its
logfwdr_vrrp_macs names it; logfwdr_vrrp_require_pair_link; and the warning every run without a pair link gives.
Used by the vrrp_instances filter and the inventory_model action (docs/role.md, "VRRP: what stops which forgery")."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

from ansible_collections.netops.logfwdr.plugins.plugin_utils.inventory import boolean, parse_mac, role_defaults

# the register tasks/validate.yml gives every replicator's `ip -json link show`; a peer's is hostvars[peer][LINKS]
LINKS = "__logfwdr_links"
SETTINGS = ("logfwdr_vrrp_require_pair_link",)
DEFAULTS = role_defaults(SETTINGS)

CURE = ("give the pair a link of its own (logfwdr_vrrp_pair_link, on both replicators), or route the service "
        "addresses instead (logfwdr_ha: bgp)")


def settings(raw, problems):
    """{'require_pair_link': bool} from logfwdr_vrrp_require_pair_link (the role's default when not given)."""
    s = dict(DEFAULTS)
    s.update(dict((k, v) for k, v in (raw or {}).items() if k in SETTINGS and v is not None))
    require = boolean(s["logfwdr_vrrp_require_pair_link"])
    if require is None:
        problems.add("logfwdr_vrrp_require_pair_link", "%r; use true (no VRRP adverts on an exporter segment: "
                                                       "refuse to run without logfwdr_vrrp_pair_link) or false"
                     % (s["logfwdr_vrrp_require_pair_link"],))
    return {"require_pair_link": bool(require)}


def links(register):
    """{interface: MAC} from a registered `ip -json link show` (its result dict, or its stdout); None when the
    register is missing, skipped, failed or unreadable (the host did not run the task in this play)."""
    if isinstance(register, dict):
        if register.get("skipped") or register.get("failed") or "stdout" not in register:
            return None
        register = register["stdout"]
    if not isinstance(register, str):
        return None
    try:
        data = json.loads(register)
    except ValueError:
        return None
    if not isinstance(data, list):
        return None
    out = {}
    for link in data:
        if isinstance(link, dict) and isinstance(link.get("ifname"), str) and parse_mac(link.get("address")):
            out[link["ifname"]] = parse_mac(link["address"])
    return out


def host_links(host_vars):
    """links() of one host's variables (hostvars[peer], or this host's task_vars): None when not read."""
    try:
        return links(host_vars.get(LINKS)) if hasattr(host_vars, "get") else None
    except Exception:  # an undefined or broken variable of that host
        return None


def check_own_macs(macs, found, hostname, problems):
    """logfwdr_vrrp_macs of this host against its interfaces as read in this run: the peer admits this host's
    adverts only from those MACs, so a wrong one would silence this host to it."""
    if not macs or found is None:
        return
    for name in sorted(macs):
        if found.get(name) != macs[name]:
            problems.add("logfwdr_vrrp_macs.%s" % name, "%s in the inventory, but %s's %s has %s; the peer admits VRRP "
                                                        "only from this MAC: correct it, or remove it (the role reads "
                                                        "the MAC itself)"
                         % (macs[name], hostname or "this host", name, found.get(name, "no such interface")))


def peer_mac(peer, name, listed, found, where, problems, hostname=None):
    """The MAC the peer's adverts on interface `name` must come from: its logfwdr_vrrp_macs (`listed`) when it
    names the interface, else its interface as read in this run (`found`, None when the peer did not run the read:
    not in the play). A problem, and None, when neither knows it, or when the two disagree."""
    mac = (listed or {}).get(name)
    if mac is not None:
        if found is not None and found.get(name) not in (None, mac):
            problems.add(where, "%s's logfwdr_vrrp_macs.%s is %s, but its %s has %s; this host would drop its "
                                "adverts: correct it on %s, or remove it (the role reads the MAC itself)"
                         % (peer, name, mac, name, found[name], peer))
            return None
        return mac
    if found is None:
        problems.add("logfwdr_vrrp_peers", "%s did not read its interfaces in this run (it is not in the play: "
                                           "--limit, serial, or it failed before), so its MACs are unknown and the "
                                           "VRRP rule cannot bind its adverts to them; run the play on both "
                                           "replicators (--limit %s,%s), or set logfwdr_vrrp_macs (its MAC per "
                                           "ingress interface) in %s's host_vars"
                     % (peer, hostname or "<this host>", peer, peer))
        return None
    if name not in found:
        problems.add(where, "%s has no interface %s (ip link on %s); both replicators need the same ingress "
                            "interfaces" % (peer, name, peer))
        return None
    return found[name]


def exposure(pair_link, unicast, nftables):
    """The warning for a pair whose adverts travel on the exporter segments (None with a pair link): which
    forgery is still possible, and the cure."""
    if pair_link:
        return None
    if nftables:
        check = ("the role's nftables table admits them only from the peer's address and MAC, so any host on a "
                 "segment that forges both (its own MAC set to the peer's)")
    elif unicast:
        check = ("with logfwdr_nftables off keepalived checks only the source address, so any host on a segment "
                 "that forges the peer's address")
    else:
        check = ("with logfwdr_nftables and logfwdr_vrrp_unicast off nothing checks them, so any host on a segment")
    return ("VRRP adverts travel on the exporter segments (logfwdr_vrrp_pair_link is unset): %s can send "
            "priority-255 adverts that make both replicators give up the virtual addresses. To stop that, %s; "
            "logfwdr_vrrp_require_pair_link: true makes this an error" % (check, CURE))


def require_pair_link(require, pair_link, problems):
    if require and not pair_link:
        problems.add("logfwdr_vrrp_require_pair_link", "true, but logfwdr_vrrp_pair_link is unset: VRRP adverts on "
                                                       "the exporter segments can be forged by any host there that "
                                                       "forges a MAC too; %s, or set "
                                                       "logfwdr_vrrp_require_pair_link: false" % CURE)
