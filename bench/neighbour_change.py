# -*- coding: utf-8 -*-
"""Next-hop change to corrected copies, with the logfwdr agent forwarding on the stock 6.1 kernel (UML guest).

lib/lflab/agentlab.py builds the topology (exporter, replicator guest running `logfwdr agent`, collectors A and
B) and the host sends numbered syslog datagrams at --rate per second. --changes times, collector A's NIC takes a
new MAC and announces it with a gratuitous ARP (--how garp), or the guest's neighbour table is rewritten with
`ip neigh replace ... nud permanent` (--how neigh), or first the one series and then the other (the default; in
that order, because a permanent entry rightly outranks what the wire says). A's NIC drops frames for its old MAC, so
the latency of one change is: the first datagram A's socket receives after the change, minus the time of the
change (host clock; the resolution is 1/rate). B's losses over the whole run are counted too.

Run as root, one lab at a time: flock /tmp/logfwdr-lab.lock python3 bench/neighbour_change.py
Exit status is non-zero only for setup errors.
"""

import argparse
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))  # the lab library, lib/lflab
from lflab import netlab  # noqa: E402

sys.path.insert(0, netlab.ensure_collection_path())  # agentlab reads the collection
from lflab import agentlab, harness  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=20)
    parser.add_argument("--rate", type=float, default=200.0, help="datagrams per second (default 200)")
    parser.add_argument("--gap", type=float, default=1.5, help="seconds between changes (default 1.5)")
    parser.add_argument("--how", choices=("garp", "neigh", "both"), default="both")
    args = parser.parse_args()
    reason = harness.uml_unavailable_reason()
    if reason:
        sys.exit("cannot run UML guests here: %s" % reason)
    harness.cleanup_stale()
    with harness.Wire(image=harness.ensure_image()) as wire:
        lab = agentlab.Scenario(wire, collector_b_up=True, timeout=120 + args.changes * (args.gap + 1.0) * 4)
        applied = lab.ready()
        if applied.get("failed") or applied.get("pending"):
            sys.exit("the first apply did not install both collectors: %r" % applied)
        lab.listen()
        kinds = ["garp", "neigh"] if args.how == "both" else [args.how]
        plan = [how for how in kinds for _i in range(args.changes)]
        seconds = 2 + len(plan) * (args.gap + 1.0) + 2  # a neigh change waits for the guest too
        lab.send(args.rate, seconds)
        time.sleep(2)
        changes = []
        for i, how in enumerate(plan):
            mac = "02:cc:00:%02x:%02x:0a" % (i // 256 + 1, i % 256)
            if how == "garp":
                when = lab.new_mac("A", mac)
            else:
                lab.new_mac("A", mac, announce=False)
                when = lab.neigh_replace("A", mac)
            changes.append((how, when))
            time.sleep(args.gap)
        sent = lab.sent()
        got = lab.received()
        res = lab.stop()
        if os.environ.get("LOGFWDR_BENCH_LOG"):
            with open(os.environ["LOGFWDR_BENCH_LOG"], "w") as handle:
                handle.write((lab.guest.share / "agent.log").read_text())
        if res.rc != 0:
            sys.exit("the guest failed:\n%s" % res.output[-3000:])
    latencies = {"garp": [], "neigh": []}
    missing = 0
    for n, (how, when) in enumerate(changes):
        end = changes[n + 1][1] if n + 1 < len(changes) else when + args.gap
        first = [t for t, _seq, _ifname in got["A"] if when <= t < end]
        if first:
            latencies[how].append(min(first) - when)
        else:
            missing += 1
            print("  change %d (%s) at +%.2f s: A received nothing before the next change" % (
                n, how, when - lab.start))
    b_seqs = set(seq for _t, seq, _ifname in got["B"])
    b_lost = len(set(range(sent)) - b_seqs)
    everything = latencies["garp"] + latencies["neigh"]
    print("next-hop MAC changes: %d (%d never corrected within %.1f s); datagrams sent %d at %.0f/s"
          % (len(changes), missing, args.gap, sent, args.rate))
    for how in ("garp", "neigh"):
        values = latencies[how]
        if values:
            print("  %-6s n=%-3d median %.3f s  max %.3f s  min %.3f s" % (
                how, len(values), statistics.median(values), max(values), min(values)))
    if everything:
        print("  all    n=%-3d median %.3f s  max %.3f s"
              % (len(everything), statistics.median(everything), max(everything)))
    print("collector B (untouched): received %d of %d, lost %d" % (len(b_seqs), sent, b_lost))


if __name__ == "__main__":
    main()
