# -*- coding: utf-8 -*-
"""The BGP mode's announcement without a kernel: the decision (healthy, drained -> up, down), the descriptor handed
across the SIGHUP re-exec, the agent's verdicts driving the link, `logfwdr drain` waiting for still counters,
`undrain`, the status line and the metric."""

import fcntl
import json
import os
import socket

import pytest

from ansible_collections.netops.logfwdr.plugins.module_utils.tc import agent as agent_mod
from ansible_collections.netops.logfwdr.plugins.module_utils.tc import announce, cli, metrics, runner

RTM_NEWLINK, RTM_NEWADDR, RTM_DELADDR = 16, 20, 21


# ---- the decision ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("healthy, drained, why, expected", [
    (True, False, None, (True, None)),
    (False, False, "tc: the kernel refused it", (False, "not healthy: tc: the kernel refused it")),
    (False, False, None, (False, "not healthy: the rules are not in place")),
    (True, True, None, (False, "drained")),
    (False, True, "x", (False, "drained")),
    (None, False, None, (None, None)),  # no verdict yet: the link stays as it is (down when new, up when adopted)
    (None, True, None, (False, "drained")),
])
def test_up_exactly_while_healthy_and_not_drained(healthy, drained, why, expected):
    assert announce.decide(healthy, drained, why) == expected


@pytest.mark.parametrize("value, expected", [
    ("7", 7), (" 12\n", 12), (None, None), ("", None), ("x7", None), ("-4", None), ("2", None), ("0", None),
    ("3", 3), ("7:logfwdr0", None),
])
def test_inherited_descriptor_parsing(value, expected):
    assert announce.parse_inherited(value) == expected


def test_service_addresses():
    assert announce.parse_service_address("192.0.2.100") == (4, "192.0.2.100", 32)
    assert announce.parse_service_address("192.0.2.100/32") == (4, "192.0.2.100", 32)
    assert announce.parse_service_address("2001:DB8:100::1") == (6, "2001:db8:100::1", 128)
    assert announce.parse_service_address("2001:db8:100::1/128") == (6, "2001:db8:100::1", 128)
    for bad, words in (("192.0.2.0/24", "announced as /32"), ("2001:db8::/64", "/128"), ("host", "not an IPv4"),
                       ("224.0.0.5", "unicast"), ("0.0.0.0", "unicast"), ("127.0.0.1", "unicast"),
                       ("fe80::1", "unicast")):
        with pytest.raises(ValueError) as info:
            announce.parse_service_address(bad)
        assert words in str(info.value), (bad, info.value)


def test_default_files():
    assert announce.default_drain_file("/run/logfwdr/health") == "/run/logfwdr/drain"
    assert announce.default_drain_file(None) == "/run/logfwdr/drain"
    assert announce.default_drain_file("/tmp/x/h") == "/tmp/x/drain"
    assert announce.record_path("/run/logfwdr/drain") == "/run/logfwdr/announce.json"


def test_status_text():
    assert announce.describe(None, False, None, False) == ("no device", "no device")
    assert announce.describe(None, True, True, False) == ("up", "up")
    assert announce.describe({"state": "down", "why": "drained"}, True, False, True) == ("drained", "drained")
    assert announce.describe({"state": "down", "why": "not healthy: x"}, True, False, False) == \
        ("down", "down (not healthy: x)")
    # the agent said up but the link is down (set down by hand, or drain removed since): the kernel is the truth
    assert announce.describe({"state": "up", "why": None}, True, False, False) == ("down", "down (link down)")


# ---- the Announcer with a fake kernel --------------------------------------------------------------------------

class FakeIPR(object):
    """pyroute2's IPRoute as far as the Announcer uses it: one link, its flags and addresses."""

    def __init__(self, up=False, addresses=()):
        self.up = up
        self.addresses = list(addresses)  # (family, address, length, scope)
        self.sent = []

    def get_links(self, index):
        return [{"flags": 0x1 if self.up else 0}]

    def get_addr(self, index=None):
        out = []
        for family, address, length, scope in self.addresses:
            msg = _Msg(family=socket.AF_INET6 if family == 6 else socket.AF_INET, prefixlen=length, scope=scope,
                       index=index)
            msg.attrs = {"IFA_LOCAL": address, "IFA_ADDRESS": address}
            out.append(msg)
        return out

    def nlm_request(self, msg, msg_type, msg_flags):
        attrs = dict((k, v) for k, v in msg["attrs"]) if msg.get("attrs") else {}
        self.sent.append((msg_type, dict((k, msg[k]) for k in ("index", "flags")), attrs))
        if msg_type == RTM_NEWLINK:
            self.up = bool(msg["flags"] & 1)
        key = (6 if msg["family"] == socket.AF_INET6 else 4, attrs.get("IFA_LOCAL"), msg["prefixlen"], 0) \
            if msg_type in (RTM_NEWADDR, RTM_DELADDR) else None
        if msg_type == RTM_NEWADDR:
            self.addresses.append(key)
        elif msg_type == RTM_DELADDR:
            self.addresses.remove(key)
        return []


class _Msg(dict):
    attrs = {}

    def get_attr(self, name):
        return self.attrs.get(name)


@pytest.fixture
def fake_tun(monkeypatch):
    """open_tun gives a real descriptor (of /dev/null) and counts the calls; the device has ifindex 42."""
    opened = []

    def open_tun(name):
        fd = os.open(os.devnull, os.O_RDONLY)
        announce.set_cloexec(fd, True)
        opened.append(fd)
        return fd

    monkeypatch.setattr(announce, "open_tun", open_tun)
    monkeypatch.setattr(announce, "ifindex", lambda name: 42)
    yield opened
    for fd in opened:
        try:
            os.close(fd)
        except OSError:
            pass


def make_announcer(tmp_path, ipr, environ=None, addresses=("192.0.2.100", "2001:db8:100::1")):
    logged = []
    ann = announce.Announcer("logfwdr0", list(addresses), str(tmp_path / "drain"), ipr, logged.append,
                             environ=environ if environ is not None else {})
    return ann, logged


def test_a_new_device_gets_the_addresses_and_stays_down_until_the_first_verdict(tmp_path, fake_tun):
    ipr = FakeIPR(addresses=[(6, "fe80::1", 64, 253)])  # the kernel's own link-local address is left alone
    ann, logged = make_announcer(tmp_path, ipr)
    ann.open()
    adds = [(attrs["IFA_LOCAL"], attrs.get("IFA_FLAGS")) for kind, _h, attrs in ipr.sent if kind == RTM_NEWADDR]
    assert sorted(adds) == [("192.0.2.100", None), ("2001:db8:100::1", announce.IFA_F_NODAD)]
    assert not [s for s in ipr.sent if s[0] in (RTM_NEWLINK, RTM_DELADDR)]
    assert ann.up is False
    ann.update(None)
    assert ipr.up is False and not [s for s in ipr.sent if s[0] == RTM_NEWLINK]
    record = json.loads((tmp_path / "announce.json").read_text())
    assert record["device"] == "logfwdr0" and record["state"] == "down"
    assert record["addresses"] == ["192.0.2.100/32", "2001:db8:100::1/128"]
    assert logged == ["announce: logfwdr0 holds 192.0.2.100/32, 2001:db8:100::1/128",
                      "announce: logfwdr0 down until the first health verdict"]


def test_the_link_follows_health_and_the_drain_file_and_each_change_is_logged_once(tmp_path, fake_tun):
    ipr = FakeIPR()
    ann, logged = make_announcer(tmp_path, ipr)
    ann.open()
    del logged[:]
    ann.update(True)
    ann.update(True, verify=True)
    assert ipr.up is True and logged == ["announce: up"]
    ann.update(False, "tc: the kernel refused it")
    ann.update(False, "tc: the kernel refused it", verify=True)
    assert ipr.up is False
    assert logged[1:] == ["announce: withdrawn (not healthy: tc: the kernel refused it)"]
    assert json.loads((tmp_path / "announce.json").read_text())["why"] == "not healthy: tc: the kernel refused it"
    ann.update(True)
    (tmp_path / "drain").write_text("x")
    ann.update(True)
    assert ipr.up is False
    ann.update(True, verify=True)
    assert ipr.up is False
    (tmp_path / "drain").unlink()
    ann.update(True)
    assert ipr.up is True
    assert logged[2:] == ["announce: up", "announce: withdrawn (drained)", "announce: up"]
    # set down from outside (logfwdr drain racing an agent that had not read the file yet, or by hand): the next
    # check reads the kernel and raises it again while healthy and not drained
    ipr.up = False
    ann.update(True)
    assert ipr.up is False  # between checks the last state set is trusted: no netlink read per wake
    ann.update(True, verify=True)
    assert ipr.up is True
    links = [h["flags"] for kind, h, _a in ipr.sent if kind == RTM_NEWLINK]
    assert links == [1, 0, 1, 0, 1, 1]


def test_drained_before_the_first_verdict_stays_down_and_says_so(tmp_path, fake_tun):
    ipr = FakeIPR()
    ann, logged = make_announcer(tmp_path, ipr)
    (tmp_path / "drain").write_text("x")
    ann.open()
    ann.update(None)
    ann.update(True)
    assert ipr.up is False and logged[-1] == "announce: down (drained)"


def test_addresses_changed_across_a_reload_are_replaced(tmp_path, fake_tun):
    ipr = FakeIPR(addresses=[(4, "192.0.2.100", 32, 0), (4, "192.0.2.99", 32, 0)])
    ann, logged = make_announcer(tmp_path, ipr, addresses=("192.0.2.100",))
    ann.open()
    assert [(k, a["IFA_LOCAL"]) for k, _h, a in ipr.sent] == [(RTM_DELADDR, "192.0.2.99")]
    assert logged[0] == "announce: logfwdr0 holds 192.0.2.100/32 (removed 192.0.2.99/32)"


def test_the_descriptor_is_passed_on_across_the_exec_and_adopted(tmp_path, fake_tun, monkeypatch):
    ipr = FakeIPR()
    ann, _logged = make_announcer(tmp_path, ipr)
    ann.open()
    ann.update(True)
    fd = ann.fd
    assert fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC
    env = {}
    ann.pass_on(env)
    assert env == {announce.ENV_FD: str(fd)}
    assert not fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC  # survives os.execv

    # the next run: the descriptor is logfwdr0's TUN: adopted, the link left up, close-on-exec again
    monkeypatch.setattr(announce, "tun_name", lambda n: "logfwdr0" if n == fd else None)
    again, logged = make_announcer(tmp_path, ipr, environ=env)
    again.open()
    assert again.fd == fd and len(fake_tun) == 1 and env == {}
    assert fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC
    assert logged == ["announce: logfwdr0 kept across the reload (descriptor %d)" % fd]
    again.update(None)  # before the new run's first verdict nothing moves
    assert ipr.up is True and [s[0] for s in ipr.sent].count(RTM_NEWLINK) == 1


def test_a_stale_descriptor_number_is_not_adopted(tmp_path, fake_tun, monkeypatch):
    monkeypatch.setattr(announce, "tun_name", lambda n: None)
    ann, logged = make_announcer(tmp_path, FakeIPR(), environ={announce.ENV_FD: "99"})
    ann.open()
    assert len(fake_tun) == 1 and ann.fd == fake_tun[0]
    assert logged[0] == "announce: LOGFWDR_ANNOUNCE_FD=99 is not logfwdr0's TUN descriptor (not a TUN descriptor):" \
        " making the device anew"


def test_another_tun_device_is_closed_and_a_new_one_made(tmp_path, fake_tun, monkeypatch):
    other, writer = os.pipe()
    monkeypatch.setattr(announce, "tun_name", lambda n: "other0")
    ann, _logged = make_announcer(tmp_path, FakeIPR(), environ={announce.ENV_FD: str(other)})
    ann.open()
    assert len(fake_tun) == 1 and ann.fd == fake_tun[0]
    with pytest.raises(OSError):  # the other device's descriptor was closed: no reader left
        os.write(writer, b"x")
    os.close(writer)


def test_close_withdraws_for_good(tmp_path, fake_tun):
    ann, logged = make_announcer(tmp_path, FakeIPR())
    ann.open()
    ann.update(True)
    fd = ann.fd
    ann.close("agent stopping")
    assert ann.fd is None and logged[-1] == "announce: withdrawn (agent stopping)"
    with pytest.raises(OSError):
        os.fstat(fd)
    assert json.loads((tmp_path / "announce.json").read_text())["state"] == "none"


def test_a_device_deleted_from_outside_is_made_again_at_the_next_check(tmp_path, fake_tun, monkeypatch):
    ipr = FakeIPR()
    ann, logged = make_announcer(tmp_path, ipr)
    ann.open()
    ann.update(True)
    monkeypatch.setattr(announce, "ifindex", lambda name: 43)  # `ip link del logfwdr0`, then a new link
    ann.update(True, verify=True)
    assert len(fake_tun) == 2 and ann.index == 43
    assert "announce: logfwdr0 was deleted from outside: making it again" in logged
    assert logged[-1] == "announce: up"


# ---- the agent's verdicts drive it -----------------------------------------------------------------------------

def make_agent(tmp_path, **kw):
    path = tmp_path / "state.json"
    path.write_text(json.dumps({"devices": [{"name": "ens1", "ports": []}]}))

    class Kern(object):
        resolved, waiting = {}, {}
        ipr = FakeIPR()

        def links(self, refresh=False):
            return {"ens1": {"ifindex": 1}}

        def forget(self, keep):
            pass

    logged = []
    agent = agent_mod.Agent(str(path), health_path=str(tmp_path / "health"), log=logged.append, resolver=Kern(),
                            announce=("logfwdr0", ["192.0.2.100"], str(tmp_path / "drain")), **kw)
    return agent, logged


def test_the_agent_withdraws_at_the_verdict_itself(tmp_path, fake_tun, monkeypatch):
    outcomes = []

    def fake_run(params, kern):
        if not outcomes.pop(0):
            raise runner.RunError("the kernel refused it")
        return {"changed": False, "commands": [], "pending": [], "devices": []}

    monkeypatch.setattr(runner, "run", fake_run)
    agent, logged = make_agent(tmp_path, fall=2, rise=2)
    agent._open_announcer()
    ipr = agent.kern.ipr
    outcomes.extend([True])
    agent.reconcile()  # the first verdict: healthy at once
    assert agent.healthy is True and ipr.up is True
    outcomes.extend([False, False])
    agent.reconcile()
    agent.check()
    assert ipr.up is True  # one failed check: not yet unhealthy (fall 2)
    agent.reconcile()
    agent.check()
    assert agent.healthy is False and ipr.up is False
    i = logged.index("health: not healthy")
    assert logged[i + 1] == "announce: withdrawn (not healthy: the kernel refused it)"
    outcomes.extend([True, True])
    for _check in range(2):
        agent.reconcile()
        agent.check()
    assert agent.healthy is True and ipr.up is True and logged[-1] == "announce: up"


def test_the_first_verdict_unhealthy_never_raises_the_link(tmp_path, fake_tun, monkeypatch):
    def refuse(params, kern):
        raise runner.RunError("refused")

    monkeypatch.setattr(runner, "run", refuse)
    agent, logged = make_agent(tmp_path)
    agent._open_announcer()
    agent.reconcile()
    assert agent.healthy is False and agent.kern.ipr.up is False
    assert not [s for s in agent.kern.ipr.sent if s[0] == RTM_NEWLINK]
    assert "announce: down (not healthy: refused)" in logged


def test_an_agent_without_announcement_has_no_announcer(tmp_path):
    agent = agent_mod.Agent(str(tmp_path / "state.json"), log=lambda line: None, resolver=object())
    agent._announce(verify=True)
    assert agent.announcer is None


def test_metric_announced(tmp_path, fake_tun):
    prometheus_client = pytest.importorskip("prometheus_client")
    agent, _logged = make_agent(tmp_path)
    registry = prometheus_client.CollectorRegistry()
    registry.register(metrics.Collector(agent, kernel_factory=object))
    assert not [x for x in prometheus_client.generate_latest(registry).decode().splitlines()
                if x.startswith("logfwdr_announced")]  # not running yet: no announcer
    agent._open_announcer()
    agent.announcer.update(True)
    assert "logfwdr_announced 1.0" in prometheus_client.generate_latest(registry).decode().splitlines()
    agent.announcer.update(False, "x")
    assert "logfwdr_announced 0.0" in prometheus_client.generate_latest(registry).decode().splitlines()


# ---- drain: counters still for `quiet` seconds -----------------------------------------------------------------

class Clock(object):
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def test_drain_waits_until_the_counters_are_still_for_quiet_seconds():
    clock = Clock()
    moving_until = 101.0
    count = [0]

    def read():
        if clock.now < moving_until:
            count[0] += 10
        return {"in0 port 514": count[0]}

    still, waited, moved = announce.wait_still(read, quiet=2.0, timeout=60, step=0.2, clock=clock, sleep=clock.sleep)
    assert still is True and moved == {}
    assert 2.8 <= waited <= 3.0, waited  # the last movement seen at 0.8 s, then 2 s still


def test_drain_gives_up_at_the_timeout_naming_what_still_arrives():
    clock = Clock()
    count = [0]

    def read():
        count[0] += 5  # 5 per 0.2 s: 50 in 2 s
        return {"in0 port 514": count[0], "in0 port 2055": 7}

    still, waited, moved = announce.wait_still(read, quiet=2.0, timeout=10, step=0.2, clock=clock, sleep=clock.sleep)
    assert still is False and 10.0 <= waited < 10.3
    assert moved == {"in0 port 514": 50}


def test_arrivals_sum_every_counter_of_a_port():
    info = {"devices": [{"name": "in0", "ports": [
        {"port": 514, "original_dropped": 3, "destinations": [
            {"name": "a", "counters": {"packets": 10, "bytes": 1000, "drops": 1, "rate_limited": 2}},
            {"name": "b", "counters": {"packets": 10, "bytes": 1000, "drops": 0, "rate_limited": 0}}]},
        {"port": 2055, "destinations": []}]}]}
    assert announce.arrivals(info) == {"in0 port 514": 26, "in0 port 2055": 0}


# ---- the CLI ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("argv, message", [
    (["--service-address", "192.0.2.100"], "--service-address needs --announce-device"),
    (["--announce-device", "logfwdr0"], "needs at least one --service-address"),
    (["--announce-device", "logfwdr0", "--service-address", "192.0.2.0/24"], "announced as /32"),
    (["--announce-device", "a-very-long-device-name", "--service-address", "192.0.2.1"], "not a device name"),
])
def test_agent_announce_options_are_checked_first(argv, message, capsys):
    assert cli.main(["agent", "--state", "/nonexistent"] + argv) == 2
    assert message in capsys.readouterr().err


def test_agent_announce_options(tmp_path):
    args = cli.parser().parse_args(["agent", "--health-file", str(tmp_path / "health"), "--announce-device",
                                    "logfwdr0", "--service-address", "192.0.2.100", "--service-address",
                                    "2001:db8:100::1"])
    assert cli.announce_args(args) == ("logfwdr0", ["192.0.2.100", "2001:db8:100::1"], str(tmp_path / "drain"))
    args = cli.parser().parse_args(["agent", "--announce-device", "lf0", "--service-address", "192.0.2.100",
                                    "--drain-file", "/x/d"])
    assert cli.announce_args(args) == ("lf0", ["192.0.2.100"], "/x/d")
    assert cli.announce_args(cli.parser().parse_args(["agent"])) is None


def test_undrain_removes_the_file_and_says_so(tmp_path, capsys):
    drain = tmp_path / "drain"
    drain.write_text("x")
    assert cli.main(["undrain", "--drain-file", str(drain)]) == 0
    assert not drain.exists()
    assert capsys.readouterr().out.startswith("undrained: %s removed" % drain)
    assert cli.main(["undrain", "--drain-file", str(drain)]) == 0
    assert capsys.readouterr().out == "not drained: no %s, nothing to do\n" % drain
    assert cli.main(["undrain", "--drain-file", str(tmp_path)]) == 2  # a directory: cannot be removed as a file
    assert "logfwdr undrain: cannot remove" in capsys.readouterr().err


def test_drain_withdraws_even_without_a_state_and_says_what_it_could_not_do(tmp_path, capsys, monkeypatch):
    class Kern(object):
        ipr = FakeIPR(up=True)

        def close(self):
            pass

    monkeypatch.setattr(cli, "_kernel", Kern)
    monkeypatch.setattr(announce, "ifindex", lambda name: 42)
    drain = tmp_path / "drain"
    assert cli.main(["drain", "--drain-file", str(drain), "--state", str(tmp_path / "missing.json")]) == 2
    assert drain.exists() and Kern.ipr.up is False
    out, err = capsys.readouterr()
    assert out.splitlines() == ["drain file %s written: the agent keeps logfwdr0 withdrawn while it exists" % drain,
                                "withdrawn: logfwdr0 set down"]
    assert err.startswith("logfwdr drain: withdrawn, but no counters to watch: ")
    assert cli.main(["drain", "--drain-file", str(tmp_path / "no" / "such" / "dir" / "drain"), "--quiet", "0"]) == 2
    assert "greater than 0" in capsys.readouterr().err


def test_status_reads_the_kernel_and_the_agents_record(tmp_path, monkeypatch):
    class Kern(object):
        ipr = FakeIPR(up=False, addresses=[(4, "192.0.2.100", 32, 0), (6, "fe80::1", 64, 253)])

    drain = str(tmp_path / "drain")
    monkeypatch.setattr(announce, "ifindex", lambda name: None)
    assert cli.announce_status(Kern(), None, drain) is None  # nothing configured, no logfwdr0: no line at all
    assert cli.announce_status(Kern(), "logfwdr0", drain)["state"] == "no device"
    monkeypatch.setattr(announce, "ifindex", lambda name: 42 if name == "lf1" else None)
    why = "not healthy: the desired state cannot be installed now: x (0.0.0.0/0 accepts any source)"
    announce.write_record(announce.record_path(drain), {"device": "lf1", "state": "down", "why": why})
    got = cli.announce_status(Kern(), None, drain)
    assert got == {"device": "lf1", "state": "down", "text": "down (%s)" % why, "why": why, "drained": False,
                   "drain_file": drain, "addresses": ["192.0.2.100/32"]}
    open(drain, "w").close()
    got = cli.announce_status(Kern(), None, drain)
    assert (got["state"], got["text"], got["why"]) == ("drained", "drained", None)
    Kern.ipr.up = True
    assert cli.announce_status(Kern(), None, drain)["state"] == "up"
