# -*- coding: utf-8 -*-
"""The BGP mode's announcement on the host kernel, with real FRR (zebra, bfdd, bgpd) in two namespaces.

    exporter ns --- in0 [replicator ns: the agent, tc rules, FRR, logfwdr0 192.0.2.100/32] up0 --- p0 [router ns: FRR]

The replicator's FRR announces 192.0.2.100/32 (network statement, import-check) only while the agent's TUN device
holding it is UP.  A route monitor in the router namespace and one for links in the replicator namespace stamp
every change with the system's monotonic clock; the agent's log lines are stamped when the test reads them (a
few milliseconds late at most, which makes the measured times a little shorter, never longer: the limits below are
far from that).  Each test runs under every interpreter of LOGFWDR_TEST_PYTHONS (pyroute2 0.7.2 and 0.9.x).
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest

from conftest import PYTHONS, _interp_id, get_interp, new_lab
from lflab import frrns, netlab

sys.path.insert(0, netlab.ensure_collection_path())
from ansible_collections.netops.logfwdr.plugins.module_utils.tc.layout import DEFAULT_PRIORITY  # noqa: E402

pytestmark = pytest.mark.netns

CLI = "import sys; from ansible_collections.netops.logfwdr.plugins.module_utils.tc import cli; sys.exit(cli.main())"
SERVICE = "192.0.2.100"
SERVICE6 = "2001:db8:100::1"  # on the device too (the namespace has IPv6 off: the agent turns it on for the device)
DEVICE = "logfwdr0"
WITHDRAW_LIMIT = 1.0  # s, the limit from the agent's verdict (or its death) to the route gone at the router

ROUTER_CONF = """frr defaults traditional
hostname rtr
log file %(dir)s/router.log informational
!
bfd
 profile fast
  transmit-interval 300
  receive-interval 300
  detect-multiplier 5
 exit
!
router bgp 65000
 bgp router-id 10.50.0.254
 no bgp ebgp-requires-policy
 bgp bestpath as-path multipath-relax
 neighbor REP peer-group
 neighbor REP remote-as 65010
 neighbor REP bfd profile fast
 neighbor REP advertisement-interval 0
 neighbor REP timers 3 9
 neighbor REP ttl-security hops 1
 bgp listen range 10.50.0.0/24 peer-group REP
 address-family ipv4 unicast
  maximum-paths 8
 exit-address-family
"""

# the replicator's side as the design renders it (prefix-list and route-maps out, nothing taken in), with BFD at
# 300 ms x 5 instead of 100 ms x 3 on both sides: what is measured here is the agent's link, not BFD, and a bfdd
# starved on a loaded machine would take the session down and the route with it (BFD is the lab's to measure)
REPLICATOR_CONF = """frr defaults traditional
hostname rep
!
bfd
 profile logfwdr
  transmit-interval 300
  receive-interval 300
  detect-multiplier 5
 exit
!
ip prefix-list logfwdr-service seq 5 permit %(service)s/32
route-map logfwdr-out permit 10
 match ip address prefix-list logfwdr-service
route-map logfwdr-in deny 10
!
router bgp 65010
 bgp router-id 10.50.0.1
 no bgp default ipv4-unicast
 neighbor 10.50.0.254 remote-as 65000
 neighbor 10.50.0.254 timers 3 9
 neighbor 10.50.0.254 advertisement-interval 0
 neighbor 10.50.0.254 bfd profile logfwdr
 neighbor 10.50.0.254 ttl-security hops 1
 address-family ipv4 unicast
  network %(service)s/32
  neighbor 10.50.0.254 activate
  neighbor 10.50.0.254 route-map logfwdr-in in
  neighbor 10.50.0.254 route-map logfwdr-out out
 exit-address-family
"""

# links and IPv4 routes as the kernel announces them, one line per change: "<monotonic> link NAME up|down|gone"
# or "<monotonic> route add|del DST/LEN"
MONITOR = r"""
import socket, struct, sys, time
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
s.bind((0, 0x1 | 0x40))  # RTMGRP_LINK, RTMGRP_IPV4_ROUTE
print("ready", flush=True)


def attrs(data, start, end):
    out = {}
    while start + 4 <= end:
        alen, atype = struct.unpack_from("=HH", data, start)
        if alen < 4:
            break
        out[atype] = data[start + 4:start + alen]
        start += (alen + 3) & ~3
    return out


while True:
    data = s.recv(1 << 16)
    now = time.monotonic()
    off = 0
    while off + 16 <= len(data):
        length, kind = struct.unpack_from("=IH", data, off)
        if length < 16:
            break
        if kind in (16, 17):  # RTM_NEWLINK, RTM_DELLINK: ifinfomsg is 16 bytes
            flags = struct.unpack_from("=I", data, off + 24)[0]
            name = attrs(data, off + 32, off + length).get(3, b"?").rstrip(b"\0").decode()
            state = "gone" if kind == 17 else ("up" if flags & 1 else "down")
            print("%.6f link %s %s" % (now, name, state), flush=True)
        elif kind in (24, 25):  # RTM_NEWROUTE, RTM_DELROUTE: rtmsg is 12 bytes
            family, dst_len = struct.unpack_from("BB", data, off + 16)
            dst = attrs(data, off + 28, off + length).get(1)
            if family == socket.AF_INET and dst:
                print("%.6f route %s %s/%d" % (now, "add" if kind == 24 else "del", socket.inet_ntoa(dst), dst_len),
                      flush=True)
        off += (length + 3) & ~3
"""


class Lines(object):
    """Lines of a pipe, each with the monotonic time it was read, collected by a thread."""

    def __init__(self, stream):
        self.lines = []
        self.cond = threading.Condition()
        self.thread = threading.Thread(target=self._read, args=(stream,))
        self.thread.daemon = True
        self.thread.start()

    def _read(self, stream):
        for line in iter(stream.readline, ""):
            with self.cond:
                self.lines.append((time.monotonic(), line.rstrip("\n")))
                self.cond.notify_all()

    def wait(self, match, after=0.0, timeout=10.0):
        """The time of the first line after `after` for which match(line) holds; None after `timeout` s."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for when, line in self.lines:
                    if when > after and match(line):
                        return when
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(min(left, 0.1))

    def text(self):
        with self.cond:
            return "\n".join(line for _when, line in self.lines)


class Monitor(Lines):
    def __init__(self, ns):
        self.proc = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", MONITOR],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, universal_newlines=True)
        assert self.proc.stdout.readline().strip() == "ready"
        Lines.__init__(self, self.proc.stdout)

    def event(self, kind, what, state, after=0.0, timeout=5.0):
        """Monotonic time of the first change `kind what state` after `after` (sent by the monitor itself)."""
        words = [kind, what, state]
        got = self.wait(lambda line: line.split()[1:] == words, after, timeout)
        if got is None:
            return None
        with self.cond:
            for when, line in self.lines:
                if when >= got and line.split()[1:] == words:
                    return float(line.split()[0])
        return None

    def events(self, after, kind, what):
        with self.cond:
            return [line for when, line in self.lines if when > after and line.split()[1:3] == [kind, what]]


class Bgp(object):
    """The lab: replicator (netlab.Lab's, with one receiver) and router namespaces, FRR in both, monitors."""

    def __init__(self, interp):
        self.interp = interp
        self.lab = new_lab()
        self.dirs = []
        try:
            self._build()
        except BaseException:
            self.close()
            raise

    def _build(self):
        self.tools = self.lab.add_receivers(1)
        self.router = self.lab.ns("lf%sb" % self.lab.tag)
        sh = netlab.sh
        sh("ip", "-n", self.lab.rep, "link", "add", "up0", "type", "veth", "peer", "name", "p0", "netns", self.router)
        sh("ip", "-n", self.lab.rep, "addr", "add", "10.50.0.1/24", "dev", "up0")
        sh("ip", "-n", self.lab.rep, "link", "set", "up0", "up")
        sh("ip", "-n", self.router, "addr", "add", "10.50.0.254/24", "dev", "p0")
        sh("ip", "-n", self.router, "link", "set", "p0", "up")
        self.routes = Monitor(self.router)
        self.lab.procs.append(self.routes.proc)
        self.links = Monitor(self.lab.rep)
        self.lab.procs.append(self.links.proc)
        self.rtr_dir = frrns.workdir("rtr")
        self.dirs.append(self.rtr_dir)
        self.rep_dir = frrns.workdir("rep")
        self.dirs.append(self.rep_dir)
        frrns.start(self.router, self.rtr_dir, ROUTER_CONF % {"dir": self.rtr_dir})
        frrns.start(self.lab.rep, self.rep_dir, REPLICATOR_CONF % {"service": SERVICE})
        frrns.wait_established(self.router, self.rtr_dir, ["10.50.0.1"], timeout=30)

    def close(self):
        for directory in self.dirs:
            frrns.stop(directory)
        self.lab.close()
        for directory in self.dirs:
            shutil.rmtree(directory, ignore_errors=True)

    def route(self):
        """The router's kernel route to the service address ('' when there is none)."""
        return netlab.sh("ip", "-n", self.router, "route", "show", SERVICE).stdout.strip()

    def wait_route(self, present, timeout=5.0):
        deadline = time.monotonic() + timeout
        while bool(self.route()) != present:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def state(self):
        return {"priority": DEFAULT_PRIORITY, "devices": [{"name": "in0", "ports": [{"port": 514, "destinations": [
            {"name": "col0", "mode": "mirror", "device": self.tools[0]}]}]}]}

    def send(self, rate, seconds):
        """Steady UDP from the exporter to in0 port 514 (counted by the rules) in the background."""
        code = netlab.udp_blast_code(netlab.REPLICATOR_IP, 514, rate, seconds)
        proc = subprocess.Popen(["ip", "netns", "exec", self.lab.exp, sys.executable, "-c", code],
                                stdout=subprocess.PIPE, universal_newlines=True)
        self.lab.procs.append(proc)
        return proc


@pytest.fixture(scope="module", params=PYTHONS, ids=[_interp_id(p) for p in PYTHONS])
def bgp(request):
    if os.geteuid() != 0:
        pytest.skip("needs root (network namespaces)")
    missing = frrns.available()
    if missing:
        pytest.fail("%s (make deps installs frr)" % missing)
    lab = Bgp(get_interp(request.param))
    try:
        yield lab
    finally:
        lab.close()


class Agent(object):
    """`logfwdr agent --announce-device logfwdr0 --service-address 192.0.2.100` in the replicator namespace."""

    def __init__(self, bgp, tmp_path, desired=None, start=True):
        self.bgp = bgp
        self.dir = tmp_path
        self.path = str(tmp_path / "state.json")
        self.health = str(tmp_path / "health")
        self.drain = str(tmp_path / "drain")
        self.env = dict(bgp.interp.env, LOGFWDR_LOCK=str(tmp_path / "lock"), LOGFWDR_RUN_DIR=str(tmp_path / "run"))
        if desired is not False:
            self.write(desired or bgp.state())
        self.proc = None
        if start:
            self.start()

    def start(self):
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", self.bgp.lab.rep, self.bgp.interp.path, "-c", CLI, "agent", "--state", self.path,
             "--health-file", self.health, "--interval", "0.5", "--fall", "2", "--rise", "2",
             "--announce-device", DEVICE, "--service-address", SERVICE, "--service-address", SERVICE6],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, universal_newlines=True, env=self.env)
        self.bgp.lab.procs.append(self.proc)
        self.log = Lines(self.proc.stderr)

    def write(self, desired):
        tmp = self.path + ".tmp"
        with open(tmp, "w") as handle:
            if isinstance(desired, str):
                handle.write(desired)
            else:
                json.dump(desired, handle)
        os.rename(tmp, self.path)

    def line(self, text, after=0.0, timeout=10.0):
        got = self.log.wait(lambda line: line == text, after, timeout)
        assert got is not None, "no %r in the agent's log:\n%s" % (text, self.log.text())
        return got

    def cli(self, *argv, **kw):
        return subprocess.run(["ip", "netns", "exec", self.bgp.lab.rep, self.bgp.interp.path, "-c", CLI] + list(argv),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, env=self.env,
                              timeout=kw.get("timeout", 60), check=False)

    def status(self, state=True):
        proc = self.cli("status", "--drain-file", self.drain, "--json", *(("--state", self.path) if state else ()))
        assert proc.stdout, proc.stderr
        return json.loads(proc.stdout)["announce"]

    def announced(self):
        """Waits for the first healthy verdict and the route at the router; returns the verdict's time."""
        verdict = self.line("health: healthy")
        assert self.bgp.wait_route(True, 5), self.log.text()
        return verdict

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


@pytest.fixture
def agent_factory(bgp, tmp_path):
    agents = []

    def make(*args, **kw):
        agent = Agent(bgp, tmp_path, *args, **kw)
        agents.append(agent)
        return agent

    yield make
    for agent in agents:
        agent.stop()
    assert bgp.wait_route(False, 5), "the route outlived the agents"


def test_route_appears_only_after_the_first_healthy_verdict(bgp, agent_factory):
    """(a) The device is made DOWN; the agent's first verdict raises it; only then does the router get the route."""
    assert bgp.route() == ""
    agent = agent_factory()
    verdict = agent.announced()
    up = bgp.links.event("link", DEVICE, "up", after=agent.started)
    added = bgp.routes.event("route", "add", SERVICE + "/32", after=agent.started)
    assert up is not None and added is not None, (bgp.links.text(), bgp.routes.text())
    log = agent.log.text()
    assert log.index("announce: logfwdr0 down until the first health verdict") < log.index("health: healthy") \
        < log.index("announce: up"), log
    assert verdict < added and up < added, (verdict, up, added)
    # the link was made down, and raised once
    made = [line.split()[-1] for line in bgp.links.events(agent.started, "link", DEVICE)]
    assert made[0] == "down" and "gone" not in made and "down" not in made[made.index("up"):], made
    print("announced: verdict -> route at the router %.3f s (link up -> route %.3f s)" % (added - verdict,
                                                                                          added - up))
    assert "nexthop" in bgp.route() or "via 10.50.0.1" in bgp.route(), bgp.route()
    status = agent.status()
    assert status["state"] == "up" and status["device"] == DEVICE, status
    assert status["addresses"] == [SERVICE + "/32", SERVICE6 + "/128"], status
    text = agent.cli("status", "--state", agent.path, "--drain-file", agent.drain)
    assert text.returncode == 0 and text.stdout.splitlines()[-1] == "announce: up", text.stdout


def test_unhealthy_withdraws_within_a_second_and_a_broken_start_never_announces(bgp, agent_factory):
    """(b) A state the host cannot install: the verdict "not healthy" withdraws at once (< 1 s at the router).
    Then the agent stopped, the qdisc deleted and the state file broken: the agent's first verdict is not healthy
    and the route never comes; the state fixed: repaired, announced."""
    agent = agent_factory()
    agent.announced()
    broken = bgp.state()
    broken["devices"][0]["ports"][0]["destinations"].append({"name": "gone", "mode": "mirror", "device": "nope0"})
    changed = time.monotonic()
    agent.write(broken)
    verdict = agent.line("health: not healthy", after=changed)
    gone = bgp.routes.event("route", "del", SERVICE + "/32", after=changed)
    assert gone is not None, (bgp.routes.text(), agent.log.text())
    down = bgp.links.event("link", DEVICE, "down", after=changed)
    print("unhealthy: verdict -> route gone at the router %.3f s (link down -> gone %.3f s)"
          % (gone - verdict, gone - down))
    assert gone - verdict < WITHDRAW_LIMIT, (verdict, gone)
    assert agent.line("announce: withdrawn (not healthy: the desired state cannot be installed now: devices[0]."
                      "ports[0].destinations[1].device: no interface named 'nope0' on this host)", after=changed)
    assert agent.status()["text"].startswith("down (not healthy: the desired state cannot be installed now")
    agent.write(bgp.state())
    agent.line("announce: up", after=verdict)
    assert bgp.wait_route(True, 3)

    stopped = time.monotonic()
    agent.stop()
    gone = bgp.routes.event("route", "del", SERVICE + "/32", after=stopped)
    assert gone is not None and gone - stopped < WITHDRAW_LIMIT, (stopped, gone)
    print("agent stopped (SIGTERM): route gone at the router %.3f s later" % (gone - stopped))
    assert agent.cli("status", "--state", agent.path, "--drain-file", agent.drain).stdout.splitlines()[-1] == \
        "announce: no device"
    netlab.sh("ip", "netns", "exec", bgp.lab.rep, "tc", "qdisc", "del", "dev", "in0", "ingress")
    agent.write("{devices: [")
    again = agent_factory(desired=False)
    again.line("announce: logfwdr0 down until the first health verdict")
    again.line("health: not healthy")
    assert again.log.wait(lambda line: line.startswith("announce: down (not healthy: state file: "), timeout=5), \
        again.log.text()
    time.sleep(1.0)  # two more checks: still not healthy, still nothing announced
    assert bgp.route() == "", bgp.route()
    assert not bgp.routes.events(again.started, "route", "add")
    assert not [line for line in bgp.links.events(again.started, "link", DEVICE) if line.endswith(" up")]
    status = again.status(state=False)  # the state file cannot be read: status without it
    assert status["state"] == "down" and status["why"].startswith("not healthy: state file: "), status
    assert "tc qdisc add dev in0 ingress" not in again.log.text()  # nothing to install from: nothing repaired
    fixed = time.monotonic()
    again.write(bgp.state())
    again.line("announce: up", after=fixed)
    assert bgp.wait_route(True, 3)
    assert "repaired: tc qdisc add dev in0 ingress" in again.log.text()


def test_sigkill_withdraws_within_a_second(bgp, agent_factory):
    """(c) The agent killed: the kernel closes its descriptor and deletes the device; the router drops the route."""
    agent = agent_factory()
    agent.announced()
    killed = time.monotonic()
    os.kill(agent.proc.pid, signal.SIGKILL)
    gone = bgp.routes.event("route", "del", SERVICE + "/32", after=killed)
    deleted = bgp.links.event("link", DEVICE, "gone", after=killed)
    assert gone is not None and deleted is not None, (bgp.routes.text(), bgp.links.text())
    print("SIGKILL: device gone %.3f s, route gone at the router %.3f s" % (deleted - killed, gone - killed))
    assert gone - killed < WITHDRAW_LIMIT
    agent.proc.wait(timeout=5)
    assert netlab.sh("ip", "-n", bgp.lab.rep, "link", "show", DEVICE, check=False).returncode != 0


def test_sighup_reload_never_withdraws(bgp, agent_factory):
    """(d) Two reloads in a row: the device and its descriptor pass through each os.execv; the router's route is
    polled the whole time and never missing; no route or link change is seen at all."""
    agent = agent_factory()
    agent.announced()
    pid = agent.proc.pid
    begin = time.monotonic()
    polls = 0
    for n in range(2):
        hup = time.monotonic()

        def reloaded():
            again = agent.log.wait(lambda line: line == "SIGHUP: starting again with the installed code", after=hup,
                                   timeout=0)
            return again is not None and agent.log.wait(lambda line: line == "announce: up", after=again,
                                                        timeout=0) is not None

        os.kill(pid, signal.SIGHUP)
        deadline = hup + 10
        while not reloaded():
            assert bgp.route(), "withdrawn during reload %d:\n%s" % (n + 1, agent.log.text())
            polls += 1
            assert time.monotonic() < deadline and agent.proc.poll() is None, agent.log.text()
            time.sleep(0.01)
        for _poll in range(15):  # and a while after the new run's verdict
            assert bgp.route(), "withdrawn after reload %d" % (n + 1)
            polls += 1
            time.sleep(0.02)
    assert agent.proc.pid == pid and agent.proc.poll() is None
    assert agent.log.text().count("announce: logfwdr0 kept across the reload (descriptor ") == 2, agent.log.text()
    assert bgp.routes.events(begin, "route", "del") == [] and bgp.routes.events(begin, "route", "add") == []
    assert bgp.links.events(begin, "link", DEVICE) == [], bgp.links.text()
    print("2 reloads: the route at the router polled %d times, never missing; no route or link change" % polls)


def test_drain_withdraws_waits_for_still_counters_and_undrain_announces_again(bgp, agent_factory):
    """(e) drain: the route goes at once; the command returns 0 only after the exporter has stopped and the
    counters have been still for --quiet s; while traffic goes on past --timeout it returns 1 naming the port;
    undrain: announced again within about a second."""
    agent = agent_factory()
    agent.announced()
    sender = bgp.send(300, 1.5)
    time.sleep(0.3)
    began = time.monotonic()
    drain = agent.cli("drain", "--state", agent.path, "--drain-file", agent.drain, "--device", DEVICE, "--quiet", "1",
                      "--timeout", "20")
    ended = time.monotonic()
    sent = int(sender.communicate(timeout=10)[0].split()[0])
    assert drain.returncode == 0, (drain.stdout, drain.stderr)
    assert drain.stdout.splitlines()[-1] == "drained: withdrawn, no datagram for 1.0 s: the host may stop"
    assert "withdrawn: logfwdr0 set down" in drain.stdout
    gone = bgp.routes.event("route", "del", SERVICE + "/32", after=began)
    down = bgp.links.event("link", DEVICE, "down", after=began)
    assert gone is not None and down is not None, (bgp.routes.text(), bgp.links.text())
    assert gone - down < WITHDRAW_LIMIT, (down, gone)
    # the sender ran 1.2 s more after the drain began, then 1 s of still counters
    assert ended - began >= 1.2 + 1.0 - 0.2, ended - began
    assert sent > 0
    agent.line("announce: withdrawn (drained)", after=began)
    assert agent.status()["state"] == "drained"
    print("drain: link down %.3f s after the command started (a Python start), route gone %.3f s after that; it "
          "returned after %.2f s (traffic for 1.2 s of it)" % (down - began, gone - down, ended - began))

    # traffic that does not stop: exit 1 at the timeout, naming what still arrives; the drain file stays
    sender = bgp.send(200, 30.0)
    time.sleep(0.3)
    stuck = agent.cli("drain", "--state", agent.path, "--drain-file", agent.drain, "--quiet", "1", "--timeout", "1")
    sender.kill()
    sender.wait()
    assert stuck.returncode == 1, (stuck.stdout, stuck.stderr)
    assert "logfwdr drain: not drained after 1." in stuck.stderr, (stuck.stdout, stuck.stderr)
    assert " s: still arriving: in0 port 514 (+" in stuck.stderr, stuck.stderr
    assert "withdrawn: logfwdr0 was down already" in stuck.stdout
    assert os.path.exists(agent.drain) and bgp.route() == ""

    undone = time.monotonic()
    undrain = agent.cli("undrain", "--drain-file", agent.drain)
    removed = time.monotonic()
    assert undrain.returncode == 0 and undrain.stdout.startswith("undrained: "), undrain.stdout
    back = bgp.routes.event("route", "add", SERVICE + "/32", after=undone, timeout=5)
    # the agent reads the drain file at every wake (at least every --interval 0.5 s here)
    assert back is not None and back - removed < 1.5, (removed, back)
    agent.line("announce: up", after=undone)
    assert agent.status()["state"] == "up"
    print("undrain: route back at the router %.3f s after the command returned (%.3f s after it started)"
          % (back - removed, back - undone))
