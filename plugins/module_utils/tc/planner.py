# -*- coding: utf-8 -*-
# Copyright: (c) 2026, logfwdr developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the kernel holds (have) against the desired state (want) -> operations.

The shapes it reads and writes are layout.py's.

Pure functions over plain dicts, so unit tests reach them without a kernel.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.netops.logfwdr.plugins.module_utils.tc import layout, model


# ---- have: the module's part of one device's ingress filters --------------

def parse_have(filters, priority, chain):
    """Decoded filters of one device -> the module-owned structure.

    filters: codec.decode_filter() results for every filter on the device's
    ingress (any priority, any chain).  Only marked objects (see model) are
    the module's; the rest at its priority and chain is listed in "foreign".
    """
    have = {"used_htids": set(), "root": None, "ports": {}, "stray_nodes": [], "stray_hts": [],
            "foreign": [], "unknown_hts": [], "tp": False, "root_ids": set(), "frag": {}}
    at = [f for f in filters if f and f["prio"] == priority and f["chain"] == chain]
    have["family"] = 6 if any(f.get("protocol") == layout.ETH_P[6] for f in at) else 4
    for f in filters:
        if f and f.get("kind") == "ht":
            have["used_htids"].add(layout.htid_of(f["handle"]) & 0x7FF)
    have["tp"] = bool(at)
    have["foreign"] = [f for f in at if f["kind"] == "other" and f["handle"]]
    hts = [layout.htid_of(f["handle"]) for f in at if f["kind"] == "ht"]
    have["root"] = layout.root_htid(at, priority, chain)
    nodes = [f for f in at if f["kind"] == "node"]
    tables = {}
    for node in nodes:
        ht = layout.htid_of(node["handle"])
        if ht == have["root"]:
            have["root_ids"].add(layout.nodeid_of(node["handle"]))
        else:
            tables.setdefault(ht, []).append(node)
    # pool tables: named by their marker node, linked from a node (without actions) in a port table
    pool_tables = dict((ht, layout.pool_name(n)) for ht, members in tables.items() for n in members
                       if layout.nodeid_of(n["handle"]) == layout.POOL_MARKER and layout.is_marked(n)
                       and layout.pool_name(n) is not None)

    def pool_link(node):
        return bool(node.get("link")) and layout.htid_of(node["link"]) in pool_tables and not node.get("actions")

    ours = set(ht for ht, members in tables.items() if any(layout.is_marked(n) or pool_link(n) for n in members))
    for ht, members in sorted(tables.items()):
        have["foreign"].extend(n for n in members if ht not in ours or not (layout.is_marked(n) or pool_link(n)))
    pool_links = dict((layout.htid_of(n["link"]), n) for ht in ours for n in tables[ht] if pool_link(n))
    dispatch = {}
    for node in nodes:
        if layout.htid_of(node["handle"]) != have["root"]:
            continue
        target = layout.htid_of(node["link"]) if node.get("link") else None
        if target is None and layout.is_frag_node(node) and layout.nodeid_of(node["handle"]) in layout.FRAG_NODE_IDS:
            have["frag"][layout.nodeid_of(node["handle"])] = node
        elif target in ours:
            dispatch.setdefault(target, []).append(node)
        elif layout.is_marked(node):
            have["stray_nodes"].append(node)  # ours, but steering nowhere
        else:
            have["foreign"].append(node)
    for ht in sorted(ours):
        if ht in pool_tables and ht in pool_links:
            continue  # taken with the port whose table links to it
        steering = dispatch.get(ht, [])
        ports = set(layout.port_of_keys(n["keys"]) for n in steering)
        port = ports.pop() if len(ports) == 1 else None
        if port is None or port in have["ports"]:
            # unsteered (a run stopped half-way) or inconsistent: ours, to remove
            have["stray_nodes"].extend(steering)
            have["stray_nodes"].extend(n for n in tables[ht] if layout.is_marked(n) or pool_link(n))
            have["stray_hts"].append(ht)
            for node in tables[ht]:
                target = layout.htid_of(node["link"]) if node.get("link") else None
                if pool_links.get(target) is node:
                    have["stray_nodes"].extend(n for n in tables.get(target, []) if layout.is_marked(n))
                    have["stray_hts"].append(target)
            continue
        hp = {"dispatch": sorted(steering, key=lambda n: n["handle"]), "ht": ht,
              "original": "drop" if any(a["kind"] == "gact" for a in steering[0]["actions"]) else "pass",
              "dests": {}, "nodes": [], "gate": None, "pools": {}}
        for node in tables[ht]:
            target = layout.htid_of(node["link"]) if node.get("link") else None
            if target is not None and pool_links.get(target) is node:
                pool = {"link": node, "ht": target, "buckets": {}, "nodes": [], "members": {}, "marker": None}
                for member in tables.get(target, []):
                    if not layout.is_marked(member):
                        continue
                    pool["nodes"].append(member)
                    if layout.nodeid_of(member["handle"]) == layout.POOL_MARKER and layout.pool_name(member):
                        pool["marker"] = member
                    elif layout.nodeid_of(member["handle"]) == layout.POOL_NODE:
                        pool["buckets"][layout.bucket_of(member["handle"])] = member
                    name = layout.cookie_name(member)
                    if name is not None:
                        pool["members"].setdefault(name, []).append(member)
                hp["pools"][pool_tables[target]] = pool
                continue
            if not layout.is_marked(node):
                continue
            if layout.nodeid_of(node["handle"]) == layout.NODE_RANGES[layout.CLASS_GATE][0] and \
                    any(bytes(a.get("cookie") or b"") == layout.GATE_COOKIE for a in node["actions"]):
                hp["gate"] = node
                continue
            hp["nodes"].append(node)
            name = layout.cookie_name(node)
            if name is not None:
                hp["dests"].setdefault(name, []).append(node)
        have["ports"][port] = hp
    linked = set(layout.htid_of(n["link"]) for n in nodes if n.get("link"))
    have["unknown_hts"] = [h for h in hts if h != have["root"] and h not in tables and h not in linked]
    return have


def device_scope(have):
    """The accepted destination addresses, exporter prefixes and MAC read back from the dispatch nodes."""
    addresses, sources, macs = set(), set(), set()
    for hp in have["ports"].values():
        for node in hp["dispatch"]:
            address = layout.address_of_keys(node["keys"])
            if address:
                addresses.add(address)
            sources.add(layout.source_of_keys(node["keys"]) or layout.ANY_SOURCE)
            macs.add(layout.mac_of_keys(node["keys"]))
    return {"addresses": sorted(addresses, key=layout.ip_sort_key),
            "sources": sorted(sources, key=layout.ip_sort_key), "macs": macs,
            "fragments": "reassemble" if have.get("frag") else "first"}


def refused(hp):
    """Packets to the port that the dispatch match refused (another address, source or MAC), from u32's
    per-key counters; None when the kernel keeps none.  Every packet to the port passes the port key of the
    port's first dispatch node; those that matched a dispatch node passed all of its keys."""
    nodes = hp["dispatch"]
    if not nodes or any("pcnt" not in n for n in nodes):
        return None
    first = nodes[0]
    at = [i for i, (mask, _v, off) in enumerate(first["keys"])
          if off in (layout.OFF_PORTS, layout.OFF6_PORTS) and mask == 0x0000FFFF]
    if not at:
        return None
    offered = first["pcnt"]["kcnts"][at[0]]
    return max(0, offered - sum(n["pcnt"]["kcnts"][-1] for n in nodes if n["pcnt"]["kcnts"]))


def describe_foreign(node):
    """A foreign object, as a person finds it in `tc filter show`."""
    if node["kind"] == "other":
        return "%s filter handle %#x" % (node.get("classifier"), node["handle"])
    words = ["u32 handle %x::%x" % (layout.htid_of(node["handle"]), layout.nodeid_of(node["handle"]))]
    if node.get("link"):
        words.append("link %x:" % layout.htid_of(node["link"]))
    words.extend("action %s" % a["kind"] for a in node.get("actions", []))
    return " ".join(words)


# ---- planning -------------------------------------------------------------

def _alloc(used, low, high):
    for candidate in range(low, high + 1):
        if candidate not in used:
            used.add(candidate)
            return candidate
    raise model.ValidationError(["no free u32 id left in %#x-%#x" % (low, high)])


def _pool_teardown(pool):
    """The bucket nodes and then the table of a pool whose link node is already gone."""
    items = [("node_del", dict(handle=n["handle"], old=n, dest=layout.cookie_name(n)))
             for n in sorted(pool["nodes"], key=lambda n: n["handle"])]
    return items + [("ht_del", dict(htid=pool["ht"], divisor=layout.POOL_BUCKETS))]


def _plan_pools(port, hp, htid, used_hts, used_nodes, adds, replaces, deletes, family=4):
    """The port's pools: (ops before the port table's node changes, ops after them); the link nodes go into
    adds, replaces and deletes with the port table's other nodes."""
    pools = {}
    for dest in port["destinations"]:
        if dest.get("pool"):
            pools.setdefault(dest["pool"], []).append(dest)
    have_pools = dict(hp["pools"]) if hp else {}
    pre, post = [], []
    for name in sorted(pools):
        members = pools[name]
        cls = layout.destination_class(members[0])
        old = have_pools.pop(name, None)
        if old is not None and layout.class_of_nodeid(layout.nodeid_of(old["link"]["handle"])) != cls:
            # mirror <-> forward: a new pool in the other node range, the old one goes after it
            deletes.append(dict(handle=old["link"]["handle"], old=old["link"], dest=None))
            post.extend(_pool_teardown(old))
            old = None
        chosen = layout.pool_buckets(members)
        if old is None:
            pool_ht = _alloc(used_hts, *layout.HT_RANGE)
            pre.append(("ht_add", dict(htid=pool_ht, divisor=layout.POOL_BUCKETS)))
            for bucket, member in enumerate(chosen):
                pre.append(("node_add", dict(handle=layout.node_handle(pool_ht, layout.POOL_NODE, bucket),
                                             spec=layout.pool_bucket_node(member), dest=member["name"])))
            pre.append(("node_add", dict(handle=layout.node_handle(pool_ht, layout.POOL_MARKER, 0),
                                         spec=layout.pool_marker_node(name), dest=None)))
            nodeid = _alloc(used_nodes, *layout.NODE_RANGES[cls])
            adds.append(dict(handle=layout.node_handle(htid, nodeid), spec=layout.pool_link_node(pool_ht, family),
                             dest=None))
            continue
        keep = set()
        for bucket, member in enumerate(chosen):
            spec = layout.pool_bucket_node(member)
            node = old["buckets"].get(bucket)
            # every bucket node matches everything, so its selector never changes and a replace always fits
            if node is None:
                pre.append(("node_add", dict(handle=layout.node_handle(old["ht"], layout.POOL_NODE, bucket),
                                             spec=spec, dest=member["name"])))
            elif layout.canon_node(node) != layout.canon_node(spec):
                # a bucket moving to another member: one atomic replace, no packet of it is lost or sent twice
                pre.append(("node_replace", dict(handle=node["handle"], spec=spec, old=node, dest=member["name"])))
            if node is not None:
                keep.add(node["handle"])
        keep.add(old["marker"]["handle"])  # the name matched: the marker is unchanged
        for node in old["nodes"]:
            if node["handle"] not in keep:
                post.append(("node_del", dict(handle=node["handle"], old=node, dest=layout.cookie_name(node))))
        link = layout.pool_link_node(old["ht"], family)
        if layout.canon_node(old["link"])[:2] != layout.canon_node(link)[:2]:
            # another hash key (a release with a wider one): a new link node, the old one goes
            deletes.append(dict(handle=old["link"]["handle"], old=old["link"], dest=None))
            adds.append(dict(handle=layout.node_handle(htid, _alloc(used_nodes, *layout.NODE_RANGES[cls])),
                             spec=link, dest=None))
    for name, old in sorted(have_pools.items()):
        deletes.append(dict(handle=old["link"]["handle"], old=old["link"], dest=None))
        post.extend(_pool_teardown(old))
    return pre, post


def plan_device(dev_name, ifindex, want_ports, have, has_qdisc, scope=None, family=4):
    """Operations that turn `have` into `want_ports` on one device.

    family: which u32 instance `have` was read from and the ops are for (6: the IPv6 one, at the next
    priority; its ops carry family=6).
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
        if family == 6:
            kw["family"] = 6
        ops.append(kw)

    if want_ports and not has_qdisc:
        op("qdisc_add")
    used_hts = set(have["used_htids"])
    root = have["root"] if have["root"] is not None else layout.ROOT
    used_dispatch = set(have.get("root_ids", ()))
    wanted = set(p["port"] for p in want_ports)

    for port in want_ports:
        hp = have["ports"].get(port["port"])
        if hp is None:
            htid = _alloc(used_hts, *layout.HT_RANGE)
            op("ht_add", htid=htid, port=port["port"])
            existing = []
        else:
            htid = hp["ht"]
            existing = hp["nodes"] + ([hp["gate"]] if hp["gate"] else [])
        used_nodes = set(layout.nodeid_of(n["handle"]) for n in existing)
        keep = set()
        adds, replaces, deletes = [], [], []
        gate = layout.gate_node(port)
        old_gate = hp["gate"] if hp else None
        if gate is not None:
            gate_handle = layout.node_handle(htid, layout.NODE_RANGES[layout.CLASS_GATE][0])
            if old_gate is None:
                adds.append(dict(handle=gate_handle, spec=gate, dest=None))
            else:
                keep.add(old_gate["handle"])
                if layout.canon_node(old_gate) != layout.canon_node(gate):
                    replaces.append(dict(handle=old_gate["handle"], spec=gate, old=old_gate, dest=None))
        # pool link nodes hold ids in the port table too
        used_nodes.update(layout.nodeid_of(pool["link"]["handle"]) for pool in (hp["pools"].values() if hp else ()))
        pre, post = _plan_pools(port, hp, htid, used_hts, used_nodes, adds, replaces, deletes, family)
        for dest in [d for d in port["destinations"] if not d.get("pool")]:
            specs = layout.destination_nodes(dest)
            cls = layout.destination_class(dest)
            old = sorted(hp["dests"].get(dest["name"], []) if hp else [], key=lambda n: n["handle"])
            if old and any(layout.class_of_nodeid(layout.nodeid_of(n["handle"])) != cls for n in old):
                old_same = []  # class changed: fresh ids in the new range, old nodes go
            else:
                old_same = old
            for i, spec in enumerate(specs):
                node = old_same[i] if i < len(old_same) else None
                if node is not None and layout.canon_node(node)[0] != layout.canon_node(spec)[0]:
                    node = None  # cls_u32 keeps a node's selector on replace: new keys need a new node
                if node is not None:
                    keep.add(node["handle"])
                    if layout.canon_node(node) != layout.canon_node(spec):
                        replaces.append(dict(handle=node["handle"], spec=spec, old=node, dest=dest["name"]))
                else:
                    nodeid = _alloc(used_nodes, *layout.NODE_RANGES[cls])
                    adds.append(dict(handle=layout.node_handle(htid, nodeid), spec=spec, dest=dest["name"]))
        for node in existing:
            if node["handle"] not in keep:
                deletes.append(dict(handle=node["handle"], old=node, dest=layout.cookie_name(node)))
        # the gate goes in before the copies it guards and out after them
        adds.sort(key=lambda item: item["dest"] is not None)
        deletes.sort(key=lambda item: item["dest"] is None)
        # a pool's table is complete before its link node is added, and unlinked before it goes
        for kind, item in pre:
            op(kind, port=port["port"], **item)
        for item in adds:
            op("node_add", port=port["port"], **item)
        for item in replaces:
            op("node_replace", port=port["port"], **item)
        for item in deletes:
            op("node_del", port=port["port"], **item)
        for kind, item in post:
            op(kind, port=port["port"], **item)
        # dispatch: a node's selector cannot change in place, so new selectors are added before old ones go
        old_dispatch = dict((layout.canon_node(n)[0], n) for n in (hp["dispatch"] if hp else []))
        kept = set()
        for spec in layout.dispatch_nodes(scope, port, family):
            spec["link"] = htid << 20
            node = old_dispatch.get(layout.canon_node(spec)[0])
            if node is None:
                nodeid = _alloc(used_dispatch, *layout.DISPATCH_IDS)
                op("node_add", port=port["port"], handle=(root, nodeid), spec=spec, dest=None)
                continue
            kept.add(node["handle"])
            if layout.canon_node(node) != layout.canon_node(spec):
                op("node_replace", port=port["port"], handle=node["handle"], spec=spec, old=node, dest=None)
        for node in (hp["dispatch"] if hp else []):
            if node["handle"] not in kept:
                op("node_del", port=port["port"], handle=node["handle"], old=node, dest=None)

    # reassembly nodes (after the ports: the classifier and its root table exist by then). While dispatch
    # nodes change between taking first fragments and not, a fragmented datagram may miss its copy once; none
    # is ever copied twice
    want_frag = dict(layout.frag_nodes(dict(scope, ports=want_ports)))
    have_frag = have.get("frag", {})
    for nodeid, spec in sorted(want_frag.items()):
        node = have_frag.get(nodeid)
        if node is not None and layout.canon_node(node) == layout.canon_node(spec):
            continue
        if node is not None and layout.canon_node(node)[0] == layout.canon_node(spec)[0]:
            op("node_replace", port=None, handle=node["handle"], spec=spec, old=node, dest=None)
            continue
        if node is not None:  # a new MAC: cls_u32 keeps a node's selector on replace
            op("node_del", port=None, handle=node["handle"], old=node, dest=None)
        op("node_add", port=None, handle=(root, nodeid), spec=spec, dest=None)

    for port_no, hp in sorted(have["ports"].items()):
        if port_no in wanted:
            continue
        for node in hp["dispatch"]:
            op("node_del", port=port_no, handle=node["handle"], old=node, dest=None)
        for node in hp["nodes"]:
            op("node_del", port=port_no, handle=node["handle"], old=node, dest=layout.cookie_name(node))
        for _name, pool in sorted(hp["pools"].items()):
            op("node_del", port=port_no, handle=pool["link"]["handle"], old=pool["link"], dest=None)
            for kind, item in _pool_teardown(pool):
                op(kind, port=port_no, **item)
        if hp["gate"]:
            op("node_del", port=port_no, handle=hp["gate"]["handle"], old=hp["gate"], dest=None)
        op("ht_del", htid=hp["ht"], port=port_no)
    for nodeid, node in sorted(have_frag.items()):
        if nodeid not in want_frag:
            op("node_del", port=None, handle=node["handle"], old=node, dest=None)
    for node in have["stray_nodes"]:
        op("node_del", port=None, handle=node["handle"], old=node, dest=None)
    for htid in have["stray_hts"]:
        op("ht_del", htid=htid, port=None)
    if not want_ports and have["tp"] and not have["foreign"] and not have["unknown_hts"]:
        op("tp_del")
    return ops
