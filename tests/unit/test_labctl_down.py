# -*- coding: utf-8 -*-
"""`lab/labctl down` refuses while somebody still uses the lab, but not because of processes that are only
passing through the namespace: a zombie (exiting ProxyCommand, guest process) or one that is gone a moment
later. CI's molecule destroy failed on exactly that right after verify."""

import os
import subprocess
import sys
import time

from test_labctl_state import load_labctl


def zombie():
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # exited but not reaped: state Z, empty cmdline
        with open("/proc/%d/stat" % pid) as f:
            if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                return pid
        time.sleep(0.01)
    raise AssertionError("child did not become a zombie")


def fake_namespace(mod, monkeypatch, pids):
    monkeypatch.setattr(mod.netlab, "netns_exists", lambda ns: True)
    monkeypatch.setattr(mod.netlab, "netns_pids", lambda ns: [p.pid if hasattr(p, "pid") else p for p in pids])
    monkeypatch.setattr(mod, "lab_uml_pids", lambda: [])


def test_zombies_and_passers_by_are_not_users(tmp_path, monkeypatch):
    mod = load_labctl(tmp_path)
    dead = zombie()
    user = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", "still-using-the-lab"])
    passer = subprocess.Popen(["sleep", "0.2"])
    try:
        assert mod._cmdline(dead) == []
        fake_namespace(mod, monkeypatch, [dead, user, passer])
        found = mod.users_in_namespace("lflab", settle=1.0)
        assert [pid for pid, cmd in found] == [user.pid]
        assert "still-using-the-lab" in found[0][1]
    finally:
        user.kill()
        user.wait()
        passer.wait()
        os.waitpid(dead, 0)


def test_socat_proxycommand_is_not_a_user(tmp_path, monkeypatch):
    mod = load_labctl(tmp_path)
    proxy = subprocess.Popen(["bash", "-c", "exec -a socat cat -"], stdin=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 5
        while mod._cmdline(proxy.pid)[:1] != [b"socat"] and time.monotonic() < deadline:
            time.sleep(0.01)
        fake_namespace(mod, monkeypatch, [proxy])
        assert mod.users_in_namespace("lflab", settle=0) == []
    finally:
        proxy.kill()
        proxy.communicate()
