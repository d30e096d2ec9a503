# -*- coding: utf-8 -*-
"""Fixtures for the network-namespace integration tests of tc_mirror.

The tests need root and a kernel with sch_ingress, cls_u32 and act_mirred.
Everything happens in throwaway namespaces made by lib/lflab/netlab.py.

Interpreters: LOGFWDR_TEST_PYTHONS is a colon-separated list of Python
interpreters to run the modules with (default: the one running pytest).  An
interpreter without ansible gets ansible from the interpreter running pytest,
placed on PYTHONPATH *after* its own site-packages, so that its own pyroute2
is the one the module imports (test_interpreter_uses_its_own_pyroute2 checks).
"""

import itertools
import json
import os
import re
import subprocess
import sys
import tempfile
import time

import pytest

from lflab import netlab

HERE = os.path.dirname(os.path.abspath(__file__))

EXPORTER_IP = netlab.EXPORTER_IP


def pytest_configure(config):
    config.addinivalue_line("markers", "netns: needs root; builds network namespaces on the host kernel")


# ---- interpreters ----------------------------------------------------------

_PROBE = r"""
import json, os, sys
out = {"executable": sys.executable}
try:
    import pyroute2
    out["pyroute2"] = pyroute2.__version__
    out["pyroute2_file"] = pyroute2.__file__
    out["site"] = os.path.dirname(os.path.dirname(os.path.abspath(pyroute2.__file__)))
except Exception as exc:
    out["pyroute2_error"] = repr(exc)
try:
    import importlib.metadata as md
    out["pyroute2_dist"] = md.version("pyroute2")
except Exception:
    out["pyroute2_dist"] = None
try:
    import ansible
    out["ansible_file"] = ansible.__file__
except Exception:
    out["ansible_file"] = None
print(json.dumps(out))
"""


def _env_without_pythonpath():
    return dict((k, v) for k, v in os.environ.items() if k != "PYTHONPATH")


def probe(python, env):
    proc = subprocess.run([python, "-c", _PROBE], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError("cannot probe %s: %s" % (python, proc.stderr))
    return json.loads(proc.stdout)


class Interp(object):
    """One interpreter and the environment the modules run with under it."""

    def __init__(self, path):
        self.path = path
        self.native = probe(path, _env_without_pythonpath())
        collections = netlab.ensure_collection_path()
        parts = []
        if self.native.get("ansible_file") is None:
            import ansible  # the interpreter running pytest has it
            ansible_dir = os.path.dirname(os.path.dirname(os.path.abspath(ansible.__file__)))
            # the interpreter's own site-packages first: its pyroute2 wins over the one next to ansible
            if self.native.get("site"):
                parts.append(self.native["site"])
            parts += [collections, ansible_dir]
        else:
            parts.append(collections)
        self.pythonpath = ":".join(parts)
        self.env = dict(_env_without_pythonpath(), PYTHONPATH=self.pythonpath)

    @property
    def id(self):
        return "pyroute2-%s" % self.native.get("pyroute2", "none")

    def __repr__(self):
        return "Interp(%s, %s)" % (self.path, self.id)


def _python_paths():
    raw = os.environ.get("LOGFWDR_TEST_PYTHONS", "")
    return [p for p in raw.split(":") if p] or [sys.executable]


_INTERPS = {}


def get_interp(path):
    if path not in _INTERPS:
        _INTERPS[path] = Interp(path)
    return _INTERPS[path]


def _interp_id(path):
    try:
        return "%s[%s]" % (get_interp(path).id, path)
    except Exception:  # reported when the fixture runs
        return path


PYTHONS = _python_paths()


@pytest.fixture(params=PYTHONS, ids=[_interp_id(p) for p in PYTHONS])
def interp(request):
    return get_interp(request.param)


# ---- labs ------------------------------------------------------------------

_TAGS = itertools.count()


def _need_root():
    if os.geteuid() != 0:
        pytest.skip("needs root (network namespaces)")


def new_lab():
    _need_root()
    lab = netlab.Lab("i%d" % next(_TAGS))
    lab.start()
    return lab


@pytest.fixture
def lab():
    lab = new_lab()
    try:
        yield lab
    finally:
        lab.close()


class Rig(object):
    """A lab plus the interpreter the modules run with, and what tests ask of both."""

    def __init__(self, lab, interp):
        self.lab = lab
        self.interp = interp
        # the interpreter's paths, with this lab's own record of managed devices and lock
        self.env = dict(interp.env, LOGFWDR_RUN_DIR=lab.env["LOGFWDR_RUN_DIR"], LOGFWDR_LOCK=lab.env["LOGFWDR_LOCK"])

    # -- modules --
    def run(self, args, module="tc_mirror", check_mode=False, diff=True, ns=None):
        """netlab.Lab.run_module with this interpreter's environment."""
        payload = dict(args, _ansible_check_mode=check_mode, _ansible_diff=diff)
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
            json.dump({"ANSIBLE_MODULE_ARGS": payload}, handle)
        try:
            proc = netlab.sh("ip", "netns", "exec", ns or self.lab.rep, self.interp.path,
                             os.path.join(netlab.REPO, "plugins", "modules", module + ".py"), handle.name,
                             check=False, env=self.env)
        finally:
            os.unlink(handle.name)
        try:
            result = json.loads(proc.stdout)
        except ValueError:
            raise AssertionError("module printed no JSON: rc=%d\n%s\n%s" % (proc.returncode, proc.stdout,
                                                                            proc.stderr))
        result.pop("invocation", None)
        return result

    def apply(self, args, **kw):
        result = self.run(args, **kw)
        assert not result.get("failed"), result
        return result

    def info(self, **args):
        result = self.run(args, module="tc_mirror_info")
        assert not result.get("failed"), result
        return result

    def python(self, code, *argv, **kw):
        """Run Python code with the module's interpreter and environment (in the replicator ns)."""
        proc = netlab.sh("ip", "netns", "exec", kw.get("ns", self.lab.rep), self.interp.path, "-c", code,
                         *argv, check=False, env=self.env)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    # -- kernel state --
    def tc(self, *args):
        return self.lab.tc(*args).stdout

    def filters(self, dev="in0", chain=None, stats=False):
        args = (["-s"] if stats else []) + ["filter", "show", "dev", dev, "ingress"]
        if chain is not None:
            args += ["chain", str(chain)]
        return self.tc(*args)

    def snapshot(self, devs=("in0",)):
        """Byte-for-byte kernel tc state of the ingress devices (no counters)."""
        return [self.filters(d) for d in devs] + [self.tc("qdisc", "show")]

    # -- traffic --
    def exchange(self, sends, ports=(514, 2055, 9999), receivers=None, settle=0.3, send=None):
        """Listen in every receiver, send {port: [payloads]} from the exporter, return what each received.

        Like netlab.Lab.listen/collect, but one listener process holds the UDP sockets of all the receiver
        namespaces (it enters each namespace to open them): 64 receivers cost one Python start, not 64.
        """
        receivers = list(range(len(self.lab.receivers))) if receivers is None else list(receivers)
        spec = [[self.lab.receivers[i], list(ports)] for i in receivers]
        proc = subprocess.Popen([sys.executable, "-c", _MULTI_LISTENER, json.dumps(spec)], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, universal_newlines=True)
        self.lab.procs.append(proc)
        assert proc.stdout.readline().strip() == "ready"
        for port, payloads in sorted(sends.items()):
            (send or self.lab.send)(port, payloads)
        time.sleep(settle)
        out, _err = proc.communicate("stop\n", timeout=30)
        got = json.loads(out.strip().splitlines()[-1])
        return dict((i, sorted(tuple(x) for x in got[n])) for n, i in enumerate(receivers))


_MULTI_LISTENER = r"""
import ctypes, json, os, select, socket, sys
CLONE_NEWNET = 0x40000000
libc = ctypes.CDLL(None, use_errno=True)
spec = json.loads(sys.argv[1])
home = os.open("/proc/self/ns/net", os.O_RDONLY)
socks = {}
for n, (ns, ports) in enumerate(spec):
    fd = os.open(os.path.join("/run/netns", ns), os.O_RDONLY)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "setns(%s)" % ns)
    os.close(fd)
    for p in ports:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # lives in namespace ns from now on
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        s.bind(("0.0.0.0", p))
        socks[s.fileno()] = (s, n, p)
libc.setns(home, CLONE_NEWNET)
print("ready", flush=True)
got = [[] for _ in spec]


def drain(fds):
    for fd in fds:
        s, n, p = socks[fd]
        while True:
            try:
                data, addr = s.recvfrom(65535, socket.MSG_DONTWAIT)
            except BlockingIOError:
                break
            got[n].append([p, addr[0], data.decode("latin-1")])


while True:
    r, _w, _x = select.select(list(socks) + [0], [], [], 5)
    drain([fd for fd in r if fd != 0])
    if 0 in r:
        break
drain(list(socks))
print(json.dumps(got), flush=True)
"""


@pytest.fixture
def rig(lab, interp):
    return Rig(lab, interp)


# ---- parsing `tc filter show` minimally ----------------------------------

_FH = re.compile(r"^filter .*?pref (\d+) u32(?: chain (\d+))?(?: fh (\S+))?")


def filter_blocks(text):
    """`tc filter show` output -> [(prio, chain, fh, block text)] in order."""
    blocks = []
    for line in text.splitlines(True):
        m = _FH.match(line)
        if m:
            blocks.append([int(m.group(1)), int(m.group(2) or 0), m.group(3), line])
        elif blocks:
            blocks[-1][3] += line
    return [tuple(b) for b in blocks]


def blocks_at(text, prios):
    return [b for b in filter_blocks(text) if b[0] in prios]


def parse_nodes(text):
    """`tc -s filter show` output -> {fh: {prio, chain, link, port, index, packets, cookie}} for u32 nodes."""
    nodes = {}
    for prio, chain, fh, block in filter_blocks(text):
        if not fh or "::" not in fh:
            continue
        node = {"prio": prio, "chain": chain, "link": None, "port": None, "index": None, "packets": None,
                "cookie": None, "ht": fh.split(":")[0]}
        m = re.search(r" link (\S+):", block)
        if m:
            node["link"] = m.group(1)
        m = re.search(r"match ([0-9a-f]{8})/0000ffff at 20", block)
        if m:
            node["port"] = int(m.group(1), 16)
        m = re.search(r"\bindex (\d+) ref", block)
        if m:
            node["index"] = int(m.group(1))
        m = re.search(r"Sent (\d+) bytes (\d+) pkt", block)
        if m:
            node["packets"] = int(m.group(2))
        m = re.search(r"cookie ([0-9a-f]+)", block)
        if m:
            cookie = bytes.fromhex(m.group(1))
            # the module's mark (0xf1) comes before the destination's name
            node["cookie"] = cookie[1:].decode("ascii") if cookie[:1] == b"\xf1" else cookie.hex()
        nodes[fh] = node
    return nodes


def dest_nodes(text, port):
    """{destination name: [fh, ...]} of one port, from `tc -s filter show`."""
    nodes = parse_nodes(text)
    links = sorted(set(n["link"] for n in nodes.values() if n["port"] == port and n["link"]))
    assert len(links) == 1, (port, text)
    out = {}
    for fh, node in sorted(nodes.items()):
        if node["ht"] == links[0] and node["cookie"]:
            out.setdefault(node["cookie"], []).append(fh)
    return out


_HANDLE = re.compile(r" handle (\S+) u32")


def command_handles(commands):
    """Node handles (x::y) and hash tables (x:) named by `commands`."""
    out = []
    for cmd in commands:
        m = _HANDLE.search(cmd)
        out.append(m.group(1) if m else None)
    return out


def strip_counters(devices):
    """tc_mirror_info devices -> tc_mirror input (the read-only fields removed)."""
    out = []
    for dev in devices:
        ports = []
        for port in dev["ports"]:
            port = dict(port)
            port.pop("original_dropped", None)
            port["destinations"] = [dict((k, v) for k, v in d.items() if k != "counters")
                                    for d in port["destinations"]]
            ports.append(port)
        out.append(dict(dev, ports=ports))
    return out


class Timer(object):
    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start


# A run whose fail_at-th kernel operation the kernel itself refuses (whatever the operation), for the
# rollback tests: prints {raised, msg, verified, calls}.
SPOILING_DRIVER = r"""
import json, sys
from ansible_collections.netops.logfwdr.plugins.module_utils.tc import kernel, runner

params = json.load(open(sys.argv[1]))
fail_at = int(sys.argv[2])
calls = []
real_execute = kernel.Kernel.execute


def execute(self, op, priority, chain):
    calls.append(op["op"])
    if len(calls) == fail_at:
        # make the kernel itself refuse the operation, whatever it is
        spec = op.get("spec") or {}
        if op["op"] == "ht_add":
            op = dict(op, htid=0x800)  # the classifier's root table exists: EEXIST
        elif spec.get("link"):
            op = dict(op, spec=dict(spec, link=0xFFE << 20))  # no such table: EINVAL
        else:
            op = dict(op, spec=dict(spec, actions=[dict(a, ifindex=0x7FFFFFF0) if a["kind"] == "mirred" else a
                                                   for a in spec.get("actions", [])]))  # no such device
    return real_execute(self, op, priority, chain)


kernel.Kernel.execute = execute
kern = kernel.Kernel()
try:
    runner.run(params, kern)
    out = {"raised": None}
except runner.RunError as exc:
    out = {"raised": "RunError", "msg": str(exc), "verified": exc.details.get("rollback_verified")}
out["calls"] = calls
print(json.dumps(out))
"""
