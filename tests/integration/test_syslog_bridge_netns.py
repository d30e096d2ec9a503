# -*- coding: utf-8 -*-
"""The TCP syslog bridge end to end: the role's rendered configuration run by the real rsyslogd.

Namespaces (lib/lflab/netlab.py)::

    exporter ns                       replicator ns (rsyslogd -n, the role's config)       collector ns
    exp0 10.77.0.2, .3, .4, .200 ---- in0 10.77.0.1/24    out0 10.78.0.1/24 ------------- col0 10.78.0.11, .12, .13
         2001:db8:77::2, ::3, ::4         2001:db8:77::1/64    2001:db8:78::1/64               2001:db8:78::11, ::13
         2001:db8:99::5 (routed)      unreachable 10.79.0.0/24 (the dead collector 10.79.0.5)

The bridge is dual-stack, as on a segment with address6: senders of both families connect over TCP (514) and TLS
(6514, x509/name) from the exporter namespace with LF framing; every
collector's UDP socket must receive every message it is due, in its format, naming the sender. Checked too: the
allow-list (10.77.0.0/25: .200 is refused; 2001:db8:77::/64: 2001:db8:99::5 is refused), a collector's sources
(10.77.0.2/31: not .4; 2001:db8:77::2/127: not ::4; an IPv4 allow-list admits no IPv6 sender), a dead collector
(sendto fails: its queue fills and overflows, counted by impstats) that must not hold back the others, and a HUP
(logrotate) that must not cut the TCP sessions.

rsyslogd runs the way logfwdr-syslog-bridge.service starts it: as an unprivileged user (uid BRIDGE_UID, no name
needed) with only CAP_NET_BIND_SERVICE (ambient, bounding set), no new privileges, its TLS key handed over in a
credentials directory (systemd's LoadCredential). It binds to the ingress address and the virtual address (not
held yet: ip_nonlocal_bind, as on the backup) only; the role's nftables table allows PER_SENDER TCP sessions per
sender and MAX_SESSIONS in all. Checked too: its credentials in /proc, the listeners, a connection flood bounded
per sender and in all, and a TLS-only bridge without a plain listener.

Needs root and rsyslog + rsyslog-gnutls (make deps). Run: .venv/bin/pytest tests/integration/test_syslog_bridge_netns.py
"""

import datetime
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

from lflab import netlab
import pytest

from lflab import bridgeconf

pytestmark = pytest.mark.netns

BRIDGE_IP = netlab.REPLICATOR_IP          # 10.77.0.1, where the senders connect
EGRESS_IP = "10.78.0.1"                   # the bridge's UDP copies come from here
SENDERS = ["10.77.0.2", "10.77.0.3", "10.77.0.4"]
OUTSIDER = "10.77.0.200"                  # in the ingress subnet, outside the allow-list
LIVE = {"c5424": ("10.78.0.11", 514), "c3164": ("10.78.0.12", 1514), "cpart": ("10.78.0.13", 514),
        "c6": ("2001:db8:78::11", 514), "c6part": ("2001:db8:78::13", 514),
        "c6b": ("2001:db8:78::14", 514)}   # only the IPv6 pool's bridge sends here
DEAD = ("10.79.0.5", 514)
VIRTUAL_IP = "10.77.0.100"                # the VRRP address: the bridge listens on it before it holds it
BRIDGE_IP6 = "2001:db8:77::1"
EGRESS_IP6 = "2001:db8:78::1"
SENDERS6 = ["2001:db8:77::2", "2001:db8:77::3", "2001:db8:77::4"]
OUTSIDER6 = "2001:db8:99::5"              # routed through the segment, outside the allow-list
VIRTUAL_IP6 = "2001:db8:77::100"
BRIDGE_UID = 61514                        # the bridge's user (the unit: User=logfwdr-syslog)
MAX_SESSIONS = 20
PER_SENDER = 8
CAP_NET_BIND_SERVICE = 1 << 10

INVENTORY = {
    "logfwdr_ingress_interfaces": [{"name": "in0", "address": BRIDGE_IP + "/24", "virtual_address": VIRTUAL_IP + "/24",
                                    "virtual_router_id": 5, "address6": BRIDGE_IP6 + "/64",
                                    "virtual_address6": VIRTUAL_IP6 + "/64"}],
    "logfwdr_vrrp": True,
    "logfwdr_syslog_bridge_max_sessions": MAX_SESSIONS,
    "logfwdr_syslog_bridge_max_sessions_per_sender": PER_SENDER,
    "logfwdr_egress_interfaces": [
        {"name": "out0", "address": EGRESS_IP + "/24", "address6": EGRESS_IP6 + "/64",
         "routes": [{"to": "10.79.0.0/24", "via": "10.78.0.254"}]},
        {"name": "tool0"}],
    "logfwdr_collectors": [
        {"name": "c5424", "address": "10.78.0.11", "protocols": ["syslog"]},
        {"name": "c3164", "address": "10.78.0.12", "protocols": ["syslog", "snmptrap"], "ports": {"syslog": 1514},
         "syslog_format": "rfc3164"},
        {"name": "cpart", "address": "10.78.0.13", "protocols": ["sflow", "syslog"],
         "sources": {"syslog": ["10.77.0.2/31"]}},               # .2 and .3, not .4: not octet-aligned
        {"name": "cdead", "address": DEAD[0], "protocols": ["syslog"]},
        {"name": "c6", "address": LIVE["c6"][0], "protocols": ["syslog"]},                # every sender
        {"name": "c6part", "address": LIVE["c6part"][0], "protocols": ["syslog"],
         "sources": ["2001:db8:77::2/127"]},                     # ::2 and ::3, not ::4, no IPv4 sender
        {"name": "ids", "mode": "mirror", "device": "tool0", "protocols": ["syslog"]},   # gets nothing
        {"name": "flows", "address": "10.78.0.14", "protocols": ["netflow"]},            # gets nothing
    ],
    "logfwdr_syslog_bridge_allowed_senders": ["10.77.0.0/25", "2001:db8:77::/64"],
    "logfwdr_syslog_bridge_queue_size": 200,
    "logfwdr_syslog_bridge_stats_interval": 1,
    "logfwdr_syslog_bridge_tls": True,
    "logfwdr_syslog_bridge_tls_auth_mode": "x509/name",
    "logfwdr_syslog_bridge_tls_permitted_peers": ["sender.test", "*.wild.test"],
}


# ---- TLS material ------------------------------------------------------------

def make_pki(directory):
    """A CA, the bridge's certificate and three client certificates (PEM files) made with cryptography."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def cert(name, issuer_name, issuer_key, key, ca=False):
        builder = (x509.CertificateBuilder()
                   .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
                   .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_name)]))
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(hours=1))
                   .not_valid_after(now + datetime.timedelta(days=2))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if ca:
            builder = builder.add_extension(x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                key_encipherment=False, data_encipherment=False, key_agreement=False, encipher_only=False,
                decipher_only=False), critical=True)
        else:
            builder = (builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
                       .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                             ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False))
        return builder.sign(issuer_key, hashes.SHA256())

    def write(name, obj):
        path = os.path.join(directory, name)
        with open(path, "wb") as handle:
            if isinstance(obj, x509.Certificate):
                handle.write(obj.public_bytes(serialization.Encoding.PEM))
            else:
                handle.write(obj.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        return path

    files = {}
    ca_key = ec.generate_private_key(ec.SECP256R1())
    files["ca"] = write("ca.pem", cert("logfwdr test CA", "logfwdr test CA", ca_key, ca_key, ca=True))
    rogue_key = ec.generate_private_key(ec.SECP256R1())
    for name in ("bridge.test", "sender.test", "other.test", "dev.wild.test"):
        key = ec.generate_private_key(ec.SECP256R1())
        files[name] = (write(name + ".pem", cert(name, "logfwdr test CA", ca_key, key)), write(name + ".key", key))
    key = ec.generate_private_key(ec.SECP256R1())   # named like a permitted peer, signed by another CA
    files["rogue"] = (write("rogue.pem", cert("sender.test", "rogue CA", rogue_key, key)), write("rogue.key", key))
    return files


# ---- processes in the namespaces ---------------------------------------------

_LISTENER = r"""
import json, select, socket, sys
socks = {}
for addr, port in json.loads(sys.argv[1]):
    s = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, 33, 8 << 20)  # SO_RCVBUFFORCE: never drop a burst here
    s.bind((addr, port))
    socks[s.fileno()] = (s, addr, port)
print(json.dumps(["ready"]), flush=True)
while True:
    r, _w, _x = select.select(list(socks), [], [])
    for fd in r:
        s, addr, port = socks[fd]
        data, peer = s.recvfrom(65535)
        print(json.dumps([addr, port, peer[0], data.decode("utf-8", "replace")]), flush=True)
"""

_SENDER = r"""
import json, socket, ssl, sys, time
spec = json.loads(sys.argv[1])
out = {"sent": 0, "error": None}
start = time.monotonic()
try:
    sock = socket.socket(socket.AF_INET6 if ":" in spec["source"] else socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((spec["source"], 0))
    sock.settimeout(10)
    sock.connect((spec["target"], spec["port"]))
    if spec.get("tls"):
        tls = spec["tls"]
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(tls["ca"])
        if tls.get("cert"):
            ctx.load_cert_chain(tls["cert"], tls["key"])
        sock = ctx.wrap_socket(sock, server_hostname="bridge.test")
    for n, line in enumerate(spec["messages"]):
        if n == spec.get("pause_after"):
            print(json.dumps({"paused": True}), flush=True)
            time.sleep(spec["pause"])
        sock.sendall(line.encode() + b"\n")
        out["sent"] += 1
        if spec.get("pace"):
            time.sleep(spec["pace"])
    time.sleep(spec.get("linger", 0.2))
    # a refused sender is disconnected by the bridge: reading shows it (b"" or an error)
    sock.settimeout(0.5)
    try:
        out["eof"] = sock.recv(1) == b""
    except socket.timeout:
        out["eof"] = False
    sock.close()
except Exception as exc:
    out["error"] = "%s: %s" % (type(exc).__name__, exc)
out["seconds"] = time.monotonic() - start
print(json.dumps(out), flush=True)
"""


class Collectors(object):
    """One listener process holding every live collector's UDP socket in the collector namespace."""

    def __init__(self, ns, procs):
        spec = json.dumps([list(v) for v in LIVE.values()])
        self.proc = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", _LISTENER, spec],
                                     stdout=subprocess.PIPE, universal_newlines=True)
        procs.append(self.proc)
        assert json.loads(self.proc.stdout.readline()) == ["ready"]
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.names = dict((v, k) for k, v in LIVE.items())

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(json.loads(line))

    def take(self, marker, expected, timeout=20, settle=0.5):
        """{collector: [(source ip, payload)]} of the datagrams containing `marker`, once `expected` (a total)
        have arrived or `timeout` passed, and `settle` seconds more (so that extra datagrams are seen)."""
        got = dict((name, []) for name in LIVE)
        count, deadline, extra_until = 0, time.monotonic() + timeout, None
        while True:
            now = time.monotonic()
            if extra_until is None and (count >= expected or now >= deadline):
                extra_until = now + settle
            if extra_until is not None and now >= extra_until:
                return got
            try:
                addr, port, peer, payload = self.lines.get(timeout=0.05)
            except queue.Empty:
                continue
            if marker in payload:
                got[self.names[(addr, port)]].append((peer, payload))
                count += 1


def start_bridge(lab, directory, inventory, key, ready):
    """The role's configuration for `inventory` in `directory`, run by rsyslogd as the unit runs it (ExecStart, User=,
    AmbientCapabilities=CAP_NET_BIND_SERVICE, CapabilityBoundingSet=, NoNewPrivileges=, LoadCredential=) in the
    replicator namespace; returns once a listener matching `ready` is up."""
    os.makedirs(directory, exist_ok=True)
    text, variables = bridgeconf.render_conf(inventory, directory)
    conf = os.path.join(directory, "syslog-bridge.conf")
    with open(conf, "w") as handle:
        handle.write(text)
    check = bridgeconf.check(conf)
    assert check.returncode == 0, check.stdout
    # systemd's credentials directory: the key copied for the service's user, read-only
    credentials = variables["__logfwdr_syslog_bridge_credentials_dir"]
    os.makedirs(credentials, exist_ok=True)
    shutil.copy(key, os.path.join(credentials, "tls-key"))
    for path, mode in ((credentials, 0o500), (os.path.join(credentials, "tls-key"), 0o400)):
        os.chown(path, BRIDGE_UID, BRIDGE_UID)
        os.chmod(path, mode)
    # its work directory and counters (the role: owned by the bridge's user, or writable by its group)
    for path in (directory, variables["__logfwdr_syslog_bridge_work_dir"]):
        os.chown(path, BRIDGE_UID, BRIDGE_UID)
    log = os.path.join(directory, "rsyslogd.log")
    with open(log, "w") as handle:
        proc = subprocess.Popen(
            ["ip", "netns", "exec", lab.rep, "setpriv", "--reuid=%d" % BRIDGE_UID, "--regid=%d" % BRIDGE_UID,
             "--clear-groups", "--inh-caps=-all,+net_bind_service", "--ambient-caps=-all,+net_bind_service",
             "--bounding-set=-all,+net_bind_service", "--no-new-privs",
             bridgeconf.RSYSLOGD, "-n", "-iNONE", "-f", conf], stdout=handle, stderr=subprocess.STDOUT)
    lab.procs.append(proc)
    deadline = time.monotonic() + 15
    while True:
        listening = netlab.sh("ip", "netns", "exec", lab.rep, "ss", "-Hltn").stdout
        if ready in listening:
            break
        assert proc.poll() is None, open(log).read()
        assert time.monotonic() < deadline, listening + open(log).read()
        time.sleep(0.1)
    return text, variables, proc, log


def listeners(lab, pid):
    """(address, port) of the TCP sockets process `pid` listens on, in the replicator namespace."""
    out = netlab.sh("ip", "netns", "exec", lab.rep, "ss", "-Hltnp").stdout
    return sorted((m.group(1).strip("[]"), int(m.group(2))) for line in out.splitlines() if "pid=%d," % pid in line
                  for m in [re.search(r"\s(\S+):(\d+)\s", line)] if m)


class Bridge(object):
    def __init__(self, tmpdir):
        self.tmpdir = tmpdir
        self.lab = netlab.Lab("sb")
        self.lab.start()
        try:
            self._setup()
        except BaseException:
            self.lab.close()
            raise

    def _setup(self):
        lab, sh = self.lab, netlab.sh
        for ip in SENDERS[1:] + [OUTSIDER]:
            sh("ip", "-n", lab.exp, "addr", "add", ip + "/24", "dev", "exp0")
        self.col = lab.ns("lf%sk" % lab.tag)
        sh("ip", "-n", lab.rep, "link", "add", "out0", "type", "veth", "peer", "name", "col0", "netns", self.col)
        sh("ip", "-n", lab.rep, "addr", "add", EGRESS_IP + "/24", "dev", "out0")
        sh("ip", "-n", lab.rep, "link", "set", "out0", "up")
        for addr, _port in LIVE.values():
            if ":" not in addr:
                sh("ip", "-n", self.col, "addr", "add", addr + "/24", "dev", "col0")
        sh("ip", "-n", self.col, "link", "set", "col0", "up")
        # the dead collector: every sendto() to it fails, so its action suspends and its queue fills
        sh("ip", "-n", lab.rep, "route", "add", "unreachable", "10.79.0.0/24")
        # IPv6 on both sides; the outsider's prefix is routed through the segment
        netlab.Lab.add_address6(lab.rep, "in0", BRIDGE_IP6 + "/64")
        netlab.Lab.add_address6(lab.exp, "exp0", *[a + "/64" for a in SENDERS6 + [OUTSIDER6]])
        sh("ip", "-n", lab.rep, "-6", "route", "add", "2001:db8:99::/64", "dev", "in0")
        netlab.Lab.add_address6(lab.rep, "out0", EGRESS_IP6 + "/64")
        netlab.Lab.add_address6(self.col, "col0", *[a + "/64" for a, _p in LIVE.values() if ":" in a])

        self.pki = make_pki(self.tmpdir)
        inventory = dict(INVENTORY, logfwdr_syslog_bridge_tls_ca_file=self.pki["ca"],
                         logfwdr_syslog_bridge_tls_cert_file=self.pki["bridge.test"][0],
                         logfwdr_syslog_bridge_tls_key_file=self.pki["bridge.test"][1])
        # the backup does not hold the virtual address: the role's sysctl lets the bridge listen on it anyway
        sh("ip", "netns", "exec", lab.rep, "sysctl", "-qw", "net.ipv4.ip_nonlocal_bind=1", "net.ipv6.ip_nonlocal_bind=1")
        self.text, self.vars, self.rsyslogd, self.log = start_bridge(lab, self.tmpdir, inventory,
                                                                     self.pki["bridge.test"][1], ":6514 ")
        self.stats = self.vars["__logfwdr_syslog_bridge_stats_file"]
        # the role's nftables table (the bridge's part: its session limit), as logfwdr-nftables.service loads it
        nft_vars = dict(self.vars, logfwdr_vrrp=False, logfwdr_firewall=False,
                        __logfwdr_nftables_service="logfwdr-nftables.service")
        nft = bridgeconf.render("logfwdr-nftables.conf.j2", nft_vars)
        self.nft = os.path.join(self.tmpdir, "nftables.conf")
        with open(self.nft, "w") as handle:
            handle.write(nft)
        sh("ip", "netns", "exec", lab.rep, "nft", "-f", self.nft)
        self.collectors = Collectors(self.col, lab.procs)

    def send(self, source, messages, port=514, tls=None, background=False, **extra):
        target = BRIDGE_IP6 if ":" in source else BRIDGE_IP
        spec = dict(dict(source=source, target=target, port=port, messages=messages, tls=tls), **extra)
        proc = subprocess.Popen(["ip", "netns", "exec", self.lab.exp, sys.executable, "-c", _SENDER,
                                 json.dumps(spec)], stdout=subprocess.PIPE, universal_newlines=True)
        if background:
            self.lab.procs.append(proc)
            return proc
        out, _err = proc.communicate(timeout=120)
        return json.loads(out.strip().splitlines()[-1])

    def tls(self, who):
        if who is None:
            return {"ca": self.pki["ca"]}
        cert, key = self.pki[who]
        return {"ca": self.pki["ca"], "cert": cert, "key": key}

    def counters(self):
        """The last impstats record of each action and queue: {name: record}."""
        out = {}
        if os.path.exists(self.stats):
            for line in open(self.stats):
                i = line.find("{")
                if i >= 0:
                    record = json.loads(line[i:])
                    out[record["name"]] = record
        return out

    def fresh_counters(self):
        """Counters written after this call (impstats writes every second here)."""
        size = os.path.getsize(self.stats) if os.path.exists(self.stats) else 0
        deadline = time.monotonic() + 10
        while (not os.path.exists(self.stats) or os.path.getsize(self.stats) == size
               or "to-cdead queue" not in open(self.stats).read()[size:]):
            assert time.monotonic() < deadline, "no impstats record in %s" % self.stats
            time.sleep(0.2)
        time.sleep(0.3)  # the rest of that record
        return self.counters()

    def close(self):
        self.lab.close()


@pytest.fixture(scope="module")
def bridge(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("needs root (network namespaces)")
    if not os.path.exists(bridgeconf.RSYSLOGD):
        pytest.fail("rsyslogd is not installed (make deps installs rsyslog and rsyslog-gnutls)")
    # not under pytest's 0700 base directory: the bridge's user must reach its files
    directory = tempfile.mkdtemp(prefix="logfwdr-bridge-")
    os.chmod(directory, 0o755)
    try:
        bridge = Bridge(directory)
        try:
            yield bridge
        finally:
            bridge.close()
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def run_id():
    return "r%d" % (time.monotonic_ns() % 10 ** 12)


def messages(run, sender, tag="t"):
    """RFC 5424 (with and without structured data, with an origin element) and RFC 3164 input."""
    return [
        '<165>1 2026-11-25T10:00:00.123Z rtr-%s app 42 ID7 [x@32473 k="v"] five-sd %s %s' % (tag, run, sender),
        '<165>1 2026-11-25T10:00:00.123Z rtr-%s app - - - five-nosd %s %s' % (tag, run, sender),
        '<13>1 2026-11-25T10:00:01Z rtr-%s app 7 - [origin software="ios"][y@1 a="b"] five-origin %s %s'
        % (tag, run, sender),
        '<34>Nov  5 22:14:15 rtr-%s su[99]: three %s %s' % (tag, run, sender),
    ]


def expected(fmt, run, sender, tag="t"):
    if fmt == "rfc5424":
        return [
            re.escape('<165>1 2026-11-25T10:00:00.123Z rtr-%s app 42 ID7 [origin ip="%s"][x@32473 k="v"] five-sd %s %s'
                      % (tag, sender, run, sender)),
            re.escape('<165>1 2026-11-25T10:00:00.123Z rtr-%s app - - [origin ip="%s"] five-nosd %s %s'
                      % (tag, sender, run, sender)),
            re.escape('<13>1 2026-11-25T10:00:01Z rtr-%s app 7 - [origin ip="%s" software="ios"][y@1 a="b"] '
                      'five-origin %s %s' % (tag, sender, run, sender)),
            # RFC 3164 has no year and no zone: rsyslog completes them
            r'<34>1 \d{4}-11-05T22:14:15[+-]\d\d:\d\d rtr-%s su 99 - \[origin ip="%s"\] three %s %s'
            % (tag, re.escape(sender), run, re.escape(sender)),
        ]
    return [re.escape(x) for x in (
        "<165>Nov 25 10:00:00 %s app[42]: five-sd %s %s" % (sender, run, sender),
        "<165>Nov 25 10:00:00 %s app: five-nosd %s %s" % (sender, run, sender),
        "<13>Nov 25 10:00:01 %s app[7]: five-origin %s %s" % (sender, run, sender),
        "<34>Nov  5 22:14:15 %s su[99]: three %s %s" % (sender, run, sender),
    )]


FORMATS = {"c5424": "rfc5424", "c3164": "rfc3164", "cpart": "rfc5424", "c6": "rfc5424", "c6part": "rfc5424"}
# who gets which senders: cpart an IPv4 allow-list, c6part an IPv6 one; the others every sender of both families
# the collectors a message of SENDERS[0] reaches, and of SENDERS6[0]
FIRST = ("c5424", "c3164", "cpart", "c6")
FIRST6 = ("c5424", "c3164", "c6", "c6part")
DUE = {4: {"c5424": SENDERS, "c3164": SENDERS, "cpart": SENDERS[:2], "c6": SENDERS, "c6part": []},
       6: {"c5424": SENDERS6, "c3164": SENDERS6, "cpart": [], "c6": SENDERS6, "c6part": SENDERS6[:2]}}


@pytest.mark.parametrize("family", [4, 6])
def test_every_collector_gets_every_message_in_its_format(bridge, family):
    run = run_id()
    senders = SENDERS if family == 4 else SENDERS6
    for sender in senders:
        result = bridge.send(sender, messages(run, sender))
        assert result["error"] is None and result["sent"] == 4, result
    due = DUE[family]
    got = bridge.collectors.take(run, expected=sum(4 * len(v) for v in due.values()))
    for name, due_senders in due.items():
        payloads = sorted(p for _src, p in got[name])
        want = [w for s in due_senders for w in expected(FORMATS[name], run, s)]
        assert len(payloads) == len(want), (name, payloads)
        for pattern in want:
            assert sum(1 for p in payloads if re.fullmatch(pattern, p)) == 1, (name, pattern, payloads)
        # the copies come from the replicator (UDP, its egress address of the collector's family), the sender is
        # named inside
        assert set(src for src, _p in got[name]) <= {EGRESS_IP6 if ":" in LIVE[name][0] else EGRESS_IP}
    assert not [p for _s, p in got["cpart"] + got["c6part"] if senders[2] in p]


def test_tls_x509_name(bridge):
    run = run_id()
    ok = bridge.send(SENDERS[0], messages(run, SENDERS[0], tag="tls"), port=6514, tls=bridge.tls("sender.test"))
    assert ok["error"] is None and ok["sent"] == 4, ok
    # a permitted peer given as a wildcard
    wild = bridge.send(SENDERS[0], ["<13>1 2026-11-25T10:00:00Z h app - - - wildcard %s" % run], port=6514,
                       tls=bridge.tls("dev.wild.test"))
    assert wild["error"] is None and wild["sent"] == 1, wild
    refused = {}
    for who in ("other.test", "rogue", None):   # name not permitted, another CA, no client certificate
        refused[who] = bridge.send(SENDERS[1], messages(run, "refused-%s" % who), port=6514, tls=bridge.tls(who))
    # an allowed certificate from a sender outside the allow-list: refused as well
    refused["outsider"] = bridge.send(OUTSIDER, messages(run, "refused-outsider"), port=6514,
                                      tls=bridge.tls("sender.test"))
    got = bridge.collectors.take(run, expected=len(FIRST) * 5)
    for name in FIRST:
        payloads = [p for _s, p in got[name] if "wildcard" not in p]
        assert not [p for p in payloads if "refused" in p], (name, refused, payloads)
        assert len(payloads) == 4, (name, payloads)
        assert len([p for _s, p in got[name] if "wildcard" in p]) == 1, (name, got[name])
        for pattern in expected(FORMATS[name], run, SENDERS[0], tag="tls"):
            assert sum(1 for p in payloads if re.fullmatch(pattern, p)) == 1, (name, pattern, payloads)
    for who, result in refused.items():
        assert result["error"] is not None or result.get("eof"), (who, result)


@pytest.mark.parametrize("family", [4, 6])
def test_sender_outside_the_allow_list_is_refused(bridge, family):
    run = run_id()
    outsider, sender, reached = (OUTSIDER, SENDERS[0], FIRST) if family == 4 else (OUTSIDER6, SENDERS6[0], FIRST6)
    refused = bridge.send(outsider, messages(run, outsider))
    barrier = bridge.send(sender, ["<13>1 2026-11-25T10:00:00Z h app - - - barrier %s" % run])
    assert barrier["error"] is None, barrier
    got = bridge.collectors.take(run, expected=len(reached))
    assert [len(got[name]) for name in reached] == [1, 1, 1, 1], got
    assert sum(len(v) for v in got.values()) == len(reached), got
    assert not [p for v in got.values() for _s, p in v if outsider in p]
    # the bridge closed the connection at once, and said why
    assert refused.get("eof") or refused["error"], refused
    assert "disallowed sender %s" % outsider in open(bridge.log).read()


def test_dead_collector_overflows_alone(bridge):
    """cdead's sendto() fails (no route): its action suspends, its queue (200) fills and then drops, counted;
    the live collectors get every message and the sender is never held up."""
    before = bridge.fresh_counters()
    run = run_id()
    count = 1500
    lines = ["<13>1 2026-11-25T10:00:00Z h app - - - bulk %s %d" % (run, i) for i in range(count)]
    result = bridge.send(SENDERS[0], lines, pace=0.0003)
    assert result["error"] is None and result["sent"] == count, result
    got = bridge.collectors.take(run, expected=len(FIRST) * count, timeout=60)
    for name in FIRST:
        numbers = sorted(int(p.rsplit(" ", 1)[1]) for _s, p in got[name])
        assert numbers == list(range(count)), (name, len(numbers))
    after = bridge.fresh_counters()

    def delta(name, key):
        return after[name][key] - before.get(name, {}).get(key, 0)

    assert delta("to-cdead queue", "enqueued") + delta("to-cdead queue", "discarded.full") >= count
    assert delta("to-cdead queue", "discarded.full") >= count - 2 * 200, after["to-cdead queue"]
    assert after["to-cdead queue"]["size"] >= 150, after["to-cdead queue"]
    for name in FIRST:
        assert delta("to-%s queue" % name, "discarded.full") == 0, after["to-%s queue" % name]
        assert delta("to-%s" % name, "processed") == count, after["to-%s" % name]
    assert "No route to host" in open(bridge.log).read()
    # the agent's metrics read the same counters out of rsyslogd's own file
    prometheus_client = pytest.importorskip("prometheus_client")
    from ansible_collections.netops.logfwdr.plugins.module_utils.tc import metrics

    class Families(object):
        def collect(self):
            return metrics.host_families(bridge_file=bridge.stats)

    registry = prometheus_client.CollectorRegistry()
    registry.register(Families())
    for _attempt in range(5):  # impstats appends a record every second: read both between two records
        last = bridge.counters()
        text = prometheus_client.generate_latest(registry).decode().splitlines()
        if last == bridge.counters():
            break
    assert "logfwdr_bridge_stats_read_ok 1.0" in text
    assert 'logfwdr_bridge_queue_discarded_full_total{collector="cdead"} %.1f' % (
        last["to-cdead queue"]["discarded.full"]) in text, text
    assert last["to-cdead queue"]["discarded.full"] > 0
    for name in FIRST:
        assert 'logfwdr_bridge_action_processed_total{collector="%s"} %.1f' % (
            name, last["to-%s" % name]["processed"]) in text, text


def test_hup_keeps_the_tcp_sessions(bridge):
    """logrotate's postrotate sends SIGHUP: the counters file is reopened, the senders stay connected."""
    run = run_id()
    os.rename(bridge.stats, bridge.stats + ".1")
    proc = bridge.send(SENDERS[0], ["<13>1 2026-11-25T10:00:00Z h app - - - hup %s %d" % (run, i) for i in range(2)],
                       background=True, pause_after=1, pause=2.0)
    assert json.loads(proc.stdout.readline()) == {"paused": True}
    # rsyslogd is the child of `ip netns exec` (which execs it): the Popen pid is rsyslogd's
    os.kill(bridge.rsyslogd.pid, signal.SIGHUP)
    out, _err = proc.communicate(timeout=30)
    result = json.loads(out.strip().splitlines()[-1])
    assert result["error"] is None and result["sent"] == 2 and not result["eof"], result
    got = bridge.collectors.take(run, expected=2 * len(FIRST))
    assert [len(got[name]) for name in FIRST] == [2, 2, 2, 2], got
    deadline = time.monotonic() + 10
    while not os.path.exists(bridge.stats):
        assert time.monotonic() < deadline, "the counters file was not reopened after SIGHUP"
        time.sleep(0.2)
    assert bridge.rsyslogd.poll() is None


def test_nothing_for_mirror_or_non_syslog_collectors(bridge):
    actions = re.findall(r'action\(name="([^"]+)"', bridge.text)
    assert actions == ["to-c5424", "to-c3164", "to-cpart", "to-cdead", "to-c6", "to-c6part"]


# ---- a bridge a hostile sender cannot take over --------------------------------


def status(pid):
    return dict(line.split(":", 1) for line in open("/proc/%d/status" % pid).read().splitlines() if ":" in line)


def test_rsyslogd_is_not_root_and_holds_only_the_bind_capability(bridge):
    st = status(bridge.rsyslogd.pid)
    assert st["Name"].strip() == "rsyslogd"
    assert st["Uid"].split() == [str(BRIDGE_UID)] * 4 and st["Gid"].split() == [str(BRIDGE_UID)] * 4, st
    assert st["Groups"].strip() == ""
    for key in ("CapEff", "CapPrm", "CapBnd", "CapAmb"):
        assert int(st[key], 16) == CAP_NET_BIND_SERVICE, (key, st[key])
    assert st["NoNewPrivs"].strip() == "1"
    # and its threads too (rsyslogd parses input in worker threads)
    for tid in os.listdir("/proc/%d/task" % bridge.rsyslogd.pid):
        assert open("/proc/%d/task/%s/status" % (bridge.rsyslogd.pid, tid)).read().count("%d\t" % BRIDGE_UID) >= 4


def test_listens_on_the_ingress_and_virtual_addresses_only(bridge):
    assert listeners(bridge.lab, bridge.rsyslogd.pid) == [
        (BRIDGE_IP, 514), (BRIDGE_IP, 6514), (VIRTUAL_IP, 514), (VIRTUAL_IP, 6514),
        (BRIDGE_IP6, 514), (BRIDGE_IP6, 6514), (VIRTUAL_IP6, 514), (VIRTUAL_IP6, 6514)]
    # another address of the replicator on the segment, not in the inventory: nothing listens there
    netlab.sh("ip", "-n", bridge.lab.rep, "addr", "add", "10.77.0.99/24", "dev", "in0")
    try:
        result = bridge.send(SENDERS[0], ["x"], target="10.77.0.99")
        assert result["error"] and "refused" in result["error"].lower(), result
    finally:
        netlab.sh("ip", "-n", bridge.lab.rep, "addr", "del", "10.77.0.99/24", "dev", "in0")


@pytest.mark.parametrize("family", [4, 6])
def test_virtual_address_listener_serves_once_this_host_holds_it(bridge, family):
    run = run_id()
    virtual, sender, reached = (VIRTUAL_IP + "/24", SENDERS[0], FIRST) if family == 4 else (
        VIRTUAL_IP6 + "/64", SENDERS6[0], FIRST6)
    netlab.sh("ip", "-n", bridge.lab.rep, "addr", "add", virtual, "dev", "in0", *(["nodad"] if family == 6 else []))
    try:   # VRRP master now
        result = bridge.send(sender, ["<13>1 2026-11-25T10:00:00Z h app - - - vip %s" % run],
                             target=virtual.split("/", 1)[0])
        assert result["error"] is None, result
        got = bridge.collectors.take(run, expected=len(reached))
        assert [len(got[name]) for name in reached] == [1, 1, 1, 1], got
    finally:
        netlab.sh("ip", "-n", bridge.lab.rep, "addr", "del", virtual, "dev", "in0")


_FLOOD = r"""
import errno, json, select, socket, sys, time
target, port, count, source = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
pending = []
for _ in range(count):   # every connection at once, as a flood would
    s = socket.socket(socket.AF_INET6 if ":" in source else socket.AF_INET, socket.SOCK_STREAM)
    s.bind((source, 0))
    s.setblocking(False)
    s.connect_ex((target, port))
    pending.append(s)
time.sleep(3)            # SYNs the bridge's limit dropped are still unanswered (the kernel retries after 1 s, 3 s)
_r, writable, _x = select.select([], pending, [], 0)
connected = [s for s in writable if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0]
print(json.dumps({"connected": len(connected), "unanswered": count - len(writable)}), flush=True)
sys.stdin.read()         # hold the sessions until told
"""


def start_flood(bridge, source, count):
    """`count` connections at once from `source`, held open until its stdin closes: the flooder."""
    proc = subprocess.Popen(["ip", "netns", "exec", bridge.lab.exp, sys.executable, "-c", _FLOOD,
                             BRIDGE_IP6 if ":" in source else BRIDGE_IP, "514", str(count), source],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            universal_newlines=True)
    bridge.lab.procs.append(proc)
    return proc


def flood(bridge, source, count):
    """`count` connections at once from `source`, held open: (the flooder, what it got)."""
    proc = start_flood(bridge, source, count)
    return proc, json.loads(proc.stdout.readline())


def test_connection_flood_is_bounded(bridge):
    """Senders open 3 x MAX_SESSIONS connections each, at once: each gets PER_SENDER sessions and all of them together
    MAX_SESSIONS; the SYNs of the rest are dropped by the role's nftables rules (Debian 12's rsyslog 8.2302 does not
    enforce imtcp's maxSessions itself), and the bridge serves again once they are gone."""
    netlab.sh("ip", "-n", bridge.lab.exp, "addr", "add", "10.77.0.5/24", "dev", "exp0")
    count = 3 * MAX_SESSIONS
    floods = []
    try:
        for source in (SENDERS[1], SENDERS[2], "10.77.0.5"):   # 3 x PER_SENDER > MAX_SESSIONS
            floods.append(flood(bridge, source, count))
        established = netlab.sh("ip", "netns", "exec", bridge.lab.rep, "ss", "-Htn", "state", "established",
                                "( sport = :514 )").stdout.splitlines()
    finally:
        for proc, _got in floods:
            proc.stdin.close()
            proc.wait(timeout=10)
        netlab.sh("ip", "-n", bridge.lab.exp, "addr", "del", "10.77.0.5/24", "dev", "exp0")
    got = [g for _p, g in floods]
    assert [g["connected"] for g in got] == [PER_SENDER, PER_SENDER, MAX_SESSIONS - 2 * PER_SENDER], got
    assert [g["unanswered"] for g in got] == [count - g["connected"] for g in got], got
    assert len(established) == MAX_SESSIONS, (len(established), got)
    counter = netlab.sh("ip", "netns", "exec", bridge.lab.rep, "nft", "list", "chain", "inet", "logfwdr",
                        "exporter_segments").stdout
    for pattern in (r"ip saddr ct count over %d \} counter packets [1-9]" % PER_SENDER,
                    r"tcp dport 514 ct state new ct count over %d counter packets [1-9]" % MAX_SESSIONS):
        assert re.search(pattern, counter), counter
    time.sleep(0.5)
    run = run_id()
    result = bridge.send(SENDERS[0], ["<13>1 2026-11-25T10:00:00Z h app - - - after-flood %s" % run])
    assert result["error"] is None and not result["eof"], result
    got = bridge.collectors.take(run, expected=len(FIRST))
    assert [len(got[name]) for name in FIRST] == [1, 1, 1, 1], got
    assert bridge.rsyslogd.poll() is None


def test_tls_only_bridge_has_no_plain_listener(bridge):
    """A second bridge, TLS only, on other ports: it listens on its TLS port alone."""
    directory = os.path.join(bridge.tmpdir, "tlsonly")
    inventory = dict(INVENTORY, logfwdr_syslog_bridge_tls_only=True, logfwdr_syslog_bridge_port=1601,
                     logfwdr_syslog_bridge_tls_port=16514, logfwdr_syslog_bridge_tls_ca_file=bridge.pki["ca"],
                     logfwdr_syslog_bridge_tls_cert_file=bridge.pki["bridge.test"][0],
                     logfwdr_syslog_bridge_tls_key_file=bridge.pki["bridge.test"][1])
    text, _vars, proc, _log = start_bridge(bridge.lab, directory, inventory, bridge.pki["bridge.test"][1], ":16514 ")
    try:
        assert listeners(bridge.lab, proc.pid) == [(BRIDGE_IP, 16514), (VIRTUAL_IP, 16514), (BRIDGE_IP6, 16514),
                                                   (VIRTUAL_IP6, 16514)]
        assert "1601" not in text
        plain = bridge.send(SENDERS[0], ["x"], port=1601)
        assert plain["error"] and "refused" in plain["error"].lower(), plain
        ok = bridge.send(SENDERS[0], ["<13>1 2026-11-25T10:00:00Z h app - - - tls-only"], port=16514,
                         tls=bridge.tls("sender.test"))
        assert ok["error"] is None and ok["sent"] == 1, ok
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def pool_bridge(bridge, tag, port, collectors, senders, expected, members):
    """A second bridge (plain TCP on `port`) with these collectors; each sender (its address on the exporter's
    interface for the run) sends two messages: {member: {sender: [payloads]}} as the LIVE collectors named in
    `members` ({member: LIVE name}) received them, once `expected` datagrams came."""
    directory = os.path.join(bridge.tmpdir, tag)
    inventory = dict(INVENTORY, logfwdr_syslog_bridge_tls=False, logfwdr_syslog_bridge_port=port,
                     logfwdr_collectors=collectors)
    addresses = [s + ("/64" if ":" in s else "/24") for s in senders]
    if ":" in senders[0]:
        netlab.Lab.add_address6(bridge.lab.exp, "exp0", *addresses)
    else:
        for address in addresses:
            netlab.sh("ip", "-n", bridge.lab.exp, "addr", "add", address, "dev", "exp0")
    _text, _vars, proc, log = start_bridge(bridge.lab, directory, inventory, bridge.pki["bridge.test"][1],
                                           ":%d " % port)
    try:
        run = run_id()
        for sender in senders:
            result = bridge.send(sender, ["<13>1 2026-11-25T10:00:00Z h app - - - %s %s %s %d" % (tag, run, sender, i)
                                          for i in range(2)], port=port)
            assert result["error"] is None and result["sent"] == 2, result
        got = bridge.collectors.take(run, expected=expected)
        assert proc.poll() is None, open(log).read()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        for address in addresses:
            netlab.sh("ip", "-n", bridge.lab.exp, "addr", "del", address, "dev", "exp0")
    by_member = {}
    for member, name in members.items():
        for _src, payload in got[name]:
            sender = re.search(r"%s %s (\S+) \d" % (tag, run), payload).group(1)
            by_member.setdefault(member, {}).setdefault(sender, []).append(payload)
    return by_member


def assert_one_member_each(by_member, senders, last_octet):
    """Each sender's two messages at exactly the member the kernel's rules give its last octet; both members get
    some."""
    sys.path.insert(0, netlab.ensure_collection_path())
    from ansible_collections.netops.logfwdr.plugins.module_utils.tc import layout
    owners = layout.pool_buckets([{"name": "m0"}, {"name": "m1"}])
    for sender in senders:
        where = [m for m in ("m0", "m1") if sender in by_member.get(m, {})]
        assert where == [owners[last_octet(sender)]["name"]], (sender, where)
        assert len(by_member[where[0]][sender]) == 2, by_member[where[0]][sender]
    assert by_member.get("m0") and by_member.get("m1")


def test_a_pool_gets_each_senders_messages_at_one_member(bridge):
    """A second bridge (plain TCP on 1602) whose syslog collectors 10.78.0.11 and 10.78.0.13 form a pool: each of
    32 senders' messages reach exactly one member, the one the kernel's rules map its last octet to, whole and
    once; the collector outside the pool (10.78.0.12:1514) gets every message."""
    senders = ["10.77.0.%d" % i for i in range(10, 42)]
    by_member = pool_bridge(bridge, "pool", 1602, [
        {"name": "m0", "address": LIVE["c5424"][0], "protocols": ["syslog"], "pool": "sys"},
        {"name": "m1", "address": LIVE["cpart"][0], "protocols": ["syslog"], "pool": "sys"},
        {"name": "all", "address": LIVE["c3164"][0], "protocols": ["syslog"], "ports": {"syslog": LIVE["c3164"][1]}}],
        senders, 4 * len(senders), {"m0": "c5424", "m1": "cpart", "all": "c3164"})
    assert sorted(by_member["all"]) == sorted(senders) and all(len(v) == 2 for v in by_member["all"].values())
    assert_one_member_each(by_member, senders, lambda s: int(s.rsplit(".", 1)[1]))


# ---- IPv6 senders ----------------------------------------------------------------


def test_ipv6_sender_over_tls(bridge):
    run = run_id()
    ok = bridge.send(SENDERS6[2], messages(run, SENDERS6[2], tag="tls6"), port=6514, tls=bridge.tls("sender.test"))
    assert ok["error"] is None and ok["sent"] == 4, ok
    refused = bridge.send(SENDERS6[2], messages(run, "refused"), port=6514, tls=bridge.tls("other.test"))
    assert refused["error"] is not None or refused.get("eof"), refused
    # ::4 is outside c6part's 2001:db8:77::2/127 and cpart is IPv4 only
    got = bridge.collectors.take(run, expected=3 * 4)
    for name in ("c5424", "c3164", "c6"):
        payloads = [p for _s, p in got[name]]
        assert len(payloads) == 4 and not [p for p in payloads if "refused" in p], (name, payloads)
        for pattern in expected(FORMATS[name], run, SENDERS6[2], tag="tls6"):
            assert sum(1 for p in payloads if re.fullmatch(pattern, p)) == 1, (name, pattern, payloads)
    assert not got["cpart"] and not got["c6part"], got


def test_ipv6_connection_flood_is_bounded_per_sender(bridge):
    """One IPv6 sender opens 3 x PER_SENDER connections at once: it gets PER_SENDER, counted by the role's ip6 rule
    (an IPv6 sender has its own set of the per-sender limit)."""
    proc, got = flood(bridge, SENDERS6[1], 3 * PER_SENDER)
    try:
        established = netlab.sh("ip", "netns", "exec", bridge.lab.rep, "ss", "-Htn", "state", "established",
                                "( sport = :514 )").stdout.splitlines()
    finally:
        proc.stdin.close()
        proc.wait(timeout=10)
    assert got == {"connected": PER_SENDER, "unanswered": 2 * PER_SENDER}, got
    assert len(established) == PER_SENDER, established
    counter = netlab.sh("ip", "netns", "exec", bridge.lab.rep, "nft", "list", "chain", "inet", "logfwdr",
                        "exporter_segments").stdout
    assert re.search(r"ip6 saddr ct count over %d \} counter packets [1-9]" % PER_SENDER, counter), counter


def test_ipv6_sender_rotating_addresses_is_bounded_in_all(bridge):
    """A hostile IPv6 host on the segment holds a /64 of addresses: the per-sender limit is per address, so 25
    addresses opening 2 connections each pass it. The limit on all sessions still holds: MAX_SESSIONS in all."""
    rotating = ["2001:db8:77::e:%x" % i for i in range(25)]
    netlab.Lab.add_address6(bridge.lab.exp, "exp0", *[a + "/64" for a in rotating])
    procs = []
    try:
        procs = [start_flood(bridge, source, 2) for source in rotating]
        got = [json.loads(proc.stdout.readline()) for proc in procs]
        established = netlab.sh("ip", "netns", "exec", bridge.lab.rep, "ss", "-Htn", "state", "established",
                                "( sport = :514 )").stdout.splitlines()
    finally:
        for proc in procs:
            proc.stdin.close()
            proc.wait(timeout=10)
        for address in rotating:
            netlab.sh("ip", "-n", bridge.lab.exp, "addr", "del", address + "/64", "dev", "exp0")
    assert sum(g["connected"] for g in got) == MAX_SESSIONS, got
    assert len(established) == MAX_SESSIONS, established


# the textual forms an IPv6 sender's address takes ("::" inside, at the end, none), each in or out of
# 2001:db8:77:0:8000::/65 (the upper half of the segment) and with its own last byte
FORMS6 = ["2001:db8:77::%x" % n for n in range(0x10, 0x30)] + [
    "2001:db8:77:0:1:2:3:4", "2001:db8:77:0:8000::", "2001:db8:77:0:8000:0:0:7a", "2001:db8:77:0:ffff:ffff:ffff:fffe",
    "2001:db8:77:0:abcd::1:ff", "2001:db8:77:0:7fff:ffff:ffff:ff01"]


def test_ipv6_pool_and_prefixes_see_each_senders_address_as_the_kernel_does(bridge):
    """A second bridge (plain TCP on 1603): a pool of two IPv6 collectors and a collector with an IPv6 prefix that
    ends inside a hex digit. Every sender's messages reach exactly the pool member its last byte maps to (the kernel's
    rendezvous function) and the /65 collector exactly when the sender is in it; senders of every textual form."""
    import ipaddress
    upper = ipaddress.ip_network("2001:db8:77:0:8000::/65")
    in_upper = [s for s in FORMS6 if ipaddress.ip_address(s) in upper]
    by_member = pool_bridge(bridge, "pool6", 1603, [
        {"name": "m0", "address": LIVE["c6"][0], "protocols": ["syslog"], "pool": "sys"},
        {"name": "m1", "address": LIVE["c6b"][0], "protocols": ["syslog"], "pool": "sys"},
        {"name": "upper", "address": LIVE["c6part"][0], "protocols": ["syslog"], "sources": [str(upper)]}],
        FORMS6, 2 * (len(FORMS6) + len(in_upper)), {"m0": "c6", "m1": "c6b", "upper": "c6part"})
    assert sorted(by_member.get("upper", {})) == sorted(in_upper) and len(in_upper) == 4, by_member.get("upper")
    assert all(len(v) == 2 for v in by_member["upper"].values())
    assert_one_member_each(by_member, FORMS6, lambda s: int(ipaddress.ip_address(s)) & 0xFF)
