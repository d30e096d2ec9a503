"""Our netlink encodings against the bytes iproute2's tc sent for the same rules.

The reference messages were captured once with strace (data/iproute2/capture.sh);
both sides are taken apart by nlparse, which shares no code with the encoders.
"""
import glob
import json
import os
import struct

import pytest

import nlparse
from ansible_collections.netops.logfwdr.plugins.module_utils.tc import codec, layout

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "iproute2")
IN0, OUT0 = 3, 2  # ifindexes at capture time (recorded in every file)
PRIO = 49152


def captured(prefix):
    path = glob.glob(os.path.join(DATA, prefix + "_*.json"))[0]
    with open(path) as handle:
        data = json.load(handle)
    assert data["ifindex"] == {"in0": IN0, "out0": OUT0}
    return nlparse.parse_tc_message(bytes.fromhex(data["nlmsg_hex"]))


def ours(msg, msg_type=44, flags=0x605):
    msg["header"]["type"] = msg_type
    msg["header"]["flags"] = flags
    msg.encode()
    return nlparse.parse_tc_message(bytes(msg.data))


def dest(**kw):
    base = {"name": "splunk", "mode": "forward", "address": "192.0.2.10", "port": None, "ifindex": OUT0,
            "next_hop_mac": "02:00:00:00:00:02", "source_mac": "02:00:00:00:00:01", "sources": [],
            "rate_limit": None, "burst": None}
    base.update(kw)
    return base


def node_msg(handle, spec, ht=None, chain=0):
    node = dict(spec)
    if ht is not None:
        node["ht"] = ht
    return codec.build_filter_msg(IN0, PRIO, handle, chain, node)


def action_options(action):
    return nlparse.attrs_dict(action["options"])


def assert_same_filter(mine, ref):
    for field in ("nlmsg_type", "family", "ifindex", "handle", "parent", "info"):
        assert mine[field] == ref[field], field
    assert nlparse.cstr(mine["attrs"][nlparse.TCA_KIND]) == nlparse.cstr(ref["attrs"][nlparse.TCA_KIND])
    if nlparse.TCA_OPTIONS not in ref["attrs"]:
        assert nlparse.TCA_OPTIONS not in mine["attrs"]
        return
    m = nlparse.u32_options(mine["attrs"][nlparse.TCA_OPTIONS])
    r = nlparse.u32_options(ref["attrs"][nlparse.TCA_OPTIONS])
    for field in ("sel_decoded", "hash", "link", "divisor", "classid"):
        assert m[field] == r[field], field
    assert [a["kind"] for a in m["actions"]] == [a["kind"] for a in r["actions"]]
    for ma, ra in zip(m["actions"], r["actions"]):
        assert ma["cookie"] == ra["cookie"]
        mo, ro = action_options(ma), action_options(ra)
        assert mo == ro, ma["kind"]


def test_ingress_qdisc():
    assert_same_filter(ours(codec.build_qdisc_msg(IN0), 36), captured("01"))


def test_hash_table():
    msg = codec.build_filter_msg(IN0, PRIO, 0x00100000, 0, {"divisor": 1})
    assert_same_filter(ours(msg), captured("02"))


@pytest.mark.parametrize("prefix,original", [("03", "pass"), ("04", "drop")])
def test_dispatch_node(prefix, original):
    specs = layout.dispatch_nodes({}, {"port": 514, "original": original})
    assert len(specs) == 1
    spec = dict(specs[0], link=0x00100000)
    assert_same_filter(ours(node_msg(0x80000001, spec)), captured(prefix))


def test_dispatch_node_scoped_to_the_segment():
    """Own MAC, one accepted destination address, one exporter prefix: as `match ether dst`, `match ip dst`
    and `match ip src` write them."""
    scope = {"mac": "02:00:00:00:00:0a", "addresses": ["10.77.0.1"], "sources": ["10.77.0.0/24"]}
    specs = layout.dispatch_nodes(scope, {"port": 514, "original": "pass"})
    assert len(specs) == 1
    spec = dict(specs[0], link=0x00100000)
    assert_same_filter(ours(node_msg(0x80000002, spec)), captured("15"))
    assert layout.mac_of_keys(spec["keys"]) == "02:00:00:00:00:0a"
    assert layout.address_of_keys(spec["keys"]) == "10.77.0.1"
    assert layout.source_of_keys(spec["keys"]) == "10.77.0.0/24"


def test_dispatch_nodes_are_one_per_address_and_prefix():
    scope = {"mac": "02:00:00:00:00:0a", "addresses": ["10.77.0.1", "10.77.0.9"],
             "sources": ["10.77.0.0/24", "192.0.2.0/25", "198.51.100.0/24"]}
    specs = layout.dispatch_nodes(scope, {"port": 514, "original": "pass"})
    pairs = set((layout.address_of_keys(s["keys"]), layout.source_of_keys(s["keys"])) for s in specs)
    assert len(specs) == 6 and len(pairs) == 6


def test_pool_table_link_node_and_bucket_node():
    """A pool as tc writes it: `divisor 256`, a link node with `hashkey mask 0x000000ff at 12`, and a node in
    bucket 5 (`handle 2:5:1 ... ht 2:5:`)."""
    assert_same_filter(ours(codec.build_filter_msg(IN0, PRIO, 0x00200000, 0, {"divisor": layout.POOL_BUCKETS})),
                       captured("18"))
    link = layout.pool_link_node(2)
    assert_same_filter(ours(node_msg(0x00100400, link, ht=0x00100000)), captured("19"))
    member = {"name": "m1", "mode": "mirror", "ifindex": OUT0, "sources": [], "rate_limit": None, "burst": None}
    bucket = layout.pool_bucket_node(member)
    handle = layout.node_handle(2, layout.POOL_NODE, 5)
    assert handle == 0x00205001
    # kernel.execute sends TCA_U32_HASH as the handle's table and bucket
    assert_same_filter(ours(node_msg(handle, bucket, ht=handle & 0xFFFFF000)), captured("20"))


def _attrs(buf):
    off = 0
    while off + 4 <= len(buf):
        length, kind = struct.unpack_from("=HH", buf, off)
        yield kind, buf[off + 4:off + length]
        off += (length + 3) & ~3


def options_types(raw):
    """(type, NLA_F_NESTED set) of every action's TCA_ACT_OPTIONS in a filter message, from the raw bytes."""
    out = []
    for kind, body in _attrs(raw[16 + 20:]):
        if kind & 0x3FFF != 2:  # TCA_OPTIONS
            continue
        for ukind, ubody in _attrs(body):
            if ukind & 0x3FFF != 7:  # TCA_U32_ACT
                continue
            for _prio, abody in _attrs(ubody):
                out.extend((k & 0x3FFF, bool(k & 0x8000)) for k, _b in _attrs(abody) if k & 0x3FFF == 2)
    return out


def test_reassembly_node():
    """The MF node of a device with `fragments: reassemble`, as tc writes it (the capture's cookie is short)."""
    nodes = layout.frag_nodes({"fragments": "reassemble", "mac": "02:00:00:00:00:0a", "ports": [{"port": 514}]})
    assert [n for n, _s in nodes] == list(range(0xFF2, 0x1000))
    nodeid, spec = nodes[0]
    for action in spec["actions"]:
        action["cookie"] = b"\xf1\x02fr"
    assert_same_filter(ours(node_msg(0x80000000 | nodeid, spec)), captured("21"))
    # act_ct parses its options strictly: TCA_ACT_OPTIONS must carry NLA_F_NESTED, as tc sends it
    with open(glob.glob(os.path.join(DATA, "21_*.json"))[0]) as handle:
        ref = bytes.fromhex(json.load(handle)["nlmsg_hex"])
    mine = node_msg(0x80000000 | nodeid, spec)
    mine["header"]["type"] = 44
    mine.encode()
    assert options_types(ref) == options_types(bytes(mine.data)) == [(2, True), (2, True)]
    # and back: decode_filter reads what codec wrote, so the planner finds its own node again
    msg = node_msg(0x80000000 | nodeid, spec, ht=0x80000000)
    msg["header"]["type"] = 44
    msg.encode()
    raw = codec.tcmsg(bytes(msg.data))
    raw.decode()
    back = codec.decode_filter(raw)
    assert [(a["kind"], a["control"], a["clear"]) for a in back["actions"]] == [
        ("ct", codec.TC_ACT_PIPE, False), ("ct", codec.TC_ACT_RECLASSIFY, True)]
    assert layout.canon_node(back) == layout.canon_node(spec)
    # the other 13 nodes: one offset bit each, the same actions
    assert [s["keys"][1] for _n, s in nodes[1:]] == [(1 << i, 1 << i, layout.OFF_FRAG) for i in range(13)]
    assert layout.frag_nodes({"fragments": "first", "ports": [{"port": 514}]}) == []


def test_gate_node():
    spec = layout.gate_node({"rate_limit": 20000, "burst": 2000})
    assert_same_filter(ours(node_msg(0x00100001, spec, ht=0x00100000)), captured("16"))


def test_forward_destination():
    spec = layout.destination_nodes(dest())[0]
    assert [a["kind"] for a in spec["actions"]] == ["skbmod", "pedit", "csum", "mirred"]
    assert_same_filter(ours(node_msg(0x00100401, spec, ht=0x00100000)), captured("13"))


def test_forward_destination_with_every_option():
    spec = layout.destination_nodes(dest(name="nfcap", address="192.0.2.11", port=1514, sources=["10.1.0.0/16"],
                                         rate_limit=1000, burst=100))
    assert len(spec) == 1
    assert_same_filter(ours(node_msg(0x00100C01, spec[0], ht=0x00100000)), captured("14"))


SKBMOD = {"kind": "skbmod", "dmac": "02:00:00:00:00:02", "smac": "02:00:00:00:00:01"}
MIRRED = {"kind": "mirred", "eaction": 2, "ifindex": OUT0, "control": -1}


def test_nat_codec():
    # tc_mirror does not write act_nat (it rewrites only an address it matches), but reads it;
    # tc 6.1 turns 0.0.0.0/0 into mask 255.255.255.255
    spec = {"keys": [(0, 0, 0)], "actions": [
        SKBMOD, {"kind": "nat", "new": "192.0.2.10", "old": "0.0.0.0", "mask": "255.255.255.255"},
        dict(MIRRED, cookie=b"splunk")]}
    assert_same_filter(ours(node_msg(0x00100801, spec, ht=0x00100000)), captured("05"))


def test_port_only_pedit_and_udp_csum():
    spec = {"keys": layout.source_keys("10.1.0.0/16"), "actions": [
        {"kind": "police", "rate": 1000, "burst": 100}, SKBMOD, {"kind": "nat", "new": "192.0.2.11"},
        {"kind": "pedit", "port": 1514}, {"kind": "csum"}, dict(MIRRED, cookie=b"nfcap")]}
    assert_same_filter(ours(node_msg(0x00100B01, spec, ht=0x00100000)), captured("06"))


def test_mirror_destination_add_and_replace():
    spec = layout.destination_nodes(dest(name="tool", mode="mirror"))[0]
    add = ours(node_msg(0x00100002, spec, ht=0x00100000))
    assert_same_filter(add, captured("07"))
    ref_replace = captured("08")
    assert_same_filter(ours(node_msg(0x00100002, spec, ht=0x00100000), flags=0x405), ref_replace)
    # tc replaces by leaving out NLM_F_EXCL; what we send (CREATE|REPLACE) has the same meaning
    assert not ref_replace["nlmsg_flags"] & nlparse.NLM_F_EXCL


def test_delete_by_handle():
    assert_same_filter(ours(codec.build_filter_msg(IN0, PRIO, 0x00100002, 0), 45, 0x5), captured("09"))


def test_chain_attribute():
    msg = codec.build_filter_msg(IN0, PRIO, 0x00100000, 5, {"divisor": 1})
    msg["parent"] = 0xFFFFFFF2
    mine, ref = ours(msg), captured("10")
    assert_same_filter(mine, ref)
    assert nlparse.u32(mine["attrs"][nlparse.TCA_CHAIN]) == nlparse.u32(ref["attrs"][nlparse.TCA_CHAIN]) == 5


def test_delete_priority():
    mine, ref = ours(codec.build_filter_msg(IN0, PRIO, 0, 0), 45, 0x5), captured("11")
    for field in ("handle", "parent", "info", "ifindex"):
        assert mine[field] == ref[field]


def test_gact_drop():
    spec = {"keys": [(0, 0, 0)], "actions": [{"kind": "gact", "control": codec.TC_ACT_SHOT}]}
    assert_same_filter(ours(node_msg(0x00100003, spec, ht=0x00100000)), captured("12"))


def test_sampled_destination_is_what_tc_sends():
    # gact continue, random determ pipe 10: nine packets in ten end the node (the next destination runs),
    # the tenth pipes on to the copy
    spec = layout.destination_nodes(dest(name="tool", mode="mirror", sample=10))[0]
    assert [a["kind"] for a in spec["actions"]] == ["gact", "mirred"]
    assert_same_filter(ours(node_msg(0x00100002, spec, ht=0x00100000)), captured("17"))


def test_police_burst_is_time_in_psched_ticks():
    # tc: 100 packets at 1000/s -> 0.1 s -> 1562500 ticks of 64 ns
    assert codec.police_pkt_burst(1000, 100) == 1562500
    assert codec.police_burst_packets(1000, 1562500) == 100


def test_thirty_two_actions_are_all_encoded():
    actions = [{"kind": "mirred", "eaction": 2, "ifindex": OUT0, "control": -1}] * 32
    mine = ours(node_msg(0x00100004, {"keys": [(0, 0, 0)], "actions": actions}, ht=0x00100000))
    acts = nlparse.u32_options(mine["attrs"][nlparse.TCA_OPTIONS])["actions"]
    assert [a["prio"] for a in acts] == list(range(1, 33))
    with pytest.raises(ValueError):
        ours(node_msg(0x00100004, {"keys": [(0, 0, 0)], "actions": actions + actions[:1]}, ht=0x00100000))


ROUND_TRIP = [
    layout.destination_nodes(dest())[0],
    layout.destination_nodes(dest(port=1514, sources=["10.1.0.0/16"], rate_limit=1000, burst=100))[0],
    layout.destination_nodes(dest(mode="mirror", name="ids"))[0],
    {"keys": [(0, 0, 0)], "actions": [{"kind": "nat", "new": "192.0.2.9"}, MIRRED]},
    dict(layout.dispatch_nodes({"mac": "02:00:00:00:00:0a", "addresses": ["10.77.0.1"], "sources": ["10.0.0.0/8"]},
                               {"port": 6343, "original": "drop"})[0], link=0x00100000),
    layout.gate_node({"rate_limit": 500, "burst": 50}),
    layout.destination_nodes(dest(sample=100, rate_limit=1000, burst=100))[0],
]


@pytest.mark.parametrize("spec", ROUND_TRIP)
def test_decode_what_we_encode(spec):
    """Encode, then decode through pyroute2 with our registered codecs, as a kernel dump is read."""
    msg = node_msg(0x00100801, spec, ht=0x00100000, chain=7)
    msg["header"]["type"] = 44
    msg.encode()
    back = codec.tcmsg(bytes(msg.data))
    back.decode()
    decoded = codec.decode_filter(back)
    assert decoded["chain"] == 7 and decoded["prio"] == PRIO and decoded["handle"] == 0x00100801
    assert layout.canon_node(decoded) == layout.canon_node(spec)


def test_sel_keys_decode_at_the_right_offset():
    keys = layout.port_keys(2055)
    data = codec.pack_u32_sel(keys, terminal=True)
    assert codec.unpack_u32_sel(data) == {"flags": 1, "keys": keys, "hash": None}
    # the first key starts right after the 16-byte selector header
    assert struct.unpack_from(">I", data, 16)[0] == 0xFF000000


def test_a_pool_link_node_carries_its_hash_key_where_the_kernel_reads_it():
    data = codec.pack_u32_sel([(0, 0, 0)], terminal=False, hashkey=layout.POOL_HASH)
    # struct tc_u32_sel: flags, offshift, nkeys, pad, offmask, off, offoff, hoff (s16), hmask (__be32)
    assert struct.unpack_from("=h", data, 10)[0] == 12 and data[12:16] == b"\x00\x00\x00\xff"
    assert codec.unpack_u32_sel(data) == {"flags": 0, "keys": [(0, 0, 0)], "hash": (0xFF, 12)}
