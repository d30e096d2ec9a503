# -*- coding: utf-8 -*-
# Copyright: (c) 2026, logfwdr developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What people read: equivalent `tc` command lines and the before/after text."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


from ansible_collections.netops.logfwdr.plugins.module_utils.tc import layout, model, planner


def _ht(htid):
    return "800" if htid == layout.ROOT else "%x" % htid


def _handle(handle):
    if isinstance(handle, tuple):
        return "%s::%x" % (_ht(handle[0]), handle[1])
    bucket = layout.bucket_of(handle)
    return "%x:%s:%x" % (layout.htid_of(handle), "%x" % bucket if bucket else "", layout.nodeid_of(handle))


def _match(keys):
    words = []
    mac = layout.mac_of_keys(keys)
    if mac:
        words.append("match ether dst %s" % mac)
    for mask, value, off in keys:
        if mac and off in (layout.OFF_ETH_DST_HI, layout.OFF_ETH_DST_LO):
            continue
        words.append("match u32 0x%08x 0x%08x at %d" % (value & mask, mask, off))
    return " ".join(words)


def command(op, priority, chain, link_names):
    family = op.get("family", 4)
    head = "tc filter %%s dev %s ingress%s protocol %s prio %d" % (
        op["dev"], " chain %d" % chain if chain else "", "ipv6" if family == 6 else "ip",
        layout.family_priority(priority, family))
    kind = op["op"]
    if kind == "qdisc_add":
        return "tc qdisc add dev %s ingress" % op["dev"]
    if kind == "qdisc_del":
        return "tc qdisc del dev %s ingress" % op["dev"]
    if kind == "ht_add":
        return head % "add" + " handle %x: u32 divisor %d" % (op["htid"], op.get("divisor", 1))
    if kind == "ht_del":
        return head % "del" + " handle %x: u32" % op["htid"]
    if kind == "tp_del":
        return head % "del"
    if kind == "node_del":
        return head % "del" + " handle %s u32" % _handle(op["handle"])
    spec = op["spec"]
    handle = op["handle"]
    parts = [head % ("add" if kind == "node_add" else "replace"), "handle %s u32" % _handle(handle)]
    ht = handle[0] if isinstance(handle, tuple) else layout.htid_of(handle)
    bucket = 0 if isinstance(handle, tuple) else layout.bucket_of(handle)
    parts.append("ht %s:%s" % (_ht(ht), "%x:" % bucket if bucket else ""))
    parts.append(_match(spec["keys"]))
    if spec.get("link"):
        parts.append("link %x:" % layout.htid_of(spec["link"]))
    if spec.get("hash"):
        parts.append("hashkey mask 0x%08x at %d" % tuple(spec["hash"]))
    parts.extend(layout.action_text(a, link_names) for a in spec.get("actions", []))
    return " ".join(parts)


def public_have(name, have, link_names):
    """One device's module-owned state in the shape tc_mirror accepts."""
    ports = []
    for port_no, hp in sorted(have["ports"].items()):
        family = have.get("family", 4)
        dests = [layout.have_destination(sorted(nodes, key=lambda n: n["handle"]), link_names, family)
                 for _name, nodes in sorted(hp["dests"].items())]
        for pool_name, pool in sorted(hp.get("pools", {}).items()):
            dests.extend(dict(layout.have_destination(sorted(nodes, key=lambda n: n["handle"]), link_names, family),
                              pool=pool_name) for _name, nodes in sorted(pool["members"].items()))
        dests.sort(key=lambda d: d["name"])
        port = {"port": port_no, "original": hp["original"], "destinations": dests}
        if hp["gate"]:
            police = hp["gate"]["actions"][0]
            port.update(rate_limit=police.get("rate"), burst=police.get("burst"))
        ports.append(port)
    out = {"name": name, "ports": ports}
    if ports:
        scope = planner.device_scope(have)
        out["addresses"] = scope["addresses"]
        out["sources"] = scope["sources"]
        out["fragments"] = scope["fragments"]
    return out


_SUMMED = ("original_dropped", "capped", "refused")


def merge_families(four, six):
    """One device's public shape from its IPv4 and IPv6 instances: ports and destinations joined by port number
    and name, addresses and sources listed IPv4 first; counters (tc_mirror_info) are summed."""
    if not six["ports"]:
        return four
    if not four["ports"]:
        return six
    out = dict(four, addresses=four.get("addresses", []) + six.get("addresses", []),
               sources=four.get("sources", []) + six.get("sources", []))
    ports = dict((p["port"], dict(p, destinations=[dict(d) for d in p["destinations"]])) for p in four["ports"])
    for port in six["ports"]:
        mine = ports.get(port["port"])
        if mine is None:
            ports[port["port"]] = port
            continue
        for key in _SUMMED:
            if key in port:
                mine[key] = mine.get(key, 0) + port[key]
        dests = dict((d["name"], d) for d in mine["destinations"])
        for dest in port["destinations"]:
            have = dests.get(dest["name"])
            if have is None:
                mine["destinations"].append(dest)
                continue
            if dest.get("sources"):
                have["sources"] = have.get("sources", []) + dest["sources"]
            if "counters" in dest:
                have["counters"] = dict((k, have.get("counters", {}).get(k, 0) + v) for k, v in dest["counters"].items())
        mine["destinations"].sort(key=lambda d: d["name"])
    out["ports"] = [ports[p] for p in sorted(ports)]
    return out


def public_want(dev):
    ports = []
    for p in sorted(dev["ports"], key=lambda p: p["port"]):
        port = {"port": p["port"], "original": p["original"],
                "destinations": sorted((model.public_destination(d) for d in p["destinations"]),
                                       key=lambda d: d["name"])}
        if p.get("rate_limit"):
            port.update(rate_limit=p["rate_limit"], burst=p["burst"])
        ports.append(port)
    out = {"name": dev["name"], "ports": ports}
    if ports:
        out["addresses"] = list(dev.get("addresses") or [])
        out["sources"] = list(dev.get("sources") or [layout.ANY_SOURCE])
        out["fragments"] = dev.get("fragments") or "first"
    return out


def describe(devices):
    """Devices in public shape -> lines a person reads in a diff."""
    lines = []
    for dev in sorted(devices, key=lambda d: d["name"]):
        if not dev["ports"]:
            continue
        lines.append("%s:  accepts to %s from %s%s" % (
            dev["name"], ",".join(dev.get("addresses") or []) or "any address",
            ",".join(dev.get("sources") or [layout.ANY_SOURCE]),
            "  fragments=reassemble" if dev.get("fragments") == "reassemble" else ""))
        for port in dev["ports"]:
            label = model.PORT_NAMES.get(port["port"])
            suffix = " (%s)" % label if label else ""
            cap = "  cap=%d/s burst=%d" % (port["rate_limit"], port["burst"]) if port.get("rate_limit") else ""
            lines.append("  udp/%d%s  original=%s%s" % (port["port"], suffix, port["original"], cap))
            for dest in port["destinations"]:
                if dest["mode"] == "forward":
                    target = "forward %s%s via %s next-hop %s" % (
                        dest["address"], ":%d" % dest["port"] if dest.get("port") else "", dest["device"],
                        dest.get("next_hop_mac"))
                else:
                    target = "mirror out of %s" % dest["device"]
                extra = ""
                if dest.get("sources"):
                    extra += " sources=%s" % ",".join(dest["sources"])
                if dest.get("rate_limit"):
                    extra += " rate_limit=%d/s burst=%d" % (dest["rate_limit"], dest["burst"])
                if dest.get("sample"):
                    extra += " sample=1/%d" % dest["sample"]
                if dest.get("pool"):
                    extra += " pool=%s" % dest["pool"]
                lines.append("    - %s: %s%s" % (dest["name"], target, extra))
    return "\n".join(lines) + ("\n" if lines else "")
