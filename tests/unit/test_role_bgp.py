# -*- coding: utf-8 -*-
"""logfwdr_ha: bgp as the role renders it (issue 29).

The checks (plugins/plugin_utils/bgp.py) one mistake at a time, each naming its field and nothing else; then a tiny
ansible-playbook run against fake hosts (connection local, like test_role_vrrp.py) runs the role's validate.yml and
renders frr.conf, FRR's daemons file, the agent's unit, the nftables table, the sysctl file and the syslog bridge's
configuration into a temporary directory: `vtysh --dryrun -f` (FRR's own parser) checks frr.conf, `nft -c` the table.
Last, the role's tasks/bgp.yml itself in check mode on a host without FRR (nothing on this machine is changed).
"""

import copy
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import pytest
import yaml

from lflab.roleplay import validate_play

from ansible_collections.netops.logfwdr.plugins.filter.replication_devices import replication_devices
from ansible_collections.netops.logfwdr.plugins.plugin_utils.bgp import parse_bgp, service_addresses
from ansible_collections.netops.logfwdr.plugins.plugin_utils.inventory import Problems

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ROLE = os.path.join(REPO, "roles", "logfwdr")
COLLECTIONS = os.path.join(REPO, ".build", "collections")
PLAYBOOK_DIR = os.path.dirname(sys.executable)
VTYSH = shutil.which("vtysh") or ("/usr/bin/vtysh" if os.path.exists("/usr/bin/vtysh") else None)
NFT = shutil.which("nft") or "/usr/sbin/nft"
PASSWORD = "Md5-s3cr3t!key"

INGRESS = [{"name": "vec1", "address": "10.50.0.1/24", "address6": "2001:db8:50::1/64"},
           {"name": "vec2", "address": "10.51.0.1/24"}]
EGRESS = [{"name": "vec3", "address": "10.20.1.1/24"}]
PROTOCOLS = {"syslog": 514, "netflow": 2055}
COLLECTORS = [{"name": "collector1", "address": "10.20.1.31", "protocols": ["syslog", "netflow"]}]
GOOD = {"logfwdr_ha": "bgp", "logfwdr_vrrp": False, "logfwdr_exporter_networks": ["198.51.100.0/24"],
        "logfwdr_bgp_asn": 65010,
        "logfwdr_bgp_service_addresses": ["192.0.2.100", "2001:db8:100::1"],
        "logfwdr_bgp_neighbors": [{"address": "10.50.0.254", "asn": 65000},
                                  {"address": "2001:db8:50::fe", "asn": 65000},
                                  {"address": "10.51.0.254", "asn": 65001}]}


def check(settings=None, ingress=None, egress=None, **changes):
    s = dict(copy.deepcopy(GOOD), **(settings or {}))
    s.update(("logfwdr_bgp_" + k, v) for k, v in changes.items())
    problems = Problems()
    model = parse_bgp(s, copy.deepcopy(ingress or INGRESS), problems, egress_interfaces=egress or EGRESS)
    return model, list(problems)


# ---- the model ------------------------------------------------------------------------------------------------

def test_good_inventory_gives_the_design_model():
    model, problems = check(password=PASSWORD)
    assert problems == []
    assert model == {
        "asn": 65010, "router_id": "10.50.0.1", "device": "logfwdr0",
        "service4": ["192.0.2.100/32"], "service6": ["2001:db8:100::1/128"],
        "neighbors": [{"address": "10.50.0.254", "asn": 65000, "family": 4, "interface": "vec1"},
                      {"address": "2001:db8:50::fe", "asn": 65000, "family": 6, "interface": "vec1"},
                      {"address": "10.51.0.254", "asn": 65001, "family": 4, "interface": "vec2"}],
        "password": True, "ttl_security": False, "bfd": True, "bfd_interval": 100, "bfd_multiplier": 3,
        "keepalive": 3, "hold": 9, "drain_quiet": 2, "drain_timeout": 60}
    assert PASSWORD not in json.dumps(model)
    assert service_addresses(model) == ["192.0.2.100", "2001:db8:100::1"]


def test_vrrp_mode_reads_no_bgp_setting():
    model, problems = check({"logfwdr_ha": "vrrp", "logfwdr_vrrp": True}, asn="nonsense", neighbors=[{"x": 1}])
    assert (model, problems) == (None, [])


def test_host_routes_and_strings_are_accepted():
    model, problems = check(asn="65010", router_id="192.0.2.1",
                            service_addresses=["192.0.2.100/32", "2001:db8:100::1/128"])
    assert problems == []
    assert model["asn"] == 65010 and model["router_id"] == "192.0.2.1"
    assert model["service4"] == ["192.0.2.100/32"] and model["service6"] == ["2001:db8:100::1/128"]


def test_service_addresses_reach_the_tc_rules_of_their_family():
    """vec1 has address6: both service addresses; vec2 is IPv4 only: the IPv4 one."""
    model, problems = check()
    assert problems == []
    devices = replication_devices(COLLECTORS, INGRESS, PROTOCOLS, egress_interfaces=EGRESS,
                                  exporter_networks=GOOD["logfwdr_exporter_networks"],
                                  service_addresses=service_addresses(model))
    addresses = dict((d["name"], d["addresses"]) for d in devices)
    assert addresses == {"vec1": ["10.50.0.1", "2001:db8:50::1", "192.0.2.100", "2001:db8:100::1"],
                         "vec2": ["10.51.0.1", "192.0.2.100"]}
    # and without BGP, nothing else
    plain = replication_devices(COLLECTORS, INGRESS, PROTOCOLS, egress_interfaces=EGRESS)
    assert dict((d["name"], d["addresses"]) for d in plain) == {"vec1": ["10.50.0.1", "2001:db8:50::1"],
                                                                "vec2": ["10.51.0.1"]}


# ---- every mistake: one line, naming its field ------------------------------------------------------------------

VIRTUAL = [dict(INGRESS[0], virtual_address="10.50.0.5/24", virtual_router_id=11), INGRESS[1]]
V4_ONLY = [{"address": "10.50.0.254", "asn": 65000}]

MISTAKES = [
    # (id, field, text in the line, check() arguments)
    ("asn not a number", "logfwdr_bgp_asn", "'65x' is not an AS number; use 1-4294967295", {"asn": "65x"}),
    ("asn out of range", "logfwdr_bgp_asn", "4294967296 is not an AS number", {"asn": 4294967296}),
    ("asn unset", "logfwdr_bgp_asn", "required with logfwdr_ha: bgp", {"asn": 0}),
    ("neighbour on no subnet", "logfwdr_bgp_neighbors[0].address",
     "10.9.9.9 is on no ingress interface's subnet (10.50.0.0/24, 10.51.0.0/24); use a router's address",
     {"neighbors": [{"address": "10.9.9.9", "asn": 65000}] + GOOD["logfwdr_bgp_neighbors"][1:]}),
    ("IPv6 neighbour on no subnet", "logfwdr_bgp_neighbors[1].address",
     "2001:db8:99::1 is on no ingress interface's subnet (2001:db8:50::/64)",
     {"neighbors": V4_ONLY + [{"address": "2001:db8:99::1", "asn": 65000}]}),
    ("neighbour is this host", "logfwdr_bgp_neighbors[0].address",
     "10.50.0.1 is logfwdr_ingress_interfaces[0] (vec1).address, this host's own address",
     {"neighbors": [{"address": "10.50.0.1", "asn": 65000}] + GOOD["logfwdr_bgp_neighbors"][1:]}),
    ("neighbour with a prefix", "logfwdr_bgp_neighbors[0].address", "'10.50.0.254/24' is not the IPv4 or IPv6",
     {"neighbors": [{"address": "10.50.0.254/24", "asn": 65000}] + GOOD["logfwdr_bgp_neighbors"][1:]}),
    ("neighbour asn", "logfwdr_bgp_neighbors[0].asn", "0; use the router's AS number, 1-4294967295",
     {"neighbors": [{"address": "10.50.0.254", "asn": 0}] + GOOD["logfwdr_bgp_neighbors"][1:]}),
    ("neighbour without asn", "logfwdr_bgp_neighbors[0].asn", "required: the router's AS number",
     {"neighbors": [{"address": "10.50.0.254"}] + GOOD["logfwdr_bgp_neighbors"][1:]}),
    ("duplicate neighbour", "logfwdr_bgp_neighbors[3].address", "10.50.0.254 is already logfwdr_bgp_neighbors[0]",
     {"neighbors": GOOD["logfwdr_bgp_neighbors"] + [{"address": "10.50.0.254", "asn": 65002}]}),
    ("unknown neighbour field", "logfwdr_bgp_neighbors[0].remote_as",
     "unknown field; the fields are address, asn",
     {"neighbors": [{"address": "10.50.0.254", "asn": 65000, "remote_as": 65000}] + GOOD["logfwdr_bgp_neighbors"][1:]}),
    ("neighbour not a dict", "logfwdr_bgp_neighbors[0]", "must be a dict",
     {"neighbors": ["10.50.0.254"] + GOOD["logfwdr_bgp_neighbors"][1:]}),
    ("no neighbours", "logfwdr_bgp_neighbors", "required with logfwdr_ha: bgp", {"neighbors": []}),
    ("no service addresses", "logfwdr_bgp_service_addresses", "required with logfwdr_ha: bgp",
     {"service_addresses": []}),
    ("service is the own address", "logfwdr_bgp_service_addresses[0]",
     "10.50.0.1 is also logfwdr_ingress_interfaces[0] (vec1).address, this host's own address",
     {"service_addresses": ["10.50.0.1", "2001:db8:100::1"]}),
    ("service is the own address6", "logfwdr_bgp_service_addresses[1]",
     "2001:db8:50::1 is also logfwdr_ingress_interfaces[0] (vec1).address6",
     {"service_addresses": ["192.0.2.100", "2001:db8:50::1"]}),
    ("service is a virtual address", "logfwdr_bgp_service_addresses[0]",
     "10.50.0.5 is also logfwdr_ingress_interfaces[0] (vec1).virtual_address",
     {"service_addresses": ["10.50.0.5", "2001:db8:100::1"], "ingress": VIRTUAL}),
    ("service is an egress address", "logfwdr_bgp_service_addresses[0]",
     "10.20.1.1 is also logfwdr_egress_interfaces[0] (vec3).address",
     {"service_addresses": ["10.20.1.1", "2001:db8:100::1"]}),
    ("service in a connected subnet", "logfwdr_bgp_service_addresses[0]",
     "10.51.0.9 is in the subnet 10.51.0.0/24 of logfwdr_ingress_interfaces[1] (vec2)",
     {"service_addresses": ["10.51.0.9", "2001:db8:100::1"]}),
    ("service multicast", "logfwdr_bgp_service_addresses[0]", "224.0.0.5 is not a unicast host address",
     {"service_addresses": ["224.0.0.5", "2001:db8:100::1"]}),
    ("service loopback", "logfwdr_bgp_service_addresses[1]", "::1 is not a unicast host address",
     {"service_addresses": ["192.0.2.100", "::1"]}),
    ("service with a prefix", "logfwdr_bgp_service_addresses[0]",
     "'192.0.2.0/24' has a prefix length; a service address is one address, announced as /32",
     {"service_addresses": ["192.0.2.0/24", "2001:db8:100::1"]}),
    ("service not an address", "logfwdr_bgp_service_addresses[0]", "'svc.example' is not an IPv4 or IPv6 address",
     {"service_addresses": ["svc.example", "2001:db8:100::1"]}),
    ("duplicate service", "logfwdr_bgp_service_addresses[2]", "192.0.2.100 is already logfwdr_bgp_service_addresses[0]",
     {"service_addresses": ["192.0.2.100", "2001:db8:100::1", "192.0.2.100/32"]}),
    ("IPv6 service without IPv6 neighbour", "logfwdr_bgp_service_addresses[1]",
     "2001:db8:100::1 is an IPv6 address, and no neighbour in logfwdr_bgp_neighbors is: it would be announced to "
     "nobody", {"neighbors": V4_ONLY}),
    ("IPv6 neighbour without IPv6 service", "logfwdr_bgp_neighbors[1].address",
     "2001:db8:50::fe is an IPv6 router, and no service address is IPv6",
     {"service_addresses": ["192.0.2.100"]}),
    ("router id IPv6", "logfwdr_bgp_router_id", "'2001:db8::1' is not an IPv4 address; BGP's router id is one",
     {"router_id": "2001:db8::1"}),
    ("router id nonsense", "logfwdr_bgp_router_id", "'router1' is not an IPv4 address", {"router_id": "router1"}),
    ("BFD interval too short", "logfwdr_bgp_bfd_interval", "5; use milliseconds from 10 to 60000", {"bfd_interval": 5}),
    ("BFD interval too long", "logfwdr_bgp_bfd_interval", "60001; use milliseconds", {"bfd_interval": 60001}),
    ("BFD multiplier", "logfwdr_bgp_bfd_multiplier", "1; use a number from 2 to 255", {"bfd_multiplier": 1}),
    ("BFD switch", "logfwdr_bgp_bfd", "'maybe'; use true or false", {"bfd": "maybe"}),
    ("GTSM with BFD", "logfwdr_bgp_ttl_security", "true with logfwdr_bgp_bfd: true: FRR 8.4 (Debian 12) then asks "
     "for a multihop BFD session", {"ttl_security": True}),
    ("keepalive", "logfwdr_bgp_keepalive", "0; use seconds from 1 to 21845", {"keepalive": 0}),
    ("drain timeout", "logfwdr_bgp_drain_timeout", "2 is not longer than logfwdr_bgp_drain_quiet (2)",
     {"drain_timeout": 2}),
    ("password with a space", "logfwdr_bgp_password", "use 1-80 printable ASCII characters without spaces",
     {"password": "two words"}),
    ("password too long", "logfwdr_bgp_password", "81 characters; use 1-80", {"password": "x" * 81}),
    ("ha unknown", "logfwdr_ha", "'anycast'; use vrrp", {"settings": {"logfwdr_ha": "anycast"}}),
    ("bgp with vrrp", "logfwdr_vrrp", "true with logfwdr_ha: bgp; the two modes exclude each other",
     {"settings": {"logfwdr_vrrp": True}}),
    ("no exporter networks", "logfwdr_exporter_networks", "required with logfwdr_ha: bgp",
     {"settings": {"logfwdr_exporter_networks": []}}),
]


@pytest.mark.parametrize("field, text, args", [m[1:] for m in MISTAKES], ids=[m[0] for m in MISTAKES])
def test_each_mistake_is_one_line_naming_its_field(field, text, args):
    args = dict(args)
    model, problems = check(args.pop("settings", None), args.pop("ingress", None), **args)
    assert len(problems) == 1, problems
    assert problems[0].startswith(field + ": "), problems
    assert text in problems[0], problems
    # no secret in any message
    assert "two words" not in problems[0] and PASSWORD not in problems[0]


def test_exporter_networks_of_an_interface_are_enough():
    ingress = [dict(INGRESS[0], exporter_networks=["198.51.100.0/24"]), INGRESS[1]]
    assert check({"logfwdr_exporter_networks": []}, ingress)[1] == []


def test_a_broken_interface_address_is_not_blamed_on_the_neighbour():
    """replication_devices names the bad address; the neighbour on its subnet is not a second problem."""
    ingress = [dict(INGRESS[0], address="10.50.0.1"), INGRESS[1]]
    model, problems = check(ingress=ingress)
    assert problems == []


# ---- rendered by the role ----------------------------------------------------------------------------------------

PLAYBOOK = validate_play("Render the role's BGP files like the role does, into a directory") + """
    - name: Keep the model and the views
      ansible.builtin.copy:
        content: "{{{{ {{'model': __logfwdr_model, 'bgp': __logfwdr_bgp, 'devices': __logfwdr_devices,
                      'bridge': __logfwdr_syslog_bridge_inputs, 'sysctl': __logfwdr_sysctl,
                      'packages': __logfwdr_packages}} | to_nice_json }}}}"
        dest: "{{{{ outdir }}}}/{{{{ inventory_hostname }}}}-model.json"
        mode: "0600"
    - name: Render the files
      ansible.builtin.template:
        src: "{role}/templates/{{{{ item.0 }}}}"
        dest: "{{{{ outdir }}}}/{{{{ inventory_hostname }}}}-{{{{ item.1 }}}}"
        mode: "0600"
      loop:
        - [frr.conf.j2, frr.conf]
        - [frr-daemons.j2, daemons]
        - [logfwdr-agent.service.j2, agent.service]
        - [logfwdr-nftables.conf.j2, nftables.conf]
        - [sysctl.conf.j2, sysctl.conf]
        - [modules-load.conf.j2, modules.conf]
        - [syslog-bridge.conf.j2, syslog-bridge.conf]
      when: item.0.startswith('frr') is false or logfwdr_ha == 'bgp'
""".format(role=ROLE)

GROUP = {
    "logfwdr_ingress_interfaces": [
        {"name": "vec1", "address": "10.50.0.{{ octet }}/24", "address6": "2001:db8:50::{{ octet }}/64"},
        {"name": "vec2", "address": "10.51.0.{{ octet }}/24"}],
    "logfwdr_egress_interfaces": [{"name": "vec3", "address": "10.20.1.{{ octet }}/24"}],
    "logfwdr_collectors": [{"name": "collector1", "address": "10.20.1.31", "protocols": ["syslog", "netflow"]}],
    "logfwdr_exporter_networks": ["198.51.100.0/24", "2001:db8:e::/48"],
    "logfwdr_ha": "bgp", "logfwdr_bgp_asn": 65010,
    "logfwdr_bgp_service_addresses": ["192.0.2.100", "2001:db8:100::1"],
    "logfwdr_bgp_neighbors": GOOD["logfwdr_bgp_neighbors"],
    "logfwdr_firewall": True,
}


def host(octet, **extra):
    return dict(extra, octet=octet, ansible_connection="local", ansible_python_interpreter=sys.executable)


def run_playbook(tmpdir, inventory, book_text=PLAYBOOK, args=(), extra_vars=None):
    inv = os.path.join(tmpdir, "hosts.yml")
    with open(inv, "w") as handle:
        yaml.safe_dump(inventory, handle)
    book = os.path.join(tmpdir, "play.yml")
    with open(book, "w") as handle:
        handle.write(book_text)
    cfg = os.path.join(tmpdir, "ansible.cfg")
    with open(cfg, "w") as handle:
        handle.write("[defaults]\n")
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, ANSIBLE_CONFIG=cfg, ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCAL_TEMP=os.path.join(tmpdir, "ansible-tmp"), ANSIBLE_RETRY_FILES_ENABLED="0",
               ANSIBLE_HOST_KEY_CHECKING="0")
    env.pop("ANSIBLE_INVENTORY", None)
    extra = dict({"outdir": tmpdir}, **(extra_vars or {}))
    return subprocess.run([os.path.join(PLAYBOOK_DIR, "ansible-playbook"), "-i", inv, book,
                           "-e", yaml.safe_dump(extra, default_flow_style=True).strip()] + list(args),
                          cwd=tmpdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, check=False)


@pytest.fixture(scope="module")
def rendered():
    """r1: every default, with a password; r2: no BFD, GTSM, another router id; vrrp1: the default mode."""
    tmpdir = tempfile.mkdtemp(prefix="logfwdr-bgp-")
    inventory = {"all": {"children": {
        "bgp": {"hosts": {"r1": host(1, logfwdr_bgp_password=PASSWORD),
                          "r2": host(2, logfwdr_bgp_bfd=False, logfwdr_bgp_ttl_security=True,
                                     logfwdr_bgp_router_id="192.0.2.2", logfwdr_bgp_keepalive=10)},
                "vars": GROUP},
        "plain": {"hosts": {"vrrp1": host(3)},
                  "vars": dict(GROUP, logfwdr_ha="vrrp", logfwdr_firewall=False)}}}}
    try:
        proc = run_playbook(tmpdir, inventory, args=["-v"])
        assert proc.returncode == 0, proc.stdout
        out = {"dir": tmpdir, "stdout": proc.stdout}
        for name in ("r1", "r2", "vrrp1"):
            out[name] = {}
            for kind in ("frr.conf", "daemons", "agent.service", "nftables.conf", "sysctl.conf", "modules.conf", "syslog-bridge.conf",
                         "model.json"):
                path = os.path.join(tmpdir, "%s-%s" % (name, kind))
                if os.path.exists(path):
                    with open(path) as handle:
                        out[name][kind] = handle.read()
            out[name]["model"] = json.loads(out[name].pop("model.json"))
        yield out
    finally:
        shutil.rmtree(tmpdir)


def config_lines(text):
    return [line.rstrip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("!")]


def vtysh_dryrun(path):
    if VTYSH is None:
        pytest.skip("vtysh is not installed (apt-get install frr)")
    proc = subprocess.run([VTYSH, "--dryrun", "-f", path], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, check=False)
    return proc.returncode, proc.stdout


def test_frr_conf_has_the_design_shape(rendered):
    lines = config_lines(rendered["r1"]["frr.conf"])
    for line in ("frr defaults traditional", "hostname r1", "bfd", " profile logfwdr", "  transmit-interval 100",
                 "  receive-interval 100", "  detect-multiplier 3",
                 "ip prefix-list logfwdr-service seq 5 permit 192.0.2.100/32",
                 "ipv6 prefix-list logfwdr-service6 seq 5 permit 2001:db8:100::1/128",
                 "route-map logfwdr-out permit 10", " match ip address prefix-list logfwdr-service",
                 "route-map logfwdr-out6 permit 10", " match ipv6 address prefix-list logfwdr-service6",
                 "route-map logfwdr-in deny 10",
                 "router bgp 65010", " bgp router-id 10.50.0.1", " no bgp default ipv4-unicast",
                 " bgp network import-check"):
        assert line in lines, (line, lines)
    for address, asn in (("10.50.0.254", 65000), ("2001:db8:50::fe", 65000), ("10.51.0.254", 65001)):
        for line in (" neighbor %s remote-as %d" % (address, asn), " neighbor %s timers 3 9" % address,
                     " neighbor %s advertisement-interval 0" % address, " neighbor %s timers connect 5" % address, " neighbor %s bfd profile logfwdr" % address,
                     " neighbor %s password %s" % (address, PASSWORD)):
            assert line in lines, (line, lines)
    text = rendered["r1"]["frr.conf"]
    v4 = re.search(r"^ address-family ipv4 unicast\n(.*?)^ exit-address-family", text, re.M | re.S).group(1)
    v6 = re.search(r"^ address-family ipv6 unicast\n(.*?)^ exit-address-family", text, re.M | re.S).group(1)
    assert config_lines(v4) == ["  network 192.0.2.100/32",
                                "  neighbor 10.50.0.254 activate", "  neighbor 10.50.0.254 route-map logfwdr-in in",
                                "  neighbor 10.50.0.254 route-map logfwdr-out out",
                                "  neighbor 10.51.0.254 activate", "  neighbor 10.51.0.254 route-map logfwdr-in in",
                                "  neighbor 10.51.0.254 route-map logfwdr-out out"]
    assert config_lines(v6) == ["  network 2001:db8:100::1/128",
                                "  neighbor 2001:db8:50::fe activate",
                                "  neighbor 2001:db8:50::fe route-map logfwdr-in in",
                                "  neighbor 2001:db8:50::fe route-map logfwdr-out6 out"]


def test_frr_conf_with_gtsm_without_bfd_and_password(rendered):
    text = rendered["r2"]["frr.conf"]
    lines = config_lines(text)
    assert " bgp router-id 192.0.2.2" in lines and " neighbor 10.50.0.254 timers 10 30" in lines
    assert " neighbor 10.50.0.254 ttl-security hops 1" in lines
    assert "ttl-security" not in rendered["r1"]["frr.conf"]  # the default: off, BFD on
    for absent in ("bfd", "password", "profile"):
        assert absent not in "\n".join(lines), absent


@pytest.mark.parametrize("name", ["r1", "r2"])
def test_vtysh_accepts_the_rendered_frr_conf(rendered, name):
    path = os.path.join(rendered["dir"], name + "-frr.conf")
    assert vtysh_dryrun(path) == (0, "")


BROKEN = [
    ("unknown command", lambda t: t.replace(" timers 3 9", " timerz 3 9", 1)),
    ("bad prefix", lambda t: t.replace("permit 192.0.2.100/32", "permit 192.0.2.300/32")),
    ("ASN out of range", lambda t: t.replace("router bgp 65010", "router bgp 4294967296")),
]


@pytest.mark.parametrize("what, mutate", BROKEN, ids=[b[0] for b in BROKEN])
def test_vtysh_rejects_broken_variants(rendered, what, mutate, tmp_path):
    """The role's validate can fail: a broken file is refused with the line it stumbled on."""
    text = rendered["r1"]["frr.conf"]
    broken = mutate(text)
    assert broken != text
    path = tmp_path / "frr.conf"
    path.write_text(broken)
    rc, out = vtysh_dryrun(str(path))
    assert rc != 0 and re.search(r"line \d+: %", out), (what, rc, out)


def test_daemons_file_turns_on_bgpd_and_bfdd_only(rendered):
    text = rendered["r1"]["daemons"]
    on = re.findall(r"^(\w+)=yes$", text, re.M)
    assert sorted(on) == ["bfdd", "bgpd", "vtysh_enable"]
    assert "zebra_options=\"  -A 127.0.0.1 -s 90000000\"" in text.splitlines()
    assert "ospfd=no" in text.splitlines()


def test_tc_state_accepts_the_service_addresses(rendered):
    devices = dict((d["name"], d) for d in rendered["r1"]["model"]["devices"])
    assert devices["vec1"]["addresses"] == ["10.50.0.1", "2001:db8:50::1", "192.0.2.100", "2001:db8:100::1"]
    assert devices["vec2"]["addresses"] == ["10.51.0.1", "192.0.2.100"]
    assert "198.51.100.0/24" in devices["vec1"]["sources"] and "2001:db8:e::/48" in devices["vec1"]["sources"]
    plain = dict((d["name"], d) for d in rendered["vrrp1"]["model"]["devices"])
    assert plain["vec1"]["addresses"] == ["10.50.0.3", "2001:db8:50::3"]


def test_syslog_bridge_listens_on_the_service_addresses(rendered):
    bridge = rendered["r1"]["model"]["bridge"]
    assert bridge["addresses"] == ["10.50.0.1", "2001:db8:50::1", "10.51.0.1", "192.0.2.100", "2001:db8:100::1"]
    # the exporters are routed to the replicators: their prefixes are the bridge's default senders too
    assert bridge["allowed_senders"] == ["10.50.0.0/24", "2001:db8:50::/64", "10.51.0.0/24", "198.51.100.0/24",
                                         "2001:db8:e::/48"]
    assert rendered["vrrp1"]["model"]["bridge"]["allowed_senders"] == ["10.50.0.0/24", "2001:db8:50::/64",
                                                                       "10.51.0.0/24"]
    conf = rendered["r1"]["syslog-bridge.conf"]
    for address in ("192.0.2.100", "2001:db8:100::1"):
        assert re.search(r'address="%s"' % re.escape(address), conf), conf
    # it binds before the agent's device holds them: nonlocal bind for both families
    sysctl = rendered["r1"]["sysctl.conf"].splitlines()
    assert "net.ipv4.ip_nonlocal_bind = 1" in sysctl and "net.ipv6.ip_nonlocal_bind = 1" in sysctl
    assert "net.ipv4.ip_nonlocal_bind = 1" not in rendered["vrrp1"]["sysctl.conf"]


def test_tun_module_loaded_in_bgp_mode_only(rendered):
    # the agent's announcement device needs /dev/net/tun, which loading tun creates where udev did not
    assert "tun" in rendered["r1"]["modules.conf"].splitlines()
    assert "tun" not in rendered["vrrp1"]["modules.conf"].splitlines()


def test_agent_unit_announces_the_service_addresses(rendered):
    unit = rendered["r1"]["agent.service"]
    execstart = re.search(r"^ExecStart=(.*)$", unit, re.M).group(1).split()
    tail = execstart[execstart.index("--announce-device"):]
    assert tail == ["--announce-device", "logfwdr0", "--service-address", "192.0.2.100",
                    "--service-address", "2001:db8:100::1", "--drain-file", "/run/logfwdr/drain"]
    assert "Before=keepalived.service frr.service" in unit.splitlines()
    plain = rendered["vrrp1"]["agent.service"]
    assert "--announce-device" not in plain and "frr.service" not in plain


def test_firewall_admits_bgp_and_bfd_from_the_routers(rendered, tmp_path):
    text = rendered["r1"]["nftables.conf"]
    rules = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    for rule in ('iifname "vec1" ip saddr 10.50.0.254 tcp dport 179 accept',
                 'iifname "vec1" ip saddr 10.50.0.254 udp dport { 3784, 4784 } accept',
                 'iifname "vec1" ip6 saddr 2001:db8:50::fe tcp dport 179 accept',
                 'iifname "vec1" ip6 saddr 2001:db8:50::fe udp dport { 3784, 4784 } accept',
                 'iifname "vec2" ip saddr 10.51.0.254 tcp dport 179 accept'):
        assert rule in rules, (rule, rules)
    # the bridge's senders: the routed exporters too
    assert "ip saddr { 10.50.0.0/24, 10.51.0.0/24, 198.51.100.0/24 } tcp dport { 514 } accept" in rules, rules
    # before the final drop of the exporter segments' chain
    assert rules.index('iifname "vec2" ip saddr 10.51.0.254 tcp dport 179 accept') < rules.index("counter drop")
    if os.geteuid() != 0 or not os.path.exists(NFT):
        pytest.skip("nft -c needs root and nft")
    path = tmp_path / "logfwdr.nft"
    path.write_text(text)
    proc = subprocess.run(["unshare", "--net", NFT, "-c", "-f", str(path)], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, universal_newlines=True, check=False)
    assert (proc.returncode, proc.stdout) == (0, "")


def test_frr_is_installed_only_in_bgp_mode(rendered):
    assert "frr" in rendered["r1"]["model"]["packages"] and "frr-pythontools" in rendered["r1"]["model"]["packages"]
    assert "frr" not in rendered["vrrp1"]["model"]["packages"]
    assert "frr.conf" not in rendered["vrrp1"] and "bgp" not in rendered["vrrp1"]["model"]["model"]


def test_password_never_in_the_model_or_the_output(rendered):
    assert rendered["r1"]["model"]["bgp"]["password"] is True and rendered["r2"]["model"]["bgp"]["password"] is False
    for kind in ("model", "agent.service", "nftables.conf", "syslog-bridge.conf"):
        assert PASSWORD not in json.dumps(rendered["r1"][kind]), kind
    assert PASSWORD not in rendered["stdout"]
    # only frr.conf has it (mode 0640 frr:frr on the host)
    assert PASSWORD in rendered["r1"]["frr.conf"]


def test_play_stops_on_bgp_mistakes():
    tmpdir = tempfile.mkdtemp(prefix="logfwdr-bgp-bad-")
    try:
        inventory = {"all": {"children": {"bgp": {"hosts": {
            "good": host(1),
            "offnet": host(2, logfwdr_bgp_neighbors=[{"address": "10.9.9.9", "asn": 65000}], logfwdr_bgp_password=PASSWORD,
                           logfwdr_bgp_service_addresses=["192.0.2.100"]),
            "withvrrp": host(3, logfwdr_vrrp=True),
            "ownservice": host(4, logfwdr_bgp_service_addresses=["10.50.0.4", "2001:db8:100::1"])},
            "vars": GROUP}}}}
        proc = run_playbook(tmpdir, inventory)
        assert proc.returncode != 0
        fatal = dict(re.findall(r"^fatal: \[(\w+)\]: FAILED! => (.*)$", proc.stdout, re.M))
        assert sorted(fatal) == ["offnet", "ownservice", "withvrrp"], proc.stdout
        for name, line in (
                ("offnet", "logfwdr_bgp_neighbors[0].address: 10.9.9.9 is on no ingress interface's subnet "
                           "(10.50.0.0/24, 10.51.0.0/24)"),
                ("withvrrp", "logfwdr_vrrp: true with logfwdr_ha: bgp"),
                ("ownservice", "logfwdr_bgp_service_addresses[0]: 10.50.0.4 is also logfwdr_ingress_interfaces[0] "
                               "(vec1).address")):
            msg = json.loads(fatal[name])["msg"]
            assert msg.startswith("invalid BGP settings, nothing was changed:\n- " + line), msg
            assert msg.count("\n- ") == 1, msg
        assert PASSWORD not in proc.stdout
        assert os.path.exists(os.path.join(tmpdir, "good-frr.conf"))
        assert not os.path.exists(os.path.join(tmpdir, "offnet-frr.conf"))
    finally:
        shutil.rmtree(tmpdir)


# ---- tasks/bgp.yml itself, in check mode on a host without FRR -------------------------------------------------------

CHECK_PLAYBOOK = validate_play("The role's BGP tasks in check mode, as on a new host") + """
    - name: The BGP tasks
      ansible.builtin.include_role:
        name: netops.logfwdr.logfwdr
        tasks_from: bgp.yml
"""


@pytest.mark.parametrize("password", [PASSWORD, ""], ids=["password", "no password"])
def test_bgp_tasks_in_check_mode_on_a_new_host(password):
    """FRR not installed (vtysh missing): nothing fails, the service is left alone; --diff shows frr.conf only
    without a password."""
    tmpdir = tempfile.mkdtemp(prefix="logfwdr-bgp-check-")
    try:
        inventory = {"all": {"children": {"bgp": {"hosts": {"r1": host(1, logfwdr_bgp_password=password)},
                                                  "vars": GROUP}}}}
        extra = {"__logfwdr_vtysh": os.path.join(tmpdir, "no-vtysh"),
                 "__logfwdr_frr_conf": os.path.join(tmpdir, "frr", "frr.conf"),
                 "__logfwdr_frr_daemons": os.path.join(tmpdir, "frr", "daemons")}
        proc = run_playbook(tmpdir, inventory, CHECK_PLAYBOOK, args=["--check", "--diff", "-v"], extra_vars=extra)
        assert proc.returncode == 0, proc.stdout
        assert re.search(r"TASK \[netops.logfwdr.logfwdr : Enable and start FRR\] \*+\nskipping: \[r1\]", proc.stdout), \
            proc.stdout
        assert not os.path.exists(os.path.join(tmpdir, "frr"))
        if password:
            assert password not in proc.stdout
            assert "router bgp 65010" not in proc.stdout
        else:
            assert "+router bgp 65010" in proc.stdout, proc.stdout
    finally:
        shutil.rmtree(tmpdir)


def test_bgp_tasks_validate_and_protect_frr_conf():
    tasks = yaml.safe_load(open(os.path.join(ROLE, "tasks", "bgp.yml")))
    (conf,) = [t for t in tasks if t.get("ansible.builtin.template", {}).get("src") == "frr.conf.j2"]
    assert conf["ansible.builtin.template"]["validate"] == "{{ __logfwdr_vtysh }} --dryrun -f %s"
    assert (conf["ansible.builtin.template"]["owner"], conf["ansible.builtin.template"]["group"],
            conf["ansible.builtin.template"]["mode"]) == ("frr", "frr", "0640")
    assert conf["diff"] == "{{ not __logfwdr_bgp.password }}"
    main = yaml.safe_load(open(os.path.join(ROLE, "tasks", "main.yml")))
    assert main[-1]["ansible.builtin.import_tasks"] == "bgp.yml" and main[-1]["when"] == "logfwdr_ha == 'bgp'"
