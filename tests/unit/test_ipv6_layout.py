"""IPv6: the u32 keys of the IPv6 instance, read back the way they were written, and its ops."""
import pytest

from ansible_collections.netops.logfwdr.plugins.module_utils.tc import layout, planner, render

MIRROR = {"name": "ids", "mode": "mirror", "device": "tool9", "ifindex": 9, "sources": [], "rate_limit": None,
          "burst": None}


def dev6(**kw):
    dev = {"name": "ens1", "mac": "02:00:00:00:00:01", "addresses": ["2001:db8:1::2"], "sources": ["2001:db8:1::/64"],
           "families": [6], "ports": [{"port": 514, "original": "drop", "originals": {4: "drop", 6: "pass"}, "destinations": [MIRROR],
                                       "rate_limit": None, "burst": None}]}
    dev.update(kw)
    return dev


def test_dispatch_keys_match_version_udp_port_address_and_prefix():
    six = layout.family_view(dev6(), 6)
    node, = layout.dispatch_nodes(six, six["ports"][0], 6)
    assert node["actions"] == []  # originals[6]: pass, nothing rewrote it
    assert node["keys"][:3] == [(0xF0000000, 0x60000000, 0), (0x0000FF00, 0x00001100, 4), (0x0000FFFF, 514, 40)]
    assert layout.mac_of_keys(node["keys"]) == "02:00:00:00:00:01"
    # the destination address is four full words at 24-36, the /64 prefix two at 8 and 12
    assert [k for k in node["keys"] if 24 <= k[2] <= 36] == [
        (0xFFFFFFFF, 0x20010DB8, 24), (0xFFFFFFFF, 0x00010000, 28), (0xFFFFFFFF, 0, 32), (0xFFFFFFFF, 2, 36)]
    assert [k for k in node["keys"] if 8 <= k[2] <= 20] == [(0xFFFFFFFF, 0x20010DB8, 8), (0xFFFFFFFF, 0x00010000, 12)]
    assert layout.port_of_keys(node["keys"]) == 514
    assert layout.address_of_keys(node["keys"]) == "2001:db8:1::2"
    assert layout.source_of_keys(node["keys"]) == "2001:db8:1::/64"


@pytest.mark.parametrize("prefix", ["::/0", "2001:db8::/32", "2001:db8:1::/48", "2001:db8:1:2::/63",
                                    "2001:db8::1:0/112", "2001:db8::5/128"])
def test_source_prefixes_round_trip(prefix):
    keys = layout.source_keys(prefix)
    assert all(8 <= off <= 20 for _m, _v, off in keys) or keys == [(0, 0, 0)]
    assert layout.source_of_keys(keys, 6) == (prefix if prefix != "::/0" else None)  # as 0.0.0.0/0: no key


def test_an_ipv6_pool_hashes_the_last_byte_of_the_source():
    assert layout.pool_link_node(0x101, 6)["hash"] == (0xFF, 20)
    assert layout.pool_link_node(0x101)["hash"] == (0xFF, 12)


def test_ipv6_ops_are_tagged_and_share_the_table_ids():
    six = layout.family_view(dev6(), 6)
    have = planner.parse_have([], 5141, 0)
    have["used_htids"] = {0x100}  # taken by the IPv4 instance's port table
    ops = planner.plan_device("ens1", 1, six["ports"], have, True, six, family=6)
    assert ops and all(op.get("family") == 6 for op in ops)
    assert [op["htid"] for op in ops if op["op"] == "ht_add"] == [0x101]
    assert "protocol ipv6 prio 5141" in render.command(ops[0], 5140, 0, {9: "tool9"})


def test_merged_public_shape_lists_both_families_and_sums_counters():
    four = {"name": "ens1", "addresses": ["10.1.0.2"], "sources": ["10.1.0.0/24"], "fragments": "first",
            "ports": [{"port": 514, "original": "pass", "refused": 2, "destinations": [
                {"name": "ids", "mode": "mirror", "device": "tool9", "counters": {"packets": 3, "bytes": 30}}]}]}
    six = {"name": "ens1", "addresses": ["2001:db8:1::2"], "sources": ["2001:db8:1::/64"], "fragments": "first",
           "ports": [{"port": 514, "original": "pass", "refused": 5, "destinations": [
               {"name": "ids", "mode": "mirror", "device": "tool9", "counters": {"packets": 4, "bytes": 80}}]},
               {"port": 162, "original": "pass", "destinations": []}]}
    merged = render.merge_families(four, six)
    assert merged["addresses"] == ["10.1.0.2", "2001:db8:1::2"]
    assert merged["sources"] == ["10.1.0.0/24", "2001:db8:1::/64"]
    assert [p["port"] for p in merged["ports"]] == [162, 514]
    assert merged["ports"][1]["refused"] == 7
    assert merged["ports"][1]["destinations"][0]["counters"] == {"packets": 7, "bytes": 110}


def test_an_ipv6_forward_destination_rewrites_the_four_address_words_and_the_udp_checksum():
    from ansible_collections.netops.logfwdr.plugins.module_utils.tc import codec
    dest = {"name": "c6", "mode": "forward", "address": "2001:db8:2::10", "port": 1514, "device": "ens2", "ifindex": 2,
            "next_hop_mac": "52:54:00:00:00:10", "source_mac": "02:00:00:00:00:02", "sources": [],
            "rate_limit": None, "burst": None}
    actions = layout.destination_actions(dest)
    assert [a["kind"] for a in actions] == ["skbmod", "pedit", "csum", "mirred"]
    assert actions[2]["update_flags"] == 16  # UDP only: IPv6 has no header checksum
    pedit = codec.encode_action(actions[1])["attrs"][1][1]["attrs"][0][1]
    keys = codec.unpack_pedit(pedit)["keys"]
    assert [off for _m, _v, off in keys] == [24, 28, 32, 36, 40]
    assert b"".join(__import__("struct").pack("=I", v) for _m, v, _o in keys[:4]) == \
        __import__("socket").inet_pton(__import__("socket").AF_INET6, "2001:db8:2::10")
    assert codec.pedit_address_of(keys) == "2001:db8:2::10" and codec.pedit_port_of(keys) == 1514
    assert layout.action_text(actions[1], {}) == "action pedit munge ip6 dst set 2001:db8:2::10 munge offset 42 u16 " \
                                                 "set 1514 pipe"
    assert layout.action_text(actions[2], {}) == "action csum udp pipe"
    # read back as it was written (the have side of the planner)
    node = layout.destination_nodes(dest)[0]
    decoded = [dict(a, address=codec.pedit_address_of(codec.unpack_pedit(
        codec.encode_action(a)["attrs"][1][1]["attrs"][0][1])["keys"])) if a["kind"] == "pedit" else a
        for a in node["actions"]]
    back = layout.have_destination([dict(node, actions=decoded)], {2: "ens2"}, 6)
    assert back["address"] == "2001:db8:2::10" and back["mode"] == "forward" and back["port"] == 1514


def test_forward_destinations_go_to_their_own_family_and_decide_its_original():
    dev = dev6(families=[4, 6], addresses=["10.1.0.2", "2001:db8:1::2"], sources=["10.1.0.0/24", "2001:db8:1::/64"])
    four_fwd = {"name": "c4", "mode": "forward", "address": "192.0.2.10", "sources": []}
    six_fwd = {"name": "c6", "mode": "forward", "address": "2001:db8:2::10", "sources": []}
    dev["ports"][0].update(destinations=[MIRROR, four_fwd, six_fwd], originals={4: "drop", 6: "drop"})
    assert [d["name"] for d in layout.family_view(dev, 4)["ports"][0]["destinations"]] == ["ids", "c4"]
    assert [d["name"] for d in layout.family_view(dev, 6)["ports"][0]["destinations"]] == ["ids", "c6"]
    assert layout.family_view(dev, 6)["ports"][0]["original"] == "drop"
