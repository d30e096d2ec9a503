# -*- coding: utf-8 -*-
"""IPv6 exporters to mirror destinations, on the host kernel: the IPv6 u32 instance at the next priority.

Frames are captured at each receiver's interface (AF_PACKET), so the test checks what really arrived: the
exporter's IPv6 source, the destination, the payload, and a UDP checksum recomputed over the pseudo-header.
"""

import json
import struct
import subprocess
import sys
import time

import pytest

from test_guardrails_netns import PRIO, REPLICATOR_IP, copies, mirror, send_frames

pytestmark = pytest.mark.netns

ADDR6 = "fd00:77::1"
NET6 = "fd00:77::/64"
EXPORTER6 = "fd00:77::5"

_CAPTURE = r"""
import binascii, json, select, socket, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x86dd))
s.bind((sys.argv[1], 0))
print("ready", flush=True)
frames = []
while True:
    r, _w, _x = select.select([s, 0], [], [], 5)
    if 0 in r:
        break
    if s in r:
        frames.append(binascii.hexlify(s.recv(65535)).decode())
print(json.dumps(frames), flush=True)
"""


def csum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def send6(lab, count, tag, src=EXPORTER6, dst=ADDR6, port=514):
    """`count` UDP/IPv6 datagrams with payloads TAG-0, TAG-1, ..."""
    send_frames(lab, count, src=src, dst=dst, port=port, payload=tag, numbered=True)


def capture(lab, index):
    proc = subprocess.Popen(["ip", "netns", "exec", lab.receivers[index], sys.executable, "-c", _CAPTURE,
                             "rx%d" % index], stdin=subprocess.PIPE, stdout=subprocess.PIPE, universal_newlines=True)
    assert proc.stdout.readline().strip() == "ready"
    lab.procs.append(proc)
    return proc


def datagrams(proc):
    """Captured IPv6/UDP frames -> [(source, destination, port, payload, checksum valid)]."""
    import ipaddress
    time.sleep(0.3)
    out, _err = proc.communicate("stop\n", timeout=30)
    got = []
    for text in json.loads(out.strip().splitlines()[-1]):
        frame = bytes(bytearray.fromhex(text))
        ip, udp = frame[14:54], frame[54:]
        assert ip[6] == 17, text
        length = struct.unpack("!H", ip[4:6])[0]
        udp = udp[:length]
        pseudo = ip[8:40] + struct.pack("!IxxxB", len(udp), 17)
        got.append((str(ipaddress.IPv6Address(ip[8:24])), str(ipaddress.IPv6Address(ip[24:40])),
                    struct.unpack("!H", udp[2:4])[0], udp[8:].decode(), csum(pseudo + udp) == 0))
    return got


def v6state(tools, **port):
    dests = [mirror("all", tools[0]),
             dict(mirror("v4only", tools[1]), sources=["10.77.0.0/24"]),
             dict(mirror("v6only", tools[2]), sources=[NET6])]
    return {"priority": PRIO, "devices": [{"name": "in0", "addresses": [REPLICATOR_IP, ADDR6],
                                           "sources": ["10.77.0.0/24", NET6],
                                           "ports": [dict({"port": 514, "destinations": dests}, **port)]}]}


def test_ipv6_exporters_reach_mirror_destinations_whole_and_only_theirs(rig):
    lab = rig.lab
    tools = lab.add_receivers(3)
    res = rig.apply(v6state(tools))
    assert res["changed"] and not res.get("warnings"), res
    assert any("protocol ipv6 prio %d" % (PRIO + 1) in c for c in res["commands"]), res["commands"]
    again = rig.apply(v6state(tools))
    assert not again["changed"] and again["commands"] == [], again
    assert again["diff"]["before"] == again["diff"]["after"], again["diff"]

    caps = [capture(lab, i) for i in range(3)]
    send6(lab, 25, "v6")
    got = [datagrams(c) for c in caps]
    sent = set(("%s-%d" % ("v6", i)) for i in range(25))
    for index in (0, 2):
        assert sorted(g[3] for g in got[index]) == sorted(sent), got[index]
        assert set(g[:3] for g in got[index]) == {(EXPORTER6, ADDR6, 514)}
        assert all(g[4] for g in got[index]), "a copy with a bad UDP checksum"
    assert got[1] == [], "a destination that allows only IPv4 sources got IPv6 copies"

    # IPv4 reaches the destinations whose sources allow it; IPv6 frames the replicator must not copy get nothing
    assert copies(lab, 10) == [10, 10, 0]
    attacks = {
        "forged source outside the prefix": dict(src="fd00:99::5"),
        "another destination address": dict(dst="fd00:77::99"),
        "another port": dict(port=515),
    }
    for name, frame in sorted(attacks.items()):
        before = [lab.rx_packets(i) for i in range(3)]
        send6(lab, 50, "x", **frame)
        time.sleep(0.2)
        assert [lab.rx_packets(i) - b for i, b in enumerate(before)] == [0, 0, 0], name
    assert copies(lab, 30, src="fd00:77::7", dst=ADDR6, dmac="33:33:00:00:00:01") == [0, 0, 0]  # multicast MAC

    info = rig.info(devices=["in0"])["devices"][0]
    port = info["ports"][0]
    counts = dict((d["name"], d["counters"]["packets"]) for d in port["destinations"])
    assert counts == {"all": 35, "v4only": 10, "v6only": 25}, counts
    assert info["addresses"] == [REPLICATOR_IP, ADDR6] and info["sources"] == ["10.77.0.0/24", NET6], info

    # without the IPv6 address the IPv6 instance goes, and IPv6 is not copied again
    four = v6state(tools)
    four["devices"][0].update(addresses=[REPLICATOR_IP], sources=["10.77.0.0/24"])
    four["devices"][0]["ports"][0]["destinations"][2]["sources"] = ["10.77.0.0/24"]
    res = rig.apply(four)
    assert res["changed"] and any("del dev in0 ingress protocol ipv6 prio %d" % (PRIO + 1) in c
                                  for c in res["commands"]), res["commands"]
    assert lab.tc("filter", "show", "dev", "in0", "ingress", "prio", str(PRIO + 1)).stdout.strip() == ""
    before = [lab.rx_packets(i) for i in range(3)]
    send6(lab, 20, "gone")
    time.sleep(0.2)
    assert [lab.rx_packets(i) - b for i, b in enumerate(before)] == [0, 0, 0]
    assert copies(lab, 5) == [5, 5, 5]


def test_an_ipv6_pool_maps_each_exporter_by_the_last_byte_of_its_address(rig):
    """Every one of 256 forged IPv6 sources in the prefix reaches exactly the member its last byte maps to (the
    same rendezvous function as IPv4), once; the destination outside the pool gets them all."""
    from ansible_collections.netops.logfwdr.plugins.module_utils.tc import layout
    lab = rig.lab
    tools = lab.add_receivers(3)
    members = [dict(mirror("m%d" % i, tools[i]), pool="flows") for i in range(2)]
    rig.apply({"priority": PRIO, "devices": [{"name": "in0", "addresses": [REPLICATOR_IP, ADDR6],
                                              "sources": ["10.77.0.0/24", NET6], "ports": [
        {"port": 2055, "destinations": members + [mirror("all", tools[2])]}]}]})
    owner = [int(m["name"][1:]) for m in layout.pool_buckets(members)]
    forged = ["fd00:77::1:%x" % octet for octet in range(256)]
    got = copies(lab, 3, port=2055, sources=forged, dst=ADDR6)
    assert got == [3 * owner.count(i) for i in range(2)] + [3 * 256], got
    assert all(got[:2])
    # IPv4 exporters go through the IPv4 pool, by the same function of their last octet
    got4 = copies(lab, 2, port=2055, sources=["10.77.0.%d" % o for o in range(256)])
    assert got4 == [2 * owner.count(i) for i in range(2)] + [2 * 256], got4


def test_a_refusal_at_any_step_of_adding_ipv6_leaves_the_kernel_as_it_was(rig):
    """Turning IPv6 on creates the second classifier; the kernel refusing any one of the steps (the IPv4 ones or
    the IPv6 ones) leaves both priorities exactly as they were, and IPv4 is copied as before."""
    import os
    import tempfile
    from test_guardrails_netns import SPOILING_DRIVER, _without_indexes
    lab = rig.lab
    tools = lab.add_receivers(3)
    old = {"priority": PRIO, "devices": [{"name": "in0", "addresses": [REPLICATOR_IP], "ports": [
        {"port": 514, "destinations": [mirror("all", tools[0])]}]}]}
    rig.apply(old)
    new = v6state(tools)
    steps = rig.run(new, check_mode=True)["commands"]
    assert any("protocol ipv6" in c for c in steps) and any("protocol ip prio" in c for c in steps), steps
    before = rig.filters(stats=False)
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(dict(new, state="present", chain=0), handle)
    try:
        for fail_at in range(1, len(steps) + 1):
            out = json.loads(rig.python(SPOILING_DRIVER, handle.name, str(fail_at)))
            assert out["raised"] == "RunError" and out["verified"] is True, (fail_at, out)
            assert _without_indexes(rig.filters()) == _without_indexes(before), fail_at
    finally:
        os.unlink(handle.name)
    assert copies(lab, 5) == [5, 0, 0]
    assert rig.run(old)["changed"] is False
