# -*- coding: utf-8 -*-
"""The one inventory model (plugins/plugin_utils/inventory.py) and the action that reads the role's variables
(netops.logfwdr.inventory_model): one set of converters for every filter, and the views the role gets are the
filters' own results for the same inventory."""

import json
import os
import subprocess
import sys

import pytest
import yaml
from ansible.errors import AnsibleFilterError

from ansible_collections.netops.logfwdr.plugins.filter.replication_devices import replication_devices
from ansible_collections.netops.logfwdr.plugins.filter.syslog_bridge_inputs import syslog_bridge_inputs
from ansible_collections.netops.logfwdr.plugins.filter.syslog_bridge_targets import syslog_bridge_targets
from ansible_collections.netops.logfwdr.plugins.filter.vrrp_instances import DEFAULTS as VRRP_DEFAULTS
from ansible_collections.netops.logfwdr.plugins.filter.vrrp_instances import vrrp_instances
from ansible_collections.netops.logfwdr.plugins.plugin_utils import inventory

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COLLECTIONS = os.path.join(REPO, ".build", "collections")

INGRESS = [{"name": "vec1", "address": "10.10.1.2/24", "virtual_address": "10.10.1.1/24", "virtual_router_id": 11}]
EGRESS = [{"name": "vec3", "address": "10.20.1.2/24"}]
PROTOCOLS = {"syslog": 514, "netflow": 2055}
COLLECTORS = [{"name": "siem", "address": "10.20.1.31", "protocols": ["syslog", "netflow"], "ports": {"syslog": 1514},
               "syslog_format": "rfc3164"}]


@pytest.mark.parametrize("value,expected", [
    (True, True), ("yes", True), ("on", True), ("1", True), (1, True),
    (False, False), ("no", False), ("off", False), (0, False),
    (5, None), ("maybe", None), ([], None)])
def test_one_boolean_for_every_filter(value, expected):
    assert inventory.boolean(value) is expected
    # the VRRP and the bridge settings read a switch the same way (they used to differ on 1 and 5)
    settings = dict(VRRP_DEFAULTS, logfwdr_vrrp_preempt=value, logfwdr_vrrp_unicast=False)
    if expected is None:
        with pytest.raises(AnsibleFilterError, match="logfwdr_vrrp_preempt: .*use true or false"):
            vrrp_instances(INGRESS, EGRESS, settings)
        with pytest.raises(AnsibleFilterError, match="logfwdr_syslog_bridge_tls_only: .*use true or false"):
            syslog_bridge_inputs({"logfwdr_syslog_bridge_tls_only": value}, INGRESS)
    else:
        assert vrrp_instances(INGRESS, EGRESS, settings)["preempt"] is expected
        listeners = syslog_bridge_inputs({"logfwdr_syslog_bridge_tls_only": value,
                                          "logfwdr_syslog_bridge_tls": value,
                                          "logfwdr_syslog_bridge_tls_cert_file": "/etc/c.pem",
                                          "logfwdr_syslog_bridge_tls_key_file": "/etc/k.pem"}, INGRESS)["inputs"]
        assert [i["tls"] for i in listeners] == ([True] if expected else [False])


@pytest.mark.parametrize("value,expected", [(514, 514), ("514", 514), (" 514 ", 514), (514.0, 514), (0, None),
                                            (65536, None), (True, None), ("51x", None), (None, None)])
def test_one_port_converter(value, expected):
    assert inventory.parse_port(value) == expected


def test_model_is_parsed_once_for_every_view():
    model = inventory.parse_replication(COLLECTORS, INGRESS, PROTOCOLS, EGRESS)
    assert model["ingress"] == ["vec1"] and model["egress"] == ["vec3"]
    assert str(model["ingress_by_name"]["vec1"]) == "10.10.1.2/24"
    (siem,) = model["collectors"]
    assert siem["ports"] == [514, 2055] and siem["rewrite"] == {514: 1514} and siem["syslog_format"] == "rfc3164"
    # the bridge's destination is the same collector the tc rules forward to, on the same port
    (target,) = syslog_bridge_targets(COLLECTORS, INGRESS, PROTOCOLS, egress_interfaces=EGRESS)
    (device,) = replication_devices(COLLECTORS, INGRESS, PROTOCOLS, egress_interfaces=EGRESS)
    syslog = [d for p in device["ports"] if p["port"] == 514 for d in p["destinations"]]
    assert [(d["address"], d["port"]) for d in syslog] == [(target["address"], target["port"])] == [("10.20.1.31", 1514)]


PLAYBOOK = """
- name: The role's views, as validate.yml builds them
  hosts: all
  gather_facts: false
  tasks:
    - name: Validate like the role does
      ansible.builtin.include_role:
        name: netops.logfwdr.logfwdr
        tasks_from: validate.yml
        public: true
    - name: Write the views
      ansible.builtin.copy:
        content: "{{ {'devices': __logfwdr_devices, 'vrrp': __logfwdr_vrrp, 'targets': __logfwdr_syslog_bridge_targets,
                      'inputs': __logfwdr_syslog_bridge_inputs, 'firewall': __logfwdr_firewall} | to_json }}"
        dest: "{{ outdir }}/{{ inventory_hostname }}.json"
        mode: "0600"
- name: The action outside the role
  hosts: all
  gather_facts: false
  tasks:
    - name: Give it an option it does not take
      netops.logfwdr.inventory_model:
        collectors: []
      register: with_option
      ignore_errors: true
    - name: Write what it said
      ansible.builtin.copy:
        content: "{{ with_option.msg }}"
        dest: "{{ outdir }}/option.txt"
        mode: "0600"
"""


def test_role_gets_the_filters_views(tmp_path):
    pair = {"logfwdr_ingress_interfaces": INGRESS, "logfwdr_egress_interfaces": EGRESS,
            "logfwdr_protocols": PROTOCOLS, "logfwdr_collectors": COLLECTORS, "logfwdr_vrrp": True,
            "logfwdr_firewall": True, "logfwdr_nftables": True, "logfwdr_vrrp_priority": "150",
            "logfwdr_firewall_management_networks": ["192.0.2.0/24"],
            "ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    peer = dict(pair, logfwdr_ingress_interfaces=[dict(INGRESS[0], address="10.10.1.3/24")],
                logfwdr_egress_interfaces=[dict(EGRESS[0], address="10.20.1.3/24")])
    inv = {"all": {"children": {"replicators": {"hosts": {"r1": pair, "r2": peer}}}}}
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(inv))
    (tmp_path / "play.yml").write_text(PLAYBOOK)
    (tmp_path / "ansible.cfg").write_text("[defaults]\n")
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, ANSIBLE_CONFIG=str(tmp_path / "ansible.cfg"),
               ANSIBLE_NOCOLOR="1", ANSIBLE_LOCAL_TEMP=str(tmp_path / "tmp"))
    env.pop("ANSIBLE_INVENTORY", None)
    # each host's `ip -json link show` as validate.yml reads it: r1's VRRP rule binds r2's adverts to r2's MAC
    for name, mac in (("r1", "52:54:00:00:01:02"), ("r2", "52:54:00:00:01:03")):
        (tmp_path / ("links-%s.json" % name)).write_text(json.dumps([{"ifname": "vec1", "address": mac}]))
    extra = {"outdir": str(tmp_path),
             "__logfwdr_ip_link_command": "cat %s/links-{{ inventory_hostname }}.json" % tmp_path}
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "hosts.yml",
                           "play.yml", "-e", json.dumps(extra)],
                          cwd=str(tmp_path), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, check=False)
    assert proc.returncode == 0, proc.stdout
    got = json.loads((tmp_path / "r1.json").read_text())
    caps = inventory.role_defaults(("port_rate_limit", "port_burst"), prefix="logfwdr_")
    assert got["devices"] == replication_devices(COLLECTORS, INGRESS, PROTOCOLS, egress_interfaces=EGRESS, vrrp=True,
                                                 **caps)
    assert got["targets"] == syslog_bridge_targets(COLLECTORS, INGRESS, PROTOCOLS, egress_interfaces=EGRESS)
    assert got["vrrp"]["priority"] == 150 and got["vrrp"]["router_id"] == "r1"
    assert [(i["virtual_address"], i["unicast_peers"]) for i in got["vrrp"]["instances"]] == [
        ("10.10.1.1/24", ["10.10.1.3"])]  # the peer's address, read through hostvars by the action itself
    # and the peer's MAC, read from the peer in the same run; the warning is the action's, not in the view
    assert got["vrrp"]["vrrp_rules"] == [{"interface": "vec1", "address": "10.10.1.3", "mac": "52:54:00:00:01:03"}]
    # ansible-core 2.18 wraps a warning's lines: compare with the white space folded
    assert "warnings" not in got["vrrp"] and "logfwdr_vrrp_pair_link is unset" in " ".join(proc.stdout.split())
    assert got["inputs"]["addresses"] == ["10.10.1.2", "10.10.1.1"]
    assert got["firewall"]["udp_ports"] == [514, 2055] and got["firewall"]["management_networks"] == ["192.0.2.0/24"]
    assert "takes no options" in (tmp_path / "option.txt").read_text()
    assert "remove collectors" in (tmp_path / "option.txt").read_text()
