# -*- coding: utf-8 -*-
# Copyright: (c) 2026, logfwdr developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The role's inventory model on the controller, for every filter: one problem collector, one set of value
converters, the role's defaults, and the interfaces, protocols and collectors parsed and validated once. The
filters (replication_devices, syslog_bridge_targets, vrrp_instances, syslog_bridge_inputs, host_firewall) derive
their views from what this returns."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import difflib
import ipaddress
import os
import re

import yaml
from ansible.errors import AnsibleFilterError
from ansible.module_utils.parsing.convert_bool import boolean as _ansible_boolean

from ansible_collections.netops.logfwdr.plugins.module_utils.tc.layout import (
    NAME_MAX, POOL_NAME_MAX, SAMPLE_MAX, is_ipv6, unicast)

ROLE_DEFAULTS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                             "roles", "logfwdr", "defaults", "main.yml")
_loaded = {}
IFNAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")  # IFNAMSIZ - 1; nothing keepalived.conf, nft or a file name parses
MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


class Problems(list):
    """Every problem found in an inventory, one line each ("field: what is wrong; the fix"), each once: a
    list-wide field is checked once per protocol or interface."""

    def add(self, where, text):
        line = "%s: %s" % (where, text)
        if line not in self:
            self.append(line)

    def fail(self, what):
        """Raise with every problem, if there is one: what is "replication inventory", "VRRP settings", ..."""
        if self:
            raise AnsibleFilterError("invalid %s, nothing was changed:\n- %s" % (what, "\n- ".join(self)))


def _defaults():
    if "data" not in _loaded:
        with open(ROLE_DEFAULTS) as f:
            _loaded["data"] = yaml.safe_load(f)
    return _loaded["data"]


def role_defaults(names, prefix=""):
    """The role's defaults (defaults/main.yml) for prefix + each name, keyed by name: a filter's fallback for a
    setting it was not given is the role's own default, never a second copy of it."""
    data = _defaults()
    missing = [prefix + n for n in names if prefix + n not in data]
    if missing:
        raise KeyError("not in %s: %s" % (ROLE_DEFAULTS, ", ".join(missing)))
    return dict((n, data[prefix + n]) for n in names)


def role_defaults_under(prefix):
    """Every role default whose name starts with prefix, keyed by the rest of its name: the settings a filter
    knows are the role's, so a default added to the role is known to the filter without a second list."""
    return dict((k[len(prefix):], v) for k, v in _defaults().items() if k.startswith(prefix))


# --------------------------------------------------------------------------- converters: None when invalid

def whole(value, low=None, high=None):
    """A whole number (int, digits in a string, or an integral float) within [low, high]."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    elif isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or (low is not None and value < low) or (high is not None and value > high):
        return None
    return value


def parse_port(value):
    """A UDP or TCP port, 1-65535."""
    return whole(value, 1, 65535)


def boolean(value):
    """true/false as Ansible's own bool filter reads it (yes/no, on/off, 1/0, ...)."""
    try:
        return _ansible_boolean(value, strict=True)
    except TypeError:
        return None


def interface_address(value, family=4):
    """An address with its prefix length, like 10.10.1.2/24 (family 6: 2001:db8:10::2/64)."""
    try:
        kind = ipaddress.IPv6Interface if family == 6 else ipaddress.IPv4Interface
        return kind(str(value)) if value and "/" in str(value) else None
    except ValueError:
        return None


def interface_address6(value):
    return interface_address(value, family=6)


def parse_mac(value):
    """A MAC address in lower case."""
    text = value.lower() if isinstance(value, str) else ""
    return text if MAC_RE.match(text) else None


# --------------------------------------------------------------------------- interfaces, protocols, collectors

COLLECTOR_FIELDS = ("name", "mode", "address", "device", "protocols", "ports", "sources", "rate_limit", "burst",
                    "sample", "pool", "ingress", "syslog_format", "next_hop_mac")
# syslog_format: how the TCP syslog bridge (plugins/filter/syslog_bridge.py) sends syslog to the collector
SYSLOG_FORMATS = {"rfc5424": "RFC 5424 with the original HOSTNAME and the sender in [origin ip=...]",
                  "rfc3164": "RFC 3164 with the sender's address as HOSTNAME"}
INGRESS_FIELDS = ("name", "address", "address6", "mtu", "virtual_address", "virtual_address6", "virtual_router_id",
                  "exporter_networks", "fragments")
FRAGMENT_MODES = ("first", "reassemble")
EGRESS_FIELDS = ("name", "address", "address6", "mtu", "routes")
ROUTE_FIELDS = ("to", "via")


def unknown_fields(item, known, where, problems):
    for key in sorted(set(item) - set(known)):
        hint = difflib.get_close_matches(key, known, 1)
        problems.add("%s.%s" % (where, key), "unknown field%s; the fields are %s" % (
            " (did you mean %r?)" % hint[0] if hint else "", ", ".join(known)))


def items(value, where, problems):
    """The dict items of a list variable (with their index), reporting what is not a dict."""
    if value is None:
        return []
    if not isinstance(value, list):
        problems.add(where, "must be a list")
        return []
    out = []
    for i, item in enumerate(value):
        if isinstance(item, dict):
            out.append((i, item))
        else:
            problems.add("%s[%d]" % (where, i), "must be a dict (with name, ...), got %r" % (item,))
    return out


def _interface(where, item, known, problems, seen):
    unknown_fields(item, known, where, problems)
    name = item.get("name")
    if not isinstance(name, str) or not IFNAME_RE.match(name):
        problems.add(where + ".name", "%r is not an interface name (1-15 of A-Z a-z 0-9 _ . -)" % (name,))
        name = None
    elif name in seen:
        problems.add(where + ".name", "%s is already listed at %s; an interface is either ingress or egress, "
                                      "once" % (name, seen[name]))
    else:
        seen[name] = where
    iface = None
    address = item.get("address")
    if address is not None:
        try:
            if "/" not in str(address):
                raise ValueError("no prefix length")
            iface = ipaddress.IPv4Interface(str(address))
            if iface.network.prefixlen < 31 and iface.ip in (iface.network.network_address,
                                                             iface.network.broadcast_address):
                raise ValueError("the network or broadcast address of its subnet")
        except ValueError as exc:
            problems.add(where + ".address", "%r is not this host's IPv4 address with prefix length, like "
                                             "10.10.1.2/24 (%s)%s" % (address, exc, "; an IPv6 address goes in "
                                                                      "address6, like 2001:db8:10::2/64"
                                                                      if is_ipv6(address) else ""))
            iface = None
    iface6 = None
    address6 = item.get("address6")
    if address6 is not None:
        try:
            if "/" not in str(address6):
                raise ValueError("no prefix length")
            iface6 = ipaddress.IPv6Interface(str(address6))
            if iface6.ip.is_link_local or iface6.ip.is_multicast or iface6.ip.is_unspecified:
                raise ValueError("not a global unicast address")
            if str(iface6) != str(address6):  # the role compares it with what `ip -json addr` shows
                raise ValueError("write it as %s, the form the kernel shows" % iface6)
        except ValueError as exc:
            problems.add(where + ".address6", "%r is not this host's IPv6 address with prefix length, like "
                                              "2001:db8:10::2/64 (%s)" % (address6, exc))
            iface6 = None
    mtu = item.get("mtu")
    if mtu is not None and whole(mtu, 68, 65535) is None:
        problems.add(where + ".mtu", "%r; use a number of bytes from 68 to 65535, or leave it out" % (mtu,))
    return name, iface, iface6


def _virtual(where, item, iface, vrrp, problems, vrrp_seen):
    """An ingress interface's VRRP fields: the address exporters send to and the virtual router id."""
    address, vrid = item.get("virtual_address"), item.get("virtual_router_id")
    if vrrp and address is None:
        problems.add(where + ".virtual_address", "required with logfwdr_vrrp: true: the address the exporters send "
                                                 "to, which moves between the replicators, like 10.10.1.1/24 (in "
                                                 "the subnet of address, not the address itself)")
    if vrrp and vrid is None:
        problems.add(where + ".virtual_router_id", "required with logfwdr_vrrp: true: 1-255, the same on both "
                                                   "replicators, unique per interface and unused by other VRRP "
                                                   "routers on the segment")
    if address is not None:
        try:
            if "/" not in str(address):
                raise ValueError("no prefix length")
            virtual = ipaddress.IPv4Interface(str(address))
        except ValueError as exc:
            problems.add(where + ".virtual_address", "%r is not an IPv4 address with prefix length, like 10.10.1.1/24 "
                                                     "(%s)%s" % (address, exc, "; an IPv6 virtual address goes in "
                                                                 "virtual_address6" if is_ipv6(address) else ""))
            virtual = None
        if virtual is not None and iface is not None:
            if virtual.ip == iface.ip:
                problems.add(where + ".virtual_address", "%s is this replicator's own address; use a free address "
                                                         "of %s that both replicators share" % (virtual.ip, iface.network))
            elif virtual.ip not in iface.network or virtual.network.prefixlen != iface.network.prefixlen:
                problems.add(where + ".virtual_address", "%s is not in the subnet of address %s; use a free address "
                                                         "of %s with the same prefix length, like %s/%d"
                             % (address, iface, iface.network, next(iface.network.hosts()),
                                iface.network.prefixlen))
            elif iface.network.prefixlen < 31 and virtual.ip in (iface.network.network_address,
                                                                 iface.network.broadcast_address):
                problems.add(where + ".virtual_address", "%s is the network or broadcast address of %s; use a free "
                                                         "host address" % (virtual.ip, iface.network))
            elif str(virtual.ip) in vrrp_seen["addresses"]:
                problems.add(where + ".virtual_address", "%s is already the virtual address of %s"
                             % (virtual.ip, vrrp_seen["addresses"][str(virtual.ip)]))
            else:
                vrrp_seen["addresses"][str(virtual.ip)] = where
    if vrid is not None:
        number = whole(vrid, 1, 255)
        if number is None:
            problems.add(where + ".virtual_router_id", "%r; use a number from 1 to 255 (the same on both replicators)"
                         % (vrid,))
        elif number in vrrp_seen["vrids"]:
            problems.add(where + ".virtual_router_id", "%d is already used by %s; every ingress interface needs its "
                                                       "own virtual router id" % (number, vrrp_seen["vrids"][number]))
        else:
            vrrp_seen["vrids"][number] = where
    if not vrrp and (address is None) != (vrid is None):
        missing = "virtual_router_id" if vrid is None else "virtual_address"
        problems.add(where + "." + missing, "set both virtual_address and virtual_router_id (for logfwdr_vrrp), "
                                            "or neither")


def virtual6(item):
    """An ingress interface's virtual_address6 as an IPv6Interface, or None."""
    return interface_address6(item.get("virtual_address6"))


def _virtual6(where, item, iface6, problems, vrrp_seen):
    """The IPv6 address exporters send to, held by the VRRP master with the IPv4 virtual address (keepalived's
    virtual_ipaddress_excluded: IPv4 adverts carry it along)."""
    address = item.get("virtual_address6")
    if address is None:
        return
    virtual = virtual6(item)
    if virtual is None:
        problems.add(where + ".virtual_address6", "%r is not an IPv6 address with prefix length, like "
                                                  "2001:db8:10::1/64" % (address,))
    elif item.get("virtual_address") is None:
        problems.add(where + ".virtual_address6", "needs virtual_address and virtual_router_id: the IPv6 virtual "
                                                  "address moves with the IPv4 one (VRRP adverts are IPv4)")
    elif iface6 is None:
        problems.add(where + ".virtual_address6", "needs address6, the replicator's own IPv6 address on the segment")
    elif str(virtual) != str(address):
        problems.add(where + ".virtual_address6", "%r: write it as %s, the form the kernel shows" % (address, virtual))
    elif virtual.ip == iface6.ip:
        problems.add(where + ".virtual_address6", "%s is this replicator's own address; use a free address of %s that "
                                                  "both replicators share" % (virtual.ip, iface6.network))
    elif virtual.network != iface6.network:
        problems.add(where + ".virtual_address6", "%s is not in the subnet of address6 %s; use a free address of %s "
                                                  "with the same prefix length" % (address, iface6, iface6.network))
    elif str(virtual.ip) in vrrp_seen["addresses"]:
        problems.add(where + ".virtual_address6", "%s is already the virtual address of %s"
                     % (virtual.ip, vrrp_seen["addresses"][str(virtual.ip)]))
    else:
        vrrp_seen["addresses"][str(virtual.ip)] = where


def prefixes(value, where, problems, hosts=None):
    """IPv4 and IPv6 prefixes (an address is its /32 or /128). With `hosts` (who they are, like "senders"), a list
    of who may reach this host: /0, which would admit everybody, is refused."""
    nets = []
    if value is None:
        return nets
    if not isinstance(value, list):
        problems.add(where, "must be a list of IPv4 or IPv6 prefixes, like [192.0.2.0/24, 2001:db8:10::/64]")
        return nets
    for i, prefix in enumerate(value):
        try:
            net = ipaddress.ip_network(str(prefix), strict=True)
        except ValueError as exc:
            try:
                hint = "; did you mean %s?" % ipaddress.ip_network(str(prefix), strict=False)
            except ValueError:
                hint = ""
            problems.add("%s[%d]" % (where, i), "%r is not an IPv4 or IPv6 prefix like 192.0.2.0/24 or "
                                                "2001:db8:10::/64 (%s)%s" % (prefix, exc, hint))
            continue
        if hosts and net.prefixlen == 0:
            problems.add("%s[%d]" % (where, i), "%s would admit every host; list the %s' prefixes" % (net, hosts))
            continue
        if net not in nets:
            nets.append(net)
    return nets


def _segment_scope(where, item, iface, iface6, exporter_networks, problems, service_addresses=None):
    """What the segment's rules accept: packets sent to the replicator's own or virtual address (and its IPv6
    address), or to a BGP service address of a family the segment has (service_addresses: bare addresses, checked
    by plugin_utils/bgp.py), from the segment's subnets or a declared exporter network (routed exporters)."""
    addresses = [str(iface.ip)]
    try:
        if item.get("virtual_address") is not None:
            addresses.append(str(ipaddress.IPv4Interface(str(item["virtual_address"])).ip))
    except ValueError:
        pass  # reported by _validate_virtual
    nets = [iface.network] + [n for n in exporter_networks or [] if n.version == 4 or iface6 is not None]
    own = prefixes(item.get("exporter_networks"), where + ".exporter_networks", problems)
    for i, net in enumerate(own):
        if net.version == 6 and iface6 is None:
            problems.add("%s.exporter_networks[%d]" % (where, i), "%s is an IPv6 prefix, and this interface has no "
                                                                  "address6; add the replicator's IPv6 address on the "
                                                                  "segment, like 2001:db8:10::2/64" % net)
    nets += own
    if iface6 is not None:
        addresses.append(str(iface6.ip))
        nets.append(iface6.network)
        if virtual6(item) is not None:
            addresses.append(str(virtual6(item).ip))
    for address in service_addresses or []:  # logfwdr_ha: bgp: the same on every replicator and segment
        if (":" not in address or iface6 is not None) and address not in addresses:
            addresses.append(address)
    scope = {"addresses": addresses, "sources": [str(n) for f in (4, 6) for n in ipaddress.collapse_addresses(
        [n for n in nets if n.version == f])]}
    fragments = item.get("fragments")
    if fragments is not None and fragments not in FRAGMENT_MODES:
        problems.add(where + ".fragments", "%r is not one of %s (reassemble: fragmented datagrams reach the "
                                           "collectors whole; first: only first fragments are copied)"
                     % (fragments, ", ".join(FRAGMENT_MODES)))
    elif fragments is not None:
        scope["fragments"] = fragments
    return scope


def parse_interfaces(ingress_interfaces, egress_interfaces, problems, vrrp=False, exporter_networks=None,
                     scopes=None, service_addresses=None):
    """Interface names, ingress subnets, and the prefixes reachable through the egress interfaces."""
    seen = {}
    scopes = {} if scopes is None else scopes
    vrrp_seen = {"addresses": {}, "vrids": {}}
    ingress, ingress_nets, reach = [], [], []
    entries = items(ingress_interfaces, "logfwdr_ingress_interfaces", problems)
    if isinstance(ingress_interfaces, list) and not ingress_interfaces:
        problems.add("logfwdr_ingress_interfaces", "empty; list the interfaces the exporters send to")
    for i, item in entries:
        where = "logfwdr_ingress_interfaces[%d]" % i
        name, iface, iface6 = _interface(where, item, INGRESS_FIELDS, problems, seen)
        if item.get("address") is None:
            problems.add(where + ".address", "required: the replicator's address on this segment, like 10.10.1.2/24")
        _virtual(where, item, iface, vrrp, problems, vrrp_seen)
        _virtual6(where, item, iface6, problems, vrrp_seen)
        if name:
            ingress.append(name)
        if iface:
            ingress_nets.append(iface.network)
        if iface6 is not None:
            ingress_nets.append(iface6.network)
        if name and iface:
            scopes[name] = _segment_scope(where, item, iface, iface6, exporter_networks, problems,
                                          service_addresses=service_addresses)
    egress = None
    if egress_interfaces is not None:
        egress = []
        for i, item in items(egress_interfaces, "logfwdr_egress_interfaces", problems):
            where = "logfwdr_egress_interfaces[%d]" % i
            name, iface, iface6 = _interface(where, item, EGRESS_FIELDS, problems, seen)
            if name:
                egress.append(name)
            if iface:
                reach.append(iface.network)
            if iface6 is not None:
                reach.append(iface6.network)
            for r, route in items(item.get("routes"), where + ".routes", problems):
                rwhere = "%s.routes[%d]" % (where, r)
                unknown_fields(route, ROUTE_FIELDS, rwhere, problems)
                try:
                    to = ipaddress.ip_network(str(route.get("to")), strict=True)
                except ValueError as exc:
                    problems.add(rwhere + ".to", "%r is not an IPv4 or IPv6 prefix like 10.30.0.0/16 (%s)"
                                 % (route.get("to"), exc))
                    to = None
                try:
                    via = ipaddress.ip_address(str(route.get("via")))
                except ValueError:
                    problems.add(rwhere + ".via", "%r is not the IPv4 or IPv6 address of a router" % (route.get("via"),))
                    via = None
                own = iface6 if via is not None and via.version == 6 else iface
                field = "address6" if via is not None and via.version == 6 else "address"
                if via is not None and to is not None and via.version != to.version:
                    problems.add(rwhere + ".via", "%s is an IPv%d address and to %s an IPv%d prefix; a route's router "
                                                  "is of the family it routes" % (via, via.version, to, to.version))
                elif via is not None and own is not None and via not in own.network:
                    problems.add(rwhere + ".via", "%s is not in %s's subnet %s; the router must be directly "
                                                  "reachable" % (via, name, own.network))
                elif via is not None and item.get(field) is None:
                    problems.add(rwhere, "a route needs an address on the interface; add %s.%s" % (where, field))
                if to is not None:
                    reach.append(to)
    return ingress, ingress_nets, egress, reach


def parse_protocols(protocols, problems):
    if not isinstance(protocols, dict) or not protocols:
        problems.add("logfwdr_protocols", "must map protocol names to UDP ports, like {syslog: 514}")
        return {}
    out = {}
    for name, value in protocols.items():
        if parse_port(value) is None:
            problems.add("logfwdr_protocols.%s" % name, "%r is not a UDP port; use 1-65535" % (value,))
        else:
            out[str(name)] = parse_port(value)
    return out


def parse_collector(i, raw, ctx, problems):
    where = "logfwdr_collectors[%d]" % i
    start = len(problems)
    unknown_fields(raw, COLLECTOR_FIELDS, where, problems)
    c = {"index": i}

    name = raw.get("name")
    if name is None:
        problems.add(where + ".name", "required; it names the collector's rules in the kernel")
    elif (not isinstance(name, str) or len(name) > NAME_MAX or not name
          or not all(0x20 < ord(ch) < 0x7F for ch in name)):
        problems.add(where + ".name", "%r; use at most %d printable ASCII characters without spaces (the name is "
                                      "stored in the kernel with the rules)" % (name, NAME_MAX))
    elif name in ctx["names"]:
        problems.add(where + ".name", "%r is already used by logfwdr_collectors[%d]; names must be unique"
                     % (name, ctx["names"][name]))
    else:
        ctx["names"][name] = i
    c["name"] = name

    mode = raw.get("mode") or "forward"
    if mode not in ("forward", "mirror"):
        problems.add(where + ".mode", "%r; use forward (to the collector's address) or mirror (an unchanged copy "
                                      "out of a tool port)" % (mode,))
    c["mode"] = mode
    if mode == "forward":
        _forward(where, raw, c, ctx, problems)
    elif mode == "mirror":
        _mirror(where, raw, c, ctx, problems)

    # protocols: names or port numbers; each port at most once
    c["ports"], by_name = [], {}
    protocols = raw.get("protocols")
    if not isinstance(protocols, list) or not protocols:
        problems.add(where + ".protocols", "required: a list of protocol names (%s) or UDP port numbers"
                     % ", ".join(sorted(ctx["protocols"])))
        protocols = []
    for p, proto in enumerate(protocols):
        pwhere = "%s.protocols[%d]" % (where, p)
        port = ctx["protocols"].get(proto) if isinstance(proto, str) else None
        if port is None:
            port = parse_port(proto)
        if port is None:
            hint = difflib.get_close_matches(str(proto), list(ctx["protocols"]), 1)
            problems.add(pwhere, "unknown protocol %r%s; use one of %s or a port number (or add it to "
                                 "logfwdr_protocols)" % (proto, " (did you mean %r?)" % hint[0] if hint else "",
                                                         ", ".join(sorted(ctx["protocols"]))))
        elif port in c["ports"]:
            problems.add(pwhere, "%r is UDP port %d, which this collector already lists" % (proto, port))
        else:
            c["ports"].append(port)
            by_name[str(proto)] = port

    # ports: the collector listens on another port for some protocols
    c["rewrite"] = {}
    ports = raw.get("ports")
    if ports is not None and not isinstance(ports, dict):
        problems.add(where + ".ports", "must map a protocol of this collector to the port it listens on, "
                                       "like {syslog: 1514}")
    elif ports:
        if mode == "mirror":
            problems.add(where + ".ports", "a mirror collector gets the packets unchanged; remove ports or use "
                                           "mode: forward")
        for proto, listen in ports.items():
            pwhere = "%s.ports.%s" % (where, proto)
            if str(proto) not in by_name:
                problems.add(pwhere, "%r is not in this collector's protocols (%s)"
                             % (proto, ", ".join(str(x) for x in protocols)))
            elif parse_port(listen) is None:
                problems.add(pwhere, "%r is not a UDP port; use 1-65535" % (listen,))
            elif parse_port(listen) != by_name[str(proto)]:
                c["rewrite"][by_name[str(proto)]] = parse_port(listen)

    # sources: one allow-list for every protocol, or per protocol ({syslog: [...]}; the others unrestricted)
    sources = raw.get("sources")
    c["sources"] = {}
    if isinstance(sources, list):
        sources = dict((proto, sources) for proto in by_name) if sources else {}
        swhere = dict((proto, where + ".sources") for proto in by_name)
    elif isinstance(sources, dict):
        swhere = dict((proto, "%s.sources.%s" % (where, proto)) for proto in sources)
    elif sources is not None:
        problems.add(where + ".sources", "must be a list of exporter prefixes, like [10.10.2.0/24], or a dict "
                                         "of such lists per protocol, like {syslog: [10.10.2.0/24]}")
    for proto, prefixes in (sources or {}).items():
        if str(proto) not in by_name:
            problems.add(swhere[proto], "%r is not in this collector's protocols (%s)"
                         % (proto, ", ".join(str(x) for x in protocols)))
            continue
        if not isinstance(prefixes, list) or not prefixes:
            problems.add(swhere[proto], "must be a non-empty list of exporter prefixes, like [10.10.2.0/24]")
            continue
        nets = []
        for s, prefix in enumerate(prefixes):
            try:
                net = ipaddress.ip_network(str(prefix), strict=True)
            except ValueError as exc:
                problems.add("%s[%d]" % (swhere[proto], s), "%r is not an IPv4 or IPv6 prefix like 10.10.2.0/24 "
                                                            "(%s)" % (prefix, exc))
                continue
            if c.get("address") and ipaddress.ip_address(c["address"]).version != net.version:
                problems.add("%s[%d]" % (swhere[proto], s), "%s is an IPv%d prefix; a forward collector at %s gets "
                                                            "only the exporters of its own address family"
                             % (net, net.version, c["address"]))
                continue
            nets.append(str(net))
        c["sources"][by_name[str(proto)]] = nets

    for field in ("rate_limit", "burst"):
        value = raw.get(field)
        c[field] = whole(value, 1)
        if value is not None and c[field] is None:
            problems.add("%s.%s" % (where, field), "%r; use a whole number of packets%s above 0"
                         % (value, " per second" if field == "rate_limit" else ""))
    if raw.get("burst") is not None and raw.get("rate_limit") is None:
        problems.add(where + ".burst", "only meaningful with rate_limit")
    c["sample"] = whole(raw.get("sample"), 1, SAMPLE_MAX)
    if raw.get("sample") is not None and c["sample"] is None:
        problems.add(where + ".sample", "%r; use a whole number from 2 to %d (every Nth packet of the "
                     "collector's ports is copied to it), or leave it out for every packet"
                     % (raw.get("sample"), SAMPLE_MAX))

    pool = raw.get("pool")
    c["pool"] = None
    if pool is not None:
        if (not isinstance(pool, str) or not pool or len(pool) > POOL_NAME_MAX
                or not all(0x20 < ord(ch) < 0x7F for ch in pool)):
            problems.add(where + ".pool", "%r; use at most %d printable ASCII characters without spaces (the pool's "
                                          "name is stored in the kernel with its rules)" % (pool, POOL_NAME_MAX))
        else:
            c["pool"] = pool
        for field, why in (("sources", "set the exporters' networks on the ingress interface instead"),
                           ("rate_limit", "cap the protocol (logfwdr_port_rate_limit) instead"),
                           ("sample", "make the sampled collector one outside the pool")):
            if raw.get(field):
                problems.add("%s.%s" % (where, field), "a pool member cannot have %s: the kernel copies to a pool "
                             "member from one rule per bucket, each with its own counters; %s" % (field, why))

    ingress = raw.get("ingress")
    if ingress is None:
        c["ingress"] = list(ctx["ingress"])
    elif not isinstance(ingress, list) or not ingress:
        problems.add(where + ".ingress", "must be a non-empty list of ingress interface names, or left out for all")
        c["ingress"] = []
    else:
        c["ingress"] = []
        for n, name in enumerate(ingress):
            if name not in ctx["ingress"]:
                problems.add("%s.ingress[%d]" % (where, n), "%r is not in logfwdr_ingress_interfaces (%s)"
                             % (name, ", ".join(ctx["ingress"])))
            else:
                c["ingress"].append(name)

    # syslog_format: only for the TCP syslog bridge, which sends to forward collectors that receive syslog
    fmt = raw.get("syslog_format")
    c["syslog_format"] = fmt or "rfc5424"
    if fmt is not None:
        if not isinstance(fmt, str) or fmt not in SYSLOG_FORMATS:
            problems.add(where + ".syslog_format", "%r; use %s" % (fmt, " or ".join(
                "%s (%s)" % item for item in SYSLOG_FORMATS.items())))
        elif mode == "mirror":
            problems.add(where + ".syslog_format", "a mirror collector gets no copies from the syslog bridge; remove "
                                                   "syslog_format or use mode: forward")
        elif ctx["protocols"].get("syslog", 514) not in c["ports"]:
            problems.add(where + ".syslog_format", "only for a collector that receives syslog (port %d); add syslog "
                                                   "to protocols or remove syslog_format"
                         % ctx["protocols"].get("syslog", 514))
    return c if len(problems) == start else None


def _forward(where, raw, c, ctx, problems):
    for field in ("device",):
        if raw.get(field) is not None:
            problems.add("%s.%s" % (where, field), "forward collectors are found through the routes of "
                                                   "logfwdr_egress_interfaces; remove %s (or use mode: mirror)" % field)
    address = raw.get("address")
    ip = unicast(address)
    if ip is None:
        problems.add(where + ".address", "required: the collector's IPv4 or global IPv6 address (got %r); for an "
                                         "unchanged copy out of a tool port use mode: mirror with device" % (address,))
        return
    c["address"] = str(ip)
    mac = raw.get("next_hop_mac")
    if mac is not None and parse_mac(mac) is None:
        problems.add(where + ".next_hop_mac", "%r is not a MAC address like 52:54:00:12:34:56" % (mac,))
    c["next_hop_mac"] = parse_mac(mac)
    for net in ctx["ingress_nets"]:
        if ip in net:
            problems.add(where + ".address", "%s is on the ingress segment %s; copies must leave through an egress "
                                             "interface" % (ip, net))
            return
    if ctx["egress"] is not None and not any(ip in net for net in ctx["reach"]):
        problems.add(where + ".address", "%s is on no egress subnet and behind no route of "
                                         "logfwdr_egress_interfaces; add a route (routes: [{to: ..., via: ...}]) "
                                         "to the egress interface that leads to it" % ip)


def _mirror(where, raw, c, ctx, problems):
    for field in ("address", "next_hop_mac"):
        if raw.get(field) is not None:
            problems.add("%s.%s" % (where, field), "a mirror collector gets the packets unchanged out of its device; "
                                                   "remove %s or use mode: forward" % field)
    device = raw.get("device")
    if not device:
        problems.add(where + ".device", "required for mode: mirror: the tool port the copies go out of")
    elif device in ctx["ingress"]:
        problems.add(where + ".device", "%s is an ingress interface; copies would go back to the exporters" % device)
    elif ctx["egress"] is not None and device not in ctx["egress"]:
        problems.add(where + ".device", "%r is not in logfwdr_egress_interfaces; add it there (a tool port needs "
                                        "no address) so the role brings it up" % (device,))
    c["device"] = device


def check_same_target(collectors, ports, problems):
    """Two collectors with the same address and port would each get every packet."""
    for port in ports:
        seen = {}
        for c in collectors:
            if port in c["ports"]:
                target = (c["mode"], c.get("address"), c["rewrite"].get(port, port), c.get("device"))
                if target in seen:
                    problems.add("logfwdr_collectors[%d]" % c["index"], "gets port %d at the same %s as "
                                 "logfwdr_collectors[%d] (%s); merge the two (sources takes a list)"
                                 % (port, "address" if c["mode"] == "forward" else "device", seen[target][0],
                                    seen[target][1]))
                else:
                    seen[target] = (c["index"], c["name"])


def parse_replication(collectors, ingress_interfaces, protocols, egress_interfaces=None, vrrp=False,
                      exporter_networks=None, problems=None, service_addresses=None):
    """The interfaces, protocols and collectors, validated together into problems (a Problems); service_addresses
    (logfwdr_ha: bgp, bare addresses parsed by plugin_utils/bgp.py) are accepted on every segment too. Returns
    {ingress, ingress_nets, ingress_by_name, ingress_subnets, egress, reach, scopes, protocols, collectors} (an
    ingress interface's subnets: those of its address and address6); only the collectors
    without a problem are in it."""
    problems = Problems() if problems is None else problems
    routed = prefixes(exporter_networks, "logfwdr_exporter_networks", problems)
    scopes = {}
    ingress, ingress_nets, egress, reach = parse_interfaces(ingress_interfaces, egress_interfaces, problems,
                                                            vrrp=bool(vrrp), exporter_networks=routed, scopes=scopes,
                                                            service_addresses=service_addresses)
    ctx = {"protocols": parse_protocols(protocols, problems), "ingress": ingress, "ingress_nets": ingress_nets,
           "egress": egress, "reach": reach, "names": {}}
    valid = [parse_collector(i, raw, ctx, problems) for i, raw in items(collectors, "logfwdr_collectors", problems)]
    if collectors is None:
        problems.add("logfwdr_collectors", "must be a list (empty for no replication)")
    by_name, subnets = {}, {}
    for item in ingress_interfaces if isinstance(ingress_interfaces, list) else []:
        if not isinstance(item, dict) or item.get("name") not in ingress:
            continue
        address, address6 = interface_address(item.get("address")), interface_address6(item.get("address6"))
        if address is not None:
            by_name[item["name"]] = address
        subnets[item["name"]] = [a.network for a in (address, address6) if a is not None]
    return {"ingress": ingress, "ingress_nets": ingress_nets, "ingress_by_name": by_name,
            "ingress_subnets": subnets, "egress": egress, "reach": reach, "scopes": scopes,
            "protocols": ctx["protocols"], "collectors": [c for c in valid if c is not None]}
