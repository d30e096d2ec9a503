# -*- coding: utf-8 -*-
"""Attacks and accidents the rules must survive, on the host kernel in throwaway namespaces.

- An attacker on the exporter segment sends frames the replicator must not copy: a spoofed source, another
  destination address, broadcast, multicast, a frame for another host's MAC.  Copies are counted at the
  receivers' interfaces (kernel counters), so a copy the receiver's IP stack would drop still counts.
- Another team's filters at the module's priority, on a listed and on an unlisted device.
- Priorities the kernel would truncate; two runs at once; a refusal at every step of a change.
"""

import json
import os
import subprocess
import sys
import tempfile
import time

from lflab import netlab
import pytest

sys.path.insert(0, netlab.ensure_collection_path())
from ansible_collections.netops.logfwdr.plugins.module_utils.tc.layout import DEFAULT_PRIORITY  # noqa: E402

from conftest import EXPORTER_IP, SPOILING_DRIVER, filter_blocks

pytestmark = pytest.mark.netns

PRIO = DEFAULT_PRIORITY
REPLICATOR_IP = netlab.REPLICATOR_IP


def mirror(name, device):
    return {"name": name, "mode": "mirror", "device": device}


def state(tools, port=514, **device):
    dev = dict(device, name="in0", ports=[{"port": port, "destinations": [mirror("col%d" % i, t)
                                                                          for i, t in enumerate(tools)]}])
    return {"priority": PRIO, "devices": [dev]}


# ---- frames from the exporter namespace -------------------------------------------------------------------

_SENDER = r"""
import json, socket, struct, sys
spec = json.loads(sys.argv[1])


def csum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def mac(text):
    return bytes(int(b, 16) for b in text.split(":"))


def frame(source, payload):
    udp = struct.pack("!HHHH", 40000, spec["port"], 8 + len(payload), 0) + payload
    if ":" in source:  # IPv6: the UDP checksum (over the pseudo-header) is required
        src, dst = socket.inet_pton(socket.AF_INET6, source), socket.inet_pton(socket.AF_INET6, spec["dst"])
        check = csum(src + dst + struct.pack("!IxxxB", len(udp), 17) + udp) or 0xFFFF
        ip = struct.pack("!IHBB16s16s", 0x60000000, len(udp), 17, 64, src, dst)
        return mac(spec["dmac"]) + mac(spec["smac"]) + b"\x86\xdd" + ip + udp[:6] + struct.pack("!H", check) + udp[8:]
    src, dst = socket.inet_aton(source), socket.inet_aton(spec["dst"])
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    return mac(spec["dmac"]) + mac(spec["smac"]) + b"\x08\x00" + ip + udp


s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((spec["dev"], 0))
for source in spec.get("sources") or [spec["src"]]:
    same = frame(source, spec["payload"].encode())
    for i in range(spec["count"]):
        # numbered: each datagram's payload is PAYLOAD-i, so a receiver can tell every one apart
        s.send(frame(source, ("%s-%d" % (spec["payload"], i)).encode()) if spec.get("numbered") else same)
"""


def send_frames(lab, count, dmac=None, src=EXPORTER_IP, dst=REPLICATOR_IP, port=514, sources=None, payload="attack",
                numbered=False):
    """`count` frames from the exporter's namespace, from `src` or from each of `sources` (forged: the raw socket
    writes any source address); with `numbered`, payloads PAYLOAD-0, PAYLOAD-1, ..."""
    spec = {"dev": "exp0", "smac": lab.mac(lab.exp, "exp0"), "dmac": dmac or lab.in0_mac, "src": src, "dst": dst,
            "port": port, "count": count, "payload": payload, "sources": sources, "numbered": numbered}
    netlab.sh("ip", "netns", "exec", lab.exp, sys.executable, "-c", _SENDER, json.dumps(spec))


def copies(lab, count, **frame):
    """Packets each receiver's interface got for `count` frames."""
    before = [lab.rx_packets(i) for i in range(len(lab.receivers))]
    send_frames(lab, count, **frame)
    time.sleep(0.2)
    return [lab.rx_packets(i) - b for i, b in enumerate(before)]


ATTACKS = {
    "spoofed source": dict(src="198.51.100.7"),
    "another destination address": dict(dst="10.77.0.99"),
    "subnet broadcast": dict(dmac="ff:ff:ff:ff:ff:ff", dst="10.77.0.255"),
    "limited broadcast": dict(dmac="ff:ff:ff:ff:ff:ff", dst="255.255.255.255"),
    "multicast": dict(dmac="01:00:5e:00:00:fb", dst="224.0.0.251"),
    "another host's MAC": dict(dmac="02:de:ad:be:ef:01"),
    # IPv6 is not replicated yet (docs/roadmap.md): a UDP/IPv6 datagram to the replicator's MAC and port gets no
    # copy, whatever its addresses
    "IPv6 to the replicator's MAC": dict(src="fd00:77::5", dst="fd00:77::2"),
}


def test_only_packets_sent_to_the_replicator_by_its_exporters_are_copied(rig):
    lab = rig.lab
    tools = lab.add_receivers(3)
    res = rig.apply(state(tools, addresses=[REPLICATOR_IP]))
    assert not res.get("warnings"), res
    # the genuine packet: one copy per destination (the check can fail)
    assert copies(lab, 20) == [20, 20, 20]
    for name, frame in sorted(ATTACKS.items()):
        assert copies(lab, 200, **frame) == [0, 0, 0], name
    assert copies(lab, 5) == [5, 5, 5]


def test_ipv6_frames_reach_the_hook_and_get_no_copy(rig):
    """The IPv6 attack frame is real: a foreign protocol-ipv6 filter at the next priority copies every one of
    them, while the module's rules copy none."""
    lab = rig.lab
    tools = lab.add_receivers(2)
    rig.apply(state(tools[:1], addresses=[REPLICATOR_IP]))
    lab.tc("filter", "add", "dev", "in0", "ingress", "prio", str(PRIO + 1), "protocol", "ipv6", "u32", "match",
           "u32", "0", "0", "action", "mirred", "egress", "mirror", "dev", tools[1])
    assert copies(lab, 30, **ATTACKS["IPv6 to the replicator's MAC"]) == [0, 30]
    assert copies(lab, 5) == [5, 0]


def test_without_addresses_the_module_warns_and_still_refuses_foreign_frames(rig):
    lab = rig.lab
    tools = lab.add_receivers(2)
    res = rig.apply(state(tools))
    assert any("addresses is not set" in str(w) for w in res.get("warnings", [])), res  # 2.19: dicts
    assert copies(lab, 10, dst="10.77.0.99") == [10, 10]  # what addresses protects against
    for name in ("spoofed source", "subnet broadcast", "multicast", "another host's MAC"):
        assert copies(lab, 50, **ATTACKS[name]) == [0, 0], name


def test_declared_exporter_networks_are_copied_and_nothing_else(rig):
    lab = rig.lab
    tools = lab.add_receivers(1)
    rig.apply(state(tools, addresses=[REPLICATOR_IP], sources=["10.77.0.0/24", "192.0.2.128/25"]))
    assert copies(lab, 10, src="192.0.2.200") == [10]
    assert copies(lab, 10, src="192.0.2.100") == [0]
    assert copies(lab, 10, src="198.51.100.7") == [0]


def test_forged_sources_get_one_copy_per_pool_and_no_more(rig):
    """One host on the exporter segment forges every source address of the accepted /24 at a pool's port: each
    forged datagram is copied once to the pool (to the member its last octet maps to) and once to the other
    destination, never more; the attacks above get nothing from the pool either."""
    from ansible_collections.netops.logfwdr.plugins.module_utils.tc import layout
    lab = rig.lab
    tools = lab.add_receivers(4)
    members = [dict(mirror("m%d" % i, tools[i]), pool="flows") for i in range(3)]
    rig.apply({"priority": PRIO, "devices": [{"name": "in0", "addresses": [REPLICATOR_IP], "ports": [
        {"port": 2055, "destinations": members + [mirror("all", tools[3])]}]}]})
    prefix = EXPORTER_IP.rsplit(".", 1)[0]
    forged = ["%s.%d" % (prefix, octet) for octet in range(256)]  # .0 and .255 too: the prefix accepts them
    got = copies(lab, 4, port=2055, sources=forged)
    owner = [int(m["name"][1:]) for m in layout.pool_buckets(members)]
    # exactly 4 x (buckets each member owns): one copy per forged datagram to the pool, none twice, none lost
    assert got == [4 * owner.count(i) for i in range(3)] + [4 * 256], got
    assert all(got[:3]) and sum(got[:3]) == 4 * 256
    for name, frame in sorted(ATTACKS.items()):
        assert copies(lab, 100, port=2055, **frame) == [0, 0, 0, 0], name
    # sources outside the prefix, forged in bulk, are not copied at all
    assert copies(lab, 2, port=2055, sources=["198.51.100.%d" % o for o in range(256)]) == [0, 0, 0, 0]


def test_a_mirror_to_the_ingress_interface_is_refused(rig):
    rig.lab.add_receivers(1)
    res = rig.run(state(["in0"]))
    assert res.get("failed") and "devices[0].ports[0].destinations[0].device: in0 is the ingress interface" in \
        res["msg"], res
    assert "ingress" not in rig.tc("qdisc", "show", "dev", "in0")


# ---- other people's filters ------------------------------------------------------------------------------

def _foreign(rig, dev, tool):
    rig.lab.tc("qdisc", "add", "dev", dev, "ingress", check=False)
    rig.lab.tc("filter", "add", "dev", dev, "ingress", "prio", str(PRIO), "protocol", "ip", "u32", "match", "ip",
               "dport", "9999", "0xffff", "action", "mirred", "egress", "mirror", "dev", tool)
    return rig.filters(dev)


def test_a_foreign_filter_at_our_priority_on_a_listed_device_fails_the_run_and_stays(rig):
    tools = rig.lab.add_receivers(2)
    before = _foreign(rig, "in0", tools[1])
    res = rig.run(state(tools[:1]))
    assert res.get("failed"), res
    assert "in0: priority %d chain 0 holds filters logfwdr did not create (u32 handle 800::800" % PRIO in \
        res["msg"], res["msg"]
    assert "nothing was changed" in res["msg"]
    assert rig.filters("in0") == before
    res = rig.run({"priority": PRIO, "state": "absent", "devices": [{"name": "in0"}]})
    assert res.get("failed") and rig.filters("in0") == before


def test_a_foreign_filter_on_an_unlisted_device_is_never_touched(rig):
    tools = rig.lab.add_receivers(2)
    netlab.sh("ip", "-n", rig.lab.rep, "link", "add", "mgmt0", "type", "veth", "peer", "name", "mgmt0p")
    netlab.sh("ip", "-n", rig.lab.rep, "link", "set", "mgmt0", "up")
    before = _foreign(rig, "mgmt0", tools[1])
    res = rig.apply(state(tools[:1], addresses=[REPLICATOR_IP]))
    assert not any("mgmt0" in c for c in res["commands"]), res["commands"]
    res = rig.apply({"priority": PRIO, "state": "absent"})
    assert res["changed"] and not any("mgmt0" in c for c in res["commands"]), res["commands"]
    assert rig.filters("mgmt0") == before
    assert [b for b in filter_blocks(rig.filters("in0")) if b[0] == PRIO] == []


@pytest.mark.parametrize("priority", [0, -1, 65536, 114688])
def test_a_priority_the_kernel_would_truncate_is_refused_before_anything_changes(rig, priority):
    tools = rig.lab.add_receivers(1)
    res = rig.run(dict(state(tools), priority=priority))
    assert res.get("failed") and "priority: %d; use a whole number from 1 to 65535" % priority in res["msg"], res
    assert "ingress" not in rig.tc("qdisc", "show", "dev", "in0")


# ---- two runs at once ------------------------------------------------------------------------------------

def test_two_runs_at_once_end_in_one_desired_state_and_each_reports_its_own(rig):
    tools = rig.lab.add_receivers(4)
    a, b = state(tools[:2]), state(tools[2:])
    files = []
    for args in (a, b):
        handle = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
        json.dump({"ANSIBLE_MODULE_ARGS": dict(args, _ansible_check_mode=False, _ansible_diff=False)}, handle)
        handle.close()
        files.append(handle.name)
    module = os.path.join(netlab.REPO, "plugins", "modules", "tc_mirror.py")
    try:
        for trial in range(4):
            order = [0, 1] if trial % 2 else [1, 0]
            procs = [subprocess.Popen(["ip", "netns", "exec", rig.lab.rep, rig.interp.path, module, files[i]],
                                      env=rig.env, stdout=subprocess.PIPE, universal_newlines=True) for i in order]
            results = dict((i, json.loads(p.communicate(timeout=60)[0])) for i, p in zip(order, procs))
            for i, want in ((0, tools[:2]), (1, tools[2:])):
                assert not results[i].get("failed"), results[i]
                reported = sorted(d["device"] for d in results[i]["devices"][0]["ports"][0]["destinations"])
                assert reported == want, (trial, i, reported)  # each run reports the state it made
            held = sorted(d["device"] for d in rig.info()["devices"][0]["ports"][0]["destinations"])
            assert held in (tools[:2], tools[2:]), held
    finally:
        for name in files:
            os.unlink(name)


# ---- a refusal at every step -----------------------------------------------------------------------------


def test_a_refusal_at_any_step_leaves_the_kernel_as_it_was(rig):
    tools = rig.lab.add_receivers(5)
    old = state(tools[:2], addresses=[REPLICATOR_IP])
    new = state([tools[0], tools[2], tools[3]], addresses=[REPLICATOR_IP, "10.77.0.9"])
    new["devices"][0]["ports"].append({"port": 2055, "destinations": [mirror("col9", tools[4])]})
    rig.apply(old)
    steps = len(rig.run(new, check_mode=True)["commands"])
    assert steps >= 7
    before = rig.filters(stats=False)
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(dict(new, state="present", chain=0), handle)
    try:
        for fail_at in range(1, steps + 1):
            out = json.loads(rig.python(SPOILING_DRIVER, handle.name, str(fail_at)))
            assert out["raised"] == "RunError" and out["verified"] is True, (fail_at, out)
            assert "are the same" in out["msg"], out["msg"]
            assert _without_indexes(rig.filters()) == _without_indexes(before), fail_at
    finally:
        os.unlink(handle.name)
    assert copies(rig.lab, 5) == [5, 5, 0, 0, 0]
    assert rig.run(old)["changed"] is False


def _without_indexes(text):
    return "\n".join(line for line in text.splitlines() if not line.strip().startswith("index "))


def test_check_mode_and_diff_show_the_rules_a_run_would_delete(rig):
    tools = rig.lab.add_receivers(2)
    netlab.sh("ip", "-n", rig.lab.rep, "link", "add", "in1", "type", "veth", "peer", "name", "in1p")
    netlab.sh("ip", "-n", rig.lab.rep, "link", "set", "in1", "up")
    both = state(tools[:1], addresses=[REPLICATOR_IP])
    both["devices"].append({"name": "in1", "sources": ["0.0.0.0/0"],
                            "ports": [{"port": 162, "destinations": [mirror("trapper", tools[1])]}]})
    rig.apply(both)
    before = rig.filters("in1")
    res = rig.run(state(tools[:1], addresses=[REPLICATOR_IP]), check_mode=True)
    assert res["changed"] is True
    assert res["commands"] and all(" dev in1 " in c for c in res["commands"]), res["commands"]
    assert "trapper" in res["diff"]["before"] and "trapper" not in res["diff"]["after"], res["diff"]
    assert "in1:" in res["diff"]["before"] and "in1:" not in res["diff"]["after"]
    assert rig.filters("in1") == before
