"""labctl: a lab of real Debian hosts (stock Debian 6.1 User-Mode Linux kernel, systemd,
sshd) wired to Linux bridges inside the network namespace ``lflab``.

    lab/labctl up [--timeout S]     build/reuse the image, boot every host, wait for SSH
    lab/labctl down                 kill guests, delete the namespace, taps and COW files
    lab/labctl status               namespace, guest processes, SSH reachability
    lab/labctl wait [--timeout S]   until every host answers SSH
    lab/labctl poweroff HOST        kill one guest at once (a pulled power cord)
    lab/labctl start HOST           boot it again on its own disk, wait for SSH
    lab/labctl ssh HOST [CMD...]    root shell / command on HOST (from inside lflab)
    lab/labctl run -- CMD...        run CMD inside lflab (e.g. ansible-playbook)

Topology: lab/topology.json (LOGFWDR_LAB_TOPOLOGY names another).  State: .build/lab/, or the
topology's "state_dir" (state.json, id_ed25519, hosts/<name>/ with console.log, root.cow,
share/).  Needs root.  Stdlib only; reuses lib/lflab (harness: image build and guests; netlab: namespaces and processes).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "lib"))  # the lab library, lib/lflab
from lflab import harness, netlab  # noqa: E402
from lflab.harness import HarnessError  # noqa: E402

TOPOLOGY = Path(os.environ.get("LOGFWDR_LAB_TOPOLOGY", HERE / "topology.json"))


def _state_dir(path):
    """The lab's state directory: the topology's "state_dir" (relative to the repository), default .build/lab.
    A topology with a namespace and a state directory of its own (lab/topology-bgp.json) runs beside the others."""
    try:
        rel = json.loads(Path(path).read_text()).get("state_dir")
    except (OSError, ValueError):
        rel = None
    return REPO / (rel or ".build/lab")


STATE_DIR = _state_dir(TOPOLOGY)
STATE_FILE = STATE_DIR / "state.json"
HOSTS_DIR = STATE_DIR / "hosts"
KEY = STATE_DIR / "id_ed25519"

SSH_OPTS = ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "LogLevel=ERROR", "-o", "IdentitiesOnly=yes"]


def log(msg):
    print(f"labctl: {msg}", file=sys.stderr, flush=True)


def die(msg, rc=1):
    log(f"ERROR: {msg}")
    sys.exit(rc)


# --------------------------------------------------------------------------- topology

def load_topology(path=TOPOLOGY):
    topo = json.loads(Path(path).read_text())
    bridges = {b["name"] for b in topo["bridges"]}
    taps = set()
    for h in topo["hosts"]:
        for i, nic in enumerate(h["nics"]):
            if nic["ifname"] != f"vec{i}":
                raise ValueError(f"{h['name']}: NIC {i} must be vec{i}, not {nic['ifname']}")
            if nic["bridge"] not in bridges:
                raise ValueError(f"{h['name']}: unknown bridge {nic['bridge']}")
            tap = tap_name(h, i)
            if len(tap) > 15 or tap in taps:
                raise ValueError(f"bad/duplicate tap name {tap}")
            taps.add(tap)
    return topo


def tap_name(host, nic):
    """replicator1, 2 -> rep1n2 (host side tap of the guest's vec2)."""
    if isinstance(host, dict):
        if host.get("tap_prefix"):
            return f"{host['tap_prefix']}n{nic}"
        host = host["name"]
    digits = "".join(c for c in host if c.isdigit())
    letters = "".join(c for c in host if not c.isdigit())
    return f"{letters[:3]}{digits}n{nic}"


def host_by_name(topo, name):
    for h in topo["hosts"]:
        if h["name"] == name:
            return h
    die(f"unknown host {name!r} (hosts: {', '.join(h['name'] for h in topo['hosts'])})")


# --------------------------------------------------------------------------- state

def read_state():
    try:
        return json.loads(STATE_FILE.read_text())
    except FileNotFoundError:
        return None
    except ValueError:
        log(f"{STATE_FILE} unreadable; treating as crashed lab")
        return {}


def write_state(state):
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    tmp = STATE_FILE.with_name(f"state.{os.getpid()}.tmp")  # two labctl at once must not share one
    tmp.write_text(json.dumps(state, indent=2) + "\n")
    tmp.replace(STATE_FILE)


@contextlib.contextmanager
def state_lock():
    """Serialise read-modify-write of the state file (`labctl start A & labctl start B` at once)."""
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    with open(STATE_DIR / "state.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def set_guest_pid(name, pid):
    """Record one guest's pid, keeping what other labctl processes wrote meanwhile."""
    with state_lock():
        state = read_state()
        state["hosts"][name]["pid"] = pid
        write_state(state)
        return state


def _cmdline(pid):
    """argv of pid; [] for a process that is gone or exiting (a zombie's cmdline reads empty)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            raw = f.read()
    except OSError:
        return []
    return raw.rstrip(b"\0").split(b"\0") if raw else []


def uml_zombies():
    """linux.uml processes that have exited but are not reaped yet (no command line any more)."""
    found = []
    for d in os.listdir("/proc"):
        try:
            with open(f"/proc/{d}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        comm_end = stat.rfind(b")")
        if stat[stat.find(b"(") + 1:comm_end] == b"linux.uml" and stat[comm_end + 2:comm_end + 3] == b"Z":
            found.append(int(d))
    return found


def _process_name(pid):
    argv = _cmdline(pid)
    if argv and argv[0]:
        return b" ".join(argv[:2]).decode(errors="replace")[:60]
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f"{f.read().strip()} (pid {pid}, exiting)"
    except OSError:
        return f"pid {pid} (gone)"


def lab_uml_pids():
    """Every host process that belongs to a guest of this lab (linux.uml and its helper
    processes all carry uml_dir=<.build/lab/hosts/NAME> on their command line)."""
    marker = f"uml_dir={HOSTS_DIR}/".encode()
    found = []
    for d in os.listdir("/proc"):
        if d.isdigit() and any(a.startswith(marker) for a in _cmdline(d)):
            found.append(int(d))
    return found


def guest_alive(state, name):
    pid = (state or {}).get("hosts", {}).get(name, {}).get("pid")
    if not pid:
        return False
    marker = f"uml_dir={HOSTS_DIR / name}".encode()
    return marker in _cmdline(pid)


# --------------------------------------------------------------------------- helpers

def need_root():
    if os.geteuid() != 0:
        die("must run as root")


def ns_exec(ns, argv, check=False, **kw):
    kw.setdefault("stdin", subprocess.DEVNULL)
    return subprocess.run(["ip", "netns", "exec", ns, *argv], check=check, **kw)


def ip_batch(ns, commands):
    """Run many `ip` commands in one process (each fork costs time)."""
    p = subprocess.run(["ip", "-n", ns, "-batch", "-"], input="\n".join(commands) + "\n",
                       text=True, capture_output=True, check=False)
    if p.returncode != 0:
        raise HarnessError(f"ip -n {ns} -batch failed: {p.stderr.strip()}")


def ssh_argv(ip, *extra):
    return ["ssh", "-i", str(KEY), *SSH_OPTS, *extra, f"root@{ip}"]


def ssh_ok(ns, ip, timeout=3):
    try:
        p = ns_exec(ns, [*ssh_argv(ip, "-o", "BatchMode=yes", "-o", f"ConnectTimeout={timeout}"),
                         "true"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                    timeout=timeout + 10)
    except subprocess.TimeoutExpired:
        return False
    return p.returncode == 0


def ensure_key():
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    if not KEY.exists():
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "logfwdr-lab",
                        "-f", str(KEY)], check=True, stdin=subprocess.DEVNULL)
    return KEY.with_suffix(".pub").read_text()


def ensure_host_key(name):
    """Per-host SSH host key, made once on the host and kept across up/down (stable
    fingerprints, and no ssh-keygen run inside the slow guest at boot)."""
    d = STATE_DIR / "hostkeys"
    d.mkdir(parents=True, exist_ok=True)
    key = d / f"{name}_ed25519"
    if not key.exists():
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"root@{name}",
                        "-f", str(key)], check=True, stdin=subprocess.DEVNULL)
    return key


def console_tail(name, n=25):
    try:
        lines = (HOSTS_DIR / name / "console.log").read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return "(no console.log)"
    return "\n".join(lines[-n:])


# --------------------------------------------------------------------------- up

def guest_argv(topo, host, image, hostdir):
    mem = host.get("mem") or topo.get("defaults", {}).get("mem", "256M")
    name = host["name"]
    net = ",".join(f"{n['ifname']}={n['address']}" for n in host["nics"] if n.get("address"))
    sysctl = ",".join(f"{k}={v}" for k, v in host.get("sysctl", {}).items())
    rename = ",".join(f"{n['ifname']}={n['name']}" for n in host["nics"] if n.get("name"))
    machine_id = hashlib.md5(f"logfwdr-lab:{name}".encode()).hexdigest()
    nics = [harness.nic_arg(n["ifname"], tap_name(host, i), n["mac"]) for i, n in enumerate(host["nics"])]
    return harness.guest_cmdline(
        name, mem, f"lflab-{name}", hostdir, hostdir / "root.cow", image, hostdir / "share", nics,
        params=[*([f"lf.net={net}"] if net else []), *([f"lf.sysctl={sysctl}"] if sysctl else []),
                *([f"lf.rename={rename}"] if rename else []), f"systemd.machine_id={machine_id}"])


def cmd_up(args):
    need_root()
    reason = harness.uml_unavailable_reason()
    if reason:
        die(reason)
    topo = load_topology()
    ns = topo["namespace"]
    state = read_state()
    alive = [h["name"] for h in topo["hosts"] if guest_alive(state, h["name"])]
    if alive or lab_uml_pids():
        die(f"lab is already up (running: {', '.join(alive) or 'stray guest processes'}); "
            "use `lab/labctl status`, or `lab/labctl down` first")
    if netlab.netns_exists(ns):
        die(f"network namespace {ns} already exists (stale lab?); run `lab/labctl down` first")
    if state is not None:
        log("removing state of a previous lab that is no longer running")
        teardown(topo, quiet=True)

    t0 = time.monotonic()
    image = harness.ensure_image(log=sys.stderr)
    t_img = time.monotonic() - t0
    pubkey = ensure_key()

    state = {"namespace": ns, "image": image, "started": time.time(), "hosts": {}}
    write_state(state)                      # from here on, `down` can clean up
    try:
        subprocess.run(["ip", "netns", "add", ns], check=True, capture_output=True, text=True)
        # no IPv6 in the lab namespace (bridges and taps inherit default=1)
        ns_exec(ns, ["sh", "-c", "echo 1 >/proc/sys/net/ipv6/conf/all/disable_ipv6;"
                                 "echo 1 >/proc/sys/net/ipv6/conf/default/disable_ipv6"],
                check=True)
        cmds = ["link set lo up"]
        for br in topo["bridges"]:
            cmds.append(f"link add {br['name']} type bridge stp_state 0 forward_delay 0 "
                        "mcast_snooping 0")
            addresses = br.get("address") or []
            for address in [addresses] if isinstance(addresses, str) else addresses:
                cmds.append(f"addr add {address} dev {br['name']}")
            cmds.append(f"link set {br['name']} up")
        for h in topo["hosts"]:
            for i, nic in enumerate(h["nics"]):
                tap = tap_name(h, i)
                cmds.append(f"tuntap add dev {tap} mode tap")
                cmds.append(f"link set {tap} master {nic['bridge']} up")
        ip_batch(ns, cmds)

        shutil.rmtree(HOSTS_DIR, ignore_errors=True)
        env = dict(os.environ)
        for h in topo["hosts"]:
            hostdir = HOSTS_DIR / h["name"]
            (hostdir / "share").mkdir(parents=True)
            (hostdir / "share" / "authorized_keys").write_text(pubkey)
            hostkey = ensure_host_key(h["name"])
            shutil.copy2(hostkey, hostdir / "share" / "ssh_host_ed25519_key")
            shutil.copy2(f"{hostkey}.pub", hostdir / "share" / "ssh_host_ed25519_key.pub")
            if not harness.shm_usable():
                env["TMPDIR"] = str(hostdir)
            argv = guest_argv(topo, h, image, hostdir)
            (hostdir / "cmdline").write_text(" ".join(argv) + "\n")
            with open(hostdir / "console.log", "wb") as con:
                p = subprocess.Popen(["ip", "netns", "exec", ns, *argv], stdin=subprocess.DEVNULL,
                                     stdout=con, stderr=subprocess.STDOUT, cwd=hostdir, env=env,
                                     start_new_session=True)
            state["hosts"][h["name"]] = {"pid": p.pid, "mgmt_ip": h["mgmt_ip"]}
            p.returncode = 0                # detached on purpose: no "still running" warning
            write_state(state)
    except (HarnessError, subprocess.CalledProcessError, OSError) as e:
        err = getattr(e, "stderr", "") or ""
        log(f"setup failed: {e} {err}".strip())
        log("cleaning up")
        teardown(topo, quiet=True)
        sys.exit(1)
    log(f"image ready in {t_img:.1f}s; {len(topo['hosts'])} guests started in {ns}, "
        "waiting for SSH")
    ok = wait_ssh(topo, state, args.timeout)
    total = time.monotonic() - t0
    if not ok:
        die(f"not every host answered SSH after {total:.0f}s; the lab is left up for "
            f"debugging (console logs: {HOSTS_DIR}/<host>/console.log); `lab/labctl down` "
            "removes it")
    print(f"lab up: {len(topo['hosts'])} hosts answer SSH, {total:.1f}s")


def wait_ssh(topo, state, timeout):
    ns = topo["namespace"]
    deadline = time.monotonic() + timeout
    t0 = time.monotonic()

    def one(h):
        while time.monotonic() < deadline:
            if state is not None and not guest_alive(state, h["name"]):
                return h["name"], None, "guest process is gone"
            if ssh_ok(ns, h["mgmt_ip"]):
                return h["name"], time.monotonic() - t0, ""
            time.sleep(0.5)
        return h["name"], None, "timeout"

    ok = True
    with concurrent.futures.ThreadPoolExecutor(len(topo["hosts"])) as ex:
        for name, secs, why in ex.map(one, topo["hosts"]):
            if secs is None:
                ok = False
                log(f"{name}: no SSH ({why}); console tail:\n{console_tail(name)}")
            else:
                log(f"{name}: ssh ok after {secs:.1f}s")
    return ok


# --------------------------------------------------------------------------- down

def users_in_namespace(ns, settle=1.0):
    """Processes in the lab namespace that are neither guests nor ssh ControlPersist
    masters: somebody is still using the lab (e.g. `labctl run -- ansible-playbook`).
    Only those still there `settle` seconds later count: right after a playbook the
    namespace briefly holds exiting ProxyCommands and `ip netns exec` mid-exec."""
    def scan():
        if not netlab.netns_exists(ns):
            return {}
        uml = set(lab_uml_pids())
        found = {}
        for pid in netlab.netns_pids(ns):
            argv = _cmdline(pid)
            if pid == os.getpid() or pid in uml or not argv or argv[0].startswith(b"ssh: "):
                continue
            if argv[0].endswith(b"socat") and argv[1:2] == [b"-"]:
                continue  # ssh ProxyCommand of the lab inventory: goes away with the namespace
            found[pid] = b" ".join(argv).decode(errors="replace")[:100]
        return found

    first = scan()
    if not first or settle <= 0:
        return sorted(first.items())
    time.sleep(settle)
    second = scan()
    return sorted((pid, cmd) for pid, cmd in second.items() if first.get(pid) == cmd)


def teardown(topo, quiet=False):
    state = read_state() or {}
    ns = state.get("namespace") or topo["namespace"]
    killed = 0
    # 1. guest process groups recorded in the state (only if they really are our guests)
    for name, info in state.get("hosts", {}).items():
        pid = info.get("pid")
        if pid and guest_alive(state, name):
            try:
                os.killpg(pid, signal.SIGKILL)
                killed += 1
            except (ProcessLookupError, PermissionError):
                pass
    # 2. any stray linux.uml process of this lab (crashed labctl, lost state file)
    if not netlab.kill_until_gone(lab_uml_pids, timeout=10):
        log(f"WARNING: processes still alive after SIGKILL: {lab_uml_pids()}")
    # 3. everything else living in the namespace (ssh ControlPersist masters, ...), then it
    if netlab.netns_exists(ns):
        others = [p for p in netlab.netns_pids(ns) if p != os.getpid()]
        if others and not quiet:
            names = sorted({_process_name(p) for p in others})
            log(f"also killing {len(others)} other process(es) in {ns}: {'; '.join(names)}")
        netlab.delete_netns(ns)           # kills what lives there; taps/bridges go with it
        if netlab.netns_exists(ns):
            log(f"WARNING: could not delete namespace {ns}")
    # 4. per-guest files: drop COW layers and shares, keep console logs for post-mortems
    if HOSTS_DIR.exists():
        for hostdir in HOSTS_DIR.iterdir():
            for item in hostdir.iterdir():
                if item.name not in ("console.log", "cmdline"):
                    if item.is_dir() and not item.is_symlink():
                        shutil.rmtree(item, ignore_errors=True)
                    else:
                        item.unlink(missing_ok=True)
    STATE_FILE.unlink(missing_ok=True)
    # return only once the killed guests are reaped: no `[linux.uml] <defunct>` left behind us
    deadline = time.monotonic() + 10
    while uml_zombies() and time.monotonic() < deadline:
        time.sleep(0.05)
    if not quiet:
        log(f"killed {killed} guest(s); namespace {ns} removed" if killed
            else f"no guest was running; namespace {ns} removed")


def cmd_down(args):
    need_root()
    t0 = time.monotonic()
    topo = load_topology()
    users = users_in_namespace((read_state() or {}).get("namespace") or topo["namespace"])
    if users and not args.force:
        die("the lab is in use by these processes (lab/labctl down --force kills them):\n"
            + "\n".join(f"  {pid} {cmd}" for pid, cmd in users))
    teardown(topo)
    print(f"lab down in {time.monotonic() - t0:.1f}s")


# --------------------------------------------------------------------------- status / wait

def cmd_status(args):
    need_root()
    topo = load_topology()
    state = read_state()
    ns = (state or {}).get("namespace") or topo["namespace"]
    ns_up = netlab.netns_exists(ns)
    print(f"namespace {ns}: {'present' if ns_up else 'absent'}; state "
          f"{'present' if state is not None else 'absent'} ({STATE_FILE})")
    if state and state.get("image"):
        print(f"image {state['image']}")
    rows = []
    with concurrent.futures.ThreadPoolExecutor(len(topo["hosts"])) as ex:
        futs = {}
        for h in topo["hosts"]:
            alive = guest_alive(state, h["name"])
            futs[h["name"]] = (h, alive, ex.submit(ssh_ok, ns, h["mgmt_ip"], 2)
                               if alive and ns_up else None)
        for name, (h, alive, fut) in futs.items():
            ssh = fut.result() if fut else False
            pid = (state or {}).get("hosts", {}).get(name, {}).get("pid", "-")
            rows.append((name, h["mgmt_ip"], str(pid) if alive else "-",
                         "running" if alive else "stopped", "ok" if ssh else "-"))
    print(f"{'host':<12} {'mgmt':<11} {'pid':>8}  {'guest':<8} ssh")
    for r in rows:
        print(f"{r[0]:<12} {r[1]:<11} {r[2]:>8}  {r[3]:<8} {r[4]}")
    stray = lab_uml_pids()
    if stray and not state:
        print(f"stray lab processes without state: {stray} (lab/labctl down)")
    all_ok = all(r[4] == "ok" for r in rows)
    none = not ns_up and not any(r[3] == "running" for r in rows)
    return 0 if all_ok else (3 if none else 1)


def cmd_wait(args):
    need_root()
    topo = load_topology()
    state = read_state()
    if state is None or not netlab.netns_exists(topo["namespace"]):
        die("lab is not up (lab/labctl up)")
    t0 = time.monotonic()
    if not wait_ssh(topo, state, args.timeout):
        die("not every host answers SSH")
    print(f"all hosts answer SSH ({time.monotonic() - t0:.1f}s)")


# --------------------------------------------------------------------------- ssh / run

def lab_env():
    env = dict(os.environ)
    venv_bin = REPO / ".venv" / "bin"
    if venv_bin.is_dir():
        env["PATH"] = f"{venv_bin}:{env.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin')}"
        env.setdefault("VIRTUAL_ENV", str(REPO / ".venv"))
    if (REPO / "ansible.cfg").exists():
        env.setdefault("ANSIBLE_CONFIG", str(REPO / "ansible.cfg"))
    env["LOGFWDR_LAB_KEY"] = str(KEY)
    env["LOGFWDR_LAB_NAMESPACE"] = load_topology()["namespace"]
    return env


def cmd_ssh(args):
    need_root()
    topo = load_topology()
    h = host_by_name(topo, args.host)
    if not netlab.netns_exists(topo["namespace"]):
        die("lab is not up (lab/labctl up)")
    argv = ["ip", "netns", "exec", topo["namespace"], *ssh_argv(h["mgmt_ip"]), *args.cmd]
    os.execvp(argv[0], argv)


def cmd_run(args):
    need_root()
    topo = load_topology()
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not cmd:
        die("usage: lab/labctl run -- CMD [ARGS...]")
    if not netlab.netns_exists(topo["namespace"]):
        die("lab is not up (lab/labctl up)")
    argv = ["ip", "netns", "exec", topo["namespace"], *cmd]
    os.execvpe(argv[0], argv, lab_env())


# --------------------------------------------------------------------------- one host

def cmd_poweroff(args):
    """Pull the plug: SIGKILL the guest's processes (no shutdown, no goodbye packets)."""
    need_root()
    topo = load_topology()
    host_by_name(topo, args.host)
    state = read_state()
    if not guest_alive(state, args.host):
        die(f"{args.host} is not running")
    marker = f"uml_dir={HOSTS_DIR / args.host}".encode()

    def mine():
        return [p for p in lab_uml_pids() if marker in _cmdline(p)]

    os.killpg(state["hosts"][args.host]["pid"], signal.SIGKILL)
    if not netlab.kill_until_gone(mine, timeout=10):
        die(f"{args.host}: processes still alive: {mine()}")
    print(f"{args.host} powered off")


def cmd_start(args):
    """Boot a powered-off guest again on its own disk (its COW layer keeps what Ansible wrote)."""
    need_root()
    topo = load_topology()
    host = host_by_name(topo, args.host)
    state = read_state()
    if state is None:
        die("the lab is down; `lab/labctl up` starts every host")
    if guest_alive(state, args.host):
        die(f"{args.host} is already running")
    hostdir = HOSTS_DIR / args.host
    argv = guest_argv(topo, host, state["image"], hostdir)
    env = dict(os.environ)
    if not harness.shm_usable():
        env["TMPDIR"] = str(hostdir)
    t0 = time.monotonic()
    with open(hostdir / "console.log", "ab") as con:
        p = subprocess.Popen(["ip", "netns", "exec", state["namespace"], *argv],
                             stdin=subprocess.DEVNULL, stdout=con, stderr=subprocess.STDOUT,
                             cwd=hostdir, env=env, start_new_session=True)
    p.returncode = 0                        # detached on purpose
    state = set_guest_pid(args.host, p.pid)
    deadline = t0 + args.timeout
    while time.monotonic() < deadline:
        if ssh_ok(state["namespace"], host["mgmt_ip"]):
            print(f"{args.host} up: answers SSH after {time.monotonic() - t0:.1f}s")
            return 0
        time.sleep(0.5)
    die(f"{args.host} did not answer SSH within {args.timeout:.0f}s ({hostdir}/console.log)")
    return 1


# --------------------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(prog="lab/labctl", description=__doc__.split("\n\n", maxsplit=1)[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("up", help="build/reuse the image, boot all hosts, wait for SSH")
    p.add_argument("--timeout", type=float, default=180, help="seconds to wait for SSH")
    p.set_defaults(func=cmd_up)
    p = sub.add_parser("down", help="kill guests, remove namespace/taps/COW files")
    p.add_argument("--force", action="store_true",
                   help="also kill other processes still running inside the namespace")
    p.set_defaults(func=cmd_down)
    p = sub.add_parser("status", help="show namespace, guests, SSH (rc 0 all ok, 1 partial, 3 down)")
    p.set_defaults(func=cmd_status)
    p = sub.add_parser("wait", help="wait until every host answers SSH")
    p.add_argument("--timeout", type=float, default=180)
    p.set_defaults(func=cmd_wait)
    p = sub.add_parser("poweroff", help="kill one guest at once, like pulling its power cord")
    p.add_argument("host")
    p.set_defaults(func=cmd_poweroff)
    p = sub.add_parser("start", help="boot a powered-off guest again (same disk), wait for SSH")
    p.add_argument("host")
    p.add_argument("--timeout", type=float, default=120)
    p.set_defaults(func=cmd_start)
    p = sub.add_parser("ssh", help="ssh to HOST as root from inside the lab namespace")
    p.add_argument("host")
    p.add_argument("cmd", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_ssh)
    p = sub.add_parser("run", help="run CMD inside the lab namespace (.venv/bin on PATH)")
    p.add_argument("cmd", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_run)
    args = ap.parse_args()
    try:
        rc = args.func(args)
    except HarnessError as e:
        die(str(e))
    sys.exit(rc or 0)


if __name__ == "__main__":
    main()
