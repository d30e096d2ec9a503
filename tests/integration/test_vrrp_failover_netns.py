# -*- coding: utf-8 -*-
"""The role's keepalived.conf and the logfwdr agent's health file doing a real failover, in throwaway namespaces.

    exporter ns  exp0 10.77.1.50 --+
    attacker ns  atk0 10.77.1.66 --+  seg ns: br0 (segment 1)
    rep1 ns      vec1 10.77.1.2  --+  (priority 150)      VIP 10.77.1.1/24, virtual_router_id 77
    rep2 ns      vec1 10.77.1.3  --+  (priority 100)
    rep1 ns      vec2 10.77.2.2  --+  seg ns: br1 (segment 2)
    rep2 ns      vec2 10.77.2.3  --+                      VIP 10.77.2.1/24, virtual_router_id 78

Each replicator gets replication rules from the tc_mirror module (port 514 mirrored to its tool port), the state
file the role writes, the logfwdr agent keeping the rules and the health file, and keepalived.conf from
templates/keepalived.conf.j2 with the vrrp_instances filter's data - then keepalived runs in each namespace. rep1
must hold the VIP; a deleted qdisc is put back by its agent before keepalived notices; when its agent stops, it goes
to FAULT and rep2 takes the VIP, the exporter learning rep2's MAC from the gratuitous ARPs alone; when the agent runs
again, rep1 takes the VIP back after the preempt delay.

With logfwdr_vrrp_pair_link (a veth pair0 between rep1 and rep2, 10.77.9.1/30 and 10.77.9.2/30) the adverts of
both instances go there; the addresses stay on the segments, failover still moves them (and the exporter follows
the gratuitous ARPs), and the same forged adverts on segment 1 reach no keepalived at all.

The attacker on segment 1 forges priority-255 VRRPv3 adverts (raw socket: multicast to 224.0.0.18 and unicast to
both replicators, from its own address and from the peer's): with the role's defaults (unicast, source check, the
role's nftables table with the peer's MAC, read from the peer as the role does) every VIP stays with rep1; with the old defaults (multicast, no filter)
the same adverts take segment 1's VIP away from it.

Needs root and keepalived (`make deps`).  Run: .venv/bin/pytest tests/integration/test_vrrp_failover_netns.py
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import jinja2
from lflab import netlab
import pytest

sys.path.insert(0, netlab.ensure_collection_path())
from ansible_collections.netops.logfwdr.plugins.module_utils.tc.layout import DEFAULT_PRIORITY  # noqa: E402
from ansible.plugins.filter.core import FilterModule as CoreFilters  # noqa: E402
from ansible_collections.netops.logfwdr.plugins.filter.vrrp_instances import DEFAULTS, vrrp_instances  # noqa: E402
from ansible_collections.netops.logfwdr.plugins.plugin_utils.vrrp import links  # noqa: E402

pytestmark = pytest.mark.netns

ROLE = os.path.join(netlab.REPO, "roles", "logfwdr")
KEEPALIVED = shutil.which("keepalived") or "/usr/sbin/keepalived"
PRIO = DEFAULT_PRIORITY
VIP = "10.77.1.1"
VIPS = {"vec1": VIP, "vec2": "10.77.2.1"}
VIP6 = "fd00:77:1::1"
OWN6 = {"rep1": "fd00:77:1::2", "rep2": "fd00:77:1::3", "exp": "fd00:77:1::50"}
OWN = {"rep1": "10.77.1.2", "rep2": "10.77.1.3"}
OWN2 = {"rep1": "10.77.2.2", "rep2": "10.77.2.3"}
ATTACKER = "10.77.1.66"
PRIORITY = {"rep1": 150, "rep2": 100}
PAIR_LINK = {"rep1": "10.77.9.1/30", "rep2": "10.77.9.2/30"}
DEVICES = [{"name": "vec1", "ports": [{"port": 514, "destinations": [
    {"name": "col0", "mode": "mirror", "device": "tool0"}]}]}]
# the interpreter the agent runs with: Debian 12's pyroute2 when the venv is there
CHECK_PYTHON = next((p for p in (os.path.join(netlab.REPO, ".venv-pyroute2-0.7.2", "bin", "python"), sys.executable)
                     if os.path.exists(p)))


def ip(*args, **kw):
    return netlab.sh("ip", *args, **kw)


class Pair(object):
    def __init__(self):
        self.tag = "v%d" % (os.getpid() % 100000)
        self.ns = dict((name, "lf%s%s" % (self.tag, name)) for name in ("seg", "exp", "atk", "rep1", "rep2"))
        self.hardened = True  # the role's defaults; False: multicast, no source check, no nftables table
        self.pair_link = False  # True: logfwdr_vrrp_pair_link on pair0
        self.six = False  # True: vec1 has address6 and virtual_address6
        # True (the role): each peer's adverts are bound to its MAC, read from the peer (`ip -json link show` in its
        # namespace, as validate.yml registers it); False: the rule checks the address only (the old defaults)
        self.mac_binding = True
        self.tmp = tempfile.mkdtemp(prefix="logfwdr-vrrp-")
        os.chmod(self.tmp, 0o755)
        self.procs = {}
        self.made = []
        self.data = {}  # the vrrp_instances view each replicator's files were rendered from

    # ---- setup ----
    def build(self):
        for ns in self.ns.values():
            ip("netns", "add", ns)
            self.made.append(ns)
            ip("-n", ns, "link", "set", "lo", "up")
            netlab.sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")
        seg = self.ns["seg"]
        for br in ("br0", "br1"):
            ip("-n", seg, "link", "add", br, "type", "bridge")
            ip("-n", seg, "link", "set", br, "up")
        for n, (name, dev, addr, br) in enumerate((
                ("exp", "exp0", "10.77.1.50", "br0"), ("atk", "atk0", ATTACKER, "br0"),
                ("rep1", "vec1", OWN["rep1"], "br0"), ("rep2", "vec1", OWN["rep2"], "br0"),
                ("rep1", "vec2", OWN2["rep1"], "br1"), ("rep2", "vec2", OWN2["rep2"], "br1"))):
            ns = self.ns[name]
            ip("-n", seg, "link", "add", "s%d" % n, "type", "veth", "peer", "name", dev, "netns", ns)
            ip("-n", seg, "link", "set", "s%d" % n, "master", br)
            ip("-n", seg, "link", "set", "s%d" % n, "up")
            ip("-n", ns, "addr", "add", addr + "/24", "dev", dev)
            ip("-n", ns, "link", "set", dev, "up")
        ip("-n", self.ns["rep1"], "link", "add", "pair0", "type", "veth", "peer", "name", "pair0", "netns",
           self.ns["rep2"])
        for name in ("rep1", "rep2"):
            ip("-n", self.ns[name], "addr", "add", PAIR_LINK[name], "dev", "pair0")
            ip("-n", self.ns[name], "link", "set", "pair0", "up")
        for name in ("rep1", "rep2"):
            ns = self.ns[name]
            # the role's ARP settings on a replicator
            netlab.sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.conf.all.arp_ignore=1",
                      "net.ipv4.conf.all.arp_announce=2")
            ip("-n", ns, "link", "add", "tool0", "type", "veth", "peer", "name", "sink0")
            ip("-n", ns, "link", "set", "tool0", "up")
            ip("-n", ns, "link", "set", "sink0", "up")
            self.apply_rules(name)
        if self.six:
            for name, dev in (("exp", "exp0"), ("rep1", "vec1"), ("rep2", "vec1")):
                netlab.Lab.add_address6(self.ns[name], dev, OWN6[name] + "/64")

    def configure(self, hardened=True, pair_link=False, mac_binding=True):
        """The role's files for both replicators: the defaults (hardened) or the old multicast ones; mac_binding
        False: the nftables rule checks the peer's address only."""
        self.hardened = hardened
        self.pair_link = pair_link
        self.mac_binding = mac_binding
        for name in ("rep1", "rep2"):
            self.write_files(name)

    def apply_rules(self, name):
        args = os.path.join(self.tmp, "args.json")
        with open(args, "w") as handle:
            json.dump({"ANSIBLE_MODULE_ARGS": {"priority": PRIO, "devices": DEVICES}}, handle)
        proc = netlab.sh("ip", "netns", "exec", self.ns[name], sys.executable,
                         os.path.join(netlab.REPO, "plugins", "modules", "tc_mirror.py"), args, check=False,
                         env=dict(os.environ, PYTHONPATH=netlab.COLLECTIONS))
        result = json.loads(proc.stdout)
        assert not result.get("failed"), result

    def write_files(self, name):
        """What the role installs: the agent's state file, notify, keepalived.conf."""
        libexec = os.path.join(self.tmp, name)
        os.makedirs(libexec, mode=0o755, exist_ok=True)
        with open(os.path.join(libexec, "state.json"), "w") as handle:
            json.dump({"priority": PRIO, "devices": DEVICES}, handle)
        self.script(os.path.join(libexec, "vrrp-notify"), 'LOGFWDR_VRRP_STATE_DIR=%s exec %s "$@"' % (
            os.path.join(libexec, "state"), os.path.join(ROLE, "files", "vrrp-notify")))

        def ingress(host):
            vec1 = {"name": "vec1", "address": OWN[host] + "/24", "virtual_address": VIPS["vec1"] + "/24",
                    "virtual_router_id": 77}
            if self.six:
                vec1.update(address6=OWN6[host] + "/64", virtual_address6=VIP6 + "/64")
            return [vec1, {"name": "vec2", "address": OWN2[host] + "/24", "virtual_address": VIPS["vec2"] + "/24",
                           "virtual_router_id": 78}]

        peer = "rep2" if name == "rep1" else "rep1"
        # the role's defaults: no logfwdr_vrrp_macs in the inventory; each host's interfaces read from it in the
        # run (validate.yml's `ip -json link show`), so the peer's table admits VRRP only from its address and MAC
        hostvars = {peer: {"logfwdr_ingress_interfaces": ingress(peer),
                           "logfwdr_vrrp_pair_link": {"name": "pair0", "address": PAIR_LINK[peer]}}}
        settings = dict(DEFAULTS, logfwdr_vrrp_priority=PRIORITY[name], logfwdr_vrrp_preempt_delay=2,
                        logfwdr_vrrp_unicast=self.hardened,
                        logfwdr_vrrp_pair_link={"name": "pair0", "address": PAIR_LINK[name]} if self.pair_link else {})
        read = dict((host, links(ip("-n", self.ns[host], "-json", "link", "show").stdout)) for host in (name, peer))
        data = vrrp_instances(ingress(name), [{"name": "tool0"}], settings, peers=[peer], hostvars=hostvars,
                              hostname=name, links=read[name],
                              peer_links={peer: read[peer]} if self.mac_binding else None)
        self.data[name] = data
        env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, trim_blocks=True)
        env.filters.update(CoreFilters().filters())
        if self.hardened:
            nft = env.from_string(open(os.path.join(ROLE, "templates", "logfwdr-nftables.conf.j2")).read()).render(
                __logfwdr_vrrp=data, logfwdr_vrrp=True, logfwdr_firewall=False, logfwdr_syslog_bridge=False,
                ansible_managed="test",
                logfwdr_ingress_interfaces=ingress(name), __logfwdr_nftables_service="logfwdr-nftables.service")
            with open(os.path.join(libexec, "nftables.conf"), "w") as handle:
                handle.write(nft)
            netlab.sh("ip", "netns", "exec", self.ns[name], "nft", "-f", os.path.join(libexec, "nftables.conf"))
        text = env.from_string(open(os.path.join(ROLE, "templates", "keepalived.conf.j2")).read()).render(
            __logfwdr_vrrp=data, logfwdr_syslog_bridge=False, ansible_managed="test", inventory_hostname=name,
            __logfwdr_vrrp_notify=os.path.join(libexec, "vrrp-notify"),
            __logfwdr_vrrp_state_dir=os.path.join(libexec, "state"),
            __logfwdr_health_file=os.path.join(libexec, "health"), __logfwdr_health_service="logfwdr-agent.service")
        with open(os.path.join(libexec, "keepalived.conf"), "w") as handle:
            handle.write(text)

    @staticmethod
    def script(path, line):
        with open(path, "w") as handle:
            handle.write("#!/bin/sh\n%s\n" % line)
        os.chmod(path, 0o755)

    def start(self, name):
        libexec = os.path.join(self.tmp, name)
        conf = os.path.join(libexec, "keepalived.conf")
        check = netlab.sh("ip", "netns", "exec", self.ns[name], KEEPALIVED, "-t", "-f", conf, check=False)
        assert check.returncode == 0, check.stderr + check.stdout
        # the agent (logfwdr-agent.service on a replicator), then keepalived following its health file
        self.start_agent(name)
        log = open(os.path.join(libexec, "keepalived.log"), "w")
        self.procs[name] = subprocess.Popen(
            ["ip", "netns", "exec", self.ns[name], KEEPALIVED, "--dont-fork", "--log-console", "--vrrp",
             "-f", conf, "-p", os.path.join(libexec, "keepalived.pid"), "-r", os.path.join(libexec, "vrrp.pid")],
            stdout=log, stderr=subprocess.STDOUT)

    def start_agent(self, name):
        libexec = os.path.join(self.tmp, name)
        code = "import sys; from ansible_collections.netops.logfwdr.plugins.module_utils.tc import cli; " \
               "sys.exit(cli.main(sys.argv[1:]))"
        self.procs[name + "-agent"] = subprocess.Popen(
            ["ip", "netns", "exec", self.ns[name], CHECK_PYTHON, "-c", code, "agent",
             "--state", os.path.join(libexec, "state.json"), "--health-file", os.path.join(libexec, "health"),
             "--fall", "2", "--rise", "2"],
            stdout=open(os.path.join(libexec, "health.log"), "a"), stderr=subprocess.STDOUT,
            env=dict(os.environ, PYTHONPATH=netlab.COLLECTIONS, LOGFWDR_LOCK=os.path.join(libexec, "lock")))

    def stop_agent(self, name):
        proc = self.procs.pop(name + "-agent")
        proc.terminate()
        proc.wait(timeout=10)

    def close(self):
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        for ns in reversed(self.made):
            ip("netns", "del", ns, check=False)
        shutil.rmtree(self.tmp, ignore_errors=True)

    # ---- observing ----
    def holders(self, dev="vec1", address=None):
        """The replicators holding `address` (default the interface's IPv4 virtual address) on `dev`."""
        out = []
        for name in ("rep1", "rep2"):
            addrs = json.loads(ip("-n", self.ns[name], "-j", "addr", "show", "dev", dev).stdout)[0]["addr_info"]
            if any(a.get("local") == (address or VIPS[dev]) for a in addrs):
                out.append(name)
        return out

    def holders6(self):
        return self.holders("vec1", VIP6)

    def state(self, name):
        path = os.path.join(self.tmp, name, "state", "logfwdr_vec1")
        return open(path).read().split()[0] if os.path.exists(path) else None

    def mac(self, name):
        return netlab.Lab.mac(self.ns[name], "vec1")

    def exporter_sees(self, address=VIP):
        """The MAC the exporter's neighbour table holds for the VIP (or `address`)."""
        out = json.loads(ip("-n", self.ns["exp"], "-j", "neigh", "show", address).stdout)
        return out[0].get("lladdr") if out else None

    def exporter_sends(self):
        code = "import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', (%r, 514))" % VIP
        netlab.sh("ip", "netns", "exec", self.ns["exp"], sys.executable, "-c", code)

    def wait(self, what, condition, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if condition():
                return time.time()
            time.sleep(0.1)
        logs = "".join("--- %s %s\n%s" % (n, f, open(os.path.join(self.tmp, n, f)).read()[-3000:])
                       for n in ("rep1", "rep2") for f in ("keepalived.log", "health.log"))
        raise AssertionError("%s within %ds: holders %s, states %s/%s\n%s"
                             % (what, timeout, self.holders(), self.state("rep1"), self.state("rep2"), logs))


def _pair(six=False):
    """A built and configured Pair (six: vec1 also has address6 and virtual_address6), closed afterwards."""
    if os.geteuid() != 0:
        pytest.skip("needs root (network namespaces)")
    if not os.path.exists(KEEPALIVED):
        pytest.skip("keepalived is not installed (make deps)")
    pair = Pair()
    pair.six = six
    try:
        pair.build()
        pair.configure(hardened=True)
        yield pair
    finally:
        pair.close()


@pytest.fixture
def pair():
    yield from _pair()


def test_agent_repairs_without_failover_and_a_stopped_agent_fails_over(pair):
    pair.start("rep1")
    pair.start("rep2")
    pair.wait("rep1 master with the VIP", lambda: pair.holders() == ["rep1"] and pair.state("rep1") == "MASTER"
              and pair.state("rep2") == "BACKUP", 20)
    pair.exporter_sends()  # the exporter resolves the VIP: rep1's MAC
    pair.wait("exporter sends to rep1", lambda: pair.exporter_sees() == pair.mac("rep1"), 5)

    # rep1's rules are deleted: its agent puts them back before keepalived notices, nothing moves
    netlab.sh("ip", "netns", "exec", pair.ns["rep1"], "tc", "qdisc", "del", "dev", "vec1", "ingress")
    repaired = netlab.sh("ip", "netns", "exec", pair.ns["rep1"], "tc", "filter", "show", "dev", "vec1", "ingress")
    deadline = time.time() + 2
    while "tool0" not in repaired.stdout and time.time() < deadline:
        time.sleep(0.05)
        repaired = netlab.sh("ip", "netns", "exec", pair.ns["rep1"], "tc", "filter", "show", "dev", "vec1", "ingress")
    assert "tool0" in repaired.stdout, repaired.stdout
    time.sleep(3)
    assert pair.holders() == ["rep1"] and pair.state("rep1") == "MASTER"

    # rep1's agent stops (nothing keeps its rules): it writes 1, rep1 goes to FAULT, rep2 takes the VIP
    broke = time.time()
    pair.stop_agent("rep1")
    moved = pair.wait("rep2 takes the VIP", lambda: pair.holders() == ["rep2"], 10)
    pair.wait("rep1 in FAULT", lambda: pair.state("rep1") == "FAULT" and pair.state("rep2") == "MASTER", 5)
    assert moved - broke < 6, moved - broke
    # the exporter learns rep2's MAC from the gratuitous ARPs alone: it sends nothing here
    pair.wait("exporter sends to rep2", lambda: pair.exporter_sees() == pair.mac("rep2"), 3)

    # the agent runs again (systemd restarts it): rep1 is healthy again and, after the preempt delay, master again
    restored = time.time()
    pair.start_agent("rep1")
    pair.wait("rep1 healthy again, waiting as BACKUP", lambda: pair.state("rep1") == "BACKUP", 10)
    assert pair.holders() == ["rep2"]
    back = pair.wait("rep1 takes the VIP back", lambda: pair.holders() == ["rep1"], 20)
    # the preempt delay (2 s): no flapping back at once
    assert back - restored > 1.5, back - restored
    print("moved to rep2 after %.1f s; back to rep1 %.1f s after the agent started" % (moved - broke, back - restored))
    pair.wait("states after preempting", lambda: pair.state("rep1") == "MASTER" and pair.state("rep2") == "BACKUP",
              5)
    pair.wait("exporter sends to rep1 again", lambda: pair.exporter_sees() == pair.mac("rep1"), 3)


def test_failover_when_a_tracked_interface_goes_down(pair):
    pair.start("rep1")
    pair.start("rep2")
    pair.wait("rep1 master with the VIP", lambda: pair.holders() == ["rep1"] and pair.state("rep2") == "BACKUP", 20)
    down = time.time()
    ip("-n", pair.ns["rep1"], "link", "set", "tool0", "down")  # an egress interface (a tool port) of rep1
    moved = pair.wait("rep2 takes the VIP", lambda: pair.holders() == ["rep2"], 10)
    pair.wait("rep1 in FAULT", lambda: pair.state("rep1") == "FAULT" and pair.state("rep2") == "MASTER", 5)
    assert moved - down < 2, moved - down
    log = open(os.path.join(pair.tmp, "rep1", "keepalived.log")).read()
    lines = [line.split(": ", 1)[-1] for line in log.splitlines()]
    assert "Netlink reports tool0 down" in lines, log
    assert "(logfwdr_vec1) Entering FAULT STATE" in lines, log
    print("moved to rep2 after %.1f s" % (moved - down))
    ip("-n", pair.ns["rep1"], "link", "set", "tool0", "up")
    pair.wait("rep1 takes the VIP back", lambda: pair.holders() == ["rep1"], 20)


# ---- forged adverts from a host on an exporter segment ---------------------------------------------------------

# a VRRPv3 advert built by hand (also tests/integration/test_vrrp_forgery_netns.py)
ADVERT_CODE = r"""
import socket, struct, sys, time

def checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xffff) + (total >> 16)
    return ~total & 0xffff

def advert(src, dst, vrid, vip):
    # VRRPv3 (RFC 5798): version 3 type 1, priority 255 (the address owner), one address, 0.2 s interval
    body = struct.pack("!BBBBHH", 0x31, vrid, 255, 1, 20, 0) + socket.inet_aton(vip)
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 112, len(body))
    body = body[:6] + struct.pack("!H", checksum(pseudo + body)) + body[8:]
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0xc0, 20 + len(body), 0, 0, 255, 112, 0,
                         socket.inet_aton(src), socket.inet_aton(dst))
    return header[:10] + struct.pack("!H", checksum(header)) + header[12:] + body

"""

_FORGER = ADVERT_CODE + r"""
dev, own, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
peers = sys.argv[4:6]        # rep1, rep2 on this segment
vip, vrid = sys.argv[6], int(sys.argv[7])
sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, dev.encode())
packets = []
for src in [own] + peers:                        # its own address, and each replicator's, forged
    packets.append((advert(src, "224.0.0.18", vrid, vip), "224.0.0.18"))
    for dst in peers:
        if dst != src:
            packets.append((advert(src, dst, vrid, vip), dst))
sent, end = 0, time.time() + seconds
while time.time() < end:
    for data, dst in packets:
        sock.sendto(data, (dst, 0))
        sent += 1
    time.sleep(0.05)
print(sent)
"""


def attack(pair, seconds):
    """Forged adverts on segment 1 for `seconds`; the VIP holders sampled meanwhile: [(vec1, vec2)]."""
    proc = subprocess.Popen(["ip", "netns", "exec", pair.ns["atk"], sys.executable, "-c", _FORGER, "atk0", ATTACKER,
                             str(seconds), OWN["rep1"], OWN["rep2"], VIP, "77"], stdout=subprocess.PIPE,
                            universal_newlines=True)
    pair.procs["attacker"] = proc
    samples = []
    while proc.poll() is None:
        samples.append((tuple(pair.holders("vec1")), tuple(pair.holders("vec2"))))
        time.sleep(0.2)
    assert proc.returncode == 0
    sent = int(proc.stdout.read().strip())
    assert sent > 100, sent
    return samples


def vrrp_dropped(pair, name):
    out = netlab.sh("ip", "netns", "exec", pair.ns[name], "nft", "list", "chain", "inet", "logfwdr", "vrrp").stdout
    return sum(int(n) for n in re.findall(r"counter packets (\d+)", out))


def test_forged_adverts_on_one_segment_move_no_address(pair):
    pair.start("rep1")
    pair.start("rep2")
    pair.wait("rep1 master of both VIPs", lambda: pair.holders("vec1") == ["rep1"] and pair.holders("vec2") == ["rep1"]
              and pair.state("rep2") == "BACKUP", 20)
    samples = attack(pair, 6)
    moved = [s for s in samples if s != (("rep1",), ("rep1",))]
    assert not moved, (len(moved), len(samples), moved[:5])
    # the forged adverts did arrive: the peer-only rule dropped them on both replicators
    assert vrrp_dropped(pair, "rep1") > 50 and vrrp_dropped(pair, "rep2") > 50
    time.sleep(1)
    assert pair.holders("vec1") == ["rep1"] and pair.holders("vec2") == ["rep1"]
    log = open(os.path.join(pair.tmp, "rep1", "keepalived.log")).read()
    assert "Entering BACKUP STATE" not in log.split("Entering MASTER STATE", 1)[-1], log[-3000:]


def test_old_defaults_let_the_same_adverts_take_the_address(pair):
    """The control: multicast, no source check, no nftables table - the attack above really works."""
    pair.configure(hardened=False)
    netlab.sh("ip", "netns", "exec", pair.ns["rep1"], "nft", "flush", "ruleset")
    netlab.sh("ip", "netns", "exec", pair.ns["rep2"], "nft", "flush", "ruleset")
    pair.start("rep1")
    pair.start("rep2")
    pair.wait("rep1 master of both VIPs", lambda: pair.holders("vec1") == ["rep1"] and pair.holders("vec2") == ["rep1"]
              and pair.state("rep2") == "BACKUP", 20)
    samples = attack(pair, 4)
    assert [s for s in samples if "rep1" not in s[0]], samples
    # without a sync group, segment 2 is not touched even then
    assert all(s[1] == ("rep1",) for s in samples), samples


def test_pair_link_carries_the_adverts_and_forged_ones_reach_nobody(pair):
    pair.configure(hardened=True, pair_link=True)
    conf = open(os.path.join(pair.tmp, "rep1", "keepalived.conf")).read()
    assert conf.count("interface pair0") == 2 and "10.77.1.1/24 dev vec1" in conf
    pair.start("rep1")
    pair.start("rep2")
    pair.wait("rep1 master of both VIPs", lambda: pair.holders("vec1") == ["rep1"] and pair.holders("vec2") == ["rep1"]
              and pair.state("rep2") == "BACKUP", 20)
    # the adverts really go over the pair link, none on the segments
    seen = netlab.sh("ip", "netns", "exec", pair.ns["rep2"], "timeout", "2", "tcpdump", "-l", "--immediate-mode", "-c", "3", "-ni", "pair0",
                     "ip proto 112", check=False)
    assert "VRRPv3, Advertisement" in seen.stdout, seen.stdout + seen.stderr
    seen = netlab.sh("ip", "netns", "exec", pair.ns["exp"], "timeout", "2", "tcpdump", "-l", "--immediate-mode", "-c", "1", "-ni", "exp0",
                     "ip proto 112", check=False)
    assert "VRRP" not in seen.stdout, seen.stdout
    pair.exporter_sends()
    pair.wait("exporter sends to rep1", lambda: pair.exporter_sees() == pair.mac("rep1"), 5)

    samples = attack(pair, 4)
    moved = [s for s in samples if s != (("rep1",), ("rep1",))]
    assert not moved, (len(moved), len(samples), moved[:5])
    # dropped on the segment by both hosts' tables: no accept rule for VRRP on vec1 with a pair link
    assert vrrp_dropped(pair, "rep1") > 50 and vrrp_dropped(pair, "rep2") > 50

    # failover over the pair link: rep1's agent stops, rep2 takes both VIPs, the exporter follows its ARPs
    broke = time.time()
    pair.stop_agent("rep1")
    moved_at = pair.wait("rep2 takes both VIPs", lambda: pair.holders("vec1") == ["rep2"]
                         and pair.holders("vec2") == ["rep2"], 10)
    pair.wait("exporter sends to rep2", lambda: pair.exporter_sees() == pair.mac("rep2"), 3)
    print("pair link: both VIPs on rep2 %.1f s after rep1's agent stopped" % (moved_at - broke))
    pair.start_agent("rep1")
    pair.wait("rep1 takes both VIPs back", lambda: pair.holders("vec1") == ["rep1"]
              and pair.holders("vec2") == ["rep1"], 20)
    # the pair link cut (no carrier at either end): neither host goes to FAULT, so every VIP stays held (both
    # masters until the link is back, each copying what reaches it), and the pair agrees again once it is back
    ip("-n", pair.ns["rep1"], "link", "set", "pair0", "down")
    time.sleep(2)
    for _sample in range(10):
        assert "rep1" in pair.holders("vec1") and "rep1" in pair.holders("vec2"), pair.holders()
        time.sleep(0.2)
    assert pair.state("rep1") == "MASTER" and pair.state("rep2") == "MASTER"
    ip("-n", pair.ns["rep1"], "link", "set", "pair0", "up")
    pair.wait("one master again after the link is back", lambda: pair.holders("vec1") == ["rep1"]
              and pair.holders("vec2") == ["rep1"] and pair.state("rep2") == "BACKUP", 10)


@pytest.fixture
def pair6():
    yield from _pair(six=True)


def test_the_ipv6_virtual_address_moves_with_the_ipv4_one(pair6):
    """virtual_address6: the master holds it with the IPv4 virtual address (keepalived's
    virtual_ipaddress_excluded), the backup does not; on failover both move, and the IPv6 exporter learns the new
    master's MAC from its unsolicited neighbour advertisement, without asking."""
    pair = pair6
    conf = open(os.path.join(pair.tmp, "rep1", "keepalived.conf")).read()
    assert "virtual_ipaddress_excluded {\n        %s/64 dev vec1\n    }" % VIP6 in conf, conf
    pair.start("rep1")
    pair.start("rep2")
    pair.wait("rep1 holds both virtual addresses", lambda: pair.holders() == ["rep1"] and pair.holders6() == ["rep1"]
              and pair.state("rep2") == "BACKUP", 20)
    code = "import socket; socket.socket(socket.AF_INET6, socket.SOCK_DGRAM).sendto(b'x', (%r, 514))" % VIP6
    netlab.sh("ip", "netns", "exec", pair.ns["exp"], sys.executable, "-c", code)
    pair.wait("the exporter resolves the IPv6 virtual address to rep1", lambda: pair.exporter_sees(VIP6) == pair.mac("rep1"), 5)
    broke = time.time()
    pair.stop_agent("rep1")
    moved = pair.wait("rep2 takes both", lambda: pair.holders() == ["rep2"] and pair.holders6() == ["rep2"], 10)
    assert moved - broke < 6, moved - broke
    pair.wait("the exporter sends to rep2 over IPv6", lambda: pair.exporter_sees(VIP6) == pair.mac("rep2"), 3)
