# -*- coding: utf-8 -*-
# Copyright: (c) 2026, logfwdr developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the kernel holds (have) against the desired state (want) -> operations.

Pure functions over plain dicts, so unit tests reach them without a kernel.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.netops.logfwdr.plugins.module_utils.tc import model

ROOT = "root"  # placeholder for the classifier's root hash table id


def htid_of(handle):
    return (handle >> 20) & 0xFFF


def nodeid_of(handle):
    return handle & 0xFFF


def node_handle(htid, nodeid):
    return (htid << 20) | (nodeid & 0xFFF)


def class_of_nodeid(nodeid):
    for cls, (low, high) in model.NODE_RANGES.items():
        if low <= nodeid <= high:
            return cls
    return None


# ---- canonical forms: the same shape for decoded and desired objects -----

_DEFAULT_CONTROL = {"gact": 2, "mirred": -1, "police": -1}
_DEFAULT_CONFORM = 3  # pipe: a destination's police lets conforming packets on to its mirred


def canon_action(action):
    kind = action["kind"]
    control = action.get("control", _DEFAULT_CONTROL.get(kind, 3))
    if kind == "mirred":
        cookie = action.get("cookie")
        return (kind, control, action.get("eaction"), action.get("ifindex"), bytes(cookie) if cookie else None)
    if kind == "skbmod":
        return (kind, control, (action.get("dmac") or "").lower(), (action.get("smac") or "").lower())
    if kind == "nat":
        return (kind, control, action.get("new"), action.get("old", "0.0.0.0"),
                action.get("mask", "255.255.255.255"), bool(action.get("egress", False)))
    if kind == "pedit":
        return (kind, control, action.get("address"), action.get("port") or None)
    if kind == "csum":
        return (kind, control, action.get("update_flags", 16))
    if kind == "police":
        return (kind, control, action.get("conform", _DEFAULT_CONFORM), action.get("rate"), action.get("burst"),
                bytes(action.get("cookie") or b"") or None)
    if kind == "gact":
        return (kind, control, bytes(action.get("cookie") or b"") or None)
    return (kind, control)


def canon_node(node):
    keys = tuple((m, v & m, o) for m, v, o in node["keys"])
    return (keys, node.get("link"), tuple(canon_action(a) for a in node.get("actions", [])))


def cookie_name(node):
    """The destination name in a marked mirred cookie, or None."""
    for action in node.get("actions", []):
        cookie = bytes(action.get("cookie") or b"")
        if action["kind"] == "mirred" and cookie.startswith(model.MARK):
            try:
                return cookie[len(model.MARK):].decode("ascii")
            except UnicodeDecodeError:
                return None
    return None


# ---- have: the module's part of one device's ingress filters --------------

def parse_have(filters, priority, chain):
    """Decoded filters of one device -> the module-owned structure.

    filters: codec.decode_filter() results for every filter on the device's
    ingress (any priority, any chain).  Only marked objects (see model) are
    the module's; the rest at its priority and chain is listed in "foreign".
    """
    have = {"used_htids": set(), "root": None, "ports": {}, "stray_nodes": [], "stray_hts": [],
            "foreign": [], "unknown_hts": [], "tp": False, "root_ids": set()}
    at = [f for f in filters if f and f["prio"] == priority and f["chain"] == chain]
    for f in filters:
        if f and f.get("kind") == "ht":
            have["used_htids"].add(htid_of(f["handle"]) & 0x7FF)
    have["tp"] = bool(at)
    have["foreign"] = [f for f in at if f["kind"] == "other" and f["handle"]]
    hts = [htid_of(f["handle"]) for f in at if f["kind"] == "ht"]
    roots = [h for h in hts if h & 0x800]
    have["root"] = roots[0] if roots else None
    nodes = [f for f in at if f["kind"] == "node"]
    tables = {}
    for node in nodes:
        ht = htid_of(node["handle"])
        if ht == have["root"]:
            have["root_ids"].add(nodeid_of(node["handle"]))
        else:
            tables.setdefault(ht, []).append(node)
    ours = set(ht for ht, members in tables.items() if any(model.is_marked(n) for n in members))
    for ht, members in sorted(tables.items()):
        have["foreign"].extend(n for n in members if ht not in ours or not model.is_marked(n))
    dispatch = {}
    for node in nodes:
        if htid_of(node["handle"]) != have["root"]:
            continue
        target = htid_of(node["link"]) if node.get("link") else None
        if target in ours:
            dispatch.setdefault(target, []).append(node)
        elif model.is_marked(node):
            have["stray_nodes"].append(node)  # ours, but steering nowhere
        else:
            have["foreign"].append(node)
    for ht in sorted(ours):
        steering = dispatch.get(ht, [])
        ports = set(model.port_of_keys(n["keys"]) for n in steering)
        port = ports.pop() if len(ports) == 1 else None
        if port is None or port in have["ports"]:
            # unsteered (a run stopped half-way) or inconsistent: ours, to remove
            have["stray_nodes"].extend(steering)
            have["stray_nodes"].extend(n for n in tables[ht] if model.is_marked(n))
            have["stray_hts"].append(ht)
            continue
        hp = {"dispatch": sorted(steering, key=lambda n: n["handle"]), "ht": ht,
              "original": "drop" if any(a["kind"] == "gact" for a in steering[0]["actions"]) else "pass",
              "dests": {}, "nodes": [], "gate": None}
        for node in tables[ht]:
            if not model.is_marked(node):
                continue
            if nodeid_of(node["handle"]) == model.NODE_RANGES[model.CLASS_GATE][0] and \
                    any(bytes(a.get("cookie") or b"") == model.GATE_COOKIE for a in node["actions"]):
                hp["gate"] = node
                continue
            hp["nodes"].append(node)
            name = cookie_name(node)
            if name is not None:
                hp["dests"].setdefault(name, []).append(node)
        have["ports"][port] = hp
    linked = set(htid_of(n["link"]) for n in nodes if n.get("link"))
    have["unknown_hts"] = [h for h in hts if h != have["root"] and h not in tables and h not in linked]
    return have


def device_scope(have):
    """The accepted destination addresses, exporter prefixes and MAC read back from the dispatch nodes."""
    addresses, sources, macs = set(), set(), set()
    for hp in have["ports"].values():
        for node in hp["dispatch"]:
            address = model.address_of_keys(node["keys"])
            if address:
                addresses.add(address)
            sources.add(model.source_of_keys(node["keys"]) or model.ANY_SOURCE)
            macs.add(model.mac_of_keys(node["keys"]))
    return {"addresses": sorted(addresses, key=model.ip_sort_key),
            "sources": sorted(sources, key=model.ip_sort_key), "macs": macs}


def refused(hp):
    """Packets to the port that the dispatch match refused (another address, source or MAC), from u32's
    per-key counters; None when the kernel keeps none.  Every packet to the port passes the port key of the
    port's first dispatch node; those that matched a dispatch node passed all of its keys."""
    nodes = hp["dispatch"]
    if not nodes or any("pcnt" not in n for n in nodes):
        return None
    first = nodes[0]
    offsets = [off for _m, _v, off in first["keys"]]
    if model.OFF_PORTS not in offsets:
        return None
    offered = first["pcnt"]["kcnts"][offsets.index(model.OFF_PORTS)]
    return max(0, offered - sum(n["pcnt"]["kcnts"][-1] for n in nodes if n["pcnt"]["kcnts"]))


def describe_foreign(node):
    """A foreign object, as a person finds it in `tc filter show`."""
    if node["kind"] == "other":
        return "%s filter handle %#x" % (node.get("classifier"), node["handle"])
    words = ["u32 handle %x::%x" % (htid_of(node["handle"]), nodeid_of(node["handle"]))]
    if node.get("link"):
        words.append("link %x:" % htid_of(node["link"]))
    words.extend("action %s" % a["kind"] for a in node.get("actions", []))
    return " ".join(words)


def have_destination(nodes, link_names):
    """Module-owned nodes of one destination -> the public (input) shape."""
    first = nodes[0]
    acts = dict((a["kind"], a) for a in first["actions"])
    mirred = acts.get("mirred", {})
    out = {"name": cookie_name(first), "device": link_names.get(mirred.get("ifindex"), mirred.get("ifindex"))}
    if "skbmod" in acts:
        out["mode"] = "forward"
        out["address"] = acts.get("pedit", {}).get("address")
        out["next_hop_mac"] = acts.get("skbmod", {}).get("dmac")
        if acts.get("pedit", {}).get("port"):
            out["port"] = acts["pedit"]["port"]
    else:
        out["mode"] = "mirror"
    sources = [model.source_of_keys(n["keys"]) for n in nodes]
    if any(sources):
        out["sources"] = sorted(s for s in sources if s)
    if "police" in acts:
        out["rate_limit"] = acts["police"]["rate"]
        out["burst"] = acts["police"]["burst"]
    return out


# ---- planning -------------------------------------------------------------

def _alloc(used, low, high):
    for candidate in range(low, high + 1):
        if candidate not in used:
            used.add(candidate)
            return candidate
    raise model.ValidationError(["no free u32 id left in %#x-%#x" % (low, high)])


def plan_device(dev_name, ifindex, want_ports, have, has_qdisc, scope=None):
    """Operations that turn `have` into `want_ports` on one device.

    want_ports: list of validated port dicts (model.validate), [] to remove all.
    scope: the device's mac, addresses and sources (model.validate's device dict).
    Order: new things are complete before traffic is steered to them; things
    are unlinked from traffic before they are deleted.  Foreign objects
    (have["foreign"]) are never touched: the caller refuses to plan for a
    device that has any.
    """
    ops = []
    scope = scope or {}

    def op(kind, **kw):
        kw.update(op=kind, dev=dev_name, ifindex=ifindex)
        ops.append(kw)

    if want_ports and not has_qdisc:
        op("qdisc_add")
    used_hts = set(have["used_htids"])
    root = have["root"] if have["root"] is not None else ROOT
    used_dispatch = set(have.get("root_ids", ()))
    wanted = set(p["port"] for p in want_ports)

    for port in want_ports:
        hp = have["ports"].get(port["port"])
        if hp is None:
            htid = _alloc(used_hts, *model.HT_RANGE)
            op("ht_add", htid=htid, port=port["port"])
            existing = []
        else:
            htid = hp["ht"]
            existing = hp["nodes"] + ([hp["gate"]] if hp["gate"] else [])
        used_nodes = set(nodeid_of(n["handle"]) for n in existing)
        keep = set()
        adds, replaces, deletes = [], [], []
        gate = model.gate_node(port)
        old_gate = hp["gate"] if hp else None
        if gate is not None:
            gate_handle = node_handle(htid, model.NODE_RANGES[model.CLASS_GATE][0])
            if old_gate is None:
                adds.append(dict(handle=gate_handle, spec=gate, dest=None))
            else:
                keep.add(old_gate["handle"])
                if canon_node(old_gate) != canon_node(gate):
                    replaces.append(dict(handle=old_gate["handle"], spec=gate, old=old_gate, dest=None))
        for dest in port["destinations"]:
            specs = model.destination_nodes(dest)
            cls = model.destination_class(dest)
            old = sorted(hp["dests"].get(dest["name"], []) if hp else [], key=lambda n: n["handle"])
            if old and any(class_of_nodeid(nodeid_of(n["handle"])) != cls for n in old):
                old_same = []  # class changed: fresh ids in the new range, old nodes go
            else:
                old_same = old
            for i, spec in enumerate(specs):
                node = old_same[i] if i < len(old_same) else None
                if node is not None and canon_node(node)[0] != canon_node(spec)[0]:
                    node = None  # cls_u32 keeps a node's selector on replace: new keys need a new node
                if node is not None:
                    keep.add(node["handle"])
                    if canon_node(node) != canon_node(spec):
                        replaces.append(dict(handle=node["handle"], spec=spec, old=node, dest=dest["name"]))
                else:
                    nodeid = _alloc(used_nodes, *model.NODE_RANGES[cls])
                    adds.append(dict(handle=node_handle(htid, nodeid), spec=spec, dest=dest["name"]))
        for node in existing:
            if node["handle"] not in keep:
                deletes.append(dict(handle=node["handle"], old=node, dest=cookie_name(node)))
        # the gate goes in before the copies it guards and out after them
        adds.sort(key=lambda item: item["dest"] is not None)
        deletes.sort(key=lambda item: item["dest"] is None)
        for item in adds:
            op("node_add", port=port["port"], **item)
        for item in replaces:
            op("node_replace", port=port["port"], **item)
        for item in deletes:
            op("node_del", port=port["port"], **item)
        # dispatch: a node's selector cannot change in place, so new selectors are added before old ones go
        old_dispatch = dict((canon_node(n)[0], n) for n in (hp["dispatch"] if hp else []))
        kept = set()
        for spec in model.dispatch_nodes(scope, port):
            spec["link"] = htid << 20
            node = old_dispatch.get(canon_node(spec)[0])
            if node is None:
                nodeid = _alloc(used_dispatch, 1, 0xFFF)
                op("node_add", port=port["port"], handle=(root, nodeid), spec=spec, dest=None)
                continue
            kept.add(node["handle"])
            if canon_node(node) != canon_node(spec):
                op("node_replace", port=port["port"], handle=node["handle"], spec=spec, old=node, dest=None)
        for node in (hp["dispatch"] if hp else []):
            if node["handle"] not in kept:
                op("node_del", port=port["port"], handle=node["handle"], old=node, dest=None)

    for port_no, hp in sorted(have["ports"].items()):
        if port_no in wanted:
            continue
        for node in hp["dispatch"]:
            op("node_del", port=port_no, handle=node["handle"], old=node, dest=None)
        for node in hp["nodes"]:
            op("node_del", port=port_no, handle=node["handle"], old=node, dest=cookie_name(node))
        if hp["gate"]:
            op("node_del", port=port_no, handle=hp["gate"]["handle"], old=hp["gate"], dest=None)
        op("ht_del", htid=hp["ht"], port=port_no)
    for node in have["stray_nodes"]:
        op("node_del", port=None, handle=node["handle"], old=node, dest=None)
    for htid in have["stray_hts"]:
        op("ht_del", htid=htid, port=None)
    if not want_ports and have["tp"] and not have["foreign"] and not have["unknown_hts"]:
        op("tp_del")
    return ops


def inverse(op):
    """The operation that undoes `op` (for rollback), or None."""
    kind = op["op"]
    base = dict((k, v) for k, v in op.items() if k not in ("op", "spec", "old"))
    if kind == "qdisc_add":
        return dict(base, op="qdisc_del")
    if kind == "ht_add":
        return dict(base, op="ht_del")
    if kind == "ht_del":
        return dict(base, op="ht_add")
    if kind == "node_add":
        return dict(base, op="node_del", old=op["spec"])
    if kind == "node_del":
        return dict(base, op="node_add", spec=op["old"])
    if kind == "node_replace":
        return dict(base, op="node_replace", spec=op["old"], old=op["spec"])
    return None
