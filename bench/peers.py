# -*- coding: utf-8 -*-
"""The peers side by side: logfwdr's kernel copies against user-space relays, same topology, same sender.

Topology (throwaway namespaces, lib/lflab/netlab.py; nothing leaves them): a sender namespace sends UDP to the
replicator namespace's in0 (10.77.0.1); the replicator sends N copies, one out of each tool<i> to a receiver
namespace, which counts what arrives on its interface (rx<i>, a kernel counter) and drops it at once (the copies
are addressed to a MAC it does not have). The relays:

  logfwdr   this collection's rules (tc_mirror through runner.run), mirror destinations: the kernel copies
  rsyslog   rsyslogd, imudp in, one omfwd UDP action per receiver (Debian rsyslog)
  pmacct    nfacctd's tee plugin, transparent (keeps the exporter's address), one pool per receiver (Debian pmacct)
  samplicator  only with --samplicate PATH (not packaged in Debian): samplicate -S, one receiver per argument

The sender (bench/peers/send.c, built here with gcc) runs with sendmmsg on core 1; everything the replicator does
(softirq: RPS sends in0's packets to core 0; the relay process: pinned to core 0) runs on core 0. Per relay and
destination count it prints: copies/s delivered when the sender goes as fast as it can, the highest input rate
(packets/s) at which every receiver got every packet (a bisection of --steps runs), and core 0's busy CPU seconds
per million copies delivered (from /proc/stat, so anything else on core 0 counts too: run it on an idle machine).

    python3 bench/peers.py [--destinations 4,16,64] [--seconds 2] [--relays logfwdr,rsyslog,pmacct]
"""

import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402
from benchlib import netlab  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SYSLOG_PORT, NETFLOW_PORT = 514, 2055
PAYLOAD_SIZE = 72  # a NetFlow v5 datagram with one record; the syslog line is padded to the same size


def payload(kind):
    if kind == "netflow":
        header = struct.pack("!HHIIIIBBH", 5, 1, 1000, int(time.time()), 0, 1, 0, 0, 0)
        record = struct.pack("!IIIHHIIIIHHBBBBHHBBH", 0x0a000001, 0x0a000002, 0, 1, 2, 10, 1000, 0, 0,
                             1234, 80, 0, 0, 17, 0, 0, 0, 24, 24, 0)
        return header + record
    line = b"<13>Dec  3 12:00:00 bench peers: numbered syslog for the peers benchmark"
    return line.ljust(PAYLOAD_SIZE, b".")[:PAYLOAD_SIZE]


def build_sender(workdir):
    exe = os.path.join(workdir, "send")
    subprocess.run(["gcc", "-O2", "-o", exe, os.path.join(HERE, "peers", "send.c")], check=True)
    return exe


def cpu0_busy():
    """Busy seconds of core 0 so far (user, nice, system, irq, softirq, steal)."""
    with open("/proc/stat") as handle:
        for line in handle:
            if line.startswith("cpu0 "):
                f = [int(x) for x in line.split()[1:]]
                return (f[0] + f[1] + f[2] + f[5] + f[6] + f[7]) / float(os.sysconf("SC_CLK_TCK"))
    raise benchlib.SetupError("no cpu0 line in /proc/stat")


class Topology:
    """N egress interfaces tool<i> in the replicator namespace, each a veth to receiver namespace i.

    The copies are addressed to a MAC no receiver has (the static neighbour of 10.78.<i>.2; mirror copies keep
    in0's MAC), so a receiver counts each copy on its interface (rx<i>, a kernel counter) and its stack drops it
    as another host's frame at once: the receiving side, the same for every relay, costs as little as it can
    (this kernel has no dummy device)."""

    def __init__(self, lab, count):
        self.lab = lab
        self.tools = lab.add_receivers(count)
        self.receivers = []
        for i, tool in enumerate(self.tools):
            rx_ns, rx = lab.receivers[i], "rx%d" % i
            netlab.sh("ip", "-n", rx_ns, "addr", "flush", "dev", rx)
            netlab.sh("ip", "-n", rx_ns, "link", "set", rx, "address", "02:00:01:00:%02x:%02x" % (i // 256, i % 256))
            address = "10.78.%d.2" % i
            netlab.sh("ip", "-n", lab.rep, "addr", "add", "10.78.%d.1/30" % i, "dev", tool)
            netlab.sh("ip", "-n", lab.rep, "neigh", "replace", address, "lladdr", "02:00:00:00:%02x:%02x"
                      % (i // 256, i % 256), "dev", tool, "nud", "permanent")
            self.receivers.append(address)
        # the replicator's work on core 0, the sender's on core 1
        netlab.sh("ip", "netns", "exec", lab.rep, "sh", "-c", "echo 1 > /sys/class/net/in0/queues/rx-0/rps_cpus")

    def delivered(self):
        return sum(self.lab.rx_packets(i) for i in range(len(self.tools)))


def start_logfwdr(topo, workdir):
    dests = [benchlib.dest(tool, name="peer%d" % i) for i, tool in enumerate(topo.tools)]
    code = ("import json, sys; from ansible_collections.netops.logfwdr.plugins.module_utils.tc import kernel, runner; "
            "k = kernel.Kernel(); runner.run(json.loads(sys.argv[1]), k); k.close()")
    netlab.sh("ip", "netns", "exec", topo.lab.rep, sys.executable, "-c", code,
              json.dumps(benchlib.params("in0", SYSLOG_PORT, dests)), env=topo.lab.env)
    return None, SYSLOG_PORT, payload("syslog")


def start_rsyslog(topo, workdir):
    conf = os.path.join(workdir, "rsyslog.conf")
    with open(conf, "w") as handle:
        handle.write('global(workDirectory="%s")\nmodule(load="imudp")\n' % workdir)
        handle.write('input(type="imudp" address="%s" port="%d")\n' % (netlab.REPLICATOR_IP, SYSLOG_PORT))
        for address in topo.receivers:
            handle.write('*.* action(type="omfwd" target="%s" port="%d" protocol="udp")\n' % (address, SYSLOG_PORT))
    argv = ["rsyslogd", "-n", "-f", conf, "-i", os.path.join(workdir, "rsyslog.pid")]
    return argv, SYSLOG_PORT, payload("syslog")


def start_pmacct(topo, workdir):
    receivers = os.path.join(workdir, "tee.lst")
    with open(receivers, "w") as handle:
        for i, address in enumerate(topo.receivers, 1):
            handle.write("id=%d ip=%s:%d\n" % (i, address, NETFLOW_PORT))
    conf = os.path.join(workdir, "nfacctd.conf")
    with open(conf, "w") as handle:
        handle.write("daemonize: false\nnfacctd_ip: %s\nnfacctd_port: %d\nplugins: tee[peers]\n"
                     "tee_receivers[peers]: %s\ntee_transparent[peers]: true\n"
                     % (netlab.REPLICATOR_IP, NETFLOW_PORT, receivers))
    return ["nfacctd", "-f", conf], NETFLOW_PORT, payload("netflow")


def start_samplicator(path):
    def start(topo, workdir):
        argv = [path, "-S", "-p", str(NETFLOW_PORT), "-s", netlab.REPLICATOR_IP]
        argv += ["%s/%d" % (address, NETFLOW_PORT) for address in topo.receivers]
        return argv, NETFLOW_PORT, payload("netflow")
    return start


def run(lab, sender, port, data_file, rate, seconds, topo):
    """One sender run: (sent, delivered copies, core 0 busy seconds)."""
    before, busy = topo.delivered(), cpu0_busy()
    out = netlab.sh("ip", "netns", "exec", lab.exp, "taskset", "-c", "1", sender, netlab.REPLICATOR_IP,
                    str(port), str(rate), str(seconds), data_file).stdout
    time.sleep(0.5)  # user-space relays drain their queues
    sent = json.loads(out)["sent"]
    return sent, topo.delivered() - before, cpu0_busy() - busy, json.loads(out)["seconds"]


def measure(name, start, count, args, sender, workdir):
    with netlab.Lab(tag="pe") as lab:
        topo = Topology(lab, count)
        argv, port, data = start(topo, workdir)
        data_file = os.path.join(workdir, "payload")
        with open(data_file, "wb") as handle:
            handle.write(data)
        proc = None
        if argv:
            proc = subprocess.Popen(["ip", "netns", "exec", lab.rep, "taskset", "-c", "0"] + argv,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            lab.procs.append(proc)
            time.sleep(1.5)
            if proc.poll() is not None:
                raise benchlib.SetupError("%s exited: %s" % (name, proc.stderr.read().decode(errors="replace")))
        # warm up (ARP, caches), then as fast as the sender goes
        run(lab, sender, port, data_file, 1000, 0.5, topo)
        sent, got, busy, secs = run(lab, sender, port, data_file, 0, args.seconds, topo)
        result = {"relay": name, "destinations": count, "max_input_pps": sent / secs, "copies_per_s": got / secs,
                  "delivered_share": got / float(sent * count) if sent else 0.0,
                  "cpu_s_per_million_copies": busy / (got / 1e6) if got else None}
        # bisection below what could be lossless at all: the copies/s reached, shared by N; lossless at the
        # sender's maximum needs no search
        low, high, best = 0.0, min(sent, 1.25 * got / count) / secs, (sent / secs if got == sent * count else 0.0)
        for _step in range(args.steps if not best else 0):
            rate = (low + high) / 2
            s, g, _busy, t = run(lab, sender, port, data_file, rate, args.seconds, topo)
            if s and g == s * count:
                best, low = max(best, s / t), rate
            else:
                high = rate
        result["lossless_input_pps"] = best
        return result


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    p.add_argument("--destinations", default="4,16,64", help="comma-separated destination counts")
    p.add_argument("--relays", default="logfwdr,rsyslog,pmacct", help="comma-separated: logfwdr, rsyslog, pmacct")
    p.add_argument("--samplicate", help="path of a samplicate binary, to add samplicator")
    p.add_argument("--seconds", type=float, default=2.0, help="seconds per sender run (default 2)")
    p.add_argument("--steps", type=int, default=6, help="bisection steps for the lossless rate (default 6)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    args = p.parse_args(argv)
    benchlib.check_root()
    benchlib.install_signal_cleanup()
    if os.cpu_count() < 2:
        raise benchlib.SetupError("needs two cores: the sender on one, the replicator on the other")
    starters = {"logfwdr": start_logfwdr, "rsyslog": start_rsyslog, "pmacct": start_pmacct}
    relays = [r for r in args.relays.split(",") if r]
    for r in relays:
        if r not in starters:
            raise benchlib.SetupError("unknown relay %r; use %s" % (r, ", ".join(starters)))
    for relay, tool in (("rsyslog", "rsyslogd"), ("pmacct", "nfacctd"), ("logfwdr", "gcc")):
        if relay in relays and shutil.which(tool) is None:
            raise benchlib.SetupError("%s is not installed (make bench-peers installs it)" % tool)
    if args.samplicate:
        starters["samplicator"] = start_samplicator(args.samplicate)
        relays.append("samplicator")
    workdir = tempfile.mkdtemp(prefix="lfpeers.")
    results = []
    try:
        sender = build_sender(workdir)
        for count in [int(x) for x in args.destinations.split(",")]:
            for name in relays:
                results.append(measure(name, starters[name], count, args, sender, workdir))
                r = results[-1]
                print("%-11s %3d dest  sender max %8.0f pps  copies %9.0f/s (%5.1f%% of sent x N)  "
                      "lossless input %8.0f pps  %6.2f CPU s per million copies"
                      % (name, count, r["max_input_pps"], r["copies_per_s"], 100 * r["delivered_share"],
                         r["lossless_input_pps"], r["cpu_s_per_million_copies"] or float("nan")), flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if args.json:
        print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except benchlib.SetupError as exc:
        sys.exit("peers: %s" % exc)
