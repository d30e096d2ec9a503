# -*- coding: utf-8 -*-
"""Throwaway network namespaces for tests and benchmarks (host kernel).

Topology::

    exporter ns            replicator ns                       receiver ns i
    exp0 10.77.0.2/24 ---- in0 10.77.0.1/24
                           tool<i>  -------------------------- rx<i>

Mirror copies leave the replicator unchanged (destination IP 10.77.0.1 and
in0's MAC), so each receiver's rx<i> takes in0's MAC and 10.77.0.1/32: its
UDP sockets then really receive the copies, checksums verified by its stack.
All addresses live only inside namespaces this module creates.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COLLECTIONS = os.path.join(REPO, ".build", "collections")
EXPORTER_IP = "10.77.0.2"
REPLICATOR_IP = "10.77.0.1"


def sh(*args, **kw):
    check = kw.pop("check", True)
    return subprocess.run(list(args), check=check, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, **kw)


def netns_exists(name):
    return os.path.exists("/run/netns/%s" % name)


def netns_pids(name):
    p = sh("ip", "netns", "pids", name, check=False)
    return [int(x) for x in p.stdout.split() if x.isdigit()]


def kill_until_gone(list_pids, timeout=5.0):
    """SIGKILL the processes list_pids() returns until it returns none; False on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        pids = [p for p in list_pids() if p != os.getpid()]
        if not pids:
            return True
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def delete_netns(name, timeout=5.0):
    """Kill every process living in network namespace name, then delete it."""
    if netns_exists(name):
        kill_until_gone(lambda: netns_pids(name), timeout)
        sh("ip", "netns", "del", name, check=False)


def ensure_collection_path():
    """ansible_collections/netops/logfwdr -> this checkout (for imports)."""
    link = os.path.join(COLLECTIONS, "ansible_collections", "netops", "logfwdr")
    if os.path.realpath(link) != REPO:
        os.makedirs(os.path.dirname(link), exist_ok=True)
        if os.path.islink(link):
            os.unlink(link)
        os.symlink(REPO, link)
    return COLLECTIONS


class Lab:
    def __init__(self, tag="t"):
        self.tag = "%s%d" % (tag, os.getpid() % 100000)
        self.rep = "lf%sr" % self.tag
        self.exp = "lf%se" % self.tag
        self.receivers = []
        self.namespaces = []
        self.procs = []
        # network namespaces share /run: each lab gets its own record of managed devices and its own lock
        self.run_dir = tempfile.mkdtemp(prefix="lf%s-run." % self.tag)
        self.env = dict(os.environ, PYTHONPATH=COLLECTIONS, LOGFWDR_RUN_DIR=self.run_dir,
                        LOGFWDR_LOCK=os.path.join(self.run_dir, "lock"))

    # ---- setup / teardown ----
    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.close()

    def ns(self, name):
        sh("ip", "netns", "add", name)
        self.namespaces.append(name)
        # no IPv6 chatter (router solicitations, MLD): interface counters count only the test's packets
        sh("ip", "netns", "exec", name, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1",
           "net.ipv6.conf.default.disable_ipv6=1")
        sh("ip", "-n", name, "link", "set", "lo", "up")
        return name

    @staticmethod
    def add_address6(ns, dev, *addresses):
        """IPv6 on `dev` (Lab.ns turns it off) with these addresses (prefix length included), usable at once (no
        duplicate address detection)."""
        sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=0",
           "net.ipv6.conf.%s.disable_ipv6=0" % dev.replace(".", "/"))
        for address in addresses:
            sh("ip", "-n", ns, "-6", "addr", "add", address, "dev", dev, "nodad")

    def start(self):
        self.ns(self.rep)
        self.ns(self.exp)
        sh("ip", "-n", self.rep, "link", "add", "in0", "type", "veth", "peer", "name", "exp0", "netns", self.exp)
        sh("ip", "-n", self.rep, "addr", "add", REPLICATOR_IP + "/24", "dev", "in0")
        sh("ip", "-n", self.rep, "link", "set", "in0", "up")
        sh("ip", "-n", self.exp, "addr", "add", EXPORTER_IP + "/24", "dev", "exp0")
        sh("ip", "-n", self.exp, "link", "set", "exp0", "up")
        self.in0_mac = self.mac(self.rep, "in0")
        # the exporter knows the replicator's MAC: no ARP in the measurements
        sh("ip", "-n", self.exp, "neigh", "replace", REPLICATOR_IP, "lladdr", self.in0_mac, "dev", "exp0")

    def close(self):
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        for name in reversed(self.namespaces):
            delete_netns(name)
        self.namespaces = []
        shutil.rmtree(self.run_dir, ignore_errors=True)

    @staticmethod
    def mac(ns, dev):
        out = sh("ip", "-n", ns, "-j", "link", "show", "dev", dev).stdout
        return json.loads(out)[0]["address"]

    def add_receivers(self, count):
        """Receiver namespaces rx<i>, reached from the replicator through tool<i>."""
        start = len(self.receivers)
        for i in range(start, start + count):
            name = self.ns("lf%sc%d" % (self.tag, i))
            sh("ip", "-n", self.rep, "link", "add", "tool%d" % i, "type", "veth", "peer", "name", "rx%d" % i,
               "netns", name)
            sh("ip", "-n", self.rep, "link", "set", "tool%d" % i, "up")
            sh("ip", "-n", name, "link", "set", "rx%d" % i, "address", self.in0_mac)
            sh("ip", "-n", name, "addr", "add", REPLICATOR_IP + "/32", "dev", "rx%d" % i)
            sh("ip", "-n", name, "link", "set", "rx%d" % i, "up")
            self.receivers.append(name)
        return ["tool%d" % i for i in range(start, start + count)]

    # ---- the module ----
    def run_module(self, args, module="tc_mirror", python=None, check_mode=False, diff=True, ns=None):
        """Run the real module file with AnsibleModule's args-file convention."""
        ensure_collection_path()
        payload = dict(args, _ansible_check_mode=check_mode, _ansible_diff=diff)
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
            json.dump({"ANSIBLE_MODULE_ARGS": payload}, handle)
        env = dict(self.env)
        try:
            proc = sh("ip", "netns", "exec", ns or self.rep, python or sys.executable,
                      os.path.join(REPO, "plugins", "modules", module + ".py"), handle.name, check=False, env=env)
        finally:
            os.unlink(handle.name)
        try:
            result = json.loads(proc.stdout)
        except ValueError:
            raise AssertionError("module printed no JSON: rc=%d\n%s\n%s"
                                 % (proc.returncode, proc.stdout, proc.stderr))
        result.pop("invocation", None)
        return result

    def tc(self, *args, **kw):
        return sh("ip", "netns", "exec", kw.pop("ns", self.rep), "tc", *args, **kw)

    # ---- traffic ----
    def listen(self, ns, ports):
        """A UDP receiver in `ns` counting datagrams per (port, source, payload) until told to stop."""
        code = r"""
import json, select, socket, sys
socks = {}
for p in %r:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind(("0.0.0.0", p))
    socks[s.fileno()] = (s, p)
print("ready", flush=True)
got = []
while True:
    r, _w, _x = select.select(list(socks) + [0], [], [], 5)
    if 0 in r:
        break
    for fd in r:
        s, p = socks[fd]
        while True:
            try:
                data, addr = s.recvfrom(65535, socket.MSG_DONTWAIT)
            except BlockingIOError:
                break
            got.append([p, addr[0], data.decode("latin-1")])
print(json.dumps(got), flush=True)
""" % (list(ports),)
        proc = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", code], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, universal_newlines=True)
        assert proc.stdout.readline().strip() == "ready"
        self.procs.append(proc)
        return proc

    @staticmethod
    def collect(proc, settle=0.3):
        time.sleep(settle)
        out, _err = proc.communicate("stop\n", timeout=30)
        return json.loads(out.strip().splitlines()[-1])

    def send(self, port, payloads, source_port=None, source_address="0.0.0.0"):
        """Send each payload as one UDP datagram from the exporter to the replicator (from source_address,
        which must be one of exp0's addresses)."""
        code = r"""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((%r, %r or 0))
for line in sys.stdin.read().splitlines():
    s.sendto(line.encode("latin-1"), (%r, %d))
""" % (source_address, source_port, REPLICATOR_IP, port)
        sh("ip", "netns", "exec", self.exp, sys.executable, "-c", code, input="\n".join(payloads))

    def rx_packets(self, index):
        """Packets that arrived at receiver `index`'s interface (kernel counter)."""
        out = sh("ip", "-n", self.receivers[index], "-j", "-s", "link", "show", "dev", "rx%d" % index).stdout
        return json.loads(out)[0]["stats64"]["rx"]["packets"]


def udp_blast_code(dst, port, rate, seconds, size=200):
    """Python source for a paced UDP sender (used by the benchmarks)."""
    return r"""
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
payload = b"x" * %d
rate, seconds = %d, %f
sent = 0
start = time.perf_counter()
end = start + seconds
while True:
    now = time.perf_counter()
    if now >= end:
        break
    due = int((now - start) * rate)
    while sent < due:
        s.sendto(payload, (%r, %d))
        sent += 1
print(sent, flush=True)
""" % (size, rate, seconds, dst, port)
