# -*- coding: utf-8 -*-
"""The logfwdr program on the host kernel (mirror mode): apply, status, and the agent repairing the kernel.

The agent runs as a process in the replicator namespace (the interpreters of LOGFWDR_TEST_PYTHONS, so under
pyroute2 0.7.2 and 0.9.x) while an exporter sends steady traffic; receivers count what arrives. A sabotage (a
deleted qdisc, a deleted destination node, an egress interface deleted and made again) must be repaired within
2 s, and the destinations it did not touch must lose nothing.
"""

import json
import os
import signal
import subprocess
import sys
import time

from lflab import netlab
import pytest

sys.path.insert(0, netlab.ensure_collection_path())
from ansible_collections.netops.logfwdr.plugins.module_utils.tc.layout import DEFAULT_PRIORITY  # noqa: E402

pytestmark = pytest.mark.netns

PRIO = DEFAULT_PRIORITY
CLI = "import sys; from ansible_collections.netops.logfwdr.plugins.module_utils.tc import cli; sys.exit(cli.main())"


def state(tools, port=514):
    return {"priority": PRIO, "devices": [{"name": "in0", "ports": [{"port": port, "destinations": [
        {"name": "col%d" % i, "mode": "mirror", "device": tool} for i, tool in enumerate(tools)]}]}]}


class Agent(object):
    def __init__(self, rig, tmp_path, desired):
        self.rig = rig
        self.path = str(tmp_path / "state.json")
        self.health = str(tmp_path / "health")
        self.log = str(tmp_path / "agent.log")
        self.write(desired)
        env = dict(rig.interp.env, LOGFWDR_LOCK=str(tmp_path / "lock"), LOGFWDR_RUN_DIR=str(tmp_path / "run"))
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", rig.lab.rep, rig.interp.path, "-c", CLI, "agent", "--state", self.path,
             "--health-file", self.health, "--sweep", "5"],
            stdout=subprocess.DEVNULL, stderr=open(self.log, "w"), env=env)
        rig.lab.procs.append(self.proc)
        deadline = time.time() + 15
        while not os.path.exists(self.health):
            assert self.proc.poll() is None and time.time() < deadline, self.text()
            time.sleep(0.05)

    def write(self, desired):
        tmp = self.path + ".tmp"
        with open(tmp, "w") as handle:
            json.dump(desired, handle)
        os.rename(tmp, self.path)

    def text(self):
        return open(self.log).read()

    def healthy(self):
        return open(self.health).read().strip() == "0"

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.fixture
def agent_rig(rig):
    tools = rig.lab.add_receivers(3)
    return rig, tools


def wait_for(condition, timeout):
    start = time.time()
    while time.time() - start < timeout:
        if condition():
            return time.time() - start
        time.sleep(0.02)
    return None


def mirrors_to(rig, tool):
    return "Mirror to device %s)" % tool in rig.filters()


class Traffic(object):
    """Steady UDP from the exporter to port 514 while a sabotage happens; counts at every receiver's NIC."""

    def __init__(self, rig, rate=500, seconds=4.0):
        self.rig = rig
        self.before = [rig.lab.rx_packets(i) for i in range(len(rig.lab.receivers))]
        code = netlab.udp_blast_code(netlab.REPLICATOR_IP, 514, rate, seconds)
        self.proc = subprocess.Popen(["ip", "netns", "exec", rig.lab.exp, sys.executable, "-c", code],
                                     stdout=subprocess.PIPE, universal_newlines=True)

    def finish(self):
        sent = int(self.proc.communicate(timeout=60)[0].split()[0])
        time.sleep(0.3)
        got = [self.rig.lab.rx_packets(i) - b for i, b in enumerate(self.before)]
        return sent, got


def test_apply_and_status_from_a_state_file(agent_rig, tmp_path):
    rig, tools = agent_rig
    path = str(tmp_path / "state.yml")
    with open(path, "w") as handle:  # YAML is read when PyYAML is there; JSON always
        json.dump(state(tools[:2]), handle)
    env = dict(rig.interp.env, LOGFWDR_LOCK=str(tmp_path / "lock"), LOGFWDR_RUN_DIR=str(tmp_path / "run"))

    def cli(*argv):
        return netlab.sh("ip", "netns", "exec", rig.lab.rep, rig.interp.path, "-c", CLI, *argv, env=env, check=False)

    first = cli("apply", "--state", path)
    assert first.returncode == 0, first.stderr
    result = json.loads(first.stdout)
    assert result["changed"] and result["pending"] == []
    assert [d["name"] for d in result["devices"][0]["ports"][0]["destinations"]] == ["col0", "col1"]
    again = json.loads(cli("apply", "--state", path).stdout)
    assert again["changed"] is False and again["commands"] == []
    got = rig.exchange({514: ["m%d" % i for i in range(5)]}, ports=(514,))
    assert [len(got[i]) for i in range(3)] == [5, 5, 0]
    status = cli("status", "--state", path, "--json")
    assert status.returncode == 0, status.stderr
    rows = json.loads(status.stdout)
    assert [(r["collector"], r["device"], r["port"], r["egress_device"], r["state"], r["packets"]) for r in rows] == \
        [("col0", "in0", 514, "tool0", "active", 5), ("col1", "in0", 514, "tool1", "active", 5)]
    # a third destination in the file, not applied: pending; the table names it
    with open(path, "w") as handle:
        json.dump(state(tools), handle)
    table = cli("status", "--state", path)
    assert table.returncode == 3, table.stdout
    lines = table.stdout.splitlines()
    assert lines[0].split()[:3] == ["DEVICE", "PORT", "COLLECTOR"]
    assert lines[3].split()[:5] == ["in0", "514", "col2", "mirror", "tool2"] and "pending" in lines[3]
    bad = cli("apply", "--state", str(tmp_path / "missing.json"))
    assert bad.returncode == 2 and "cannot read" in bad.stderr


def test_deleted_qdisc_and_filter_are_restored_and_others_lose_nothing(agent_rig, tmp_path):
    rig, tools = agent_rig
    agent = Agent(rig, tmp_path, state(tools))
    assert wait_for(lambda: mirrors_to(rig, "tool2"), 5) is not None, agent.text()
    assert agent.healthy()

    # one destination's node deleted under traffic: back within 2 s, the other two lose nothing
    traffic = Traffic(rig)
    time.sleep(1.0)
    handle = [line.split("fh ")[1].split()[0] for line in rig.filters().splitlines()
              if "fh " in line and "order" in line and "::" in line and not line.split("fh ")[1].startswith("800")]
    victim = handle[1]  # col1's node (node ids in destination order)
    assert "tool1" in rig.tc("filter", "get", "dev", "in0", "ingress", "protocol", "ip", "pref", str(PRIO),
                             "handle", victim, "u32")
    rig.tc("filter", "del", "dev", "in0", "ingress", "protocol", "ip", "pref", str(PRIO), "handle", victim, "u32")
    took = wait_for(lambda: mirrors_to(rig, "tool1"), 2)
    assert took is not None, agent.text()
    sent, got = traffic.finish()
    assert got[0] == sent and got[2] == sent, (sent, got)
    assert 0 < got[1] < sent
    print("node restored in %.3f s; untouched destinations %d/%d and %d/%d" % (took, got[0], sent, got[2], sent))

    # the whole qdisc deleted: everything back within 2 s
    rig.tc("qdisc", "del", "dev", "in0", "ingress")
    took = wait_for(lambda: all(mirrors_to(rig, t) for t in tools), 2)
    assert took is not None, agent.text()
    print("qdisc restored in %.3f s" % took)
    got = rig.exchange({514: ["after"]}, ports=(514,))
    assert [len(got[i]) for i in range(3)] == [1, 1, 1]
    assert agent.healthy()
    assert "repaired: tc qdisc add dev in0 ingress" in agent.text()
    agent.stop()
    assert not agent.healthy()  # a stopped agent keeps nothing: unhealthy


def test_egress_interface_deleted_and_made_again(agent_rig, tmp_path):
    rig, tools = agent_rig
    lab = rig.lab
    agent = Agent(rig, tmp_path, state(tools))
    assert wait_for(lambda: mirrors_to(rig, "tool2"), 5) is not None, agent.text()
    old_ifindex = json.loads(netlab.sh("ip", "-n", lab.rep, "-j", "link", "show", "dev", "tool1").stdout)[0]["ifindex"]
    traffic = Traffic(rig, seconds=5.0)
    time.sleep(1.0)
    netlab.sh("ip", "-n", lab.rep, "link", "del", "tool1")  # its peer rx1 goes with it
    time.sleep(0.5)
    netlab.sh("ip", "-n", lab.rep, "link", "add", "tool1", "type", "veth", "peer", "name", "rx1", "netns",
              lab.receivers[1])
    netlab.sh("ip", "-n", lab.receivers[1], "link", "set", "rx1", "address", lab.in0_mac)
    netlab.sh("ip", "-n", lab.receivers[1], "addr", "add", netlab.REPLICATOR_IP + "/32", "dev", "rx1")
    netlab.sh("ip", "-n", lab.receivers[1], "link", "set", "rx1", "up")
    made = time.time()
    netlab.sh("ip", "-n", lab.rep, "link", "set", "tool1", "up")
    new_ifindex = json.loads(netlab.sh("ip", "-n", lab.rep, "-j", "link", "show", "dev", "tool1").stdout)[0]["ifindex"]
    assert new_ifindex != old_ifindex
    took = wait_for(lambda: mirrors_to(rig, "tool1"), 2)
    assert took is not None, (rig.filters(), agent.text())
    print("rule follows the new tool1 (ifindex %d -> %d) %.3f s after it came up"
          % (old_ifindex, new_ifindex, time.time() - made))
    # counters of the new rx1 start at 0: count from now
    traffic.before[1] = 0
    sent, got = traffic.finish()
    assert got[0] == sent and got[2] == sent, (sent, got)
    assert got[1] > 0, got
    assert agent.healthy()


def test_state_file_change_is_applied_and_health_follows(agent_rig, tmp_path):
    rig, tools = agent_rig
    agent = Agent(rig, tmp_path, state(tools[:1]))
    assert wait_for(lambda: mirrors_to(rig, "tool0"), 5) is not None, agent.text()
    agent.write(state(tools[:2]))
    assert wait_for(lambda: mirrors_to(rig, "tool1"), 3) is not None, agent.text()
    # a state that cannot be installed (a device that does not exist): the kernel keeps the last rules, unhealthy
    broken = state(tools[:2])
    broken["devices"][0]["ports"][0]["destinations"].append({"name": "gone", "mode": "mirror", "device": "nope0"})
    agent.write(broken)
    assert wait_for(lambda: not agent.healthy(), 5) is not None, agent.text()
    assert mirrors_to(rig, "tool1")
    assert "no interface named 'nope0'" in agent.text()
    agent.write(state(tools[:2]))
    assert wait_for(agent.healthy, 5) is not None, agent.text()

    # SIGHUP (systemctl reload, after the role installed new code): the same process runs the program again,
    # the health file keeps its verdict throughout, and the new run repairs as the old one did
    os.kill(agent.proc.pid, signal.SIGHUP)
    seen = set()
    deadline = time.time() + 5
    while "SIGHUP: starting again" not in agent.text() or agent.text().count("health: healthy") < 2:
        seen.add(open(agent.health).read())
        assert time.time() < deadline and agent.proc.poll() is None, agent.text()
        time.sleep(0.01)
    assert seen == {"0\n"}, seen
    rig.tc("qdisc", "del", "dev", "in0", "ingress")
    assert wait_for(lambda: mirrors_to(rig, "tool1"), 2) is not None, agent.text()


NEIGHBOUR = r"""
import json, sys
from ansible_collections.netops.logfwdr.plugins.module_utils.tc import kernel
k = kernel.Kernel(arp_timeout=0.5)
print(json.dumps([k.neighbour("in0", a) for a in sys.argv[1:]]))
"""


def test_unconfirmed_neighbours_are_asked_before_use(rig):
    """A STALE entry with a wrong MAC (a replaced NIC) is not used as it is: an ARP request gets the real one;
    a STALE entry nobody answers for gives no MAC (pending); a confirmed entry is used without asking."""
    lab = rig.lab
    real = netlab.Lab.mac(lab.exp, "exp0")
    netlab.sh("ip", "-n", lab.rep, "neigh", "replace", netlab.EXPORTER_IP, "lladdr", "02:00:00:00:00:99",
              "dev", "in0", "nud", "stale")
    netlab.sh("ip", "-n", lab.rep, "neigh", "replace", "10.77.0.50", "lladdr", "02:00:00:00:00:50",
              "dev", "in0", "nud", "stale")
    netlab.sh("ip", "-n", lab.rep, "neigh", "replace", "10.77.0.60", "lladdr", "02:00:00:00:00:60",
              "dev", "in0", "nud", "reachable")
    got = json.loads(rig.python(NEIGHBOUR, netlab.EXPORTER_IP, "10.77.0.50", "10.77.0.60"))
    assert got == [real, None, "02:00:00:00:00:60"]


PROBE6 = r"""
import json, subprocess, sys, time
from ansible_collections.netops.logfwdr.plugins.module_utils.tc import agent
r = agent.Resolver(arp_timeout=0.3)
out = {"first": r.neighbour("in0", sys.argv[1])}
subprocess.run(sys.argv[2:], check=True)  # the next hop gets its address: it answers from now on
a = agent.Agent("/nonexistent", resolver=r)
woke, start = False, time.time()
while not woke and time.time() - start < 3:
    woke = a._probe(None, time.time())
    time.sleep(0.05)
out.update(woke=woke, after=r.neighbour("in0", sys.argv[1]), seconds=round(time.time() - start, 2))
print(json.dumps(out))
"""


def _ipv6_on(lab):
    netlab.Lab.add_address6(lab.rep, "in0", "fd00:77::1/64")
    netlab.Lab.add_address6(lab.exp, "exp0", "fd00:77::2/64")


def test_ipv6_next_hops_are_found_by_neighbour_discovery(rig):
    """The IPv6 counterpart of ARP: a Neighbour Solicitation gets the real MAC past a STALE wrong entry; a silent
    address gives none; a confirmed entry is used as it is."""
    lab = rig.lab
    _ipv6_on(lab)
    real = netlab.Lab.mac(lab.exp, "exp0")
    netlab.sh("ip", "-n", lab.rep, "-6", "neigh", "replace", "fd00:77::2", "lladdr", "02:00:00:00:00:99", "dev", "in0",
              "nud", "stale")
    netlab.sh("ip", "-n", lab.rep, "-6", "neigh", "replace", "fd00:77::60", "lladdr", "02:00:00:00:00:60", "dev",
              "in0", "nud", "reachable")
    got = json.loads(rig.python(NEIGHBOUR, "fd00:77::2", "fd00:77::50", "fd00:77::60"))
    assert got == [real, None, "02:00:00:00:00:60"]


def test_the_agent_asks_a_silent_ipv6_next_hop_again_and_wakes_when_it_answers(rig):
    lab = rig.lab
    _ipv6_on(lab)
    got = json.loads(rig.python(PROBE6, "fd00:77::9", "ip", "netns", "exec", lab.exp, "ip", "-6", "addr", "add",
                                "fd00:77::9/64", "dev", "exp0", "nodad"))
    assert got["first"] is None and got["woke"] is True, got
    assert got["after"] == netlab.Lab.mac(lab.exp, "exp0"), got
