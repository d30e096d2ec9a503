# -*- coding: utf-8 -*-
"""The role's nftables table (templates/logfwdr-nftables.conf.j2): VRRP from the peer only, and the optional host
firewall, rendered from the role's filters and checked by `nft -c -f` in a throwaway network namespace."""

import os
import re
import shutil
import subprocess

import pytest

from lflab import bridgeconf
from ansible.errors import AnsibleFilterError

from ansible_collections.netops.logfwdr.plugins.filter.host_firewall import host_firewall
from ansible_collections.netops.logfwdr.plugins.filter.replication_devices import replication_devices
from ansible_collections.netops.logfwdr.plugins.filter.vrrp_instances import DEFAULTS as VRRP_DEFAULTS
from ansible_collections.netops.logfwdr.plugins.filter.vrrp_instances import vrrp_instances

NFT = shutil.which("nft") or "/usr/sbin/nft"
INGRESS = [{"name": "vec1", "address": "10.10.1.2/24", "virtual_address": "10.10.1.1/24", "virtual_router_id": 11},
           {"name": "vec2", "address": "10.10.2.2/24", "virtual_address": "10.10.2.1/24", "virtual_router_id": 12}]
PEER = {"rep2": {"logfwdr_ingress_interfaces": [dict(i, address=i["address"].replace(".2/", ".3/")) for i in INGRESS],
                 "logfwdr_vrrp_macs": {"vec1": "52:54:00:00:01:03"}}}
EGRESS = [{"name": "vec3", "address": "10.20.1.2/24"}]
COLLECTORS = [{"name": "c1", "address": "10.20.1.31", "protocols": ["syslog", "snmptrap"]}]


def render(vrrp=True, firewall=True, bridge=True, management=("192.0.2.0/24",), pair=None, peer_pair=None,
           ingress=None):
    ingress = ingress or INGRESS
    v = dict(bridgeconf.DEFAULTS, logfwdr_ingress_interfaces=ingress, logfwdr_egress_interfaces=EGRESS,
             logfwdr_collectors=COLLECTORS, logfwdr_vrrp=vrrp, logfwdr_firewall=firewall,
             logfwdr_syslog_bridge=bridge, ansible_managed="test", __logfwdr_nftables_service="logfwdr-nftables.service")
    devices = replication_devices(COLLECTORS, ingress, v["logfwdr_protocols"], egress_interfaces=EGRESS, vrrp=vrrp)
    if vrrp:
        hostvars = {"rep2": dict(PEER["rep2"], logfwdr_vrrp_pair_link=peer_pair)} if pair else PEER
        v["__logfwdr_vrrp"] = vrrp_instances(ingress, EGRESS, dict(VRRP_DEFAULTS, logfwdr_vrrp_pair_link=pair or {}),
                                             peers=["rep2"], hostvars=hostvars, hostname="rep1")
    bridge_inputs = bridgeconf.role_vars(v, "/w", "/s")["__logfwdr_syslog_bridge_inputs"] if bridge else {}
    v["__logfwdr_syslog_bridge_inputs"] = bridge_inputs
    if firewall:
        v["__logfwdr_firewall"] = host_firewall({"logfwdr_firewall_management_networks": list(management)}, devices,
                                                bridge_inputs)
    return bridgeconf.render("logfwdr-nftables.conf.j2", v)


def nft_check(text, tmp_path):
    if os.geteuid() != 0 or not os.path.exists(NFT):
        pytest.skip("needs root and nft (make deps installs nftables)")
    path = tmp_path / "logfwdr.nft"
    path.write_text(text)
    return subprocess.run(["unshare", "--net", NFT, "-c", "-f", str(path)], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, universal_newlines=True, check=False)


def rules(text):
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


def test_vrrp_only_from_the_peer_address_and_mac(tmp_path):
    text = render(firewall=False)
    assert render(firewall=False, bridge=False).count("dport") == 0
    got = rules(text)
    assert 'iifname { "vec1", "vec2" } jump exporter_segments' in got
    assert 'iifname "vec1" ip saddr 10.10.1.3 ether saddr 52:54:00:00:01:03 accept' in got
    assert 'iifname "vec2" ip saddr 10.10.2.3 accept' in got  # no MAC given for vec2
    assert "ip protocol vrrp jump vrrp" in got and "counter drop" in got
    # without the host firewall only VRRP and the bridge's sessions are filtered
    assert [r for r in got if "dport" in r] == [
        "tcp dport 514 ct state new add @bridge_senders_514 { ip saddr ct count over 20 } counter drop",
        "tcp dport 514 ct state new ct count over 200 counter drop"]
    assert got.index("ip protocol vrrp jump vrrp") < got.index(
        "tcp dport 514 ct state new ct count over 200 counter drop")
    proc = nft_check(text, tmp_path)
    assert proc.returncode == 0, proc.stdout + text


def test_vrrp_only_on_the_pair_link_when_there_is_one(tmp_path):
    text = render(firewall=False, bridge=False, pair={"name": "pair0", "address": "10.255.255.1/30"},
                  peer_pair={"name": "pair0", "address": "10.255.255.2/30"})
    got = rules(text)
    vrrp = got[got.index("chain vrrp {") + 1:]
    vrrp = vrrp[:vrrp.index("}")]
    # from the peer's pair-link address on the pair link; VRRP on the exporter segments reaches no accept rule
    assert vrrp == ['iifname "pair0" ip saddr 10.255.255.2 accept', "counter drop"]
    assert 'iifname "pair0" ip protocol vrrp jump vrrp' in got
    assert 'iifname { "vec1", "vec2" } jump exporter_segments' in got and "ip protocol vrrp jump vrrp" in got
    proc = nft_check(text, tmp_path)
    assert proc.returncode == 0, proc.stdout + text


def test_host_firewall(tmp_path):
    text = render()
    got = rules(text)
    assert "udp dport { 162, 514 } accept" in got
    assert "ip saddr { 10.10.1.0/24, 10.10.2.0/24 } tcp dport { 514 } accept" in got
    assert "ip saddr { 192.0.2.0/24 } tcp dport 22 accept" in got
    assert got.index("ip protocol vrrp jump vrrp") < got.index("ct state established,related accept")
    assert got[-3:] == ["counter drop", "}", "}"]
    proc = nft_check(text, tmp_path)
    assert proc.returncode == 0, proc.stdout + text


def test_host_firewall_without_vrrp_bridge_or_ssh(tmp_path):
    text = render(vrrp=False, bridge=False, management=())
    got = rules(text)
    assert "vrrp" not in text.split("table inet logfwdr {", 2)[2]
    assert not [r for r in got if "tcp dport" in r]
    proc = nft_check(text, tmp_path)
    assert proc.returncode == 0, proc.stdout + text


def test_ipv6_exporters_can_find_the_replicator_through_the_firewall(tmp_path):
    """With an IPv6 address on a segment, the filter admits neighbour discovery there (else the exporters never
    learn the replicator's MAC and nothing is copied); without one, no ICMPv6 rule is written."""
    assert "icmpv6" not in render()
    ingress = [dict(INGRESS[0], address6="2001:db8:10::2/64"), INGRESS[1]]
    text = render(ingress=ingress)
    assert "icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, echo-request, destination-unreachable, " \
           "packet-too-big, time-exceeded, parameter-problem } accept" in rules(text)
    lines = rules(text)
    # before the segment chain's final drop
    assert [i for i, r in enumerate(lines) if r.startswith("icmpv6")][0] < len(lines) - 1 - lines[::-1].index(
        "counter drop")
    result = nft_check(text, tmp_path)
    assert result.returncode == 0, result.stdout


def test_ipv6_bridge_senders_and_management_networks(tmp_path):
    """An IPv6 segment: the bridge's IPv6 senders get their own per-sender session set (ipv6_addr) and accept rule,
    and SSH is admitted from IPv6 management networks; IPv4 stays as it was."""
    ingress = [dict(INGRESS[0], address6="2001:db8:10::2/64"), INGRESS[1]]
    text = render(ingress=ingress, management=("192.0.2.0/24", "2001:db8:ff::/64"))
    got = rules(text)
    assert "type ipv6_addr" in got and "set bridge_senders6_514 {" in got
    assert "tcp dport 514 ct state new add @bridge_senders_514 { ip saddr ct count over 20 } counter drop" in got
    assert "tcp dport 514 ct state new add @bridge_senders6_514 { ip6 saddr ct count over 20 } counter drop" in got
    assert "ip saddr { 10.10.1.0/24, 10.10.2.0/24 } tcp dport { 514 } accept" in got
    assert "ip6 saddr { 2001:db8:10::/64 } tcp dport { 514 } accept" in got
    assert "ip saddr { 192.0.2.0/24 } tcp dport 22 accept" in got
    assert "ip6 saddr { 2001:db8:ff::/64 } tcp dport 22 accept" in got
    proc = nft_check(text, tmp_path)
    assert proc.returncode == 0, proc.stdout + text
    # an IPv4-only replicator has no IPv6 set or rule
    assert "ip6" not in render() and "ipv6_addr" not in render()


def test_bridge_on_ipv6_binds_before_duplicate_address_detection_ends():
    def sysctl(**changed):
        variables = dict(bridgeconf.DEFAULTS, logfwdr_vrrp=False, logfwdr_syslog_bridge=True,
                         logfwdr_ingress_interfaces=[dict(INGRESS[0], address6="2001:db8:10::2/64")],
                         logfwdr_egress_interfaces=EGRESS, logfwdr_collectors=COLLECTORS)
        variables.update(changed)
        # validate.yml's fact, as the role sets it before the sysctl task
        variables["__logfwdr_syslog_bridge_inputs"] = bridgeconf.role_vars(variables, "/w", "/s")[
            "__logfwdr_syslog_bridge_inputs"]
        return bridgeconf.role_var("__logfwdr_sysctl", variables, like=("sysctl",))

    got = sysctl()
    assert ["net.ipv6.ip_nonlocal_bind", 1] in got and ["net.ipv4.ip_nonlocal_bind", 1] not in got
    for changed in ({"logfwdr_syslog_bridge": False}, {"logfwdr_ingress_interfaces": INGRESS}):
        assert "net.ipv6.ip_nonlocal_bind" not in [k for k, _v in sysctl(**changed)], changed


def test_nft_refuses_a_broken_ruleset(tmp_path):
    """The check can fail: the role's validate (nft -c -f) stops a broken file."""
    text = render().replace("udp dport { 162, 514 }", "udp dport { 162 514 }")
    proc = nft_check(text, tmp_path)
    assert proc.returncode != 0 and "syntax error" in proc.stdout


@pytest.mark.parametrize("settings, problem", [
    ({"logfwdr_firewall_management_networks": ["192.0.2.1/24"]},
     "logfwdr_firewall_management_networks[0]: '192.0.2.1/24' is not an IPv4 or IPv6 prefix like 192.0.2.0/24 or "
     "2001:db8:10::/64 (192.0.2.1/24 has host bits set); did you mean 192.0.2.0/24?"),
    ({"logfwdr_firewall_management_networks": ['0.0.0.0/0 } accept; #']}, "logfwdr_firewall_management_networks[0]"),
    ({"logfwdr_firewall_management_networks": ["::/0"]},
     "logfwdr_firewall_management_networks[0]: ::/0 would admit every host; list the management hosts' prefixes"),
    ({"logfwdr_firewall_management_networks": "192.0.2.0/24"},
     "logfwdr_firewall_management_networks: must be a list of IPv4 or IPv6 prefixes, like [192.0.2.0/24, "
     "2001:db8:10::/64]"),
    ({"logfwdr_firewall_ssh_port": 0}, "logfwdr_firewall_ssh_port: 0 is not a TCP port"),
])
def test_firewall_setting_errors(settings, problem):
    with pytest.raises(AnsibleFilterError) as exc:
        host_firewall(settings, [])
    assert problem in str(exc.value)


def test_role_packages_and_unit():
    text = open(os.path.join(bridgeconf.ROLE, "templates", "logfwdr-nftables.service.j2")).read()
    assert re.search(r"^ExecStop=/usr/sbin/nft delete table inet logfwdr$", text, re.M)
    assert "nftables" in open(os.path.join(bridgeconf.ROLE, "vars", "main.yml")).read()


@pytest.mark.parametrize("vrrp, bridge, firewall, loaded", [
    (False, False, False, False), (True, False, False, True), (False, True, False, True), (False, False, True, True)])
def test_nftables_modules_are_loaded_with_the_table(vrrp, bridge, firewall, loaded):
    """Kernels that load no module on demand (the UML lab's) need nf_tables before `nft -c` runs."""
    variables = dict(bridgeconf.DEFAULTS, logfwdr_vrrp=vrrp, logfwdr_syslog_bridge=bridge, logfwdr_firewall=firewall)
    got = bridgeconf.role_var("__logfwdr_kernel_modules", variables, like=("nftables", "kernel_modules"))
    extra = ["nf_tables", "nft_ct", "nft_connlimit"] if loaded else []
    assert got == bridgeconf.DEFAULTS["logfwdr_kernel_modules"] + extra
