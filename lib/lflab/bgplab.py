# -*- coding: utf-8 -*-
"""BGP high availability on the host kernel: N active replicators announce one service address (issue 29).

Topology (every address lives only inside the namespaces this module creates)::

    exporter ns (X)          router ns (T), FRR               replicator ns R1..R3, FRR + agent + tc rules
    e0 10.60.0.10.. /22 ---- ex0 10.60.3.254/22
       (32+ exporter         sw (bridge) 10.50.0.254/24 -+-- p1 ==== up0 10.50.0.1/24   logfwdr0 192.0.2.100/32
        addresses)           ECMP to 192.0.2.100/32,    +-- p2 ==== up0 10.50.0.2/24   (the agent's TUN device)
                             L4 hash, BFD 100 ms x 3     +-- p3 ==== up0 10.50.0.3/24
                                                                    c0, c1: mirror destinations
    collector ns C0, C1: links r1, r2, r3 (peers of R<i>'s c<j>), each with R<i>'s up0 MAC and 192.0.2.100/32

The router is the "router side" an operator copies (ROUTER_CONF: a listen range for the replicators' subnet,
`maximum-paths`, `bgp bestpath as-path multipath-relax`, a BFD profile of 100 ms x 3, and
net.ipv4.fib_multipath_hash_policy=1 so that exporters are spread by their ports too).  Each replicator runs
zebra, bfdd and bgpd with the frr.conf the role's template renders (replicator_conf), its tc rules (the agent
installs them from a tc_mirror state: up0 accepts 192.0.2.100 from the exporters' prefix, copies go out of c0
and c1) and the agent, which holds the service address on the TUN device logfwdr0 and raises it only while
healthy and not drained.  Mirror copies leave a replicator unchanged (destination 192.0.2.100, that
replicator's up0 MAC), so each collector link takes that MAC and the service /32: its UDP socket really
receives the copies.  The paced sender puts (exporter, sequence) in every payload, the listener records which
link (replicator) delivered each one, so losses and duplicates are exact per exporter and collector.

    with BgpLab(replicators=3, exporters=32) as lab:
        lab.wait_paths(3)
        with lab.traffic(rate=100, seconds=4) as t:
            ...                    # fail, drain, join
        t.result                   # per collector: {exporter: [(seq, replicator), ...]}
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

from lflab import frrns, netlab
from lflab.roleplay import validate_play

SERVICE = "192.0.2.100"
PORT = 514
ROUTER_IP = "10.50.0.254"
REPLICATOR_NET = "10.50.0.0/24"
EXPORTER_NET = "10.60.0.0/22"
EXPORTER_GW = "10.60.3.254"
ROUTER_ASN = 65000
REPLICATOR_ASN = 65010
HEALTH_PORT = 1514          # the TCP listener standing in for the syslog bridge (agent --listen-port)
PRIO = None                 # the module's default priority
CLI = "import sys; from ansible_collections.netops.logfwdr.plugins.module_utils.tc import cli; sys.exit(cli.main())"


def frr_unavailable_reason():
    """Why the lab cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    return frrns.available()


def exporter_address(i):
    """The i-th exporter's address in EXPORTER_NET (10.60.0.10 onwards, up to 1,000)."""
    n = 10 + i
    return "10.60.%d.%d" % (n // 250, n % 250 + 1)


# ---- FRR configurations --------------------------------------------------------------------------------------

def router_conf(bfd=True, interval=100, multiplier=3, ttl_security=False, paths=8):
    """The router side: what an operator copies onto the router in front of the replicators."""
    lines = ["frr defaults traditional", "hostname router", "!"]
    if bfd:
        lines += ["bfd", " profile replicators", "  transmit-interval %d" % interval,
                  "  receive-interval %d" % interval, "  detect-multiplier %d" % multiplier, " exit", "!"]
    lines += ["router bgp %d" % ROUTER_ASN,
              " bgp router-id %s" % ROUTER_IP,
              " no bgp ebgp-requires-policy",
              # the replicators share one AS; multipath-relax also spreads over replicators of different ASes
              " bgp bestpath as-path multipath-relax",
              " neighbor REPLICATORS peer-group",
              " neighbor REPLICATORS remote-as %d" % REPLICATOR_ASN,
              " neighbor REPLICATORS timers 3 9",
              " neighbor REPLICATORS advertisement-interval 0"]
    if bfd:
        lines.append(" neighbor REPLICATORS bfd profile replicators")
    if ttl_security:
        lines.append(" neighbor REPLICATORS ttl-security hops 1")
    lines += [" bgp listen range %s peer-group REPLICATORS" % REPLICATOR_NET,
              " address-family ipv4 unicast",
              "  maximum-paths %d" % paths,
              # only the service address from the replicators: a mistake there cannot reroute anything else
              "  neighbor REPLICATORS prefix-list logfwdr-service in",
              # the router announces nothing to the replicators
              "  neighbor REPLICATORS route-map NOTHING out",
              " exit-address-family",
              "!",
              "ip prefix-list logfwdr-service seq 5 permit %s/32" % SERVICE,
              "route-map NOTHING deny 10",
              "!"]
    return "\n".join(lines) + "\n"


def replicator_inventory(index, bfd=True, interval=100, multiplier=3, ttl_security=False):
    """The role variables of replicator `index` (1-based) in this lab."""
    return {
        "logfwdr_ha": "bgp",
        "logfwdr_bgp_asn": REPLICATOR_ASN,
        "logfwdr_bgp_service_addresses": [SERVICE],
        "logfwdr_bgp_neighbors": [{"address": ROUTER_IP, "asn": ROUTER_ASN}],
        "logfwdr_bgp_bfd": bfd,
        "logfwdr_bgp_bfd_interval": interval,
        "logfwdr_bgp_bfd_multiplier": multiplier,
        "logfwdr_bgp_ttl_security": ttl_security,
        "logfwdr_exporter_networks": [EXPORTER_NET],
        "logfwdr_ingress_interfaces": [{"name": "up0", "address": "10.50.0.%d/24" % index}],
        "logfwdr_egress_interfaces": [{"name": "c0", "address": "10.70.0.%d/24" % index}],
        "logfwdr_collectors": [],
    }


def replicator_conf_by_hand(index, bfd=True, interval=100, multiplier=3, ttl_security=False):
    """The frr.conf of docs (issue 29's design), written out: used only where the role cannot render it."""
    lines = ["frr defaults traditional", "hostname r%d" % index, "!"]
    if bfd:
        lines += ["bfd", " profile logfwdr", "  transmit-interval %d" % interval,
                  "  receive-interval %d" % interval, "  detect-multiplier %d" % multiplier, " exit", "!"]
    lines += ["ip prefix-list logfwdr-service seq 5 permit %s/32" % SERVICE,
              "route-map logfwdr-out permit 10", " match ip address prefix-list logfwdr-service",
              "route-map logfwdr-in deny 10", "!",
              "router bgp %d" % REPLICATOR_ASN,
              " bgp router-id 10.50.0.%d" % index,
              " no bgp default ipv4-unicast",
              " neighbor %s remote-as %d" % (ROUTER_IP, ROUTER_ASN),
              " neighbor %s timers 3 9" % ROUTER_IP,
              " neighbor %s advertisement-interval 0" % ROUTER_IP]
    if bfd:
        lines.append(" neighbor %s bfd profile logfwdr" % ROUTER_IP)
    if ttl_security:
        lines.append(" neighbor %s ttl-security hops 1" % ROUTER_IP)
    lines += [" address-family ipv4 unicast",
              "  network %s/32" % SERVICE,
              "  neighbor %s activate" % ROUTER_IP,
              "  neighbor %s route-map logfwdr-in in" % ROUTER_IP,
              "  neighbor %s route-map logfwdr-out out" % ROUTER_IP,
              " exit-address-family", "!"]
    return "\n".join(lines) + "\n"


_ROLE_RENDER = None


def replicator_conf(index, bfd=True, interval=100, multiplier=3, ttl_security=False):
    """(frr.conf text, how it was made) for replicator `index`: the role's template when the checkout has it."""
    render = _role_renderer()
    if render is None:
        return (replicator_conf_by_hand(index, bfd, interval, multiplier, ttl_security),
                "by hand (no role template yet)")
    return render(index, bfd, interval, multiplier, ttl_security)


def _role_renderer():
    """A function rendering roles/logfwdr/templates/frr.conf.j2, or None when the role has no such template."""
    template = os.path.join("roles", "logfwdr", "templates", "frr.conf.j2")
    # committed, not merely a file someone is writing in this checkout
    tracked = subprocess.run(["git", "-C", netlab.REPO, "ls-files", "--error-unmatch", template],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False).returncode == 0
    if not tracked and not os.environ.get("LOGFWDR_BGPLAB_ROLE_CONF"):
        return None
    return _render_with_ansible


_RENDERED = {}


def _render_with_ansible(index, bfd, interval, multiplier, ttl_security):
    key = (bfd, interval, multiplier, ttl_security)
    if key not in _RENDERED:
        _RENDERED[key] = render_role_confs(3, bfd, interval, multiplier, ttl_security)
    return _RENDERED[key][index], "rendered by roles/logfwdr/templates/frr.conf.j2"


RENDER_PLAYBOOK = validate_play("Render the role's frr.conf like the role does, into a directory") + """
    - name: Render frr.conf
      ansible.builtin.template:
        src: {template}
        dest: "{{{{ outdir }}}}/{{{{ inventory_hostname }}}}.conf"
        mode: "0644"
"""


def render_role_confs(count, bfd=True, interval=100, multiplier=3, ttl_security=False):
    """{index: frr.conf} for replicators 1..count, from one ansible-playbook run (the repo's .venv) of the role's
    validate.yml and its frr.conf.j2 against fake hosts (connection local): nothing on this machine changes."""
    import yaml
    tmpdir = tempfile.mkdtemp(prefix="lfbgp-render.")
    try:
        hosts = {}
        for i in range(1, count + 1):
            hosts["r%d" % i] = dict(replicator_inventory(i, bfd, interval, multiplier, ttl_security), ansible_connection="local",
                                    ansible_python_interpreter=sys.executable)
        inv = os.path.join(tmpdir, "hosts.yml")
        with open(inv, "w") as handle:
            yaml.safe_dump({"all": {"hosts": hosts}}, handle)
        book = os.path.join(tmpdir, "render.yml")
        template = os.path.join(netlab.REPO, "roles", "logfwdr", "templates", "frr.conf.j2")
        with open(book, "w") as handle:
            handle.write(RENDER_PLAYBOOK.format(template=template))
        cfg = os.path.join(tmpdir, "ansible.cfg")
        with open(cfg, "w") as handle:
            handle.write("[defaults]\n")
        netlab.ensure_collection_path()
        env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=netlab.COLLECTIONS, ANSIBLE_CONFIG=cfg,
                   ANSIBLE_NOCOLOR="1", ANSIBLE_LOCAL_TEMP=os.path.join(tmpdir, "tmp"),
                   ANSIBLE_RETRY_FILES_ENABLED="0")
        env.pop("ANSIBLE_INVENTORY", None)
        playbook = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
        proc = subprocess.run([playbook, "-i", inv, book, "-e", json.dumps({"outdir": tmpdir})], cwd=tmpdir,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                              check=False)
        if proc.returncode != 0:
            raise RuntimeError("rendering frr.conf with the role failed:\n%s" % proc.stdout[-4000:])
        out = {}
        for i in range(1, count + 1):
            with open(os.path.join(tmpdir, "r%d.conf" % i)) as handle:
                out[i] = handle.read()
        return out
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


# ---- FRR daemons in a namespace -------------------------------------------------------------------------------

class Frr(object):
    """zebra, bfdd and bgpd of one namespace (lib/lflab/frrns.py), their files in `directory`.

    The daemons start with an empty configuration, then `vtysh -b` loads the integrated frr.conf, as FRR's own
    init script does: a daemon reading frr.conf itself (-f) leaves config mode at the first ` exit` of a block
    it does not know (bgpd at the end of the `bfd` block), and ignores the rest of the file, `router bgp` too."""

    def __init__(self, ns, directory, name, conf):
        self.ns, self.dir, self.name, self.text = ns, directory, name, conf
        self.conf = os.path.join(directory, "frr.conf")

    def start(self):
        frrns.start(self.ns, self.dir, "frr defaults traditional\n", name=self.name)
        with open(self.conf, "w") as handle:
            handle.write(self.text)
        proc = netlab.sh("ip", "netns", "exec", self.ns, "vtysh", "--vty_socket", self.dir, "--config_dir", self.dir,
                         "-b", check=False)
        if proc.returncode != 0:
            raise RuntimeError("vtysh -b in %s: rc=%d %s%s\n%s"
                               % (self.ns, proc.returncode, proc.stdout, proc.stderr, frrns.logs(self.dir)))
        # the lab's sender and listeners share this machine's cores with the daemons: bfdd starved for 300 ms
        # declares every session down (seen at a load average of 11 on 2 cores); a real router and a replicator
        # do not run a Python sender beside them
        for pid in frrns.pids(self.dir).values():
            netlab.sh("renice", "-n", "-10", "-p", str(pid), check=False)

    def vtysh(self, *commands):
        return frrns.vtysh(self.ns, self.dir, *commands, check=False)

    def json(self, command):
        try:
            return json.loads(self.vtysh(command) or "{}")
        except ValueError:
            return {}

    def logs(self):
        return frrns.logs(self.dir)

    def stop(self):
        frrns.stop(self.dir)


def _wait(condition, timeout, what, step=0.02):
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return
        if time.monotonic() > deadline:
            raise TimeoutError("no %s after %.0f s" % (what, timeout))
        time.sleep(step)


# ---- the agent ------------------------------------------------------------------------------------------------

class Agent(object):
    """`logfwdr agent` of one replicator, started with the repo's interpreter; stderr lines kept with the time
    each arrived (the agent's log has no timestamps)."""

    def __init__(self, replicator):
        self.rep = replicator
        self.proc = None
        self.lines = []
        self.lock = threading.Lock()

    def start(self, wait_health=True):
        r = self.rep
        argv = ["ip", "netns", "exec", r.ns, sys.executable, "-c", CLI, "agent", "--state", r.state_path,
                "--health-file", r.health_path, "--sweep", "5", "--listen-port", str(HEALTH_PORT)]
        if agent_announces():
            argv += ["--announce-device", "logfwdr0", "--service-address", SERVICE, "--drain-file", r.drain_path]
        else:
            shim = subprocess.Popen(["ip", "netns", "exec", r.ns, sys.executable, "-c", TUN_SHIM, SERVICE],
                                    stdout=subprocess.PIPE, universal_newlines=True)
            r.lab.procs.append(shim)
            shim.stdout.readline()
        if os.path.exists(r.health_path):
            os.unlink(r.health_path)
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, env=r.lab.env(r), universal_newlines=True)
        threading.Thread(target=self._read, args=(self.proc,), daemon=True).start()
        if wait_health:
            _wait(lambda: os.path.exists(r.health_path) or self.proc.poll() is not None, 20, "health file")
            if self.proc.poll() is not None:
                time.sleep(0.2)
                raise RuntimeError("agent of %s exited rc=%s:\n%s" % (r.name, self.proc.returncode, self.text()))

    def _read(self, proc):
        for line in proc.stderr:
            with self.lock:
                self.lines.append((time.time(), line.rstrip("\n")))

    def text(self):
        with self.lock:
            return "\n".join(line for _t, line in self.lines)

    def when(self, pattern, after=0.0):
        """Time of the first log line matching `pattern` (a regular expression) logged after `after`."""
        rx = re.compile(pattern)
        with self.lock:
            for t, line in self.lines:
                if t >= after and rx.search(line):
                    return t
        return None

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM):
        if self.running():
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


_ANNOUNCES = []


def agent_announces():
    """The checkout's agent has --announce-device (issue 29)."""
    if not _ANNOUNCES:
        proc = netlab.sh(sys.executable, "-c", CLI, "agent", "--help", check=False,
                         env=dict(os.environ, PYTHONPATH=netlab.ensure_collection_path()))
        _ANNOUNCES.append("--announce-device" in proc.stdout)
    return _ANNOUNCES[0]


# Only while the agent cannot announce: holds logfwdr0 with the service address, up (never withdraws on health)
TUN_SHIM = r"""
import fcntl, os, struct, subprocess, sys, time
fd = os.open("/dev/net/tun", os.O_RDWR)
fcntl.ioctl(fd, 0x400454ca, struct.pack("16sH", b"logfwdr0", 0x0001 | 0x1000))
subprocess.check_call(["ip", "addr", "add", sys.argv[1] + "/32", "dev", "logfwdr0"])
subprocess.check_call(["ip", "link", "set", "logfwdr0", "up"])
print("up", flush=True)
time.sleep(1e6)
"""


# ---- one replicator -------------------------------------------------------------------------------------------

class Replicator(object):
    def __init__(self, lab, index):
        self.lab, self.index = lab, index
        self.name = "r%d" % index
        self.ns = "%sr%d" % (lab.prefix, index)
        self.ip = "10.50.0.%d" % index
        self.dir = os.path.join(lab.dir, self.name)
        os.makedirs(os.path.join(self.dir, "run"), exist_ok=True)
        self.state_path = os.path.join(self.dir, "state.json")
        self.health_path = os.path.join(self.dir, "health")
        self.drain_path = os.path.join(self.dir, "drain")
        self.mac = None
        self.frr = None
        self.agent = Agent(self)
        self.listener = None

    def state(self, collectors):
        """The tc_mirror state: up0 accepts the service address from the exporters' prefix on udp/514 and
        mirrors each datagram out of every collector link."""
        return {"devices": [{"name": "up0", "addresses": [SERVICE], "sources": [EXPORTER_NET], "ports": [
            {"port": PORT, "destinations": [{"name": "col%d" % j, "mode": "mirror", "device": "c%d" % j}
                                            for j in range(collectors)]}]}]}

    def write_state(self, text):
        tmp = self.state_path + ".tmp"
        with open(tmp, "w") as handle:
            handle.write(text)
        os.rename(tmp, self.state_path)

    def cli(self, *argv, **kw):
        """`logfwdr ARGV...` in this replicator's namespace (CompletedProcess)."""
        return netlab.sh("ip", "netns", "exec", self.ns, sys.executable, "-c", CLI, *argv, env=self.lab.env(self),
                         check=False, **kw)

    def start_listener(self):
        """A TCP listener on HEALTH_PORT standing in for the syslog bridge the agent checks (--listen-port)."""
        code = ("import socket, time\ns = socket.socket()\ns.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
                "s.bind(('0.0.0.0', %d))\ns.listen(8)\nprint('ready', flush=True)\ntime.sleep(1e6)\n" % HEALTH_PORT)
        self.listener = subprocess.Popen(["ip", "netns", "exec", self.ns, sys.executable, "-c", code],
                                         stdout=subprocess.PIPE, universal_newlines=True)
        self.lab.procs.append(self.listener)
        assert self.listener.stdout.readline().strip() == "ready"
        self.drops_before = self.lab.socket_drops()

    def stop_listener(self):
        if self.listener is not None and self.listener.poll() is None:
            self.listener.kill()
            self.listener.wait()
        self.listener = None

    def announced(self):
        """The service address's device is UP here (what zebra announces)."""
        out = netlab.sh("ip", "-n", self.ns, "-j", "link", "show", "dev", "logfwdr0", check=False).stdout
        try:
            return "UP" in json.loads(out)[0]["flags"]
        except (ValueError, IndexError, KeyError):
            return False

    def rules_present(self):
        return "mirred" in netlab.sh("tc", "-n", self.ns, "filter", "show", "dev", "up0", "ingress",
                                     check=False).stdout

    def drain(self, quiet=2.0, timeout=30.0):
        """`logfwdr drain` here (CompletedProcess; it returns once the rules' counters were still `quiet` s)."""
        return self.cli("drain", "--drain-file", self.drain_path, "--device", "logfwdr0", "--state", self.state_path,
                        "--quiet", str(quiet), "--timeout", str(timeout), timeout=timeout + 30)

    def undrain(self):
        return self.cli("undrain", "--drain-file", self.drain_path)

    def delete_rules(self):
        netlab.sh("tc", "-n", self.ns, "qdisc", "del", "dev", "up0", "ingress", check=False)

    def power(self, on):
        """up0 down/up from inside ("power off"): the router's bridge stays up with its other ports and its route
        keeps this next hop; only BFD (or the hold timer) tells the router."""
        netlab.sh("ip", "-n", self.ns, "link", "set", "up0", "up" if on else "down")


# ---- the lab --------------------------------------------------------------------------------------------------

class BgpLab(object):
    def __init__(self, replicators=3, exporters=32, collectors=2, bfd=True, bfd_interval=100, bfd_multiplier=3,
                 ttl_security=False, tag="b", log=None):
        self.prefix = "lf%s%d" % (tag, os.getpid() % 100000)
        self.exporters = [exporter_address(i) for i in range(exporters)]
        self.ncollectors = collectors
        # GTSM is off by default here: with `ttl-security hops 1` FRR 8.4.4's bgpd asks bfdd for a MULTIHOP
        # session (PEER_IS_MULTIHOP: an eBGP peer whose TTL is not 1), which never meets the router's single-hop
        # one, so BFD stays down and only the hold timer notices a dead replicator (seen in this lab)
        self.bfd = (bfd, bfd_interval, bfd_multiplier)
        self.ttl_security = ttl_security
        self.log = log or (lambda line: None)
        self.dir = tempfile.mkdtemp(prefix="lfbgp.")
        os.chmod(self.dir, 0o755)
        self.exp = self.prefix + "x"
        self.rtr = self.prefix + "t"
        self.collectors = ["%sc%d" % (self.prefix, j) for j in range(collectors)]
        self.namespaces = []
        self.procs = []
        self.replicators = [Replicator(self, i) for i in range(1, replicators + 1)]
        self.router = None
        self.conf_origin = None

    def env(self, rep):
        # namespaces share /run: each replicator its own record of managed devices and its own lock
        return dict(os.environ, PYTHONPATH=netlab.ensure_collection_path(),
                    LOGFWDR_RUN_DIR=os.path.join(rep.dir, "run"), LOGFWDR_LOCK=os.path.join(rep.dir, "lock"))

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()

    def _ns(self, name):
        netlab.sh("ip", "netns", "add", name)
        self.namespaces.append(name)
        netlab.sh("ip", "netns", "exec", name, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1",
                  "net.ipv6.conf.default.disable_ipv6=1")
        netlab.sh("ip", "-n", name, "link", "set", "lo", "up")
        return name

    def start(self):
        reason = frr_unavailable_reason()
        if reason:
            raise RuntimeError(reason)

        def ip(ns, *args):
            return netlab.sh("ip", "-n", ns, *args)

        t0 = time.monotonic()
        for name in [self.exp, self.rtr] + [r.ns for r in self.replicators] + self.collectors:
            self._ns(name)
        # exporters: a routed subnet behind the router
        ip(self.exp, "link", "add", "e0", "type", "veth", "peer", "name", "ex0", "netns", self.rtr)
        batch = "".join("address add %s/22 dev e0\n" % a for a in self.exporters)
        netlab.sh("ip", "-n", self.exp, "-batch", "-", input=batch)
        ip(self.exp, "link", "set", "e0", "up")
        ip(self.exp, "route", "add", "default", "via", EXPORTER_GW)
        ip(self.rtr, "address", "add", EXPORTER_GW + "/22", "dev", "ex0")
        ip(self.rtr, "link", "set", "ex0", "up")
        # the router's switch to the replicators
        ip(self.rtr, "link", "add", "sw", "type", "bridge", "stp_state", "0", "forward_delay", "0")
        ip(self.rtr, "address", "add", ROUTER_IP + "/24", "dev", "sw")
        ip(self.rtr, "link", "set", "sw", "up")
        netlab.sh("ip", "netns", "exec", self.rtr, "sysctl", "-qw", "net.ipv4.ip_forward=1",
                  "net.ipv4.fib_multipath_hash_policy=1")
        for r in self.replicators:
            ip(r.ns, "link", "add", "up0", "type", "veth", "peer", "name", "p%d" % r.index, "netns", self.rtr)
            ip(self.rtr, "link", "set", "p%d" % r.index, "master", "sw")
            ip(self.rtr, "link", "set", "p%d" % r.index, "up")
            ip(r.ns, "address", "add", r.ip + "/24", "dev", "up0")
            ip(r.ns, "link", "set", "up0", "up")
            # the original datagram is delivered to the service address here (this kernel has no gact to
            # drop it): its port-unreachable replies find their way back
            ip(r.ns, "route", "add", "default", "via", ROUTER_IP)
            r.mac = netlab.Lab.mac(r.ns, "up0")
            for j, cns in enumerate(self.collectors):
                link = "r%d" % r.index
                ip(r.ns, "link", "add", "c%d" % j, "type", "veth", "peer", "name", link, "netns", cns)
                ip(r.ns, "link", "set", "c%d" % j, "up")
                ip(cns, "link", "set", link, "address", r.mac)
                ip(cns, "address", "add", SERVICE + "/32", "dev", link)
                ip(cns, "link", "set", link, "up")
        # FRR: the router, then each replicator
        bfd, interval, multiplier = self.bfd
        self.router = Frr(self.rtr, os.path.join(self.dir, "router"), self.rtr,
                          router_conf(bfd, interval, multiplier, self.ttl_security))
        self.router.start()
        for r in self.replicators:
            conf, self.conf_origin = replicator_conf(r.index, bfd, interval, multiplier, self.ttl_security)
            r.frr = Frr(r.ns, os.path.join(r.dir, "frr"), r.ns, conf)
            r.frr.start()
        for r in self.replicators:
            r.write_state(json.dumps(r.state(len(self.collectors))))
            r.start_listener()
            r.agent.start(wait_health=False)
        for r in self.replicators:
            _wait(lambda r=r: os.path.exists(r.health_path) or not r.agent.running(), 20, "health file of " + r.name)
            if not r.agent.running():
                raise RuntimeError("agent of %s exited:\n%s" % (r.name, r.agent.text()))
        self.log("lab up in %.1f s (frr.conf %s)" % (time.monotonic() - t0, self.conf_origin))

    def close(self):
        for r in self.replicators:
            try:
                r.agent.stop(signal.SIGKILL)
            except Exception:  # noqa: BLE001 - teardown goes on whatever happens
                pass
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        # every process in the namespaces (FRR daemons, agents, listeners), then the namespaces
        for name in reversed(self.namespaces):
            netlab.delete_netns(name)
        self.namespaces = []
        shutil.rmtree(self.dir, ignore_errors=True)

    # ---- what the router sees ----
    def paths(self):
        """Next hops of the router's kernel route to the service address (sorted replicator addresses)."""
        out = netlab.sh("ip", "-n", self.rtr, "-j", "route", "show", SERVICE + "/32", check=False).stdout
        try:
            routes = json.loads(out)
        except ValueError:
            return []
        hops = []
        for route in routes:
            if route.get("nexthops"):
                hops += [n.get("gateway") for n in route["nexthops"]]
            elif route.get("gateway"):
                hops.append(route["gateway"])
        return sorted(h for h in hops if h)

    def wait_paths(self, expected, timeout=30):
        """Wait until the router's route has exactly these next hops (a count, or a list of replicators);
        returns the seconds it took."""
        want = None if isinstance(expected, int) else sorted(r.ip for r in expected)
        start = time.monotonic()
        try:
            _wait(lambda: (len(self.paths()) == expected) if want is None else (self.paths() == want), timeout,
                  "route with next hops %s" % (want or expected), step=0.01)
        except TimeoutError:
            raise TimeoutError("router's next hops %s, wanted %s\n%s\n%s" % (
                self.paths(), want or expected, self.router.vtysh("show bgp summary", "show bfd peers brief"),
                "\n".join(r.agent.text()[-1500:] for r in self.replicators)))
        return time.monotonic() - start

    def bfd_up(self):
        """Replicator addresses whose BFD session is up at the router."""
        peers = self.router.json("show bfd peers json")
        return sorted(p.get("peer") for p in peers if isinstance(p, dict) and p.get("status") == "up")

    def watch_paths(self):
        """A thread recording every change of the router's next hops: use as a context manager; .changes is
        [(time, next hops)] (the first entry is the state at the start)."""
        return PathWatch(self)

    def wait_ready(self, timeout=30):
        """Every replicator announced, in the router's route, with BFD up (when the lab runs BFD)."""
        self.wait_paths(len(self.replicators), timeout)
        if self.bfd[0]:
            want = sorted(r.ip for r in self.replicators)
            _wait(lambda: self.bfd_up() == want, timeout, "BFD up with every replicator (%s are)" % self.bfd_up())

    def sessions(self):
        """{replicator address: BGP state} at the router."""
        data = self.router.json("show bgp ipv4 unicast summary json")
        return dict((addr, peer.get("state")) for addr, peer in data.get("peers", {}).items())

    def link_rx(self, collector, replicator):
        """Packets collector `collector` received on its link from replicator `replicator` (kernel counter)."""
        out = netlab.sh("ip", "-n", self.collectors[collector], "-j", "-s", "link", "show", "dev",
                        "r%d" % replicator.index).stdout
        return json.loads(out)[0]["stats64"]["rx"]["packets"]

    def socket_drops(self):
        """UDP datagrams the collectors' kernels dropped for a full socket buffer (RcvbufErrors, all collectors):
        a loss of the listener, not of the replication."""
        total = 0
        for ns in self.collectors:
            text = netlab.sh("ip", "netns", "exec", ns, "cat", "/proc/net/snmp").stdout
            lines = [line.split() for line in text.splitlines() if line.startswith("Udp:")]
            total += int(dict(zip(lines[0], lines[1]))["RcvbufErrors"])
        return total

    def delivered(self):
        """Packets received on every collector link (one kernel counter sum)."""
        total = 0
        for ns in self.collectors:
            for link in json.loads(netlab.sh("ip", "-n", ns, "-j", "-s", "link", "show").stdout):
                if link["ifname"] != "lo":
                    total += link["stats64"]["rx"]["packets"]
        return total

    def settle(self, still=0.3, timeout=10.0):
        """Wait until the collectors' links have received nothing for `still` s (a loaded machine may hold
        datagrams in its queues well after the sender ends)."""
        last, since = self.delivered(), time.monotonic()
        deadline = since + timeout
        while time.monotonic() < deadline:
            time.sleep(0.05)
            now = self.delivered()
            if now != last:
                last, since = now, time.monotonic()
            elif time.monotonic() - since >= still:
                return

    def counters(self):
        """{replicator name: packets copied to collector 0} read from the collector links."""
        return dict((r.name, self.link_rx(0, r)) for r in self.replicators)

    # ---- traffic ----
    def traffic(self, rate=100, seconds=4.0, size=120, exporters=None):
        """A paced sender from every exporter address (or the first `exporters`), each `rate` datagrams/s, and a
        listener in every collector: use as a context manager; the result is read when it ends."""
        return Traffic(self, rate, seconds, size, exporters)


class PathWatch(object):
    def __init__(self, lab, step=0.02):
        self.lab, self.step, self.changes, self.stop = lab, step, [], False

    def _run(self):
        last = None
        while not self.stop:
            hops = self.lab.paths()
            if hops != last:
                self.changes.append((time.time(), hops))
                last = hops
            time.sleep(self.step)

    def __enter__(self):
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop = True
        self.thread.join()

    def flaps(self):
        """Changes after the first state."""
        return len(self.changes) - 1


# A paced sender for the exporter's namespace: argv JSON {addresses, rate (per exporter), seconds, dst, port,
# size}. Every datagram carries "e<exporter> s<sequence>"; prints its start time, then the number sent per exporter.
SENDER = r"""
import json, socket, sys, time
cfg = json.loads(sys.argv[1])
socks = []
for a in cfg["addresses"]:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((a, 0))
    socks.append(s)
n = len(socks)
total = cfg["rate"] * n
count = int(cfg["rate"] * cfg["seconds"]) * n
dst = (cfg["dst"], cfg["port"])
size = cfg["size"]
start = time.time()
print(start, flush=True)
i = 0
errors = 0
while i < count:
    due = start + i / total
    now = time.time()
    if due > now + 0.001:
        time.sleep(due - now)
    e, seq = i % n, i // n
    head = b"<134>bgplab e%d s%d " % (e, seq)
    try:
        socks[e].sendto(head + b"x" * (size - len(head)), dst)
    except OSError:
        errors += 1   # e.g. the router's unreachable answer before the route exists
    i += 1
print(json.dumps({"sent": count // n, "errors": errors, "end": time.time()}), flush=True)
"""

# One process holds a UDP socket on PORT in every collector namespace (setns) and records, per collector and
# exporter, each datagram's sequence number and the link (replicator) it came in on.
LISTENER = r"""
import ctypes, json, os, re, select, socket, struct, sys
CLONE_NEWNET = 0x40000000
IP_PKTINFO = 8
libc = ctypes.CDLL(None, use_errno=True)
spec = json.loads(sys.argv[1])
home = os.open("/proc/self/ns/net", os.O_RDONLY)
socks = {}
names = []
for n, ns in enumerate(spec["namespaces"]):
    fd = os.open(os.path.join("/run/netns", ns), os.O_RDONLY)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "setns(%s)" % ns)
    os.close(fd)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:  # past net.core.rmem_max (root): a listener descheduled for a moment must not lose datagrams
        s.setsockopt(socket.SOL_SOCKET, 33, 32 << 20)  # SO_RCVBUFFORCE
    except OSError:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 << 20)
    s.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
    s.bind(("0.0.0.0", spec["port"]))
    socks[s.fileno()] = (s, n)
    names.append(dict(socket.if_nameindex()))
libc.setns(home, CLONE_NEWNET)
print("ready", flush=True)
rx = re.compile(rb"bgplab e(\d+) s(\d+) ")
got = [{} for _ in spec["namespaces"]]
other = [0 for _ in spec["namespaces"]]


def drain(fds):
    for fd in fds:
        s, n = socks[fd]
        while True:
            try:
                data, anc, _flags, _addr = s.recvmsg(2048, 64, socket.MSG_DONTWAIT)
            except BlockingIOError:
                break
            ifindex = None
            for level, kind, value in anc:
                if level == socket.IPPROTO_IP and kind == IP_PKTINFO:
                    ifindex = struct.unpack("i", value[:4])[0]
            m = rx.search(data)
            if not m:
                other[n] += 1
                continue
            got[n].setdefault(m.group(1).decode(), []).append([int(m.group(2)), names[n].get(ifindex, "?")])


while True:
    r, _w, _x = select.select(list(socks) + [0], [], [], 5)
    drain([fd for fd in r if fd != 0])
    if 0 in r:
        break
drain(list(socks))
print(json.dumps({"got": got, "other": other}), flush=True)
"""


class Result(object):
    """What one traffic run delivered.  got[c][e] = [(seq, link), ...] in arrival order, for collector c and
    exporter e; sent = datagrams per exporter; rate = per exporter."""

    def __init__(self, got, sent, rate, start, exporters):
        self.got = [dict((int(e), [tuple(x) for x in v]) for e, v in per.items()) for per in got]
        self.sent = sent
        self.rate = rate
        self.start = start
        self.exporters = exporters

    def missing(self, c, e):
        seen = set(seq for seq, _l in self.got[c].get(e, []))
        return [s for s in range(self.sent) if s not in seen]

    def duplicates(self, c, e):
        seqs = [seq for seq, _l in self.got[c].get(e, [])]
        return len(seqs) - len(set(seqs))

    def lost(self, exporters=None):
        """Datagrams missing at any collector (summed over collectors) for these exporters (default all)."""
        exporters = range(self.exporters) if exporters is None else exporters
        return sum(len(self.missing(c, e)) for c in range(len(self.got)) for e in exporters)

    def dupes(self):
        return sum(self.duplicates(c, e) for c in range(len(self.got)) for e in range(self.exporters))

    def gap(self, c, e):
        """Longest run of consecutive missing datagrams of exporter e at collector c, in seconds."""
        longest = run = 0
        seen = set(seq for seq, _l in self.got[c].get(e, []))
        for s in range(self.sent):
            run = 0 if s in seen else run + 1
            longest = max(longest, run)
        return longest / float(self.rate)

    def links(self, c, e, since=None, until=None):
        """The links (replicators: 'r1', ...) that delivered exporter e's datagrams to collector c, of the sequence
        numbers in [since, until)."""
        return sorted(set(link for seq, link in self.got[c].get(e, [])
                          if (since is None or seq >= since) and (until is None or seq < until)))

    def loss_window(self, exporters=None):
        """(first, last) missing sequence number as seconds after the start, and how many exporters lost any;
        None when nothing is missing: tells a loss at one moment for everyone from one replicator's flows."""
        exporters = range(self.exporters) if exporters is None else exporters
        first = last = None
        hit = set()
        for c in range(len(self.got)):
            for e in exporters:
                missing = self.missing(c, e)
                if missing:
                    hit.add(e)
                    first = missing[0] if first is None else min(first, missing[0])
                    last = missing[-1] if last is None else max(last, missing[-1])
        if first is None:
            return None
        return first / float(self.rate), (last + 1) / float(self.rate), len(hit)

    def seq_at(self, t):
        """The sequence number each exporter was sending at time t (a time.time() value)."""
        return max(0, int((t - self.start) * self.rate))


class Traffic(object):
    def __init__(self, lab, rate, seconds, size, exporters=None):
        self.lab, self.rate, self.seconds, self.size = lab, rate, seconds, size
        self.addresses = lab.exporters[:exporters] if exporters else lab.exporters
        self.result = None

    def __enter__(self):
        spec = {"namespaces": self.lab.collectors, "port": PORT}
        self.listener = subprocess.Popen([sys.executable, "-c", LISTENER, json.dumps(spec)], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, universal_newlines=True)
        self.lab.procs.append(self.listener)
        assert self.listener.stdout.readline().strip() == "ready"
        self.drops_before = self.lab.socket_drops()
        cfg = {"addresses": self.addresses, "rate": self.rate, "seconds": self.seconds, "dst": SERVICE,
               "port": PORT, "size": self.size}
        self.sender = subprocess.Popen(["ip", "netns", "exec", self.lab.exp, sys.executable, "-c", SENDER,
                                        json.dumps(cfg)], stdout=subprocess.PIPE, universal_newlines=True)
        self.lab.procs.append(self.sender)
        self.start = float(self.sender.stdout.readline())
        return self

    def at(self, offset):
        """Sleep until `offset` seconds after the sender's start."""
        delay = self.start + offset - time.time()
        if delay > 0:
            time.sleep(delay)

    def __exit__(self, *exc):
        try:
            out = self.sender.communicate(timeout=self.seconds + 60)[0]
            summary = json.loads(out.strip().splitlines()[-1])
            self.lab.settle()
            got = json.loads(self.listener.communicate("stop\n", timeout=60)[0].strip().splitlines()[-1])
        finally:
            for proc in (self.sender, self.listener):
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        self.summary = summary
        self.socket_drops = self.lab.socket_drops() - self.drops_before
        self.other = got["other"]
        self.result = Result(got["got"], summary["sent"], self.rate, self.start, len(self.addresses))
