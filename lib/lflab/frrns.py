# -*- coding: utf-8 -*-
"""FRR daemons (zebra, bfdd, bgpd, ...) in a network namespace of the host kernel, for tests, the lab and benches.

Each instance keeps everything in one directory of its own (config, pid files, vty sockets, zserv socket, BFD
control socket, logs), so several instances run side by side on one host, each in its own namespace::

    d = frrns.workdir("rtr")                        # a fresh directory user frr may write (under /tmp)
    frrns.start("lfrtr", d, conf_text)              # zebra, then bfdd and bgpd; waits for their vty sockets
    frrns.vtysh("lfrtr", d, "show bgp summary")     # the text vtysh prints
    frrns.vtysh_json("lfrtr", d, "show bgp neighbors json")
    frrns.wait_established("lfrtr", d, ["10.50.0.1"], timeout=20)
    frrns.stop(d)                                   # SIGTERM every daemon of the directory, SIGKILL after 5 s

The daemons run as user frr (`-u root` fails: root is not in group frrvty); the directory and every directory
above it must be searchable by frr (a pytest tmp_path is not: it is mode 0700), which workdir() ensures.

The configuration is applied as Debian's frr service applies /etc/frr/frr.conf: the daemons start with an empty
file and `vtysh -f frr.conf` gives each daemon its part (frrcommon.sh: `vtysh -b`).  Each daemon reading the
integrated file itself (`-f frr.conf`) is not the same: bgpd stops reading at the ` exit` that closes a
`bfd` / `profile` block, a node it does not have, and silently runs without its `router bgp` (FRR 8.4.4).
"""

import grp
import json
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time

FRR_LIB = "/usr/lib/frr"
DAEMONS = ("zebra", "bfdd", "bgpd")


class FrrError(RuntimeError):
    pass


def available():
    """None when FRR can run here (daemons, vtysh, user frr), else why not (for pytest.skip)."""
    for daemon in DAEMONS:
        if not os.access(os.path.join(FRR_LIB, daemon), os.X_OK):
            return "FRR is not installed (%s/%s; Debian: apt install frr)" % (FRR_LIB, daemon)
    if shutil.which("vtysh") is None:
        return "vtysh is not installed (Debian: apt install frr)"
    try:
        pwd.getpwnam("frr")
    except KeyError:
        return "no user frr"
    return None


def _frr_ids():
    return pwd.getpwnam("frr").pw_uid, grp.getgrnam("frr").gr_gid


def workdir(name="frr", parent=None):
    """A new directory for one instance, owned by frr, under a parent frr can reach (default /tmp)."""
    path = tempfile.mkdtemp(prefix="lfrr-%s." % name, dir=parent or "/tmp")
    prepare(path)
    return path


def prepare(directory):
    """Make `directory` (created when missing) writable by user frr; FrrError when frr cannot reach it."""
    if not os.path.isdir(directory):
        os.makedirs(directory)
    uid, gid = _frr_ids()
    os.chown(directory, uid, gid)
    os.chmod(directory, 0o775)
    parent = os.path.dirname(os.path.abspath(directory))
    while parent and parent != "/":
        st = os.stat(parent)
        if not (st.st_mode & 0o001 or (st.st_uid == uid and st.st_mode & 0o100)
                or (st.st_gid == gid and st.st_mode & 0o010)):
            raise FrrError("%s: user frr cannot reach %s (mode %o); use frrns.workdir() or a directory under /tmp"
                           % (directory, parent, st.st_mode & 0o777))
        parent = os.path.dirname(parent)


def daemon_argv(daemon, directory, name, conf="startup.conf"):
    """The command line of one daemon of the instance in `directory` (run it with `ip netns exec NS`); it reads
    directory/`conf` at start (start() leaves it empty and applies frr.conf through vtysh)."""
    argv = [os.path.join(FRR_LIB, daemon), "-d", "-u", "frr", "-g", "frr", "-N", name,
            "-f", os.path.join(directory, conf), "-i", os.path.join(directory, daemon + ".pid"),
            "--vty_socket", directory, "--log", "file:%s" % os.path.join(directory, daemon + ".log"),
            "-z", os.path.join(directory, "zserv.api"), "-A", "127.0.0.1"]
    if daemon == "bfdd":
        argv += ["--bfdctl", os.path.join(directory, "bfdd.sock")]
    return argv


def _wait_path(path, timeout, what):
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise FrrError("%s: %s did not appear within %.0f s" % (what, path, timeout))
        time.sleep(0.02)


def _write_conf(directory, filename, text):
    path = os.path.join(directory, filename)
    with open(path, "w") as handle:
        handle.write(text)
    uid, gid = _frr_ids()
    os.chown(path, uid, gid)
    os.chmod(path, 0o640)
    return path


def start(ns, directory, conf_text, daemons=DAEMONS, name=None, timeout=10.0):
    """Start `daemons` in namespace `ns` (zebra first, the others once its zserv socket exists), wait for every
    daemon's vty socket, then apply `conf_text` (kept as directory/frr.conf) with vtysh, as the frr service does."""
    prepare(directory)
    _write_conf(directory, "startup.conf", "")
    _write_conf(directory, "frr.conf", conf_text)
    name = name or ns
    order = sorted(daemons, key=lambda d: d != "zebra")
    for daemon in order:
        proc = subprocess.run(["ip", "netns", "exec", ns] + daemon_argv(daemon, directory, name), check=False,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
        if proc.returncode != 0:
            stop(directory)
            raise FrrError("%s in %s: exit %d: %s %s\n%s" % (daemon, ns, proc.returncode, proc.stdout, proc.stderr,
                                                             logs(directory)))
        try:
            _wait_path(os.path.join(directory, daemon + ".vty"), timeout, "%s in %s" % (daemon, ns))
            if daemon == "zebra":
                _wait_path(os.path.join(directory, "zserv.api"), timeout, "zebra in %s" % ns)
        except FrrError as exc:
            stop(directory)
            raise FrrError("%s\n%s" % (exc, logs(directory)))
    try:
        apply(ns, directory)
    except FrrError:
        stop(directory)
        raise
    return directory


def apply(ns, directory, conf_text=None):
    """Give the running daemons the configuration (conf_text, written to directory/frr.conf first, or the file as
    it is) through `vtysh -f`, as `vtysh -b` does at the frr service's start."""
    if conf_text is not None:
        _write_conf(directory, "frr.conf", conf_text)
    out = vtysh_file(ns, directory, os.path.join(directory, "frr.conf"))
    return out


def vtysh_file(ns, directory, path):
    """`vtysh -f path` against the instance: every line to the daemons that have its node; FrrError on a line
    vtysh refuses."""
    proc = subprocess.run(["ip", "netns", "exec", ns, "vtysh", "--vty_socket", directory, "-f", path], check=False,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=60)
    if proc.returncode != 0:
        raise FrrError("vtysh -f %s in %s: exit %d: %s" % (path, ns, proc.returncode, proc.stdout))
    return proc.stdout


def vtysh(ns, directory, *commands, **kw):
    """Run vtysh against the instance in `directory` (each command one -c); returns what it printed.
    FrrError on a failure unless check=False."""
    argv = ["ip", "netns", "exec", ns, "vtysh", "--vty_socket", directory]
    for command in commands:
        argv += ["-c", command]
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                          timeout=kw.get("timeout", 30), check=False)
    if proc.returncode != 0 and kw.get("check", True):
        raise FrrError("vtysh %s in %s: exit %d: %s%s" % (" / ".join(commands), ns, proc.returncode, proc.stdout,
                                                          proc.stderr))
    return proc.stdout


def vtysh_json(ns, directory, command):
    """A `... json` show command's output, decoded."""
    return json.loads(vtysh(ns, directory, command) or "{}")


def bgp_states(ns, directory):
    """{neighbour address: BGP state ("Established", "Active", ...)} of the instance's bgpd."""
    data = vtysh_json(ns, directory, "show bgp neighbors json")
    return dict((peer, info.get("bgpState")) for peer, info in data.items() if isinstance(info, dict))


def wait_established(ns, directory, peers, timeout=30.0):
    """Wait until every address in `peers` is an Established neighbour; returns the seconds waited."""
    start_at = time.monotonic()
    states = {}
    while time.monotonic() - start_at < timeout:
        states = bgp_states(ns, directory)
        if all(states.get(p) == "Established" for p in peers):
            return time.monotonic() - start_at
        time.sleep(0.1)
    raise FrrError("BGP in %s: not every peer of %s Established after %.0f s: %s"
                   % (ns, list(peers), timeout, states))


def pids(directory):
    """{daemon: pid} from the instance's pid files, for the daemons still alive."""
    out = {}
    try:
        names = os.listdir(directory)
    except OSError:
        return out
    for entry in names:
        if not entry.endswith(".pid"):
            continue
        try:
            with open(os.path.join(directory, entry)) as handle:
                pid = int(handle.read().strip())
            os.kill(pid, 0)
        except (IOError, OSError, ValueError):
            continue
        if _zombie(pid):
            continue
        out[entry[:-len(".pid")]] = pid
    return out


def stop(directory, timeout=5.0):
    """SIGTERM every daemon of the instance, SIGKILL those still there after `timeout` s; waits until gone."""
    running = pids(directory)
    for pid in running.values():
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError:
            pass
    deadline = time.monotonic() + timeout
    killed = False
    while running:
        running = dict((d, p) for d, p in running.items() if os.path.exists("/proc/%d" % p) and not _zombie(p))
        if not running:
            break
        if time.monotonic() > deadline:
            if killed:
                raise FrrError("FRR daemons of %s still running after SIGKILL: %s" % (directory, running))
            for pid in running.values():
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            killed, deadline = True, time.monotonic() + timeout
        time.sleep(0.05)


def _zombie(pid):
    try:
        with open("/proc/%d/stat" % pid) as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (IOError, OSError, IndexError):
        return True


def logs(directory, tail=40):
    """The last lines of each daemon's log, for error messages."""
    out = []
    for entry in sorted(os.listdir(directory)) if os.path.isdir(directory) else []:
        if entry.endswith(".log"):
            try:
                with open(os.path.join(directory, entry)) as handle:
                    lines = handle.read().splitlines()[-tail:]
            except (IOError, OSError):
                continue
            out.append("--- %s\n%s" % (entry, "\n".join(lines)))
    return "\n".join(out)
