# -*- coding: utf-8 -*-
"""The logfwdr agent forwarding on the stock Debian 6.1 kernel (UML guest), for tests/uml and bench/.

Topology (namespaces the harness creates)::

    exporter ns eth0 192.0.2.20/24 --[ingress]-- vec0 192.0.2.1/24   replicator guest (logfwdr agent)
                                                 vec1 198.51.100.1/24
    collector A eth0 198.51.100.10/24 --[egress]--+
    collector B eth0 198.51.100.11/24 --[egress]--+   (no address at first: silent at deploy)
    collector A eth1 198.51.101.10/24 --[egress2]---- vec2 198.51.101.1/24  (A's second NIC, a second egress)

The guest runs `logfwdr apply` and then `logfwdr agent` from this checkout (mounted at /repo) with Debian's
python3-pyroute2 0.7.2.  The host sends numbered syslog datagrams at a steady rate and records, per collector,
when each number arrived at its UDP socket; a collector that changes its MAC receives nothing until the rule
carries the new MAC (its NIC drops frames for the old one).  Each arrival also records the collector's interface
that received it, so a route to A moved onto the second egress (`ip route replace 198.51.100.10/32 via
198.51.101.10 dev vec2` in the guest) shows up as copies arriving on A's eth1.
"""

import json
import subprocess
import sys
import time

from ansible_collections.netops.logfwdr.plugins.module_utils.tc.layout import DEFAULT_PRIORITY
from lflab import harness

EXPORTER_IP = "192.0.2.20"
REPLICATOR_IN, REPLICATOR_OUT, REPLICATOR_OUT2 = "192.0.2.1", "198.51.100.1", "198.51.101.1"
COL_IP = {"A": "198.51.100.10", "B": "198.51.100.11"}
COL_MAC = {"A": "02:cc:00:00:00:0a", "B": "02:cc:00:00:00:0b"}
A_SECOND_IP, A_SECOND_MAC = "198.51.101.10", "02:cc:00:00:00:1a"
PRIORITY = DEFAULT_PRIORITY
STATE = {"priority": PRIORITY, "devices": [{"name": "vec0", "addresses": [REPLICATOR_IN],
                                            "sources": ["192.0.2.0/24"], "ports": [
    {"port": "syslog", "destinations": [{"name": "A", "address": COL_IP["A"]},
                                        {"name": "B", "address": COL_IP["B"]}]}]}]}


GUEST = r"""
set -u
ip link set vec0 up
ip link set vec1 up
ip link set vec2 up
ip addr add {rin}/24 dev vec0
ip addr add {rout}/24 dev vec1
ip addr add {rout2}/24 dev vec2
""" + harness.GUEST_CLI + r"""
python3 -c "import importlib.metadata as m; print('PYROUTE2', m.version('pyroute2'))"
python3 -c "$CLI" apply --state /tmp/state.json >/share/apply.json 2>/share/apply.err
echo "apply rc=$?"
python3 -c "$CLI" agent --state /tmp/state.json --health-file /share/health {agent_args} >/share/agent.log 2>&1 &
AGENT=$!
for i in $(seq 200); do [ -e /share/health ] && break; sleep 0.1; done
lf_ready
# the host asks for neighbour table and route changes by writing /share/ip-req (the arguments of one ip command)
while [ ! -e /share/stop ]; do
    if [ -e /share/ip-req ]; then
        set -- $(cat /share/ip-req)
        rm -f /share/ip-req
        ip "$@" >/share/ip-out 2>&1
        echo "rc=$?" >>/share/ip-out
        : >/share/ip-done
    fi
    sleep 0.02
done
python3 -c "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:9514/metrics').read().decode())" \
    >/share/metrics.txt 2>&1
python3 -c "$CLI" status --state /tmp/state.json --json >/share/status.json 2>/share/status.err
ps -o rss=,cputime= -p $AGENT >/share/agent-usage
kill $AGENT
wait $AGENT
cat /share/health >/share/health-after
tc -s filter show dev vec0 ingress
"""

LISTENER = r"""
import json, select, socket, struct, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
s.setsockopt(socket.IPPROTO_IP, getattr(socket, "IP_PKTINFO", 8), 1)
s.bind(("0.0.0.0", 514))
print("ready", flush=True)
got = []
while True:
    r, _w, _x = select.select([s, sys.stdin], [], [], 5)
    if s in r:
        while True:
            try:
                data, anc, _flags, _addr = s.recvmsg(65535, 64, socket.MSG_DONTWAIT)
            except BlockingIOError:
                break
            ifname = "?"
            for level, kind, raw in anc:  # struct in_pktinfo: the receiving ifindex first
                if level == socket.IPPROTO_IP and kind == getattr(socket, "IP_PKTINFO", 8):
                    ifname = socket.if_indextoname(struct.unpack("i", raw[:4])[0])
            got.append([time.time(), int(data.split()[-1]), ifname])
    if sys.stdin in r:
        break
print(json.dumps(got), flush=True)
"""


GARP = r"""
import socket, struct, sys
ifname, ip, mac = sys.argv[1], sys.argv[2], bytes.fromhex(sys.argv[3].replace(":", ""))
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((ifname, 0))
addr = socket.inet_aton(ip)
for op in (1, 2):  # a gratuitous request and reply, as arping -U / -A send
    s.send(b"\xff" * 6 + mac + b"\x08\x06" + struct.pack("!HHBBH", 1, 0x0800, 6, 4, op) + mac + addr
           + (b"\0" * 6 if op == 1 else b"\xff" * 6) + addr)
"""


def guest_script(agent_args="--metrics-listen 127.0.0.1:9514"):
    return GUEST.format(rin=REPLICATOR_IN, rout=REPLICATOR_OUT, rout2=REPLICATOR_OUT2, cli=harness.CLI, state=json.dumps(STATE, indent=1),
                        agent_args=agent_args)


class Scenario(object):
    """The topology, the guest, and helpers to change the collectors and watch what they receive."""

    def __init__(self, wire, collector_b_up=False, agent_args="--metrics-listen 127.0.0.1:9514", timeout=300):
        self.wire = wire
        wire.bridge("ingress")
        wire.bridge("egress")
        wire.bridge("egress2")
        self.ns = {"exp": wire.name + "-exp", "A": wire.name + "-ca", "B": wire.name + "-cb"}
        wire.attach_netns("ingress", self.ns["exp"], "eth0", cidr=EXPORTER_IP + "/24")
        for name in ("A", "B"):
            up = name == "A" or collector_b_up
            wire.attach_netns("egress", self.ns[name], "eth0", cidr=COL_IP[name] + "/24" if up else None,
                              mac=COL_MAC[name])
            if name == "A":
                wire.attach_netns("egress2", self.ns[name], "eth1", cidr=A_SECOND_IP + "/24", mac=A_SECOND_MAC)
            # no route back to the exporters' subnet: keep rp_filter out of the way
            wire.exec(self.ns[name], ["sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0",
                                      "net.ipv4.conf.default.rp_filter=0", "net.ipv4.conf.eth0.rp_filter=0"]
                      + (["net.ipv4.conf.eth1.rp_filter=0"] if name == "A" else []))
        self.guest = wire.start_guest("replicator", bridges=["ingress", "egress", "egress2"], script=guest_script(agent_args),
                                      timeout=timeout)
        wire.exec(self.ns["exp"], ["ip", "neigh", "replace", REPLICATOR_IN, "lladdr", self.guest.macs[0],
                                   "dev", "eth0"])
        self.listeners = {}
        self.sender = None
        self.start = None

    def ready(self, timeout=120):
        self.guest.wait_ready(timeout=timeout)
        return json.loads((self.guest.share / "apply.json").read_text())

    def listen(self):
        for name in ("A", "B"):
            proc = self.wire.popen(self.ns[name], [sys.executable, "-c", LISTENER], stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, text=True)
            assert proc.stdout.readline().strip() == "ready"
            self.listeners[name] = proc

    def send(self, rate, seconds):
        self.rate = rate
        self.sender = self.wire.popen(self.ns["exp"], [sys.executable, "-c", harness.PACED_SENDER, str(rate), str(seconds),
                                                       REPLICATOR_IN], stdout=subprocess.PIPE, text=True)
        self.start = float(self.sender.stdout.readline())

    def sent(self):
        return int(self.sender.stdout.readline())

    def received(self):
        out = {}
        for name, proc in self.listeners.items():
            text, _err = proc.communicate("stop\n", timeout=30)
            out[name] = json.loads(text.strip().splitlines()[-1])
        return out

    # ---- what a collector does
    def bring_up(self, name):
        self.wire.exec(self.ns[name], ["ip", "addr", "add", COL_IP[name] + "/24", "dev", "eth0"])
        return time.time()

    def new_mac(self, name, mac, announce=True):
        """The collector's NIC replaced: a new MAC, announced with a gratuitous ARP (or not)."""
        self.wire.exec(self.ns[name], ["ip", "link", "set", "eth0", "address", mac])
        when = time.time()
        if announce:
            self.wire.exec(self.ns[name], [sys.executable, "-c", GARP, "eth0", COL_IP[name], mac])
        return when

    def guest_ip(self, *args, timeout=10):
        """`ip ARGS` in the guest; returns when the host asked for it."""
        share = self.guest.share
        when = time.time()
        (share / "ip-req.tmp").write_text(" ".join(args) + "\n")
        (share / "ip-req.tmp").rename(share / "ip-req")
        deadline = time.time() + timeout
        while not (share / "ip-done").exists():
            assert time.time() < deadline, "the guest did not run ip %s" % " ".join(args)
            time.sleep(0.02)
        (share / "ip-done").unlink()
        out = (share / "ip-out").read_text()
        assert out.rstrip().endswith("rc=0"), "ip %s in the guest: %s" % (" ".join(args), out)
        return when

    def neigh_replace(self, name, mac, timeout=10):
        """`ip neigh replace ... nud permanent` in the guest; returns when the host asked for it."""
        return self.guest_ip("neigh", "replace", COL_IP[name], "lladdr", mac, "dev", "vec1", "nud", "permanent",
                             timeout=timeout)

    def move_route(self, name):
        """The route to collector NAME moved onto the second egress, through A's second NIC."""
        return self.guest_ip("route", "replace", COL_IP[name] + "/32", "via", A_SECOND_IP, "dev", "vec2")

    def first_after(self, got, when, via=None):
        """The first arrival at or after `when`, on the collector's interface `via` if given (None if nothing came)."""
        later = [t for t, _seq, ifname in got if t >= when and (via is None or ifname == via)]
        return min(later) if later else None

    def seqs_between(self, t0, t1):
        """Sequence numbers sent between two host times."""
        low = max(0, int((t0 - self.start) * self.rate) + 1)
        high = int((t1 - self.start) * self.rate)
        return set(range(low, high))

    def stop(self):
        self.guest.stop()
        return self.guest.wait()


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]
