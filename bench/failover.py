"""Failover of the replicator pair under steady traffic, measured at the collectors.

    python3 bench/failover.py [--scenarios poweroff,keepalived,linkdown] [--udp-rate 100]
                              [--tcp-rate 20]

Needs the lab up and deployed (`make demo` leaves it so): replicator1 primary, replicator2 backup,
exporters sending to the VRRP addresses 10.10.1.1 and 10.10.2.1. For each scenario both exporters
run lab/endpoints/lab_probe.py (numbered syslog over UDP at --udp-rate and over TCP at --tcp-rate
to the bridge); then the primary fails, the backup takes the addresses, the primary is brought
back and takes them again after its preempt delay. The collectors' own rsyslog output is read
afterwards: every missing sequence number is a lost message; the longest run of missing numbers
times the send interval is the forwarding gap. TCP senders' reconnects are reported as they saw
them.

Scenarios: poweroff (the primary's UML process is killed, then booted again; no playbook runs: its
logfwdr agent puts the rules back before keepalived starts), keepalived (SIGKILL to keepalived on the primary, then systemd or we start it again),
linkdown (`ip link set vec1 down` on the primary, then up).

Prints one table, writes .build/bench-failover.json. Exit status is non-zero only when the
lab is not usable, never because of loss.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))  # lib/lflab
from lflab.lab import COLLECTOR_LOG, COLLECTORS, LABCTL, LFP, REPO, copy_probe, require_lab, ssh  # noqa: E402

EXPORTERS = {"exporter1": ("10.10.1.21", "10.10.1.1", "rfc5424"),
             "exporter2": ("10.10.2.21", "10.10.2.1", "rfc3164")}
VIPS = ["10.10.1.1", "10.10.2.1"]
PRIMARY, BACKUP = "replicator1", "replicator2"
ORIGIN = re.compile(r'origin [^\]]*ip="([^"]+)"')


def log(msg):
    print("[failover %s] %s" % (time.strftime("%H:%M:%S"), msg), file=sys.stderr, flush=True)


def vip_holders():
    """{vip: [hosts holding it]} from the replicators' own interface addresses."""
    out = {v: [] for v in VIPS}
    for host in (PRIMARY, BACKUP):
        try:
            text = ssh(host, "ip -4 -o addr show", check=False, timeout=3)
        except subprocess.TimeoutExpired:
            continue
        for v in VIPS:
            if " %s/" % v in text:
                out[v].append(host)
    return out


def wait_holder(host, timeout, every=10.0):
    """Seconds until HOST alone holds every virtual address (None after TIMEOUT); says where it is every EVERY s."""
    t0 = time.time()
    said = t0
    while time.time() - t0 < timeout:
        holders = vip_holders()
        if all(holders[v] == [host] for v in VIPS):
            return round(time.time() - t0, 1)
        if time.time() - said >= every:
            said = time.time()
            now = ", ".join("%s on %s" % (v, "+".join(h) or "nobody") for v, h in holders.items())
            log("waiting for %s to hold the addresses: %.0f s of at most %.0f; now %s" % (host, said - t0, timeout, now))
        time.sleep(0.5)
    return None


def start_senders(run, args):
    procs = {}
    for name, (_ip, target, fmt) in EXPORTERS.items():
        copy_probe(name)
        procs[name] = subprocess.Popen(
            [LABCTL, "ssh", name, "python3 /root/lab_probe.py send --target %s --name %s --run %s "
             "--udp-rate %s --tcp-rate %s --tcp-format %s"
             % (target, name, run, args.udp_rate, args.tcp_rate, fmt)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    return procs


def stop_senders(procs):
    out = {}
    for name, p in procs.items():
        p.stdin.close()
    for name, p in procs.items():
        text = p.stdout.read()
        p.wait(timeout=60)
        out[name] = json.loads(text.strip().splitlines()[-1])
    return out


def received(run):
    """{(collector, exporter, proto): {"seqs": [...], "identified": n}} from the collectors' logs."""
    got = {}
    for c in COLLECTORS:
        for line in ssh(c, "cat " + COLLECTOR_LOG, timeout=120).splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            m = LFP.search(rec.get("msg", ""))
            if not m or m.group(1) != run:
                continue
            exp, proto, seq = m.group(2), m.group(3), int(m.group(4))
            entry = got.setdefault((c, exp, proto), {"seqs": [], "identified": 0})
            entry["seqs"].append(seq)
            sender = EXPORTERS[exp][0]
            if proto == "udp":
                entry["identified"] += rec.get("from") == sender
            else:  # bridged: the sender is in the origin SD (RFC 5424) or the HOSTNAME (RFC 3164)
                o = ORIGIN.search(rec.get("sd", ""))
                entry["identified"] += (o and o.group(1) == sender) or rec.get("host") == sender
    return got


def missing_runs(seqs, total):
    have = set(seqs)
    runs, start = [], None
    for s in range(1, total + 1):
        if s not in have:
            start = s if start is None else start
        elif start is not None:
            runs.append((start, s - start))
            start = None
    if start is not None:
        runs.append((start, total + 1 - start))
    return runs


def analyse(scenario, events, sent, got, args):
    rows = []
    for (c, exp, proto), entry in sorted(got.items()):
        s = sent[exp]
        rate = s["udp_rate"] if proto == "udp" else s["tcp_rate"]
        total = s["udp_sent"] if proto == "udp" else s["tcp_queued"] - s["tcp_unsent"]
        runs = missing_runs(entry["seqs"], total)
        per_event = {event[0]: {"lost": 0, "gap_ms": 0} for event in events}
        for start, length in runs:
            t = s["start"] + (start - 1) / rate
            # the event this loss belongs to: the last one that happened before it (1 s slack)
            name = events[0][0]
            for e, when in events:
                if when is not None and t >= when - 1.0:
                    name = e
            per_event[name]["lost"] += length
            per_event[name]["gap_ms"] = max(per_event[name]["gap_ms"], round(length * 1000.0 / rate))
        dup = len(entry["seqs"]) - len(set(entry["seqs"]))
        rows.append({"scenario": scenario, "collector": c, "exporter": exp, "proto": proto,
                     "sent": total, "received": len(set(entry["seqs"])), "duplicates": dup,
                     "records": len(entry["seqs"]), "identified": entry["identified"],
                     "events": per_event})
    return rows


def truncate_logs():
    for c in COLLECTORS:
        ssh(c, "truncate -s 0 " + COLLECTOR_LOG)


def fault(scenario):
    if scenario == "poweroff":
        subprocess.run([LABCTL, "poweroff", PRIMARY], check=True, capture_output=True)
    elif scenario == "keepalived":
        ssh(PRIMARY, "pkill -KILL -x keepalived")
    elif scenario == "linkdown":
        ssh(PRIMARY, "ip link set dev vec1 down")


def restore(scenario):
    """Bring the primary back; returns notes."""
    notes = {}
    if scenario == "poweroff":
        t0 = time.time()
        log("poweroff: booting %s again (no playbook run; about 30 s until SSH answers)" % PRIMARY)
        subprocess.run([LABCTL, "start", PRIMARY], check=True, capture_output=True)
        notes["boot_s"] = round(time.time() - t0, 1)
        log("poweroff: %s answers SSH after %.1f s; the preempt delay runs before it takes the addresses back"
            % (PRIMARY, notes["boot_s"]))
        # no playbook run: the agent puts the rules back at boot, before keepalived starts
        holders = vip_holders()
        notes["primary_holds_vip_at_boot"] = any(PRIMARY in h for h in holders.values())
        rows = json.loads(ssh(PRIMARY, "logfwdr status --json", check=False) or "[]")
        notes["rules_back"] = "%d of %d active" % (sum(1 for r in rows if r["state"] == "active"), len(rows))
    elif scenario == "keepalived":
        time.sleep(3)
        state = ssh(PRIMARY, "systemctl is-active keepalived", check=False).strip()
        notes["keepalived_after_kill"] = state
        if state != "active":
            ssh(PRIMARY, "systemctl start keepalived")
    elif scenario == "linkdown":
        ssh(PRIMARY, "ip link set dev vec1 up")
    return notes


def run_scenario(scenario, args):
    run = "fo%s%s" % (time.strftime("%H%M%S"), scenario[:4])
    log("%s: run %s" % (scenario, run))
    if wait_holder(PRIMARY, 90) is None:
        raise RuntimeError("replicator1 does not hold both VRRP addresses: %s" % vip_holders())
    truncate_logs()
    procs = start_senders(run, args)
    time.sleep(args.settle)
    t_fault = time.time()
    fault(scenario)
    moved = wait_holder(BACKUP, 30)
    log("%s: backup holds the addresses %s s after the fault (ssh polling)" % (scenario, moved))
    time.sleep(args.settle)
    t_restore = time.time()
    notes = restore(scenario)
    back = wait_holder(PRIMARY, args.preempt_wait)
    t_back = time.time()
    log("%s: primary holds the addresses again %s s after it was restored" % (scenario, back))
    time.sleep(args.settle)
    sent = stop_senders(procs)
    time.sleep(3)   # let the last copies and bridge queues drain
    got = received(run)
    events = [("failover", t_fault), ("failback", t_restore)]
    rows = analyse(scenario, events, sent, got, args)
    return {"scenario": scenario, "run": run, "fault_at": t_fault, "restore_at": t_restore,
            "back_at": t_back, "backup_took_over_s": moved, "primary_back_s": back, "notes": notes,
            "sent": sent, "rows": rows}


def print_table(results):
    print("%-10s %-9s %-10s %-9s %-4s %7s %8s %4s %5s  %-18s %-18s" % (
        "scenario", "event", "collector", "exporter", "via", "sent", "received", "dup", "id",
        "failover gap/lost", "failback gap/lost"))
    for r in results:
        for row in r["rows"]:
            fo, fb = row["events"]["failover"], row["events"]["failback"]
            print("%-10s %-9s %-10s %-9s %-4s %7d %8d %4d %5s  %-18s %-18s" % (
                r["scenario"], "", row["collector"], row["exporter"], row["proto"], row["sent"],
                row["received"], row["duplicates"],
                "all" if row["identified"] == row["records"] else row["identified"],
                "%d ms / %d" % (fo["gap_ms"], fo["lost"]), "%d ms / %d" % (fb["gap_ms"], fb["lost"])))
        for name, s in sorted(r["sent"].items()):
            print("%-10s %s TCP reconnects: %s; udp send errors %d; tcp unsent at end %d" % (
                r["scenario"], name,
                ", ".join("%s after %.2f s (%s)" % (
                    "back %.2f s later" % (rc[2] - rc[0]) if len(rc) > 2 else "never back",
                    rc[0] - r["fault_at"], rc[1]) for rc in s["tcp_reconnects"]) or "none",
                s["udp_errors"], s["tcp_unsent"]))
        print("%-10s backup took the addresses %s s after the fault; primary had them back %s s "
              "after restore; %s" % (r["scenario"], r["backup_took_over_s"], r["primary_back_s"],
                                     r["notes"]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--scenarios", default="poweroff,keepalived,linkdown",
                    help="faults to inject on the primary, comma-separated, in this order: poweroff (the UML "
                         "process killed), keepalived (SIGKILL), linkdown (its ingress link down)")
    ap.add_argument("--udp-rate", type=float, default=100,
                    help="numbered syslog datagrams per second from each exporter (copied by tc)")
    ap.add_argument("--tcp-rate", type=float, default=20,
                    help="numbered syslog messages per second over TCP from each exporter (the bridge)")
    ap.add_argument("--settle", type=float, default=5,
                    help="seconds of traffic before the fault, between the takeover and the restore, and after "
                         "the primary is back")
    ap.add_argument("--preempt-wait", type=float, default=120,
                    help="at most this many seconds for the primary to take its addresses back after it is "
                         "restored")
    ap.add_argument("--out", default=os.path.join(REPO, ".build", "bench-failover.json"),
                    help="where the per-scenario details are written (JSON)")
    args = ap.parse_args()
    require_lab()
    results = []
    for scenario in args.scenarios.split(","):
        results.append(run_scenario(scenario, args))
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1)
    print_table(results)
    log("details in %s" % args.out)


if __name__ == "__main__":
    main()
