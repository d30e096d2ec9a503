# -*- coding: utf-8 -*-
"""The logfwdr program without a kernel: pending next hops, the state file, status rows and their table, the
agent's event parsing, next-hop waiting and health verdicts, metrics, systemd notification."""

import copy
import json
import os
import socket
import struct

import pytest

from ansible_collections.netops.logfwdr.plugins.module_utils.tc import agent as agent_mod
from ansible_collections.netops.logfwdr.plugins.module_utils.tc import cli, kernel, layout, metrics, model, runner
from ansible_collections.netops.logfwdr.plugins.module_utils.tc import state as state_mod

from test_model import FakeHost, state
from test_planner import BASE, FakeKernel, fwd, summary


# ---- pending: a silent next hop is waited for, not a failure ---------------------------------------------------

def test_silent_next_hop_is_pending_with_allow_and_a_problem_without():
    params = state({"name": "up", "address": "192.0.2.10"}, {"name": "down", "address": "192.0.2.99"})
    pending = []
    devs = model.validate(params, FakeHost(), pending)
    assert [d["name"] for d in devs[0]["ports"][0]["destinations"]] == ["up"]
    assert pending == [{"name": "down", "device": "ens1", "port": 514, "address": "192.0.2.99",
                        "next_hop": "192.0.2.99", "egress_device": "ens2",
                        "reason": "next hop 192.0.2.99 on ens2 did not answer ARP"}]
    # the original is still dropped: the port has a forward destination, only waiting
    assert devs[0]["ports"][0]["original"] == "drop"
    with pytest.raises(model.ValidationError) as info:
        model.validate(params, FakeHost())
    assert info.value.problems == ["devices[0].ports[0].destinations[1]: next hop 192.0.2.99 on ens2 did not answer "
                                   "ARP; check the collector is up or set next_hop_mac"]


def test_a_port_whose_destinations_all_wait_gets_no_rule():
    pending = []
    devs = model.validate(state({"name": "down", "address": "192.0.2.99"}), FakeHost(), pending)
    assert devs[0]["ports"] == [] and len(pending) == 1


def test_one_warning_per_collector_not_per_port_and_device():
    pending = [dict(name="c1", device=dev, port=port, reason="next hop 10.0.0.1 on ens2 did not answer ARP")
               for dev in ("ens1", "ens4") for port in (514, 162)] + [
        dict(name="c2", device="ens1", port=514, reason="next hop 10.0.0.2 on ens2 did not answer ARP")]
    lines = runner.pending_warnings(pending)
    assert len(lines) == 2
    assert lines[0] == ("collector c1 is pending: next hop 10.0.0.1 on ens2 did not answer ARP; its rules are "
                        "installed once it answers (ens1 udp/514, ens1 udp/162, ens4 udp/514, ens4 udp/162)")
    assert lines[1].startswith("collector c2 is pending")


def test_next_hop_change_replaces_only_that_destination():
    k = FakeKernel()
    k.converge(BASE)
    moved = copy.deepcopy(BASE)
    moved[0]["destinations"][1] = fwd("b", "192.0.2.11", next_hop_mac="52:54:00:aa:bb:cc")
    assert summary(k.converge(moved)) == [("node_replace", "b")]
    # the egress interface made again (new ifindex): again one replace, of that destination only
    again = copy.deepcopy(moved)
    again[0]["destinations"][0] = fwd("a", "192.0.2.10", ifindex=7)
    again[1]["destinations"][0] = fwd("a", "192.0.2.10", ifindex=7)
    assert summary(k.converge(again)) == [("node_replace", "a"), ("node_replace", "a")]


# ---- the state file --------------------------------------------------------------------------------------------

def test_state_gets_the_module_defaults_and_types():
    params = state_mod.normalize({"devices": [{"name": "ens1", "ports": [{"port": "syslog", "destinations": [
        {"name": "c", "address": "192.0.2.10", "port": "1514"}]}]}]})
    assert params["priority"] == layout.DEFAULT_PRIORITY and params["chain"] == 0
    assert params["state"] == "present" and params["pending"] == "allow"
    dest = params["devices"][0]["ports"][0]["destinations"][0]
    assert dest["port"] == 1514 and dest["mode"] == "forward" and dest["next_hop_mac"] is None


def test_state_problems_are_named_all_at_once():
    with pytest.raises(state_mod.StateError) as info:
        state_mod.normalize({"priority": "high", "pending": "maybe", "device": [], "devices": [
            {"ports": [{"port": 514, "destinations": [{"mode": "tee"}]}]}]})
    text = str(info.value)
    for words in ("device: unknown key", "priority: 'high' is not a whole number", "pending: 'maybe'; use one of "
                  "allow, fail", "devices[0].name: required", "devices[0].ports[0].destinations[0].mode: 'tee'"):
        assert words in text, (words, text)
    with pytest.raises(state_mod.StateError):
        state_mod.normalize(["not", "a", "mapping"])


def test_state_file_json_and_yaml(tmp_path):
    path = tmp_path / "state.yml"
    path.write_text("priority: 7000\ndevices:\n  - name: ens1\n    ports: []\n")
    assert state_mod.load(str(path))["priority"] == 7000
    path.write_text(json.dumps({"devices": []}))
    assert state_mod.load(str(path))["devices"] == []
    with pytest.raises(state_mod.StateError) as info:
        state_mod.load(str(tmp_path / "missing.json"))
    assert "cannot read" in str(info.value)


# ---- status ----------------------------------------------------------------------------------------------------

class StatusKernel(object):
    """What status_rows asks of the kernel: links, routes, neighbour entries (runner.info is patched)."""

    def __init__(self, links, routes, neighbours):
        self.links_, self.routes, self.neighbours = links, routes, neighbours

    def link(self, name):
        return {"ifindex": self.links_[name], "mac": "02:00:00:00:00:01"} if name in self.links_ else None

    def route(self, address):
        return self.routes.get(address)

    def neighbour_entry(self, device, address):
        return self.neighbours.get((device, address))


def installed(*dests):
    counters = {"packets": 10, "bytes": 1000, "drops": 1, "overlimits": 0, "rate_limited": 2}
    return {"changed": False, "devices": [{"name": "ens1", "ports": [{"port": 514, "original": "drop", "destinations": [
        dict(d, counters=counters) for d in dests]}]}]}


def test_status_rows_active_stale_pending(monkeypatch):
    kern = StatusKernel({"ens1": 1, "ens2": 2, "tool0": 4},
                        {"192.0.2.10": {"device": "ens2", "gateway": None},
                         "192.0.2.11": {"device": "ens2", "gateway": None},
                         "198.51.100.5": {"device": "ens2", "gateway": "192.0.2.1"}},
                        {("ens2", "192.0.2.10"): (kernel.NUD_REACHABLE, "52:54:00:00:00:10"),
                         ("ens2", "192.0.2.11"): (kernel.NUD_STALE, "52:54:00:00:00:99")})
    monkeypatch.setattr(runner, "info", lambda params, k: installed(
        {"name": "a", "mode": "forward", "address": "192.0.2.10", "device": "ens2", "next_hop_mac": "52:54:00:00:00:10"},
        {"name": "b", "mode": "forward", "address": "192.0.2.11", "device": "ens2", "next_hop_mac": "52:54:00:00:00:11"},
        {"name": "ids", "mode": "mirror", "device": 9}))
    params = state_mod.normalize({"devices": [{"name": "ens1", "ports": [{"port": "syslog", "destinations": [
        {"name": "a", "address": "192.0.2.10"}, {"name": "b", "address": "192.0.2.11"},
        {"name": "ids", "mode": "mirror", "device": "tool0"}, {"name": "far", "address": "198.51.100.5"}]}]}]})
    rows = cli.status_rows(kern, params)
    got = [(r["collector"], r["state"], r["egress_device"], r["next_hop"]) for r in rows]
    assert got == [("a", "active", "ens2", "192.0.2.10"),
                   ("b", "stale", "ens2", "192.0.2.11"),  # the neighbour entry has another MAC now
                   ("ids", "stale", 9, None),  # its egress interface (ifindex 9) is gone
                   ("far", "pending", "ens2", "192.0.2.1")]  # not installed; next hop the route's gateway
    assert (rows[0]["packets"], rows[0]["bytes"], rows[0]["drops"], rows[0]["rate_limited"]) == (10, 1000, 1, 2)
    assert rows[3]["packets"] == 0

    table = cli.format_rows(rows).splitlines()
    assert table[0].split() == ["DEVICE", "PORT", "COLLECTOR", "MODE", "EGRESS", "NEXT", "HOP", "MAC", "STATE",
                                "PACKETS", "BYTES", "DROPS", "RATE-LIMITED"]
    assert table[1].split() == ["ens1", "514", "a", "forward", "ens2", "192.0.2.10", "52:54:00:00:00:10", "active",
                                "10", "1000", "1", "2"]
    assert table[4].split()[:8] == ["ens1", "514", "far", "forward", "ens2", "192.0.2.1", "-", "pending"]
    # columns line up: every cell of a column starts where its title does
    start = table[0].index("STATE")
    assert all(line[start:].split()[0] in ("STATE", "active", "stale", "pending") for line in table)


def test_status_without_a_state_file_shows_what_is_installed(monkeypatch):
    kern = StatusKernel({"ens1": 1, "tool0": 4}, {}, {})
    ids = {"name": "ids", "mode": "mirror", "device": "tool0"}
    monkeypatch.setattr(runner, "info", lambda params, k: installed(ids))
    rows = cli.status_rows(kern, None)
    assert [(r["collector"], r["state"]) for r in rows] == [("ids", "active")]


def test_cli_apply_prints_the_result_and_warns_per_collector(monkeypatch, tmp_path, capsys):
    path = tmp_path / "state.json"
    path.write_text(json.dumps({"devices": []}))

    class Closed(object):
        def close(self):
            pass

    seen = {}

    def fake_run(params, kern, check_mode=False):
        seen.update(params=params, check=check_mode)
        return {"changed": True, "commands": ["tc qdisc add dev ens1 ingress"], "devices": [], "diff": {},
                "pending": [{"name": "c1", "device": "ens1", "port": 514, "reason": "r"}], "warnings": ["w"]}

    monkeypatch.setattr(cli, "_kernel", Closed)
    monkeypatch.setattr(runner, "run", fake_run)
    assert cli.main(["apply", "--state", str(path), "--check", "--require-all"]) == 0
    out = capsys.readouterr()
    result = json.loads(out.out)
    assert result["changed"] and result["warnings"][0].startswith("collector c1 is pending") and result["warnings"][1] == "w"
    assert "warning: collector c1 is pending" in out.err
    assert seen["check"] is True and seen["params"]["pending"] == "fail"
    assert cli.main(["apply", "--state", str(tmp_path / "nope.json")]) == 2


# ---- the agent -------------------------------------------------------------------------------------------------

def nlmsg(msg_type, body):
    return struct.pack("=IHHII", 16 + len(body), msg_type, 0, 0, 0) + body + b"\0" * (-len(body) % 4)


def test_events_are_read_from_the_headers_with_their_ifindex():
    neigh = struct.pack("=BBHiHBB", socket.AF_INET, 0, 0, 7, kernel.NUD_STALE, 0, 0)
    tc = struct.pack("=BBHiIII", 0, 0, 0, 3, 0, 0xFFFFFFF1, 0)
    link = b"\0" * 16
    data = nlmsg(28, neigh) + nlmsg(45, tc) + nlmsg(16, link) + nlmsg(3, b"")
    assert agent_mod.parse_events(data) == [(28, 7), (45, 3), (16, None)]
    assert agent_mod.parse_events(b"\0\0") == []


class QuietResolver(agent_mod.Resolver):
    """agent.Resolver without a netlink socket: neighbour entries and ARP answers are given."""

    def __init__(self, entries, answers):  # pylint: disable=super-init-not-called
        self.entries, self.answers, self.asked = entries, answers, []
        self.heard, self.waiting, self.resolved = {}, {}, {}

    def neighbour_entry(self, device, address):
        return self.entries.get((device, address))

    def arp_resolve(self, device, address, tries=3, timeout=None):
        self.asked.append(address)
        return self.answers.get(address)


def test_confirmed_neighbours_are_used_others_are_asked_silent_ones_waited_for(monkeypatch):
    r = QuietResolver({("ens2", "10.0.0.1"): (kernel.NUD_REACHABLE, "52:54:00:00:00:01"),
                       ("ens2", "10.0.0.2"): (kernel.NUD_STALE, "52:54:00:00:00:02")},
                      {"10.0.0.2": "52:54:00:00:00:22"})
    assert r.neighbour("ens2", "10.0.0.1") == "52:54:00:00:00:01" and r.asked == []
    # STALE: confirmed by ARP first, and the answer (a replaced NIC) wins over the old entry
    assert r.neighbour("ens2", "10.0.0.2") == "52:54:00:00:00:22" and r.asked == ["10.0.0.2"]
    # silent: asked once, then waited for without blocking a reconcile again
    assert r.neighbour("ens2", "10.0.0.3") is None
    assert r.neighbour("ens2", "10.0.0.3") is None and r.asked == ["10.0.0.2", "10.0.0.3"]
    now = r.waiting[("ens2", "10.0.0.3")][0]
    delays = []
    for _round in range(5):
        assert r.due_probes(now) == [("ens2", "10.0.0.3")]
        delays.append(r.waiting[("ens2", "10.0.0.3")][1])
        now = r.waiting[("ens2", "10.0.0.3")][0]
    assert delays == [0.5, 1.0, 1.0, 1.0, 1.0]  # backoff, capped so an answer is seen within a second
    assert r.due_probes(now - 0.1) == []
    # its answer, heard by the listener, wakes the agent and is used; the wait ends
    assert r.hear("ens2", "10.0.0.9", "52:54:00:00:00:09") is False  # nobody waits for that one
    assert r.hear("ens2", "10.0.0.3", "52:54:00:00:00:33") is True
    assert r.neighbour("ens2", "10.0.0.3") == "52:54:00:00:00:33" and ("ens2", "10.0.0.3") not in r.waiting
    # the same MAC again is no news; a new one (a gratuitous ARP from a replaced NIC) is
    assert r.hear("ens2", "10.0.0.3", "52:54:00:00:00:33") is False
    assert r.hear("ens2", "10.0.0.3", "52:54:00:00:00:44") is True
    r.forget({("ens2", "10.0.0.1")})
    assert set(r.resolved) == {("ens2", "10.0.0.1")} and not r.heard and not r.waiting


def test_arp_frames_are_parsed_both_ways():
    frame = (b"\xff" * 6 + b"\x02\0\0\0\0\x01" + b"\x08\x06" + struct.pack("!HHBBH", 1, 0x0800, 6, 4, 2)
             + b"\x52\x54\0\0\0\x09" + socket.inet_aton("10.0.0.9") + b"\x02\0\0\0\0\x01" + socket.inet_aton("10.0.0.1"))
    assert kernel.parse_arp(frame) == (2, "52:54:00:00:00:09", "10.0.0.9", "10.0.0.1")
    assert kernel.parse_arp(frame[:30]) is None
    assert kernel.parse_arp(frame[:12] + b"\x08\x00" + frame[14:]) is None


def make_agent(tmp_path, results, **kw):
    path = tmp_path / "state.json"
    path.write_text(json.dumps({"devices": [{"name": "ens1", "ports": []}]}))

    class Kern(object):
        resolved, waiting = {}, {}

        def links(self, refresh=False):
            return {"ens1": {"ifindex": 1}, "ens2": {"ifindex": 2}}

        def forget(self, keep):
            pass

    logged = []
    agent = agent_mod.Agent(str(path), health_path=str(tmp_path / "health"), log=logged.append, resolver=Kern(),
                            **kw)
    return agent, logged


def test_health_follows_fall_and_rise(tmp_path, monkeypatch):
    outcomes = []

    def fake_run(params, kern):
        ok = outcomes.pop(0)
        if not ok:
            raise runner.RunError("the kernel refused it")
        return {"changed": False, "commands": [], "pending": [], "devices": []}

    monkeypatch.setattr(runner, "run", fake_run)
    agent, logged = make_agent(tmp_path, outcomes, fall=2, rise=3)
    health = tmp_path / "health"
    verdicts = []
    for ok in (True, False, True, False, False, True, True, True):
        outcomes.append(ok)
        agent.reconcile()
        if len(verdicts):  # the first comparison decides by itself; then one check per comparison here
            agent.check()
        verdicts.append(health.read_text())
    # the first comparison decides at once; then 2 failures in a row make it 1, 3 successes 0 again
    assert verdicts == ["0\n", "0\n", "0\n", "0\n", "1\n", "1\n", "1\n", "0\n"]
    assert logged.count("the kernel refused it") == 2  # said when it starts failing, not at every retry
    assert agent._next_gap() == agent.sweep


def test_health_needs_the_syslog_bridge_listening(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "run", lambda params, kern: {"changed": True, "commands": ["tc x"], "pending": [
        {"name": "c1", "device": "ens1", "port": 514, "next_hop": "10.0.0.1", "egress_device": "ens2",
         "reason": "r"}], "devices": []})
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    port = srv.getsockname()[1]
    agent, logged = make_agent(tmp_path, [], listen_ports=[port], fall=1)
    agent.reconcile()
    assert (tmp_path / "health").read_text() == "1\n" and "syslog bridge not listening on tcp/%d" % port in logged
    assert agent.counts["repairs"] == 1 and "repaired: tc x" in logged
    assert [r["state"] for r in agent.rows] == ["pending"]
    assert any(line.startswith("warning: collector c1 is pending") for line in logged)
    srv.listen(1)
    agent.reconcile()
    agent.check()
    agent.check()
    assert (tmp_path / "health").read_text() == "0\n"
    srv.close()
    # one warning per collector while it waits
    assert sum(1 for line in logged if line.startswith("warning: collector c1")) == 1


def test_listening_sees_a_real_listener_and_not_a_client():
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    port = srv.getsockname()[1]
    assert not agent_mod.listening(port)
    srv.listen(1)
    assert agent_mod.listening(port)
    client = socket.create_connection(srv.getsockname())
    assert not agent_mod.listening(client.getsockname()[1])
    client.close()
    srv.close()
    assert not agent_mod.listening(port)


def test_health_file_is_replaced_whole(tmp_path):
    path = str(tmp_path / "run" / "health")
    agent_mod.write_health(path, False)
    assert open(path).read() == "1\n"
    agent_mod.write_health(path, True)
    assert open(path).read() == "0\n" and os.listdir(str(tmp_path / "run")) == ["health"]


def test_sd_notify_sends_to_the_socket_systemd_gives(tmp_path, monkeypatch):
    path = str(tmp_path / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    assert agent_mod.sd_notify("READY=1")
    assert sock.recv(64) == b"READY=1"
    sock.close()
    monkeypatch.delenv("NOTIFY_SOCKET")
    assert agent_mod.sd_notify("READY=1") is False


# ---- metrics ---------------------------------------------------------------------------------------------------

def test_metrics_exposition(tmp_path, monkeypatch):
    prometheus_client = pytest.importorskip("prometheus_client")
    agent, _logged = make_agent(tmp_path, [])
    agent.load_state()
    agent.healthy = True
    agent.rows = [{"collector": "c1", "device": "ens1", "port": 514, "state": "active", "resolved": 1700000000.5},
                  {"collector": "c2", "device": "ens1", "port": 514, "state": "pending", "resolved": None}]
    monkeypatch.setattr(metrics, "kernel_counters", lambda kern, params: [
        ("c1", 514, "ens1", {"packets": 7, "bytes": 700, "drops": 1, "rate_limited": 3})])
    registry = prometheus_client.CollectorRegistry()
    registry.register(metrics.Collector(agent, kernel_factory=object))
    text = prometheus_client.generate_latest(registry).decode()
    for line in ('logfwdr_copies_packets_total{collector="c1",device="ens1",port="514"} 7.0',
                 'logfwdr_copies_bytes_total{collector="c1",device="ens1",port="514"} 700.0',
                 'logfwdr_copies_drops_total{collector="c1",device="ens1",port="514"} 1.0',
                 'logfwdr_copies_rate_limited_total{collector="c1",device="ens1",port="514"} 3.0',
                 'logfwdr_destination_state{collector="c2",device="ens1",port="514",state="pending"} 1.0',
                 'logfwdr_destination_state{collector="c2",device="ens1",port="514",state="active"} 0.0',
                 'logfwdr_destination_last_resolution_timestamp_seconds{collector="c1",device="ens1",port="514"} '
                 '1.7000000005e+09',
                 'logfwdr_agent_healthy 1.0', 'logfwdr_agent_kernel_read_ok 1.0'):
        assert line in text.splitlines(), (line, text)


def test_metrics_listen_address():
    assert metrics.split_listen("127.0.0.1:9514") == ("127.0.0.1", 9514)
    assert metrics.split_listen("[::1]:9514") == ("::1", 9514)
    assert metrics.split_listen(":9514") == ("0.0.0.0", 9514)
    for bad in ("9514", "host:", "host:70000"):
        with pytest.raises(ValueError):
            metrics.split_listen(bad)


def test_metrics_of_vrrp_and_the_bridge_come_from_their_files(tmp_path):
    prometheus_client = pytest.importorskip("prometheus_client")
    agent, _logged = make_agent(tmp_path, [])
    vrrp = tmp_path / "vrrp"
    vrrp.mkdir()
    # what roles/logfwdr/files/vrrp-notify writes, and its temporary file mid-write
    (vrrp / "logfwdr_ens1").write_text("MASTER priority 150 since 2026-12-03T07:00:00+00:00\n")
    (vrrp / "logfwdr_ens2").write_text("BACKUP priority 150 since 2026-12-03T07:00:00+00:00\n")
    (vrrp / ".logfwdr_ens2.tmp").write_text("MASTER")
    stats = tmp_path / "stats.log"
    # impstats format=json lines; the first one cut by the tail, an older record of the same queue before
    stats.write_text(
        'ded":3}\n'
        '2026-12-03T07:00:00 h rsyslogd-pstats: {"name":"to-c1 queue","origin":"core.queue","size":0,'
        '"enqueued":5,"full":0,"discarded.full":1,"discarded.nf":0,"maxqsize":2}\n'
        '{"name":"main Q","origin":"core.queue","size":0,"enqueued":9,"discarded.full":7,"discarded.nf":0}\n'
        '{"name":"to-c1","origin":"core.action","processed":40,"failed":2,"suspended":1,"suspended.duration":0}\n'
        '{"name":"to-c1 queue","origin":"core.queue","size":3,"enqueued":50,"full":1,"discarded.full":9,'
        '"discarded.nf":4,"maxqsize":200}\n')
    registry = prometheus_client.CollectorRegistry()
    registry.register(metrics.Collector(agent, kernel_factory=object, vrrp_dir=str(vrrp), bridge_file=str(stats)))
    text = prometheus_client.generate_latest(registry).decode().splitlines()
    for line in ('logfwdr_vrrp_state{state="master",vrrp_instance="logfwdr_ens1"} 1.0',
                 'logfwdr_vrrp_state{state="backup",vrrp_instance="logfwdr_ens1"} 0.0',
                 'logfwdr_vrrp_state{state="backup",vrrp_instance="logfwdr_ens2"} 1.0',
                 'logfwdr_vrrp_state{state="master",vrrp_instance="logfwdr_ens2"} 0.0',
                 'logfwdr_bridge_stats_read_ok 1.0',
                 'logfwdr_bridge_action_processed_total{collector="c1"} 40.0',
                 'logfwdr_bridge_action_failed_total{collector="c1"} 2.0',
                 'logfwdr_bridge_queue_discarded_full_total{collector="c1"} 9.0',
                 'logfwdr_bridge_queue_discarded_nf_total{collector="c1"} 4.0'):
        assert line in text, (line, text)
    assert not [x for x in text if "main Q" in x or ".logfwdr_ens2.tmp" in x]
    # the bridge's file gone: said so, no stale counters
    stats.unlink()
    text = prometheus_client.generate_latest(registry).decode().splitlines()
    assert "logfwdr_bridge_stats_read_ok 0.0" in text
    assert not [x for x in text if x.startswith("logfwdr_bridge_queue_discarded_full_total{")]
