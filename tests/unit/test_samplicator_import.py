# -*- coding: utf-8 -*-
"""logfwdr import-samplicator: a samplicator config becomes logfwdr_collectors the role accepts."""

import os
import subprocess
import sys

import pytest
import yaml

from ansible_collections.netops.logfwdr.plugins.filter.replication_devices import replication_devices
from ansible_collections.netops.logfwdr.plugins.module_utils.tc import cli, samplicator

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROTOCOLS = yaml.safe_load(open(os.path.join(REPO, "roles", "logfwdr", "defaults", "main.yml")))["logfwdr_protocols"]
INGRESS = [{"name": "vec1", "address": "10.10.1.2/24"}]
EGRESS = [{"name": "vec3", "address": "10.20.1.2/24", "routes": [{"to": "10.30.0.0/16", "via": "10.20.1.254"}]},
          {"name": "vec4", "address": "10.20.2.2/24"}]

CONFIG = """\
# core routers: samplicate -p 2055 -S -c this-file
10.1.0.0/255.255.0.0: 10.20.1.31:9995 10.30.0.5
10.2.0.0/16:   10.20.1.31:9995  10.20.2.40/2055/10,3   # the README's separators, sampled, with a TTL
10.10.1.7: 10.20.2.40:2055
0.0.0.0/0: 10.20.1.50:2055
"""


def run_cli(tmp_path, text, *args):
    path = tmp_path / "samplicator.conf"
    path.write_text(text)
    proc = subprocess.run([sys.executable, "-c", "import sys; from ansible_collections.netops.logfwdr.plugins."
                           "module_utils.tc import cli; sys.exit(cli.main())", "import-samplicator", str(path)]
                          + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                          check=False, env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    return proc.returncode, proc.stdout, proc.stderr


def test_each_receiver_becomes_one_collector_with_the_prefixes_that_feed_it(tmp_path):
    rc, out, err = run_cli(tmp_path, CONFIG, "--port", "2055", "--protocol", "netflow")
    assert rc == 0, err
    got = yaml.safe_load(out)["logfwdr_collectors"]
    assert got == [
        {"name": "10.20.1.31", "address": "10.20.1.31", "protocols": ["netflow"], "ports": {"netflow": 9995},
         "sources": ["10.1.0.0/16", "10.2.0.0/16"]},
        # no port: samplicator sends to its default 2000, not to the port it listens on
        {"name": "10.30.0.5", "address": "10.30.0.5", "protocols": ["netflow"], "ports": {"netflow": 2000},
         "sources": ["10.1.0.0/16"]},
        # /10: 1 in 10 packets, as samplicator sent it
        {"name": "10.20.2.40", "address": "10.20.2.40", "protocols": ["netflow"],
         "sources": ["10.2.0.0/16", "10.10.1.7/32"], "sample": 10},
        {"name": "10.20.1.50", "address": "10.20.1.50", "protocols": ["netflow"]},  # 0.0.0.0/0: every exporter
    ]
    # mapped; only the second line, which samples it differently (every packet), is warned about
    assert "line 4: 10.20.2.40 gets 1 in 1 packets here but 1 in 10 on line 3" in err
    assert "line 3: 10.20.2.40 gets" not in err
    assert "line 3: TTL 3 for 10.20.2.40 is ignored" in err
    # what the role makes of it: the collectors as the kernel rules will carry them
    devices = replication_devices(got, INGRESS, PROTOCOLS, egress_interfaces=EGRESS)
    (port,) = devices[0]["ports"]
    assert port["port"] == 2055
    dests = dict((d["name"], d) for d in port["destinations"])
    assert sorted(dests) == ["10.20.1.31", "10.20.1.50", "10.20.2.40", "10.30.0.5"]
    assert dests["10.20.1.31"]["port"] == 9995 and dests["10.20.1.31"]["sources"] == ["10.1.0.0/16", "10.2.0.0/16"]
    assert "sources" not in dests["10.20.1.50"]
    assert dests["10.20.2.40"]["sample"] == 10 and "sample" not in dests["10.20.1.31"]


def test_without_a_protocol_name_the_port_number_is_the_protocol(tmp_path):
    rc, out, err = run_cli(tmp_path, "10.1.0.0/16: 10.20.1.31/6343\n", "--port", "6343")
    assert rc == 0, err
    assert yaml.safe_load(out)["logfwdr_collectors"] == [
        {"name": "10.20.1.31", "address": "10.20.1.31", "protocols": [6343], "sources": ["10.1.0.0/16"]}]
    assert "--protocol NAME" in out
    devices = replication_devices(yaml.safe_load(out)["logfwdr_collectors"], INGRESS, PROTOCOLS,
                                  egress_interfaces=EGRESS)
    assert [p["port"] for p in devices[0]["ports"]] == [6343]


def test_one_collector_on_two_ports_gets_two_names():
    entries, _warnings = samplicator.collectors("10.1.0.0/16: 10.20.1.31:9995 10.20.1.31:9996\n", 2055, "netflow")
    assert [(c["name"], c["ports"]) for c in entries] == [("10.20.1.31", {"netflow": 9995}),
                                                          ("10.20.1.31-2", {"netflow": 9996})]


@pytest.mark.parametrize("text, message", [
    ("10.1.0.0/16 10.20.1.31\n", "line 1: no ':' between the exporter prefix and its receivers"),
    ("# comment\n10.1.0.0/40: 10.20.1.31\n", "line 2: '10.1.0.0/40' is not an IPv4 address"),
    ("10.1.0.0/16: collector.example:9995\n", "line 1: receiver 'collector.example:9995' is not ADDR"),
    ("10.1.0.0/16: 10.20.1.31:netflow\n", "line 1: receiver '10.20.1.31:netflow': port 'netflow' is not 1-65535"),
    ("10.1.0.0/16: 10.20.1.31:9995/0\n", "sampling interval '0' is not a positive number"),
    ("[2001:db8::]/129: [2001:db8:1::5]:9995\n",
     "line 1: '[2001:db8::]/129' is not an IPv4 address with a netmask or prefix length, or an IPv6 one in brackets"),
    ("[2001:db8::]64: [2001:db8:1::5]\n", "line 1: '[2001:db8::]64' is not [IPv6 address] or [IPv6 address]/length"),
    ("[2001:db8::]/64: [2001:db8:1::5/9995\n", "line 1: receiver '[2001:db8:1::5/9995' is not ADDR"),
])
def test_what_cannot_be_read_names_the_line_and_prints_nothing(tmp_path, text, message):
    rc, out, err = run_cli(tmp_path, text)
    assert rc == 2 and out == ""
    assert message in err, err


def test_registered_in_the_host_program():
    args = cli.parser().parse_args(["import-samplicator", "f.conf", "--port", "2055"])
    assert args.func is cli.cmd_import_samplicator and args.port == 2055 and args.protocol is None


INGRESS6 = [dict(INGRESS[0], address6="2001:db8:10::2/64", exporter_networks=["2001:db8:a::/48"])]
EGRESS6 = [dict(EGRESS[0], address6="2001:db8:20::2/64", routes=EGRESS[0]["routes"] + [
    {"to": "2001:db8:30::/48", "via": "2001:db8:20::1"}]), EGRESS[1]]


def test_ipv6_exporters_and_receivers_in_brackets(tmp_path):
    """samplicator's IPv6 syntax (its parsetest.c): [ADDR]/LEN exporters, [ADDR]/PORT/FREQ,TTL or [ADDR]:PORT
    receivers. A copy keeps its family: IPv4 exporters are not given to an IPv6 receiver, and it is said."""
    text = ("[2001:db8:a::]/48: [2001:db8:30::5]/9995/10,34 10.20.1.31:9995\n"
            "[2001:db8:a:4::7]: [2001:db8:30::6]:2055\n"
            "10.1.0.0/16: [2001:db8:30::5]/9995 [2001:db8:30::9]\n"
            "[::]/0: [2001:db8:30::6]:2055\n")
    rc, out, err = run_cli(tmp_path, text, "--port", "2055", "--protocol", "netflow")
    assert rc == 0, err
    got = yaml.safe_load(out)["logfwdr_collectors"]
    assert got == [
        {"name": "2001:db8:30::5", "address": "2001:db8:30::5", "protocols": ["netflow"],
         "ports": {"netflow": 9995}, "sources": ["2001:db8:a::/48"], "sample": 10},
        {"name": "2001:db8:30::6", "address": "2001:db8:30::6", "protocols": ["netflow"]},  # [::]/0: every one
    ]
    assert "line 1: TTL 34 for 2001:db8:30::5 is ignored" in err
    assert "line 1: 2001:db8:30::5 is an IPv6 receiver; the exporters 10.1.0.0/16 are not copied to it" in err
    assert "line 1: 10.20.1.31 is an IPv4 receiver; the exporters 2001:db8:a::/48 are not copied to it (a copy " \
           "keeps its address family: give it a receiver of theirs); it gets no exporter at all and is left out" in err
    assert "line 3: 2001:db8:30::9 is an IPv6 receiver" in err and "left out" in err
    # what the role makes of it, on a replicator with IPv6
    devices = replication_devices(got, INGRESS6, PROTOCOLS, egress_interfaces=EGRESS6)
    (port,) = devices[0]["ports"]
    dests = dict((d["name"], d) for d in port["destinations"])
    assert dests["2001:db8:30::5"]["port"] == 9995 and dests["2001:db8:30::5"]["sample"] == 10
    assert dests["2001:db8:30::5"]["sources"] == ["2001:db8:a::/48"] and "sources" not in dests["2001:db8:30::6"]


def test_ipv6_prefix_forms():
    rules = samplicator.parse("[2001:db8:a:4::7]: [2001:db8::1]\n[2001:db8::]/32: [2001:db8::1]/1234/10,34\n")
    assert [str(n) for n, _r in rules] == ["2001:db8:a:4::7/128", "2001:db8::/32"]
    assert [(r["address"], r["port"], r["freq"], r["ttl"]) for _n, rs in rules for r in rs] == [
        ("2001:db8::1", 2000, 1, None), ("2001:db8::1", 1234, 10, "34")]
