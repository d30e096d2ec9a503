# -*- coding: utf-8 -*-
"""Issue 29's forgery against two real keepalived with the role's files and DEFAULT settings (no logfwdr_vrrp_macs,
no logfwdr_vrrp_pair_link): the same namespaces as test_vrrp_failover_netns.py (rep1 priority 150 master of both
virtual addresses, rep2 backup, an attacker on segment 1), the role's nftables table and keepalived.conf rendered
from the vrrp_instances view with each peer's MAC read from the peer (`ip -json link show`, as validate.yml does).

The attacker sends VRRPv3 adverts, priority 255, for segment 1's virtual router, from each replicator's own segment
address to the other replicator (Ethernet frames written with AF_PACKET, so the source MAC is whatever the test
says), every 50 ms for several seconds, while both virtual addresses are polled:

- with its own MAC: the nftables rule drops every advert; rep1 holds both addresses the whole time;
- the control, the rule bound to the address only (the defaults before the MAC was read from the peer): the same
  adverts make both hosts BACKUP and nobody holds segment 1's address;
- with the impersonated replicator's MAC forged too: the adverts pass the rule (docs/role.md says so), keepalived
  takes them for the peer's and the master gives segment 1's address up within 0.1 s: for the rest of the attack it
  flaps between nobody and rep2 (the forged source MACs also make the segment's bridge send each replicator's frames
  to the attacker's port for a while); segment 2's stays with rep1, and rep1 takes segment 1's back once it stops.

Needs root, nftables and keepalived (`make deps`).
Run: .venv/bin/pytest tests/integration/test_vrrp_forgery_netns.py -m netns
"""

import os
import re
import subprocess
import sys
import time

import pytest
from lflab import netlab

from test_vrrp_failover_netns import ADVERT_CODE, OWN, OWN2, VIPS, _pair

pytestmark = pytest.mark.netns

ATTACK_SECONDS = 6

_FORGER = ADVERT_CODE + r"""
def mac(text):
    return bytes(int(b, 16) for b in text.split(":"))

dev, seconds, vip, vrid = sys.argv[1], float(sys.argv[2]), sys.argv[3], int(sys.argv[4])
frames = []
for spec in sys.argv[5:]:                    # source MAC, destination MAC, source address, destination address
    smac, dmac, src, dst = spec.split(",")
    frames.append(mac(dmac) + mac(smac) + b"\x08\x00" + advert(src, dst, vrid, vip))
sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
sock.bind((dev, 0))
sent, end = 0, time.time() + seconds
while time.time() < end:
    for frame in frames:
        sock.send(frame)
        sent += 1
    time.sleep(0.05)
print(sent)
"""


@pytest.fixture
def pair():
    yield from _pair()


def mac_of(pair, name, dev="vec1"):
    return netlab.Lab.mac(pair.ns[name], dev)


def vrrp_counts(pair, name):
    """(accepted from the peer, dropped) VRRP packets of the vrrp chain of the role's table on `name`."""
    out = netlab.sh("ip", "netns", "exec", pair.ns[name], "nft", "list", "chain", "inet", "logfwdr", "vrrp").stdout
    drop = re.search(r"counter packets (\d+) bytes \d+ drop", out)
    return out, int(drop.group(1)) if drop else 0


def forge(pair, seconds, forge_mac):
    """Forged adverts on segment 1: to rep1 from rep2's address and to rep2 from rep1's, with the attacker's MAC or
    (forge_mac) the impersonated replicator's. Both virtual addresses polled meanwhile: [(time, vec1, vec2)]."""
    frames = []
    for target, impersonated in (("rep1", "rep2"), ("rep2", "rep1")):
        source_mac = mac_of(pair, impersonated) if forge_mac else mac_of(pair, "atk", "atk0")
        frames.append(",".join((source_mac, mac_of(pair, target), OWN[impersonated], OWN[target])))
    proc = subprocess.Popen(["ip", "netns", "exec", pair.ns["atk"], sys.executable, "-c", _FORGER, "atk0",
                             str(seconds), VIPS["vec1"], "77"] + frames, stdout=subprocess.PIPE,
                            universal_newlines=True)
    pair.procs["attacker"] = proc
    samples = []
    while proc.poll() is None:
        samples.append((time.time(), tuple(pair.holders("vec1")), tuple(pair.holders("vec2"))))
        time.sleep(0.05)
    assert proc.returncode == 0
    sent = int(proc.stdout.read().strip())
    assert sent > 10 * seconds * 2, sent
    return samples


def start_both(pair):
    pair.start("rep1")
    pair.start("rep2")
    pair.wait("rep1 master of both VIPs", lambda: pair.holders("vec1") == ["rep1"] and pair.holders("vec2") == ["rep1"]
              and pair.state("rep2") == "BACKUP", 20)
    time.sleep(1)


def unheld(samples):
    """Seconds during which nobody held segment 1's address (the sum of the polling intervals that began with
    nobody holding it), and the number of such samples."""
    lost = [later[0] - sample[0] for sample, later in zip(samples, samples[1:]) if not sample[1]]
    return sum(lost), len(lost)


def timeline(samples):
    """Who held segment 1's address, each change with its time from the first sample: "0.0 rep1, 0.4 -, ..."."""
    out, last = [], None
    for t, vec1, _vec2 in samples:
        if vec1 != last:
            out.append("%.1f %s" % (t - samples[0][0], "+".join(vec1) or "-"))
            last = vec1
    return ", ".join(out)


def test_forged_adverts_with_the_attackers_mac_move_no_address(pair):
    """The defaults: the rule admits the peer's address only with the peer's MAC (read from the peer)."""
    for name, peer in (("rep1", "rep2"), ("rep2", "rep1")):
        rules = pair.data[name]["vrrp_rules"]
        assert rules == [{"interface": dev, "address": own[peer], "mac": mac_of(pair, peer, dev)}
                         for dev, own in (("vec1", OWN), ("vec2", OWN2))], rules
    start_both(pair)
    _text, dropped_before = vrrp_counts(pair, "rep1")
    samples = forge(pair, ATTACK_SECONDS, forge_mac=False)
    moved = [s for s in samples if s[1:] != (("rep1",), ("rep1",))]
    assert not moved, (len(moved), len(samples), moved[:5])
    print("%d samples over %.1f s: rep1 held both addresses in every one" % (len(samples),
                                                                             samples[-1][0] - samples[0][0]))
    # the forged adverts arrived and the rule dropped them on both replicators
    for name in ("rep1", "rep2"):
        text, dropped = vrrp_counts(pair, name)
        assert dropped - (dropped_before if name == "rep1" else 0) > 50, text
    log = open(os.path.join(pair.tmp, "rep1", "keepalived.log")).read()
    assert "Entering BACKUP STATE" not in log.split("Entering MASTER STATE", 1)[-1], log[-3000:]


def test_control_an_address_only_rule_lets_the_same_adverts_through(pair):
    """The test above can fail: with the rule bound to the address only, the same adverts take the address."""
    pair.configure(hardened=True, mac_binding=False)
    assert [r["mac"] for r in pair.data["rep1"]["vrrp_rules"]] == [None, None]
    start_both(pair)
    samples = forge(pair, ATTACK_SECONDS, forge_mac=False)
    lost, count = unheld(samples)
    assert count > 10 and lost > ATTACK_SECONDS / 2, samples
    assert all(vec2 == ("rep1",) for _t, _vec1, vec2 in samples), samples
    print("address-only rule: segment 1's address held by nobody for %.1f s of the %d s attack (%d of %d samples): %s"
          % (lost, ATTACK_SECONDS, count, len(samples), timeline(samples)))


def test_forged_adverts_with_the_peers_mac_pass_the_rule(pair):
    """What docs/role.md says is left without a pair link: an attacker that forges the peer's MAC as well passes the
    nftables rule, and keepalived, which cannot tell, takes segment 1's address from the master: nobody or rep2
    holds it while the attack lasts; segment 2's stays with rep1, and rep1 takes segment 1's back once it stops."""
    start_both(pair)
    _text, dropped_before = vrrp_counts(pair, "rep1")
    samples = forge(pair, ATTACK_SECONDS, forge_mac=True)
    stopped = time.time()
    lost, count = unheld(samples)
    text, dropped = vrrp_counts(pair, "rep1")
    assert dropped == dropped_before, text  # nothing the rule could tell from the peer's adverts
    # the master gives the address up: held by nobody, or by rep2, for most of the attack (it flaps: the forged
    # source MACs also teach the segment's bridge that each replicator's MAC is behind the attacker's port)
    away = [s for s in samples if s[1] != ("rep1",)]
    assert len(away) > len(samples) / 2 and count >= 5 and lost > 0.5, timeline(samples)
    assert all(vec2 == ("rep1",) for _t, _vec1, vec2 in samples), samples
    log = open(os.path.join(pair.tmp, "rep1", "keepalived.log")).read()
    assert "(logfwdr_vec1) Master received advert from %s with higher priority 255" % OWN["rep2"] in log, log[-3000:]
    back = pair.wait("rep1 master of segment 1 again", lambda: pair.holders("vec1") == ["rep1"], 20)
    print("MAC and address forged: segment 1's address away from rep1 in %d of %d samples, held by nobody for %.1f s "
          "of the %d s attack (%s); rep1 held it again %.1f s after the attack stopped"
          % (len(away), len(samples), lost, ATTACK_SECONDS, timeline(samples), back - stopped))
