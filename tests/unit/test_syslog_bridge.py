# -*- coding: utf-8 -*-
"""The TCP syslog bridge: its filters (destinations, listeners), the collectors' syslog_format, and the rendered
rsyslog configuration checked by the real rsyslogd (-N1, as the role's template task validates it)."""

import copy
import ipaddress
import os
import re

import pytest
import yaml
from ansible.errors import AnsibleFilterError

from lflab import bridgeconf
from ansible_collections.netops.logfwdr.plugins.filter.replication_devices import replication_devices
from ansible_collections.netops.logfwdr.plugins.filter.syslog_bridge_inputs import (
    FilterModule as InputsFilters, syslog_bridge_inputs)
from ansible_collections.netops.logfwdr.plugins.filter.syslog_bridge_targets import (
    FilterModule as TargetsFilters, syslog_bridge_targets)

PROTOCOLS = bridgeconf.DEFAULTS["logfwdr_protocols"]
INGRESS = [{"name": "vec1", "address": "10.10.1.2/24"}, {"name": "vec2", "address": "10.10.2.2/24"}]
EGRESS = [{"name": "vec3", "address": "10.20.1.2/24"}, {"name": "vec4", "address": "10.20.2.2/24"},
          {"name": "tool0"}]

# inventories/lab's collectors (group_vars/replicators.yml), plus a mirror collector
LAB_COLLECTORS = [
    {"name": "collector1", "address": "10.20.1.31", "protocols": ["syslog"]},
    {"name": "collector2", "address": "10.20.1.32", "protocols": ["syslog", "snmptrap"], "ports": {"syslog": 1514},
     "syslog_format": "rfc3164"},
    {"name": "collector3", "address": "10.20.2.33", "protocols": ["netflow", "ipfix", "syslog"]},
    {"name": "collector4", "address": "10.20.2.34", "protocols": ["sflow", "syslog"],
     "sources": {"syslog": ["10.10.2.0/24"]}},
    {"name": "ids", "mode": "mirror", "device": "tool0", "protocols": ["syslog"]},
]
LAB = {"logfwdr_ingress_interfaces": INGRESS, "logfwdr_egress_interfaces": EGRESS,
       "logfwdr_collectors": LAB_COLLECTORS}


def targets(collectors, protocols=None, ingress=None):
    return syslog_bridge_targets(collectors, INGRESS if ingress is None else ingress, protocols or PROTOCOLS,
                                 egress_interfaces=EGRESS)


def target_problems(collectors, **kwargs):
    with pytest.raises(AnsibleFilterError) as exc:
        targets(collectors, **kwargs)
    message = str(exc.value)
    assert message.startswith("invalid replication inventory, nothing was changed:\n- ")
    return message.split("\n- ")[1:]


def inputs(**settings):
    return syslog_bridge_inputs(dict(("logfwdr_syslog_bridge_" + k, v) for k, v in settings.items()), INGRESS)


def input_problems(**settings):
    with pytest.raises(AnsibleFilterError) as exc:
        inputs(**settings)
    message = str(exc.value)
    assert message.startswith("invalid syslog bridge settings, nothing was changed:\n- ")
    return message.split("\n- ")[1:]


def rng(prefix):
    net = ipaddress.IPv4Network(prefix)
    return [int(net.network_address), int(net.broadcast_address)]


# ---- destinations ------------------------------------------------------------

def test_registered_as_filters():
    assert TargetsFilters().filters()["syslog_bridge_targets"] is syslog_bridge_targets
    assert InputsFilters().filters()["syslog_bridge_inputs"] is syslog_bridge_inputs


def test_lab_inventory():
    assert targets(LAB_COLLECTORS) == [
        {"name": "collector1", "action": "to-collector1", "address": "10.20.1.31", "port": 514, "format": "rfc5424",
         "senders": [], "ranges": [], "prefixes6": [], "pool": None, "octets": [], "octets6": []},
        {"name": "collector2", "action": "to-collector2", "address": "10.20.1.32", "port": 1514,
         "format": "rfc3164", "senders": [], "ranges": [], "prefixes6": [], "pool": None, "octets": [], "octets6": []},
        {"name": "collector3", "action": "to-collector3", "address": "10.20.2.33", "port": 514, "format": "rfc5424",
         "senders": [], "ranges": [], "prefixes6": [], "pool": None, "octets": [], "octets6": []},
        {"name": "collector4", "action": "to-collector4", "address": "10.20.2.34", "port": 514, "format": "rfc5424",
         "senders": ["10.10.2.0/24"], "ranges": [rng("10.10.2.0/24")], "prefixes6": [], "pool": None, "octets": [], "octets6": []},
    ]


def test_syslog_by_port_number_and_by_a_renamed_port():
    assert [t["name"] for t in targets([{"name": "a", "address": "10.20.1.31", "protocols": [514]},
                                        {"name": "b", "address": "10.20.1.32", "protocols": ["514"]},
                                        {"name": "c", "address": "10.20.1.33", "protocols": [5140]}])] == ["a", "b"]
    protocols = dict(PROTOCOLS, syslog=5140)
    found = targets([{"name": "a", "address": "10.20.1.31", "protocols": [514]},
                     {"name": "c", "address": "10.20.1.33", "protocols": ["syslog"]}], protocols=protocols)
    assert [(t["name"], t["port"]) for t in found] == [("c", 5140)]


def test_sources_list_dict_and_unaligned_prefixes():
    found = targets([
        {"name": "list", "address": "10.20.1.31", "protocols": ["syslog", "sflow"], "sources": ["10.10.1.0/25"]},
        {"name": "dict", "address": "10.20.1.32", "protocols": ["syslog"],
         "sources": {"syslog": ["10.10.2.2/31", "10.10.1.64/26"]}},
        {"name": "other", "address": "10.20.1.33", "protocols": ["syslog", "sflow"],
         "sources": {"sflow": ["10.10.1.0/24"]}},
        # overlapping prefixes are merged
        {"name": "merged", "address": "10.20.1.34", "protocols": ["syslog"],
         "sources": ["10.10.1.0/25", "10.10.1.128/25", "10.10.1.7/32"]},
    ])
    by = dict((t["name"], t) for t in found)
    assert by["list"]["senders"] == ["10.10.1.0/25"] and by["list"]["ranges"] == [rng("10.10.1.0/25")]
    assert by["dict"]["senders"] == ["10.10.1.64/26", "10.10.2.2/31"]
    assert by["dict"]["ranges"] == [rng("10.10.1.64/26"), [int(ipaddress.IPv4Address("10.10.2.2")),
                                                           int(ipaddress.IPv4Address("10.10.2.3"))]]
    assert by["other"]["senders"] == [] and by["other"]["ranges"] == []  # sources for sflow only
    assert by["merged"]["senders"] == ["10.10.1.0/24"]


def test_ingress_restricts_to_the_ingress_subnets():
    found = targets([
        {"name": "seg2", "address": "10.20.1.31", "protocols": ["syslog"], "ingress": ["vec2"]},
        {"name": "both", "address": "10.20.1.32", "protocols": ["syslog"], "ingress": ["vec1", "vec2"]},
        {"name": "narrow", "address": "10.20.1.33", "protocols": ["syslog"], "ingress": ["vec2"],
         "sources": ["10.10.0.0/16"]},
        {"name": "wide", "address": "10.20.1.34", "protocols": ["syslog"], "ingress": ["vec1"],
         "sources": ["10.10.1.16/28"]},
        # sources off every listed ingress subnet: no bridge copies at all (the tc rules still apply)
        {"name": "none", "address": "10.20.1.35", "protocols": ["syslog"], "ingress": ["vec1"],
         "sources": ["10.50.0.0/16"]},
    ])
    by = dict((t["name"], t["senders"]) for t in found)
    assert by == {"seg2": ["10.10.2.0/24"], "both": [], "narrow": ["10.10.2.0/24"], "wide": ["10.10.1.16/28"]}


POOL = [{"name": "sys%d" % i, "address": "10.20.1.%d" % (41 + i), "protocols": ["syslog"], "pool": "sys"}
        for i in range(3)] + [{"name": "all", "address": "10.20.1.31", "protocols": ["syslog"]}]


def test_a_pool_shares_the_senders_as_the_kernel_does():
    from ansible_collections.netops.logfwdr.plugins.module_utils.tc import layout
    found = dict((t["name"], t) for t in targets(POOL))
    # every last octet goes to exactly one member: the one the kernel's rules give it
    owner = {}
    for name in ("sys0", "sys1", "sys2"):
        assert found[name]["pool"] == "sys" and found[name]["octets"], found[name]
        for first, last in found[name]["octets"]:
            for octet in range(first, last + 1):
                assert octet not in owner, (octet, owner.get(octet), name)
                owner[octet] = name
    assert sorted(owner) == list(range(256))
    assert [owner[b] for b in range(256)] == [m["name"] for m in layout.pool_buckets(
        [{"name": "sys%d" % i} for i in range(3)])]
    # the same destinations, with the same pool, as the tc rules have
    (device,) = [d for d in replication_devices(POOL, INGRESS, PROTOCOLS, egress_interfaces=EGRESS)
                 if d["name"] == "vec1"]
    kernel = [d for p in device["ports"] if p["port"] == 514 for d in p["destinations"]]
    assert [(d["name"], d.get("pool")) for d in kernel] == [(n, found[n]["pool"]) for n in ("sys0", "sys1", "sys2",
                                                                                            "all")]
    assert found["all"]["pool"] is None and found["all"]["octets"] == []


def test_pool_members_must_get_the_same_senders():
    pool = copy.deepcopy(POOL)
    pool[1]["ingress"] = ["vec2"]
    found = target_problems(pool)
    assert [p for p in found if p.startswith("logfwdr_collectors[1].ingress: the members of pool 'sys' must get "
                                             "syslog from the same senders (sys0 gets all, sys1 gets 10.10.2.0/24)")
            ], found


def pool_owner(text, octet, ip=0):
    """The pool variables the rendered configuration's pool trees set for a sender with this last octet (and
    $.logfwdr_ip, -1 for an IPv6 sender): the trees' if/else/set lines, evaluated."""
    owner, stack, active = {}, [], True
    for line in text.splitlines():
        t = line.strip()
        m = re.match(r"if \$\.logfwdr_(octet|ip) (<|>=) (-?\d+) then \{$", t)
        if m:
            value = {"octet": octet, "ip": ip}[m.group(1)]
            cond = value < int(m.group(3)) if m.group(2) == "<" else value >= int(m.group(3))
            stack.append((active, cond))
            active = active and cond
        elif t == "} else {" and stack:
            active = stack[-1][0] and not stack[-1][1]
        elif t == "}" and stack:
            active = stack.pop()[0]
        else:
            m = re.match(r'set (\$\.logfwdr_pool_\d+) = "([^"]*)";$', t)
            if m and active:
                owner[m.group(1)] = m.group(2)
    return owner


def test_a_pool_renders_to_one_member_per_octet(rsyslogd, tmp_path):
    """The member of each last octet is found by halving (at most 8 comparisons, one per level) and is the one
    the kernel's rules give the octet; each member's action is guarded by it."""
    from ansible_collections.netops.logfwdr.plugins.module_utils.tc import layout
    text, _vars = bridgeconf.render_conf(dict(LAB, logfwdr_collectors=POOL + [dict(
        LAB_COLLECTORS[3], name="narrow", pool=None)]), str(tmp_path))
    result = bridgeconf.check(_write(tmp_path, text))
    assert result.returncode == 0, text + "\n" + result.stdout
    assert "    set $.logfwdr_octet = $.logfwdr_ip % 256;\n" in text
    owners = [m["name"] for m in layout.pool_buckets([{"name": "sys%d" % i} for i in range(3)])]
    assert [pool_owner(text, octet) for octet in range(256)] == [{"$.logfwdr_pool_0": o} for o in owners]
    assert max(len(line) - len(line.lstrip()) for line in text.splitlines() if "logfwdr_octet <" in line) <= 4 * 8
    for name in ("sys0", "sys1", "sys2"):
        assert '    if $.logfwdr_pool_0 == "%s" then {\n        action(name="to-%s"' % (name, name) in text, name
    # outside the pool nothing changes: every sender, or its own senders
    assert "\n    action(name=\"to-all\"" in text
    low, high = rng("10.10.2.0/24")
    assert "if ($.logfwdr_ip >= %d and $.logfwdr_ip <= %d) then {\n        action(name=\"to-narrow\"" % (
        low, high) in text


def test_mirror_and_non_syslog_collectors_get_nothing():
    assert targets([{"name": "ids", "mode": "mirror", "device": "tool0", "protocols": ["syslog"]},
                    {"name": "flows", "address": "10.20.1.31", "protocols": ["netflow"]}]) == []


def test_unusual_names_are_quoted_for_rsyslog(tmp_path):
    inventory = dict(LAB, logfwdr_collectors=[{"name": 'a"b\\c#', "address": "10.20.1.31", "protocols": ["syslog"]}])
    text, _vars = bridgeconf.render_conf(inventory, str(tmp_path))
    assert 'action(name="to-a\\"b\\\\c#"' in text
    path = tmp_path / "bridge.conf"
    path.write_text(text)
    result = bridgeconf.check(str(path))
    assert result.returncode == 0, result.stdout


# ---- syslog_format -----------------------------------------------------------

def test_syslog_format_is_ignored_by_the_tc_rules():
    plain = [{"name": "a", "address": "10.20.1.31", "protocols": ["syslog"]}]
    formatted = [dict(plain[0], syslog_format="rfc3164")]
    assert (replication_devices(formatted, INGRESS, PROTOCOLS, egress_interfaces=EGRESS)
            == replication_devices(plain, INGRESS, PROTOCOLS, egress_interfaces=EGRESS))


@pytest.mark.parametrize("collector, expected", [
    ({"name": "a", "address": "10.20.1.31", "protocols": ["syslog"], "syslog_format": "rfc5425"},
     "logfwdr_collectors[0].syslog_format: 'rfc5425'; use rfc5424 (RFC 5424 with the original HOSTNAME and the "
     "sender in [origin ip=...]) or rfc3164 (RFC 3164 with the sender's address as HOSTNAME)"),
    ({"name": "a", "address": "10.20.1.31", "protocols": ["syslog"], "syslog_format": ["rfc5424"]},
     "logfwdr_collectors[0].syslog_format: ['rfc5424']; use rfc5424"),
    ({"name": "a", "mode": "mirror", "device": "tool0", "protocols": ["syslog"], "syslog_format": "rfc3164"},
     "logfwdr_collectors[0].syslog_format: a mirror collector gets no copies from the syslog bridge; remove "
     "syslog_format or use mode: forward"),
    ({"name": "a", "address": "10.20.1.31", "protocols": ["netflow"], "syslog_format": "rfc3164"},
     "logfwdr_collectors[0].syslog_format: only for a collector that receives syslog (port 514); add syslog to "
     "protocols or remove syslog_format"),
    ({"name": "a", "address": "10.20.1.31", "protocols": ["syslog"], "syslog_fromat": "rfc3164"},
     "logfwdr_collectors[0].syslog_fromat: unknown field (did you mean 'syslog_format'?)"),
])
def test_syslog_format_errors_name_the_field(collector, expected):
    for problems in (target_problems([collector]),
                     _replication_problems([collector])):
        assert len(problems) == 1 and problems[0].startswith(expected), problems


def _replication_problems(collectors):
    with pytest.raises(AnsibleFilterError) as exc:
        replication_devices(collectors, INGRESS, PROTOCOLS, egress_interfaces=EGRESS)
    return str(exc.value).split("\n- ")[1:]


def test_inventory_errors_are_those_of_replication_devices():
    bad = [{"name": "a", "address": "10.20.1.31", "protocols": ["sylog"]},
           {"name": "a", "address": "10.99.0.1", "protocols": ["syslog"], "sources": ["10.10.1.1/24"]}]
    assert target_problems(bad) == _replication_problems(bad)


# ---- listeners and allow-list ------------------------------------------------

def test_defaults_allow_the_ingress_subnets_on_514():
    assert inputs() == {"allowed_senders": ["10.10.1.0/24", "10.10.2.0/24"], "inputs": [{"port": 514, "tls": False}],
                        "addresses": ["10.10.1.2", "10.10.2.2"], "families": [4], "tls_files": [], "queue_size": 10000,
                        "stats_interval": 10, "max_sessions": 200, "max_sessions_per_sender": 20,
                        "memory_max": "512M"}


def test_role_defaults_are_the_filters_defaults():
    from ansible_collections.netops.logfwdr.plugins.filter.syslog_bridge_inputs import DEFAULTS
    for key, value in DEFAULTS.items():
        assert bridgeconf.DEFAULTS["logfwdr_syslog_bridge_" + key] == value, key
    assert set(bridgeconf.SETTINGS) == set("logfwdr_syslog_bridge_" + k for k in DEFAULTS)


def test_allowed_senders_and_tls():
    found = inputs(allowed_senders=["192.0.2.0/28", "198.51.100.7", "192.0.2.0/28"], port="1514", tls=True,
                   tls_cert_file="/etc/ssl/b.pem", tls_key_file="/etc/ssl/b.key", tls_ca_file="/etc/ssl/ca.pem",
                   tls_auth_mode="x509/name", tls_permitted_peers=["*.example.net"])
    assert found["allowed_senders"] == ["192.0.2.0/28", "198.51.100.7/32"]
    assert found["inputs"] == [
        {"port": 1514, "tls": False},
        {"port": 6514, "tls": True, "auth_mode": "x509/name", "ca_file": "/etc/ssl/ca.pem",
         "cert_file": "/etc/ssl/b.pem", "key_file": "/etc/ssl/b.key", "permitted_peers": ["*.example.net"]}]
    assert [f["variable"] for f in found["tls_files"]] == [
        "logfwdr_syslog_bridge_tls_ca_file", "logfwdr_syslog_bridge_tls_cert_file",
        "logfwdr_syslog_bridge_tls_key_file"]


def test_tls_settings_are_ignored_while_tls_is_off():
    assert inputs(tls_port=514, tls_auth_mode="x509/name")["inputs"] == [{"port": 514, "tls": False}]


@pytest.mark.parametrize("settings, expected", [
    ({"port": 0}, ["logfwdr_syslog_bridge_port: 0 is not a TCP port; use 1-65535 (514 is syslog's)"]),
    ({"allowed_senders": ["10.10.1.5/24"]},
     ["logfwdr_syslog_bridge_allowed_senders[0]: '10.10.1.5/24' is not an IPv4 or IPv6 prefix like 192.0.2.0/24 or "
      "2001:db8:10::/64 (10.10.1.5/24 has host bits set); did you mean 10.10.1.0/24?"]),
    ({"allowed_senders": ["2001:db8::5/32", "0.0.0.0/0", "::/0"]},
     ["logfwdr_syslog_bridge_allowed_senders[0]: '2001:db8::5/32' is not an IPv4 or IPv6 prefix like 192.0.2.0/24 "
      "or 2001:db8:10::/64 (2001:db8::5/32 has host bits set); did you mean 2001:db8::/32?",
      "logfwdr_syslog_bridge_allowed_senders[1]: 0.0.0.0/0 would admit every host; list the senders' prefixes",
      "logfwdr_syslog_bridge_allowed_senders[2]: ::/0 would admit every host; list the senders' prefixes"]),
    ({"allowed_senders": "10.10.1.0/24"},
     ["logfwdr_syslog_bridge_allowed_senders: must be a list of IPv4 or IPv6 prefixes, like [10.10.1.0/24, "
      "2001:db8:10::/64], or [] for the ingress subnets"]),
    ({"queue_size": 0, "stats_interval": "x"},
     ["logfwdr_syslog_bridge_queue_size: 0; use a whole number above 0",
      "logfwdr_syslog_bridge_stats_interval: 'x'; use a whole number above 0"]),
    ({"tls": True},
     ["logfwdr_syslog_bridge_tls_cert_file: required with logfwdr_syslog_bridge_tls: true: the path on the "
      "replicator of the bridge's certificate (PEM)",
      "logfwdr_syslog_bridge_tls_key_file: required with logfwdr_syslog_bridge_tls: true: the path on the "
      "replicator of the bridge's private key (PEM)"]),
    ({"tls": True, "tls_port": 514, "tls_cert_file": "c.pem", "tls_key_file": "/k\"ey",
      "tls_auth_mode": "x509/certvalid"},
     ["logfwdr_syslog_bridge_tls_port: 514 is also logfwdr_syslog_bridge_port; the plain and the TLS listener need "
      "their own ports (6514 is syslog over TLS)",
      "logfwdr_syslog_bridge_tls_ca_file: required with logfwdr_syslog_bridge_tls_auth_mode: x509/certvalid: the "
      "path on the replicator of the CA certificate (PEM) that signed the senders' certificates",
      "logfwdr_syslog_bridge_tls_cert_file: 'c.pem'; use an absolute path without quotes or backslashes",
      "logfwdr_syslog_bridge_tls_key_file: '/k\"ey'; use an absolute path without quotes or backslashes"]),
    ({"tls": True, "tls_cert_file": "/c", "tls_key_file": "/k", "tls_ca_file": "/ca", "tls_auth_mode": "x509/name"},
     ["logfwdr_syslog_bridge_tls_permitted_peers: required with logfwdr_syslog_bridge_tls_auth_mode: x509/name: the "
      "names (CN or DNS SAN) of the senders' certificates, like [router1.example.net]; wildcards like *.example.net "
      "work"]),
    ({"tls": True, "tls_cert_file": "/c", "tls_key_file": "/k", "tls_permitted_peers": ["r1"]},
     ["logfwdr_syslog_bridge_tls_permitted_peers: only used with logfwdr_syslog_bridge_tls_auth_mode: x509/name; "
      "remove it or use x509/name"]),
    ({"tls": True, "tls_cert_file": "/c", "tls_key_file": "/k", "tls_auth_mode": "x509"},
     ["logfwdr_syslog_bridge_tls_auth_mode: 'x509'; use anon (encryption only, any client), x509/certvalid (clients "
      "need a certificate signed by the CA), x509/name (clients need a certificate signed by the CA whose name is "
      "in the permitted peers)"]),
])
def test_setting_errors_name_the_variable(settings, expected):
    assert input_problems(**settings) == expected


def test_unknown_setting():
    with pytest.raises(AnsibleFilterError, match="unknown settings logfwdr_syslog_bridge_prot"):
        syslog_bridge_inputs({"logfwdr_syslog_bridge_prot": 514}, INGRESS)


# ---- the role's package list -------------------------------------------------

@pytest.mark.parametrize("bridge, tls, extra", [(True, False, ["nftables"]), (True, True, ["rsyslog-gnutls", "nftables"]),
                                                (False, True, [])])
def test_packages_include_what_the_bridge_needs(bridge, tls, extra):
    """rsyslog (and gnutls for TLS) for the bridge; nftables for its session limit (tasks/firewall.yml)."""
    variables = dict(bridgeconf.DEFAULTS, logfwdr_syslog_bridge=bridge, logfwdr_syslog_bridge_tls=tls,
                     logfwdr_packages=["python3-pyroute2", "kmod"])
    got = bridgeconf.role_var("__logfwdr_packages", variables, like=("packages", "nftables"))
    assert got == ["python3-pyroute2", "kmod"] + (["rsyslog"] if bridge else []) + extra
    # the role's default list has rsyslog already: not twice
    variables["logfwdr_packages"] = bridgeconf.DEFAULTS["logfwdr_packages"]
    got = bridgeconf.role_var("__logfwdr_packages", variables, like=("packages", "nftables"))
    assert got == bridgeconf.DEFAULTS["logfwdr_packages"] + extra


# ---- the rendered configuration, checked by rsyslogd -------------------------

@pytest.fixture(scope="module")
def rsyslogd():
    if not os.path.exists(bridgeconf.RSYSLOGD):
        pytest.fail("rsyslogd is not installed (make deps installs rsyslog and rsyslog-gnutls)")
    return bridgeconf.RSYSLOGD


def _write(tmp_path, text, name="bridge.conf"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


TLS = {"logfwdr_syslog_bridge_tls": True, "logfwdr_syslog_bridge_tls_cert_file": "/etc/logfwdr/tls/bridge.pem",
       "logfwdr_syslog_bridge_tls_key_file": "/etc/logfwdr/tls/bridge.key",
       "logfwdr_syslog_bridge_tls_ca_file": "/etc/logfwdr/tls/ca.pem",
       "logfwdr_syslog_bridge_tls_auth_mode": "x509/name",
       "logfwdr_syslog_bridge_tls_permitted_peers": ["router1.example.net", "*.sw.example.net"]}


@pytest.mark.parametrize("extra", [{}, TLS, {"logfwdr_collectors": []},
                                   dict(TLS, logfwdr_syslog_bridge_tls_auth_mode="anon",
                                        logfwdr_syslog_bridge_tls_ca_file="",
                                        logfwdr_syslog_bridge_tls_permitted_peers=[])],
                         ids=["lab", "lab-tls-x509-name", "no-collectors", "tls-anon"])
def test_rendered_configuration_passes_rsyslogd_check(rsyslogd, tmp_path, extra):
    text, _vars = bridgeconf.render_conf(dict(LAB, **extra), str(tmp_path))
    result = bridgeconf.check(_write(tmp_path, text))
    assert result.returncode == 0, text + "\n" + result.stdout
    assert "End of config validation run" in result.stdout


def test_rendered_lab_configuration(tmp_path):
    text, _vars = bridgeconf.render_conf(dict(LAB, **TLS), str(tmp_path))
    assert "$AllowedSender TCP, 10.10.1.0/24, 10.10.2.0/24\n" in text
    # one listener per ingress address and port, never 0.0.0.0 or [::]
    assert re.findall(r'input\(type="imtcp" address="([^"]+)" port="(\d+)"', text) == [
        ("10.10.1.2", "514"), ("10.10.2.2", "514"), ("10.10.1.2", "6514"), ("10.10.2.2", "6514")]
    assert re.search(r'input\(type="imtcp" address="10.10.1.2" port="6514" ruleset="logfwdr_bridge" keepAlive="on"\n'
                     r'\s+streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="x509/name"', text)
    # the key as systemd hands it to the unit (LoadCredential), not the inventory's path
    assert 'streamDriver.KeyFile="%s/credentials/tls-key"' % tmp_path in text
    assert 'module(load="imtcp" maxSessions="200")' in text
    assert 'permittedPeer=["router1.example.net", "*.sw.example.net"])' in text
    assert 'log.file="%s"' % (tmp_path / "stats.log") in text
    actions = re.findall(r'action\(name="([^"]+)" type="omfwd" target="([^"]+)" port="(\d+)"\s+protocol="udp" '
                         r'template="logfwdr_(\w+)"\s+queue.type="LinkedList" queue.size="10000" '
                         r'queue.timeoutEnqueue="0"\s+action.resumeRetryCount="-1"', text)
    assert actions == [("to-collector1", "10.20.1.31", "514", "rfc5424"),
                       ("to-collector2", "10.20.1.32", "1514", "rfc3164"),
                       ("to-collector3", "10.20.2.33", "514", "rfc5424"),
                       ("to-collector4", "10.20.2.34", "514", "rfc5424")]
    low, high = rng("10.10.2.0/24")
    assert ("if ($.logfwdr_ip >= %d and $.logfwdr_ip <= %d) then {\n        action(name=\"to-collector4\""
            % (low, high)) in text
    assert "ids" not in re.sub(r"#.*", "", text)  # the mirror collector gets nothing


def test_lab_inventory_file(rsyslogd, tmp_path):
    """inventories/lab as the lab's replicators get it: the bridge's destinations and a valid configuration."""
    import jinja2
    path = os.path.join(bridgeconf.netlab.REPO, "inventories", "lab", "group_vars", "replicators.yml")
    inventory = yaml.safe_load(jinja2.Template(open(path).read()).render(replicator_host_octet=2))
    text, variables = bridgeconf.render_conf(inventory, str(tmp_path))
    found = [(t["name"], t["address"], t["port"], t["format"], t["senders"])
             for t in variables["__logfwdr_syslog_bridge_targets"]]
    want = {"collector1": (514, "rfc5424", []), "collector2": (1514, "rfc3164", []),
            "collector3": (514, "rfc5424", []), "collector4": (514, "rfc5424", ["10.10.2.0/24"])}
    for name, _address, port, fmt, senders in found:
        assert want[name] == (port, fmt, senders), name
    assert [f[0] for f in found] == [c["name"] for c in inventory["logfwdr_collectors"]
                                     if "syslog" in c["protocols"]]
    assert "$AllowedSender TCP, 10.10.1.0/24, 10.10.2.0/24\n" in text
    result = bridgeconf.check(_write(tmp_path, text))
    assert result.returncode == 0, text + "\n" + result.stdout


@pytest.mark.parametrize("breakage", [
    lambda text: text[:text.rindex("}")],                                  # ruleset never closed
    lambda text: text.replace('queue.timeoutEnqueue="0"', 'queue.timeoutEnqueu="0"', 1),   # unknown parameter
    lambda text: text.replace('template="logfwdr_rfc3164"', 'template="logfwdr_rfc3165"'),  # no such template
    lambda text: text.replace("ip42num(", "ip4num("),                     # no such function
], ids=["unclosed", "unknown-parameter", "unknown-template", "unknown-function"])
def test_broken_configuration_fails_rsyslogd_check(rsyslogd, tmp_path, breakage):
    text, _vars = bridgeconf.render_conf(LAB, str(tmp_path))
    assert bridgeconf.check(_write(tmp_path, text, "good.conf")).returncode == 0
    broken = breakage(text)
    assert broken != text
    result = bridgeconf.check(_write(tmp_path, broken, "broken.conf"))
    assert result.returncode != 0, result.stdout


def test_unit_runs_its_own_rsyslogd(tmp_path):
    _text, variables = bridgeconf.render_conf(LAB, str(tmp_path))
    unit = bridgeconf.render("logfwdr-syslog-bridge.service.j2", variables)
    assert "\nExecStart=/usr/sbin/rsyslogd -n -iNONE -f /etc/logfwdr/syslog-bridge.conf\n" in unit
    assert "\nType=notify\n" in unit
    rotate = bridgeconf.render("logfwdr-syslog-bridge.logrotate.j2", variables)
    assert rotate.splitlines()[3] == "%s {" % (tmp_path / "stats.log")
    assert "systemctl kill --signal=HUP --kill-whom=main logfwdr-syslog-bridge.service" in rotate


def test_inventory_copy_is_not_modified():
    before = copy.deepcopy(LAB_COLLECTORS)
    targets(LAB_COLLECTORS)
    assert LAB_COLLECTORS == before


# ---- a bridge a hostile sender cannot take over -------------------------------

def test_listeners_bind_to_the_ingress_and_virtual_addresses_only():
    ingress = [dict(INGRESS[0], virtual_address="10.10.1.1/24", virtual_router_id=11),
               dict(INGRESS[1], virtual_address="10.10.2.1/24", virtual_router_id=12)]
    settings = {"logfwdr_syslog_bridge_port": 514}
    assert syslog_bridge_inputs(settings, ingress, vrrp=True)["addresses"] == [
        "10.10.1.2", "10.10.1.1", "10.10.2.2", "10.10.2.1"]
    assert syslog_bridge_inputs(settings, ingress)["addresses"] == ["10.10.1.2", "10.10.2.2"]


def test_tls_only_has_no_plain_listener(tmp_path):
    found = inputs(tls=True, tls_only=True, tls_cert_file="/etc/ssl/b.pem", tls_key_file="/etc/ssl/b.key")
    assert [(i["port"], i["tls"]) for i in found["inputs"]] == [(6514, True)]
    text, _vars = bridgeconf.render_conf(dict(LAB, logfwdr_syslog_bridge_tls_only=True, **TLS), str(tmp_path))
    assert re.findall(r'input\(type="imtcp" address="([^"]+)" port="(\d+)"', text) == [
        ("10.10.1.2", "6514"), ("10.10.2.2", "6514")]
    assert len(re.findall(r'input\(type="imtcp"', text)) == 2


@pytest.mark.parametrize("settings, problem", [
    ({"tls_only": True}, "logfwdr_syslog_bridge_tls_only: needs logfwdr_syslog_bridge_tls: true"),
    ({"tls_only": "maybe"}, "logfwdr_syslog_bridge_tls_only: 'maybe'; use true or false"),
    ({"max_sessions": 0}, "logfwdr_syslog_bridge_max_sessions: 0; use the number of TCP sessions"),
    ({"max_sessions_per_sender": "x"}, "logfwdr_syslog_bridge_max_sessions_per_sender: 'x'; use the number"),
    ({"memory_max": "lots"}, "logfwdr_syslog_bridge_memory_max: 'lots'; use a size with its unit"),
    ({"memory_max": "512M\nExecStartPre=/bin/sh"}, "logfwdr_syslog_bridge_memory_max: '512M\\nExecStartPre=/bin/sh'"),
])
def test_limit_errors(settings, problem):
    found = input_problems(**settings)
    assert [p for p in found if p.startswith(problem)], found


def test_unit_runs_unprivileged_and_sandboxed(tmp_path):
    _text, variables = bridgeconf.render_conf(dict(LAB, **TLS), str(tmp_path))
    unit = bridgeconf.render("logfwdr-syslog-bridge.service.j2", variables)
    lines = [line for line in unit.splitlines() if line and not line.startswith("#")]
    for line in ("User=logfwdr-syslog", "Group=logfwdr-syslog", "AmbientCapabilities=CAP_NET_BIND_SERVICE",
                 "CapabilityBoundingSet=CAP_NET_BIND_SERVICE", "NoNewPrivileges=yes", "ProtectSystem=strict",
                 "PrivateTmp=yes", "PrivateDevices=yes", "ProtectHome=yes", "MemoryMax=512M",
                 "LoadCredential=tls-key:/etc/logfwdr/tls/bridge.key",
                 "ReadWritePaths=%s/work %s" % (tmp_path, tmp_path)):
        assert line in lines, (line, unit)
    assert not [line for line in lines if line.startswith("CapabilityBoundingSet=") and "SYS" in line]


# ---- IPv6 senders ------------------------------------------------------------

INGRESS6 = [dict(INGRESS[0], address6="2001:db8:10::2/64"), dict(INGRESS[1], address6="2001:db8:20::2/64")]
EGRESS6 = [dict(EGRESS[0], address6="2001:db8:30::2/64")] + EGRESS[1:]


def targets6(collectors):
    return syslog_bridge_targets(collectors, INGRESS6, PROTOCOLS, egress_interfaces=EGRESS6)


def test_hex_prefixes_start_exactly_the_addresses_of_their_prefix():
    """The texts an IPv6 address in a prefix starts with (written as 32 hex digits), against ipaddress's own
    membership, for prefixes of every length and addresses just inside and just outside them."""
    import random
    from ansible_collections.netops.logfwdr.plugins.filter.syslog_bridge_targets import hex_prefixes
    rnd = random.Random(6)
    for length in range(0, 129):
        net = ipaddress.IPv6Network((rnd.getrandbits(128) >> (128 - length) << (128 - length), length)) \
            if length else ipaddress.IPv6Network("::/0")
        starts = tuple(hex_prefixes(net))
        first, last = int(net.network_address), int(net.broadcast_address)
        probes = [first, last, first - 1, last + 1] + [rnd.getrandbits(128) for _n in range(20)]
        probes += [first ^ (1 << b) for b in range(128)]  # each bit flipped: inside below the prefix, outside in it
        for value in probes:
            if 0 <= value < 2 ** 128:
                address = ipaddress.IPv6Address(value)
                assert ("%032x" % value).startswith(starts) == (address in net), (str(net), str(address))
        assert not "-".startswith(starts)  # what an IPv4 sender has instead
        assert len(starts) <= (16 if length == 0 else 8)
    assert hex_prefixes(ipaddress.IPv6Network("2001:db8:77::/65")) == [
        "20010db8007700000", "20010db8007700001", "20010db8007700002", "20010db8007700003", "20010db8007700004",
        "20010db8007700005", "20010db8007700006", "20010db8007700007"]


def test_ipv6_senders_by_sources_ingress_and_pool():
    found = dict((t["name"], t) for t in targets6([
        {"name": "all", "address": "10.20.1.31", "protocols": ["syslog"]},
        {"name": "six", "address": "2001:db8:30::41", "protocols": ["syslog"], "sources": ["2001:db8:10:0:8000::/65"]},
        {"name": "seg2", "address": "10.20.1.32", "protocols": ["syslog"], "ingress": ["vec2"]},
        {"name": "four", "address": "10.20.1.33", "protocols": ["syslog"], "sources": ["10.10.1.0/25"]},
        # an IPv6 allow-list off the only listed segment: nothing from the bridge
        {"name": "none", "address": "2001:db8:30::42", "protocols": ["syslog"], "ingress": ["vec1"],
         "sources": ["2001:db8:20::/64"]},
    ]))
    assert sorted(found) == ["all", "four", "seg2", "six"]
    assert (found["all"]["senders"], found["all"]["ranges"], found["all"]["prefixes6"]) == ([], [], [])
    assert found["six"]["senders"] == ["2001:db8:10:0:8000::/65"] and found["six"]["ranges"] == []
    assert found["six"]["prefixes6"] == ["20010db800100000%x" % d for d in range(8, 16)]
    # a segment's senders are those of both its subnets
    assert found["seg2"]["senders"] == ["10.10.2.0/24", "2001:db8:20::/64"]
    assert found["seg2"]["ranges"] == [rng("10.10.2.0/24")] and found["seg2"]["prefixes6"] == ["20010db800200000"]
    assert found["four"]["prefixes6"] == []


def test_listeners_and_allow_list_take_the_ipv6_addresses():
    ingress = [dict(INGRESS6[0], virtual_address="10.10.1.1/24", virtual_router_id=11,
                    virtual_address6="2001:db8:10::1/64"), INGRESS[1]]
    settings = {"logfwdr_syslog_bridge_port": 514}
    found = syslog_bridge_inputs(settings, ingress, vrrp=True)
    assert found["addresses"] == ["10.10.1.2", "2001:db8:10::2", "10.10.1.1", "2001:db8:10::1", "10.10.2.2"]
    assert found["allowed_senders"] == ["10.10.1.0/24", "2001:db8:10::/64", "10.10.2.0/24"]
    assert found["families"] == [4, 6]
    assert syslog_bridge_inputs(settings, ingress)["addresses"] == ["10.10.1.2", "2001:db8:10::2", "10.10.2.2"]
    assert syslog_bridge_inputs(dict(settings, logfwdr_syslog_bridge_allowed_senders=[
        "2001:db8:10::/48", "2001:db8:99::7"]), ingress)["allowed_senders"] == ["2001:db8:10::/48", "2001:db8:99::7/128"]


def _owned(runs):
    return [n for a, b in runs for n in range(a, b + 1)]


def test_a_pool_shares_each_family_among_its_members_of_that_family():
    """As the kernel does: IPv6 senders among the IPv6 members (rendezvous over them: the same buckets as the
    kernel's rules give them), IPv4 senders to the IPv4 member; a family no member is of goes to every member."""
    from ansible_collections.netops.logfwdr.plugins.module_utils.tc import layout
    pool = [{"name": "v4", "address": "10.20.1.41", "protocols": ["syslog"], "pool": "sys"}] + [
        {"name": "v6-%d" % i, "address": "2001:db8:30::4%d" % i, "protocols": ["syslog"], "pool": "sys"}
        for i in range(2)]
    found = dict((t["name"], t) for t in targets6(pool))
    assert _owned(found["v4"]["octets"]) == list(range(256)) and found["v4"]["octets6"] == []
    owners = [m["name"] for m in layout.pool_buckets([{"name": "v6-0"}, {"name": "v6-1"}])]
    for name in ("v6-0", "v6-1"):
        assert found[name]["octets"] == []
        assert _owned(found[name]["octets6"]) == [b for b in range(256) if owners[b] == name]
    # an IPv4-only pool: IPv6 senders are shared by the same mapping as IPv4 ones
    for t in targets6(POOL):
        assert t["octets6"] == t["octets"], t


def test_an_ipv6_bridge_renders_and_passes_rsyslogd_check(rsyslogd, tmp_path):
    pool = [{"name": "m%d" % i, "address": "2001:db8:30::4%d" % i, "protocols": ["syslog"], "pool": "sys"}
            for i in range(2)]
    inventory = dict(LAB, logfwdr_ingress_interfaces=INGRESS6, logfwdr_egress_interfaces=EGRESS6,
                     logfwdr_collectors=pool + [
                         {"name": "six", "address": "2001:db8:30::51", "protocols": ["syslog"],
                          "sources": ["2001:db8:10::/64"]}], **TLS)
    text, _vars = bridgeconf.render_conf(inventory, str(tmp_path))
    result = bridgeconf.check(_write(tmp_path, text))
    assert result.returncode == 0, text + "\n" + result.stdout
    # rsyslog's own messages: an IPv6 prefix it cannot parse is only a warning, and the line is then cut there
    assert "error" not in result.stdout.lower() and "ignor" not in result.stdout.lower(), result.stdout
    assert "$AllowedSender TCP, 10.10.1.0/24, [2001:db8:10::]/64, 10.10.2.0/24, [2001:db8:20::]/64\n" in text
    assert re.findall(r'input\(type="imtcp" address="([^"]+)" port="514"', text) == [
        "10.10.1.2", "2001:db8:10::2", "10.10.2.2", "2001:db8:20::2"]
    assert 'if $.logfwdr_ip6 startswith ["20010db800100000"] then {\n        action(name="to-six"' in text
    # IPv6 senders share the pool by their last byte, IPv4 ones by their last octet: both the kernel's mapping
    from ansible_collections.netops.logfwdr.plugins.module_utils.tc import layout
    owners = [m["name"] for m in layout.pool_buckets([{"name": "m0"}, {"name": "m1"}])]
    for ip in (0, -1):
        assert [pool_owner(text, octet, ip) for octet in range(256)] == [{"$.logfwdr_pool_0": o} for o in owners]


def test_the_ipv6_address_is_spelled_out_only_where_a_collector_needs_it(tmp_path):
    text, _vars = bridgeconf.render_conf(dict(LAB, logfwdr_collectors=POOL), str(tmp_path))
    assert "logfwdr_ip6" not in text and "$fromhost-ip contains" not in text
    assert "$AllowedSender TCP, 10.10.1.0/24, 10.10.2.0/24\n" in text
    # IPv6 listeners, collectors without IPv6 prefixes and no pool: ip42num() alone (-1 for an IPv6 sender)
    text, _vars = bridgeconf.render_conf(dict(LAB, logfwdr_ingress_interfaces=INGRESS6, logfwdr_egress_interfaces=EGRESS6,
                                              logfwdr_collectors=LAB_COLLECTORS), str(tmp_path))
    assert "address=\"2001:db8:10::2\"" in text and "logfwdr_ip6" not in text and "$fromhost-ip contains" not in text
    # a pool, no IPv6 prefix: the last byte only
    text, _vars = bridgeconf.render_conf(dict(LAB, logfwdr_ingress_interfaces=INGRESS6, logfwdr_egress_interfaces=EGRESS6,
                                              logfwdr_collectors=POOL), str(tmp_path))
    assert "logfwdr_ip6" not in text and "set $.logfwdr_hi = " in text
