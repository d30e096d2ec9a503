# -*- coding: utf-8 -*-
"""The syslog bridge's system call filter lets the bridge live.

The role's unit (templates/logfwdr-syslog-bridge.service.j2) confines rsyslogd with SystemCallFilter=; a system
call outside it kills the process (SIGSYS), which is how an earlier filter (~@resources) stopped the bridge at
start in the lab. Here rsyslogd runs the role's rendered configuration under strace in a throwaway namespace,
takes a TCP session and forwards over UDP, and every system call it made must be allowed by the unit's
SystemCallFilter= lines as systemd itself expands their groups (`systemd-analyze syscall-filter`).
Needs root, strace and systemd-analyze (`make deps`).
"""

import os
import re
import shutil
import subprocess
import time

import pytest

from lflab import bridgeconf
from lflab import netlab

pytestmark = pytest.mark.netns

INVENTORY = {
    "logfwdr_ingress_interfaces": [{"name": "in0", "address": "10.77.0.1/24"}],
    "logfwdr_vrrp": False,
    "logfwdr_egress_interfaces": [{"name": "out0", "address": "10.78.0.1/24"}],
    "logfwdr_collectors": [{"name": "c1", "address": "10.78.0.11", "protocols": ["syslog"]}],
}


def expand(name, seen=None):
    """The system calls of a systemd syscall group (nested groups expanded), or {name} for a plain call."""
    if not name.startswith("@"):
        return {name}
    seen = set() if seen is None else seen
    if name in seen:
        return set()
    seen.add(name)
    out = subprocess.run(["systemd-analyze", "syscall-filter", name], stdout=subprocess.PIPE, check=True,
                         universal_newlines=True).stdout
    calls = set()
    for line in out.splitlines()[1:]:
        word = line.strip()
        if word and not word.startswith("#"):
            calls |= expand(word, seen)
    return calls


def allowed_by(unit):
    """What the unit's SystemCallFilter= lines allow: the first is an allow list, `~` lines take calls away."""
    allowed = None
    for value in re.findall(r"^SystemCallFilter=(.*)$", unit, re.M):
        deny = value.startswith("~")
        names = value.lstrip("~").split()
        calls = set().union(*(expand(n) for n in names))
        if allowed is None:
            assert not deny, "the first SystemCallFilter= must be an allow list: %s" % value
            allowed = calls
        elif deny:
            allowed -= calls
        else:
            allowed |= calls
    return allowed


@pytest.fixture
def bridge_ns():
    if os.geteuid() != 0 or not shutil.which("strace") or not shutil.which("systemd-analyze"):
        pytest.skip("needs root, strace and systemd-analyze (make deps)")
    ns = "lfsc%d" % os.getpid()
    netlab.sh("ip", "netns", "add", ns)
    try:
        for dev, peer, addr in (("in0", "in1", "10.77.0.1/24"), ("out0", "out1", "10.78.0.1/24")):
            netlab.sh("ip", "-n", ns, "link", "add", dev, "type", "veth", "peer", "name", peer)
            netlab.sh("ip", "-n", ns, "addr", "add", addr, "dev", dev)
            netlab.sh("ip", "-n", ns, "link", "set", dev, "up")
            netlab.sh("ip", "-n", ns, "link", "set", peer, "up")
        netlab.sh("ip", "-n", ns, "link", "set", "lo", "up")
        yield ns
    finally:
        netlab.sh("ip", "netns", "del", ns, check=False)


def test_every_system_call_of_the_bridge_is_allowed_by_its_unit(bridge_ns, tmp_path):
    conf, variables = bridgeconf.render_conf(INVENTORY, str(tmp_path))
    (tmp_path / "bridge.conf").write_text(conf)
    unit = bridgeconf.render("logfwdr-syslog-bridge.service.j2", variables)
    allowed = allowed_by(unit)
    assert allowed and "sched_setscheduler" in expand("@resources")

    trace = tmp_path / "trace"
    proc = subprocess.Popen(["ip", "netns", "exec", bridge_ns, "strace", "-f", "-qq", "-o", str(trace),
                             bridgeconf.RSYSLOGD, "-n", "-iNONE", "-f", str(tmp_path / "bridge.conf")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
    try:
        # a TCP session with two messages, then the copy leaves over UDP (to a collector that is not there)
        send = ("import socket, time\n"
                "for _i in range(100):\n"
                "    try:\n"
                "        s = socket.create_connection(('10.77.0.1', 514), timeout=1); break\n"
                "    except OSError:\n"
                "        time.sleep(0.1)\n"
                "s.sendall(b'<134>Dec  2 10:00:00 r1 test: one\\n<134>Dec  2 10:00:01 r1 test: two\\n')\n"
                "s.close()\n")
        netlab.sh("ip", "netns", "exec", bridge_ns, "python3", "-c", send)
        time.sleep(1.5)
    finally:
        # rsyslogd itself, not strace (which would keep it running): it stops on SIGTERM, then strace ends
        conf_path = str(tmp_path / "bridge.conf").encode()
        for pid in subprocess.run(["pgrep", "-x", "rsyslogd"], stdout=subprocess.PIPE, check=False).stdout.split():
            try:
                with open("/proc/%s/cmdline" % pid.decode(), "rb") as handle:
                    if conf_path in handle.read():
                        os.kill(int(pid), 15)
            except (OSError, ValueError):
                pass
        try:
            output = proc.communicate(timeout=20)[0]
        except subprocess.TimeoutExpired:
            proc.kill()
            output = proc.communicate()[0]
    text = trace.read_text()
    used = set(re.findall(r"^\d+\s+([a-z0-9_]+)\(", text, re.M))
    assert {"accept", "sendto", "bind"} <= used, (sorted(used), output)
    assert "10.78.0.11" in text and "htons(514)" in text, output  # the UDP copy really went out
    assert "SIGSYS" not in text
    refused = sorted(used - allowed)
    assert not refused, "rsyslogd makes system calls the unit's SystemCallFilter refuses: %s" % refused
    print("rsyslogd made %d distinct system calls, all allowed by the unit's filter" % len(used))


def test_the_filter_check_can_fail():
    """The old filter (~@resources on top) refuses a call rsyslogd makes at start: the check above would see it."""
    old = "SystemCallFilter=@system-service\nSystemCallFilter=~@privileged @resources\n"
    if not shutil.which("systemd-analyze"):
        pytest.skip("needs systemd-analyze")
    assert "sched_setscheduler" not in allowed_by(old)
