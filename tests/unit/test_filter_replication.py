# -*- coding: utf-8 -*-
"""replication_devices: inventory -> tc_mirror devices, and the errors an operator sees."""

import copy
import ipaddress
import os

import jinja2
import pytest
import yaml
from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.netops.logfwdr.plugins.filter.replication_devices import FilterModule, replication_devices
from ansible_collections.netops.logfwdr.plugins.module_utils.tc import layout, model
from ansible_collections.netops.logfwdr.plugins.module_utils.tc.argspec import tc_mirror_spec
from ansible_collections.netops.logfwdr.plugins.plugin_utils.inventory import (
    COLLECTOR_FIELDS, EGRESS_FIELDS, INGRESS_FIELDS)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ROLE = os.path.join(REPO, "roles", "logfwdr")
PROTOCOLS = yaml.safe_load(open(os.path.join(ROLE, "defaults", "main.yml")))["logfwdr_protocols"]

INGRESS = [{"name": "vec1", "address": "10.10.1.2/24"}, {"name": "vec2", "address": "10.10.2.2/24", "mtu": 1500}]
EGRESS = [{"name": "vec3", "address": "10.20.1.2/24", "routes": [{"to": "10.30.0.0/16", "via": "10.20.1.254"}]},
          {"name": "vec4", "address": "10.20.2.2/24"},
          {"name": "tool0"}]


def build(collectors, ingress=None, protocols=None, egress=None):
    return replication_devices(collectors, INGRESS if ingress is None else ingress, protocols or PROTOCOLS,
                               egress_interfaces=EGRESS if egress is None else egress)


def problems(collectors, **kwargs):
    with pytest.raises(AnsibleFilterError) as exc:
        build(collectors, **kwargs)
    message = str(exc.value)
    assert message.startswith("invalid replication inventory, nothing was changed:\n- ")
    return message.split("\n- ")[1:]


def ports_of(devices, ifname):
    dev = [d for d in devices if d["name"] == ifname][0]
    return dict((p["port"], p["destinations"]) for p in dev["ports"])


def test_registered_as_filter():
    assert FilterModule().filters()["replication_devices"] is replication_devices


def test_every_ingress_replicates_every_wanted_protocol_in_collector_order():
    devices = build([
        {"name": "syslog-a", "address": "10.20.1.31", "protocols": ["syslog", "snmptrap"], "ports": {"syslog": 1514}},
        {"name": "flows", "address": "10.30.0.5", "protocols": ["netflow", 4739]},
        {"name": "ids", "mode": "mirror", "device": "tool0", "protocols": ["syslog"]},
    ])
    assert [d["name"] for d in devices] == ["vec1", "vec2"]
    for ifname in ("vec1", "vec2"):
        ports = ports_of(devices, ifname)
        assert sorted(ports) == [162, 514, 2055, 4739]
        assert ports[514] == [
            {"name": "syslog-a", "mode": "forward", "address": "10.20.1.31", "port": 1514},
            {"name": "ids", "mode": "mirror", "device": "tool0"},
        ]
        assert ports[162] == [{"name": "syslog-a", "mode": "forward", "address": "10.20.1.31"}]
        assert ports[4739] == [{"name": "flows", "mode": "forward", "address": "10.30.0.5"}]
    # ports come out in ascending order
    assert [p["port"] for p in devices[0]["ports"]] == [162, 514, 2055, 4739]


def test_no_mac_or_device_for_forward_collectors():
    devices = build([{"name": "c", "address": "10.20.1.31", "protocols": ["syslog"]}])
    dest = devices[0]["ports"][0]["destinations"][0]
    assert "next_hop_mac" not in dest and "device" not in dest


def test_port_rewrite_to_the_usual_port_is_no_rewrite():
    devices = build([{"name": "c", "address": "10.20.1.31", "protocols": ["syslog"], "ports": {"syslog": 514}}])
    assert "port" not in devices[0]["ports"][0]["destinations"][0]


def test_sources_list_applies_to_every_protocol_dict_to_the_named_ones():
    devices = build([
        {"name": "all", "address": "10.20.1.31", "protocols": ["syslog", "sflow"], "sources": ["10.10.1.0/24"]},
        {"name": "some", "address": "10.20.2.34", "protocols": ["sflow", "syslog"],
         "sources": {"syslog": ["10.10.2.0/24"]}},
    ])
    ports = ports_of(devices, "vec1")
    assert ports[514][0]["sources"] == ["10.10.1.0/24"]
    assert ports[6343][0]["sources"] == ["10.10.1.0/24"]
    assert ports[514][1]["sources"] == ["10.10.2.0/24"]
    assert "sources" not in ports[6343][1]


def test_ingress_restriction():
    devices = build([
        {"name": "everywhere", "address": "10.20.1.31", "protocols": ["syslog"]},
        {"name": "seg2-only", "address": "10.20.1.32", "protocols": ["syslog", "ipfix"], "ingress": ["vec2"]},
    ])
    assert ports_of(devices, "vec1") == {514: [{"name": "everywhere", "mode": "forward", "address": "10.20.1.31"}]}
    assert [d["name"] for d in ports_of(devices, "vec2")[514]] == ["everywhere", "seg2-only"]
    assert [d["name"] for d in ports_of(devices, "vec2")[4739]] == ["seg2-only"]


def test_ingress_without_collectors_keeps_an_empty_entry():
    # tc_mirror then removes the role's rules there
    assert [(d["name"], d["ports"]) for d in build([])] == [("vec1", []), ("vec2", [])]


def test_each_segment_accepts_its_own_and_virtual_address_from_its_subnet_and_declared_networks():
    ingress = [dict(INGRESS[0], virtual_address="10.10.1.1/24", virtual_router_id=51,
                    exporter_networks=["172.16.0.0/12"]),
               INGRESS[1]]
    devices = replication_devices([], ingress, PROTOCOLS, exporter_networks=["198.51.100.0/24", "10.10.1.128/25"])
    first, second = devices
    assert first["addresses"] == ["10.10.1.2", "10.10.1.1"]
    # the segment's own subnet swallows the declared /25 inside it
    assert first["sources"] == ["10.10.1.0/24", "172.16.0.0/12", "198.51.100.0/24"]
    assert second["addresses"] == [str(ipaddress.ip_interface(INGRESS[1]["address"]).ip)]
    assert "172.16.0.0/12" not in second["sources"] and "198.51.100.0/24" in second["sources"]


@pytest.mark.parametrize("kwargs,field", [
    ({"exporter_networks": ["10.0.0.1/8"]}, "logfwdr_exporter_networks[0]"),
    ({"port_rate_limit": -1}, "logfwdr_port_rate_limit"),
    ({"port_burst": 100}, "logfwdr_port_burst"),
])
def test_segment_scope_errors_name_the_variable(kwargs, field):
    with pytest.raises(AnsibleFilterError) as info:
        replication_devices([{"name": "c", "address": "10.20.1.31", "protocols": ["syslog"]}], INGRESS, PROTOCOLS,
                            **kwargs)
    assert "- %s: " % field in str(info.value)


def test_reassembly_is_chosen_per_segment_and_reaches_the_module_valid():
    ingress = [dict(INGRESS[0], fragments="reassemble"), dict(INGRESS[1], fragments="first")]
    devices = replication_devices([{"name": "c", "address": "10.20.1.31", "protocols": ["snmptrap"]}], ingress,
                                  PROTOCOLS)
    assert [d.get("fragments") for d in devices] == ["reassemble", "first"]
    # the module's own argument spec and model take what the filter wrote
    result = ArgumentSpecValidator(tc_mirror_spec()).validate({"devices": devices})
    assert not result.error_messages
    resolved = model.validate(result.validated_parameters, InventoryHost(ingress, EGRESS))
    assert [d["fragments"] for d in resolved] == ["reassemble", "first"]
    # a segment that does not say keeps the module's default
    assert "fragments" not in build([])[0]


def test_a_bad_fragments_mode_names_the_segment_and_changes_nothing():
    ingress = [INGRESS[0], dict(INGRESS[1], fragments="all")]
    found = problems([{"name": "c", "address": "10.20.1.31", "protocols": ["syslog"]}], ingress=ingress)
    assert [p for p in found if p.startswith("logfwdr_ingress_interfaces[1].fragments: 'all' is not one of "
                                             "first, reassemble")], found


def test_the_port_cap_reaches_every_port():
    devices = replication_devices([{"name": "c", "address": "10.20.1.31", "protocols": ["syslog", "snmptrap"]}],
                                  INGRESS, PROTOCOLS, port_rate_limit=25000, port_burst=5000)
    ports = [p for d in devices for p in d["ports"]]
    assert ports and all((p["rate_limit"], p["burst"]) == (25000, 5000) for p in ports)


def test_user_protocols_and_numeric_strings():
    protocols = dict(PROTOCOLS, jflow=9996)
    devices = build([{"name": "c", "address": "10.20.1.31", "protocols": ["jflow", "5140"], "rate_limit": 500,
                      "burst": 50}], protocols=protocols)
    ports = ports_of(devices, "vec1")
    assert sorted(ports) == [5140, 9996]
    assert ports[9996][0]["rate_limit"] == 500 and ports[9996][0]["burst"] == 50


def test_sample_goes_to_every_port_of_the_collector():
    devices = build([{"name": "nf", "address": "10.20.1.31", "protocols": ["netflow", "ipfix"], "sample": 100},
                     {"name": "all", "address": "10.20.1.32", "protocols": ["netflow"]}])
    ports = ports_of(devices, "vec1")
    by_name = dict(((port, d["name"]), d) for port, dests in ports.items() for d in dests)
    assert by_name[(2055, "nf")]["sample"] == 100 and by_name[(4739, "nf")]["sample"] == 100
    assert "sample" not in by_name[(2055, "all")]


def test_pool_goes_to_every_port_of_its_members():
    devices = build([{"name": "nf1", "address": "10.20.1.31", "protocols": ["netflow", "ipfix"], "pool": "flows"},
                     {"name": "nf2", "address": "10.20.1.32", "protocols": ["netflow"], "pool": "flows"},
                     {"name": "all", "address": "10.20.1.33", "protocols": ["netflow"]}])
    ports = ports_of(devices, "vec1")
    by_name = dict(((port, d["name"]), d) for port, dests in ports.items() for d in dests)
    assert [by_name[k].get("pool") for k in ((2055, "nf1"), (2055, "nf2"), (4739, "nf1"), (2055, "all"))] == \
        ["flows", "flows", "flows", None]


def test_unknown_protocol_names_field_and_fix():
    found = problems([{"name": "a", "address": "10.20.1.31", "protocols": ["syslog"]},
                      {"name": "b", "address": "10.20.1.32", "protocols": ["syslog"]},
                      {"name": "c", "address": "10.20.1.33", "protocols": ["sylog"]}])
    assert found == ["logfwdr_collectors[2].protocols[0]: unknown protocol 'sylog' (did you mean 'syslog'?); use one "
                     "of ipfix, netflow, sflow, snmptrap, syslog or a port number (or add it to logfwdr_protocols)"]


@pytest.mark.parametrize("collector, expected", [
    ({"name": "a", "mode": "mirror", "protocols": ["syslog"]},
     "logfwdr_collectors[1].device: required for mode: mirror"),
    ({"name": "a", "protocols": ["syslog"]},
     "logfwdr_collectors[1].address: required: the collector's IPv4 or global IPv6 address"),
    ({"name": "ok", "address": "10.20.1.40", "protocols": ["syslog"]},
     "logfwdr_collectors[1].name: 'ok' is already used by logfwdr_collectors[0]"),
    ({"name": "this-name-is-too-long", "address": "10.20.1.40", "protocols": ["syslog"]},
     "logfwdr_collectors[1].name: 'this-name-is-too-long'; use at most 15 printable ASCII"),
    ({"name": "has space", "address": "10.20.1.40", "protocols": ["syslog"]},
     "logfwdr_collectors[1].name: 'has space'"),
    ({"address": "10.20.1.40", "protocols": ["syslog"]}, "logfwdr_collectors[1].name: required"),
    ({"name": "a", "address": "10.20.1.40", "protocol": ["syslog"]},
     "logfwdr_collectors[1].protocol: unknown field (did you mean 'protocols'?)"),
    ({"name": "a", "address": "10.20.1.40", "protocols": []}, "logfwdr_collectors[1].protocols: required"),
    ({"name": "a", "address": "10.20.1.40", "protocols": [70000]},
     "logfwdr_collectors[1].protocols[0]: unknown protocol 70000"),
    ({"name": "a", "address": "10.20.1.40", "protocols": ["syslog", 514]},
     "logfwdr_collectors[1].protocols[1]: 514 is UDP port 514, which this collector already lists"),
    ({"name": "a", "address": "10.20.1.400", "protocols": ["syslog"]},
     "logfwdr_collectors[1].address: required: the collector's IPv4 or global IPv6 address (got '10.20.1.400')"),
    ({"name": "a", "address": "10.99.0.5", "protocols": ["syslog"]},
     "logfwdr_collectors[1].address: 10.99.0.5 is on no egress subnet and behind no route"),
    ({"name": "a", "address": "10.10.1.9", "protocols": ["syslog"]},
     "logfwdr_collectors[1].address: 10.10.1.9 is on the ingress segment 10.10.1.0/24"),
    ({"name": "a", "address": "10.20.1.40", "device": "vec3", "protocols": ["syslog"]},
     "logfwdr_collectors[1].device: forward collectors are found through the routes"),
    ({"name": "a", "mode": "mirror", "device": "vec1", "protocols": ["syslog"]},
     "logfwdr_collectors[1].device: vec1 is an ingress interface"),
    ({"name": "a", "mode": "mirror", "device": "eth9", "protocols": ["syslog"]},
     "logfwdr_collectors[1].device: 'eth9' is not in logfwdr_egress_interfaces"),
    ({"name": "a", "mode": "mirror", "device": "tool0", "address": "10.20.1.40", "protocols": ["syslog"]},
     "logfwdr_collectors[1].address: a mirror collector gets the packets unchanged"),
    ({"name": "a", "mode": "mirror", "device": "tool0", "protocols": ["syslog"], "ports": {"syslog": 1514}},
     "logfwdr_collectors[1].ports: a mirror collector gets the packets unchanged"),
    ({"name": "a", "mode": "copy", "protocols": ["syslog"]}, "logfwdr_collectors[1].mode: 'copy'; use forward"),
    ({"name": "a", "address": "10.20.1.40", "protocols": ["syslog"], "ports": {"sflow": 7000}},
     "logfwdr_collectors[1].ports.sflow: 'sflow' is not in this collector's protocols (syslog)"),
    ({"name": "a", "address": "10.20.1.40", "protocols": ["syslog"], "ports": {"syslog": 0}},
     "logfwdr_collectors[1].ports.syslog: 0 is not a UDP port"),
    ({"name": "a", "address": "10.20.1.40", "protocols": ["syslog"], "sources": ["10.10.1.1/24"]},
     "logfwdr_collectors[1].sources[0]: '10.10.1.1/24' is not an IPv4 or IPv6 prefix"),
    ({"name": "a", "address": "2001:db8::10", "protocols": ["syslog"]},
     "logfwdr_collectors[1].address: 2001:db8::10 is on no egress subnet and behind no route"),
    ({"name": "a", "address": "fe80::10", "protocols": ["syslog"]},
     "logfwdr_collectors[1].address: required: the collector's IPv4 or global IPv6 address (got 'fe80::10')"),
    ({"name": "a", "address": "10.20.1.40", "protocols": ["syslog"], "sources": {"syslog": ["2001:db8::/32"]}},
     "logfwdr_collectors[1].sources.syslog[0]: 2001:db8::/32 is an IPv6 prefix; a forward collector at 10.20.1.40 "
     "gets only the exporters of its own address family"),
    ({"name": "a", "address": "10.20.1.40", "protocols": ["syslog"], "sources": {"sflow": ["10.10.1.0/24"]}},
     "logfwdr_collectors[1].sources.sflow: 'sflow' is not in this collector's protocols"),
    ({"name": "a", "address": "10.20.1.40", "protocols": ["syslog"], "rate_limit": 0},
     "logfwdr_collectors[1].rate_limit: 0; use a whole number of packets per second above 0"),
    ({"name": "a", "address": "10.20.1.40", "protocols": ["syslog"], "sample": 0},
     "logfwdr_collectors[1].sample: 0; use a whole number from 2 to 65535"),
    ({"name": "a", "address": "10.20.1.40", "protocols": ["syslog"], "sample": "ten"},
     "logfwdr_collectors[1].sample: 'ten'; use a whole number from 2 to 65535"),
    ({"name": "a", "address": "10.20.1.40", "protocols": ["syslog"], "pool": "a pool"},
     "logfwdr_collectors[1].pool: 'a pool'; use at most 14 printable ASCII characters"),
    ({"name": "a", "address": "10.20.1.40", "protocols": ["syslog"], "pool": "p", "sample": 10},
     "logfwdr_collectors[1].sample: a pool member cannot have sample"),
    ({"name": "a", "address": "10.20.1.40", "protocols": ["syslog"], "pool": "p", "sources": ["10.10.1.0/24"]},
     "logfwdr_collectors[1].sources: a pool member cannot have sources"),
    ({"name": "a", "address": "10.20.1.40", "protocols": ["syslog"], "burst": 10},
     "logfwdr_collectors[1].burst: only meaningful with rate_limit"),
    ({"name": "a", "address": "10.20.1.40", "protocols": ["syslog"], "ingress": ["vec9"]},
     "logfwdr_collectors[1].ingress[0]: 'vec9' is not in logfwdr_ingress_interfaces (vec1, vec2)"),
    ({"name": "a", "address": "10.20.1.31", "protocols": ["syslog"], "sources": ["10.10.2.0/24"]},
     "logfwdr_collectors[1]: gets port 514 at the same address as logfwdr_collectors[0] (ok); merge the two"),
])
def test_collector_errors(collector, expected):
    found = problems([{"name": "ok", "address": "10.20.1.31", "protocols": ["syslog"]}, collector])
    assert any(p.startswith(expected) for p in found), found


def test_all_problems_reported_at_once():
    found = problems([{"name": "a", "protocols": ["sylog"]}, {"name": "a", "mode": "mirror", "protocols": [514]}])
    assert [p.split(":")[0] for p in found] == [
        "logfwdr_collectors[0].address", "logfwdr_collectors[0].protocols[0]",
        "logfwdr_collectors[1].name", "logfwdr_collectors[1].device"]


@pytest.mark.parametrize("ingress, egress, expected", [
    ([{"name": "vec1"}], EGRESS, "logfwdr_ingress_interfaces[0].address: required"),
    ([{"name": "vec1", "address": "10.10.1.2"}], EGRESS,
     "logfwdr_ingress_interfaces[0].address: '10.10.1.2' is not this host's IPv4 address with prefix length"),
    ([{"name": "vec1", "address": "2001:db8:1::2/64"}], EGRESS,
     "logfwdr_ingress_interfaces[0].address: '2001:db8:1::2/64' is not this host's IPv4 address with prefix length, "
     "like 10.10.1.2/24 (Expected 4 octets in '2001:db8:1::2'); an IPv6 address goes in address6, like "
     "2001:db8:10::2/64"),
    ([{"name": "vec1", "address": "10.10.1.2/24", "address6": "fe80::2/64"}], EGRESS,
     "logfwdr_ingress_interfaces[0].address6: 'fe80::2/64' is not this host's IPv6 address with prefix length"),
    ([{"name": "vec1", "address": "10.10.1.2/24", "address6": "2001:db8:1::2"}], EGRESS,
     "logfwdr_ingress_interfaces[0].address6: '2001:db8:1::2' is not this host's IPv6 address with prefix length, "
     "like 2001:db8:10::2/64 (no prefix length)"),
    ([{"name": "vec1", "address": "10.10.1.2/24", "address6": "2001:db8:1::2/64", "virtual_address6": "2001:db8:1::1/64"}],
     EGRESS, "logfwdr_ingress_interfaces[0].virtual_address6: needs virtual_address and virtual_router_id"),
    ([{"name": "vec1", "address": "10.10.1.2/24", "virtual_address": "10.10.1.1/24", "virtual_router_id": 1,
       "virtual_address6": "2001:db8:1::1/64"}], EGRESS,
     "logfwdr_ingress_interfaces[0].virtual_address6: needs address6"),
    ([{"name": "vec1", "address": "10.10.1.2/24", "address6": "2001:db8:1::2/64", "virtual_address": "10.10.1.1/24",
       "virtual_router_id": 1, "virtual_address6": "2001:db8:2::1/64"}], EGRESS,
     "logfwdr_ingress_interfaces[0].virtual_address6: 2001:db8:2::1/64 is not in the subnet of address6"),
    ([{"name": "vec1", "address": "10.10.1.2/24", "address6": "2001:db8:1::2/64", "virtual_address": "10.10.1.1/24",
       "virtual_router_id": 1, "virtual_address6": "2001:db8:1::2/64"}], EGRESS,
     "logfwdr_ingress_interfaces[0].virtual_address6: 2001:db8:1::2 is this replicator's own address"),
    (INGRESS, [{"name": "vec3", "address": "10.20.1.2/24", "routes": [{"to": "2001:db8:30::/48", "via": "fe80::1"}]}],
     "logfwdr_egress_interfaces[0].routes[0]: a route needs an address on the interface; add "
     "logfwdr_egress_interfaces[0].address6"),
    (INGRESS, [{"name": "vec3", "address": "10.20.1.2/24", "address6": "2001:db8:20::2/64",
                "routes": [{"to": "2001:db8:30::/48", "via": "2001:db8:21::1"}]}],
     "logfwdr_egress_interfaces[0].routes[0].via: 2001:db8:21::1 is not in vec3's subnet 2001:db8:20::/64"),
    (INGRESS, [{"name": "vec3", "address": "10.20.1.2/24", "routes": [{"to": "10.30.0.0/16", "via": "fe80::1"}]}],
     "logfwdr_egress_interfaces[0].routes[0].via: fe80::1 is an IPv6 address and to 10.30.0.0/16 an IPv4 prefix"),
    ([{"name": "vec1", "address": "10.10.1.2/24", "exporter_networks": ["2001:db8:2::/48"]}], EGRESS,
     "logfwdr_ingress_interfaces[0].exporter_networks[0]: 2001:db8:2::/48 is an IPv6 prefix, and this interface has "
     "no address6"),
    ([{"name": "vec1", "address": "10.10.1.0/24"}], EGRESS,
     "logfwdr_ingress_interfaces[0].address: '10.10.1.0/24' is not this host's IPv4 address"),
    ([{"name": "vec1", "address": "10.10.1.2/24", "mtu": 20}], EGRESS, "logfwdr_ingress_interfaces[0].mtu: 20"),
    ([{"name": "bad/name", "address": "10.10.1.2/24"}], EGRESS,
     "logfwdr_ingress_interfaces[0].name: 'bad/name' is not an interface name"),
    ([{"name": "vec3", "address": "10.10.1.2/24"}], EGRESS,
     "logfwdr_egress_interfaces[0].name: vec3 is already listed at logfwdr_ingress_interfaces[0]"),
    ([], EGRESS, "logfwdr_ingress_interfaces: empty"),
    (INGRESS, [{"name": "vec3", "address": "10.20.1.2/24", "routes": [{"to": "10.30.0.0/16", "via": "10.9.9.9"}]}],
     "logfwdr_egress_interfaces[0].routes[0].via: 10.9.9.9 is not in vec3's subnet 10.20.1.0/24"),
    (INGRESS, [{"name": "vec3", "address": "10.20.1.2/24", "routes": [{"to": "10.30.0.1/16", "via": "10.20.1.1"}]}],
     "logfwdr_egress_interfaces[0].routes[0].to: '10.30.0.1/16' is not an IPv4 or IPv6 prefix"),
    (INGRESS, [{"name": "vec3", "adress": "10.20.1.2/24"}],
     "logfwdr_egress_interfaces[0].adress: unknown field (did you mean 'address'?)"),
])
def test_interface_errors(ingress, egress, expected):
    found = problems([], ingress=ingress, egress=egress)
    assert any(p.startswith(expected) for p in found), found


def test_bad_protocol_table():
    found = problems([], protocols={"syslog": 514, "odd": "x"})
    assert found == ["logfwdr_protocols.odd: 'x' is not a UDP port; use 1-65535"]


def test_without_egress_interfaces_reachability_is_left_to_tc_mirror():
    devices = replication_devices([{"name": "c", "address": "10.99.0.5", "protocols": ["syslog"]}], INGRESS,
                                  PROTOCOLS)
    assert ports_of(devices, "vec1")[514][0]["address"] == "10.99.0.5"


def test_input_is_not_modified():
    collectors = [{"name": "c", "address": "10.20.1.31", "protocols": ["syslog"], "sources": ["10.10.1.0/24"]}]
    before = copy.deepcopy(collectors)
    build(collectors)
    assert collectors == before


def test_fields_match_the_role_argument_spec():
    spec = yaml.safe_load(open(os.path.join(ROLE, "meta", "argument_specs.yml")))["argument_specs"]["main"]["options"]
    assert sorted(spec["logfwdr_collectors"]["options"]) == sorted(COLLECTOR_FIELDS)
    assert sorted(spec["logfwdr_ingress_interfaces"]["options"]) == sorted(INGRESS_FIELDS)
    assert sorted(spec["logfwdr_egress_interfaces"]["options"]) == sorted(EGRESS_FIELDS)


# ---- inventories: the filter's output is a state tc_mirror accepts ---------------------------------------------

class InventoryHost(model.Resolver):
    """A replicator as the inventory describes it: its interfaces, subnets and routes."""

    def __init__(self, ingress, egress):
        self.links = dict((i["name"], n + 1) for n, i in enumerate(ingress + egress))
        self.routes = []
        for iface in egress:
            for field in ("address", "address6"):
                if iface.get(field):
                    self.routes.append((ipaddress.ip_interface(iface[field]).network, iface["name"], None))
            for route in iface.get("routes") or []:
                self.routes.append((ipaddress.ip_network(route["to"]), iface["name"], route["via"]))

    def link(self, name):
        index = self.links.get(name)
        return {"ifindex": index, "mac": "02:00:00:00:00:%02x" % index, "up": True} if index else None

    def route(self, address):
        found = [r for r in self.routes if ipaddress.ip_address(address) in r[0]]
        if not found:
            return None
        best = max(found, key=lambda r: r[0].prefixlen)
        return {"device": best[1], "gateway": best[2]}

    def neighbour(self, device, address):
        return "52:54:00:00:00:01"


def test_an_ipv6_inventory_gives_a_state_that_copies_ipv6_where_it_is_declared():
    ingress = [{"name": "vec1", "address": "10.10.1.2/24", "address6": "2001:db8:10::2/64",
                "exporter_networks": ["2001:db8:99::/48", "10.99.0.0/16"]},
               {"name": "vec2", "address": "10.10.2.2/24"}]
    egress = [{"name": "vec3", "address": "10.20.1.2/24", "address6": "2001:db8:20::2/64",
               "routes": [{"to": "2001:db8:30::/48", "via": "2001:db8:20::1"}]},
              {"name": "tool0"}]
    collectors = [{"name": "v4", "address": "10.20.1.31", "protocols": ["syslog"]},
                  {"name": "v6", "address": "2001:db8:30::10", "protocols": ["syslog", "snmptrap"],
                   "sources": {"snmptrap": ["2001:db8:99:1::/64"]}},
                  {"name": "ids", "mode": "mirror", "device": "tool0", "protocols": ["syslog"],
                   "sources": ["10.10.1.0/24", "2001:db8:10::/64"]}]
    variables = {"logfwdr_collectors": collectors, "logfwdr_ingress_interfaces": ingress,
                 "logfwdr_egress_interfaces": egress, "logfwdr_protocols": {"syslog": 514, "snmptrap": 162},
                 "logfwdr_priority": 5140}
    devices, resolved = tc_mirror_accepts(variables)
    vec1 = [d for d in resolved if d["name"] == "vec1"][0]
    assert vec1["families"] == [4, 6]
    assert vec1["addresses"] == ["10.10.1.2", "2001:db8:10::2"]
    assert vec1["sources"] == ["10.10.1.0/24", "10.99.0.0/16", "2001:db8:10::/64", "2001:db8:99::/48"]
    six = layout.family_view(vec1, 6)
    assert dict((p["port"], [(d["name"], d.get("sources")) for d in p["destinations"]]) for p in six["ports"]) == {
        514: [("v6", []), ("ids", ["2001:db8:10::/64"])], 162: [("v6", ["2001:db8:99:1::/64"])]}
    v6 = six["ports"][0]["destinations"][0]
    assert (v6["device"], v6["address"]) == ("vec3", "2001:db8:30::10")
    four = layout.family_view(vec1, 4)
    assert [d["name"] for d in four["ports"][0]["destinations"]] == ["v4", "ids"]
    # vec2 has no address6: its IPv4 rules only, and the IPv6 collector gets nothing there
    vec2 = [d for d in resolved if d["name"] == "vec2"][0]
    assert vec2["families"] == [4] and layout.family_view(vec2, 6)["ports"] == []
    assert [d["name"] for p in layout.family_view(vec2, 4)["ports"] for d in p["destinations"]] == ["v4", "ids"]


def test_an_ipv6_collector_no_segment_can_feed_is_refused():
    found = problems([{"name": "v6", "address": "2001:db8:20::10", "protocols": ["syslog"]}],
                     egress=[{"name": "vec3", "address": "10.20.1.2/24", "address6": "2001:db8:20::2/64"}])
    assert found == ["logfwdr_collectors[0].address: 2001:db8:20::10 is an IPv6 address, and none of its ingress "
                     "interfaces (vec1, vec2) has an IPv6 address (address6); it would get nothing"], found


def load_inventory(name, host_vars):
    """group_vars/replicators.yml of an inventory, templated with a host's variables."""
    path = os.path.join(REPO, "inventories", name, "group_vars", "replicators.yml")
    text = jinja2.Template(open(path).read()).render(**host_vars)
    variables = dict(yaml.safe_load(open(os.path.join(ROLE, "defaults", "main.yml"))))
    variables.update(yaml.safe_load(text))
    return variables


def tc_mirror_accepts(variables):
    devices = replication_devices(variables["logfwdr_collectors"], variables["logfwdr_ingress_interfaces"],
                                  variables["logfwdr_protocols"],
                                  egress_interfaces=variables["logfwdr_egress_interfaces"])
    params = {"devices": devices, "priority": variables["logfwdr_priority"]}
    result = ArgumentSpecValidator(tc_mirror_spec()).validate(params)
    assert not result.error_messages, result.error_messages
    resolved = model.validate(result.validated_parameters, InventoryHost(variables["logfwdr_ingress_interfaces"],
                                                                         variables["logfwdr_egress_interfaces"]))
    return devices, resolved


@pytest.mark.parametrize("host", ["logfwdr-a", "logfwdr-b"])
def test_example_inventory_gives_a_valid_tc_mirror_state(host):
    host_vars = yaml.safe_load(open(os.path.join(REPO, "inventories", "example", "host_vars", host + ".yml")))
    variables = load_inventory("example", host_vars)
    assert len(variables["logfwdr_ingress_interfaces"]) == 4
    assert len(variables["logfwdr_egress_interfaces"]) == 2
    assert len(variables["logfwdr_collectors"]) == 13
    devices, resolved = tc_mirror_accepts(variables)
    assert [d["name"] for d in resolved] == ["eno1", "eno2", "eno3", "eno4"]
    for dev in resolved:
        by_port = dict((p["port"], sorted(d["name"] for d in p["destinations"])) for p in dev["ports"])
        assert by_port[162] == ["paragon-insight", "sa-logoption", "zabbix"]
        assert by_port[4739] == ["flowmon", "nirvana-flow", "nsx-ndr", "stealthwatch"]
        assert len(by_port[514]) == 7  # the paper's per-port limit, reached by syslog
    # the collector behind the monitoring router goes through it
    loginsight = [d for p in resolved[0]["ports"] for d in p["destinations"] if d["name"] == "loginsight"][0]
    assert loginsight["device"] == "eno5"


def test_lab_inventory_gives_a_valid_tc_mirror_state():
    variables = load_inventory("lab", {"replicator_host_octet": 2})
    devices, resolved = tc_mirror_accepts(variables)
    vec1, vec2 = ports_of(devices, "vec1"), ports_of(devices, "vec2")
    assert [(d["name"], d.get("port"), d.get("sources")) for d in vec1[514]] == [
        ("collector1", None, None), ("collector2", 1514, None), ("collector3", None, None),
        ("collector4", None, ["10.10.2.0/24"])]
    assert [d["name"] for d in vec1[6343]] == ["collector4"] and "sources" not in vec1[6343][0]
    assert vec1 == vec2
    assert sorted(vec1) == [162, 514, 2055, 4739, 6343]


def test_the_ipv6_virtual_address_is_an_address_the_rules_accept():
    ingress = [{"name": "vec1", "address": "10.10.1.2/24", "address6": "2001:db8:10::2/64",
                "virtual_address": "10.10.1.1/24", "virtual_address6": "2001:db8:10::1/64", "virtual_router_id": 11}]
    devices = replication_devices([{"name": "ids", "mode": "mirror", "device": "tool0", "protocols": ["syslog"]}],
                                  ingress, {"syslog": 514}, egress_interfaces=[{"name": "tool0"}], vrrp=True)
    assert devices[0]["addresses"] == ["10.10.1.2", "10.10.1.1", "2001:db8:10::2", "2001:db8:10::1"]
