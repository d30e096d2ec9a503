"""The logfwdr agent on the stock Debian 6.1 kernel: forward destinations follow their next hop.

A collector silent at deploy is pending (the apply succeeds with one warning) and receives within 2 s of
answering; a collector whose NIC changes MAC (announced with a gratuitous ARP, or written into the neighbour
table with `ip neigh replace`) receives again within 2 s; the route to a collector moved onto the other egress
(through its second NIC): its copies leave by the new egress within 2 s; meanwhile the other collector loses
nothing.  See agentlab.py for the topology.
"""

import json
import time

import pytest

from lflab import agentlab

pytestmark = pytest.mark.uml

RATE = 100  # datagrams per second (UML forwards every packet through the host: keep it modest)


def test_pending_collector_and_next_hop_changes_under_traffic(wire):
    lab = agentlab.Scenario(wire)
    applied = lab.ready()
    # deploy: B does not answer ARP; the run succeeds, A gets its rule, B is pending with one warning
    assert not applied.get("failed"), applied
    assert [(p["name"], p["device"], p["port"]) for p in applied["pending"]] == [("B", "vec0", 514)]
    assert len(applied["warnings"]) >= 1 and applied["warnings"][0].startswith("collector B is pending")
    dests = applied["devices"][0]["ports"][0]["destinations"]
    assert [(d["name"], d["next_hop_mac"]) for d in dests] == [("A", agentlab.COL_MAC["A"])]

    lab.listen()
    lab.send(RATE, 19)
    time.sleep(2)
    up = lab.bring_up("B")
    time.sleep(3)
    garp = lab.new_mac("A", "02:cc:00:00:01:0a")
    time.sleep(3)
    lab.new_mac("A", "02:cc:00:00:02:0a", announce=False)
    neigh = lab.neigh_replace("A", "02:cc:00:00:02:0a")
    time.sleep(3)
    moved = lab.move_route("A")
    sent = lab.sent()
    got = lab.received()
    res = lab.stop()
    share = lab.guest.share
    print(res.output[-3000:])
    print((share / "agent.log").read_text())
    assert res.rc == 0, res.output + res.console[-2000:]

    b_first = lab.first_after(got["B"], up)
    a_after_garp = lab.first_after(got["A"], garp)
    a_after_neigh = lab.first_after(got["A"], neigh)
    a_via_second = lab.first_after(got["A"], moved, via="eth1")
    assert None not in (b_first, a_after_garp, a_after_neigh, a_via_second), got
    print("B receives %.3f s after it answers; A receives again %.3f s after its gratuitous ARP, %.3f s after "
          "ip neigh replace, by the other egress %.3f s after its route moved"
          % (b_first - up, a_after_garp - garp, a_after_neigh - neigh, a_via_second - moved))
    assert b_first - up < 2.0
    assert a_after_garp - garp < 2.0
    assert a_after_neigh - neigh < 2.0
    assert a_via_second - moved < 2.0
    # before the move everything reached A's first NIC; after it, once the rule followed, none did
    assert all(ifname == "eth0" for t, _seq, ifname in got["A"] if t < moved), got["A"]
    assert not [seq for t, seq, ifname in got["A"] if t > a_via_second and ifname != "eth1"], got["A"]

    a_seqs = set(seq for _t, seq, _ifname in got["A"])
    b_seqs = set(seq for _t, seq, _ifname in got["B"])
    # A lost nothing while B came up; B lost nothing from its first copy on, while A changed twice
    assert not lab.seqs_between(lab.start, garp - 0.05) - a_seqs
    b_from = min(seq for _t, seq, _ifname in got["B"])
    assert not set(range(b_from, sent)) - b_seqs, sorted(set(range(b_from, sent)) - b_seqs)[:20]
    assert len(a_seqs) == len(got["A"]) and len(b_seqs) == len(got["B"]), "duplicates"

    # what status and the metrics said before the agent stopped; stopped, it is unhealthy
    rows = json.loads((share / "status.json").read_text())
    assert [(r["collector"], r["state"], r["egress_device"], r["next_hop_mac"]) for r in rows] == [
        ("A", "active", "vec2", agentlab.A_SECOND_MAC), ("B", "active", "vec1", agentlab.COL_MAC["B"])]
    metrics = (share / "metrics.txt").read_text()
    for line in ('logfwdr_destination_state{collector="B",device="vec0",port="514",state="active"} 1.0',
                 "logfwdr_agent_healthy 1.0"):
        assert line in metrics.splitlines(), metrics
    assert any(line.startswith('logfwdr_copies_packets_total{collector="B",device="vec0",port="514"}')
               for line in metrics.splitlines())
    assert (share / "health-after").read_text().strip() == "1"
    log = (share / "agent.log").read_text()
    assert log.count("warning: collector B is pending") == 1 and "collector B answered" in log
