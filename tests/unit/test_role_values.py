# -*- coding: utf-8 -*-
"""No inventory value becomes configuration syntax: what reaches the networkd files, the systemd units and the
rsyslog configuration is checked (or quoted) first. A value with a newline would otherwise start a new section or
directive in a file the role writes as root."""

import pytest
from ansible.errors import AnsibleFilterError

from lflab import bridgeconf
from ansible_collections.netops.logfwdr.plugins.filter.replication_devices import replication_devices
from ansible_collections.netops.logfwdr.plugins.filter.syslog_bridge_inputs import syslog_bridge_inputs

INJECT = "\n[Network]\nDNS=192.0.2.53"
INGRESS = [{"name": "vec1", "address": "10.10.1.2/24"}]
EGRESS = [{"name": "vec3", "address": "10.20.1.2/24", "routes": [{"to": "10.30.0.0/16", "via": "10.20.1.254"}]}]
PROTOCOLS = bridgeconf.DEFAULTS["logfwdr_protocols"]


def with_value(where, value):
    ingress, egress = [dict(INGRESS[0])], [dict(EGRESS[0], routes=[dict(EGRESS[0]["routes"][0])])]
    target = {"ingress": ingress[0], "egress": egress[0], "route": egress[0]["routes"][0]}[where[0]]
    target[where[1]] = value
    return ingress, egress


# every field logfwdr.network.j2 writes: Name=, MTUBytes=, Address=, Destination=, Gateway=
@pytest.mark.parametrize("where", [("ingress", "name"), ("ingress", "address"), ("ingress", "mtu"),
                                   ("egress", "name"), ("egress", "address"), ("egress", "mtu"),
                                   ("route", "to"), ("route", "via")])
def test_network_file_values_with_a_newline_are_refused(where):
    good = {"name": "vec1", "address": "10.10.1.2/24", "mtu": 1500, "to": "10.30.0.0/16", "via": "10.20.1.254"}
    ingress, egress = with_value(where, str(good[where[1]]) + INJECT)
    with pytest.raises(AnsibleFilterError) as exc:
        replication_devices([], ingress, PROTOCOLS, egress_interfaces=egress)
    assert "nothing was changed" in str(exc.value)


def test_virtual_address_with_a_newline_is_refused():
    ingress = [dict(INGRESS[0], virtual_address="10.10.1.1/24" + INJECT, virtual_router_id=11)]
    with pytest.raises(AnsibleFilterError):
        replication_devices([], ingress, PROTOCOLS, egress_interfaces=EGRESS, vrrp=True)


@pytest.mark.parametrize("field, value", [
    ("tls_cert_file", "/etc/ssl/b.pem\"\nmodule(load=\"omprog\")"), ("tls_key_file", "/etc/ssl/b.key\n"),
    ("tls_ca_file", "relative/ca.pem"), ("tls_permitted_peers", ['a"b']), ("memory_max", "1G\nUser=root"),
    ("allowed_senders", ["10.0.0.0/8\n$ModLoad omprog"])])
def test_bridge_values_that_would_add_syntax_are_refused(field, value):
    settings = {"logfwdr_syslog_bridge_tls": True, "logfwdr_syslog_bridge_tls_cert_file": "/etc/ssl/b.pem",
                "logfwdr_syslog_bridge_tls_key_file": "/etc/ssl/b.key", "logfwdr_syslog_bridge_tls_auth_mode":
                "x509/name", "logfwdr_syslog_bridge_tls_ca_file": "/etc/ssl/ca.pem",
                "logfwdr_syslog_bridge_tls_permitted_peers": ["r1.example.net"]}
    settings["logfwdr_syslog_bridge_" + field] = value
    with pytest.raises(AnsibleFilterError) as exc:
        syslog_bridge_inputs(settings, INGRESS)
    assert "logfwdr_syslog_bridge_" + field in str(exc.value)


def test_systemd_specifiers_in_the_key_path_stay_literal(tmp_path):
    inventory = {"logfwdr_ingress_interfaces": INGRESS, "logfwdr_egress_interfaces": EGRESS, "logfwdr_collectors": [],
                 "logfwdr_syslog_bridge_tls": True, "logfwdr_syslog_bridge_tls_cert_file": "/etc/ssl/b.pem",
                 "logfwdr_syslog_bridge_tls_key_file": "/etc/ssl/%h.key"}
    _text, variables = bridgeconf.render_conf(inventory, str(tmp_path))
    unit = bridgeconf.render("logfwdr-syslog-bridge.service.j2", variables)
    assert "\nLoadCredential=tls-key:/etc/ssl/%%h.key\n" in unit
