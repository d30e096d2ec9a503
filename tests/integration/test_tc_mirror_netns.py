# -*- coding: utf-8 -*-
"""tc_mirror and tc_mirror_info against the host kernel, in throwaway network namespaces.

Real datagrams from the exporter namespace (10.77.0.2) are received by UDP
sockets in receiver namespaces behind tool<i>; kernel state is read back
with tc_mirror_info and `tc filter show`.

Run: cd /work/main && python -m pytest -q tests/integration -m netns
(LOGFWDR_TEST_PYTHONS=/opt/pr-0.7.2/bin/python:/opt/lf-venv/bin/python for several pyroute2 releases)
"""

import json
import os
import subprocess
import sys
import tempfile

from lflab import netlab
import pytest

sys.path.insert(0, netlab.ensure_collection_path())
from ansible_collections.netops.logfwdr.plugins.module_utils.tc.layout import DEFAULT_PRIORITY  # noqa: E402

from conftest import (EXPORTER_IP, SPOILING_DRIVER, Rig, Timer, blocks_at, command_handles, dest_nodes,
                      filter_blocks, new_lab, parse_nodes, strip_counters)

pytestmark = pytest.mark.netns

PRIO = DEFAULT_PRIORITY


def mirror(name, device, **extra):
    return dict(extra, name=name, mode="mirror", device=device)


def state(*ports, **kw):
    """tc_mirror args for in0 with the given ports [(port, [destinations])]."""
    args = {"devices": [{"name": "in0", "ports": [{"port": p, "destinations": list(d)} for p, d in ports]}]}
    args.update(kw)
    return args


# 514 -> rx0, rx1; 2055 -> rx1, rx2; rx3 (when present) gets nothing
STATE_A = state(("syslog", [mirror("col0", "tool0"), mirror("col1", "tool1")]),
                (2055, [mirror("col1", "tool1"), mirror("col2", "tool2")]))
EXPECT_A = {0: {514}, 1: {514, 2055}, 2: {2055}}
# A with col3 added to 514 and col0 taken from it
STATE_B = state(("syslog", [mirror("col1", "tool1"), mirror("col3", "tool3")]),
                (2055, [mirror("col1", "tool1"), mirror("col2", "tool2")]))
EXPECT_B = {1: {514, 2055}, 2: {2055}, 3: {514}}


def payloads(tag, port, count=3):
    return ["%s-%d-%d" % (tag, port, i) for i in range(count)]


def send_and_check(rig, expect, tag, ports=(514, 2055, 9999), count=3):
    """Send `count` datagrams to each port; receiver i must get exactly those of ports expect[i]."""
    sends = dict((p, payloads(tag, p, count)) for p in ports)
    got = rig.exchange(sends)
    for i, received in got.items():
        want = sorted((p, EXPORTER_IP, data) for p in sorted(expect.get(i, ())) for data in sends[p])
        assert received == want, "receiver %d: got %r, want %r" % (i, received, want)
    return got


def info_names(result):
    return dict((p["port"], sorted(d["name"] for d in p["destinations"]))
                for dev in result["devices"] for p in dev["ports"])


def test_interpreter_uses_its_own_pyroute2(interp):
    """The module environment imports the interpreter's own pyroute2 (not the one next to ansible)."""
    code = ("import json, pyroute2, ansible\n"
            "from ansible_collections.netops.logfwdr.plugins.module_utils.tc import kernel, codec\n"
            "import sys\n"
            "print(json.dumps({'version': pyroute2.__version__, 'file': pyroute2.__file__,"
            " 'kernel_ipr': sys.modules[kernel.IPRoute.__module__].__file__, 'has': codec.HAS_PYROUTE2}))")
    proc = subprocess.run([interp.path, "-c", code], env=interp.env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, check=False)
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout)
    assert interp.native.get("pyroute2"), interp.native
    assert seen["has"] is True
    assert seen["version"] == interp.native["pyroute2"]
    if interp.native.get("pyroute2_dist"):
        assert seen["version"] == interp.native["pyroute2_dist"]
    assert os.path.realpath(seen["file"]) == os.path.realpath(interp.native["pyroute2_file"])
    assert os.path.realpath(seen["kernel_ipr"]).startswith(os.path.realpath(interp.native["site"]))
    print("%s -> pyroute2 %s from %s" % (interp.path, seen["version"], seen["file"]))


# ---- 1, 2: delivery and idempotence ----------------------------------------

def test_mirror_delivery_and_idempotence(rig):
    rig.lab.add_receivers(4)
    first = rig.apply(STATE_A)
    assert first["changed"] is True and first["commands"]
    assert info_names(rig.info()) == {514: ["col0", "col1"], 2055: ["col1", "col2"]}
    send_and_check(rig, EXPECT_A, "a")
    # the kernel's own interface counters agree: 3 datagrams per assigned port, nothing else
    for i in range(4):
        assert rig.lab.rx_packets(i) == 3 * len(EXPECT_A.get(i, ())), i

    second = rig.run(STATE_A)
    assert second.get("failed") is not True, second
    assert second["changed"] is False
    assert second["commands"] == []
    third = rig.run(STATE_A, check_mode=True)
    assert third["changed"] is False and third["commands"] == []
    send_and_check(rig, EXPECT_A, "a2")


# ---- 3, 4: check mode and diff mode ------------------------------------------

def test_check_mode_changes_nothing(rig):
    rig.lab.add_receivers(4)
    before = rig.snapshot()
    res = rig.run(STATE_A, check_mode=True)
    assert res.get("failed") is not True, res
    assert res["changed"] is True
    assert "tc qdisc add dev in0 ingress" in res["commands"]
    assert any("cookie %s" % b"\xf1col2".hex() in c for c in res["commands"])
    assert "col0" in res["diff"]["after"] and res["diff"]["before"] == ""
    assert info_names({"devices": res["devices"]}) == {514: ["col0", "col1"], 2055: ["col1", "col2"]}
    assert rig.snapshot() == before
    assert "ingress" not in rig.tc("qdisc", "show", "dev", "in0")
    assert rig.info()["devices"] == []
    send_and_check(rig, {}, "c0")

    rig.apply(STATE_A)
    before = rig.snapshot()
    info_before = strip_counters(rig.info()["devices"])
    res = rig.run(STATE_B, check_mode=True)
    assert res["changed"] is True and res["commands"]
    assert info_names({"devices": res["devices"]}) == {514: ["col1", "col3"], 2055: ["col1", "col2"]}
    assert rig.snapshot() == before
    assert strip_counters(rig.info()["devices"]) == info_before
    send_and_check(rig, EXPECT_A, "c1")


def test_diff_mode(rig):
    rig.lab.add_receivers(4)
    res = rig.apply(STATE_A)
    assert res["diff"]["before"] == ""
    for name in ("col0", "col1", "col2", "udp/514", "udp/2055", "tool2"):
        assert name in res["diff"]["after"], name
    res = rig.apply(STATE_B)
    assert "col0" in res["diff"]["before"] and "col0" not in res["diff"]["after"]
    assert "col3" in res["diff"]["after"] and "col3" not in res["diff"]["before"]
    res = rig.run(STATE_A, diff=False, check_mode=True)
    assert res["changed"] is True and "diff" not in res
    send_and_check(rig, EXPECT_B, "d")


# ---- 5: minimal change -------------------------------------------------------

def _node_table(rig):
    return parse_nodes(rig.filters(stats=True))


def test_minimal_change(rig):
    rig.lab.add_receivers(4)
    dests = [mirror("col0", "tool0"), mirror("col1", "tool1"), mirror("col2", "tool2")]
    other = (2055, [mirror("col0", "tool0")])
    rig.apply(state(("syslog", dests), other))
    send_and_check(rig, {0: {514, 2055}, 1: {514}, 2: {514}}, "m0")
    nodes0 = _node_table(rig)
    by_name0 = dest_nodes(rig.filters(stats=True), 514)
    assert sorted(by_name0) == ["col0", "col1", "col2"]
    assert all(nodes0[fh[0]]["packets"] == 3 for fh in by_name0.values())

    def untouched(before, after, skip):
        for fh, node in before.items():
            if fh in skip:
                continue
            assert fh in after, fh
            assert after[fh]["index"] == node["index"], (fh, node, after[fh])
            assert after[fh]["packets"] == node["packets"], ("counter reset", fh, node, after[fh])

    # add col3
    res = rig.apply(state(("syslog", dests + [mirror("col3", "tool3")]), other))
    nodes1 = _node_table(rig)
    by_name1 = dest_nodes(rig.filters(stats=True), 514)
    new = set(by_name1["col3"])
    assert len(new) == 1 and not new & set(nodes0)
    assert set(command_handles(res["commands"])) == new, res["commands"]
    untouched(nodes0, nodes1, ())
    send_and_check(rig, {0: {514, 2055}, 1: {514}, 2: {514}, 3: {514}}, "m1", count=2)
    nodes1 = _node_table(rig)
    for name, fhs in by_name1.items():
        assert nodes1[fhs[0]]["packets"] == (2 if name == "col3" else 5), name

    # change col1's allow-list (the exporter stays inside it)
    dests[1] = mirror("col1", "tool1", sources=["10.77.0.0/30"])
    res = rig.apply(state(("syslog", dests + [mirror("col3", "tool3")]), other))
    by_name2 = dest_nodes(rig.filters(stats=True), 514)
    col1 = set(by_name1["col1"]) | set(by_name2["col1"])
    # cls_u32 keeps a node's selector on replace, so new keys come as a new node and the old one goes
    assert set(command_handles(res["commands"])) <= col1, res["commands"]
    assert set(command_handles(res["commands"])) & set(by_name2["col1"]), res["commands"]
    nodes2 = _node_table(rig)
    untouched(nodes1, nodes2, col1)
    blocks = dict((b[2], b[3]) for b in filter_blocks(rig.filters()))
    assert len(by_name2["col1"]) == 1 and "0a4d0000/fffffffc at 12" in blocks[by_name2["col1"][0]]
    send_and_check(rig, {0: {514, 2055}, 1: {514}, 2: {514}, 3: {514}}, "m2", count=1)
    nodes2b = _node_table(rig)
    assert nodes2b[by_name1["col0"][0]]["packets"] == 6
    assert nodes2b[by_name2["col1"][0]]["packets"] == 1  # a new node: its counters start again (documented)

    # remove col2
    res = rig.apply(state(("syslog", [dests[0], dests[1], mirror("col3", "tool3")]), other))
    assert set(command_handles(res["commands"])) == set(by_name1["col2"]), res["commands"]
    assert all(c.split()[2] == "del" for c in res["commands"]), res["commands"]
    nodes3 = _node_table(rig)
    assert not set(by_name1["col2"]) & set(nodes3)
    untouched(nodes2b, nodes3, set(by_name1["col2"]))
    send_and_check(rig, {0: {514, 2055}, 1: {514}, 3: {514}}, "m3", count=1)


# ---- 6: source allow-lists ----------------------------------------------------

def test_source_allow_list(rig):
    rig.lab.add_receivers(4)
    res = rig.apply(state(("syslog", [
        mirror("near", "tool0", sources=["10.77.0.0/30"]),
        mirror("far", "tool1", sources=["192.0.2.0/24"]),
        mirror("all", "tool2"),
        mirror("multi", "tool3", sources=["192.0.2.0/24", "10.77.0.2/32"]),
    ])))
    assert len(dest_nodes(rig.filters(stats=True), 514)["multi"]) == 2  # one node per prefix
    send_and_check(rig, {0: {514}, 2: {514}, 3: {514}}, "s", count=4)
    counters = dict((d["name"], d["counters"]["packets"]) for d in rig.info()["devices"][0]["ports"][0]
                    ["destinations"])
    assert counters == {"near": 4, "far": 0, "all": 4, "multi": 4}
    assert rig.run(state(("syslog", [
        mirror("near", "tool0", sources=["10.77.0.0/30"]),
        mirror("far", "tool1", sources=["192.0.2.0/24"]),
        mirror("all", "tool2"),
        mirror("multi", "tool3", sources=["10.77.0.2/32", "192.0.2.0/24"]),
    ])))["changed"] is False
    assert res["devices"][0]["ports"][0]["destinations"][2]["sources"] == ["10.77.0.2/32", "192.0.2.0/24"]


# ---- 7: foreign filters --------------------------------------------------------

FOREIGN_PRIOS = (10, 20)


def _install_foreign(rig, spare="tool3"):
    rig.tc("qdisc", "add", "dev", "in0", "ingress")
    rig.tc(*("filter add dev in0 ingress protocol ip prio 10 u32 match ip dport 9999 0xffff "
             "action mirred egress mirror dev %s" % spare).split())
    rig.tc(*"filter add dev in0 ingress protocol ip prio 20 handle 100: u32 divisor 1".split())
    rig.tc(*"filter add dev in0 ingress protocol ip prio 20 handle 100::1 u32 ht 100: match u32 0 0".split())
    foreign = blocks_at(rig.filters(), FOREIGN_PRIOS)
    assert len(foreign) >= 5, foreign
    return foreign


def test_foreign_filters_survive(rig):
    rig.lab.add_receivers(4)
    foreign = _install_foreign(rig)
    res = rig.apply(STATE_A)
    assert not any("qdisc" in c for c in res["commands"]), res["commands"]
    handles = command_handles(res["commands"])
    assert "100:" not in handles and not any(h and h.startswith("100::") for h in handles), res["commands"]
    assert blocks_at(rig.filters(), FOREIGN_PRIOS) == foreign
    assert rig.run(STATE_A)["changed"] is False
    expect = dict((i, set(p) | ({9999} if i == 3 else set())) for i, p in EXPECT_A.items())
    expect[3] = {9999}
    send_and_check(rig, expect, "f0")

    rig.apply(STATE_B)
    assert blocks_at(rig.filters(), FOREIGN_PRIOS) == foreign
    expect = dict((i, set(p)) for i, p in EXPECT_B.items())
    expect[3] = expect[3] | {9999}
    send_and_check(rig, expect, "f1")

    res = rig.apply({"state": "absent"})
    assert res["changed"] is True and res["devices"] == []
    after = rig.filters()
    assert [b for b in filter_blocks(after) if b[0] not in FOREIGN_PRIOS] == []
    assert blocks_at(after, FOREIGN_PRIOS) == foreign
    assert "ingress" in rig.tc("qdisc", "show", "dev", "in0")
    assert rig.info()["devices"] == []
    send_and_check(rig, {3: {9999}}, "f2")
    again = rig.run({"state": "absent"})
    assert again["changed"] is False and again["commands"] == []


# ---- 8: whole desired state ---------------------------------------------------

def test_unlisted_devices_lose_rules(rig):
    rig.lab.add_receivers(3)
    netlab.sh("ip", "-n", rig.lab.rep, "link", "add", "in1", "type", "veth", "peer", "name", "in1p")
    netlab.sh("ip", "-n", rig.lab.rep, "link", "set", "in1", "up")
    netlab.sh("ip", "-n", rig.lab.rep, "link", "set", "in1p", "up")
    both = state(("syslog", [mirror("col0", "tool0")]))
    # in1 has no address to take the exporters' subnet from: any source
    both["devices"].append({"name": "in1", "sources": ["0.0.0.0/0"],
                            "ports": [{"port": 2055, "destinations": [mirror("col1", "tool1")]}]})
    rig.apply(both)
    assert sorted(d["name"] for d in rig.info()["devices"]) == ["in0", "in1"]
    in0 = rig.filters("in0")

    res = rig.apply(state(("syslog", [mirror("col0", "tool0")])))
    assert res["changed"] is True
    assert res["commands"] and all(" dev in1 " in c for c in res["commands"]), res["commands"]
    assert [b for b in filter_blocks(rig.filters("in1")) if b[0] == PRIO] == []
    assert rig.filters("in0") == in0
    assert [d["name"] for d in rig.info()["devices"]] == ["in0"]
    send_and_check(rig, {0: {514}}, "u0")

    # absent on a named device only touches that device
    rig.apply(both)
    res = rig.apply({"state": "absent", "devices": [{"name": "in1"}]})
    assert res["commands"] and all(" dev in1 " in c for c in res["commands"]), res["commands"]
    assert rig.filters("in0") == in0
    assert [d["name"] for d in rig.info()["devices"]] == ["in0"]


# ---- 9: 64 destinations on one port --------------------------------------------

@pytest.fixture(scope="module")
def lab64():
    lab = new_lab()
    try:
        lab.add_receivers(64)
        yield lab
    finally:
        lab.close()


def test_64_destinations(lab64, interp, capsys):
    rig = Rig(lab64, interp)
    args = state(("syslog", [mirror("d%02d" % i, "tool%d" % i) for i in range(64)]))
    with Timer() as t:
        res = rig.apply(args)
    with capsys.disabled():  # informational only
        print("\n[64 destinations applied in %.2f s with %s, %d commands, module start included]"
              % (t.seconds, interp.id, len(res["commands"])))
    try:
        assert len(info_names(rig.info())[514]) == 64
        got = rig.exchange({514: payloads("w", 514, 3)}, ports=(514,))
        want = sorted((514, EXPORTER_IP, p) for p in payloads("w", 514, 3))
        assert [i for i in range(64) if got[i] != want] == []
        assert rig.run(args)["changed"] is False
    finally:
        res = rig.run({"state": "absent"})
        assert res.get("failed") is not True, res
    assert [b for b in filter_blocks(rig.filters()) if b[0] == PRIO] == []


# ---- 10: chain ---------------------------------------------------------------

def test_chain(rig):
    rig.lab.add_receivers(3)
    rig.tc("qdisc", "add", "dev", "in0", "ingress")
    # act_mirred can goto chain itself: no act_gact needed for the jump (checked on 6.18 without gact)
    rig.tc(*("filter add dev in0 ingress protocol ip prio 1 u32 match u32 0 0 "
             "action mirred egress mirror dev tool2 goto chain 5").split())
    jump = blocks_at(rig.filters(), (1,))
    args = state(("syslog", [mirror("col0", "tool0")]), (2055, [mirror("col1", "tool1")]), chain=5)
    res = rig.apply(args)
    assert all(" ingress chain 5 " in c for c in res["commands"]), res["commands"]
    in5 = filter_blocks(rig.filters(chain=5))
    assert in5 and all(b[0] == PRIO for b in in5)
    assert blocks_at(rig.filters(), (1,)) == jump
    assert [b for b in filter_blocks(rig.filters()) if b[0] == PRIO and b[1] != 5] == []
    assert info_names(rig.info(chain=5)) == {514: ["col0"], 2055: ["col1"]}
    assert rig.info()["devices"] == []
    assert rig.run(args)["changed"] is False
    send_and_check(rig, {0: {514}, 1: {2055}, 2: {514, 2055, 9999}}, "ch")
    res = rig.apply({"state": "absent", "chain": 5})
    assert res["changed"] is True
    assert rig.filters(chain=5) == ""
    assert filter_blocks(rig.filters()) == jump


# ---- 11: bad input -----------------------------------------------------------

GOOD = [mirror("col0", "tool0")]
NEW_PORT = (2055, [mirror("col1", "tool1")])  # a good addition next to each bad entry


def _bad_cases():
    fwd_ok = {"name": "fwd", "mode": "forward", "address": "192.0.2.10", "device": "tool1",
              "next_hop_mac": "52:54:00:12:34:56"}
    return [
        ("unknown ingress", {"devices": [{"name": "nope0", "ports": [{"port": 514, "destinations": GOOD}]}]},
         ["devices[0].name: no interface named 'nope0'"], []),
        ("unknown egress", state(("syslog", GOOD + [mirror("x", "nope1")]), NEW_PORT),
         ["devices[0].ports[0].destinations[1].device: no interface named 'nope1'"], []),
        ("bad ipv4", state(("syslog", GOOD + [{"name": "x", "mode": "forward", "address": "10.77.0.300"}]),
                           NEW_PORT),
         ["devices[0].ports[0].destinations[1].address: '10.77.0.300' is not a unicast IPv4 or global IPv6 address (the collector's)"], []),
        ("port 0", state((0, GOOD), NEW_PORT), ["devices[0].ports[0].port: 0 is not a UDP port"], []),
        ("port 70000", state(NEW_PORT, (70000, GOOD)), ["devices[0].ports[1].port: 70000 is not a UDP port"], []),
        ("port sysl0g", state(("sysl0g", GOOD)), ["devices[0].ports[0].port: 'sysl0g' is not a UDP port"], []),
        ("duplicate name", state(("syslog", GOOD + [mirror("col0", "tool1")])),
         ["devices[0].ports[0].destinations[1].name: 'col0' is used twice"], []),
        ("duplicate target", state(("syslog", GOOD + [mirror("other", "tool0")])),
         ["devices[0].ports[0].destinations[1]: same target as destinations[0]"], []),
        # the next hop is resolved (ARP) during validation, before the kernel features are checked:
        # so this reports the unanswered ARP, not the missing act_skbmod
        # 10.88.0.0/24 is routed out of tool2 (see the test); nothing there answers ARP for .99
        # with pending: fail (logfwdr_require_all_collectors); the default makes it pending (test_agent_netns)
        ("unresolvable next hop", state(("syslog", GOOD + [{"name": "x", "mode": "forward",
                                                            "address": "10.88.0.99"}]), NEW_PORT, pending="fail"),
         ["devices[0].ports[0].destinations[1]: next hop 10.88.0.99 on tool2 did not answer ARP"], ["act_skbmod"]),
        ("forward out of the ingress", state(("syslog", GOOD + [{"name": "x", "mode": "forward",
                                                                 "address": "10.77.0.99"}]), NEW_PORT),
         ["devices[0].ports[0].destinations[1].device: in0 is the ingress interface"], ["act_skbmod"]),
        ("forward needs skbmod", state(("syslog", GOOD + [fwd_ok]), NEW_PORT),
         # forward destinations rewrite with skbmod (MACs) and pedit + csum (address, port; no act_nat)
         ["act_skbmod", "CONFIG_NET_ACT_SKBMOD", "act_pedit", "CONFIG_NET_ACT_PEDIT"], ["act_nat"]),
        ("rate limit needs police", state(("syslog", [mirror("col0", "tool0", rate_limit=100)]), NEW_PORT),
         ["act_police", "CONFIG_NET_ACT_POLICE"], ["act_gact"]),
        ("original drop needs gact", state(NEW_PORT, ("syslog", GOOD)), ["act_gact"], []),
        # reassembly runs act_ct, which this host's kernel lacks: named before anything is written
        ("reassembly needs ct", {"devices": [{"name": "in0", "fragments": "reassemble",
                                              "ports": [{"port": 514, "destinations": GOOD}]}]},
         ["act_ct", "CONFIG_NET_ACT_CT"], ["act_gact"]),
        ("name too long", state(("syslog", GOOD + [mirror("n" * 17, "tool1")]), NEW_PORT),
         ["devices[0].ports[0].destinations[1].name: '%s'" % ("n" * 17)], []),
        ("original pass with forward", state(NEW_PORT, ("syslog", GOOD + [fwd_ok])),
         ["devices[0].ports[1].original: pass would deliver"], []),
        ("mirror with address", state(("syslog", GOOD + [mirror("x", "tool1", address="192.0.2.1")])),
         ["devices[0].ports[0].destinations[1].address: a mirror destination sends the packet unchanged"], []),
        ("several problems at once", state((0, GOOD), ("syslog", [mirror("x", "nope2")])),
         ["devices[0].ports[0].port: 0 is not a UDP port",
          "devices[0].ports[1].destinations[0].device: no interface named 'nope2'"], []),
    ]


def _check_failure(res, label, wanted, unwanted):
    failures = []
    msg = res.get("msg", "")
    problems = res.get("problems", [])
    if res.get("failed") is not True:
        failures.append("%s: did not fail: %r" % (label, res))
    elif res.get("changed"):
        failures.append("%s: changed=true on failure" % label)
    for text in wanted:
        if text not in msg:
            failures.append("%s: %r not in msg %r" % (label, text, msg))
        if text.startswith("devices[") and not any(text in p for p in problems):
            failures.append("%s: %r not in problems %r" % (label, text, problems))
    for text in unwanted:
        if text in msg:
            failures.append("%s: %r unexpectedly in msg %r" % (label, text, msg))
    return failures


def _bad_input_rig(rig):
    rig.lab.add_receivers(3)
    # the replicator routes 10.88.0.0/24 out of tool2, where no neighbour answers ARP
    netlab.sh("ip", "-n", rig.lab.rep, "addr", "add", "10.88.0.1/24", "dev", "tool2")
    rig.apply(state(("syslog", GOOD)))
    return rig.snapshot(), strip_counters(rig.info()["devices"])


def test_bad_input_each_alone_changes_nothing(lab):
    """Each bad entry alone, next to good ones.  Validation does not depend on the pyroute2 release
    (test_bad_input_all_at_once covers the lookups under each), so this runs with the first interpreter."""
    from conftest import PYTHONS, get_interp
    rig = Rig(lab, get_interp(PYTHONS[0]))
    before, info_before = _bad_input_rig(rig)
    failures = []
    for label, args, wanted, unwanted in _bad_cases():
        if label == "original drop needs gact":
            args["devices"][0]["ports"][1]["original"] = "drop"
        if label == "original pass with forward":
            args["devices"][0]["ports"][1]["original"] = "pass"
        failures += _check_failure(rig.run(args), label, wanted, unwanted)
        if rig.snapshot() != before:
            failures.append("%s: the kernel changed" % label)
            rig.apply(state(("syslog", GOOD)))
            before = rig.snapshot()
    assert failures == []
    assert strip_counters(rig.info()["devices"]) == info_before
    send_and_check(rig, {0: {514}}, "b")


def test_bad_input_all_at_once(rig):
    """Every validation problem in one run: all are reported, each naming its field, and nothing changes."""
    before, info_before = _bad_input_rig(rig)
    fwd_ok = {"name": "fwd", "mode": "forward", "address": "192.0.2.10", "device": "tool1",
              "next_hop_mac": "52:54:00:12:34:56"}
    args = state(
        (0, GOOD), (70000, GOOD), ("sysl0g", GOOD),
        ("syslog", GOOD + [
            mirror("x1", "nope1"),
            {"name": "x2", "mode": "forward", "address": "10.77.0.300"},
            mirror("col0", "tool1"),
            mirror("other", "tool0"),
            {"name": "x5", "mode": "forward", "address": "10.88.0.99"},
            {"name": "x6", "mode": "forward", "address": "10.77.0.99"},
            mirror("n" * 17, "tool2"),
            mirror("x8", "tool2", address="192.0.2.1"),
        ]),
        (2055, [mirror("col1", "tool1"), fwd_ok]),
    )
    args["devices"][0]["ports"][4]["original"] = "pass"
    args["devices"].append({"name": "nope0", "ports": [{"port": 514, "destinations": GOOD}]})
    args["pending"] = "fail"  # an unanswered ARP is one of the problems (by default it is pending)
    wanted = [
        "devices[0].ports[0].port: 0 is not a UDP port",
        "devices[0].ports[1].port: 70000 is not a UDP port",
        "devices[0].ports[2].port: 'sysl0g' is not a UDP port",
        "devices[0].ports[3].destinations[1].device: no interface named 'nope1'",
        "devices[0].ports[3].destinations[2].address: '10.77.0.300' is not a unicast IPv4 or global IPv6 address (the collector's)",
        "devices[0].ports[3].destinations[3].name: 'col0' is used twice",
        "devices[0].ports[3].destinations[4]: same target as destinations[0]",
        "devices[0].ports[3].destinations[5]: next hop 10.88.0.99 on tool2 did not answer ARP",
        "devices[0].ports[3].destinations[6].device: in0 is the ingress interface",
        "devices[0].ports[3].destinations[7].name: '%s'" % ("n" * 17),
        "devices[0].ports[3].destinations[8].address: a mirror destination sends the packet unchanged",
        "devices[0].ports[4].original: pass would deliver",
        "devices[1].name: no interface named 'nope0'",
    ]
    res = rig.run(args)
    assert _check_failure(res, "all at once", wanted, ["act_skbmod"]) == []
    assert len(res["problems"]) == len(wanted), res["problems"]
    assert rig.snapshot() == before
    assert strip_counters(rig.info()["devices"]) == info_before
    send_and_check(rig, {0: {514}}, "ba")


# ---- 12: rollback ---------------------------------------------------------------


def _params(args):
    return dict({"state": "present", "priority": PRIO, "chain": 0}, **args)


def _normalised_filters(text):
    """`tc filter show` without action indexes (a rolled-back replace gets a fresh action)."""
    return "\n".join(l for l in text.splitlines() if not l.strip().startswith("index "))


def test_rollback_on_kernel_refusal(rig):
    rig.lab.add_receivers(5)
    old = state(("syslog", [mirror("col0", "tool0"), mirror("col1", "tool1")]))
    new = state(("syslog", [mirror("col0", "tool0"), mirror("col1", "tool2"),
                            mirror("col2", "tool3"), mirror("col3", "tool4")]),
                (2055, [mirror("col4", "tool0")]))
    rig.apply(old)
    # old -> new: node_add col2, node_add col3, node_replace col1, ht_add, node_add col4, node_add dispatch
    plan = rig.run(new, check_mode=True)["commands"]
    assert [command_handles([c])[0] for c in plan] == ["100::4", "100::5", "100::3", "101:", "101::2", "800::2"], plan
    assert [c.split()[2] for c in plan] == ["add", "add", "replace", "add", "add", "add"], plan
    send_and_check(rig, {0: {514}, 1: {514}}, "r0")
    info_before = strip_counters(rig.info()["devices"])
    filters_before = rig.filters()

    # the kernel refuses the 3rd operation (the replace), then the 5th (after a new hash table)
    for fail_at in (3, 5):
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
            json.dump(_params(new), handle)
        try:
            out = json.loads(rig.python(SPOILING_DRIVER, handle.name, str(fail_at)))
        finally:
            os.unlink(handle.name)
        assert out["raised"] == "RunError", out
        assert "No such device" in out["msg"] or "(19," in out["msg"], out["msg"]
        assert "the %d operation(s) applied before it were undone" % (fail_at - 1) in out["msg"], out["msg"]
        assert len(out["calls"]) == fail_at + (fail_at - 1), out["calls"]  # every applied op undone once

        assert strip_counters(rig.info()["devices"]) == info_before, fail_at
        after = rig.filters()
        assert _normalised_filters(after) == _normalised_filters(filters_before), fail_at
        assert " 101:" not in after  # the new port's hash table is gone again
        send_and_check(rig, {0: {514}, 1: {514}}, "r%d" % fail_at)
    assert rig.run(old)["changed"] is False
    # and the real change still goes through afterwards
    rig.apply(new)
    send_and_check(rig, {0: {514, 2055}, 2: {514}, 3: {514}, 4: {514}}, "r9")


def test_rollback_removes_the_instance_it_created(rig):
    rig.lab.add_receivers(2)
    rig.tc("qdisc", "add", "dev", "in0", "ingress")
    rig.tc(*("filter add dev in0 ingress protocol ip prio 10 u32 match ip dport 9999 0xffff "
             "action mirred egress mirror dev tool1").split())
    before = rig.filters()
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(_params(state(("syslog", [mirror("col0", "tool0"), mirror("col1", "tool1")]))), handle)
    try:
        out = json.loads(rig.python(SPOILING_DRIVER, handle.name, "3"))
    finally:
        os.unlink(handle.name)
    assert out["raised"] == "RunError" and "undone" in out["msg"], out
    assert rig.filters() == before


# ---- 13: tc_mirror_info ---------------------------------------------------------

def test_info_shape_and_counters(rig):
    rig.lab.add_receivers(3)
    args = state(("syslog", [mirror("col0", "tool0"), mirror("far", "tool1", sources=["192.0.2.0/24"])]),
                 (2055, [mirror("col2", "tool2", sources=["10.77.0.0/24"])]))
    rig.apply(args)
    sends = {514: payloads("k", 514, 5), 2055: payloads("kk", 2055, 2), 9999: payloads("k", 9999, 1)}
    rig.exchange(sends)
    info = rig.info()
    assert [d["name"] for d in info["devices"]] == ["in0"]
    ports = dict((p["port"], p) for p in info["devices"][0]["ports"])
    assert sorted(ports) == [514, 2055]
    counters = dict(((port, d["name"]), d["counters"]) for port, p in ports.items() for d in p["destinations"])
    assert dict((k, c["packets"]) for k, c in counters.items()) == {
        (514, "col0"): 5, (514, "far"): 0, (2055, "col2"): 2}
    # bytes as seen at ingress: IPv4 + UDP headers + payload
    assert counters[(514, "col0")]["bytes"] == sum(28 + len(p) for p in sends[514])
    assert counters[(2055, "col2")]["bytes"] == sum(28 + len(p) for p in sends[2055])
    assert all(p["original_dropped"] == 0 and p["original"] == "pass" for p in ports.values())
    assert ports[2055]["destinations"][0]["sources"] == ["10.77.0.0/24"]
    # the same rules, fed back (read-only counters removed), change nothing
    res = rig.run({"devices": strip_counters(info["devices"])})
    assert res.get("failed") is not True, res
    assert res["changed"] is False and res["commands"] == []
    # filtering by device
    assert rig.info(devices=["in0"])["devices"][0]["name"] == "in0"
    bad = rig.run({"devices": ["nope9"]}, module="tc_mirror_info")
    assert bad.get("failed") is True and "nope9" in bad["msg"]


def test_info_devices_fed_back_verbatim(rig):
    rig.lab.add_receivers(1)
    rig.apply(state(("syslog", [mirror("col0", "tool0")])))
    res = rig.run({"devices": rig.info()["devices"]})
    assert res.get("failed") is not True, res.get("msg")
    assert res["changed"] is False


# ---- collector pools --------------------------------------------------------------

EXPORTERS = ["10.77.0.%d" % i for i in range(2, 34)]  # 32 exporters, the lab's own first


def _pool_send(rig):
    for address in EXPORTERS[1:]:
        netlab.sh("ip", "-n", rig.lab.exp, "addr", "add", address + "/24", "dev", "exp0")

    def send(port, lines):
        for address in EXPORTERS:
            rig.lab.send(port, [line for line in lines if line.startswith(address + "#")], source_address=address)
    return send


def _pool_round(rig, send, tag, count=3):
    """Send `count` datagrams from every exporter; receiver -> {exporter: datagrams received}."""
    lines = ["%s#%s-%d" % (a, tag, i) for a in EXPORTERS for i in range(count)]
    got = rig.exchange({2055: lines}, ports=(2055,), send=send)
    out = {}
    for i, received in got.items():
        for _port, source, data in received:
            assert data.startswith(source + "#"), (source, data)  # the exporter's own address is kept
            out.setdefault(i, {}).setdefault(source, []).append(data)
    return out


def _members(n):
    return [mirror("m%d" % i, "tool%d" % i, pool="flows") for i in range(n)]


def test_pool_each_exporter_to_one_member(rig):
    from ansible_collections.netops.logfwdr.plugins.module_utils.tc import layout
    rig.lab.add_receivers(4)
    send = _pool_send(rig)
    args = state((2055, _members(3) + [mirror("all", "tool3")]))
    rig.apply(args)
    assert rig.run(args)["changed"] is False
    got = _pool_round(rig, send, "a")
    # the destination outside the pool gets everything, once
    assert sorted(got[3]) == sorted(EXPORTERS) and all(len(v) == 3 for v in got[3].values())
    owner = {}
    for i in range(3):
        for source, datagrams in got.get(i, {}).items():
            assert source not in owner, "%s reached m%d and m%d" % (source, owner[source], i)
            assert len(datagrams) == 3, (i, source, datagrams)  # whole stream, none twice
            owner[source] = i
    assert sorted(owner) == sorted(EXPORTERS)  # none lost
    assert sorted(set(owner.values())) == [0, 1, 2]  # every member gets some
    # the member is the one rendezvous hashing names for the exporter's last octet
    chosen = layout.pool_buckets([{"name": "m%d" % i} for i in range(3)])
    assert all(owner[a] == int(chosen[int(a.split(".")[-1])]["name"][1:]) for a in EXPORTERS)
    # the kernel's counters agree, and the pool reads back as it was given
    dests = dict((d["name"], d) for d in rig.info()["devices"][0]["ports"][0]["destinations"])
    assert dict((n, dests[n]["counters"]["packets"]) for n in ("m0", "m1", "m2")) == \
        dict(("m%d" % i, 3 * list(owner.values()).count(i)) for i in range(3))
    assert [dests[n].get("pool") for n in ("m0", "m1", "m2", "all")] == ["flows", "flows", "flows", None]
    buckets = [line for line in rig.filters().splitlines() if "fh " in line and "::" not in line and ":0:" not in line]
    assert len(buckets) >= 255, buckets[:3]  # one node in every bucket of the pool's table

    # m1 leaves: only its exporters move, each to its runner-up; m0's and m2's stay where they were
    res = rig.apply(state((2055, [d for d in _members(3) if d["name"] != "m1"] + [mirror("all", "tool3")])))
    assert res["changed"] is True
    after = dict((source, i) for i, by in _pool_round(rig, send, "b").items() if i < 3 for source in by)
    assert sorted(after) == sorted(EXPORTERS)
    assert all(after[a] == owner[a] for a in EXPORTERS if owner[a] != 1)
    assert all(after[a] in (0, 2) for a in EXPORTERS)
    # the pool goes: no node of it is left
    rig.apply(state((2055, [mirror("all", "tool3")])))
    assert "hashkey" not in rig.filters() and "flows" not in rig.filters()
