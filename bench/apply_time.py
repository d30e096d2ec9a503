# -*- coding: utf-8 -*-
"""How long tc_mirror takes for N mirror destinations on one port.

In a throwaway replicator namespace (netlab) with N+1 ifb devices (this kernel has no dummy driver) as tool
ports, for each N it measures, `--cycles` times each:

  first apply   one module run from nothing (no ingress qdisc, no rules)
  no change     the same run again (read, plan, nothing to do, no read-back)
  add one       a run with N+1 destinations (one u32 node added)

in-process (runner.run with a fresh kernel.Kernel, as in the module; Python
start-up and imports excluded), and for N=64 (`--process-n`) also as the real
module process (Lab.run_module: python start, AnsibleModule, imports, run).
A breakdown shows where a run spends its time: read (dumps of the ingress
device's filters: before, and the read-back after a change), apply (the
netlink changes).

Exit status is non-zero only for setup errors.
"""

import argparse
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402
from benchlib import netlab  # noqa: E402

PORT = 514
INGRESS = "in0"


def make_tools(lab, have, want):
    """ifb tool ports tool<have>..tool<want-1> in the replicator namespace."""
    if want <= have:
        return have
    lines = []
    for i in range(have, want):
        lines.append("link add tool%d type ifb" % i)
        lines.append("link set tool%d up" % i)
    proc = subprocess.run(["ip", "-n", lab.rep, "-batch", "-"], input="\n".join(lines) + "\n",
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, check=False)
    if proc.returncode:
        raise benchlib.SetupError("creating ifb devices failed: %s" % proc.stderr.strip())
    return want


def wipe(lab):
    """Back to nothing: no module rules, no ingress qdisc on in0 (tc is fine for cleaning up)."""
    lab.tc("qdisc", "del", "dev", INGRESS, "ingress", check=False)
    out = lab.tc("filter", "show", "dev", INGRESS, "ingress", check=False).stdout
    if out.strip():
        raise benchlib.SetupError("in0 still has ingress filters after the wipe:\n" + out)


def state(n):
    return benchlib.params(INGRESS, PORT, [benchlib.dest("tool%d" % i) for i in range(n)])


def timed(driver, p, expect_changed, what):
    res = driver.run(p)
    if res["error"]:
        raise benchlib.SetupError("%s: the module run failed: %s" % (what, res["error"]))
    if res["parts"].get("changed") != expect_changed:
        raise benchlib.SetupError("%s: changed=%s, expected %s" % (what, res["parts"].get("changed"), expect_changed))
    return res["secs"], res["parts"], len(res["commands"])


def process_run(lab, p, expect_changed, what):
    t0 = time.perf_counter()
    res = lab.run_module(benchlib.module_args(p))
    secs = time.perf_counter() - t0
    if res.get("failed") or res.get("changed") != expect_changed:
        raise benchlib.SetupError("%s: module process: %s" % (what, res.get("msg") or res))
    return secs


def ms(x):
    return "%8.1f" % (1000.0 * x)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cycles", type=int, default=5, help="repetitions of each measurement (default 5)")
    ap.add_argument("--seconds", type=float, default=150.0,
                    help="time budget: after 3 repetitions of a size, stop repeating it once the budget "
                         "is spent (default 150)")
    ap.add_argument("--rate", type=int, default=0, help="accepted for a CLI uniform with reconfig_under_load; "
                                                        "no traffic runs here")
    ap.add_argument("--sizes", default="1,16,64,256", help="destination counts (default 1,16,64,256)")
    ap.add_argument("--process-n", type=int, default=64,
                    help="also time the whole module process at this N (default 64; 0 = skip)")
    args = ap.parse_args()
    sizes = [int(x) for x in args.sizes.split(",") if x]
    if any(n < 1 or n > 1022 for n in sizes):
        ap.error("sizes must be 1..1022 (mirror node ids 0x001-0x3ff, one left for the added destination)")

    benchlib.install_signal_cleanup()
    deadline = time.perf_counter() + args.seconds
    rows, proc_rows = [], []
    try:
        benchlib.check_root()
        with netlab.Lab(tag="at") as lab:
            driver = benchlib.Driver(lab, lab.rep)
            try:
                print("apply_time: mirror destinations on udp/%d of %s, %d repetitions, %d CPUs, kernel %s"
                      % (PORT, INGRESS, args.cycles, os.cpu_count(), os.uname().release), flush=True)
                tools = 0
                for n in sizes:
                    tools = make_tools(lab, tools, n + 1)
                    links = len(netlab.sh("ip", "-n", lab.rep, "-o", "link", "show").stdout.splitlines())
                    first, nochange, addone = [], [], []
                    parts = {"first": [], "nochange": [], "addone": []}
                    ops = {}
                    for rep in range(args.cycles):
                        if rep >= 3 and time.perf_counter() > deadline:
                            break
                        wipe(lab)
                        secs, part, nops = timed(driver, state(n), True, "N=%d first apply" % n)
                        first.append(secs), parts["first"].append(part)
                        ops["first"] = nops
                        secs, part, nops = timed(driver, state(n), False, "N=%d no change" % n)
                        nochange.append(secs), parts["nochange"].append(part)
                        secs, part, nops = timed(driver, state(n + 1), True, "N=%d add one" % n)
                        addone.append(secs), parts["addone"].append(part)
                        ops["addone"] = nops
                    rows.append((n, links, ops, first, nochange, addone, parts))
                    print("  N=%d done (%d repetitions)" % (n, len(first)), flush=True)
                    if n == args.process_n:
                        pf, pn = [], []
                        for rep in range(args.cycles):
                            if rep >= 3 and time.perf_counter() > deadline:
                                break
                            wipe(lab)
                            pf.append(process_run(lab, state(n), True, "N=%d first apply" % n))
                            pn.append(process_run(lab, state(n), False, "N=%d no change" % n))
                        proc_rows.append((n, pf, pn))
                wipe(lab)
            finally:
                driver.close()
    except benchlib.SetupError as exc:
        print("setup error: %s" % exc, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; namespaces removed", file=sys.stderr)
        return 130

    med = benchlib.median
    print("\nin-process module runs (runner.run), milliseconds, median / min over the repetitions")
    print("%5s %6s %5s | %17s | %17s | %17s" % ("N", "links", "ops", "first apply", "no change", "add one"))
    print("%5s %6s %5s | %8s %8s | %8s %8s | %8s %8s" % ("", "", "", "median", "min", "median", "min",
                                                         "median", "min"))
    for n, links, ops, first, nochange, addone, _parts in rows:
        print("%5d %6d %5d | %s %s | %s %s | %s %s" % (n, links, ops["first"], ms(med(first)), ms(min(first)),
                                                       ms(med(nochange)), ms(min(nochange)),
                                                       ms(med(addone)), ms(min(addone))))
    print("\nwhere the time goes (medians, ms): read = dumps of in0's filters (before, and the read-back after "
          "a change); apply = netlink changes; rest = validation, link dumps, planning, Kernel() set-up")
    print("%5s %-11s %8s %8s %8s %8s" % ("N", "run", "total", "read", "apply", "rest"))
    for n, _links, _ops, first, nochange, addone, parts in rows:
        for label, totals in (("first", first), ("nochange", nochange), ("addone", addone)):
            ps = parts[label]
            r, a = (med([p[k] for p in ps]) for k in ("read", "apply"))
            print("%5d %-11s %s %s %s %s" % (n, label, ms(med(totals)), ms(r), ms(a), ms(med(totals) - r - a)))
    for n, pf, pn in proc_rows:
        print("\nwhole module process (Lab.run_module: ip netns exec + python + AnsibleModule + imports + run), "
              "N=%d, ms" % n)
        print("  first apply: median %s  min %s   (%d runs)" % (ms(med(pf)), ms(min(pf)), len(pf)))
        print("  no change:   median %s  min %s   (%d runs)" % (ms(med(pn)), ms(min(pn)), len(pn)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
