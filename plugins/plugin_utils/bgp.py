# -*- coding: utf-8 -*-
# Copyright: (c) 2026, logfwdr developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""logfwdr_ha: bgp on the controller: every logfwdr_bgp_* setting checked once and turned into the `bgp` model the
templates render (frr.conf, the agent's announce options, the firewall's BGP and BFD rules). The password itself
is never in the model (it would be printed with -v): templates read logfwdr_bgp_password."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress

from ansible_collections.netops.logfwdr.plugins.module_utils.tc.layout import is_ipv6, unicast
from ansible_collections.netops.logfwdr.plugins.plugin_utils.inventory import (
    boolean, interface_address, interface_address6, items, role_defaults_under, unknown_fields, whole)

PREFIX = "logfwdr_bgp_"
DEFAULTS = role_defaults_under(PREFIX)
HA_MODES = ("vrrp", "bgp")
# the non-persistent TUN device the agent holds: the service addresses live on it, so they vanish with the agent
DEVICE = "logfwdr0"
NEIGHBOR_FIELDS = ("address", "asn")
ASN_MAX = 4294967295
PASSWORD_MAX = 80  # TCP_MD5SIG_MAXKEYLEN


def _own_addresses(ingress_interfaces, egress_interfaces):
    """(ip, where) of every address this host has on its interfaces, the subnets they are on (dicts: network,
    where, name, ingress, ip), and whether some address did not parse (then a neighbour "on no subnet" may be the
    fault of that address, which the replication checks name already)."""
    own, subnets, broken = [], [], False
    for side, entries in (("logfwdr_ingress_interfaces", ingress_interfaces),
                          ("logfwdr_egress_interfaces", egress_interfaces)):
        for i, item in enumerate(entries if isinstance(entries, list) else []):
            if not isinstance(item, dict):
                broken = True
                continue
            where = "%s[%d] (%s)" % (side, i, item.get("name"))
            fields = ("address", "address6") + (("virtual_address", "virtual_address6")
                                                if side == "logfwdr_ingress_interfaces" else ())
            for field in fields:
                if item.get(field) is None:
                    continue
                parsed = (interface_address6 if field.endswith("6") else interface_address)(item[field])
                if parsed is None:
                    broken = True
                    continue
                own.append((parsed.ip, "%s.%s" % (where, field)))
                if field in ("address", "address6"):
                    subnets.append({"network": parsed.network, "where": where, "name": item.get("name"),
                                    "ingress": side == "logfwdr_ingress_interfaces", "ip": parsed.ip})
    return own, subnets, broken


def _service_addresses(value, own, subnets, problems):
    where = PREFIX + "service_addresses"
    out = []
    if not isinstance(value, list) or not value:
        problems.add(where, "required with logfwdr_ha: bgp: the addresses the exporters send to, announced by every "
                            "healthy replicator, like [192.0.2.100, 2001:db8:100::1]")
        return out
    seen = {}
    for i, raw in enumerate(value):
        iwhere = "%s[%d]" % (where, i)
        text = str(raw) if isinstance(raw, str) else None
        try:
            if text is None:
                raise ValueError(raw)
            iface = ipaddress.ip_interface(text)
        except ValueError:
            problems.add(iwhere, "%r is not an IPv4 or IPv6 address; write it bare, like 192.0.2.100 or "
                                 "2001:db8:100::1" % (raw,))
            continue
        ip = iface.ip
        if "/" in text and iface.network.prefixlen != iface.max_prefixlen:
            problems.add(iwhere, "%r has a prefix length; a service address is one address, announced as /%d: "
                                 "write it bare, like %s" % (raw, iface.max_prefixlen,
                                                             "2001:db8:100::1" if ip.version == 6 else "192.0.2.100"))
            continue
        if unicast(ip) is None or ip.is_loopback or ip.is_link_local or ip.is_reserved:
            problems.add(iwhere, "%s is not a unicast host address; use an address routed to the replicators, like "
                                 "192.0.2.100 or 2001:db8:100::1" % ip)
            continue
        mine = [w for a, w in own if a == ip]
        if mine:
            problems.add(iwhere, "%s is also %s, this host's own address; a service address is shared by every "
                                 "replicator and lives on %s: use an address of no interface" % (ip, mine[0], DEVICE))
            continue
        connected = [(sub["network"], sub["where"]) for sub in subnets if ip in sub["network"]]
        if connected:
            problems.add(iwhere, "%s is in the subnet %s of %s: hosts there would ask ARP/ND for it and no replicator "
                                 "answers; use an address outside every connected subnet (the routers route it to "
                                 "the replicators)" % (ip, connected[0][0], connected[0][1]))
            continue
        if ip in seen:
            problems.add(iwhere, "%s is already %s[%d]" % (ip, where, seen[ip]))
            continue
        seen[ip] = i
        out.append((i, ip))
    return out


def _neighbors(value, own, subnets, broken, problems):
    where = PREFIX + "neighbors"
    out = []
    if not isinstance(value, list) or not value:
        problems.add(where, "required with logfwdr_ha: bgp: the routers this replicator announces to, each on an "
                            "ingress interface's subnet, like [{address: 10.50.0.254, asn: 65000}]")
        return out
    seen = {}
    for i, item in items(value, where, problems):
        iwhere = "%s[%d]" % (where, i)
        unknown_fields(item, NEIGHBOR_FIELDS, iwhere, problems)
        asn = whole(item.get("asn"), 1, ASN_MAX)
        if item.get("asn") is None:
            problems.add(iwhere + ".asn", "required: the router's AS number, 1-%d" % ASN_MAX)
        elif asn is None:
            problems.add(iwhere + ".asn", "%r; use the router's AS number, 1-%d" % (item.get("asn"), ASN_MAX))
        raw = item.get("address")
        ip = unicast(raw) if isinstance(raw, str) and "/" not in raw else None
        if raw is None:
            problems.add(iwhere + ".address", "required: the router's address on an ingress interface's subnet, like "
                                              "10.50.0.254")
            continue
        if ip is None or ip.is_loopback:
            problems.add(iwhere + ".address", "%r is not the IPv4 or IPv6 address of a router (bare, no prefix "
                                              "length), like 10.50.0.254" % (raw,))
            continue
        mine = [w for a, w in own if a == ip]
        if mine:
            problems.add(iwhere + ".address", "%s is %s, this host's own address; use the router's" % (ip, mine[0]))
            continue
        # BGP with routers one hop away (GTSM, BFD single hop), on the segments the exporters' packets come in on
        ingress = [(sub["network"], sub["name"]) for sub in subnets
                   if sub["ingress"] and sub["network"].version == ip.version]
        on = [name for n, name in ingress if ip in n]
        if not on:
            if not broken:
                problems.add(iwhere + ".address", "%s is on no ingress interface's subnet (%s); use a router's address "
                                                  "on an ingress segment (%s of an interface)"
                             % (ip, ", ".join(str(n) for n, name in ingress) or "none is IPv%d" % ip.version,
                                "address6" if ip.version == 6 else "address"))
            continue
        if ip in seen:
            problems.add(iwhere + ".address", "%s is already %s[%d]; list a router once" % (ip, where, seen[ip]))
            continue
        seen[ip] = i
        if asn is not None:
            out.append((i, {"address": str(ip), "asn": asn, "family": ip.version, "interface": on[0]}))
    return out


def parse_bgp(settings, ingress_interfaces, problems, egress_interfaces=None):
    """settings: logfwdr_ha, logfwdr_vrrp, logfwdr_exporter_networks and the logfwdr_bgp_* variables, keyed by
    name (missing logfwdr_bgp_* ones take the role's defaults). Returns the bgp model with logfwdr_ha: bgp, None
    with vrrp (then the logfwdr_bgp_* settings are not read); every mistake goes into problems."""
    s = dict((PREFIX + k, v) for k, v in DEFAULTS.items())
    s.update(settings or {})
    ha = s.get("logfwdr_ha", "vrrp")
    if ha not in HA_MODES:
        problems.add("logfwdr_ha", "%r; use vrrp (a primary/backup pair, logfwdr_vrrp) or bgp (every healthy "
                                   "replicator announces the service addresses to the routers)" % (ha,))
        return None
    if ha != "bgp":
        return None
    if boolean(s.get("logfwdr_vrrp", False)):
        problems.add("logfwdr_vrrp", "true with logfwdr_ha: bgp; the two modes exclude each other: set logfwdr_vrrp: "
                                     "false (BGP announces the service addresses from every healthy replicator) or "
                                     "logfwdr_ha: vrrp")

    def bad(field, text):
        problems.add(PREFIX + field, text)

    asn = whole(s[PREFIX + "asn"], 1, ASN_MAX)
    if s[PREFIX + "asn"] in (0, None, ""):  # 0: the role's default, unset
        bad("asn", "required with logfwdr_ha: bgp: this replicator's AS number, 1-%d (a private one: 64512-65534 or "
                   "4200000000-4294967294)" % ASN_MAX)
    elif asn is None:
        bad("asn", "%r is not an AS number; use 1-%d (a private one: 64512-65534 or 4200000000-4294967294)"
            % (s[PREFIX + "asn"], ASN_MAX))

    own, subnets, broken = _own_addresses(ingress_interfaces, egress_interfaces)
    router_id = s[PREFIX + "router_id"]
    if router_id in (None, ""):
        first = [sub["ip"] for sub in subnets if sub["ingress"] and sub["ip"].version == 4]
        router_id = str(first[0]) if first else None  # no IPv4 ingress address: the replication checks say so
    else:
        rid = None
        try:
            rid = ipaddress.IPv4Address(str(router_id)) if isinstance(router_id, str) else None
        except ValueError:
            pass
        if rid is None or rid.is_unspecified or rid.is_multicast:
            bad("router_id", "%r is not an IPv4 address; BGP's router id is one, like 10.50.0.1%s (empty: the first "
                             "ingress interface's address)" % (router_id, ", also with IPv6 sessions"
                                                               if is_ipv6(router_id) else ""))
        router_id = str(rid) if rid is not None else None

    before = len(problems)
    service = _service_addresses(s[PREFIX + "service_addresses"], own, subnets, problems)
    service_complete = len(problems) == before
    before = len(problems)
    neighbors = _neighbors(s[PREFIX + "neighbors"], own, subnets, broken, problems)
    complete = len(problems) == before  # else the missing family may be the one of a neighbour named above
    families = set(n["family"] for i, n in neighbors)
    service_families = set(ip.version for i, ip in service)
    for i, ip in service:
        if neighbors and complete and ip.version not in families:
            bad("service_addresses[%d]" % i, "%s is an IPv%d address, and no neighbour in logfwdr_bgp_neighbors is: "
                                             "it would be announced to nobody; add an IPv%d router (on an %s subnet)"
                % (ip, ip.version, ip.version, "address6" if ip.version == 6 else "address"))
    for i, n in neighbors:
        if service and service_complete and n["family"] not in service_families:
            bad("neighbors[%d].address" % i, "%s is an IPv%d router, and no service address is IPv%d: the session "
                                             "would carry nothing; add an IPv%d service address or remove it"
                % (n["address"], n["family"], n["family"], n["family"]))

    password = s[PREFIX + "password"]
    if password is None:
        password = ""
    # the value is never in a message: it is a secret (no_log)
    if not isinstance(password, str):
        bad("password", "must be a string; use 1-%d printable ASCII characters without spaces, or '' for none"
            % PASSWORD_MAX)
    elif len(password) > PASSWORD_MAX or not all(0x20 < ord(ch) < 0x7F for ch in password):
        bad("password", "%d characters%s; use 1-%d printable ASCII characters without spaces (TCP MD5 keys are at "
                        "most %d bytes), or '' for none" % (len(password), "" if len(password) > PASSWORD_MAX else
                                                            " with a space or a character outside printable ASCII",
                                                            PASSWORD_MAX, PASSWORD_MAX))

    switches = {}
    for field in ("ttl_security", "bfd"):
        switches[field] = boolean(s[PREFIX + field])
        if switches[field] is None:
            bad(field, "%r; use true or false" % (s[PREFIX + field],))
    if switches["ttl_security"] and switches["bfd"]:
        # measured in the netns lab (lib/lflab/bgplab.py): bgpd then asks bfdd for a multihop session, which a
        # router's single-hop BFD never answers, and a dead replicator is noticed only after the hold time
        bad("ttl_security", "true with logfwdr_bgp_bfd: true: FRR 8.4 (Debian 12) then asks for a multihop BFD "
                            "session, which the router's single-hop BFD never answers, so a dead replicator keeps "
                            "its traffic for the whole hold time; turn one of them off (TCP MD5, "
                            "logfwdr_bgp_password, and the firewall's BGP rule still protect the session)")

    numbers = {}
    for field, low, high, what in (
            ("bfd_interval", 10, 60000, "milliseconds from 10 to 60000 (BFD's transmit and receive interval)"),
            ("bfd_multiplier", 2, 255, "a number from 2 to 255 (BFD packets missed before the session is down)"),
            ("keepalive", 1, 21845, "seconds from 1 to 21845 (the hold time is 3 times as long)"),
            ("drain_quiet", 1, 3600, "seconds from 1 to 3600 without a datagram before a drained host may stop"),
            ("drain_timeout", 1, 86400, "seconds from 1 to 86400 that logfwdr drain waits at most")):
        numbers[field] = whole(s[PREFIX + field], low, high)
        if numbers[field] is None:
            bad(field, "%r; use %s" % (s[PREFIX + field], what))
    if numbers["drain_quiet"] and numbers["drain_timeout"] and numbers["drain_timeout"] <= numbers["drain_quiet"]:
        bad("drain_timeout", "%d is not longer than logfwdr_bgp_drain_quiet (%d); the drain could never end quiet: "
                             "make it longer" % (numbers["drain_timeout"], numbers["drain_quiet"]))

    # routed exporters: the tc rules copy only from the segment's subnet and the exporter networks
    routed = s.get("logfwdr_exporter_networks")
    per_interface = [item.get("exporter_networks") for item in ingress_interfaces or [] if isinstance(item, dict)]
    if not routed and not any(per_interface):
        problems.add("logfwdr_exporter_networks", "required with logfwdr_ha: bgp (or an ingress interface's "
                                                  "exporter_networks): the exporters' prefixes, like [192.0.2.0/24]; "
                                                  "they are routed to the replicators, and without them nothing is "
                                                  "copied")

    return {"asn": asn, "router_id": router_id, "device": DEVICE,
            "service4": ["%s/32" % ip for i, ip in service if ip.version == 4],
            "service6": ["%s/128" % ip for i, ip in service if ip.version == 6],
            "neighbors": [n for i, n in neighbors],
            "password": bool(password),
            "ttl_security": switches["ttl_security"], "bfd": switches["bfd"],
            "bfd_interval": numbers["bfd_interval"], "bfd_multiplier": numbers["bfd_multiplier"],
            "keepalive": numbers["keepalive"],
            "hold": 3 * numbers["keepalive"] if numbers["keepalive"] else None,
            "drain_quiet": numbers["drain_quiet"], "drain_timeout": numbers["drain_timeout"]}


def service_addresses(model):
    """The bare service addresses of a bgp model (None: none), IPv4 first: what the tc rules and the syslog bridge
    accept besides the interfaces' own addresses."""
    if not model:
        return []
    return [a.split("/")[0] for a in model["service4"] + model["service6"]]


def routed_exporters(model, exporter_networks, ingress_interfaces):
    """With a bgp model, the exporters' prefixes (logfwdr_exporter_networks, then each ingress interface's
    exporter_networks; the replication checks refuse bad ones): the exporters are routed to the replicators, so the
    syslog bridge's default senders are these besides the ingress subnets. Without one (vrrp): none."""
    if not model:
        return []
    out = []
    lists = [exporter_networks] + [i.get("exporter_networks") for i in ingress_interfaces or [] if isinstance(i, dict)]
    for prefixes in lists:
        for prefix in prefixes if isinstance(prefixes, list) else []:
            if str(prefix) not in out:
                out.append(str(prefix))
    return out
