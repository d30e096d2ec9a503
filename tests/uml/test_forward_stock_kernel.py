"""tc_mirror forward destinations on the stock Debian 6.1 kernel (UML guest).

Topology (everything lives in namespaces the harness creates)::

    exporter ns eth0 192.0.2.20/24 --[ingress]-- vec0 192.0.2.1/24  replicator guest
                                                 vec1 198.51.100.1/24
    collector A eth0 198.51.100.10/24 --[egress]--+
    collector B eth0 198.51.100.11/24 --[egress]--+

The replicator runs the real module file (AnsibleModule args-file convention)
with Debian's python3-pyroute2 0.7.2 and a copy of ansible-core's pure-Python
package, mounted into the guest read-only with hostfs.  The host checks what
the collectors really receive: UDP sockets (payloads, source address and port)
and raw frames (MACs, IP header and UDP checksums, recomputed here).
"""

import glob
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from ansible_collections.netops.logfwdr.plugins.module_utils.tc.layout import DEFAULT_PRIORITY

pytestmark = pytest.mark.uml

REPO = Path(__file__).resolve().parent.parent.parent

EXPORTER_IP = "192.0.2.20"
REPLICATOR_IN = "192.0.2.1"
REPLICATOR_OUT = "198.51.100.1"
COL_A_IP, COL_B_IP = "198.51.100.10", "198.51.100.11"
COL_A_MAC, COL_B_MAC = "02:cc:00:00:00:0a", "02:cc:00:00:00:0b"
UNUSED_IP = "198.51.100.99"  # nobody answers ARP for it
SYSLOG_SPORT, TRAP_SPORT = 40514, 40162
TRAP_REWRITE = 10162
RATE, BURST = 10, 10  # packets/s and burst of collector A's trap destination
N = 40  # datagrams per port
SAMPLE = 4  # collector B gets every 4th syslog datagram (gact random determ)
PRIORITY = DEFAULT_PRIORITY


# --------------------------------------------------------------------------- payload

def _ansible_package():
    """ansible-core's `ansible` package dir: repo .venv first, else this interpreter's."""
    for cand in sorted(glob.glob(str(REPO / ".venv" / "lib" / "python3*" / "site-packages" / "ansible"))):
        if os.path.isfile(os.path.join(cand, "module_utils", "basic.py")):
            return cand
    try:
        import ansible
    except ImportError:
        return None
    return os.path.dirname(os.path.abspath(ansible.__file__))


@pytest.fixture(scope="module")
def payload():
    """Host dir holding `ansible/` and `ansible_collections/netops/logfwdr/` (plain copies, no
    symlinks, byte-compiled here so the guest does not compile on every module run)."""
    src = _ansible_package()
    if src is None:
        pytest.skip("ansible-core not found (no .venv, and `import ansible` fails)")
    import compileall
    root = tempfile.mkdtemp(prefix="lf-fwd-payload-", dir=os.environ.get("LOGFWDR_UML_TMP"))
    try:
        shutil.copytree(src, os.path.join(root, "ansible"), symlinks=False,
                        ignore=shutil.ignore_patterns("__pycache__"))
        col = os.path.join(root, "ansible_collections", "netops", "logfwdr")
        os.makedirs(col)
        for sub in ("plugins", "meta"):
            shutil.copytree(str(REPO / sub), os.path.join(col, sub), symlinks=False,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        shutil.copy2(str(REPO / "galaxy.yml"), col)
        for sub in ("ansible/__init__.py", "ansible/release.py", "ansible/module_utils",
                    "ansible_collections"):
            path = os.path.join(root, sub)
            if os.path.isdir(path):
                compileall.compile_dir(path, quiet=1)
            elif os.path.exists(path):
                compileall.compile_file(path, quiet=1)
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


GUEST_PRELUDE = r"""
set -u
PAY=/opt/lf
MODS=$PAY/ansible_collections/netops/logfwdr/plugins/modules
mkdir -p $PAY
mount -t hostfs -o ro,{payload} none $PAY || {{ echo "cannot mount payload"; exit 90; }}
export PYTHONPATH=$PAY PYTHONDONTWRITEBYTECODE=1
runmod() {{  # runmod NAME MODULE ARGS_JSON_FILE -> /share/NAME.json .err .rc, printed
    local t0 t1
    read -r t0 _ </proc/uptime
    python3 "$MODS/$2.py" "$3" >"/share/$1.json" 2>"/share/$1.err"
    echo $? >"/share/$1.rc"
    read -r t1 _ </proc/uptime
    echo "== $1: $2 rc=$(cat /share/$1.rc) ($t0 -> $t1)"
    cat "/share/$1.json"; echo; cat "/share/$1.err"
}}
ip link set vec0 up
ip link set vec1 up
ip addr add {rin}/24 dev vec0
ip addr add {rout}/24 dev vec1
sysctl -qw net.ipv4.ip_forward=1
python3 -c "import importlib.metadata as m, pyroute2; print('PYROUTE2', m.version('pyroute2'), pyroute2.__file__)"
"""


def guest_prelude(payload_dir):
    return GUEST_PRELUDE.format(payload=payload_dir, rin=REPLICATOR_IN, rout=REPLICATOR_OUT)


def args_file(path, args):
    """bash: write {"ANSIBLE_MODULE_ARGS": args} to `path` inside the guest."""
    body = json.dumps({"ANSIBLE_MODULE_ARGS": dict(args, _ansible_diff=True)})
    return "cat >%s <<'LF_JSON'\n%s\nLF_JSON\n" % (path, body)


def module_result(res, name):
    share = Path(res.share)
    where = "\n--- guest output ---\n" + res.output
    try:
        rc = int((share / (name + ".rc")).read_text().strip())
        text = (share / (name + ".json")).read_text()
    except (FileNotFoundError, ValueError):
        raise AssertionError("module run %s did not happen%s" % (name, where))
    try:
        data = json.loads(text)
    except ValueError:
        raise AssertionError("module run %s printed no JSON (rc %d)%s" % (name, rc, where))
    data.pop("invocation", None)
    data["_rc"] = rc
    return data


def check_pyroute2(res):
    lines = [l for l in res.output.splitlines() if l.startswith("PYROUTE2 ")]
    assert lines, res.output
    _tag, version, path = lines[0].split()
    assert version == "0.7.2", lines[0]
    assert path.startswith("/usr/lib/python3/dist-packages/"), lines[0]


# --------------------------------------------------------------------------- host side

COLLECTOR = r"""
import json, select, socket, sys
ports = [int(p) for p in sys.argv[1].split(",")]
ifname = sys.argv[2]
six = len(sys.argv) > 3 and sys.argv[3] == "6"  # also UDP/IPv6: sockets on ::, UDP/IPv6 frames
socks = {}
for p in ports:
    for family, any_addr in ((socket.AF_INET, "0.0.0.0"),) + (((socket.AF_INET6, "::"),) if six else ()):
        s = socket.socket(family, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        if family == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.bind((any_addr, p))
        socks[s.fileno()] = (s, p)
raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
raw.bind((ifname, 0))
udp, frames = [], []

def drain():
    for fd, (s, p) in socks.items():
        while True:
            try:
                data, addr = s.recvfrom(65535, socket.MSG_DONTWAIT)
            except BlockingIOError:
                break
            udp.append([p, addr[0], addr[1], data.hex()])
    while True:
        try:
            data, addr = raw.recvfrom(65535, socket.MSG_DONTWAIT)
        except BlockingIOError:
            break
        # incoming only (PACKET_OUTGOING is 4): IPv4, and with six UDP/IPv6 without extension headers
        if addr[2] != 4 and (data[12:14] == b"\x08\x00" or six and data[12:14] == b"\x86\xdd" and data[20] == 17):
            frames.append(data.hex())

print("ready", flush=True)
while True:
    r, _w, _x = select.select(list(socks) + [raw.fileno(), 0], [], [], 5)
    drain()
    if 0 in r:
        break
print(json.dumps({"udp": udp, "frames": frames}), flush=True)
"""

EXPORTER = r"""
import socket, sys, time
n, dst = int(sys.argv[1]), sys.argv[2]
a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
a.bind((%r, %d))
b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
b.bind((%r, %d))
for i in range(n):
    a.sendto(b"<134>Jan  1 00:00:00 exp logfwdr-test: syslog %%03d" %% i, (dst, 514))
    b.sendto(b"logfwdr-test trap %%03d" %% i, (dst, 162))
    time.sleep(0.003)
""" % (EXPORTER_IP, SYSLOG_SPORT, EXPORTER_IP, TRAP_SPORT)


def syslog_payload(i):
    return b"<134>Jan  1 00:00:00 exp logfwdr-test: syslog %03d" % i


def trap_payload(i):
    return b"logfwdr-test trap %03d" % i


def start_collector(wire, ns, ports, six=False):
    proc = wire.popen(ns, [sys.executable, "-c", COLLECTOR, ",".join(map(str, ports)), "eth0"] + (["6"] if six else []),
                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline().strip()
    assert line == "ready", "collector in %s did not start: %r" % (ns, line)
    return proc


def stop_collector(proc):
    out, _err = proc.communicate("stop\n", timeout=30)
    return json.loads(out.strip().splitlines()[-1])


def csum16(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def mac_str(data):
    return ":".join("%02x" % b for b in data)


def parse_frame(frame):
    """Ethernet/IPv4/UDP frame -> dict; checksums recomputed from the bytes."""
    eth_dst, eth_src = mac_str(frame[0:6]), mac_str(frame[6:12])
    ip = frame[14:]
    ihl = (ip[0] & 0x0F) * 4
    total_len = struct.unpack("!H", ip[2:4])[0]
    ip = ip[:total_len]  # drop Ethernet padding
    out = {"dmac": eth_dst, "smac": eth_src, "version": ip[0] >> 4, "proto": ip[9], "ttl": ip[8],
           "src": ".".join(map(str, ip[12:16])), "dst": ".".join(map(str, ip[16:20])),
           "ip_csum_ok": csum16(ip[:ihl]) == 0xFFFF}
    if ip[9] == 17:
        udp = ip[ihl:]
        sport, dport, ulen, ucheck = struct.unpack("!HHHH", udp[:8])
        pseudo = ip[12:20] + struct.pack("!BBH", 0, 17, len(udp))
        out.update(sport=sport, dport=dport, ulen=ulen, udp_csum=ucheck,
                   udp_csum_ok=ucheck != 0 and csum16(pseudo + udp) == 0xFFFF,
                   payload=bytes(udp[8:ulen]))
    return out


def parse_snmp(text):
    lines = text.splitlines()
    out = {}
    for head, vals in zip(lines[::2], lines[1::2]):
        proto, keys = head.split(":", 1)
        _p, values = vals.split(":", 1)
        out[proto] = dict(zip(keys.split(), (int(v) for v in values.split())))
    return out


def find_dest(devices, dev, port, name):
    for d in devices:
        if d["name"] != dev:
            continue
        for p in d["ports"]:
            if p["port"] != port:
                continue
            for dest in p["destinations"]:
                if dest["name"] == name:
                    return p, dest
    raise AssertionError("no destination %s on %s udp/%d in %r" % (name, dev, port, devices))


# --------------------------------------------------------------------------- test 1

PRESENT = {"state": "present", "devices": [{"name": "vec0", "ports": [
    {"port": "syslog", "destinations": [{"address": COL_A_IP}, {"address": COL_B_IP, "sample": SAMPLE}]},
    {"port": "snmptrap", "destinations": [{"address": COL_A_IP, "rate_limit": RATE, "burst": BURST},
                                          {"address": COL_B_IP, "port": TRAP_REWRITE}]},
]}]}


def forward_script(payload_dir):
    return guest_prelude(payload_dir) + args_file("/tmp/present.json", PRESENT) + \
        args_file("/tmp/info.json", {}) + args_file("/tmp/absent.json", {"state": "absent"}) + r"""
runmod present1 tc_mirror /tmp/present.json
ip -4 neigh show
tc -s filter show dev vec0 ingress >/share/tc-present.txt 2>&1
cat /proc/net/snmp >/share/snmp-before
# act_police (6.1) starts a new packets-per-second bucket empty and fills it at the rate:
# the whole burst is there only burst/rate seconds after the rule was written
sleep %s
lf_ready
lf_wait_stop 90 || echo "lf_wait_stop timed out"
cat /proc/net/snmp >/share/snmp-after
runmod present2 tc_mirror /tmp/present.json
runmod info tc_mirror_info /tmp/info.json
echo "== tc -s filter show dev vec0 ingress (after traffic)"
tc -s filter show dev vec0 ingress
runmod absent tc_mirror /tmp/absent.json
tc filter show dev vec0 ingress >/share/tc-absent.txt 2>&1
echo "== tc filter show dev vec0 ingress (after absent)"
cat /share/tc-absent.txt
tc qdisc show dev vec0
""" % (BURST / RATE + 0.2)


def two_collectors(wire, script, exporters=()):
    """The exporter (and `exporters`, more addresses of its) on the ingress bridge, collectors A and B on the egress
    bridge, and the replicator guest started with `script`; the exporter knows the replicator's MAC, so there is no
    ARP race with the first datagrams.  Returns (exporter, collector A, collector B namespaces, guest)."""
    wire.bridge("ingress")
    wire.bridge("egress")
    exp, col_a, col_b = wire.name + "-exp", wire.name + "-ca", wire.name + "-cb"
    wire.attach_netns("ingress", exp, "eth0", cidr=EXPORTER_IP + "/24")
    for address in exporters:
        wire.exec(exp, ["ip", "addr", "add", address + "/24", "dev", "eth0"])
    wire.attach_netns("egress", col_a, "eth0", cidr=COL_A_IP + "/24", mac=COL_A_MAC)
    wire.attach_netns("egress", col_b, "eth0", cidr=COL_B_IP + "/24", mac=COL_B_MAC)
    # the collectors have no route back to the exporters' subnet: keep rp_filter out of the way
    for ns in (col_a, col_b):
        wire.exec(ns, ["sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0",
                       "net.ipv4.conf.default.rp_filter=0", "net.ipv4.conf.eth0.rp_filter=0"])
    g = wire.start_guest("replicator", bridges=["ingress", "egress"], script=script, timeout=150)
    wire.exec(exp, ["ip", "neigh", "replace", REPLICATOR_IN, "lladdr", g.macs[0], "dev", "eth0"])
    return exp, col_a, col_b, g


def test_forward_two_collectors(wire, payload):
    t0 = time.monotonic()
    exp, col_a, col_b, g = two_collectors(wire, forward_script(payload))
    vec0_mac, vec1_mac = g.macs
    rx_a = start_collector(wire, col_a, [514, 162])
    rx_b = start_collector(wire, col_b, [514, TRAP_REWRITE])

    g.wait_ready(timeout=90)
    t_ready = time.monotonic()
    wire.exec(exp, [sys.executable, "-c", EXPORTER, str(N), REPLICATOR_IN])
    time.sleep(1.0)  # copies in flight through the guest
    g.stop()
    res = g.wait()
    got_a, got_b = stop_collector(rx_a), stop_collector(rx_b)
    for ns in (col_a, col_b):  # diagnostics: InAddrErrors, InCsumErrors, ...
        counters = parse_snmp(wire.exec(ns, ["cat", "/proc/net/snmp"]).stdout)
        print("collector %s: Ip %r Udp %r" % (ns, counters["Ip"], counters["Udp"]))
    out = res.output
    print(out)
    print("timings: boot-to-script %.2fs, start-to-ready %.1fs, guest total %.1fs, test %.1fs"
          % (res.boot_seconds or -1, t_ready - t0, res.duration, time.monotonic() - t0))
    assert res.rc == 0, out + "\n" + res.console[-2000:]
    check_pyroute2(res)

    # ---- the module resolved egress device and next-hop MACs by itself
    first = module_result(res, "present1")
    assert first["_rc"] == 0 and first["changed"] is True and not first.get("failed"), first
    for port in (514, 162):
        for ip, mac in ((COL_A_IP, COL_A_MAC), (COL_B_IP, COL_B_MAC)):
            pinfo, dest = find_dest(first["devices"], "vec0", port, ip)
            assert dest["mode"] == "forward" and dest["device"] == "vec1", dest
            assert dest["next_hop_mac"] == mac, dest
            assert pinfo["original"] == "drop", pinfo
    assert find_dest(first["devices"], "vec0", 162, COL_B_IP)[1]["port"] == TRAP_REWRITE
    dest = find_dest(first["devices"], "vec0", 162, COL_A_IP)[1]
    assert (dest["rate_limit"], dest["burst"]) == (RATE, BURST), dest

    # ---- idempotence: same state again, nothing to do (and no node replaced: see counters)
    second = module_result(res, "present2")
    assert second["_rc"] == 0 and second["changed"] is False and second["commands"] == [], second
    assert second["devices"] == first["devices"]

    # ---- what the collectors' UDP sockets got
    for label, got in (("A", got_a), ("B", got_b)):
        ports_seen = {}
        for p, _src, _sport, _data in got["udp"]:
            ports_seen[p] = ports_seen.get(p, 0) + 1
        print("collector %s: udp per port %r, %d IPv4 frames" % (label, ports_seen, len(got["frames"])))

    def by_port(got, port):
        return [(src, sport, bytes.fromhex(data)) for p, src, sport, data in got["udp"] if p == port]

    # ---- the frames on the collectors' wire: MACs, addresses, checksums; nothing else
    frames_a = [parse_frame(bytes.fromhex(f)) for f in got_a["frames"]]
    frames_b = [parse_frame(bytes.fromhex(f)) for f in got_b["frames"]]
    traps_a_wire = [f for f in frames_a if f.get("dport") == 162]
    for frames, ip, mac, ports, expected in (
            (frames_a, COL_A_IP, COL_A_MAC, {514: SYSLOG_SPORT, 162: TRAP_SPORT}, N + len(traps_a_wire)),
            (frames_b, COL_B_IP, COL_B_MAC, {514: SYSLOG_SPORT, TRAP_REWRITE: TRAP_SPORT}, N // SAMPLE + N)):
        for f in frames:
            assert f["proto"] == 17, f
            assert (f["dmac"], f["smac"]) == (mac, vec1_mac), f
            assert (f["src"], f["dst"]) == (EXPORTER_IP, ip), (
                "copy to %s carries source %s and destination %s: %r" % (ip, f["src"], f["dst"], f))
            assert f["dport"] in ports and f["sport"] == ports[f["dport"]], f
            assert f["ip_csum_ok"], "bad IP header checksum: %r" % f
            assert f["udp_csum_ok"], "UDP checksum zero or wrong: %r" % f
        assert len(frames) == expected, "%s saw %d IPv4 frames, expected %d" % (ip, len(frames), expected)
    assert BURST <= len(traps_a_wire) < N, "rate limit %d/s burst %d let %d of %d traps through" % (
        RATE, BURST, len(traps_a_wire), N)

    syslog_all = [(EXPORTER_IP, SYSLOG_SPORT, syslog_payload(i)) for i in range(N)]
    traps_all = [(EXPORTER_IP, TRAP_SPORT, trap_payload(i)) for i in range(N)]
    assert sorted(by_port(got_a, 514)) == sorted(syslog_all)
    # 1-in-N sampling is deterministic: the kernel's count starts at the rule, so it is the 4th, 8th, ... datagram
    # (A, unsampled, got all of them from the same node table)
    assert sorted(by_port(got_b, 514)) == sorted(syslog_all[SAMPLE - 1::SAMPLE]), by_port(got_b, 514)
    assert sorted(by_port(got_b, TRAP_REWRITE)) == sorted(traps_all)
    traps_a = by_port(got_a, 162)
    assert len(set(traps_a)) == len(traps_a), "duplicates: %r" % traps_a
    assert set(traps_a) <= set(traps_all), traps_a
    assert sorted(traps_a) == sorted((f["src"], f["sport"], f["payload"]) for f in traps_a_wire)

    # ---- the original was consumed: neither delivered in the guest nor routed again
    before = parse_snmp(Path(res.share, "snmp-before").read_text())
    after = parse_snmp(Path(res.share, "snmp-after").read_text())
    delta = dict((k, after["Udp"][k] - before["Udp"][k]) for k in ("InDatagrams", "NoPorts", "InErrors"))
    ip_delta = dict((k, after["Ip"][k] - before["Ip"][k]) for k in ("InReceives", "ForwDatagrams",
                                                                    "InDelivers"))
    print("guest counter deltas over the traffic: Udp %r Ip %r" % (delta, ip_delta))
    assert delta == {"InDatagrams": 0, "NoPorts": 0, "InErrors": 0}, (delta, ip_delta)
    assert ip_delta["InReceives"] < N and ip_delta["ForwDatagrams"] == 0, ip_delta

    # ---- tc_mirror_info counters against what the collectors got
    info = module_result(res, "info")
    assert info["_rc"] == 0 and info["changed"] is False, info
    expect_packets = {(514, COL_A_IP): N, (514, COL_B_IP): N // SAMPLE, (162, COL_A_IP): len(traps_a),
                      (162, COL_B_IP): N}
    for (port, ip), packets in expect_packets.items():
        pinfo, dest = find_dest(info["devices"], "vec0", port, ip)
        assert pinfo["original_dropped"] == N, pinfo
        assert dest["counters"]["packets"] == packets, (port, ip, dest)
        if (port, ip) == (162, COL_A_IP):
            assert dest["counters"]["rate_limited"] > 0, dest
            assert dest["counters"]["rate_limited"] + packets == N, dest
        else:
            assert dest["counters"]["rate_limited"] == 0, dest
    # info reports the same state tc_mirror was given (without counters and drop totals)
    stripped = json.loads(json.dumps(info["devices"]))
    for d in stripped:
        for p in d["ports"]:
            p.pop("original_dropped")
            assert p.pop("refused") == 0, p  # Debian's kernel counts what the dispatch match refused: nothing here
            for dest in p["destinations"]:
                dest.pop("counters")
    assert stripped == first["devices"]

    # ---- state absent removes the module's classifier
    absent = module_result(res, "absent")
    assert absent["_rc"] == 0 and absent["changed"] is True and absent["devices"] == [], absent
    assert "pref %d" % PRIORITY not in Path(res.share, "tc-absent.txt").read_text()


# --------------------------------------------------------------------------- test 2

def _state(port_dests):
    # pending: fail (logfwdr_require_all_collectors): an unanswered ARP fails the run, as this test wants
    return {"state": "present", "pending": "fail", "devices": [{"name": "vec0", "ports": [
        {"port": port, "destinations": dests} for port, dests in port_dests]}]}


GOOD = _state([("syslog", [{"address": COL_A_IP}])])
BAD_FRESH = _state([("syslog", [{"address": UNUSED_IP}])])
BAD_CHANGE = _state([("syslog", [{"address": COL_A_IP}, {"address": UNUSED_IP}]),
                     ("snmptrap", [{"address": COL_A_IP}])])


def arp_script(payload_dir):
    return guest_prelude(payload_dir) + args_file("/tmp/good.json", GOOD) + \
        args_file("/tmp/bad1.json", BAD_FRESH) + args_file("/tmp/bad2.json", BAD_CHANGE) + r"""
snap() {
    { tc filter show dev vec0 ingress; echo "-- qdisc"; tc qdisc show dev vec0;
      echo "-- neigh"; ip -4 neigh show dev vec1; } >"/share/$1.snap" 2>&1
    echo "== snapshot $1"; cat "/share/$1.snap"
}
snap s0
runmod bad1 tc_mirror /tmp/bad1.json
snap s1
runmod good tc_mirror /tmp/good.json
snap s2
runmod bad2 tc_mirror /tmp/bad2.json
snap s3
"""


def test_forward_next_hop_without_arp_changes_nothing(wire, payload):
    t0 = time.monotonic()
    wire.bridge("ingress")
    wire.bridge("egress")
    wire.attach_netns("ingress", wire.name + "-exp", "eth0", cidr=EXPORTER_IP + "/24")
    wire.attach_netns("egress", wire.name + "-ca", "eth0", cidr=COL_A_IP + "/24", mac=COL_A_MAC)
    res = wire.guest("replicator", bridges=["ingress", "egress"], script=arp_script(payload), timeout=150)
    print(res.output)
    print("timings: guest total %.1fs, test %.1fs" % (res.duration, time.monotonic() - t0))
    assert res.rc == 0, res.output + "\n" + res.console[-2000:]
    check_pyroute2(res)
    snap = dict((s, Path(res.share, s + ".snap").read_text()) for s in ("s0", "s1", "s2", "s3"))

    for name in ("bad1", "bad2"):
        bad = module_result(res, name)
        assert bad["_rc"] != 0 and bad.get("failed") is True and bad["changed"] is False, bad
        assert "did not answer ARP" in bad["msg"] and UNUSED_IP in bad["msg"], bad["msg"]
        assert "nothing was changed" in bad["msg"], bad["msg"]
        assert not any("did not answer ARP" in p and COL_A_IP in p for p in bad.get("problems", [])), bad

    # from a clean device: not even the ingress qdisc appeared
    assert snap["s1"] == snap["s0"], (snap["s0"], snap["s1"])
    assert "ingress" not in snap["s1"].split("-- qdisc")[1].split("-- neigh")[0]

    good = module_result(res, "good")
    assert good["_rc"] == 0 and good["changed"] is True, good
    assert "pref %d" % PRIORITY in snap["s2"]
    # with the module's rules in place: the failed run left them exactly as they were
    assert snap["s3"] == snap["s2"], (snap["s2"], snap["s3"])


# --------------------------------------------------------------------------- test 3

CAP, CAP_BURST, FLOOD = 50, 50, 1000
CAPPED = {"state": "present", "devices": [{"name": "vec0", "addresses": [REPLICATOR_IN], "ports": [
    {"port": "syslog", "rate_limit": CAP, "burst": CAP_BURST,
     "destinations": [{"address": COL_A_IP}, {"address": COL_B_IP}]}]}]}

FLOODER = r"""
import socket, sys, time
n, dst = int(sys.argv[1]), sys.argv[2]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((%r, %d))
t0 = time.monotonic()
for i in range(n):
    s.sendto(b"<134>Jan  1 00:00:00 exp flood %%04d" %% i, (dst, 514))
print("%%.3f" %% (time.monotonic() - t0))
""" % (EXPORTER_IP, SYSLOG_SPORT)


SPOOFER = r"""
import socket, struct, sys
dmac, smac, src, dst, n = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
payload = b"<134>Jan  1 00:00:00 exp forged"
udp = struct.pack("!HHHH", 40000, 514, 8 + len(payload), 0) + payload
ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0, socket.inet_aton(src),
                 socket.inet_aton(dst))
words = struct.unpack("!10H", ip)
total = sum(words)
while total >> 16:
    total = (total & 0xFFFF) + (total >> 16)
ip = ip[:10] + struct.pack("!H", ~total & 0xFFFF) + ip[12:]
frame = bytes.fromhex(dmac.replace(":", "")) + bytes.fromhex(smac.replace(":", "")) + b"\x08\x00" + ip + udp
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("eth0", 0))
for _ in range(n):
    s.send(frame)
"""
SPOOFED, MISADDRESSED = 30, 20


def cap_script(payload_dir):
    return guest_prelude(payload_dir) + args_file("/tmp/capped.json", CAPPED) + \
        args_file("/tmp/info.json", {}) + r"""
runmod capped tc_mirror /tmp/capped.json
sleep %s
lf_ready
lf_wait_stop 90 || echo "lf_wait_stop timed out"
runmod info tc_mirror_info /tmp/info.json
""" % (CAP_BURST / CAP + 0.2)


def test_a_flood_is_capped_in_front_of_every_copy(wire, payload):
    """1,000 datagrams at the sender's speed: at most rate x time + burst are copied, the same ones to every
    collector (the cap counts packets, not copies), and the kernel counts the rest."""
    exp, col_a, col_b, g = two_collectors(wire, cap_script(payload))
    vec0_mac = g.macs[0]
    rx_a, rx_b = start_collector(wire, col_a, [514]), start_collector(wire, col_b, [514])
    g.wait_ready(timeout=90)
    seconds = float(wire.exec(exp, [sys.executable, "-c", FLOODER, str(FLOOD), REPLICATOR_IN]).stdout.strip())
    # an attacker on the segment: a forged source, and the replicator's MAC with another destination address
    exp_mac = json.loads(wire.exec(exp, ["ip", "-j", "link", "show", "dev", "eth0"]).stdout)[0]["address"]
    for src, dst, count in (("198.51.100.7", REPLICATOR_IN, SPOOFED), (EXPORTER_IP, "192.0.2.99", MISADDRESSED)):
        wire.exec(exp, [sys.executable, "-c", SPOOFER, vec0_mac, exp_mac, src, dst, str(count)])
    time.sleep(1.0)
    g.stop()
    res = g.wait()
    got_a, got_b = stop_collector(rx_a), stop_collector(rx_b)
    print(res.output)
    assert res.rc == 0, res.output + "\n" + res.console[-2000:]
    capped = module_result(res, "capped")
    assert capped["_rc"] == 0 and capped["changed"] is True, capped
    a = sorted(bytes.fromhex(d) for p, _s, _sp, d in got_a["udp"] if p == 514)
    b = sorted(bytes.fromhex(d) for p, _s, _sp, d in got_b["udp"] if p == 514)
    allowed = CAP * seconds + CAP_BURST + CAP  # one more second of tokens for the copies still in flight
    print("flood of %d in %.2f s: %d copied to A, %d to B (allowed at most %d)"
          % (FLOOD, seconds, len(a), len(b), allowed))
    assert CAP_BURST <= len(a) <= allowed, len(a)
    assert a == b  # the cap is in front of all copies: the same packets reach every collector
    info = module_result(res, "info")
    port, dest = find_dest(info["devices"], "vec0", 514, COL_A_IP)
    assert port["rate_limit"] == CAP and port["capped"] + dest["counters"]["packets"] == FLOOD, (port, dest)
    assert dest["counters"]["packets"] == len(a), dest
    # the forged and misaddressed datagrams: not copied, counted (Debian's kernel keeps u32 per-key counters)
    assert not [d for d in a if b"forged" in d]
    assert port["refused"] == SPOOFED + MISADDRESSED, port


# --------------------------------------------------------------------------- test 4

POOL_EXPORTERS = ["192.0.2.%d" % i for i in range(30, 62)]  # 32 exporters
POOL_SENDS = 3
POOLED = {"state": "present", "devices": [{"name": "vec0", "ports": [
    {"port": "netflow", "destinations": [{"address": ip, "pool": "flows"} for ip in (COL_A_IP, COL_B_IP, UNUSED_IP)]}]}]}

POOL_SENDER = r"""
import socket, sys, time
dst, n = sys.argv[1], int(sys.argv[2])
for address in sys.argv[3:]:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((address, 42055))
    for i in range(n):
        s.sendto(("flow %s %d" % (address, i)).encode(), (dst, 2055))
        time.sleep(0.002)
"""


def pool_script(payload_dir):
    return guest_prelude(payload_dir) + args_file("/tmp/pooled.json", POOLED) + \
        args_file("/tmp/info.json", {}) + r"""
runmod pooled tc_mirror /tmp/pooled.json
tc filter show dev vec0 ingress | grep -c "fh " || true
lf_ready
lf_wait_stop 90 || echo "lf_wait_stop timed out"
runmod pooled2 tc_mirror /tmp/pooled.json
runmod info tc_mirror_info /tmp/info.json
"""


def test_a_pool_sends_each_exporter_to_one_collector(wire, payload):
    """Three forward members, one of them pending (nobody answers ARP): 32 exporters, each exporter's datagrams
    all at one collector, rewritten for it with valid checksums, the pending member's exporters at its runner-up."""
    from ansible_collections.netops.logfwdr.plugins.module_utils.tc.layout import pool_buckets
    exp, col_a, col_b, g = two_collectors(wire, pool_script(payload), exporters=POOL_EXPORTERS)
    vec0_mac, vec1_mac = g.macs
    rx_a, rx_b = start_collector(wire, col_a, [2055]), start_collector(wire, col_b, [2055])
    g.wait_ready(timeout=90)
    wire.exec(exp, [sys.executable, "-c", POOL_SENDER, REPLICATOR_IN, str(POOL_SENDS)] + POOL_EXPORTERS)
    time.sleep(1.0)
    g.stop()
    res = g.wait()
    got = {COL_A_IP: stop_collector(rx_a), COL_B_IP: stop_collector(rx_b)}
    print(res.output)
    assert res.rc == 0, res.output + "\n" + res.console[-2000:]
    first = module_result(res, "pooled")
    assert first["_rc"] == 0 and first["changed"] is True, first
    assert UNUSED_IP in json.dumps(first.get("pending")), first.get("pending")
    assert module_result(res, "pooled2")["changed"] is False

    owner = {}
    for ip, mac in ((COL_A_IP, COL_A_MAC), (COL_B_IP, COL_B_MAC)):
        by_exporter = {}
        for _p, src, _sport, data in got[ip]["udp"]:
            text = bytes.fromhex(data).decode()
            assert text.startswith("flow %s " % src), (src, text)  # the exporter's own address is kept
            by_exporter.setdefault(src, []).append(text)
        for src, texts in by_exporter.items():
            assert src not in owner, "%s reached %s and %s" % (src, owner[src], ip)
            assert sorted(texts) == ["flow %s %d" % (src, i) for i in range(POOL_SENDS)], texts  # whole, once
            owner[src] = ip
        for f in (parse_frame(bytes.fromhex(x)) for x in got[ip]["frames"]):
            if f.get("dport") != 2055:
                continue
            assert (f["dmac"], f["smac"], f["dst"]) == (mac, vec1_mac, ip), f
            assert f["src"] in POOL_EXPORTERS and f["ip_csum_ok"] and f["udp_csum_ok"], f
    assert sorted(owner) == sorted(POOL_EXPORTERS)  # none lost
    assert set(owner.values()) == {COL_A_IP, COL_B_IP}  # both answering members get some
    # the pending member holds no exporter: each of its buckets went to that bucket's runner-up
    chosen = pool_buckets([{"name": COL_A_IP}, {"name": COL_B_IP}])
    assert all(owner[a] == chosen[int(a.split(".")[-1])]["name"] for a in POOL_EXPORTERS)
    info = module_result(res, "info")
    for ip in (COL_A_IP, COL_B_IP):
        _port, dest = find_dest(info["devices"], "vec0", 2055, ip)
        assert dest["pool"] == "flows" and dest["counters"]["packets"] == POOL_SENDS * list(owner.values()).count(ip)


# --------------------------------------------------------------------------- test 5

FRAG_SIZES = (3000, 9000)  # UDP payload bytes: 3 and 7 fragments at the exporter's MTU of 1500
FRAG_EACH = 5
MISADDRESSED_IP = "192.0.2.99"  # not an address of the replicator's; the exporter sends it to the replicator's MAC
REASSEMBLED = {"state": "present", "devices": [{"name": "vec0", "addresses": [REPLICATOR_IN], "fragments": "reassemble",
                                                "ports": [
    {"port": "syslog", "destinations": [{"address": COL_A_IP}, {"address": COL_B_IP}]},
    {"port": "snmptrap", "destinations": [{"address": COL_A_IP}]},
    {"port": "ipfix", "destinations": [{"address": COL_B_IP}]}]}]}

FRAG_SENDER = r"""
import json, socket, sys, time
dst, misaddressed, source, path = sys.argv[1:5]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((source, 40514))
for port, data in json.load(open(path)):
    s.sendto(bytes.fromhex(data), (misaddressed if port == 0 else dst, port or 514))
    time.sleep(0.01)
"""

SNMPTRAPD_CONF = "disableAuthorization yes\n"


def ber(tag, body):
    """One BER TLV (definite length)."""
    if len(body) < 0x80:
        return bytes([tag, len(body)]) + body
    raw = len(body).to_bytes((len(body).bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(raw)]) + raw + body


def ber_oid(text):
    parts = [int(x) for x in text.split(".")]
    out = [parts[0] * 40 + parts[1]]
    for part in parts[2:]:
        chunk = [part & 0x7F]
        while part > 0x7F:
            part >>= 7
            chunk.insert(0, 0x80 | (part & 0x7F))
        out += chunk
    return ber(0x06, bytes(out))


def snmp_trap(size, text, request_id):
    """An SNMPv2c trap (community public) of exactly `size` bytes: sysUpTime, snmpTrapOID and one string varbind
    that starts with `text` and is padded with x to the size."""
    def build(pad):
        binds = (ber(0x30, ber_oid("1.3.6.1.2.1.1.3.0") + ber(0x43, b"\x01")) +
                 ber(0x30, ber_oid("1.3.6.1.6.3.1.1.4.1.0") + ber_oid(TRAP_OID)) +
                 ber(0x30, ber_oid(TRAP_VARBIND) + ber(0x04, text.encode() + b"x" * pad)))
        pdu = ber(0xA7, ber(0x02, request_id.to_bytes(2, "big")) + ber(0x02, b"\0") + ber(0x02, b"\0") +
                  ber(0x30, binds))
        return ber(0x30, ber(0x02, b"\x01") + ber(0x04, b"public") + pdu)
    pad = size - len(build(0))
    for _i in range(4):  # a longer length field can need a second pass
        msg = build(pad)
        if len(msg) == size:
            return msg
        pad += size - len(msg)
    raise ValueError("no trap of exactly %d bytes" % size)


TRAP_OID, TRAP_VARBIND = "1.3.6.1.4.1.8072.2.3.0.1", "1.3.6.1.4.1.8072.2.3.2.1"


def snmptrapd_traps(log):
    """snmptrapd -F '%b|%v' log lines -> [(source address, source port, string varbind)]."""
    out = []
    for line in log.splitlines():
        match = re.match(r"UDP: \[([0-9.]+)\]:(\d+)->\[[0-9.]+\]:162\|(.*)$", line)
        if match:
            value = re.search(r"\.%s = STRING: \"([^\"]*)\"" % re.escape(TRAP_VARBIND), match.group(3))
            out.append((match.group(1), int(match.group(2)), value.group(1) if value else None))
    return out


RSYSLOG_COLLECTOR = """
global(maxMessageSize="64k" workDirectory="{d}")
module(load="imudp")
input(type="imudp" port="514")
template(name="lf" type="string" string="%fromhost-ip% %rawmsg%\\n")
*.* action(type="omfile" file="{d}/syslog.log" template="lf")
"""


# IPFIX (RFC 7011) template 256: sourceIPv4Address, destinationIPv4Address, sourceTransportPort,
# destinationTransportPort, protocolIdentifier, octetDeltaCount, packetDeltaCount, flowStartSeconds, flowEndSeconds
IPFIX_FIELDS = [(8, 4), (12, 4), (7, 2), (11, 2), (4, 1), (1, 8), (2, 8), (150, 4), (151, 4)]
IPFIX_RECORD = sum(length for _id, length in IPFIX_FIELDS)


def ipfix_flows(size, i):
    """The flows of IPFIX message `i` of about `size` bytes: [(source address, packets)], each flow its own."""
    count = (size - 16 - 4 - 4 - 4 * len(IPFIX_FIELDS) - 4) // IPFIX_RECORD
    return [("10.%d.%d.%d" % (size // 1000, i, n), 1 + n) for n in range(count)]


def ipfix_message(size, i):
    """An IPFIX message (a template set and one data set) of at most `size` bytes."""
    template = struct.pack("!HH", 256, len(IPFIX_FIELDS)) + b"".join(struct.pack("!HH", f, n) for f, n in IPFIX_FIELDS)
    records = b"".join(socket.inet_aton(src) + socket.inet_aton("192.0.2.1") +
                       struct.pack("!HHBQQII", 1000 + i, 53, 17, 100 * packets, packets, 1764921600, 1764921610)
                       for src, packets in ipfix_flows(size, i))
    body = struct.pack("!HH", 2, 4 + len(template)) + template + struct.pack("!HH", 256, 4 + len(records)) + records
    return struct.pack("!HHIII", 10, 16 + len(body), 1764921610, i, 1) + body


def big_payload(port, size, i):
    """A syslog message (514), a real SNMPv2c trap (162) of exactly `size` bytes, or an IPFIX message (4739) of
    at most `size` bytes."""
    head = "<134>big %d %d %d " % (port, size, i) if port == 514 else "big %d %d %d " % (port, size, i)
    if port == 162:
        return snmp_trap(size, head, i + 1)
    if port == 4739:
        return ipfix_message(size, i)
    return head.encode() + b"x" * (size - len(head))


def reassemble_frames(frames):
    """IPv4 frames -> {(src, ip id): (dst, sport, dport, payload, udp checksum ok, fragments)}: every datagram put
    back together from its fragments here, its UDP checksum recomputed over the whole datagram."""
    parts = {}
    for raw in frames:
        ip = raw[14:]
        ihl = (ip[0] & 0x0F) * 4
        total = struct.unpack("!H", ip[2:4])[0]
        ip = ip[:total]
        assert csum16(ip[:ihl]) == 0xFFFF, "bad IP header checksum in a fragment"
        ident, frag = struct.unpack("!HH", ip[4:8])
        key = (".".join(map(str, ip[12:16])), ident)
        parts.setdefault(key, []).append(((frag & 0x1FFF) * 8, bool(frag & 0x2000), ip[:20], ip[ihl:]))
    out = {}
    for key, pieces in parts.items():
        pieces.sort(key=lambda p: p[0])
        data, complete = b"", not pieces[-1][1]
        for off, _mf, _hdr, body in pieces:
            complete = complete and off == len(data)
            data += body
        assert complete, "datagram %r: fragments missing or overlapping" % (key,)
        hdr = pieces[0][2]
        sport, dport, ulen, ucheck = struct.unpack("!HHHH", data[:8])
        pseudo = hdr[12:20] + struct.pack("!BBH", 0, 17, len(data))
        out[key] = (".".join(map(str, hdr[16:20])), sport, dport, data[8:ulen],
                    ucheck != 0 and csum16(pseudo + data) == 0xFFFF, len(pieces))
    return out


def frag_script(payload_dir):
    return guest_prelude(payload_dir) + args_file("/tmp/reasm.json", REASSEMBLED) + \
        args_file("/tmp/info.json", {}) + r"""
runmod reasm tc_mirror /tmp/reasm.json
lf_ready
lf_wait_stop 90 || echo "lf_wait_stop timed out"
runmod reasm2 tc_mirror /tmp/reasm.json
runmod info tc_mirror_info /tmp/info.json
nstat -az IpReasmOKs IpReasmFails IpFragCreates
"""


def test_fragmented_datagrams_arrive_whole_where_their_port_goes(wire, payload, tmp_path):
    """`fragments: reassemble`: datagrams of 3,000 and 9,000 bytes (3 and 7 fragments) reach every collector of
    their port complete, with the exporter's source address and a valid UDP checksum over the whole datagram;
    collector B (syslog only) gets no fragment of the traps; a fragmented datagram to another address is
    reassembled and then refused like any misaddressed one.  The collectors are real: B's syslog is rsyslogd, A's
    traps (real SNMPv2c traps) go to snmptrapd, B's IPFIX (a template set and 79 or 241 flows) to nfcapd."""
    exp, col_a, col_b, g = two_collectors(wire, frag_script(payload))
    vec0_mac, vec1_mac = g.macs
    wire.exec(exp, ["ip", "neigh", "replace", MISADDRESSED_IP, "lladdr", vec0_mac, "dev", "eth0"])
    conf = tmp_path / "rsyslog.conf"
    conf.write_text(RSYSLOG_COLLECTOR.format(d=tmp_path))
    rsyslogd = wire.popen(col_b, ["rsyslogd", "-n", "-f", str(conf), "-i", str(tmp_path / "rsyslog.pid")],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    (tmp_path / "snmptrapd.conf").write_text(SNMPTRAPD_CONF)
    trap_log = tmp_path / "traps.log"
    snmptrapd = wire.popen(col_a, ["env", "SNMP_PERSISTENT_DIR=%s" % tmp_path, "snmptrapd", "-f", "-C", "-c",
                                   str(tmp_path / "snmptrapd.conf"), "-m", "", "-On", "-Lf", str(trap_log),
                                   "-F", "%b|%v\n", "udp:%s:162" % COL_A_IP],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    flow_dir = tmp_path / "flows"
    flow_dir.mkdir()
    nfcapd = wire.popen(col_b, ["nfcapd", "-w", str(flow_dir), "-b", COL_B_IP, "-p", "4739", "-t", "3600",
                                "-P", str(tmp_path / "nfcapd.pid")], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    rx_a, rx_b = start_collector(wire, col_a, [514]), start_collector(wire, col_b, [9])
    sent = [(port, big_payload(port, size, i)) for port in (514, 162, 4739) for size in FRAG_SIZES
            for i in range(FRAG_EACH)]
    sent += [(0, big_payload(514, FRAG_SIZES[0], 99)), (514, b"<134>small")]  # port 0: to MISADDRESSED_IP
    (tmp_path / "sent.json").write_text(json.dumps([(port, data.hex()) for port, data in sent]))
    g.wait_ready(timeout=90)
    for _i in range(100):  # snmptrapd logs its version once it listens; nfcapd writes its pid file
        if trap_log.exists() and "NET-SNMP version" in trap_log.read_text() and (tmp_path / "nfcapd.pid").exists():
            break
        time.sleep(0.1)
    wire.exec(exp, [sys.executable, "-c", FRAG_SENDER, REPLICATOR_IN, MISADDRESSED_IP, EXPORTER_IP,
                    str(tmp_path / "sent.json")])
    time.sleep(1.5)
    g.stop()
    res = g.wait()
    got_a, got_b = stop_collector(rx_a), stop_collector(rx_b)
    time.sleep(0.5)  # rsyslogd's omfile writes asynchronously
    for daemon in (rsyslogd, snmptrapd, nfcapd):
        daemon.terminate()  # nfcapd writes its flow file out on SIGTERM
    _out, err = rsyslogd.communicate(timeout=30)
    _out, trap_err = snmptrapd.communicate(timeout=30)
    nfcapd_out, _err = nfcapd.communicate(timeout=30)
    print(res.output)
    assert res.rc == 0, res.output + "\n" + res.console[-2000:]
    first = module_result(res, "reasm")
    assert first["_rc"] == 0 and first["changed"] is True, first
    assert first["devices"][0]["fragments"] == "reassemble"
    assert module_result(res, "reasm2")["changed"] is False

    def wanted(port):
        return sorted(big_payload(port, size, i) for size in FRAG_SIZES for i in range(FRAG_EACH))

    # collector A's syslog socket: every syslog datagram, whole, once, from the exporter's own address
    got = sorted(bytes.fromhex(d) for p, src, sport, d in got_a["udp"] if p == 514 and src == EXPORTER_IP)
    assert got == sorted(wanted(514) + [b"<134>small"]), [(len(x), x[:24]) for x in got]
    assert len(got_a["udp"]) == len(FRAG_SIZES) * FRAG_EACH + 1
    # collector A's snmptrapd decoded every trap, 3,000 and 9,000 bytes, once, from the exporter's address
    traps = snmptrapd_traps(trap_log.read_text())
    # the string varbind is the message's last field: its value runs from its text to the end
    expected = sorted((EXPORTER_IP, 40514, trap[trap.index(b"big 162 "):].decode()) for trap in wanted(162))
    assert sorted(traps) == expected, ([(t[0], t[1], (t[2] or "")[:20], len(t[2] or "")) for t in traps],
                                       trap_err[-2000:])
    # the wire: each copy refragmented by the replicator, every fragment addressed to its collector, and every
    # datagram's UDP checksum right over the whole datagram
    for got, ip, mac, ports in ((got_a, COL_A_IP, COL_A_MAC, (514, 162)), (got_b, COL_B_IP, COL_B_MAC, (514, 4739))):
        frames = [bytes.fromhex(f) for f in got["frames"]]
        for f in frames:
            assert (mac_str(f[0:6]), mac_str(f[6:12])) == (mac, vec1_mac)
        datagrams = reassemble_frames(frames)
        assert len(datagrams) == len(ports) * len(FRAG_SIZES) * FRAG_EACH + 1, sorted(datagrams)
        for (src, _ident), (dst, sport, dport, data, csum_ok, pieces) in datagrams.items():
            assert (src, dst, sport) == (EXPORTER_IP, ip, 40514) and dport in ports, (src, dst, sport, dport)
            assert csum_ok, "UDP checksum wrong over the reassembled datagram to %s: %r" % (ip, data[:24])
            assert pieces == (1 if len(data) < 1400 else -(-(len(data) + 8) // 1480)), (len(data), pieces)
        assert sorted(d[3] for d in datagrams.values()) == sorted(
            sum((wanted(p) for p in ports), []) + [b"<134>small"])
    # collector B's rsyslogd: the syslog datagrams, whole, from the exporter's address; no trap, nothing else
    lines = (tmp_path / "syslog.log").read_text().splitlines()
    assert sorted(lines) == sorted("%s %s" % (EXPORTER_IP, m.decode()) for m in wanted(514) + [b"<134>small"]), (
        [l[:40] for l in lines], err)
    # collector B's nfcapd: every flow of the IPFIX messages (of about 3,000 and 9,000 bytes), each once, with the
    # exporter's address as the exporting router's
    flows = subprocess.run(["nfdump", "-R", str(flow_dir), "-q", "-N", "-o", "fmt:%sa|%pkt|%ra"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, check=False)
    got_flows = sorted(tuple(x.strip() for x in line.split("|")) for line in flows.stdout.splitlines() if "|" in line)
    assert got_flows == sorted((src, str(packets), EXPORTER_IP) for size in FRAG_SIZES for i in range(FRAG_EACH)
                               for src, packets in ipfix_flows(size, i)), (flows.stdout[-2000:], nfcapd_out[-2000:])
    # the kernel's counters: every fragment seen, each fragmented datagram (the misaddressed one too) reassembled
    # once; the misaddressed one refused by the dispatch nodes, not copied
    info = module_result(res, "info")
    dev = info["devices"][0]
    fragmented = [len(data) for _port, data in sent if len(data) + 28 > 1500]
    assert dev["reassembly"] == {"fragments": sum(-(-(n + 8) // 1480) for n in fragmented),
                                 "datagrams": len(fragmented)}, dev
    syslog = [p for p in dev["ports"] if p["port"] == 514][0]
    assert syslog["refused"] == 1, syslog
    for dest in syslog["destinations"]:
        assert dest["counters"]["packets"] == len(FRAG_SIZES) * FRAG_EACH + 1, dest
    (ipfix,) = [p["destinations"] for p in dev["ports"] if p["port"] == 4739]
    assert [d["counters"]["packets"] for d in ipfix] == [len(FRAG_SIZES) * FRAG_EACH], ipfix


# --------------------------------------------------------------------------- IPv6 forward

EXPORTER6, REPLICATOR_IN6, REPLICATOR_OUT6 = "fd00:20::20", "fd00:20::1", "fd00:51::1"
COL_A6, COL_B6 = "fd00:51::10", "fd00:51::11"
V6_REWRITE = 10514

V6_STATE = {"state": "present", "devices": [{"name": "vec0", "addresses": [REPLICATOR_IN, REPLICATOR_IN6],
                                             "sources": ["192.0.2.0/24", "fd00:20::/64"], "ports": [
    {"port": "syslog", "destinations": [{"address": COL_A6, "name": "a6"},
                                        {"address": COL_B6, "name": "b6", "port": V6_REWRITE},
                                        {"address": COL_A_IP, "name": "a4"}]}]}]}

EXPORTER6_CODE = r"""
import socket, sys, time
n = int(sys.argv[1])
six = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
six.bind((%r, %d))
four = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
four.bind((%r, %d))
for i in range(n):
    six.sendto(b"<134>Jan  1 00:00:00 exp logfwdr-test: syslog6 %%03d" %% i, (%r, 514))
    four.sendto(b"<134>Jan  1 00:00:00 exp logfwdr-test: syslog4 %%03d" %% i, (%r, 514))
    time.sleep(0.003)
""" % (EXPORTER6, SYSLOG_SPORT, EXPORTER_IP, SYSLOG_SPORT, REPLICATOR_IN6, REPLICATOR_IN)


def parse_frame6(frame):
    """Ethernet/IPv6/UDP frame -> dict, the UDP checksum recomputed over the pseudo-header."""
    ip = frame[14:]
    plen = struct.unpack("!H", ip[4:6])[0]
    udp = ip[40:40 + plen]
    sport, dport, ulen, ucheck = struct.unpack("!HHHH", udp[:8])
    pseudo = ip[8:40] + struct.pack("!IxxxB", len(udp), 17)
    return {"dmac": mac_str(frame[0:6]), "smac": mac_str(frame[6:12]),
            "src": socket.inet_ntop(socket.AF_INET6, ip[8:24]), "dst": socket.inet_ntop(socket.AF_INET6, ip[24:40]),
            "sport": sport, "dport": dport, "udp_csum_ok": ucheck != 0 and csum16(pseudo + udp) == 0xFFFF,
            "payload": bytes(udp[8:ulen])}


def v6_script(payload_dir):
    return guest_prelude(payload_dir) + args_file("/tmp/v6.json", V6_STATE) + args_file("/tmp/info.json", {}) + r"""
modprobe ipv6  # a module in Debian's UML kernel
ip -6 addr add %s/64 dev vec0 nodad
ip -6 addr add %s/64 dev vec1 nodad
runmod v6a tc_mirror /tmp/v6.json
runmod v6b tc_mirror /tmp/v6.json
tc filter show dev vec0 ingress
ip -6 neigh show
lf_ready
lf_wait_stop 90 || echo "lf_wait_stop timed out"
runmod v6info tc_mirror_info /tmp/info.json
tc -s filter show dev vec0 ingress prio %d
""" % (REPLICATOR_IN6, REPLICATOR_OUT6, PRIORITY + 1)


def test_ipv6_collectors_get_the_exporters_datagrams_with_its_source_and_a_valid_checksum(wire, payload):
    """Forward destinations with IPv6 addresses on Debian's kernel: the next hop found by neighbour discovery,
    pedit on the IPv6 destination (and port), act_csum fixing the UDP checksum; an IPv4 collector on the same port
    gets the IPv4 exporters, each family only its own."""
    exp, col_a, col_b, g = two_collectors(wire, v6_script(payload))
    vec0_mac, vec1_mac = g.macs
    wire.exec(exp, ["ip", "-6", "addr", "add", EXPORTER6 + "/64", "dev", "eth0", "nodad"])
    wire.exec(exp, ["ip", "-6", "neigh", "replace", REPLICATOR_IN6, "lladdr", vec0_mac, "dev", "eth0"])
    for ns, address in ((col_a, COL_A6), (col_b, COL_B6)):
        wire.exec(ns, ["ip", "-6", "addr", "add", address + "/64", "dev", "eth0", "nodad"])
        # the collectors have no route back to the exporters' prefix; they only receive
    rx_a = start_collector(wire, col_a, [514], six=True)
    rx_b = start_collector(wire, col_b, [514, V6_REWRITE], six=True)
    g.wait_ready(timeout=90)
    wire.exec(exp, [sys.executable, "-c", EXPORTER6_CODE, str(N)])
    time.sleep(1.0)
    g.stop()
    res = g.wait()
    got_a, got_b = stop_collector(rx_a), stop_collector(rx_b)
    print(res.output)
    assert res.rc == 0, res.output + "\n" + res.console[-2000:]

    first = module_result(res, "v6a")
    assert first["_rc"] == 0 and first["changed"] is True and not first.get("failed"), first
    _p, a6 = find_dest(first["devices"], "vec0", 514, "a6")
    _p, b6 = find_dest(first["devices"], "vec0", 514, "b6")
    # neighbour discovery found the collectors' MACs: nothing was typed by hand
    assert (a6["device"], a6["next_hop_mac"]) == ("vec1", COL_A_MAC), a6
    assert (b6["device"], b6["next_hop_mac"], b6["port"]) == ("vec1", COL_B_MAC, V6_REWRITE), b6
    assert any("protocol ipv6 prio %d" % (PRIORITY + 1) in c and "munge ip6 dst set %s" % COL_A6 in c
               for c in first["commands"]), first["commands"]
    second = module_result(res, "v6b")
    assert second["changed"] is False and second["commands"] == [], second

    def payloads(tag):
        return sorted(b"<134>Jan  1 00:00:00 exp logfwdr-test: %s %03d" % (tag, i) for i in range(N))

    # the collectors' sockets: every datagram once, from the exporter's own address and port
    assert sorted(bytes.fromhex(d) for p, src, sp, d in got_a["udp"] if (p, src, sp) == (514, EXPORTER6, SYSLOG_SPORT)) \
        == payloads(b"syslog6")
    assert sorted(bytes.fromhex(d) for p, src, sp, d in got_a["udp"] if (p, src, sp) == (514, EXPORTER_IP, SYSLOG_SPORT)) \
        == payloads(b"syslog4")
    assert len(got_a["udp"]) == 2 * N, got_a["udp"]
    assert sorted(bytes.fromhex(d) for p, src, sp, d in got_b["udp"]
                  if (p, src, sp) == (V6_REWRITE, EXPORTER6, SYSLOG_SPORT)) == payloads(b"syslog6")
    assert len(got_b["udp"]) == N, "collector B (IPv6 only) got %d datagrams" % len(got_b["udp"])
    # on the wire: MACs, addresses, port and a UDP checksum recomputed here over the IPv6 pseudo-header
    for got, address, mac, port in ((got_a, COL_A6, COL_A_MAC, 514), (got_b, COL_B6, COL_B_MAC, V6_REWRITE)):
        frames = [parse_frame6(bytes.fromhex(f)) for f in got["frames"] if bytes.fromhex(f)[12:14] == b"\x86\xdd"]
        assert len(frames) == N, "%s saw %d UDP/IPv6 frames" % (address, len(frames))
        for f in frames:
            assert (f["dmac"], f["smac"], f["src"], f["dst"]) == (mac, vec1_mac, EXPORTER6, address), f
            assert (f["sport"], f["dport"]) == (SYSLOG_SPORT, port), f
            assert f["udp_csum_ok"], "UDP checksum zero or wrong: %r" % f

    info = module_result(res, "v6info")
    port, _d = find_dest(info["devices"], "vec0", 514, "a6")
    counts = dict((d["name"], d["counters"]["packets"]) for d in port["destinations"])
    assert counts == {"a6": N, "b6": N, "a4": N}, counts
    assert port["original_dropped"] == 2 * N, port  # both families' originals: each has a forward destination
