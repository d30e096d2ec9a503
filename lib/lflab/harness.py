"""User-Mode Linux test harness (stdlib only).

Boots Debian bookworm guests on the stock Debian 6.1 UML kernel (``linux.uml``), wired to
Linux bridges inside a network namespace that the harness creates, runs a bash script
inside each guest and returns its output.  Must run as root.

    from lflab.harness import Wire

    with Wire() as w:
        w.bridge("br0")
        w.attach_netns("br0", w.name + "-c", "eth0", cidr="10.0.0.2/24")
        res = w.guest("g1", bridges=["br0"], script="ip link set vec0 up; lsmod")
        assert res.rc == 0, res.output

Inside a guest (booted with ``init=/sbin/lf-init``, no systemd):

* the NICs are ``vec0, vec1, ...`` in the order of ``bridges`` (they start DOWN);
* ``/share`` is the per-guest host directory (hostfs, read-write), ``/repo`` the
  repository (hostfs, read-only);
* the script runs as root with bash, cwd ``/root``; its stdout+stderr is
  ``/share/output.log`` (readable live from the host), its exit status ``/share/rc``;
* helper functions from the prelude: ``lf_ready`` (touch /share/ready, see
  ``Guest.wait_ready``) and ``lf_wait_stop [timeout_s]`` (block until the host calls
  ``Guest.stop()``; returns 1 on timeout).

Environment variables: ``LOGFWDR_UML_CACHE`` (image cache, used by build-image.sh),
``LOGFWDR_UML_IMAGE`` (use this image, skip the build), ``LOGFWDR_UML_KERNEL``
(default ``linux.uml``), ``LOGFWDR_UML_TMP`` (where per-wire temp dirs go),
``LOGFWDR_UML_KEEP=1`` (keep per-guest dirs: console.log, output.log, run.sh).
"""

from __future__ import annotations

import atexit
import itertools
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from lflab.netlab import delete_netns, netns_exists

HERE = Path(__file__).resolve().parent
BUILD_SCRIPT = HERE / "build-image.sh"
DEFAULT_REPO = str(HERE.parent.parent)

__all__ = [
    "HarnessError", "GuestTimeout", "GuestResult", "Guest", "Wire",
    "ensure_image", "uml_unavailable_reason", "cleanup_stale",
]


class HarnessError(RuntimeError):
    pass


class GuestTimeout(HarnessError):
    pass


# --------------------------------------------------------------------------- helpers

def _run(argv, check=True, **kw):
    """Run a command, capture output, raise HarnessError with stderr on failure."""
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.PIPE)
    kw.setdefault("text", True)
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, check=False, **kw)
    if check and p.returncode != 0:
        raise HarnessError(f"{' '.join(map(str, argv))} -> rc {p.returncode}: "
                           f"{(p.stderr or '').strip()}")
    return p


def _ip(*args, ns=None, check=True):
    return _run(["ip", *(["-n", ns] if ns else []), *map(str, args)], check=check)


def nic_arg(ifname, tap, mac):
    """One guest NIC on a host tap, as linux.uml takes it."""
    # gro=1 only enlarges the receive buffers to 64 KiB: the tap is opened with TSO offload, so TCP from the
    # host or other guests arrives as >MTU GSO frames, which MTU-sized buffers truncate (TCP into the guest
    # then stalls for ever; seen with Ansible pipelining).
    return f"{ifname}:transport=tap,ifname={tap},mac={mac},gro=1"


def guest_cmdline(name, mem, umid, uml_dir, cow, image, share, nics, params=()):
    """The linux.uml command line of one guest (the tests' Guest and lab/labctl): params are more kernel
    parameters (init=, lf.*), nics nic_arg() strings."""
    return [
        kernel(), f"mem={mem}", f"umid={umid}", f"uml_dir={uml_dir}",
        f"ubd0={cow},{image}", "root=/dev/ubda", "rw",
        f"lf.name={name}", f"lf.share={share}",
        *params,
        *nics,
        "con=null", "con0=null,fd:1", "ssl=null",
        *FAST_BOOT_ARGS,
    ]


def kernel():
    k = os.environ.get("LOGFWDR_UML_KERNEL") or shutil.which("linux.uml") or "/usr/bin/linux.uml"
    return k


def uml_unavailable_reason():
    """None if UML guests can run here, else a human readable reason (for pytest.skip)."""
    if os.geteuid() != 0:
        return "UML harness needs root"
    if not os.access(kernel(), os.X_OK):
        return f"{kernel()} missing (apt-get install user-mode-linux)"
    if not os.path.exists("/dev/net/tun"):
        return "/dev/net/tun missing"
    for tool in ("ip",):
        if not shutil.which(tool):
            return f"{tool} missing"
    if not os.environ.get("LOGFWDR_UML_IMAGE"):
        for tool in ("debootstrap", "mkfs.ext4"):
            if not shutil.which(tool):
                return f"{tool} missing (needed to build the guest image)"
    return None


_image_lock = threading.Lock()
_image_path = None


def ensure_image(rebuild=False, log=None):
    """Build (or reuse the cached) base image; return its path.  Runs build-image.sh once
    per process; the script itself caches across processes.  ``log``: a file object with a
    real file descriptor (e.g. sys.stderr) that receives the build progress live; by
    default it is captured and only shown in the error on failure."""
    global _image_path
    with _image_lock:
        if os.environ.get("LOGFWDR_UML_IMAGE"):
            return os.environ["LOGFWDR_UML_IMAGE"]
        if _image_path and not rebuild and os.path.exists(_image_path):
            return _image_path
        env = dict(os.environ)
        if rebuild:
            env["LOGFWDR_UML_FORCE"] = "1"
        p = subprocess.run(["bash", str(BUILD_SCRIPT)], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE if log is None else log, text=True, env=env,
                           check=False)
        lines = p.stdout.strip().splitlines()
        if p.returncode != 0 or not lines or not os.path.exists(lines[-1]):
            raise HarnessError(f"build-image.sh failed (rc {p.returncode}):\n"
                               f"{(p.stderr or '(see the log above)')[-4000:]}")
        _image_path = lines[-1]
        return _image_path


_NS_RE = re.compile(r"^lfw-(\d+)-\d+(-.*)?$")


def cleanup_stale():
    """Remove namespaces (and their processes) left behind by crashed harness runs:
    names lfw-<pid>-<n>[-suffix] whose <pid> is no longer alive."""
    removed = []
    try:
        names = os.listdir("/run/netns")
    except FileNotFoundError:
        return removed
    for name in names:
        m = _NS_RE.match(name)
        if not m:
            continue
        pid = int(m.group(1))
        if pid == os.getpid() or os.path.exists(f"/proc/{pid}"):
            continue
        delete_netns(name)
        removed.append(name)
    return removed


# --------------------------------------------------------------------------- guests

PRELUDE = r"""# ---- logfwdr UML harness prelude ----
read -r LF_UPTIME _ </proc/uptime; echo "$LF_UPTIME" >/share/started
lf_ready() { : >/share/ready; }
lf_wait_stop() {  # lf_wait_stop [timeout_seconds] -> 0 when the host asked to stop, 1 on timeout
    local limit=$(( ${1:-3600} * 5 )) i=0
    while [ ! -e /share/stop ]; do
        i=$((i + 1)); [ "$i" -gt "$limit" ] && return 1
        sleep 0.2
    done
}
# ---- test script ----
"""

# Guest script lines that make the shared repository the collection (lock and run directory in /tmp), set $CLI
# to the collection's command line (python3 -c "$CLI" apply ...) and write /tmp/state.json; a template for
# str.format with {cli} (CLI) and {state} (JSON)
GUEST_CLI = r"""mkdir -p /tmp/lib/ansible_collections/netops /tmp/run
ln -s /repo /tmp/lib/ansible_collections/netops/logfwdr
export PYTHONPATH=/tmp/lib PYTHONDONTWRITEBYTECODE=1 LOGFWDR_LOCK=/tmp/lock LOGFWDR_RUN_DIR=/tmp/run
CLI='{cli}'
cat >/tmp/state.json <<'LF_JSON'
{state}
LF_JSON
"""
# A paced UDP sender for the exporter's namespace: argv rate (datagrams/s), seconds, destination, and optionally
# the datagram size and the address to send from; prints its start time, then the number of datagrams sent
PACED_SENDER = r"""
import socket, sys, time
rate, seconds, dst = float(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
size = int(sys.argv[4]) if len(sys.argv) > 4 else 0
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
if len(sys.argv) > 5:
    s.bind((sys.argv[5], 40514))
start = time.time()
print(start, flush=True)
i = 0
while i < rate * seconds:
    due = start + i / rate
    now = time.time()
    if due > now:
        time.sleep(due - now)
    head = b"<134>logfwdr paced seq %d " % i
    s.sendto(head + b"x" * (size - len(head)), (dst, 514))
    i += 1
print(i, flush=True)
"""
CLI = "import sys; from ansible_collections.netops.logfwdr.plugins.module_utils.tc import cli; sys.exit(cli.main())"


# Kernel arguments that cut UML boot time roughly in half (measured 1.6 s -> 0.4 s to
# init): no legacy BSD ptys (pty_init creates 256 pairs, ~0.5 s; Unix98 /dev/pts still
# works) and no RAID6 algorithm benchmark (~0.8 s; only btrfs/md RAID56 would need it).
FAST_BOOT_ARGS = ("pty.legacy_count=0", "initcall_blacklist=raid6_select_algo")


@dataclass
class GuestResult:
    name: str
    rc: int | None          # exit code of run.sh (None: guest died before writing it)
    output: str             # stdout+stderr of run.sh
    console: str            # kernel console / linux.uml output
    duration: float         # seconds from linux.uml start to process exit
    boot_seconds: float | None  # guest uptime when run.sh started
    share: str              # per-guest share dir (deleted on Wire exit unless LOGFWDR_UML_KEEP)

    def check(self):
        """Raise HarnessError (with output) unless rc == 0; return self."""
        if self.rc != 0:
            raise HarnessError(f"guest {self.name} rc={self.rc}\n--- output ---\n{self.output}"
                               f"\n--- console (tail) ---\n{self.console[-3000:]}")
        return self


class Guest:
    """A running (or finished) UML guest.  Create with Wire.start_guest()."""

    def __init__(self, wire, name, bridges, script, mem, timeout, repo, macs, extra_args,
                 image):
        if not re.match(r"^[A-Za-z0-9][A-Za-z0-9-]{0,30}$", name):
            raise ValueError(f"bad guest name {name!r}")
        self.wire = wire
        self.name = name
        self.index = next(wire._guest_counter)
        self.timeout = timeout
        self.dir = Path(tempfile.mkdtemp(prefix=f"g{self.index}-{name}-", dir=wire.tmpdir))
        self.share = self.dir / "share"
        self.share.mkdir()
        self.console_log = self.dir / "console.log"
        self.cow = self.dir / "root.cow"
        self.umid = f"{wire.name}-{self.index}"
        self.taps = []
        self.macs = []
        self.proc = None
        self._result = None
        self._t0 = None

        (self.share / "run.sh").write_text(PRELUDE + script + "\n")

        nics = []
        for i, br in enumerate(bridges):
            tap = f"t{wire.serial}g{self.index}n{i}"
            if len(tap) > 15:
                raise HarnessError(f"tap name too long: {tap}")
            _ip("tuntap", "add", "dev", tap, "mode", "tap", ns=wire.name)
            self.taps.append(tap)
            _ip("link", "set", tap, "master", br, "up", ns=wire.name)
            mac = (macs[i] if macs and i < len(macs) and macs[i]
                   else "02:4c:46:%02x:%02x:%02x" % (wire.serial & 0xff, self.index & 0xff, i))
            self.macs.append(mac)
            nics.append(nic_arg(f"vec{i}", tap, mac))

        self.cmdline = guest_cmdline(
            name, mem, self.umid, self.dir, self.cow, image, self.share, nics,
            params=["init=/sbin/lf-init", *([f"lf.repo={repo}"] if repo else []), *extra_args])
        env = dict(os.environ)
        if not shm_usable():
            env["TMPDIR"] = str(self.dir)    # UML's guest-RAM file; needs exec-able tmpfs
        with open(self.console_log, "wb") as con:
            self._t0 = time.monotonic()
            self.proc = subprocess.Popen(
                ["ip", "netns", "exec", wire.name, *self.cmdline],
                stdin=subprocess.DEVNULL, stdout=con, stderr=subprocess.STDOUT,
                cwd=self.dir, env=env, start_new_session=True)

    # -- host <-> guest signalling
    @property
    def output_so_far(self):
        try:
            return (self.share / "output.log").read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def wait_file(self, relpath, timeout=60.0):
        """Wait until share/<relpath> exists; raise if the guest exits or time runs out."""
        path = self.share / relpath
        deadline = time.monotonic() + timeout
        while not path.exists():
            if not self.running():
                res = self.wait()
                raise HarnessError(f"guest {self.name} exited (rc={res.rc}) before "
                                   f"{relpath} appeared\n--- output ---\n{res.output}")
            if time.monotonic() > deadline:
                raise GuestTimeout(f"guest {self.name}: no {relpath} after {timeout}s\n"
                                   f"--- output so far ---\n{self.output_so_far}")
            time.sleep(0.05)

    def wait_ready(self, timeout=60.0):
        """Block until the guest script called lf_ready (touched /share/ready)."""
        self.wait_file("ready", timeout)
        return self

    def stop(self):
        """Ask the guest script to finish (lf_wait_stop returns)."""
        (self.share / "stop").touch()

    # -- termination
    def _reap(self):
        # linux.uml forks helper processes (one host process per guest process); they
        # share the new session/process group made for it.  Kill the group, wait for the
        # leader, then give init a moment to reap orphaned helpers (no zombies left).
        pgid = self.proc.pid
        if self.proc.returncode is None or _group_members(pgid):
            try:
                os.killpg(pgid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        deadline = time.monotonic() + 5
        while _group_members(pgid) and time.monotonic() < deadline:
            time.sleep(0.05)

    def kill(self):
        if self.proc is not None:
            self._reap()

    def wait(self, timeout=None):
        """Wait for power-off and return a GuestResult.  ``timeout`` defaults to what is
        left of the guest's own timeout (counted from its start).  On timeout the guest is
        killed and GuestTimeout raised (message has output and console tail)."""
        if self._result is not None:
            return self._result
        if timeout is None:
            timeout = max(0.1, self.timeout - (time.monotonic() - self._t0))
        timed_out = False
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
        duration = time.monotonic() - self._t0
        self._reap()
        rc = None
        try:
            rc = int((self.share / "rc").read_text().strip())
        except (FileNotFoundError, ValueError):
            pass
        boot = None
        try:
            boot = float((self.share / "started").read_text().strip())
        except (FileNotFoundError, ValueError):
            pass
        console = self.console_log.read_text(errors="replace") if self.console_log.exists() else ""
        res = GuestResult(self.name, rc, self.output_so_far, console, duration, boot,
                          str(self.share))
        if timed_out:
            raise GuestTimeout(f"guest {self.name} did not power off within {timeout:.0f}s "
                               f"(killed)\n--- output ---\n{res.output}\n"
                               f"--- console (tail) ---\n{console[-3000:]}")
        self._result = res
        return res

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.kill()


def _group_members(pgid):
    """pids (zombies included) whose process group is pgid."""
    found = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) > 2 and int(fields[2]) == pgid:
            found.append(int(d))
    return found


_shm_ok = None


def shm_usable():
    """UML puts guest RAM in a file under $TMPDIR or /dev/shm that it maps PROT_EXEC."""
    global _shm_ok
    if _shm_ok is None:
        _shm_ok = os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK | os.X_OK)
        if _shm_ok:
            with open("/proc/mounts") as f:
                for line in f:
                    parts = line.split()
                    if parts[1] == "/dev/shm" and "noexec" in parts[3].split(","):
                        _shm_ok = False
    return _shm_ok


# --------------------------------------------------------------------------- wire

_wire_counter = itertools.count()
_live_wires = set()


@atexit.register
def _close_live_wires():
    for w in list(_live_wires):
        w.close()


class Wire:
    """A private network namespace holding Linux bridges that guests (tap devices) and
    plain namespaces (veth pairs) attach to.  Use as a context manager; close() removes
    every namespace, process, device and temp dir it created."""

    def __init__(self, image=None):
        self.serial = next(_wire_counter)
        self.name = f"lfw-{os.getpid()}-{self.serial}"
        self.image = image
        self.tmpdir = None
        self.bridges = []
        self.guests = []
        self.procs = []
        self._created_ns = []
        self._veth_counter = itertools.count()
        self._guest_counter = itertools.count()
        self._open = False

    # -- lifecycle
    def open(self):
        if self._open:
            return self
        reason = uml_unavailable_reason()
        if reason:
            raise HarnessError(reason)
        if self.image is None:
            self.image = ensure_image()
        self.tmpdir = tempfile.mkdtemp(prefix=f"{self.name}-", dir=os.environ.get("LOGFWDR_UML_TMP"))
        _run(["ip", "netns", "add", self.name])
        self._open = True
        _live_wires.add(self)
        _ip("link", "set", "lo", "up", ns=self.name)
        # the wire namespace is pure layer 2: keep IPv6 (RS/MLD/DAD) noise off its ports
        self.exec(self.name, ["sh", "-c",
                              "echo 1 >/proc/sys/net/ipv6/conf/all/disable_ipv6;"
                              "echo 1 >/proc/sys/net/ipv6/conf/default/disable_ipv6"], check=False)
        return self

    def __enter__(self):
        return self.open()

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if not self._open:
            return
        self._open = False
        _live_wires.discard(self)
        for g in self.guests:
            g.kill()
        for p in self.procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    p.kill()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        # anything still living in our namespaces (leftover linux.uml helpers, daemons
        # started with exec()) is ours: kill it, then drop the namespaces
        for ns in reversed(self._created_ns):
            delete_netns(ns)
        delete_netns(self.name)
        if self.tmpdir and not os.environ.get("LOGFWDR_UML_KEEP"):
            shutil.rmtree(self.tmpdir, ignore_errors=True)

    # -- layer 2
    def bridge(self, name):
        """Create bridge ``name`` (up, no STP, no forward delay) in the wire namespace."""
        if len(name) > 15:
            raise ValueError(f"interface name too long: {name}")
        _ip("link", "add", name, "type", "bridge", "stp_state", "0", "forward_delay", "0",
            "mcast_snooping", "0", ns=self.name)
        _ip("link", "set", name, "up", ns=self.name)
        self.bridges.append(name)
        return name

    def netns(self, ns_name):
        """Make sure plain namespace ``ns_name`` exists (lo up); it is deleted on close()
        if this call created it."""
        if not netns_exists(ns_name):
            _run(["ip", "netns", "add", ns_name])
            self._created_ns.append(ns_name)
            _ip("link", "set", "lo", "up", ns=ns_name)
        return ns_name

    def attach_netns(self, bridge, ns_name, ifname, cidr=None, mac=None):
        """veth pair: one end enslaved to ``bridge``, the other (``ifname``) moved into
        plain namespace ``ns_name`` (created if missing), up, with optional address.
        Returns the name of the bridge-side end."""
        self.netns(ns_name)
        peer = f"v{self.serial}p{next(self._veth_counter)}"
        _ip("link", "add", peer, "type", "veth", "peer", "name", ifname, "netns", ns_name,
            ns=self.name)
        _ip("link", "set", peer, "master", bridge, "up", ns=self.name)
        if mac:
            _ip("link", "set", ifname, "address", mac, ns=ns_name)
        if cidr:
            _ip("addr", "add", cidr, "dev", ifname, ns=ns_name)
        _ip("link", "set", ifname, "up", ns=ns_name)
        return peer

    # -- processes in namespaces
    def exec(self, ns_name, argv, check=True, timeout=60, **kw):
        """Run argv inside namespace ns_name, wait, return CompletedProcess (text)."""
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("stderr", subprocess.PIPE)
        p = subprocess.run(["ip", "netns", "exec", ns_name, *argv], stdin=subprocess.DEVNULL,
                           text=True, timeout=timeout, check=False, **kw)
        if check and p.returncode != 0:
            raise HarnessError(f"[{ns_name}] {argv} -> rc {p.returncode}: {p.stderr}")
        return p

    def popen(self, ns_name, argv, **kw):
        """Start argv inside namespace ns_name in the background; killed on close()."""
        kw.setdefault("stdin", subprocess.DEVNULL)
        p = subprocess.Popen(["ip", "netns", "exec", ns_name, *argv], start_new_session=True, **kw)
        self.procs.append(p)
        return p

    # -- guests
    def start_guest(self, name, bridges=(), script="", mem="256M", timeout=120,
                    repo=DEFAULT_REPO, macs=None, extra_args=()):
        """Boot a guest in the background; returns a Guest handle (.wait_ready(),
        .stop(), .wait() -> GuestResult, .kill()).  NIC i (vec<i> inside) is on
        bridges[i]; macs optionally overrides NIC MAC addresses."""
        if not self._open:
            raise HarnessError("Wire not open (use it as a context manager)")
        for br in bridges:
            if br not in self.bridges:
                raise HarnessError(f"unknown bridge {br} (create it with wire.bridge())")
        g = Guest(self, name, list(bridges), script, mem, timeout, repo, macs,
                  list(extra_args), self.image)
        self.guests.append(g)
        return g

    def guest(self, name, bridges=(), script="", mem="256M", timeout=120,
              repo=DEFAULT_REPO, macs=None, extra_args=()):
        """Boot a guest, run script, wait for power-off; return GuestResult."""
        return self.start_guest(name, bridges, script, mem, timeout, repo, macs,
                                extra_args).wait()
