# -*- coding: utf-8 -*-
"""Shared pieces of the benchmarks: netlab import, module params, the in-namespace driver.

The driver is a long-lived Python process started with ``ip netns exec <ns>``.
It imports the collection once and then carries out requests (one JSON line
each) so that timings measure the module's work (validate, read, plan, apply,
read back), not Python start-up.
"""

import json
import os
import signal
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "lib"))  # the lab library, lib/lflab

from lflab import netlab  # noqa: E402

sys.path.insert(0, netlab.ensure_collection_path())
from ansible_collections.netops.logfwdr.plugins.module_utils.tc.layout import DEFAULT_PRIORITY  # noqa: E402

PRIORITY = DEFAULT_PRIORITY
CHAIN = 0


class SetupError(Exception):
    """Something the benchmark needs is missing or broken (exit non-zero)."""


def dest(device, name=None, sources=None):
    """A mirror destination with every option the module's argspec knows (as AnsibleModule fills them)."""
    return {"name": name, "mode": "mirror", "address": None, "port": None, "device": device,
            "next_hop_mac": None, "sources": sources, "rate_limit": None, "burst": None}


def params(ingress, port, dests, state="present"):
    """Module params exactly as AnsibleModule hands them to runner.run (defaults filled)."""
    return {"state": state, "priority": PRIORITY, "chain": CHAIN,
            "devices": [{"name": ingress, "addresses": [netlab.REPLICATOR_IP], "sources": None,
                         "ports": [{"port": port, "original": None, "rate_limit": None, "burst": None,
                                    "destinations": list(dests)}]}]}


def module_args(p):
    """The same params as a task would write them (no None values): for Lab.run_module."""
    def strip(v):
        if isinstance(v, dict):
            return dict((k, strip(x)) for k, x in v.items() if x is not None)
        if isinstance(v, list):
            return [strip(x) for x in v]
        return v
    return strip(p)


DRIVER = r"""
import json, subprocess, sys, time, traceback
from ansible_collections.netops.logfwdr.plugins.module_utils.tc import kernel, model, runner

class TimedKernel(kernel.Kernel):
    # kernel.Kernel that adds up where a run spends its time
    def __init__(self, *a, **kw):
        self.t = {"read": 0.0, "apply": 0.0}
        kernel.Kernel.__init__(self, *a, **kw)

    def filters(self, *a):
        t0 = time.perf_counter()
        try:
            return kernel.Kernel.filters(self, *a)
        finally:
            self.t["read"] += time.perf_counter() - t0

    def apply(self, *a):
        t0 = time.perf_counter()
        try:
            return kernel.Kernel.apply(self, *a)
        finally:
            self.t["apply"] += time.perf_counter() - t0

LAST = {}

def one_run(p):
    # a fresh Kernel per run, as the module process does (no cached links)
    k = TimedKernel()
    LAST.clear()
    try:
        res = runner.run(p, k)
        LAST["changed"] = res["changed"]
        return res
    finally:
        LAST.update(k.t)
        k.close()

def timed_run(p):
    t0 = time.perf_counter()
    err = None
    cmds = []
    try:
        cmds = one_run(p)["commands"]
    except (model.ValidationError, runner.RunError) as exc:
        err = "%s: %s" % (type(exc).__name__, exc)
    return time.perf_counter() - t0, err, cmds

def reply(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()

reply({"ready": True})
for line in sys.stdin:
    req = json.loads(line)
    try:
        cmd = req["cmd"]
        if cmd == "run":            # one module run
            secs, err, cmds = timed_run(req["params"])
            reply({"secs": secs, "error": err, "commands": cmds, "parts": dict(LAST)})
        elif cmd == "steps":        # steps, each a list of module runs done back to back
            out = []
            t_all = time.perf_counter()
            for label, runs in req["steps"]:
                t0 = time.perf_counter()
                errs, cmds = [], []
                for p in runs:
                    _s, err, c = timed_run(p)
                    cmds.extend(c)
                    if err:
                        errs.append(err)
                out.append([label, time.perf_counter() - t0, errs, cmds])
            reply({"steps": out, "total": time.perf_counter() - t_all})
        elif cmd == "tc_batches":   # steps, each one `tc -batch -` process
            out = []
            t_all = time.perf_counter()
            for label, text in req["steps"]:
                t0 = time.perf_counter()
                proc = subprocess.run(["tc", "-batch", "-"], input=text, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, universal_newlines=True)
                errs = [proc.stderr.strip()] if proc.returncode else []
                out.append([label, time.perf_counter() - t0, errs, []])
            reply({"steps": out, "total": time.perf_counter() - t_all})
        elif cmd == "exit":
            break
        else:
            reply({"fatal": "unknown request %r" % cmd})
    except Exception:
        reply({"fatal": traceback.format_exc()})
"""


class Driver:
    """The driver process inside namespace `ns`."""

    def __init__(self, lab, ns, python=None, pin=None):
        netlab.ensure_collection_path()
        env = dict(lab.env)  # the lab's own record of managed devices and lock
        self.proc = subprocess.Popen((pin or []) + ["ip", "netns", "exec", ns, python or sys.executable, "-c", DRIVER],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
                                     universal_newlines=True)
        lab.procs.append(self.proc)  # Lab.close() kills it if we do not get to
        hello = self._read()
        if not hello.get("ready"):
            raise SetupError("driver did not start: %r" % hello)

    @property
    def pid(self):
        return self.proc.pid  # `ip netns exec` execs: this is the Python process, inside the namespace

    def _read(self):
        line = self.proc.stdout.readline()
        if not line:
            raise SetupError("driver exited (rc=%s)" % self.proc.poll())
        obj = json.loads(line)
        if "fatal" in obj:
            raise SetupError("driver failed:\n" + obj["fatal"])
        return obj

    def request(self, **req):
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def run(self, p):
        return self.request(cmd="run", params=p)

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(json.dumps({"cmd": "exit"}) + "\n")
                self.proc.stdin.close()
                self.proc.wait(timeout=5)
            except Exception:
                self.proc.kill()
                self.proc.wait()


def install_signal_cleanup():
    """SIGTERM/SIGHUP behave like Ctrl-C, so `with Lab()` blocks delete the namespaces."""
    def handler(signum, _frame):
        raise KeyboardInterrupt("signal %d" % signum)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, handler)


def check_root():
    if os.geteuid() != 0:
        raise SetupError("run as root (network namespaces)")
    for tool in ("ip", "tc"):
        if subprocess.call(["sh", "-c", "command -v %s >/dev/null" % tool]) != 0:
            raise SetupError("%s (iproute2) is not installed" % tool)


def median(xs):
    s = sorted(xs)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2.0


def proc_net_dev(pid):
    """Interface counters of the namespace `pid` lives in: {ifname: (rx_packets, rx_drop, tx_packets, tx_drop)}."""
    out = {}
    with open("/proc/%d/net/dev" % pid) as handle:
        for line in handle.readlines()[2:]:
            name, rest = line.split(":", 1)
            f = rest.split()
            out[name.strip()] = (int(f[1]), int(f[3]), int(f[9]), int(f[11]))
    return out
