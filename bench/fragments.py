# -*- coding: utf-8 -*-
"""What reassembly costs: fragmented datagrams through `fragments: reassemble` on the stock 6.1 kernel (UML guest).

One replicator guest per case, the exporter and two forward collectors in namespaces (the topology of
tests/uml/test_forward_stock_kernel.py).  The host sends syslog datagrams of one size at --rate per second for
--seconds; both collectors' UDP sockets count the datagrams that arrive whole.  The guest reads /proc/stat just
before and just after the traffic, so its busy time covers the traffic and little else.  Cases:

  first      1,400-byte datagrams, no reassembly nodes (today's default)
  reasm-1400 the same datagrams with `fragments: reassemble` (the cost of the 14 extra nodes to a packet
             that is not a fragment)
  reasm-3000 3,000-byte datagrams (3 fragments each at MTU 1500), reassembled, copied, refragmented
  reasm-9000 9,000-byte datagrams (7 fragments)
  first-3000 3,000-byte datagrams without reassembly: what a collector gets today (nothing whole)

Printed per case: datagrams sent, received whole per collector, the kernel's reassembly counters, and the CPU the
guest's host processes used per datagram sent over the traffic window (UML runs the guest's whole packet path,
softirqs included, in them; the guest's own /proc/stat is in the JSON line too, but it sees no softirq time and
its polling makes it noisy).  UML moves every packet through the host, so the absolute figures are far above a
real NIC's; compare the cases with each other.

Run as root, one lab at a time: flock /tmp/logfwdr-lab.lock python3 bench/fragments.py
Exit status is non-zero only for setup errors.
"""

import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))  # the lab library, lib/lflab
from lflab import netlab  # noqa: E402

sys.path.insert(0, netlab.ensure_collection_path())
from lflab import harness  # noqa: E402

EXPORTER_IP, REPLICATOR_IN, REPLICATOR_OUT = "192.0.2.20", "192.0.2.1", "198.51.100.1"
COLLECTORS = {"A": ("198.51.100.10", "02:cc:00:00:00:0a"), "B": ("198.51.100.11", "02:cc:00:00:00:0b")}
CASES = {"first": ("first", 1400), "reasm-1400": ("reassemble", 1400), "reasm-3000": ("reassemble", 3000),
         "reasm-9000": ("reassemble", 9000), "first-3000": ("first", 3000)}

GUEST = r"""
set -u
ip link set vec0 up
ip link set vec1 up
ip addr add {rin}/24 dev vec0
ip addr add {rout}/24 dev vec1
""" + harness.GUEST_CLI + r"""
python3 -c "$CLI" apply --state /tmp/state.json >/share/apply.json 2>/share/apply.err
lf_ready
while [ ! -e /share/go ]; do sleep 0.05; done
head -1 /proc/stat >/share/stat0
while [ ! -e /share/end ]; do sleep 0.25; done
head -1 /proc/stat >/share/stat1
python3 -c "$CLI" status --state /tmp/state.json --json >/share/status.json 2>/share/status.err
python3 -c "
import json, sys
sys.path.insert(0, '/tmp/lib')
from ansible_collections.netops.logfwdr.plugins.module_utils.tc import kernel, runner
k = kernel.Kernel()
print(json.dumps(runner.info({{'priority': 5140, 'chain': 0, 'devices': ['vec0']}}, k)))
" >/share/info.json 2>/share/info.err
lf_wait_stop 30 || true
"""

RECEIVER = r"""
import json, select, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
s.bind(("0.0.0.0", 514))
size = int(sys.argv[1])
print("ready", flush=True)
whole = other = 0
while True:
    r, _w, _x = select.select([s, sys.stdin], [], [], 5)
    if s in r:
        while True:
            try:
                data = s.recv(65535, socket.MSG_DONTWAIT)
            except BlockingIOError:
                break
            if len(data) == size:
                whole += 1
            else:
                other += 1
    if sys.stdin in r:
        break
print(json.dumps({"whole": whole, "other": other}), flush=True)
"""


def busy(stat):
    """(softirq, user + nice + system + irq + softirq) jiffies of a /proc/stat cpu line: tc's ingress hook, the
    copies and the reassembly run in softirq; the total also holds the guest's own polling."""
    f = [int(x) for x in stat.split()[1:8]]
    return f[6], f[0] + f[1] + f[2] + f[5] + f[6]


def host_cpu(sid):
    """utime + stime seconds of every host process in session `sid` (the guest's linux.uml processes: UML runs
    the guest's packet path, softirqs included, in them; the guest's own /proc/stat does not see softirq time)."""
    hz = float(os.sysconf("SC_CLK_TCK"))
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % pid) as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except (IOError, OSError):
            continue
        if int(fields[3]) == sid:  # field 6, session (after pid and comm)
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / hz


def run_case(image, name, rate, seconds):
    fragments, size = CASES[name]
    state = {"priority": 5140, "devices": [{"name": "vec0", "addresses": [REPLICATOR_IN], "fragments": fragments,
                                            "sources": ["192.0.2.0/24"], "ports": [
        {"port": "syslog", "destinations": [{"name": n, "address": ip} for n, (ip, _m) in sorted(COLLECTORS.items())]}]}]}
    script = GUEST.format(rin=REPLICATOR_IN, rout=REPLICATOR_OUT, cli=harness.CLI, state=json.dumps(state))
    with harness.Wire(image=image) as wire:
        wire.bridge("ingress")
        wire.bridge("egress")
        exp = wire.name + "-exp"
        wire.attach_netns("ingress", exp, "eth0", cidr=EXPORTER_IP + "/24")
        receivers = {}
        for label, (ip, mac) in sorted(COLLECTORS.items()):
            ns = "%s-c%s" % (wire.name, label.lower())
            wire.attach_netns("egress", ns, "eth0", cidr=ip + "/24", mac=mac)
            wire.exec(ns, ["sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0",
                           "net.ipv4.conf.eth0.rp_filter=0"])
            receivers[label] = wire.popen(ns, [sys.executable, "-c", RECEIVER, str(size)], stdin=subprocess.PIPE,
                                          stdout=subprocess.PIPE, text=True)
            assert receivers[label].stdout.readline().strip() == "ready"
        g = wire.start_guest("replicator", bridges=["ingress", "egress"], script=script, timeout=120 + seconds)
        wire.exec(exp, ["ip", "neigh", "replace", REPLICATOR_IN, "lladdr", g.macs[0], "dev", "eth0"])
        g.wait_ready(timeout=90)
        applied = json.loads((g.share / "apply.json").read_text() or "{}")
        if applied.get("failed") or applied.get("pending"):
            sys.exit("%s: the apply did not install both collectors: %r" % (name, applied))
        (g.share / "go").write_text("")
        time.sleep(0.3)
        sid = os.getsid(g.proc.pid)
        host0 = host_cpu(sid)
        sent = int(wire.exec(exp, [sys.executable, "-c", harness.PACED_SENDER, str(rate), str(seconds), REPLICATOR_IN, str(size),
                                   EXPORTER_IP]).stdout.split()[-1])
        time.sleep(1.0)  # copies still in flight through the guest
        host1 = host_cpu(sid)
        (g.share / "end").write_text("")
        for _i in range(300):
            if (g.share / "info.json").exists() and (g.share / "info.json").stat().st_size:
                break
            time.sleep(0.1)
        got = dict((label, json.loads(p.communicate("stop\n", timeout=30)[0].strip().splitlines()[-1]))
                   for label, p in receivers.items())
        g.stop()
        res = g.wait()
        share = res.share if hasattr(res, "share") else str(g.share)
        stat0 = open(os.path.join(share, "stat0")).read()
        stat1 = open(os.path.join(share, "stat1")).read()
        info = json.loads(open(os.path.join(share, "info.json")).read() or "{}")
    hz = os.sysconf("SC_CLK_TCK")
    (soft0, all0), (soft1, all1) = busy(stat0), busy(stat1)
    softirq, cpu = (soft1 - soft0) / float(hz), (all1 - all0) / float(hz)
    dev = (info.get("devices") or [{}])[0]
    return {"case": name, "size": size, "sent": sent, "A": got["A"]["whole"], "B": got["B"]["whole"],
            "other": got["A"]["other"] + got["B"]["other"], "softirq_s": softirq, "busy_s": cpu,
            "softirq_us_per_datagram": 1e6 * softirq / sent if sent else None,
            "busy_us_per_datagram": 1e6 * cpu / sent if sent else None, "reassembly": dev.get("reassembly"),
            "host_s": host1 - host0, "host_us_per_datagram": 1e6 * (host1 - host0) / sent if sent else None}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=500.0, help="datagrams per second (default 500)")
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated, of: %s" % ", ".join(CASES))
    args = parser.parse_args()
    reason = harness.uml_unavailable_reason()
    if reason:
        sys.exit("cannot run UML guests here: %s" % reason)
    harness.cleanup_stale()
    image = harness.ensure_image()
    rows = [run_case(image, name, args.rate, args.seconds) for name in args.cases.split(",")]
    print("fragments through the replicator (UML guest, stock 6.1 kernel), %.0f datagrams/s for %.0f s, "
          "2 forward collectors" % (args.rate, args.seconds))
    print("%-11s %6s %6s %8s %8s %6s %22s %13s" % (
        "case", "bytes", "sent", "A whole", "B whole", "other", "reassembled/fragments", "CPU us/dgram"))
    for r in rows:
        ra = r["reassembly"] or {}
        print("%-11s %6d %6d %8d %8d %6d %22s %13.0f" % (
            r["case"], r["size"], r["sent"], r["A"], r["B"], r["other"],
            "%d/%d" % (ra.get("datagrams", 0), ra.get("fragments", 0)) if ra else "-",
            r["host_us_per_datagram"] or 0))
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
