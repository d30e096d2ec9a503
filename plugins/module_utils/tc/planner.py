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
        return (kind, control, action.get("rate"), action.get("burst"))
    return (kind, control)


def canon_node(node):
    keys = tuple((m, v & m, o) for m, v, o in node["keys"])
    return (keys, node.get("link"), tuple(canon_action(a) for a in node.get("actions", [])))


def cookie_name(node):
    for action in node.get("actions", []):
        if action["kind"] == "mirred" and action.get("cookie"):
            try:
                return action["cookie"].decode("ascii")
            except UnicodeDecodeError:
                return None
    return None


# ---- have: the module's part of one device's ingress filters --------------

def parse_have(filters, priority, chain):
    """Decoded filters of one device -> the module-owned structure.

    filters: codec.decode_filter() results for every filter on the device's
    ingress (any priority, any chain).
    """
    have = {"used_htids": set(), "root": None, "ports": {}, "stray_nodes": [], "stray_hts": [],
            "tp": False}
    owned = [f for f in filters if f and f["prio"] == priority and f["chain"] == chain]
    for f in filters:
        if f and f.get("kind") == "ht":
            have["used_htids"].add(htid_of(f["handle"]) & 0x7FF)
    have["tp"] = bool(owned)
    hts = [htid_of(f["handle"]) for f in owned if f["kind"] == "ht"]
    roots = [h for h in hts if h & 0x800]
    have["root"] = roots[0] if roots else None
    nodes = [f for f in owned if f["kind"] == "node"]
    linked = {}
    for node in nodes:
        if htid_of(node["handle"]) == have["root"] and node.get("link"):
            port = model.port_of_keys(node["keys"])
            if port is None or port in have["ports"]:
                have["stray_nodes"].append(node)
                continue
            original = "drop" if any(a["kind"] == "gact" for a in node["actions"]) else "pass"
            have["ports"][port] = {"dispatch": node, "ht": htid_of(node["link"]), "original": original,
                                   "dests": {}, "nodes": []}
            linked[htid_of(node["link"])] = port
    for node in nodes:
        ht = htid_of(node["handle"])
        if ht == have["root"] and node.get("link") and node in [p["dispatch"] for p in have["ports"].values()]:
            continue
        if ht in linked:
            port = have["ports"][linked[ht]]
            port["nodes"].append(node)
            name = cookie_name(node)
            if name is not None:
                port["dests"].setdefault(name, []).append(node)
            continue
        if node not in have["stray_nodes"]:
            have["stray_nodes"].append(node)
    have["stray_hts"] = [h for h in hts if h not in linked and h != have["root"]]
    return have


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


def plan_device(dev_name, ifindex, want_ports, have, has_qdisc):
    """Operations that turn `have` into `want_ports` on one device.

    want_ports: list of validated port dicts (model.validate), [] to remove all.
    Order: new things are complete before traffic is steered to them; things
    are unlinked from traffic before they are deleted.
    """
    ops = []

    def op(kind, **kw):
        kw.update(op=kind, dev=dev_name, ifindex=ifindex)
        ops.append(kw)

    if want_ports and not has_qdisc:
        op("qdisc_add")
    used_hts = set(have["used_htids"])
    root = have["root"] if have["root"] is not None else ROOT
    used_dispatch = set(nodeid_of(p["dispatch"]["handle"]) for p in have["ports"].values())
    used_dispatch.update(nodeid_of(n["handle"]) for n in have["stray_nodes"] if htid_of(n["handle"]) == root)
    wanted = set(p["port"] for p in want_ports)

    for port in want_ports:
        hp = have["ports"].get(port["port"])
        if hp is None:
            htid = _alloc(used_hts, *model.HT_RANGE)
            op("ht_add", htid=htid, port=port["port"])
            existing = []
        else:
            htid = hp["ht"]
            existing = hp["nodes"]
        used_nodes = set(nodeid_of(n["handle"]) for n in existing)
        keep = set()
        adds, replaces, deletes = [], [], []
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
        for item in adds:
            op("node_add", port=port["port"], **item)
        for item in replaces:
            op("node_replace", port=port["port"], **item)
        for item in deletes:
            op("node_del", port=port["port"], **item)
        dispatch = model.dispatch_node(port)
        dispatch["link"] = htid << 20
        if hp is None:
            nodeid = _alloc(used_dispatch, 1, 0xFFF)
            op("node_add", port=port["port"], handle=(root, nodeid), spec=dispatch, dest=None)
        elif canon_node(hp["dispatch"]) != canon_node(dispatch):
            op("node_replace", port=port["port"], handle=hp["dispatch"]["handle"], spec=dispatch,
               old=hp["dispatch"], dest=None)

    for port_no, hp in sorted(have["ports"].items()):
        if port_no in wanted:
            continue
        op("node_del", port=port_no, handle=hp["dispatch"]["handle"], old=hp["dispatch"], dest=None)
        for node in hp["nodes"]:
            op("node_del", port=port_no, handle=node["handle"], old=node, dest=cookie_name(node))
        op("ht_del", htid=hp["ht"], port=port_no)
    for node in have["stray_nodes"]:
        op("node_del", port=None, handle=node["handle"], old=node, dest=None)
    for htid in have["stray_hts"]:
        op("ht_del", htid=htid, port=None)
    if not want_ports and have["tp"]:
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
