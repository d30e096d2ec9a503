"""Planner: want vs have -> the minimal, safely ordered operations."""
import copy

from ansible_collections.netops.logfwdr.plugins.module_utils.tc import layout, planner

PRIO, CHAIN = 49152, 0


class FakeKernel:
    """Holds u32 objects the way a dump returns them; applies planner ops."""

    def __init__(self, foreign=()):
        self.filters = [dict(f) for f in foreign]
        self.qdisc = bool(foreign)
        self.root = None

    def have(self):
        return planner.parse_have(copy.deepcopy(self.filters), PRIO, CHAIN)

    def apply(self, ops):
        for op in ops:
            kind = op["op"]
            if kind == "qdisc_add":
                self.qdisc = True
            elif kind == "ht_add":
                if self.root is None:  # the kernel creates the root table with the classifier
                    self.root = 0x800
                    self.filters.append(dict(kind="ht", prio=PRIO, chain=CHAIN, handle=0x800 << 20))
                self.filters.append(dict(kind="ht", prio=PRIO, chain=CHAIN, handle=op["htid"] << 20,
                                         divisor=op.get("divisor", 1)))
            elif kind == "ht_del":
                self.filters = [f for f in self.filters if not (f["kind"] == "ht" and f["prio"] == PRIO
                                                                and layout.htid_of(f["handle"]) == op["htid"])]
            elif kind in ("node_add", "node_replace"):
                handle = op["handle"]
                if isinstance(handle, tuple):
                    handle = layout.node_handle(self.root if handle[0] == layout.ROOT else handle[0], handle[1])
                self.filters = [f for f in self.filters if f.get("handle") != handle or f["prio"] != PRIO]
                spec = copy.deepcopy(op["spec"])
                node = dict(kind="node", prio=PRIO, chain=CHAIN, handle=handle, keys=spec["keys"],
                            link=spec.get("link"), actions=spec["actions"])
                if spec.get("hash"):
                    node["hash"] = spec["hash"]
                self.filters.append(node)
            elif kind == "node_del":
                self.filters = [f for f in self.filters if not (f["prio"] == PRIO and f.get("handle") == op["handle"])]
            elif kind == "tp_del":
                self.filters = [f for f in self.filters if (f["prio"], f["chain"]) != (PRIO, CHAIN)]
                self.root = None

    def plan(self, ports):
        return planner.plan_device("ens1", 1, ports, self.have(), self.qdisc)

    def converge(self, ports):
        ops = self.plan(ports)
        self.apply(ops)
        assert self.plan(ports) == [], "a second plan must be empty"
        return ops


def fwd(name, address, **kw):
    d = {"name": name, "mode": "forward", "address": address, "port": None, "device": "ens2", "ifindex": 2,
         "next_hop_mac": "52:54:00:00:00:%02x" % int(address.split(".")[-1]), "source_mac": "02:00:00:00:00:02",
         "sources": [], "rate_limit": None, "burst": None}
    d.update(kw)
    return d


def mirror(name, ifindex):
    return {"name": name, "mode": "mirror", "device": "tool%d" % ifindex, "ifindex": ifindex, "sources": [],
            "rate_limit": None, "burst": None}


def port(no, *dests, **kw):
    return dict({"port": no, "original": "drop", "destinations": list(dests)}, **kw)


def summary(ops):
    return [(op["op"], op.get("dest")) for op in ops]


BASE = [port(514, fwd("a", "192.0.2.10"), fwd("b", "192.0.2.11"), mirror("ids", 9)),
        port(162, fwd("a", "192.0.2.10"))]


def test_from_empty_everything_is_built_before_traffic_is_steered():
    k = FakeKernel()
    ops = k.converge(BASE)
    kinds = [op["op"] for op in ops]
    assert kinds[0] == "qdisc_add"
    # per port: table, destination nodes, then the dispatch node that steers traffic into them
    first_port = kinds[1:6]
    assert first_port == ["ht_add", "node_add", "node_add", "node_add", "node_add"]
    assert ops[5]["dest"] is None and ops[5]["spec"]["link"] == ops[1]["htid"] << 20


def test_mirror_nodes_run_before_rewriting_nodes():
    k = FakeKernel()
    k.converge([port(514, fwd("p", "192.0.2.12", port=1514), fwd("a", "192.0.2.10"), mirror("ids", 9))])
    ids = dict((layout.cookie_name(f), layout.nodeid_of(f["handle"])) for f in k.filters
               if f["kind"] == "node" and layout.cookie_name(f))
    assert ids["ids"] < ids["a"] < ids["p"]


def test_one_destination_added_changed_removed_touches_only_it():
    k = FakeKernel()
    k.converge(BASE)
    untouched = sorted(f["handle"] for f in k.filters if f["kind"] == "node")
    grown = copy.deepcopy(BASE)
    grown[0]["destinations"].append(fwd("c", "192.0.2.13"))
    assert summary(k.converge(grown)) == [("node_add", "c")]
    changed = copy.deepcopy(grown)
    changed[0]["destinations"][3] = fwd("c", "192.0.2.13", next_hop_mac="52:54:00:99:99:99", rate_limit=100, burst=10)
    ops = k.converge(changed)
    assert summary(ops) == [("node_replace", "c")]
    c_handle = ops[0]["handle"]
    assert summary(k.converge(BASE)) == [("node_del", "c")]
    assert sorted(f["handle"] for f in k.filters if f["kind"] == "node") == untouched
    assert c_handle not in untouched


def test_new_match_keys_need_a_new_node():
    k = FakeKernel()
    k.converge(BASE)
    narrowed = copy.deepcopy(BASE)
    narrowed[0]["destinations"][1]["sources"] = ["10.1.0.0/16", "10.3.0.0/16"]
    assert summary(k.converge(narrowed)) == [("node_add", "b"), ("node_add", "b"), ("node_del", "b")]


def test_class_change_moves_the_destination_to_its_id_range():
    k = FakeKernel()
    k.converge(BASE)
    moved = copy.deepcopy(BASE)
    moved[0]["destinations"][0]["port"] = 1514
    ops = k.converge(moved)
    assert summary(ops) == [("node_add", "a"), ("node_del", "a")]
    low, high = layout.NODE_RANGES[layout.CLASS_FORWARD_PORT]
    assert low <= layout.nodeid_of(ops[0]["handle"]) <= high


def test_original_change_replaces_only_the_dispatch_node():
    k = FakeKernel()
    k.converge([port(514, mirror("ids", 9), original="pass")])
    ops = k.converge([port(514, mirror("ids", 9), original="drop")])
    assert summary(ops) == [("node_replace", None)]
    assert ops[0]["spec"]["actions"] == [{"kind": "gact", "control": 2, "cookie": layout.MARK}]


def test_removing_a_port_unlinks_it_before_deleting():
    k = FakeKernel()
    k.converge(BASE)
    ops = k.converge(BASE[:1])
    assert [op["op"] for op in ops] == ["node_del", "node_del", "ht_del"]
    assert ops[0]["dest"] is None  # the dispatch node goes first: no packet reaches a half-deleted table


def test_removing_everything_deletes_the_classifier_last():
    k = FakeKernel()
    k.converge(BASE)
    ops = k.converge([])
    assert ops[-1]["op"] == "tp_del"
    assert k.filters == []


def test_foreign_filters_are_not_touched_and_their_tables_not_reused():
    foreign = [dict(kind="ht", prio=20, chain=0, handle=0x100 << 20),
               dict(kind="node", prio=20, chain=0, handle=(0x100 << 20) | 1, keys=[(0, 0, 0)], link=None, actions=[]),
               dict(kind="ht", prio=PRIO, chain=3, handle=0x101 << 20),
               dict(kind="node", prio=PRIO, chain=3, handle=(0x101 << 20) | 1, keys=[(0, 0, 0)], link=None,
                    actions=[])]
    k = FakeKernel(foreign)
    ops = k.converge(BASE)
    assert all(op["op"] != "qdisc_add" for op in ops)
    assert {op["htid"] for op in ops if op["op"] == "ht_add"}.isdisjoint({0x100, 0x101})
    k.converge([])
    assert k.filters == foreign


def test_unmarked_nodes_in_our_priority_are_foreign_and_never_touched():
    k = FakeKernel()
    k.converge(BASE)
    ht = k.have()["ports"][514]["ht"]
    theirs = [dict(kind="node", prio=PRIO, chain=CHAIN, handle=(ht << 20) | 0x3FE, keys=[(0, 0, 0)],
                   link=None, actions=[{"kind": "mirred", "eaction": 2, "ifindex": 7, "control": -1}]),
              dict(kind="node", prio=PRIO, chain=CHAIN, handle=(0x800 << 20) | 0x7FF, keys=[(0, 0, 0)],
                   link=None, actions=[{"kind": "mirred", "eaction": 2, "ifindex": 7, "control": -1,
                                        "cookie": b"tool"}])]
    k.filters.extend(copy.deepcopy(theirs))
    have = k.have()
    assert sorted(f["handle"] for f in have["foreign"]) == sorted(f["handle"] for f in theirs)
    assert 514 in have["ports"]  # our table stays ours: it holds marked nodes
    ops = k.plan([])
    assert all(op.get("handle") not in [f["handle"] for f in theirs] for op in ops)
    assert "tp_del" not in [op["op"] for op in ops]  # deleting the priority would take theirs too


def test_marked_nodes_steering_nowhere_are_removed():
    k = FakeKernel()
    k.converge(BASE)
    stray = dict(kind="node", prio=PRIO, chain=CHAIN, handle=(0x800 << 20) | 0x7FE, keys=[(0, 0, 0)], link=None,
                 actions=[{"kind": "gact", "control": 2, "cookie": layout.MARK}])
    k.filters.append(stray)
    assert summary(k.converge(BASE)) == [("node_del", None)]
    assert k.have()["foreign"] == []


def test_a_changed_segment_scope_adds_the_new_dispatch_nodes_before_removing_the_old():
    k = FakeKernel()
    one = {"mac": "02:00:00:00:00:01", "addresses": ["10.1.0.1"], "sources": ["10.1.0.0/24"]}
    two = dict(one, sources=["10.1.0.0/24", "10.9.0.0/16"])
    k.apply(planner.plan_device("ens1", 1, BASE, k.have(), k.qdisc, one))
    ops = planner.plan_device("ens1", 1, BASE, k.have(), k.qdisc, two)
    # the 10.1.0.0/24 dispatch nodes stay; one new node per port for 10.9.0.0/16; no copy is touched
    assert sorted(summary(ops)) == [("node_add", None)] * len(BASE)
    k.apply(ops)
    ops = planner.plan_device("ens1", 1, BASE, k.have(), k.qdisc, dict(one, sources=["10.9.0.0/16"]))
    kinds = [op["op"] for op in ops]
    assert kinds == ["node_del"] * len(BASE)
    k.apply(ops)
    assert planner.device_scope(k.have())["sources"] == ["10.9.0.0/16"]


def test_the_gate_goes_in_first_and_out_last():
    k = FakeKernel()
    capped = [dict(BASE[0], rate_limit=2000, burst=200)]
    ops = k.converge(capped)
    adds = [op for op in ops if op["op"] == "node_add"]
    assert adds[0]["spec"]["actions"][0]["cookie"] == layout.GATE_COOKIE
    assert layout.nodeid_of(adds[0]["handle"]) == 1
    assert k.have()["ports"][BASE[0]["port"]]["gate"] is not None
    ops = k.converge([dict(capped[0], rate_limit=None, burst=None)])
    assert summary(ops) == [("node_del", None)]
    ops = k.converge(capped)
    ops = k.converge([])
    gate_del = [i for i, op in enumerate(ops) if op["op"] == "node_del" and op.get("old", {}).get("actions", [{}])[0]
                .get("cookie") == layout.GATE_COOKIE]
    dest_del = [i for i, op in enumerate(ops) if op["op"] == "node_del" and op["dest"]]
    assert gate_del and dest_del and gate_del[0] > max(dest_del)


def test_inverse_operations_undo():
    k = FakeKernel()
    k.converge(BASE)
    before = copy.deepcopy(k.filters)
    changed = copy.deepcopy(BASE)
    changed[0]["destinations"][0]["next_hop_mac"] = "52:54:00:77:77:77"
    changed[0]["destinations"].append(fwd("c", "192.0.2.13"))
    del changed[0]["destinations"][1]
    ops = k.plan(changed)
    k.apply(ops)
    k.apply([layout.inverse(op) for op in reversed(ops)])

    def key(f):
        return (f["prio"], f["handle"])

    assert sorted(map(layout.canon_node, [f for f in k.filters if f["kind"] == "node"])) == \
        sorted(map(layout.canon_node, [f for f in before if f["kind"] == "node"]))
    assert sorted(k.filters, key=key) == sorted(before, key=key)


def test_sixty_four_and_more_destinations_per_port():
    k = FakeKernel()
    dests = [mirror("m%d" % i, 100 + i) for i in range(300)]
    ops = k.converge([port(514, *dests, original="pass")])
    assert sum(1 for op in ops if op["op"] == "node_add") == 301


# ---- collector pools ---------------------------------------------------------

def pooled(name, address, pool="flows"):
    return fwd(name, address, pool=pool)


def bucket_members(k, pool_ht):
    """bucket -> the member named in that bucket's node, read from the fake kernel's filters."""
    return dict((layout.bucket_of(f["handle"]), layout.cookie_name(f)) for f in k.filters
                if f["kind"] == "node" and layout.htid_of(f["handle"]) == pool_ht
                and layout.nodeid_of(f["handle"]) == layout.POOL_NODE)


def pool_table(k):
    hp = k.have()["ports"][2055]
    (pool,) = hp["pools"].values()
    return pool["ht"]


def test_a_pool_is_built_whole_before_its_link_node_and_the_dispatch():
    k = FakeKernel()
    ops = k.converge([port(2055, pooled("c1", "192.0.2.21"), pooled("c2", "192.0.2.22"), pooled("c3", "192.0.2.23"),
                           fwd("all", "192.0.2.30"))])
    kinds = [op["op"] for op in ops]
    pool_ht = [op["htid"] for op in ops if op["op"] == "ht_add" and op.get("divisor") == layout.POOL_BUCKETS]
    assert len(pool_ht) == 1
    link = [i for i, op in enumerate(ops) if op["op"] == "node_add" and op["spec"].get("hash")]
    assert len(link) == 1
    link_op = ops[link[0]]
    assert link_op["spec"]["link"] == pool_ht[0] << 20 and link_op["spec"]["hash"] == (0xFF, 12)
    buckets = [i for i, op in enumerate(ops) if op["op"] == "node_add" and not isinstance(op["handle"], tuple)
               and layout.htid_of(op["handle"]) == pool_ht[0]]
    assert len(buckets) == 257 and max(buckets) < link[0]  # 256 buckets and the pool's marker
    marker = ops[max(buckets)]
    assert layout.pool_name(marker["spec"]) == "flows" and layout.bucket_of(marker["handle"]) == 0
    dispatch = [i for i, op in enumerate(ops) if isinstance(op.get("handle"), tuple)]
    assert min(dispatch) > link[0]
    assert kinds.index("ht_add") < min(buckets)
    members = bucket_members(k, pool_ht[0])
    assert sorted(members) == list(range(256))
    counts = dict((n, list(members.values()).count(n)) for n in ("c1", "c2", "c3"))
    assert all(c > 40 for c in counts.values()), counts  # every member holds a share
    assert "all" not in members.values()  # the port's other destination stays in the port table


def test_adding_a_member_moves_only_the_buckets_it_wins():
    k = FakeKernel()
    three = [pooled("c%d" % i, "192.0.2.2%d" % i) for i in (1, 2, 3)]
    k.converge([port(2055, *three)])
    before = bucket_members(k, pool_table(k))
    ops = k.converge([port(2055, *(three + [pooled("c4", "192.0.2.24")]))])
    after = bucket_members(k, pool_table(k))
    moved = [b for b in range(256) if before[b] != after[b]]
    assert set(after[b] for b in moved) == {"c4"}
    assert 30 < len(moved) < 100  # about a quarter
    assert [op["op"] for op in ops] == ["node_replace"] * len(moved)


def test_a_removed_or_pending_member_gives_each_bucket_to_its_runner_up():
    k = FakeKernel()
    four = [pooled("c%d" % i, "192.0.2.2%d" % i) for i in (1, 2, 3, 4)]
    k.converge([port(2055, *four)])
    before = bucket_members(k, pool_table(k))
    k.converge([port(2055, *[d for d in four if d["name"] != "c2"])])
    after = bucket_members(k, pool_table(k))
    for b in range(256):
        if before[b] != "c2":
            assert after[b] == before[b]
        else:
            others = [d for d in four if d["name"] != "c2"]
            assert after[b] == layout.pool_buckets(others)[b]["name"] != "c2"
    # back again: every bucket it held comes back to it
    k.converge([port(2055, *four)])
    assert bucket_members(k, pool_table(k)) == before


def test_removing_a_pool_unlinks_it_before_deleting_its_buckets_and_table():
    k = FakeKernel()
    k.converge([port(2055, pooled("c1", "192.0.2.21"), pooled("c2", "192.0.2.22"), fwd("all", "192.0.2.30"))])
    pool_ht = pool_table(k)
    ops = k.converge([port(2055, fwd("all", "192.0.2.30"))])
    assert ops[0]["op"] == "node_del" and ops[0]["old"].get("hash") and not ops[0]["old"]["actions"]
    assert [op["op"] for op in ops[1:]] == ["node_del"] * 257 + ["ht_del"]
    assert ops[-1]["htid"] == pool_ht and ops[-1]["divisor"] == 256
    assert not [f for f in k.filters if layout.htid_of(f["handle"]) == pool_ht]


def test_a_pool_changing_kind_is_rebuilt_before_the_old_one_goes():
    k = FakeKernel()
    k.converge([port(2055, pooled("c1", "192.0.2.21"), pooled("c2", "192.0.2.22"))])
    old_ht = pool_table(k)
    ops = k.converge([port(2055, dict(mirror("c1", 7), pool="flows"), dict(mirror("c2", 8), pool="flows"))])
    kinds = [op["op"] for op in ops]
    assert kinds.index("ht_add") < kinds.index("node_del")
    assert ops[-1] == dict(ops[-1], op="ht_del", htid=old_ht)
    assert pool_table(k) != old_ht


def test_removing_a_port_with_a_pool_removes_every_piece():
    k = FakeKernel()
    k.converge([port(2055, pooled("c1", "192.0.2.21")), port(514, fwd("a", "192.0.2.10"))])
    k.converge([port(514, fwd("a", "192.0.2.10"))])
    k.converge([])
    assert [f for f in k.filters if f["prio"] == PRIO] == []


REASSEMBLE = {"mac": "02:00:00:00:00:01", "addresses": ["10.1.0.1"], "sources": ["10.1.0.0/24"],
              "fragments": "reassemble"}


def frag_key(node):
    return [(m, v) for m, v, o in node["keys"] if o == layout.OFF_FRAG]


def test_reassembly_nodes_follow_the_dispatch_nodes_and_go_with_the_ports():
    k = FakeKernel()
    ops = planner.plan_device("ens1", 1, BASE, k.have(), k.qdisc, REASSEMBLE)
    k.apply(ops)
    frag_ops = [op for op in ops if op["op"] == "node_add" and layout.is_frag_node(op["spec"])]
    # 14 nodes (MF and the 13 offset bits), in the root table after every dispatch node, each added once the
    # classifier exists
    assert [op["handle"] for op in frag_ops] == [(layout.ROOT, n) for n in layout.FRAG_NODE_IDS]
    assert ops.index(frag_ops[0]) > max(i for i, op in enumerate(ops) if op["op"] == "ht_add")
    have = k.have()
    assert sorted(have["frag"]) == layout.FRAG_NODE_IDS and not have["stray_nodes"]
    dispatch = [n for hp in have["ports"].values() for n in hp["dispatch"]]
    assert max(layout.nodeid_of(n["handle"]) for n in dispatch) < min(layout.FRAG_NODE_IDS)
    # the dispatch nodes take only whole datagrams (MF clear too): a first fragment goes to reassembly
    assert all(frag_key(n) == [(0x3FFF, 0)] for n in dispatch)
    assert planner.plan_device("ens1", 1, BASE, have, k.qdisc, REASSEMBLE) == []
    assert planner.device_scope(have)["fragments"] == "reassemble"
    # back to first fragments only: new dispatch nodes, then the reassembly nodes go; no copy is touched
    first = dict(REASSEMBLE, fragments="first")
    ops = planner.plan_device("ens1", 1, BASE, have, k.qdisc, first)
    assert all(op["dest"] is None for op in ops)
    assert sum(1 for op in ops if op["op"] == "node_del" and layout.is_frag_node(op["old"])) == 14
    k.apply(ops)
    have = k.have()
    assert not have["frag"] and planner.device_scope(have)["fragments"] == "first"
    assert all(frag_key(n) == [(0x1FFF, 0)] for hp in have["ports"].values() for n in hp["dispatch"])
    assert planner.plan_device("ens1", 1, BASE, have, k.qdisc, first) == []


def test_reassembly_nodes_are_rebuilt_for_a_new_mac_and_removed_with_everything():
    k = FakeKernel()
    k.apply(planner.plan_device("ens1", 1, BASE, k.have(), k.qdisc, REASSEMBLE))
    moved = dict(REASSEMBLE, mac="02:00:00:00:00:09")
    ops = planner.plan_device("ens1", 1, BASE, k.have(), k.qdisc, moved)
    frag = [op for op in ops if layout.is_frag_node(op.get("spec") or op.get("old"))]
    assert [op["op"] for op in frag] == ["node_del", "node_add"] * 14
    k.apply(ops)
    assert planner.plan_device("ens1", 1, BASE, k.have(), k.qdisc, moved) == []
    ops = planner.plan_device("ens1", 1, [], k.have(), k.qdisc, moved)
    assert ops[-1]["op"] == "tp_del"
    k.apply(ops)
    assert k.filters == []
