# -*- coding: utf-8 -*-
"""VRRP inventory checks (replication_devices, vrrp_instances): the errors an operator sees, and the data
keepalived.conf is rendered from."""

import copy

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.netops.logfwdr.plugins.filter import vrrp_instances as vrrp_mod
from ansible_collections.netops.logfwdr.plugins.filter.replication_devices import replication_devices
from ansible_collections.netops.logfwdr.plugins.filter.vrrp_instances import vrrp_instances

from test_filter_replication import EGRESS, PROTOCOLS

INGRESS = [{"name": "vec1", "address": "10.10.1.2/24", "virtual_address": "10.10.1.1/24", "virtual_router_id": 11},
           {"name": "vec2", "address": "10.10.2.2/24", "virtual_address": "10.10.2.1/24", "virtual_router_id": 12}]
PEER_INGRESS = [dict(i, address=i["address"].replace(".2/24", ".3/24")) for i in INGRESS]
# multicast, so that a host alone is complete (unicast, the default, needs the peers)
SETTINGS = dict(vrrp_mod.DEFAULTS, logfwdr_vrrp_unicast=False)


def ingress_problems(ingress, vrrp=True):
    with pytest.raises(AnsibleFilterError) as exc:
        replication_devices([], ingress, PROTOCOLS, egress_interfaces=EGRESS, vrrp=vrrp)
    message = str(exc.value)
    assert message.startswith("invalid replication inventory, nothing was changed:\n- ")
    return message.split("\n- ")[1:]


def vrrp_problems(ingress=None, settings=None, peers=None, hostvars=None, hostname=None):
    with pytest.raises(AnsibleFilterError) as exc:
        vrrp_instances(INGRESS if ingress is None else ingress, EGRESS, dict(SETTINGS, **(settings or {})),
                       peers=peers, hostvars=hostvars, hostname=hostname)
    message = str(exc.value)
    assert message.startswith("invalid VRRP settings, nothing was changed:\n- ")
    return message.split("\n- ")[1:]


def changed(index, **fields):
    out = copy.deepcopy(INGRESS)
    for key, value in fields.items():
        if value is None:
            out[index].pop(key, None)
        else:
            out[index][key] = value
    return out


# ---- replication_devices: the ingress interfaces' VRRP fields --------------------------------------------------

def test_vrrp_fields_add_only_the_virtual_address_to_what_a_segment_accepts():
    plain = [dict((k, v) for k, v in i.items() if not k.startswith("virtual")) for i in INGRESS]
    collectors = [{"name": "c1", "address": "10.20.1.31", "protocols": ["syslog"]}]
    with_vrrp = replication_devices(collectors, INGRESS, PROTOCOLS, egress_interfaces=EGRESS, vrrp=True)
    without = replication_devices(collectors, plain, PROTOCOLS, egress_interfaces=EGRESS)
    for dev, iface in zip(without, INGRESS):
        dev["addresses"].append(iface["virtual_address"].split("/")[0])
    assert with_vrrp == without


def test_vrrp_needs_virtual_address_and_router_id_on_every_ingress_interface():
    ingress = changed(1, virtual_address=None, virtual_router_id=None)
    assert ingress_problems(ingress) == [
        "logfwdr_ingress_interfaces[1].virtual_address: required with logfwdr_vrrp: true: the address the exporters "
        "send to, which moves between the replicators, like 10.10.1.1/24 (in the subnet of address, not the "
        "address itself)",
        "logfwdr_ingress_interfaces[1].virtual_router_id: required with logfwdr_vrrp: true: 1-255, the same on both "
        "replicators, unique per interface and unused by other VRRP routers on the segment"]
    # without logfwdr_vrrp the fields are optional, but come in pairs
    replication_devices([], ingress, PROTOCOLS, egress_interfaces=EGRESS)
    assert ingress_problems(changed(1, virtual_router_id=None), vrrp=False) == [
        "logfwdr_ingress_interfaces[1].virtual_router_id: set both virtual_address and virtual_router_id (for "
        "logfwdr_vrrp), or neither"]


@pytest.mark.parametrize("value, problem", [
    ("10.10.1.1", "'10.10.1.1' is not an IPv4 address with prefix length, like 10.10.1.1/24 (no prefix length)"),
    ("10.10.1.300/24", "'10.10.1.300/24' is not an IPv4 address with prefix length"),
    ("2001:db8:1::1/64", "'2001:db8:1::1/64' is not an IPv4 address with prefix length, like 10.10.1.1/24 (Expected 4 "
                         "octets in '2001:db8:1::1'); an IPv6 virtual address goes in virtual_address6"),
    ("10.10.1.2/24", "10.10.1.2 is this replicator's own address; use a free address of 10.10.1.0/24 that both "
                     "replicators share"),
    ("10.10.9.1/24", "10.10.9.1/24 is not in the subnet of address 10.10.1.2/24; use a free address of 10.10.1.0/24 "
                     "with the same prefix length, like 10.10.1.1/24"),
    ("10.10.1.1/25", "10.10.1.1/25 is not in the subnet of address 10.10.1.2/24"),
    ("10.10.1.255/24", "10.10.1.255 is the network or broadcast address of 10.10.1.0/24; use a free host address"),
])
def test_virtual_address_errors(value, problem):
    found = ingress_problems(changed(0, virtual_address=value))
    assert len(found) == 1
    assert found[0].startswith("logfwdr_ingress_interfaces[0].virtual_address: " + problem), found


@pytest.mark.parametrize("value", [0, 256, -1, "x", True, 1.5])
def test_virtual_router_id_range(value):
    assert ingress_problems(changed(1, virtual_router_id=value)) == [
        "logfwdr_ingress_interfaces[1].virtual_router_id: %r; use a number from 1 to 255 (the same on both "
        "replicators)" % (value,)]


def test_virtual_router_ids_are_unique_per_host():
    assert ingress_problems(changed(1, virtual_router_id=11)) == [
        "logfwdr_ingress_interfaces[1].virtual_router_id: 11 is already used by logfwdr_ingress_interfaces[0]; "
        "every ingress interface needs its own virtual router id"]


# ---- vrrp_instances: settings ----------------------------------------------------------------------------------

def test_instances_from_the_defaults():
    out = vrrp_instances(INGRESS, EGRESS, SETTINGS)
    assert out["instances"] == [
        {"name": "logfwdr_vec1", "interface": "vec1", "vip_interface": "vec1", "virtual_router_id": 11,
         "virtual_address": "10.10.1.1/24", "track_interfaces": ["vec2", "vec3", "vec4", "tool0"], "vrrp_sources": [],
         "virtual_address6": None},
        {"name": "logfwdr_vec2", "interface": "vec2", "vip_interface": "vec2", "virtual_router_id": 12,
         "virtual_address": "10.10.2.1/24", "track_interfaces": ["vec1", "vec3", "vec4", "tool0"], "vrrp_sources": [],
         "virtual_address6": None}]
    assert out["pair_link"] is None
    assert out["vrrp_rules"] == [{"interface": "vec1", "address": None, "mac": None},
                                 {"interface": "vec2", "address": None, "mac": None}]
    assert (out["priority"], out["version"], out["advert_int"], out["preempt"], out["preempt_delay"]) == \
        (100, 3, "0.2", True, 30)
    assert (out["unicast"], out["auth"], out["check_interval"], out["check_fall"], out["check_rise"]) == \
        (False, False, 1, 2, 2)
    assert "auth_pass" not in out and out["macs"] == {} and out["router_id"] is None
    assert (out["garp_repeat"], out["garp_delay"]) == (5, 1)


def test_values_from_templating_are_accepted():
    """ansible-core < 2.19 hands the filter strings for "{{ var }}"."""
    templated = dict((k, str(v)) for k, v in SETTINGS.items() if k not in ("logfwdr_vrrp_macs", "logfwdr_vrrp_pair_link"))
    out = vrrp_instances(INGRESS, EGRESS, templated)
    assert (out["priority"], out["advert_int"], out["preempt"], out["unicast"]) == (100, "0.2", True, False)


@pytest.mark.parametrize("settings, problem", [
    ({"logfwdr_vrrp_priority": 0}, "logfwdr_vrrp_priority: 0; use 1-254, higher on the primary"),
    ({"logfwdr_vrrp_priority": 255}, "logfwdr_vrrp_priority: 255; use 1-254"),
    ({"logfwdr_vrrp_version": 4}, "logfwdr_vrrp_version: 4; use 3 (RFC 5798, sub-second adverts) or 2"),
    ({"logfwdr_vrrp_advert_interval": 0.005}, "logfwdr_vrrp_advert_interval: 0.005; VRRPv3 advertises every 0.01 "
                                              "to 40.95 seconds in steps of 0.01"),
    ({"logfwdr_vrrp_advert_interval": 0.25, "logfwdr_vrrp_version": 2},
     "logfwdr_vrrp_advert_interval: 0.25; VRRPv2 advertises in whole seconds: use 1-255, or logfwdr_vrrp_version: "
     "3 for sub-second adverts"),
    ({"logfwdr_vrrp_version": 2}, "logfwdr_vrrp_advert_interval: 0.2; VRRPv2 advertises in whole seconds"),
    ({"logfwdr_vrrp_advert_interval": "fast"}, "logfwdr_vrrp_advert_interval: 'fast' is not a number of seconds"),
    ({"logfwdr_vrrp_auth_pass": "secret"}, "logfwdr_vrrp_auth_pass: VRRPv3 has no authentication (RFC 5798 removed "
                                           "it); leave logfwdr_vrrp_auth_pass empty, or set logfwdr_vrrp_version: 2"),
    ({"logfwdr_vrrp_auth_pass": "muchtoolong", "logfwdr_vrrp_version": 2, "logfwdr_vrrp_advert_interval": 1},
     "logfwdr_vrrp_auth_pass: use 1-8 characters"),
    ({"logfwdr_vrrp_auth_pass": "a b", "logfwdr_vrrp_version": 2, "logfwdr_vrrp_advert_interval": 1},
     "logfwdr_vrrp_auth_pass: use 1-8 characters"),
    ({"logfwdr_vrrp_preempt_delay": 1001}, "logfwdr_vrrp_preempt_delay: 1001; use 0-1000 seconds"),
    ({"logfwdr_vrrp_check_interval": 0}, "logfwdr_vrrp_check_interval: 0; use a whole number of seconds"),
    ({"logfwdr_vrrp_check_fall": 0}, "logfwdr_vrrp_check_fall: 0; use a number of consecutive checks"),
    ({"logfwdr_vrrp_preempt": "maybe"}, "logfwdr_vrrp_preempt: 'maybe'; use true or false"),
    ({"logfwdr_vrrp_unicast": True}, "logfwdr_vrrp_peers: logfwdr_vrrp_unicast needs the other replicator(s): "
                                     "group replicators has no other host; list them in logfwdr_vrrp_peers"),
])
def test_setting_errors(settings, problem):
    found = vrrp_problems(settings=settings)
    assert len(found) == 1, found
    assert found[0].startswith(problem), found


def test_every_problem_at_once():
    found = vrrp_problems(settings={"logfwdr_vrrp_priority": 300, "logfwdr_vrrp_version": 3,
                                    "logfwdr_vrrp_auth_pass": "x", "logfwdr_vrrp_check_rise": -1})
    assert [p.split(":")[0] for p in found] == ["logfwdr_vrrp_priority", "logfwdr_vrrp_auth_pass",
                                                "logfwdr_vrrp_check_rise"]


@pytest.mark.parametrize("interval, text", [(0.2, "0.2"), (1, "1"), (0.05, "0.05"), ("1.50", "1.5"), (40.95, "40.95")])
def test_advert_interval_as_keepalived_reads_it(interval, text):
    assert vrrp_instances(INGRESS, EGRESS, dict(SETTINGS, logfwdr_vrrp_advert_interval=interval))["advert_int"] == text


def test_version_2_with_authentication():
    out = vrrp_instances(INGRESS, EGRESS, dict(SETTINGS, logfwdr_vrrp_version=2, logfwdr_vrrp_advert_interval=1,
                                               logfwdr_vrrp_auth_pass="s3cret"))
    assert (out["version"], out["advert_int"], out["auth"]) == (2, "1", True)
    # -v prints the set_fact's result: the password is never in it
    assert "s3cret" not in repr(out)


def test_unicast_is_the_default():
    assert vrrp_mod.DEFAULTS["logfwdr_vrrp_unicast"] is True
    assert vrrp_problems(settings={"logfwdr_vrrp_unicast": True}) == [
        "logfwdr_vrrp_peers: logfwdr_vrrp_unicast needs the other replicator(s): group replicators has no other "
        "host; list them in logfwdr_vrrp_peers"]


@pytest.mark.parametrize("hostname", ["rep1\nstartup_script /tmp/x", "rep 1", "rep1}", 'rep"1', "", "-rep", 5])
def test_hostname_that_would_add_keepalived_syntax_is_refused(hostname):
    with pytest.raises(AnsibleFilterError) as exc:
        vrrp_instances(INGRESS, EGRESS, SETTINGS, hostname=hostname)
    assert "- inventory_hostname: %r cannot be keepalived's router_id: use a host name of letters, digits" \
        % (hostname,) in str(exc.value)


def test_router_id_is_the_checked_hostname():
    assert vrrp_instances(INGRESS, EGRESS, SETTINGS, hostname="logfwdr-a.example.net")["router_id"] == \
        "logfwdr-a.example.net"


def test_vrrp_sources_are_the_peers_address_and_mac():
    hostvars = {"rep2": {"logfwdr_ingress_interfaces": PEER_INGRESS,
                         "logfwdr_vrrp_macs": {"vec1": "52:54:00:AA:00:01"}}}
    out = vrrp_instances(INGRESS, EGRESS, dict(SETTINGS, logfwdr_vrrp_unicast=True,
                                               logfwdr_vrrp_macs={"vec2": "52:54:00:bb:00:02"}),
                         peers=["rep2"], hostvars=hostvars)
    assert [i["vrrp_sources"] for i in out["instances"]] == [
        [{"address": "10.10.1.3", "mac": "52:54:00:aa:00:01"}], [{"address": "10.10.2.3", "mac": None}]]
    assert out["macs"] == {"vec2": "52:54:00:bb:00:02"}


def test_mac_problems():
    assert vrrp_problems(settings={"logfwdr_vrrp_macs": {"vec1": "52:54:00:aa:00", "vec9": "52:54:00:aa:00:09"}}) == [
        "logfwdr_vrrp_macs.vec1: '52:54:00:aa:00' is not a MAC address like 52:54:00:12:34:56",
        "logfwdr_vrrp_macs.vec9: is no ingress interface; list the MACs of vec1, vec2 only"]
    assert vrrp_problems(settings={"logfwdr_vrrp_macs": ["52:54:00:aa:00:01"]}) == [
        "logfwdr_vrrp_macs: must be a dict of ingress interface names to MAC addresses, like {eno1: "
        "'52:54:00:12:34:56'}"]


# ---- vrrp_instances: peers ---------------------------------------------------------------------------------------

def hostvars_with(peer_ingress):
    return {"rep2": {"logfwdr_ingress_interfaces": peer_ingress}}


def test_unicast_peers_are_the_peers_addresses_on_the_same_interface():
    out = vrrp_instances(INGRESS, EGRESS, dict(SETTINGS, logfwdr_vrrp_unicast=True), peers=["rep2"],
                         hostvars=hostvars_with(PEER_INGRESS))
    assert [(i["unicast_src_ip"], i["unicast_peers"]) for i in out["instances"]] == [
        ("10.10.1.2", ["10.10.1.3"]), ("10.10.2.2", ["10.10.2.3"])]
    # multicast: no unicast fields, but the peer is still compared
    out = vrrp_instances(INGRESS, EGRESS, SETTINGS, peers=["rep2"], hostvars=hostvars_with(PEER_INGRESS))
    assert "unicast_src_ip" not in out["instances"][0] and out["peers"] == ["rep2"]


def test_peer_must_use_the_same_virtual_address_and_router_id():
    peer = copy.deepcopy(PEER_INGRESS)
    peer[0]["virtual_router_id"] = 21
    peer[1]["virtual_address"] = "10.10.2.5/24"
    assert vrrp_problems(peers=["rep2"], hostvars=hostvars_with(peer)) == [
        "logfwdr_ingress_interfaces[0].virtual_router_id: 11 here but 21 on rep2; both replicators must use the "
        "same virtual router id",
        "logfwdr_ingress_interfaces[1].virtual_address: 10.10.2.1/24 here but '10.10.2.5/24' on rep2; both "
        "replicators must share the same virtual address"]


def test_peer_problems():
    assert vrrp_problems(peers=["nosuch"], hostvars={}) == [
        "logfwdr_vrrp_peers[0]: 'nosuch' is not a host of the inventory"]
    assert vrrp_problems(peers=["rep2"], hostvars=hostvars_with(PEER_INGRESS[:1])) == [
        "logfwdr_ingress_interfaces[1].name: rep2 has no ingress interface vec2; both replicators need the same "
        "ingress interfaces"]
    far = [dict(PEER_INGRESS[0], address="10.10.7.3/24"), PEER_INGRESS[1]]
    assert vrrp_problems(peers=["rep2"], hostvars=hostvars_with(far)) == [
        "logfwdr_ingress_interfaces[0].address: rep2's address on vec1, 10.10.7.3, is not in 10.10.1.0/24; the "
        "replicators must share the segment"]
    same = [dict(PEER_INGRESS[0], address="10.10.1.2/24"), PEER_INGRESS[1]]
    assert vrrp_problems(peers=["rep2"], hostvars=hostvars_with(same)) == [
        "logfwdr_ingress_interfaces[0].address: 10.10.1.2 is also rep2's address on vec1"]
    assert vrrp_problems(settings={"logfwdr_vrrp_unicast": True}, peers=["rep2"], hostvars={"rep2": {}}) == [
        "logfwdr_vrrp_peers: rep2: its logfwdr_ingress_interfaces are unknown here, so its address on vec1 "
        "(unicast_peer) is too; define them in the inventory",
        "logfwdr_vrrp_peers: rep2: its logfwdr_ingress_interfaces are unknown here, so its address on vec2 "
        "(unicast_peer) is too; define them in the inventory"]
    # multicast: a peer whose variables are unknown is not compared, and not an error
    vrrp_instances(INGRESS, EGRESS, SETTINGS, peers=["rep2"], hostvars={"rep2": {}})


# ---- vrrp_instances: a link of the pair's own -------------------------------------------------------------------

PAIR = {"name": "pair0", "address": "10.255.255.1/30"}


def test_pair_link_carries_every_advert_and_the_addresses_stay_on_the_segments():
    hostvars = {"rep2": {"logfwdr_ingress_interfaces": PEER_INGRESS,
                         "logfwdr_vrrp_pair_link": {"name": "pair0", "address": "10.255.255.2/30"},
                         "logfwdr_vrrp_macs": {"vec1": "52:54:00:aa:00:01"}}}
    out = vrrp_instances(INGRESS, EGRESS, dict(SETTINGS, logfwdr_vrrp_unicast=True, logfwdr_vrrp_pair_link=PAIR),
                         peers=["rep2"], hostvars=hostvars)
    assert out["pair_link"] == PAIR
    assert [(i["interface"], i["vip_interface"], i["virtual_address"], i["unicast_src_ip"], i["unicast_peers"])
            for i in out["instances"]] == [("pair0", "vec1", "10.10.1.1/24", "10.255.255.1", ["10.255.255.2"]),
                                           ("pair0", "vec2", "10.10.2.1/24", "10.255.255.1", ["10.255.255.2"])]
    # the ingress interfaces are tracked now (keepalived's own interface is the pair link)
    assert out["instances"][0]["track_interfaces"] == ["vec1", "vec2", "vec3", "vec4", "tool0"]
    # VRRP admitted from the peer's pair-link address on the pair link only: one rule, not one per instance
    assert out["vrrp_rules"] == [{"interface": "pair0", "address": "10.255.255.2", "mac": None}]


def test_pair_link_problems():
    assert vrrp_problems(settings={"logfwdr_vrrp_pair_link": {"name": "pair 0", "address": "10.255.255.1"}}) == [
        "logfwdr_vrrp_pair_link.name: 'pair 0' is not an interface name (1-15 of A-Z a-z 0-9 _ . -); like {name: "
        "eth9, address: 10.255.255.1/30} (an interface that joins the two replicators only)",
        "logfwdr_vrrp_pair_link.address: '10.255.255.1' is not an IPv4 address with its prefix; like {name: eth9, "
        "address: 10.255.255.1/30} (an interface that joins the two replicators only)"]
    assert vrrp_problems(settings={"logfwdr_vrrp_pair_link": {"name": "pair0", "address": "fd00::1/64"}}) == [
        "logfwdr_vrrp_pair_link.address: 'fd00::1/64' is not an IPv4 address with its prefix; the pair link carries "
        "the IPv4 VRRP adverts (an IPv6 virtual address moves with them: virtual_address6); like {name: eth9, address: 10.255.255.1/30} "
        "(an interface that joins the two replicators only)"]
    assert vrrp_problems(settings={"logfwdr_vrrp_pair_link": {"name": "vec2", "address": "10.255.255.1/30"}}) == [
        "logfwdr_vrrp_pair_link.name: vec2 is also an ingress or egress interface; the pair link is a link of its "
        "own between the replicators"]
    same_vrid = changed(1, virtual_router_id=11)
    assert vrrp_problems(ingress=same_vrid, settings={"logfwdr_vrrp_pair_link": PAIR}) == [
        "logfwdr_ingress_interfaces: virtual_router_id 11 is used on more than one ingress interface; with "
        "logfwdr_vrrp_pair_link all instances share one link, so give each its own id"]
    peer = {"logfwdr_ingress_interfaces": PEER_INGRESS}
    assert vrrp_problems(settings={"logfwdr_vrrp_pair_link": PAIR}, peers=["rep2"], hostvars={"rep2": peer}) == [
        "logfwdr_vrrp_pair_link: rep2 has no (valid) logfwdr_vrrp_pair_link; set it on both replicators"]
    far = dict(peer, logfwdr_vrrp_pair_link={"name": "pair0", "address": "10.255.254.2/30"})
    assert vrrp_problems(settings={"logfwdr_vrrp_pair_link": PAIR}, peers=["rep2"], hostvars={"rep2": far}) == [
        "logfwdr_vrrp_pair_link.address: rep2's pair-link address, 10.255.254.2, is not in 10.255.255.0/30; give "
        "both ends addresses in one subnet"]


def test_registered_as_filters():
    assert vrrp_mod.FilterModule().filters() == {"vrrp_instances": vrrp_instances}


# ---- the peer's MAC from the peer itself, logfwdr_vrrp_require_pair_link, the warning -------------------------

from ansible_collections.netops.logfwdr.plugins.plugin_utils import vrrp as vrrp_utils  # noqa: E402

PEER_LINKS = {"rep2": {"vec1": "52:54:00:00:02:01", "vec2": "52:54:00:00:02:02"}}


def unicast(**kw):
    """The defaults (unicast) on rep1 with rep2 as its peer."""
    hostvars = kw.pop("hostvars", {"rep2": {"logfwdr_ingress_interfaces": PEER_INGRESS}})
    return vrrp_instances(INGRESS, EGRESS, dict(vrrp_mod.DEFAULTS, **kw.pop("settings", {})), peers=["rep2"],
                          hostvars=hostvars, hostname="rep1", **kw)


def test_peer_adverts_are_bound_to_the_mac_read_from_the_peer():
    got = unicast(peer_links=PEER_LINKS)
    assert got["vrrp_rules"] == [
        {"interface": "vec1", "address": "10.10.1.3", "mac": "52:54:00:00:02:01"},
        {"interface": "vec2", "address": "10.10.2.3", "mac": "52:54:00:00:02:02"}]
    # the peer's logfwdr_vrrp_macs overrides what was read (it is checked against it when both are known)
    hostvars = {"rep2": {"logfwdr_ingress_interfaces": PEER_INGRESS,
                         "logfwdr_vrrp_macs": {"vec1": "52:54:00:00:02:01"}}}
    assert [r["mac"] for r in unicast(peer_links={"rep2": None}, hostvars=dict(
        hostvars, rep2=dict(hostvars["rep2"], logfwdr_vrrp_macs={"vec1": "52:54:00:00:0a:01",
                                                                 "vec2": "52:54:00:00:0a:02"})))["vrrp_rules"]] == [
        "52:54:00:00:0a:01", "52:54:00:00:0a:02"]
    # without peer_links (the filter on its own, or logfwdr_nftables off): only listed MACs, else address only
    assert [r["mac"] for r in unicast()["vrrp_rules"]] == [None, None]


def test_peer_mac_problems():
    # the peer did not read its interfaces (not in the play) and lists no MACs: the run stops, naming the fix
    with pytest.raises(AnsibleFilterError) as exc:
        unicast(peer_links={"rep2": None})
    assert str(exc.value).split("\n- ")[1:] == [
        "logfwdr_vrrp_peers: rep2 did not read its interfaces in this run (it is not in the play: --limit, serial, or "
        "it failed before), so its MACs are unknown and the VRRP rule cannot bind its adverts to them; run the play "
        "on both replicators (--limit rep1,rep2), or set logfwdr_vrrp_macs (its MAC per ingress interface) in rep2's "
        "host_vars"]
    with pytest.raises(AnsibleFilterError) as exc:
        unicast(peer_links={"rep2": {"vec1": "52:54:00:00:02:01"}})
    assert "logfwdr_ingress_interfaces[1].name: rep2 has no interface vec2 (ip link on rep2)" in str(exc.value)
    hostvars = {"rep2": {"logfwdr_ingress_interfaces": PEER_INGRESS,
                         "logfwdr_vrrp_macs": {"vec1": "52:54:00:00:0a:01"}}}
    with pytest.raises(AnsibleFilterError) as exc:
        unicast(peer_links=PEER_LINKS, hostvars=hostvars)
    assert ("logfwdr_ingress_interfaces[0].name: rep2's logfwdr_vrrp_macs.vec1 is 52:54:00:00:0a:01, but its vec1 has "
            "52:54:00:00:02:01; this host would drop its adverts") in str(exc.value)
    # this host's own logfwdr_vrrp_macs against its interfaces as read in this run
    with pytest.raises(AnsibleFilterError) as exc:
        unicast(peer_links=PEER_LINKS, links={"vec1": "52:54:00:00:01:01"},
                settings={"logfwdr_vrrp_macs": {"vec1": "52:54:00:00:01:09"}})
    assert ("logfwdr_vrrp_macs.vec1: 52:54:00:00:01:09 in the inventory, but rep1's vec1 has 52:54:00:00:01:01; the "
            "peer admits VRRP only from this MAC") in str(exc.value)


def test_a_pair_link_needs_no_mac():
    hostvars = {"rep2": {"logfwdr_ingress_interfaces": PEER_INGRESS,
                         "logfwdr_vrrp_pair_link": {"name": "pair0", "address": "10.255.255.2/30"}}}
    got = unicast(peer_links={"rep2": None}, hostvars=hostvars, settings={
        "logfwdr_vrrp_pair_link": {"name": "pair0", "address": "10.255.255.1/30"},
        "logfwdr_vrrp_require_pair_link": True})
    assert got["vrrp_rules"] == [{"interface": "pair0", "address": "10.255.255.2", "mac": None}]
    assert got["warnings"] == [] and got["require_pair_link"] is True


def test_require_pair_link_and_the_warning():
    got = unicast(peer_links=PEER_LINKS)
    assert got["require_pair_link"] is False
    (warning,) = got["warnings"]
    assert warning.startswith("VRRP adverts travel on the exporter segments (logfwdr_vrrp_pair_link is unset): the "
                              "role's nftables table admits them only from the peer's address and MAC, so any host on "
                              "a segment that forges both")
    assert "logfwdr_vrrp_pair_link, on both replicators" in warning and "logfwdr_ha: bgp" in warning
    assert "logfwdr_vrrp_require_pair_link: true makes this an error" in warning
    # without the nftables table, and without unicast too, it says what is left
    assert "keepalived checks only the source address" in unicast(nftables=False)["warnings"][0]
    assert "nothing checks them" in unicast(nftables=False, settings={"logfwdr_vrrp_unicast": False})["warnings"][0]
    with pytest.raises(AnsibleFilterError) as exc:
        unicast(peer_links=PEER_LINKS, settings={"logfwdr_vrrp_require_pair_link": True})
    assert str(exc.value).split("\n- ")[1:] == [
        "logfwdr_vrrp_require_pair_link: true, but logfwdr_vrrp_pair_link is unset: VRRP adverts on the exporter "
        "segments can be forged by any host there that forges a MAC too; give the pair a link of its own "
        "(logfwdr_vrrp_pair_link, on both replicators), or route the service addresses instead (logfwdr_ha: bgp), "
        "or set logfwdr_vrrp_require_pair_link: false"]
    with pytest.raises(AnsibleFilterError, match="logfwdr_vrrp_require_pair_link: 'maybe'; use true"):
        unicast(settings={"logfwdr_vrrp_require_pair_link": "maybe"})


@pytest.mark.parametrize("register, expected", [
    ({"stdout": '[{"ifname": "eno1", "address": "52:54:00:AA:00:01"}, {"ifname": "lo", "address": "x"}]'},
     {"eno1": "52:54:00:aa:00:01"}),
    ({"skipped": True}, None), ({"failed": True, "stdout": ""}, None), ({"stdout": "not json"}, None), (None, None),
    ('[{"ifname": "eno1", "address": "52:54:00:aa:00:01"}]', {"eno1": "52:54:00:aa:00:01"})])
def test_links_from_ip_json_link_show(register, expected):
    assert vrrp_utils.links(register) == expected
