# -*- coding: utf-8 -*-
# Copyright: (c) 2026, logfwdr developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Desired replication state: validation of the module's parameters against the host.

What the validated state becomes in the kernel is defined in layout.py.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import re

from ansible_collections.netops.logfwdr.plugins.module_utils.tc import layout

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
PRIORITY_RANGE = (1, 65535)
CHAIN_RANGE = (0, 0xFFFFFFFF)
_MAC_RE = re.compile(r"^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$")


class ValidationError(Exception):
    """All problems found in the desired state, one per line."""

    def __init__(self, problems):
        self.problems = list(problems)
        super(ValidationError, self).__init__("; ".join(self.problems))


# ---- validation -----------------------------------------------------------

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

    def subnets(self, name):  # -> the device's connected IPv4 prefixes, as strings
        raise NotImplementedError


def validate_scope(params):
    """Problems with the priority and chain the module owns (it writes nothing outside them)."""
    problems = []
    for field, (low, high) in (("priority", PRIORITY_RANGE), ("chain", CHAIN_RANGE)):
        value = params.get(field)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            problems.append("%s: %r; use a whole number from %d to %d%s" % (
                field, value, low, high,
                " (the kernel would truncate it; 49152 and just below are what it gives filters added "
                "without a priority, the default %d is clear of them)" % layout.DEFAULT_PRIORITY
                if field == "priority" else ""))
    return problems


def _prefix(value):
    """(network, None) or (None, why)."""
    try:
        return ipaddress.ip_network(u"%s" % value, strict=True), None
    except ValueError as exc:
        return None, str(exc)


def _device_scope(raw_dev, where, link, resolver, problems):
    """The ingress device's own MAC, accepted destination addresses and exporter prefixes, and the address
    families they enable: IPv4 unless every address is IPv6, IPv6 when an address is IPv6."""
    scope = {"mac": None, "addresses": [], "sources": [], "warnings": [],
             "fragments": raw_dev.get("fragments") or "first"}
    if scope["fragments"] not in layout.FRAGMENT_MODES:
        problems.append("%s.fragments: %r is not one of %s (reassemble: fragmented datagrams are reassembled and "
                        "copied whole; needs act_ct)" % (where, scope["fragments"], ", ".join(layout.FRAGMENT_MODES)))
    if link and link.get("mac") and link["mac"] != "00:00:00:00:00:00":
        scope["mac"] = link["mac"].lower()
    for ai, address in enumerate(raw_dev.get("addresses") or []):
        parsed = layout.unicast(address)
        if parsed is None:
            problems.append("%s.addresses[%d]: %r is not a unicast IPv4 or global IPv6 address (the replicator's own "
                            "or virtual address that exporters send to)" % (where, ai, address))
        elif str(parsed) not in scope["addresses"]:
            scope["addresses"].append(str(parsed))
    families = set(layout.family_of(a) for a in scope["addresses"])
    if not families or 4 in families:
        families.add(4)
    scope["families"] = sorted(families)
    if raw_dev.get("addresses") is None and raw_dev.get("name") and raw_dev.get("ports"):
        scope["warnings"].append(
            "%s.addresses is not set: packets sent to %s's MAC are copied whatever their destination address; set "
            "the addresses exporters send to (the segment's own and virtual addresses)" % (where, raw_dev["name"]))
    raw_sources = raw_dev.get("sources")
    nets = []
    if raw_sources is None:
        for family in scope["families"]:
            found = resolver.subnets(raw_dev["name"], family) if link and family == 6 else \
                (resolver.subnets(raw_dev["name"]) if link else [])
            if link and not found and raw_dev.get("ports"):
                problems.append("%s.sources: %s has no %s address to take the exporters' subnet from; list the "
                                "exporters' prefixes (%s accepts any source)" % (
                                    where, raw_dev["name"], "IPv6 (global)" if family == 6 else "IPv4",
                                    layout.ANY_SOURCE6 if family == 6 else layout.ANY_SOURCE))
            nets.extend(ipaddress.ip_network(u"%s" % n) for n in found)
    else:
        start = len(problems)
        for si, prefix in enumerate(raw_sources):
            net, why = _prefix(prefix)
            if net is None:
                problems.append("%s.sources[%d]: %r is not an IPv4 or IPv6 prefix (%s)" % (where, si, prefix, why))
            elif net.version not in scope["families"]:
                problems.append("%s.sources[%d]: %s is an %s prefix but no address in %s.addresses is; add the "
                                "replicator's %s address exporters send to, or remove the prefix" % (
                                    where, si, prefix, "IPv%d" % net.version, where, "IPv%d" % net.version))
            else:
                nets.append(net)
        for family in scope["families"]:
            if raw_sources and len(problems) == start and not any(n.version == family for n in nets) and \
                    raw_dev.get("ports"):
                problems.append("%s.sources: no IPv%d prefix, so IPv%d exporters would be accepted from any "
                                "source; list them (%s accepts any source)" % (
                                    where, family, family, layout.ANY_SOURCE6 if family == 6 else layout.ANY_SOURCE))
    scope["sources"] = [str(n) for f in (4, 6) for n in ipaddress.collapse_addresses([n for n in nets
                                                                                      if n.version == f])]
    return scope


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
        dev.update(_device_scope(raw_dev, where, link, resolver, problems))
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
            _check_pools(dests, pwhere, problems)
            original = raw_port.get("original")
            # a pending forward destination still decides the original's fate: it is only waiting
            forward_families = set(layout.family_of(d["address"]) for d in dests if d["mode"] == "forward") | \
                set(layout.family_of(w["address"]) for w in waiting or [])
            has_forward = bool(forward_families)
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
            cap, burst = _rate(raw_port, pwhere, problems)
            for item in waiting or []:
                pending.append(dict(item, device=name, port=port_no))
            if dests or not waiting:  # a port whose destinations all wait gets no rule yet
                # per family, the original is dropped only where a forward destination rewrites it
                originals = dict((f, raw_port.get("original") or ("drop" if f in forward_families else "pass"))
                                 for f in layout.FAMILIES)
                dev["ports"].append({"port": port_no, "original": original, "destinations": dests,
                                     "rate_limit": cap, "burst": burst, "originals": originals})
        for pi, port in enumerate(dev["ports"]):
            for dest in port["destinations"]:
                family = layout.family_of(dest["address"]) if dest["mode"] == "forward" else None
                if family is not None and family not in dev["families"]:
                    problems.append(
                        "%s.ports[%d].destinations[%d]: a forward destination gets the packets of its own address "
                        "family (IPv%d), and %s.addresses has no IPv%d address; add the one exporters send to, or "
                        "use mode: mirror" % (where, pi, dest["index"], family, where, family))
        if 6 in dev["families"] and isinstance(params.get("priority"), int) and \
                params["priority"] >= PRIORITY_RANGE[1]:
            problems.append("priority: %d; IPv6 (%s.addresses) is copied by rules at the next priority, so use "
                            "at most %d" % (params["priority"], where, PRIORITY_RANGE[1] - 1))
        devices.append(dev)
    if problems:
        raise ValidationError(problems)
    return devices


def _rate(raw, where, problems):
    """(rate_limit, burst) in packets, the burst defaulting to a tenth of the rate (at least 10)."""
    start = len(problems)
    for field in ("rate_limit", "burst"):
        value = raw.get(field)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            problems.append("%s.%s: %r; use a whole number of packets%s above 0"
                            % (where, field, value, " per second" if field == "rate_limit" else ""))
    if raw.get("burst") is not None and raw.get("rate_limit") is None:
        problems.append("%s.burst: only meaningful with rate_limit" % where)
    if len(problems) != start or not raw.get("rate_limit"):
        return None, None
    return raw["rate_limit"], raw.get("burst") or max(10, raw["rate_limit"] // 10)


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


def _check_pools(dests, pwhere, problems):
    pools = {}
    for dest in dests:
        if dest.get("pool"):
            pools.setdefault(dest["pool"], []).append(dest)
    for name, members in sorted(pools.items()):
        classes = set(layout.destination_class(d) for d in members)
        if len(classes) > 1:
            problems.append("%s.destinations[%d].pool: pool %r mixes mirror members, forward members and forward "
                            "members that rewrite the port; make every member of a pool the same kind"
                            % (pwhere, members[-1]["index"], name))
        if len(members) > layout.POOL_MEMBERS_MAX:
            problems.append("%s.destinations[%d].pool: pool %r has %d members; at most %d share one port's load "
                            "(each must win some of the %d buckets); split the exporters over two ports"
                            % (pwhere, members[-1]["index"], name, len(members), layout.POOL_MEMBERS_MAX,
                               layout.POOL_BUCKETS))


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
            problems.append("%s.address: a forward destination needs the collector's IPv4 or IPv6 address" % where)
        elif layout.unicast(address) is None:
            problems.append("%s.address: %r is not a unicast IPv4 or global IPv6 address (the collector's)"
                            % (where, address))
        else:
            dest["address"] = str(layout.unicast(address))
        if raw.get("port") is not None:
            port = parse_port(raw.get("port"))
            if port is None:
                problems.append("%s.port: %r is not a UDP port; use 1-65535" % (where, raw.get("port")))
            dest["port"] = port
    # sources: an allow-list of exporter prefixes (a forward destination's of its collector's family only)
    sources = []
    for si, prefix in enumerate(raw.get("sources") or []):
        net, why = _prefix(prefix)
        if net is None:
            problems.append("%s.sources[%d]: %r is not an IPv4 or IPv6 prefix (%s)" % (where, si, prefix, why))
        elif mode == "forward" and dest["address"] and net.version != layout.family_of(dest["address"]):
            problems.append("%s.sources[%d]: %s is an IPv%d prefix; a forward destination gets only the packets of "
                            "its collector's address family (IPv%d)"
                            % (where, si, prefix, net.version, layout.family_of(dest["address"])))
        else:
            sources.append(net)
    # overlapping prefixes would send a packet twice; collapse them
    dest["sources"] = [str(n) for f in (4, 6) for n in ipaddress.collapse_addresses(
        [n for n in sources if n.version == f])]
    dest["rate_limit"], dest["burst"] = _rate(raw, where, problems)
    sample = raw.get("sample")
    if sample is not None and (isinstance(sample, bool) or not isinstance(sample, int)
                               or not 1 <= sample <= layout.SAMPLE_MAX):
        problems.append("%s.sample: %r; use a whole number of packets from 2 to %d (every Nth packet is "
                        "copied), or 1 or nothing for every packet" % (where, sample, layout.SAMPLE_MAX))
    elif sample and sample > 1:
        dest["sample"] = sample
    pool = raw.get("pool")
    if pool is not None:
        pool = u"%s" % pool
        if not pool or len(pool.encode("utf-8")) > layout.POOL_NAME_MAX or not all(0x20 < ord(c) < 0x7F for c in pool):
            problems.append("%s.pool: %r; use at most %d printable ASCII characters without spaces (the pool's name is "
                            "stored in the kernel with its rule)" % (where, pool, layout.POOL_NAME_MAX))
        for field, why in (("sources", "list the exporters' prefixes on the device (sources) instead"),
                           ("rate_limit", "cap the port (rate_limit on the port) instead"),
                           ("sample", "make the sampled collector a destination of its own")):
            if raw.get(field):
                problems.append("%s.%s: a pool member cannot have %s: the kernel copies to a pool member from one "
                                "rule per bucket, each with its own counters; %s" % (where, field, field, why))
        dest["pool"] = pool
    mac = raw.get("next_hop_mac")
    if mac is not None and not _MAC_RE.match(u"%s" % mac):
        problems.append("%s.next_hop_mac: %r is not a MAC address like 52:54:00:12:34:56" % (where, mac))
    name = raw.get("name") or (address if mode == "forward" else device)
    if name is not None:
        name = u"%s" % name
        if len(name.encode("utf-8")) > layout.NAME_MAX or not all(0x20 < ord(c) < 0x7F for c in name):
            problems.append("%s.name: %r; use at most %d printable ASCII characters without spaces (the name is "
                            "stored in the kernel with the rule)" % (where, name, layout.NAME_MAX))
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
    if device == ingress:
        problems.append("%s.device: %s is the ingress interface; copies would return to the exporters' segment"
                        % (where, device))
        return None
    if mode == "forward" and mac is None:
        hop = route["gateway"] if route and route["device"] == device and route["gateway"] else dest["address"]
        mac = resolver.neighbour(device, hop)
        if mac is None:
            reason = "next hop %s on %s did not answer %s" % (
                hop, device, "neighbour discovery" if ":" in hop else "ARP")
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
    if dest.get("sample"):
        out["sample"] = dest["sample"]
    if dest.get("pool"):
        out["pool"] = dest["pool"]
    return out
