"""How many syslog messages per second the TCP bridge carries to the lab's 4 syslog collectors.

    python3 bench/bridge_rate.py [--rates 250,500,1000,2000,4000] [--seconds 10] [--down collector3]

Needs the lab up and deployed (`make demo`). For each rate, exporter2 (whose messages every
syslog collector takes, collector4's allow-list included) sends numbered RFC 5424 messages over
one TCP connection to the bridge on the primary (10.10.2.1:514) for --seconds seconds, with no
UDP. Afterwards each collector's own rsyslog output is counted, and the bridge's impstats
counters on the primary (per-collector queue: enqueued, discarded when full) are read.

--down HOST powers that collector off first (lab/labctl poweroff; `lab/labctl start HOST` brings it
back): the others must still get every message, and the bridge counts what it could not send to it.

Prints per rate: offered and achieved send rate (the TCP sender slows down when the bridge does
not read fast enough), per collector received and lost, and the bridge's discard counters.
The lab runs on User-Mode Linux, where every packet crosses the host several times: the figures
are the lab's, a floor for real hardware, not a hardware benchmark.
"""

import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))  # lib/lflab
from lflab.lab import COLLECTOR_LOG, COLLECTORS, LABCTL, LFP, REPO, copy_probe, require_lab, ssh  # noqa: E402

STATS = "/var/log/logfwdr/syslog-bridge-stats.log"


def bridge_counters():
    """Last impstats record per bridge queue on replicator1: {name: {enqueued, full, discarded}}."""
    out = {}
    text = ssh("replicator1", "tail -n 400 %s 2>/dev/null || true" % STATS)
    for line in text.splitlines():
        i = line.find("{")
        if i < 0:
            continue
        try:
            rec = json.loads(line[i:])
        except ValueError:
            continue
        if rec.get("origin") == "core.queue":
            out[rec.get("name")] = {k: rec.get(k, 0) for k in (
                "enqueued", "full", "discarded.full", "discarded.nf", "maxqsize")}
    return out


def one_rate(rate, args):
    run = "br%s%d" % (time.strftime("%H%M%S"), rate)
    for c in COLLECTORS:
        if c not in args.down:
            ssh(c, "truncate -s 0 " + COLLECTOR_LOG)
    before = bridge_counters()
    p = subprocess.run(
        [LABCTL, "ssh", "exporter2", "python3 /root/lab_probe.py send --target 10.10.2.1 "
         "--name exporter2 --run %s --udp-rate 0 --tcp-rate %d --duration %s --no-stdin"
         % (run, rate, args.seconds)], capture_output=True, text=True, timeout=600, check=True)
    sent = json.loads(p.stdout.strip().splitlines()[-1])
    time.sleep(args.drain)
    # the bridge writes impstats every interval: wait for one record after the run
    time.sleep(args.stats_wait)
    after = bridge_counters()
    row = {"rate": rate, "queued": sent["tcp_queued"], "sent": sent["tcp_sent"],
           "unsent": sent["tcp_unsent"], "seconds": round(sent["done"] - sent["start"], 2),
           "reconnects": len(sent["tcp_reconnects"]), "collectors": {}, "bridge": {}}
    for c in COLLECTORS:
        if c in args.down:
            row["collectors"][c] = {"received": 0, "lost": sent["tcp_sent"], "down": True}
            continue
        seqs = set()
        for line in ssh(c, "cat " + COLLECTOR_LOG).splitlines():
            m = LFP.search(line)
            if m and m.group(1) == run:
                seqs.add(int(m.group(4)))
        row["collectors"][c] = {"received": len(seqs), "lost": sent["tcp_sent"] - len(seqs)}
    for name, ctr in after.items():
        b = before.get(name, {})
        row["bridge"][name] = {k: ctr[k] - b.get(k, 0) if k != "maxqsize" else ctr[k] for k in ctr}
    return row


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    ap.add_argument("--rates", default="250,500,1000,2000,4000")
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--drain", type=float, default=5)
    ap.add_argument("--stats-wait", type=float, default=11)
    ap.add_argument("--down", action="append", default=[], choices=COLLECTORS,
                    help="power this collector off before the runs")
    ap.add_argument("--out", default=os.path.join(REPO, ".build", "bench-bridge-rate.json"))
    args = ap.parse_args()
    require_lab()
    for c in args.down:
        subprocess.run([LABCTL, "poweroff", c], check=True)
    copy_probe("exporter2")
    rows = []
    print("%6s %9s %8s  %s  %s" % ("offered", "achieved", "sent", "  ".join(
        "%-16s" % c for c in COLLECTORS), "bridge discards (queue: full)"))
    for rate in [int(r) for r in args.rates.split(",")]:
        row = one_rate(rate, args)
        if not row["sent"]:
            sys.exit("nothing was sent at %d/s: %s" % (rate, row))
        rows.append(row)
        with open(args.out, "w") as f:
            json.dump(rows, f, indent=1)
        discards = ", ".join("%s: %d" % (n, v["discarded.full"]) for n, v in sorted(row["bridge"].items())
                             if v.get("discarded.full")) or "none"
        for c in args.down:
            q = row["bridge"].get("to-%s queue" % c, {})
            discards += "; %s (down): enqueued %d, queue max %d" % (c, q.get("enqueued", 0), q.get("maxqsize", 0))
        print("%6d %9.0f %8d  %s  %s" % (
            rate, row["sent"] / row["seconds"], row["sent"], "  ".join(
                "%-16s" % ("down" if v.get("down") else "%d lost %d" % (v["received"], v["lost"]))
                for v in row["collectors"].values()),
            discards), flush=True)


if __name__ == "__main__":
    main()
