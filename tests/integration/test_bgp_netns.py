# -*- coding: utf-8 -*-
"""BGP high availability (issue 29) with real FRR on the host kernel: three active replicators announce
192.0.2.100, a router spreads 32 exporters over them with ECMP (layer-4 hash) and BFD 100 ms x 3.

One lab (lib/lflab/bgplab.py) serves every test of this file: exporter, router, three replicators (FRR with the
frr.conf the role renders, the module's tc rules, `logfwdr agent --announce-device logfwdr0`) and two collectors
whose UDP sockets receive the mirror copies.  Every datagram carries (exporter, sequence), so what each exporter
lost at each collector, and which replicator copied it, is exact.  Each test leaves the lab as it found it: every
replicator announced and in the router's route.
"""

import statistics
import time

import pytest

from lflab import bgplab, netlab

pytestmark = pytest.mark.netns

RATE = 100          # datagrams per second per exporter: 3,200/s in all, 10 ms resolution on a gap


@pytest.fixture(scope="module")
def lab():
    reason = bgplab.frr_unavailable_reason()
    if reason:
        pytest.skip(reason)
    if not bgplab.agent_announces():
        pytest.skip("this checkout's agent has no --announce-device")
    lab = bgplab.BgpLab(replicators=3, exporters=32, collectors=2, tag="g")
    try:
        lab.start()
        lab.wait_ready(timeout=30)
        yield lab
    finally:
        lab.close()
        assert not any(netlab.netns_exists(n) for n in [lab.exp, lab.rtr] + lab.collectors)


@pytest.fixture
def ready(lab):
    """Every replicator announced and in the route, BFD up, before and after the test."""
    lab.wait_ready(timeout=20)
    yield lab
    for r in lab.replicators:
        if not r.agent.running():
            r.write_state(bgplab.json.dumps(r.state(lab.ncollectors)))
            r.agent.start()
        if r.listener is None:
            r.start_listener()
        r.power(True)
        r.undrain()
    lab.wait_ready(timeout=30)


def everything_once(traffic, exporters=None):
    """Problems: datagrams missing or duplicated at a collector, per exporter (empty when all arrived once)."""
    result = traffic.result
    out = []
    if traffic.socket_drops:
        out.append("the collectors' sockets overflowed: %d datagrams dropped there" % traffic.socket_drops)
    for c in range(len(result.got)):
        for e in (range(result.exporters) if exporters is None else exporters):
            missing, dupes = result.missing(c, e), result.duplicates(c, e)
            if missing or dupes:
                out.append("collector %d exporter %d: %d missing (first %s), %d duplicated"
                           % (c, e, len(missing), missing[:5], dupes))
    return out


def explain(t, watch=None):
    """What a failure message needs: when the loss happened and to how many exporters, the router's next hops."""
    window = t.result.loss_window()
    text = "loss %s" % ("none" if window is None else "%.2f-%.2f s after the start, %d exporters" % window)
    if watch is not None:
        text += "; next hops %s" % ["%.2f %s" % (w - t.start, hops) for w, hops in watch.changes]
    return text


def counters(lab):
    return dict(((c, r.name), lab.link_rx(c, r)) for c in range(lab.ncollectors) for r in lab.replicators)


def test_steady_state_spreads_exporters_and_delivers_everything_once(ready):
    lab = ready
    before = counters(lab)
    with lab.watch_paths() as watch:
        with lab.traffic(rate=RATE, seconds=2.0) as t:
            pass
    res = t.result
    after = counters(lab)
    per = dict((k, after[k] - before[k]) for k in after)
    assert res.sent == 2 * RATE
    assert everything_once(t) == [], explain(t, watch)
    total = res.sent * res.exporters
    for c in range(lab.ncollectors):
        # the kernel's counters of each replicator's link: every datagram copied by exactly one replicator
        assert sum(per[(c, r.name)] for r in lab.replicators) == total, per
        for r in lab.replicators:
            assert per[(c, r.name)] == sum(1 for e in range(res.exporters) for _s, link in res.got[c].get(e, [])
                                           if link == r.name), (per, r.name)
    used = [r.name for r in lab.replicators if per[(0, r.name)] > 0]
    assert len(used) >= 2, per
    # a flow stays on one replicator while nothing changes
    for e in range(res.exporters):
        assert len(res.links(0, e)) == 1, (e, res.links(0, e), explain(t, watch))


def test_power_off_only_the_exporters_on_that_replicator_see_a_gap(ready):
    lab = ready
    victim = lab.replicators[2]
    with lab.traffic(rate=RATE, seconds=3.0) as t:
        t.at(1.0)
        off = time.time()
        victim.power(False)            # its up0 down from inside: the router's bridge keeps carrier
        gone = lab.wait_paths([r for r in lab.replicators if r is not victim], timeout=15)
    res = t.result
    cut = res.seq_at(off)
    affected = [e for e in range(res.exporters) if victim.name in res.links(0, e, until=cut)]
    others = [e for e in range(res.exporters) if e not in affected]
    assert affected, "no exporter was hashed to %s" % victim.name
    assert gone < 1.0, "the router dropped %s after %.2f s (BFD 100 ms x 3 should take ~0.3 s)" % (victim.name, gone)
    assert everything_once(t, others) == [], explain(t)
    gaps = [res.gap(c, e) for c in range(lab.ncollectors) for e in affected]
    assert max(gaps) < 1.0, gaps
    for c in range(lab.ncollectors):
        for e in affected:
            # what is missing is one run around the power cut, nothing later
            missing = res.missing(c, e)
            assert all(cut - 2 <= s <= cut + RATE for s in missing), (c, e, missing[:10])
            assert res.duplicates(c, e) == 0
    print("power off: %d affected exporters, gap max %.3f s median %.3f s, route gone after %.3f s"
          % (len(affected), max(gaps), statistics.median(gaps), gone))


def test_drain_loses_nothing(ready):
    lab = ready
    victim = lab.replicators[1]
    with lab.watch_paths() as watch:
        with lab.traffic(rate=RATE, seconds=3.0) as t:
            t.at(0.5)
            proc = victim.drain(quiet=1.0)
            drained_at = time.time()
    res = t.result
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    assert "drained" in proc.stdout, proc.stdout
    assert lab.paths() == sorted(r.ip for r in lab.replicators if r is not victim)
    assert not victim.announced()
    assert everything_once(t) == [], explain(t, watch)
    # it carried traffic before the drain and none after it
    cut = res.seq_at(drained_at)
    assert any(victim.name in res.links(0, e, until=res.seq_at(t.start + 0.5))
               for e in range(res.exporters)), "nothing went through %s before the drain" % victim.name
    assert not any(victim.name in res.links(0, e, since=cut) for e in range(res.exporters))


def test_join_under_traffic_loses_nothing(ready):
    lab = ready
    joiner = lab.replicators[1]
    assert joiner.drain(quiet=0.5).returncode == 0
    lab.wait_paths([r for r in lab.replicators if r is not joiner])
    with lab.watch_paths() as watch:
        with lab.traffic(rate=RATE, seconds=3.0) as t:
            t.at(0.5)
            assert joiner.undrain().returncode == 0
            back = lab.wait_paths(3, timeout=10)
    res = t.result
    assert everything_once(t) == [], explain(t, watch)
    late = res.seq_at(t.start + 0.5 + back) + 10
    assert any(joiner.name in res.links(0, e, since=late) for e in range(res.exporters)), \
        "%s took no exporter after joining" % joiner.name
    assert back < 2.0, back


def test_power_back_on_rejoins_without_loss(ready):
    lab = ready
    victim = lab.replicators[2]
    victim.power(False)
    lab.wait_paths([r for r in lab.replicators if r is not victim], timeout=15)
    with lab.traffic(rate=RATE, seconds=4.0) as t:
        t.at(0.5)
        victim.power(True)
        back = lab.wait_paths(3, timeout=15)
    res = t.result
    assert everything_once(t) == []
    assert back < 3.0, back


def test_unhealthy_agent_withdraws_and_comes_back(ready):
    lab = ready
    victim = lab.replicators[0]
    with lab.traffic(rate=RATE, seconds=6.0) as t:
        t.at(0.5)
        mark = time.time()
        victim.stop_listener()       # the syslog bridge's port closed: the agent turns unhealthy (fall 2)
        lab.wait_paths([r for r in lab.replicators if r is not victim], timeout=10)
        gone = time.time()
        said = victim.agent.when(r"announce: withdrawn \(not healthy", after=mark)
        time.sleep(0.3)
        victim.start_listener()      # healthy again after rise 2 checks
        back = lab.wait_paths(3, timeout=10)
    res = t.result
    assert said is not None, victim.agent.text()[-2000:]
    assert gone - said < 1.0, gone - said
    assert everything_once(t) == []
    cut, end = res.seq_at(gone) + 5, res.seq_at(gone + 0.3)
    assert not any(victim.name in res.links(0, e, since=cut, until=end) for e in range(res.exporters))
    assert victim.announced() and back < 5.0
    print("unhealthy: withdrawn at the router %.3f s after the agent's log line; back after %.2f s"
          % (gone - said, back))


def test_a_replicator_without_rules_never_gets_traffic(ready):
    lab = ready
    victim = lab.replicators[2]
    # 1. no agent (stopped): the TUN device and its address are gone, the rules deleted; BGP stays Established
    victim.agent.stop()
    victim.delete_rules()
    lab.wait_paths([r for r in lab.replicators if r is not victim], timeout=10)
    # 2. then an agent that cannot read its state file: running, never healthy, never announcing, no rules
    victim.write_state("{ not json")
    victim.agent.start()
    before = counters(lab)
    with lab.traffic(rate=RATE, seconds=2.0) as t:
        pass
    res = t.result
    after = counters(lab)
    assert lab.sessions()[victim.ip] == "Established"
    assert not victim.rules_present() and not victim.announced()
    assert victim.ip not in lab.paths()
    assert everything_once(t) == []
    assert all(after[(c, victim.name)] == before[(c, victim.name)] for c in range(lab.ncollectors))
    assert not any(victim.name in res.links(c, e) for c in range(lab.ncollectors) for e in range(res.exporters))
    # the state file fixed: rules installed, healthy, announced
    victim.write_state(bgplab.json.dumps(victim.state(lab.ncollectors)))
    lab.wait_paths(3, timeout=15)
    assert victim.rules_present()
