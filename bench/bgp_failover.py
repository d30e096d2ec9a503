# -*- coding: utf-8 -*-
"""BGP high availability (issue 29) on this machine's kernel: what a failure, a drain, a join and an unhealthy
agent cost, and how evenly the router's ECMP spreads exporters over three replicators.

Uses lib/lflab/bgplab.py (real FRR in network namespaces, the module's rules, `logfwdr agent --announce-device`;
the same lab as tests/integration/test_bgp_netns.py).  Every datagram carries (exporter, sequence), so losses and
gaps are exact per exporter and collector.  Prints:

* hard failure of one of three (its up0 set down from inside: only BFD tells the router), per round: the gap of
  the exporters the router had hashed to it (max and median over exporters and collectors), what the other
  exporters lost, when the route lost it (router's kernel route), and how long its return took (BFD up again);
* drain (`logfwdr drain`) and join (`logfwdr undrain`) under traffic: datagrams lost, drain's run time;
* unhealthy agent (the syslog bridge's port closed): from the agent's log line "announce: withdrawn" to the
  replicator's next hop gone from the router's kernel route;
* the load split: per-replicator kernel counters (each collector's link from each replicator) over a run from
  many exporter addresses against the even share, and a check that every datagram was counted by exactly one.

    sudo .venv/bin/python bench/bgp_failover.py            # ~2-3 min
    sudo .venv/bin/python bench/bgp_failover.py --quick    # CI smoke, ~45 s (one round of each, 64 exporters)
    sudo .venv/bin/python bench/bgp_failover.py --without-bfd   # also a failure with the hold timer only

Exits non-zero only when the lab cannot be set up (not root, no FRR), never because datagrams were lost.
"""

import argparse
import os
import signal
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
from lflab import bgplab  # noqa: E402

RATE = 100          # datagrams/s per exporter in the failure runs: 10 ms resolution on a gap


def out(line=""):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def others_of(lab, victim):
    return [r for r in lab.replicators if r is not victim]


def hard_failure(lab, victim, exporters, seconds=3.0):
    with lab.traffic(rate=RATE, seconds=seconds, exporters=exporters) as t:
        t.at(1.0)
        off = time.time()
        victim.power(False)
        lab.wait_paths(others_of(lab, victim), timeout=seconds + 15)
        gone = time.time() - off
    res = t.result
    cut = res.seq_at(off)
    affected = [e for e in range(res.exporters) if victim.name in res.links(0, e, until=cut)]
    others = [e for e in range(res.exporters) if e not in affected]
    gaps = [res.gap(c, e) for c in range(len(res.got)) for e in affected]
    # hash-threshold ECMP: do exporters of the surviving replicators move too?
    moved = [e for e in others if res.links(0, e, until=cut) != res.links(0, e, since=cut + RATE)]
    lost_others = res.lost(others)
    t0 = time.time()
    victim.power(True)
    lab.wait_ready(timeout=60)
    back = time.time() - t0
    return {"affected": len(affected), "of": res.exporters, "gap_max": max(gaps) if gaps else None,
            "gap_median": statistics.median(gaps) if gaps else None, "others_lost": lost_others,
            "others_sent": res.sent * len(others) * len(res.got), "gone": gone, "back": back,
            "dupes": res.dupes(), "socket_drops": t.socket_drops, "window": res.loss_window(others),
            "victim_window": res.loss_window(affected), "off": off - t.start,
            "moved": len(moved)}


def drain_and_join(lab, victim, exporters, quiet):
    with lab.watch_paths() as watch:
        with lab.traffic(rate=RATE, seconds=quiet + 2.5, exporters=exporters) as t:
            t.at(0.5)
            t0 = time.time()
            proc = victim.drain(quiet=quiet)
            took = time.time() - t0
        drain, drain_drops = t.result, t.socket_drops
        with lab.traffic(rate=RATE, seconds=2.5, exporters=exporters) as t:
            t.at(0.5)
            victim.undrain()
            joined = lab.wait_paths(len(lab.replicators), timeout=15)
        join, join_drops = t.result, t.socket_drops
    return {"drain_rc": proc.returncode, "drain_took": took, "drain_lost": drain.lost(), "drain_dupes": drain.dupes(),
            "sent": drain.sent * drain.exporters * len(drain.got), "join_lost": join.lost(),
            "join_dupes": join.dupes(), "join_sent": join.sent * join.exporters * len(join.got), "joined": joined,
            "drain_line": (proc.stdout.strip().splitlines() or [""])[-1], "socket_drops": drain_drops + join_drops,
            "drain_window": drain.loss_window(), "join_window": join.loss_window(),
            "route": ["%.2f %s" % (w - t0, " ".join(h.rsplit(".", 1)[1] for h in hops) or "none")
                      for w, hops in watch.changes]}


def unhealthy(lab, victim):
    mark = time.time()
    victim.stop_listener()
    lab.wait_paths(others_of(lab, victim), timeout=15)
    gone = time.time()
    said = victim.agent.when(r"announce: withdrawn \(not healthy", after=mark)
    victim.start_listener()
    t0 = time.time()
    lab.wait_paths(len(lab.replicators), timeout=15)
    back = time.time() - t0
    return {"line_after": (said - mark) if said else None, "withdrawn": (gone - said) if said else None,
            "back": back}


def split(lab, exporters, rate, seconds):
    before = dict(((c, r.name), lab.link_rx(c, r)) for c in range(lab.ncollectors) for r in lab.replicators)
    with lab.watch_paths() as watch:
        with lab.traffic(rate=rate, seconds=seconds, exporters=exporters) as t:
            pass
    res = t.result
    after = dict(((c, r.name), lab.link_rx(c, r)) for c in range(lab.ncollectors) for r in lab.replicators)
    per = dict((k, after[k] - before[k]) for k in after)
    flows = dict((r.name, 0) for r in lab.replicators)
    for e in range(res.exporters):
        for link in res.links(0, e):
            flows[link] += 1
    total = res.sent * res.exporters
    return {"per": per, "flows": flows, "total": total, "lost": res.lost(), "dupes": res.dupes(),
            "socket_drops": t.socket_drops, "flaps": watch.flaps(),
            "exporters": res.exporters,
            "one_each": all(sum(per[(c, r.name)] for r in lab.replicators) == total for c in range(lab.ncollectors))}


def fmt(x, unit="s", digits=3):
    return "-" if x is None else ("%.*f %s" % (digits, x, unit)).strip()


def run(args):
    quick = args.quick
    rounds = 1 if quick else args.rounds
    split_exporters = 64 if quick else args.exporters
    lab = bgplab.BgpLab(replicators=3, exporters=max(split_exporters, args.failure_exporters), collectors=2,
                        tag="q", log=out)
    try:
        lab.start()
        lab.wait_ready(timeout=40)
        out("frr.conf of the replicators: %s; router: listen range, maximum-paths 8, multipath-relax, "
            "fib_multipath_hash_policy=1, BFD %d ms x %d" % (lab.conf_origin, lab.bfd[1], lab.bfd[2]))
        out()
        out("== hard failure of one of three (up0 down inside the replicator), %d exporters at %d/s each, "
            "2 collectors" % (args.failure_exporters, RATE))
        out("round victim  affected  gap max   gap median  others lost       route gone  back (BFD up)  "
            "socket drops  others moved")
        gaps, goners = [], []
        for n in range(rounds):
            victim = lab.replicators[n % 3]
            f = hard_failure(lab, victim, args.failure_exporters, seconds=2.0 if quick else 3.0)
            gaps.append(f["gap_max"])
            goners.append(f["gone"])
            out("%5d %-6s  %2d of %-2d  %-8s  %-10s  %-16s  %-10s  %-13s  %-12d  %d" % (
                n + 1, victim.name, f["affected"], f["of"], fmt(f["gap_max"]), fmt(f["gap_median"]),
                "%d of %d" % (f["others_lost"], f["others_sent"]), fmt(f["gone"]), fmt(f["back"], digits=1),
                f["socket_drops"], f["moved"]))
            if f["window"]:
                out("      the others' loss: %.2f-%.2f s after the start, %d exporters (power off at %.2f s)"
                    % (f["window"][0], f["window"][1], f["window"][2], f["off"]))
        if rounds > 1:
            out("      over %d rounds: worst gap %s, median of the max gaps %s, route gone median %s" % (
                rounds, fmt(max(g for g in gaps if g is not None)), fmt(statistics.median(g for g in gaps if g)),
                fmt(statistics.median(goners))))
        out()
        out("== drain and join under traffic (%d exporters)" % args.failure_exporters)
        for n in range(1 if quick else args.drain_rounds):
            victim = lab.replicators[(n + 1) % 3]
            d = drain_and_join(lab, victim, args.failure_exporters, quiet=1.0 if quick else 2.0)
            out("drain %s: rc %d in %s, lost %d of %d, duplicated %d  (%s)" % (
                victim.name, d["drain_rc"], fmt(d["drain_took"], digits=2), d["drain_lost"], d["sent"],
                d["drain_dupes"], d["drain_line"]))
            out("join  %s: in the route %s after undrain, lost %d of %d, duplicated %d" % (
                victim.name, fmt(d["joined"], digits=2), d["join_lost"], d["join_sent"], d["join_dupes"]))
            for what in ("drain", "join"):
                if d[what + "_window"]:
                    out("      %s loss: %.2f-%.2f s after the start (the change at 0.5 s), %d exporters"
                        % ((what,) + d[what + "_window"]))
            if len(d["route"]) != 3:
                out("      the router's next hops (s after the drain began: last octets): %s" % ", ".join(d["route"]))
            if d["socket_drops"]:
                out("      (the collectors' sockets overflowed: %d of those dropped there, not by the replication)"
                    % d["socket_drops"])
        out()
        out("== unhealthy agent (the bridge's TCP port closed; --fall 2, --rise 2, checks every 1 s)")
        for n in range(1 if quick else args.rounds):
            victim = lab.replicators[n % 3]
            u = unhealthy(lab, victim)
            out("%s: log line %s after the port closed; route gone %s after the log line; back %s after the "
                "port opened" % (victim.name, fmt(u["line_after"], digits=2), fmt(u["withdrawn"]),
                                 fmt(u["back"], digits=2)))
        out()
        rate = 20
        seconds = 1.5 if quick else 5.0
        out("== load split: %d exporter addresses, %d/s each for %.1f s" % (split_exporters, rate, seconds))
        s = split(lab, split_exporters, rate, seconds)
        even = s["total"] / 3.0
        for r in lab.replicators:
            copies = s["per"][(0, r.name)]
            out("%s: %6d datagrams (%5.1f %% of all; even share %.1f %%, %+.1f %%), %3d exporters (even %.1f)" % (
                r.name, copies, 100.0 * copies / s["total"], 100 / 3.0, 100.0 * (copies - even) / even,
                s["flows"][r.name], s["exporters"] / 3.0))
        sd = (s["exporters"] * (1 / 3.0) * (2 / 3.0)) ** 0.5
        out("a binomial spread of %d exporters over 3 has a standard deviation of %.1f exporters per replicator"
            % (s["exporters"], sd))
        out("changes of the router's next hops during the split run (none expected): %d" % s["flaps"])
        out("every datagram counted by exactly one replicator (each collector's link counters sum to the %d sent): "
            "%s; lost %d, duplicated %d, socket drops %d"
            % (s["total"], "yes" if s["one_each"] else "NO", s["lost"], s["dupes"], s["socket_drops"]))
    finally:
        lab.close()
    if args.without_bfd:
        out()
        out("== hard failure without BFD (hold timer 9 s)")
        lab = bgplab.BgpLab(replicators=3, exporters=args.failure_exporters, collectors=2, bfd=False, tag="q",
                            log=out)
        try:
            lab.start()
            lab.wait_ready(timeout=40)
            f = hard_failure(lab, lab.replicators[2], args.failure_exporters, seconds=12.0)
            out("r3: %d of %d exporters affected, gap max %s median %s, others lost %d of %d, route gone %s" % (
                f["affected"], f["of"], fmt(f["gap_max"]), fmt(f["gap_median"]), f["others_lost"], f["others_sent"],
                fmt(f["gone"])))
        finally:
            lab.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--quick", action="store_true", help="one round of each, 64 exporters in the split (CI)")
    parser.add_argument("--rounds", type=int, default=5, help="hard failures and unhealthy rounds (%(default)s)")
    parser.add_argument("--drain-rounds", type=int, default=3, help="drain/join rounds (%(default)s)")
    parser.add_argument("--exporters", type=int, default=256, help="exporter addresses in the split (%(default)s)")
    parser.add_argument("--failure-exporters", type=int, default=32,
                        help="exporters in the failure runs, %d/s each (%%(default)s)" % RATE)
    parser.add_argument("--without-bfd", action="store_true", help="also one failure with BFD off (~25 s more)")
    args = parser.parse_args()
    reason = bgplab.frr_unavailable_reason()
    if reason:
        sys.exit("bgp_failover: %s" % reason)
    if not bgplab.agent_announces():
        sys.exit("bgp_failover: this checkout's agent has no --announce-device")

    def stop(signum, frame):
        raise KeyboardInterrupt("signal %d" % signum)

    signal.signal(signal.SIGTERM, stop)
    started = time.time()
    run(args)
    out()
    out("(%.0f s, %s)" % (time.time() - started, time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())))


if __name__ == "__main__":
    main()
