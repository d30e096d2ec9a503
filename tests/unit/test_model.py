"""Validation: every problem named by its field, nothing resolved from a bad state."""
import pytest

from ansible_collections.netops.logfwdr.plugins.module_utils.tc import layout, model


class FakeHost(model.Resolver):
    LINKS = {"ens1": 1, "ens2": 2, "ens3": 3, "tool0": 4}

    def __init__(self, neighbours=None):
        self.neighbours = neighbours if neighbours is not None else {("ens2", "192.0.2.1"): "52:54:00:00:00:01",
                                                                     ("ens2", "192.0.2.10"): "52:54:00:00:00:10"}
        self.asked = []

    def link(self, name):
        if name not in self.LINKS:
            return None
        return {"ifindex": self.LINKS[name], "mac": "02:00:00:00:00:%02x" % self.LINKS[name], "up": True}

    def route(self, address):
        if address.startswith("192.0.2."):
            return {"device": "ens2", "gateway": None}
        if address.startswith("198.51.100."):
            return {"device": "ens2", "gateway": "192.0.2.1"}
        if address.startswith("2001:db8:2:"):
            return {"device": "ens2", "gateway": "fe80::1"}
        return None

    def neighbour(self, device, address):
        self.asked.append((device, address))
        return self.neighbours.get((device, address))

    def subnets(self, name, family=4):
        if family == 6:
            return ["2001:db8:1::/64"] if name == "ens1" else []
        return ["10.1.0.0/24"] if name == "ens1" else []


def state(*dests, **port):
    return {"devices": [{"name": "ens1", "ports": [dict({"port": "syslog", "destinations": list(dests)}, **port)]}]}


def problems(params, host=None):
    with pytest.raises(model.ValidationError) as info:
        model.validate(params, host or FakeHost())
    return info.value.problems


def test_forward_destination_resolves_device_and_macs():
    devs = model.validate(state({"address": "192.0.2.10"}), FakeHost())
    dest = devs[0]["ports"][0]["destinations"][0]
    assert devs[0]["ports"][0]["port"] == 514 and devs[0]["ports"][0]["original"] == "drop"
    assert (dest["name"], dest["device"], dest["ifindex"]) == ("192.0.2.10", "ens2", 2)
    assert dest["next_hop_mac"] == "52:54:00:00:00:10" and dest["source_mac"] == "02:00:00:00:00:02"


def test_next_hop_is_the_gateway_when_the_route_has_one():
    host = FakeHost()
    dest = model.validate(state({"address": "198.51.100.7"}), host)[0]["ports"][0]["destinations"][0]
    assert host.asked == [("ens2", "192.0.2.1")] and dest["next_hop_mac"] == "52:54:00:00:00:01"


def test_explicit_values_override_lookups():
    host = FakeHost()
    dest = model.validate(state({"address": "203.0.113.5", "device": "ens3", "next_hop_mac": "AA:BB:CC:DD:EE:FF"}),
                          host)[0]["ports"][0]["destinations"][0]
    assert host.asked == [] and dest["device"] == "ens3" and dest["next_hop_mac"] == "aa:bb:cc:dd:ee:ff"


def test_mirror_only_port_passes_the_original_by_default():
    devs = model.validate(state({"mode": "mirror", "device": "tool0"}), FakeHost())
    assert devs[0]["ports"][0]["original"] == "pass"
    assert devs[0]["ports"][0]["destinations"][0]["name"] == "tool0"


@pytest.mark.parametrize("port,ok", [(1, 514 - 513), ("ipfix", 4739), ("162", 162), (0, None), (65536, None),
                                     ("sysl0g", None), (True, None)])
def test_ports(port, ok):
    assert model.parse_port(port) == ok


@pytest.mark.parametrize("dest,field,words", [
    ({"address": "192.0.2.300"}, "destinations[0].address", "not a unicast IPv4 or global IPv6 address"),
    ({"address": "fe80::10"}, "destinations[0].address", "'fe80::10' is not a unicast IPv4 or global IPv6 address"),
    ({"address": "192.0.2.10", "sources": ["2001:db8::/32"]}, "destinations[0].sources[0]",
     "2001:db8::/32 is an IPv6 prefix; a forward destination gets only the packets of its collector's address "
     "family (IPv4)"),
    ({}, "destinations[0].address", "needs the collector's IPv4 or IPv6 address"),
    ({"address": "192.0.2.10", "port": 70000}, "destinations[0].port", "not a UDP port"),
    ({"address": "192.0.2.10", "device": "eth9"}, "destinations[0].device", "no interface named 'eth9'"),
    ({"address": "10.9.9.9"}, "destinations[0].address", "no route to 10.9.9.9"),
    ({"address": "192.0.2.99"}, "destinations[0]", "did not answer ARP"),
    ({"address": "192.0.2.10", "name": "a-very-long-collector"}, "destinations[0].name", "at most 15"),
    ({"address": "192.0.2.10", "next_hop_mac": "zz"}, "destinations[0].next_hop_mac", "not a MAC address"),
    ({"address": "192.0.2.10", "sources": ["10.0.0.1/8"]}, "destinations[0].sources[0]", "not an IPv4 or IPv6 prefix"),
    ({"address": "192.0.2.10", "rate_limit": 0}, "destinations[0].rate_limit", "above 0"),
    ({"address": "192.0.2.10", "burst": 5}, "destinations[0].burst", "only meaningful with rate_limit"),
    ({"address": "192.0.2.10", "sample": 0}, "destinations[0].sample", "from 2 to 65535"),
    ({"address": "192.0.2.10", "sample": 65536}, "destinations[0].sample", "from 2 to 65535"),
    ({"address": "192.0.2.10", "sample": True}, "destinations[0].sample", "from 2 to 65535"),
    ({"mode": "mirror", "device": "tool0", "address": "192.0.2.10"}, "destinations[0].address", "unchanged"),
    ({"mode": "mirror"}, "destinations[0].device", "tool port"),
    ({"mode": "bounce"}, "destinations[0].mode", "forward or mirror"),
    ({"address": "192.0.2.10", "device": "ens1"}, "destinations[0].device", "ingress interface"),
])
def test_bad_destination_names_the_field(dest, field, words):
    found = problems(state(dest))
    assert len(found) == 1, found
    assert found[0].startswith("devices[0].ports[0].%s" % field) and words in found[0], found[0]


def test_every_problem_is_reported_at_once():
    params = {"devices": [
        {"name": "nope", "ports": []},
        {"name": "ens1", "ports": [{"port": 0, "destinations": [{"address": "x"}]},
                                   {"port": "syslog", "original": "pass", "destinations": [{"address": "192.0.2.10"}]},
                                   {"port": 514, "destinations": [{"mode": "mirror", "device": "tool0"}]}]},
    ]}
    found = problems(params)
    assert any(p.startswith("devices[0].name: no interface named 'nope'") for p in found)
    assert any(p.startswith("devices[1].ports[0].port: 0 is not a UDP port") for p in found)
    assert any(p.startswith("devices[1].ports[0].destinations[0].address") for p in found)
    assert any(p.startswith("devices[1].ports[1].original: pass would deliver") for p in found)
    assert any(p.startswith("devices[1].ports[2].port: port 514 is already listed") for p in found)


def v6dev(dests=None, **dev):
    return {"priority": 5140, "devices": [dict({"name": "ens1", "ports": [{"port": 514, "destinations": dests or [
        {"mode": "mirror", "device": "tool0"}]}]}, **dev)]}


@pytest.mark.parametrize("dev, field, words", [
    ({"addresses": ["fe80::1"]}, "addresses[0]", "is not a unicast IPv4 or global IPv6 address"),
    ({"addresses": ["ff02::1"]}, "addresses[0]", "is not a unicast IPv4 or global IPv6 address"),
    ({"addresses": ["10.1.0.2"], "sources": ["10.1.0.0/24", "2001:db8:1::/48"]}, "sources[1]",
     "2001:db8:1::/48 is an IPv6 prefix but no address in devices[0].addresses is"),
    ({"addresses": ["10.1.0.2", "2001:db8:1::2"], "sources": ["10.1.0.0/24"]}, "sources",
     "no IPv6 prefix, so IPv6 exporters would be accepted from any source; list them (::/0 accepts any source)"),
    ({"addresses": ["2001:db8:1::2"], "sources": ["2001:db8:1::1/64"]}, "sources[0]", "host bits set"),
])
def test_bad_ipv6_device_scope_names_the_field(dev, field, words):
    found = problems(v6dev(**dev))
    assert len(found) == 1 and found[0].startswith("devices[0].%s: " % field) and words in found[0], found


def test_ipv6_address_enables_the_ipv6_family_with_the_connected_prefixes():
    dev = model.validate(v6dev(addresses=["10.1.0.2", "2001:db8:1::2"]), FakeHost())[0]
    assert dev["families"] == [4, 6]
    assert dev["addresses"] == ["10.1.0.2", "2001:db8:1::2"]
    assert dev["sources"] == ["10.1.0.0/24", "2001:db8:1::/64"]
    six = layout.family_view(dev, 6)
    assert six["addresses"] == ["2001:db8:1::2"] and six["sources"] == ["2001:db8:1::/64"]
    assert [p["original"] for p in six["ports"]] == ["pass"]
    four = layout.family_view(dev, 4)
    assert four["addresses"] == ["10.1.0.2"] and four["sources"] == ["10.1.0.0/24"]
    only6 = model.validate(v6dev(addresses=["2001:db8:1::2"]), FakeHost())[0]
    assert only6["families"] == [6] and layout.family_view(only6, 4)["ports"] == []
    # without an IPv6 address, IPv6 is not copied (and the connected IPv6 prefix is not taken)
    plain = model.validate(v6dev(addresses=["10.1.0.2"]), FakeHost())[0]
    assert plain["families"] == [4] and plain["sources"] == ["10.1.0.0/24"] and layout.family_view(plain, 6)["ports"] == []


def test_ipv6_only_device_refuses_forward_destinations_and_the_last_priority():
    found = problems(v6dev([{"address": "192.0.2.10"}], addresses=["2001:db8:1::2"]))
    assert found == ["devices[0].ports[0].destinations[0]: a forward destination gets the packets of its own address "
                     "family (IPv4), and devices[0].addresses has no IPv4 address; add the one exporters send to, "
                     "or use mode: mirror"]
    params = v6dev(addresses=["2001:db8:1::2"])
    params["priority"] = 65535
    assert problems(params) == ["priority: 65535; IPv6 (devices[0].addresses) is copied by rules at the next "
                                "priority, so use at most 65534"]


def test_ipv6_view_keeps_mirror_destinations_that_allow_ipv6():
    dests = [{"address": "192.0.2.10", "name": "fwd"},
             {"mode": "mirror", "device": "tool0", "name": "all"},
             {"mode": "mirror", "device": "ens3", "name": "v4only", "sources": ["10.1.0.0/25"]},
             {"mode": "mirror", "device": "ens2", "name": "mixed", "sources": ["2001:db8:1::/80", "10.1.0.0/25"]}]
    dev = model.validate(v6dev(dests, addresses=["10.1.0.2", "2001:db8:1::2"]), FakeHost())[0]
    assert dev["ports"][0]["original"] == "drop"  # the forward destination's rewritten IPv4 original
    port6 = layout.family_view(dev, 6)["ports"][0]
    assert [(d["name"], d.get("sources")) for d in port6["destinations"]] == [
        ("all", []), ("mixed", ["2001:db8:1::/80"])]
    assert port6["original"] == "pass"  # nothing rewrites an IPv6 packet: it goes on to the local stack
    port4 = layout.family_view(dev, 4)["ports"][0]
    assert [d["name"] for d in port4["destinations"]] == ["fwd", "all", "v4only", "mixed"]


def test_an_ipv6_collector_is_forwarded_to_through_its_ipv6_next_hop():
    neighbours = dict(FakeHost().neighbours)
    neighbours[("ens2", "fe80::1")] = "52:54:00:00:00:61"
    host = FakeHost(neighbours)
    dests = [{"address": "2001:db8:2::10", "name": "c6"}, {"address": "192.0.2.10", "name": "c4"}]
    dev = model.validate(v6dev(dests, addresses=["10.1.0.2", "2001:db8:1::2"]), host)[0]
    c6 = [d for d in dev["ports"][0]["destinations"] if d["name"] == "c6"][0]
    assert (c6["device"], c6["next_hop_mac"]) == ("ens2", "52:54:00:00:00:61") and ("ens2", "fe80::1") in host.asked
    assert dev["ports"][0]["originals"] == {4: "drop", 6: "drop"}
    pending = []
    model.validate(v6dev(dests, addresses=["10.1.0.2", "2001:db8:1::2"]), FakeHost(), pending)
    assert [(p["name"], p["reason"]) for p in pending] == [
        ("c6", "next hop fe80::1 on ens2 did not answer neighbour discovery")]
    found = problems(v6dev(dests[:1], addresses=["10.1.0.2"]), host)
    assert found == ["devices[0].ports[0].destinations[0]: a forward destination gets the packets of its own address "
                     "family (IPv6), and devices[0].addresses has no IPv6 address; add the one exporters send to, or "
                     "use mode: mirror"]


def test_an_ipv4_typo_is_not_called_ipv6():
    found = problems(state({"address": "192.0.2.300", "sources": ["10.0.0.1/8"]}))
    assert len(found) == 2 and not [p for p in found if "not supported" in p or "IPv6 prefix;" in p], found


def test_duplicates():
    found = problems(state({"address": "192.0.2.10"}, {"address": "192.0.2.10"}))
    assert any("name: '192.0.2.10' is used twice" in p for p in found)
    assert any("same target as destinations[0]" in p for p in found)
    found = problems(state({"address": "192.0.2.10", "name": "a"}, {"address": "192.0.2.10", "name": "b"}))
    assert found == ["devices[0].ports[0].destinations[1]: same target as destinations[0]; every packet would be "
                     "sent twice"]


def test_overlapping_sources_are_collapsed():
    dest = model.validate(state({"address": "192.0.2.10", "sources": ["10.1.0.0/16", "10.0.0.0/8", "10.0.0.0/9"]}),
                          FakeHost())[0]["ports"][0]["destinations"][0]
    assert dest["sources"] == ["10.0.0.0/8"]
    assert len(layout.destination_nodes(dest)) == 1


def test_sample_is_kept_and_needs_gact():
    devs = model.validate(state({"mode": "mirror", "device": "tool0", "sample": 10}), FakeHost())
    dest = devs[0]["ports"][0]["destinations"][0]
    assert dest["sample"] == 10 and model.public_destination(dest)["sample"] == 10
    assert layout.kernel_features(devs) == {"ingress", "u32", "gact", "mirred"}
    node = layout.destination_nodes(dest)[0]
    assert layout.have_destination([node], {dest["ifindex"]: "tool0"})["sample"] == 10
    assert layout.action_text(node["actions"][0], {}) == "action gact continue random determ pipe 10"
    # 1 is every packet: no sampling action at all
    every = model.validate(state({"mode": "mirror", "device": "tool0", "sample": 1}), FakeHost())
    assert "sample" not in every[0]["ports"][0]["destinations"][0]


def test_default_burst_and_features():
    devs = model.validate(state({"address": "192.0.2.10", "port": 1514, "rate_limit": 500}), FakeHost())
    assert devs[0]["ports"][0]["destinations"][0]["burst"] == 50
    assert layout.kernel_features(devs) == {"ingress", "u32", "gact", "police", "skbmod", "pedit", "csum",
                                            "mirred"}
    mirror = model.validate(state({"mode": "mirror", "device": "tool0"}), FakeHost())
    assert layout.kernel_features(mirror) == {"ingress", "u32", "mirred"}


# ---- collector pools ---------------------------------------------------------

def test_pool_members_keep_their_pool_and_need_no_other_action():
    host = FakeHost(neighbours={("ens2", "192.0.2.10"): "52:54:00:00:00:10", ("ens2", "192.0.2.11"): "52:54:00:00:00:11"})
    devs = model.validate(state({"address": "192.0.2.10", "pool": "nfc"}, {"address": "192.0.2.11", "pool": "nfc"},
                                {"address": "192.0.2.10", "port": 1514, "name": "solo"}), host)
    dests = devs[0]["ports"][0]["destinations"]
    assert [d.get("pool") for d in dests] == ["nfc", "nfc", None]
    assert model.public_destination(dests[0])["pool"] == "nfc"
    mirrors = model.validate(state({"mode": "mirror", "device": "tool0", "pool": "ids"}), host)
    assert layout.kernel_features(mirrors) == {"ingress", "u32", "mirred"}  # the host kernels without act_gact


def test_a_pending_member_is_left_out_of_its_pool():
    host = FakeHost(neighbours={("ens2", "192.0.2.10"): "52:54:00:00:00:10"})
    pending = []
    devs = model.validate(state({"address": "192.0.2.10", "pool": "nfc"}, {"address": "192.0.2.11", "pool": "nfc"}),
                          host, pending)
    assert [d["name"] for d in devs[0]["ports"][0]["destinations"]] == ["192.0.2.10"]
    assert [p["name"] for p in pending] == ["192.0.2.11"]


@pytest.mark.parametrize("extra,field", [({"sources": ["10.1.0.0/24"]}, "sources"), ({"rate_limit": 100}, "rate_limit"),
                                         ({"sample": 4}, "sample")])
def test_a_pool_member_cannot_have_per_member_counters(extra, field):
    found = problems(state(dict({"address": "192.0.2.10", "pool": "nfc"}, **extra)))
    assert [p for p in found if p.startswith("devices[0].ports[0].destinations[0].%s: a pool member" % field)], found


def test_a_pool_of_mixed_kinds_or_a_bad_name_is_refused():
    found = problems(state({"address": "192.0.2.10", "pool": "nfc"}, {"mode": "mirror", "device": "tool0", "pool": "nfc"}))
    assert any(p.startswith("devices[0].ports[0].destinations[1].pool: pool 'nfc' mixes") for p in found), found
    found = problems(state({"address": "192.0.2.10", "pool": "a name with spaces"}))
    assert any(p.startswith("devices[0].ports[0].destinations[0].pool: 'a name with spaces'") for p in found), found
    found = problems(state({"address": "192.0.2.10", "pool": "x" * 15}))
    assert any("at most 14 printable" in p for p in found), found


def test_a_pool_has_at_most_sixteen_members():
    host = FakeHost(neighbours=dict((("ens2", "192.0.2.%d" % i), "52:54:00:00:00:%02x" % i) for i in range(1, 20)))
    found = problems(state(*[{"address": "192.0.2.%d" % i, "pool": "nfc"} for i in range(1, 18)]), host)
    assert any("pool 'nfc' has 17 members; at most 16" in p for p in found), found


def test_fragments_reassemble_needs_act_ct_and_a_bad_mode_names_the_field():
    host = FakeHost(neighbours={("ens2", "192.0.2.10"): "52:54:00:00:00:10"})
    params = state({"address": "192.0.2.10"})
    params["devices"][0]["fragments"] = "reassemble"
    devs = model.validate(params, host)
    assert devs[0]["fragments"] == "reassemble"
    assert "ct" in layout.kernel_features(devs)
    params["devices"][0]["fragments"] = "all"
    (text,) = problems(params, host)
    assert text.startswith("devices[0].fragments: 'all' is not one of first, reassemble"), text
    del params["devices"][0]["fragments"]
    assert model.validate(params, host)[0]["fragments"] == "first"
