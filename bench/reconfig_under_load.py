# -*- coding: utf-8 -*-
"""Reconfiguration under load: do untouched destinations lose packets?

netlab topology (throwaway namespaces, nothing leaves them): an exporter sends
a paced UDP stream to port 514 of the replicator; the replicator's ingress
copies every packet to mirror destinations tool0..tool7 (receiver namespaces
count what arrives on their interface).  While the stream runs, a 9th
destination is added, changed and removed `--cycles` times, with:

  module        each step one full tc_mirror run (validate, read, plan, apply,
                read back) in-process in the replicator namespace: add / replace /
                delete of that destination's u32 node only;
  paper-tc      the paper's method: each step deletes the whole priority and adds
                the complete new set again, as one `tc -batch` (the tightest
                delete+re-add window tc allows);
  paper-module  the same method through the module: a `state: absent` run, then a
                `state: present` run with the new set.

Per method it prints, per destination, packets received on the receiver's
interface against packets sent, and the reconfiguration speed (steps/s).
Exit status is non-zero only for setup errors, never for losses.
"""

import argparse
import binascii
import json
import os
import sys
import subprocess
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402
from benchlib import netlab  # noqa: E402

PORT = 514
INGRESS = "in0"
UNTOUCHED = 8  # tool0..tool7
CHANGE_SOURCES = ["10.77.0.0/24"]  # contains the exporter 10.77.0.2: still matches


# ---- desired states of the three steps --------------------------------------

def states(change):
    base = [benchlib.dest("tool%d" % i) for i in range(UNTOUCHED)]
    if change == "sources":
        added = base + [benchlib.dest("tool8", name="extra")]
        changed = base + [benchlib.dest("tool8", name="extra", sources=CHANGE_SOURCES)]
    else:  # device: the same destination moves to another tool port (a mirred-only replace)
        added = base + [benchlib.dest("tool8", name="extra")]
        changed = base + [benchlib.dest("tool9", name="extra")]
    return base, [("add", added), ("change", changed), ("remove", base)]


def tc_batch(dests):
    """The paper's method as tc batch lines: drop the whole priority, add the whole set."""
    head = "filter %%s dev %s ingress protocol ip prio %d" % (INGRESS, benchlib.PRIORITY)
    lines = [head % "del", head % "add" + " handle 100: u32 divisor 1"]
    for i, d in enumerate(dests, 1):
        name = d["name"] or d["device"]
        match = "match u32 0 0 at 0"
        if d.get("sources"):
            net, bits = d["sources"][0].split("/")
            mask = (0xFFFFFFFF << (32 - int(bits))) & 0xFFFFFFFF
            value = int.from_bytes(bytes(int(x) for x in net.split(".")), "big")
            match = "match u32 0x%08x 0x%08x at 12" % (value, mask)
        lines.append(head % "add" + " handle 100::%x u32 ht 100: %s action mirred egress mirror dev %s continue "
                     "cookie %s" % (i, match, d["device"], binascii.hexlify(name.encode()).decode()))
    lines.append(head % "add" + " u32 match u32 0x45000000 0xff000000 at 0 match u32 0x00000000 0x00001fff at 4 "
                 "match u32 0x00110000 0x00ff0000 at 8 match u32 0x%08x 0x0000ffff at 20 link 100:" % PORT)
    return "\n".join(lines) + "\n"


# ---- counters ----------------------------------------------------------------

def receiver_counters(lab):
    out = {}
    for i, ns in enumerate(lab.receivers):
        res = netlab.sh("ip", "-n", ns, "-j", "-s", "link", "show", "dev", "rx%d" % i)
        rx = json.loads(res.stdout)[0]["stats64"]["rx"]
        out["tool%d" % i] = (rx["packets"], rx["dropped"])
    return out


def snapshot(lab, driver):
    return receiver_counters(lab), benchlib.proc_net_dev(driver.pid)


def quiet_check(lab, driver, pause):
    """Counters must not move while no stream runs (IPv6 off, no ARP, nothing else sends)."""
    first = snapshot(lab, driver)
    time.sleep(pause)
    second = snapshot(lab, driver)
    moved = sorted(k for k in first[0] if first[0][k] != second[0][k])
    moved += sorted(k for k in first[1] if k != "lo" and first[1][k] != second[1][k])
    return second, moved


class Sampler(threading.Thread):
    """in0 rx packets of the replicator every `interval` s (from /proc/<driver pid>/net/dev)."""

    def __init__(self, pid, interval=0.1):
        super(Sampler, self).__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.samples = []
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            try:
                self.samples.append((time.perf_counter(), benchlib.proc_net_dev(self.pid)[INGRESS][0]))
            except (OSError, KeyError):
                return  # the driver is gone (interrupted)
            self.stop.wait(self.interval)

    def rates(self, t_from, t_to):
        pts = [s for s in self.samples if t_from <= s[0] <= t_to]
        return [(b[1] - a[1]) / (b[0] - a[0]) for a, b in zip(pts, pts[1:]) if b[0] > a[0]]


# ---- one phase -----------------------------------------------------------------

def run_phase(lab, driver, method, args, base, steps, n_receivers):
    print("\n=== %s ===" % method, flush=True)
    res = driver.run(benchlib.params(INGRESS, PORT, base))
    if res["error"]:
        raise benchlib.SetupError("installing the 8 destinations failed: %s" % res["error"])
    before, moved = quiet_check(lab, driver, 1.0)
    if moved:
        print("WARNING: counters moved with no stream running: %s (counts below include that traffic)"
              % ", ".join(moved))

    cycles = args.paper_module_cycles if method == "paper-module" else args.cycles
    work = []
    for _cycle in range(cycles):
        for label, dests in steps:
            p = benchlib.params(INGRESS, PORT, dests)
            if method == "module":
                work.append([label, [p]])
            elif method == "paper-module":
                work.append([label, [benchlib.params(INGRESS, PORT, [], state="absent"), p]])
            else:
                work.append([label, tc_batch(dests)])

    code = netlab.udp_blast_code(netlab.REPLICATOR_IP, PORT, args.rate, args.seconds, args.size)
    sampler = Sampler(driver.pid)
    sampler.start()
    t_start = time.perf_counter()
    pin = ["taskset", "-c", "0"] if args.pin else []
    blaster = subprocess.Popen(pin + ["ip", "netns", "exec", lab.exp, sys.executable, "-c", code],
                               stdout=subprocess.PIPE, universal_newlines=True)
    lab.procs.append(blaster)
    time.sleep(args.warmup)
    t_reconf = time.perf_counter()
    reply = driver.request(cmd="tc_batches" if method == "paper-tc" else "steps", steps=work)
    t_reconf_end = time.perf_counter()
    out, _err = blaster.communicate(timeout=args.seconds + 60)
    t_end = time.perf_counter()
    sampler.stop.set()
    sampler.join()
    if blaster.returncode != 0 or not out.strip():
        raise benchlib.SetupError("the sender failed (rc=%s)" % blaster.returncode)
    sent = int(out.split()[-1])
    time.sleep(0.5)
    after, moved = quiet_check(lab, driver, 0.5)
    if moved:
        print("WARNING: counters still moving 0.5 s after the stream ended: %s" % ", ".join(moved))

    # ---- reconfiguration speed ----
    stream_secs = t_end - t_start
    covered = (t_reconf_end - t_start) < args.seconds
    by_label = {}
    errors = {}
    for label, secs, errs, _cmds in reply["steps"]:
        by_label.setdefault(label, []).append(secs)
        for e in errs:
            errors.setdefault(label, []).append(e)
    n_steps = len(reply["steps"])
    print("reconfiguration: %d steps (%d cycles x add/change/remove) in %.2f s = %.1f steps/s%s"
          % (n_steps, cycles, reply["total"], n_steps / reply["total"],
             "" if covered else "  ** stream ended before the reconfiguration did: raise --seconds **"))
    for label in ("add", "change", "remove"):
        xs = by_label.get(label, [])
        if xs:
            print("  %-7s median %7.2f ms  min %7.2f ms  max %7.2f ms  failed %d/%d"
                  % (label, 1000 * benchlib.median(xs), 1000 * min(xs), 1000 * max(xs),
                     len(errors.get(label, [])), len(xs)))
    for label in ("add", "change", "remove"):
        kinds = {}
        for e in errors.get(label, []):
            kinds[e] = kinds.get(e, 0) + 1
        for e, n in sorted(kinds.items(), key=lambda kv: -kv[1]):
            print("  %s error x%d: %s" % (label, n, e[:300] + ("..." if len(e) > 300 else "")))
    if method == "module":
        print("  commands of cycle 1:")
        for label, _secs, _errs, cmds in reply["steps"][:3]:
            for c in cmds:
                print("    %-6s %s" % (label, c))

    # ---- sender ----
    rates = sampler.rates(t_reconf, min(t_reconf_end, t_start + args.seconds))
    target = args.rate * args.seconds
    kept_up = sent >= 0.99 * target
    print("sender: %d packets in %.1f s = %.0f pkt/s (target %d) -> %s"
          % (sent, args.seconds, sent / args.seconds, args.rate,
             "kept up" if kept_up else "DID NOT keep up (%.1f%% of the target)" % (100.0 * sent / target)))
    if rates:
        print("        pacing during the reconfiguration (in0, 100 ms windows): min %.0f / median %.0f / max %.0f "
              "pkt/s (a paced sender that falls behind catches up in bursts)"
              % (min(rates), benchlib.median(rates), max(rates)))

    # ---- per destination ----
    rx0, rep0 = before
    rx1, rep1 = after
    in0 = rep1[INGRESS][0] - rep0[INGRESS][0]
    print("%-18s %10s %10s %8s %8s %9s %9s" % ("destination", "received", "sent", "lost", "loss%",
                                               "rx_drop", "tx_drop"))
    print("%-18s %10d %10d %8d %8.3f %9d %9s" % ("in0 (ingress)", in0, sent, sent - in0,
                                                 100.0 * (sent - in0) / max(sent, 1),
                                                 rep1[INGRESS][1] - rep0[INGRESS][1], "-"))
    total_lost = 0
    for i in range(n_receivers):
        name = "tool%d" % i
        got = rx1[name][0] - rx0[name][0]
        rxdrop = rx1[name][1] - rx0[name][1]
        txdrop = rep1[name][3] - rep0[name][3]
        if i < UNTOUCHED:
            lost = sent - got
            total_lost += lost
            print("%-18s %10d %10d %8d %8.3f %9d %9d" % (name, got, sent, lost, 100.0 * lost / max(sent, 1),
                                                         rxdrop, txdrop))
        else:
            print("%-18s %10d %10s %8s %8s %9d %9d" % (name + " (toggled)", got, "-", "-", "-", rxdrop, txdrop))
    print("untouched tool0..7: %d packets lost in total (%.1f per step per destination)"
          % (total_lost, total_lost / float(UNTOUCHED * n_steps)))
    return {"method": method, "sent": sent, "lost": total_lost, "steps_per_s": n_steps / reply["total"]}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=30.0, help="length of each stream (default 30)")
    ap.add_argument("--rate", type=int, default=20000, help="packets per second (default 20000)")
    ap.add_argument("--cycles", type=int, default=50, help="add/change/remove cycles per method (default 50)")
    ap.add_argument("--paper-module-cycles", type=int, default=20,
                    help="cycles for paper-module, two module runs per step (default 20)")
    ap.add_argument("--size", type=int, default=200, help="UDP payload bytes (default 200)")
    ap.add_argument("--warmup", type=float, default=1.0, help="stream seconds before reconfiguring (default 1)")
    ap.add_argument("--change", choices=["sources", "device"], default="sources",
                    help="the change step: add a sources allow-list (default), or move the destination to "
                         "another tool port (tool9)")
    ap.add_argument("--methods", default="module,paper-tc,paper-module",
                    help="comma-separated, of module, paper-tc, paper-module")
    ap.add_argument("--pin", action="store_true",
                    help="pin the sender to CPU 0 and the module runs to CPU 1 (default: let the scheduler place them)")
    args = ap.parse_args()
    if (os.cpu_count() or 1) < 2:
        args.pin = False
    methods = [m for m in args.methods.split(",") if m]
    for m in methods:
        if m not in ("module", "paper-tc", "paper-module"):
            ap.error("unknown method %r" % m)

    benchlib.install_signal_cleanup()
    try:
        benchlib.check_root()
        n_receivers = 10 if args.change == "device" else 9
        base, steps = states(args.change)
        results = []
        with netlab.Lab(tag="rc") as lab:
            lab.add_receivers(n_receivers)
            # the replicator answers the exporter (ICMP port unreachable for the passed originals) without
            # ARP: in0's rx counter then counts only the stream
            netlab.sh("ip", "-n", lab.rep, "neigh", "replace", netlab.EXPORTER_IP, "lladdr",
                      lab.mac(lab.exp, "exp0"), "dev", "in0", "nud", "permanent")
            driver = benchlib.Driver(lab, lab.rep, pin=["taskset", "-c", "1"] if args.pin else None)
            try:
                print("reconfig_under_load: %d pkt/s x %.0f s, %d-byte payload, %d cycles, change=%s, "
                      "%d CPUs, kernel %s" % (args.rate, args.seconds, args.size, args.cycles, args.change,
                                              os.cpu_count(), os.uname().release))
                for m in methods:
                    results.append(run_phase(lab, driver, m, args, base, steps, n_receivers))
            finally:
                driver.close()
        print("\n=== summary ===")
        print("%-14s %10s %14s %10s" % ("method", "steps/s", "lost(tool0-7)", "sent"))
        for r in results:
            print("%-14s %10.1f %14d %10d" % (r["method"], r["steps_per_s"], r["lost"], r["sent"]))
    except benchlib.SetupError as exc:
        print("setup error: %s" % exc, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; namespaces removed", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
