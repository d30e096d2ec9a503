"""What an IPv6 sender costs the TCP syslog bridge, beside an IPv4 one: the role's rendered configuration in a real
rsyslogd, on this machine's kernel, in network namespaces.

    python3 bench/bridge_family.py [--messages 100000] [--runs 3]

The bridge (dual-stack: address 10.77.0.1/24 and address6 2001:db8:77::1/64) sends every message to 4 collectors:
one without sources, one with an IPv4 or IPv6 allow-list of the sender's family, and a pool of two. For each family
one sender writes --messages RFC 5424 messages over one TCP connection, as fast as the bridge reads them; the
collectors' packets are counted (and dropped) by nftables in their namespace. An IPv6 sender's message runs the
configuration's IPv6 branch (its address written as 32 hex digits, the allow-list as regular expressions, the pool
by the last byte), an IPv4 one ip42num() and number ranges.

Prints per family and run: seconds until every collector had every message it is due, messages/s, and the CPU
rsyslogd used per message (user + system, from /proc). Needs root and rsyslog (make deps).
"""

import argparse
import ipaddress
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))  # lib/lflab

from lflab import bridgeconf, netlab  # noqa: E402

SENDER = {4: "10.77.0.2", 6: "2001:db8:77::2"}
BRIDGE = {4: "10.77.0.1", 6: "2001:db8:77::1"}
COLLECTORS = [
    {"name": "all", "address": "10.78.0.11", "protocols": ["syslog"]},
    {"name": "four", "address": "10.78.0.12", "protocols": ["syslog"], "sources": ["10.77.0.0/25"]},
    {"name": "six", "address": "2001:db8:78::12", "protocols": ["syslog"], "sources": ["2001:db8:77::/65"]},
    {"name": "p0", "address": "10.78.0.13", "protocols": ["syslog"], "pool": "sys"},
    {"name": "p1", "address": "10.78.0.14", "protocols": ["syslog"], "pool": "sys"},
]
INVENTORY = {
    "logfwdr_ingress_interfaces": [{"name": "in0", "address": BRIDGE[4] + "/24", "address6": BRIDGE[6] + "/64"}],
    "logfwdr_egress_interfaces": [{"name": "out0", "address": "10.78.0.1/24", "address6": "2001:db8:78::1/64"}],
    "logfwdr_collectors": COLLECTORS,
    "logfwdr_vrrp": False,
    "logfwdr_syslog_bridge_queue_size": 2000000,   # no message dropped for a full queue: each is counted
    "logfwdr_syslog_bridge_stats_interval": 3600,
}


def rsyslog_cpu(pid):
    """User + system seconds of the process, from /proc/PID/stat."""
    fields = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / float(os.sysconf("SC_CLK_TCK"))


class Rig(object):
    def __init__(self, directory):
        self.lab = netlab.Lab("bf")
        self.lab.start()
        lab, sh = self.lab, netlab.sh
        netlab.Lab.add_address6(lab.rep, "in0", BRIDGE[6] + "/64")
        netlab.Lab.add_address6(lab.exp, "exp0", SENDER[6] + "/64")
        self.col = lab.ns("lf%sk" % lab.tag)
        sh("ip", "-n", lab.rep, "link", "add", "out0", "type", "veth", "peer", "name", "col0", "netns", self.col)
        sh("ip", "-n", lab.rep, "addr", "add", "10.78.0.1/24", "dev", "out0")
        sh("ip", "-n", lab.rep, "link", "set", "out0", "up")
        netlab.Lab.add_address6(lab.rep, "out0", "2001:db8:78::1/64")
        sh("ip", "-n", self.col, "link", "set", "col0", "up")
        netlab.Lab.add_address6(self.col, "col0", *[c["address"] + "/64" for c in COLLECTORS if ":" in c["address"]])
        rules = ["table inet count {", "chain in {", "type filter hook input priority 0; policy accept;"]
        for c in COLLECTORS:
            if ":" not in c["address"]:
                sh("ip", "-n", self.col, "addr", "add", c["address"] + "/24", "dev", "col0")
            rules.append("%s daddr %s udp dport 514 counter drop comment \"%s\""
                         % ("ip6" if ":" in c["address"] else "ip", c["address"], c["name"]))
        subprocess.run(["ip", "netns", "exec", self.col, "nft", "-f", "-"], input="\n".join(rules + ["}", "}"]),
                       universal_newlines=True, check=True)
        text, _variables = bridgeconf.render_conf(INVENTORY, directory)
        conf = os.path.join(directory, "bridge.conf")
        with open(conf, "w") as handle:
            handle.write(text)
        self.log = open(os.path.join(directory, "rsyslogd.log"), "w")
        self.proc = subprocess.Popen(["ip", "netns", "exec", lab.rep, bridgeconf.RSYSLOGD, "-n", "-iNONE", "-f", conf],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        lab.procs.append(self.proc)
        deadline = time.monotonic() + 15
        while "[%s]:514 " % BRIDGE[6] not in netlab.sh("ip", "netns", "exec", lab.rep, "ss", "-Hltn").stdout:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the bridge did not start: %s" % open(self.log.name).read())
            time.sleep(0.1)

    def counts(self):
        out = netlab.sh("ip", "netns", "exec", self.col, "nft", "list", "table", "inet", "count").stdout
        counted = re.finditer(r'counter packets (\d+) bytes \d+ drop comment "([^"]+)"', out)
        return dict((m.group(2), int(m.group(1))) for m in counted)

    def close(self):
        self.lab.close()
        self.log.close()


SEND = r"""
import socket, sys
family, source, target, count = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
s = socket.socket(socket.AF_INET6 if family == 6 else socket.AF_INET, socket.SOCK_STREAM)
s.bind((source, 0))
s.connect((target, 514))
line = b"<13>1 2026-12-07T10:00:00Z rtr app - - - benchmark message of a usual length, about a hundred bytes\n"
batch = line * 1000
for _ in range(count // 1000):
    s.sendall(batch)
s.close()
"""


def due(family):
    """How many of the sender's messages each collector gets: every sender, its family's allow-list, its pool
    member (the role's own mapping)."""
    from ansible_collections.netops.logfwdr.plugins.filter.syslog_bridge_targets import syslog_bridge_targets
    targets = syslog_bridge_targets(COLLECTORS, INVENTORY["logfwdr_ingress_interfaces"], {"syslog": 514},
                                    egress_interfaces=INVENTORY["logfwdr_egress_interfaces"])
    sender = ipaddress.ip_address(SENDER[family])
    out = {}
    for t in targets:
        ok = not t["senders"] or any(sender in ipaddress.ip_network(n) for n in t["senders"])
        if t["pool"]:
            runs = t["octets"] if family == 4 else t["octets6"]
            ok = ok and any(a <= int(sender) & 0xFF <= b for a, b in runs)
        out[t["name"]] = 1 if ok else 0
    return out


def run(rig, family, count):
    shares = due(family)
    before, cpu0 = rig.counts(), rsyslog_cpu(rig.proc.pid)
    start = time.monotonic()
    subprocess.run(["ip", "netns", "exec", rig.lab.exp, sys.executable, "-c", SEND, str(family), SENDER[family],
                    BRIDGE[family], str(count)], check=True)
    want = dict((name, before.get(name, 0) + share * count) for name, share in shares.items())
    deadline = start + 600
    while True:
        now = rig.counts()
        if all(now.get(name, 0) >= n for name, n in want.items()) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    seconds = time.monotonic() - start
    cpu = rsyslog_cpu(rig.proc.pid) - cpu0
    got = dict((name, now.get(name, 0) - before.get(name, 0)) for name in shares)
    return seconds, cpu, got, dict((name, share * count) for name, share in shares.items())


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--messages", type=int, default=100000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if os.geteuid() != 0 or not os.path.exists(bridgeconf.RSYSLOGD):
        raise SystemExit("needs root and rsyslogd (make deps)")
    directory = tempfile.mkdtemp(prefix="logfwdr-bridge-bench-")
    rig = Rig(directory)
    try:
        print("messages per run: %d over one TCP connection; collectors: %s" % (
            args.messages, ", ".join(c["name"] for c in COLLECTORS)))
        print("%-6s %4s %8s %10s %14s  %s" % ("family", "run", "seconds", "msgs/s", "cpu us/msg", "delivered (due)"))
        results = {4: [], 6: []}
        for attempt in range(1, args.runs + 1):
            for family in (4, 6):
                seconds, cpu, got, want = run(rig, family, args.messages)
                results[family].append((args.messages / seconds, 1e6 * cpu / args.messages))
                print("IPv%d   %4d %8.2f %10.0f %14.2f  %s" % (
                    family, attempt, seconds, args.messages / seconds, 1e6 * cpu / args.messages,
                    " ".join("%s=%d(%d)" % (n, got[n], want[n]) for n in sorted(got))), flush=True)
                if got != want:
                    raise SystemExit("a collector did not get what it is due: %s, not %s" % (got, want))
        for family in (4, 6):
            rates, cpus = sorted(r for r, _c in results[family]), sorted(c for _r, c in results[family])
            print("IPv%d median: %.0f messages/s, %.1f us of rsyslogd CPU per message" % (
                family, rates[len(rates) // 2], cpus[len(cpus) // 2]))
    finally:
        rig.close()
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
