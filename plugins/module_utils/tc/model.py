# -*- coding: utf-8 -*-
# Copyright: (c) 2026, logfwdr developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Desired replication state: validation and the kernel layout it maps to.

Layout on each ingress device (one u32 classifier instance the module owns,
at ``priority`` in ``chain``):

* a dispatch node per port in the classifier's root hash table: matches
  IPv4, UDP, first fragment, destination port; links to the port's table;
  its own action (gact drop) decides what happens to the original packet;
* a hash table per port holding one node per destination (one per source
  prefix when the destination has an allow-list).  Every destination node
  ends with ``mirred ... continue`` so the next node runs, and carries the
  destination's name in the mirred action's cookie.

Nodes in a table run in node-id order.  Forward destinations rewrite the
packet in place, so mirror destinations (which must see the original) get
the lowest ids, then forward destinations, then those that also rewrite the
UDP port (they would hide the port from nothing, but keep the order
predictable).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import re

PRESETS = {
    "syslog": 514,
    "snmptrap": 162,
    "sflow": 6343,
    "netflow": 2055,
    "ipfix": 4739,
}
PORT_NAMES = dict((v, k) for k, v in PRESETS.items())

MODES = ("forward", "mirror")
ORIGINAL = ("drop", "pass")
NAME_MAX = 16  # TC_COOKIE_MAX_SIZE: the name lives in the mirred cookie
DEFAULT_PRIORITY = 49152

# node-id ranges per destination class (see module docstring)
CLASS_MIRROR, CLASS_FORWARD, CLASS_FORWARD_PORT = 0, 1, 2
NODE_RANGES = {
    CLASS_MIRROR: (0x001, 0x3FF),
    CLASS_FORWARD: (0x400, 0xBFF),
    CLASS_FORWARD_PORT: (0xC00, 0xFFF),
}
HT_RANGE = (0x100, 0x7FF)  # port hash table ids we allocate from

# kernel pieces each feature needs: (module, config option)
KERNEL_NEEDS = {
    "ingress": ("sch_ingress", "CONFIG_NET_SCH_INGRESS"),
    "u32": ("cls_u32", "CONFIG_NET_CLS_U32"),
    "mirred": ("act_mirred", "CONFIG_NET_ACT_MIRRED"),
    "skbmod": ("act_skbmod", "CONFIG_NET_ACT_SKBMOD"),
    "pedit": ("act_pedit", "CONFIG_NET_ACT_PEDIT"),
    "csum": ("act_csum", "CONFIG_NET_ACT_CSUM"),
    "police": ("act_police", "CONFIG_NET_ACT_POLICE"),
    "gact": ("act_gact", "CONFIG_NET_ACT_GACT"),
}

_MAC_RE = re.compile(r"^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$")

# u32 key offsets (bytes from the IPv4 header, IHL 5 assumed)
OFF_VER_IHL, OFF_FRAG, OFF_PROTO, OFF_SRC, OFF_PORTS = 0, 4, 8, 12, 20


class ValidationError(Exception):
    """All problems found in the desired state, one per line."""

    def __init__(self, problems):
        self.problems = list(problems)
        super(ValidationError, self).__init__("; ".join(self.problems))


def port_keys(port):
    """u32 keys (mask, value, offset) matching IPv4/UDP first fragments to `port`."""
    return [
        (0xFF000000, 0x45000000, OFF_VER_IHL),  # version 4, no IP options
        (0x00001FFF, 0x00000000, OFF_FRAG),  # fragment offset 0: UDP header present
        (0x00FF0000, 0x00110000, OFF_PROTO),  # protocol 17
        (0x0000FFFF, port & 0xFFFF, OFF_PORTS),  # destination port
    ]


def port_of_keys(keys):
    for mask, value, off in keys:
        if off == OFF_PORTS and mask == 0x0000FFFF:
            return value
    return None


def source_keys(prefix):
    if prefix is None:
        return [(0, 0, 0)]  # match everything, as `match u32 0 0` does
    net = ipaddress.ip_network(prefix)
    return [(int(net.netmask), int(net.network_address), OFF_SRC)]


def source_of_keys(keys):
    for mask, value, off in keys:
        if off == OFF_SRC:
            net = ipaddress.ip_network((value, bin(mask).count("1")))
            return str(net)
    return None


def destination_class(dest):
    if dest["mode"] == "mirror":
        return CLASS_MIRROR
    return CLASS_FORWARD_PORT if dest.get("port") else CLASS_FORWARD


def destination_actions(dest):
    """The action list of one destination node, in the vocabulary of codec."""
    actions = []
    if dest.get("rate_limit"):
        actions.append({"kind": "police", "rate": dest["rate_limit"], "burst": dest["burst"]})
    if dest["mode"] == "forward":
        actions.append({"kind": "skbmod", "dmac": dest["next_hop_mac"], "smac": dest["source_mac"]})
        # pedit sets the whole destination address (and port): every forward node overwrites what the
        # node before it wrote; csum then fixes the IPv4 header and UDP checksums
        actions.append({"kind": "pedit", "address": dest["address"], "port": dest.get("port")})
        actions.append({"kind": "csum", "update_flags": 17})
    actions.append({"kind": "mirred", "eaction": 2, "ifindex": dest["ifindex"],
                    "control": -1, "cookie": dest["name"].encode("ascii")})
    return actions


def destination_nodes(dest):
    """One node spec per allow-listed prefix (or one matching everything)."""
    prefixes = dest.get("sources") or [None]
    return [{"keys": source_keys(p), "actions": destination_actions(dest)} for p in prefixes]


def dispatch_node(port):
    actions = [{"kind": "gact", "control": 2}] if port["original"] == "drop" else []
    return {"keys": port_keys(port["port"]), "actions": actions}


def kernel_features(devices):
    """The tc kinds a desired state needs (for the availability check)."""
    kinds = set()
    for dev in devices:
        if dev["ports"]:
            kinds.update(("ingress", "u32"))
        for port in dev["ports"]:
            if port["original"] == "drop":
                kinds.add("gact")
            for dest in port["destinations"]:
                for node in destination_nodes(dest)[:1]:
                    kinds.update(a["kind"] for a in node["actions"])
    return kinds


# ---- validation -----------------------------------------------------------

def _ipv4(value):
    try:
        return ipaddress.IPv4Address(u"%s" % value)
    except (ipaddress.AddressValueError, ValueError):
        return None


def parse_port(value):
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        port = value
    else:
        text = u"%s" % value
        if text.lower() in PRESETS:
            return PRESETS[text.lower()]
        if not text.isdigit():
            return None
        port = int(text)
    return port if 1 <= port <= 65535 else None


class Resolver:
    """What validation asks of the host.  kernel.Kernel implements it; unit
    tests pass a fake."""

    def link(self, name):  # -> {"ifindex": int, "mac": str, "up": bool} or None
        raise NotImplementedError

    def route(self, address):  # -> {"device": name, "gateway": ip or None} or None
        raise NotImplementedError

    def neighbour(self, device, address):  # -> mac or None (resolves when unknown)
        raise NotImplementedError


def validate(params, resolver, pending=None):
    """Raw module params -> list of resolved device dicts, or ValidationError.

    Every field is checked and every problem reported before anything is
    returned, so the caller touches the kernel only with a whole valid state.
    With a `pending` list, a forward destination whose next hop does not
    answer is appended there (and left out) instead of being a problem.
    """
    problems = []
    devices = []
    seen_devices = set()
    for di, raw_dev in enumerate(params.get("devices") or []):
        where = "devices[%d]" % di
        name = raw_dev.get("name")
        link = resolver.link(name) if name else None
        if not name:
            problems.append("%s.name: required (the ingress interface)" % where)
        elif link is None:
            problems.append("%s.name: no interface named %r on this host" % (where, name))
        elif name in seen_devices:
            problems.append("%s.name: interface %r is listed twice; merge its ports" % (where, name))
        seen_devices.add(name)
        dev = {"name": name, "ifindex": link["ifindex"] if link else None, "ports": []}
        seen_ports = {}
        for pi, raw_port in enumerate(raw_dev.get("ports") or []):
            pwhere = "%s.ports[%d]" % (where, pi)
            port_no = parse_port(raw_port.get("port"))
            if port_no is None:
                problems.append(
                    "%s.port: %r is not a UDP port; use 1-65535 or one of %s"
                    % (pwhere, raw_port.get("port"), ", ".join(sorted(PRESETS))))
            elif port_no in seen_ports:
                problems.append("%s.port: port %d is already listed at %s; merge the destinations"
                                % (pwhere, port_no, seen_ports[port_no]))
            else:
                seen_ports[port_no] = pwhere
            waiting = [] if pending is not None else None
            dests = [_validate_destination(raw, "%s.destinations[%d]" % (pwhere, i), name, resolver, problems,
                                           waiting)
                     for i, raw in enumerate(raw_port.get("destinations") or [])]
            dests = [d for d in dests if d is not None]
            _check_duplicates(dests, pwhere, problems)
            original = raw_port.get("original")
            # a pending forward destination still decides the original's fate: it is only waiting
            has_forward = any(d["mode"] == "forward" for d in dests) or bool(waiting)
            if original is None:
                original = "drop" if has_forward else "pass"
            elif original not in ORIGINAL:
                problems.append("%s.original: %r; use drop or pass" % (pwhere, original))
            elif original == "pass" and has_forward:
                problems.append(
                    "%s.original: pass would deliver the packet with the last forward "
                    "destination's rewritten headers; use drop, or make every destination a mirror" % pwhere)
            if not raw_port.get("destinations"):
                problems.append("%s.destinations: at least one destination is needed; "
                                "remove the port to stop replicating it" % pwhere)
            for item in waiting or []:
                pending.append(dict(item, device=name, port=port_no))
            if dests or not waiting:  # a port whose destinations all wait gets no rule yet
                dev["ports"].append({"port": port_no, "original": original, "destinations": dests})
        devices.append(dev)
    if problems:
        raise ValidationError(problems)
    return devices


def _check_duplicates(dests, pwhere, problems):
    names, targets = {}, {}
    for i, dest in enumerate(dests):
        if dest["name"] in names:
            problems.append("%s.destinations[%d].name: %r is used twice (also destinations[%d]); names identify "
                            "destinations and must be unique per port" % (pwhere, dest["index"], dest["name"],
                                                                          names[dest["name"]]))
        names.setdefault(dest["name"], dest["index"])
        target = (dest["mode"], dest.get("address"), dest.get("port"), dest["device"])
        if target in targets:
            problems.append("%s.destinations[%d]: same target as destinations[%d]; every packet would be "
                            "sent twice" % (pwhere, dest["index"], targets[target]))
        targets.setdefault(target, dest["index"])


def _validate_destination(raw, where, ingress, resolver, problems, waiting=None):
    start = len(problems)
    idx = int(where.rsplit("[", 1)[1].rstrip("]"))
    mode = raw.get("mode") or "forward"
    if mode not in MODES:
        problems.append("%s.mode: %r; use forward or mirror" % (where, mode))
        return None
    dest = {"index": idx, "mode": mode, "address": None, "port": None,
            "rate_limit": raw.get("rate_limit"), "burst": raw.get("burst"),
            "next_hop_mac": None, "source_mac": None}
    address = raw.get("address")
    device = raw.get("device")
    if mode == "mirror":
        for field in ("address", "port", "next_hop_mac"):
            if raw.get(field) is not None:
                problems.append("%s.%s: a mirror destination sends the packet unchanged; remove %s or use "
                                "mode: forward" % (where, field, field))
        if not device:
            problems.append("%s.device: a mirror destination needs the tool port it copies to" % where)
    else:
        if address is None:
            problems.append("%s.address: a forward destination needs the collector's IPv4 address" % where)
        elif _ipv4(address) is None:
            problems.append("%s.address: %r is not an IPv4 address" % (where, address))
        else:
            dest["address"] = str(_ipv4(address))
        if raw.get("port") is not None:
            port = parse_port(raw.get("port"))
            if port is None:
                problems.append("%s.port: %r is not a UDP port; use 1-65535" % (where, raw.get("port")))
            dest["port"] = port
    # sources: an allow-list of exporter prefixes
    sources = []
    for si, prefix in enumerate(raw.get("sources") or []):
        try:
            sources.append(ipaddress.IPv4Network(u"%s" % prefix, strict=True))
        except ValueError as exc:
            problems.append("%s.sources[%d]: %r is not an IPv4 prefix (%s)" % (where, si, prefix, exc))
    # overlapping prefixes would send a packet twice; collapse them
    dest["sources"] = [str(n) for n in ipaddress.collapse_addresses(sources)]
    for field in ("rate_limit", "burst"):
        value = raw.get(field)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            problems.append("%s.%s: %r; use a whole number of packets%s above 0"
                            % (where, field, value, " per second" if field == "rate_limit" else ""))
    if raw.get("burst") is not None and raw.get("rate_limit") is None:
        problems.append("%s.burst: only meaningful with rate_limit" % where)
    if dest["rate_limit"] and not dest["burst"] and len(problems) == start:
        dest["burst"] = max(10, dest["rate_limit"] // 10)
    mac = raw.get("next_hop_mac")
    if mac is not None and not _MAC_RE.match(u"%s" % mac):
        problems.append("%s.next_hop_mac: %r is not a MAC address like 52:54:00:12:34:56" % (where, mac))
    name = raw.get("name") or (address if mode == "forward" else device)
    if name is not None:
        name = u"%s" % name
        if len(name.encode("utf-8")) > NAME_MAX or not all(0x20 < ord(c) < 0x7F for c in name):
            problems.append("%s.name: %r; use at most %d printable ASCII characters without spaces (the name is "
                            "stored in the kernel with the rule)" % (where, name, NAME_MAX))
    dest["name"] = name
    if len(problems) != start:
        return None
    # resolve the egress side from the kernel: device first, then the next hop's MAC
    route = None
    if mode == "forward" and (device is None or mac is None):
        route = resolver.route(dest["address"])
        if route is None and device is None:
            problems.append("%s.address: no route to %s; add one or set device and next_hop_mac"
                            % (where, dest["address"]))
            return None
    device = device or route["device"]
    link = resolver.link(device)
    if link is None:
        problems.append("%s.device: no interface named %r on this host" % (where, device))
        return None
    if mode == "forward" and device == ingress:
        problems.append("%s.device: %s is the ingress interface; copies would return to the exporters' segment"
                        % (where, device))
        return None
    if mode == "forward" and mac is None:
        hop = route["gateway"] if route and route["device"] == device and route["gateway"] else dest["address"]
        mac = resolver.neighbour(device, hop)
        if mac is None:
            reason = "next hop %s on %s did not answer ARP" % (hop, device)
            if waiting is not None:
                waiting.append({"name": name, "address": dest["address"], "next_hop": hop, "egress_device": device,
                                "reason": reason})
            else:
                problems.append("%s: %s; check the collector is up or set next_hop_mac" % (where, reason))
            return None
    dest["device"] = device
    dest["ifindex"] = link["ifindex"]
    if mode == "forward":
        dest["next_hop_mac"] = mac.lower()
        dest["source_mac"] = link["mac"].lower()
    return dest


def public_destination(dest):
    """A resolved destination in the shape tc_mirror accepts."""
    out = {"name": dest["name"], "mode": dest["mode"], "device": dest["device"]}
    if dest["mode"] == "forward":
        out["address"] = dest["address"]
        out["next_hop_mac"] = dest["next_hop_mac"]
        if dest.get("port"):
            out["port"] = dest["port"]
    if dest.get("sources"):
        out["sources"] = list(dest["sources"])
    if dest.get("rate_limit"):
        out["rate_limit"] = dest["rate_limit"]
        out["burst"] = dest["burst"]
    return out
