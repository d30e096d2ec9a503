# -*- coding: utf-8 -*-
# Copyright: (c) 2026, logfwdr developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""`logfwdr agent`: keeps the kernel's replication rules equal to a desired-state file.

A reconcile is runner.run, the module's own path (validate, resolve next hops,
plan, apply, read back): the planner turns a changed next-hop MAC or egress
ifindex into one atomic replace of that destination's node and leaves every
other node alone.  Reconciles are triggered by netlink events (links,
addresses, routes, neighbours of the egress devices, tc objects of the
ingress devices), by ARP heard from a next hop that was waited for, by a
change of the state file, and by a periodic sweep.

Next hops the kernel has not confirmed lately (STALE, DELAY, PROBE, or no
entry) are asked with an ARP request before use.  A next hop that does not
answer leaves its destination pending (no rule); it is asked again with a
backoff capped at BACKOFF_MAX, and its answer is seen by the ARP listener,
so the rule is installed within about a second of the collector answering.

The health file keepalived follows holds 0 while the last reconciles
succeeded (the read-back equals the desired state) and 1 otherwise, and
when the agent stops.

In the BGP mode (--announce-device) the same verdict raises and lowers the
TUN device holding the service addresses (announce.py): UP exactly while
healthy and not drained; the loop wakes at least once a second and reads the
drain file then.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import fcntl
import os
import select
import signal
import socket
import struct
import sys
import time

from ansible_collections.netops.logfwdr.plugins.module_utils.tc import announce as announce_mod
from ansible_collections.netops.logfwdr.plugins.module_utils.tc import kernel as kernel_mod
from ansible_collections.netops.logfwdr.plugins.module_utils.tc import lock, model, runner
from ansible_collections.netops.logfwdr.plugins.module_utils.tc import state as state_mod

# rtnetlink multicast groups (linux/rtnetlink.h) and the message types the agent reacts to
RTMGRP_LINK, RTMGRP_NEIGH, RTMGRP_TC, RTMGRP_IPV4_IFADDR, RTMGRP_IPV4_ROUTE = 0x1, 0x4, 0x8, 0x10, 0x40
RTMGRP_IPV6_IFADDR, RTMGRP_IPV6_ROUTE = 0x100, 0x400
EVENT_GROUPS = RTMGRP_LINK | RTMGRP_NEIGH | RTMGRP_TC | RTMGRP_IPV4_IFADDR | RTMGRP_IPV4_ROUTE | \
    RTMGRP_IPV6_IFADDR | RTMGRP_IPV6_ROUTE
NEIGH_TYPES = (28, 29)  # RTM_NEWNEIGH, RTM_DELNEIGH
TC_TYPES = (36, 37, 44, 45, 100, 101)  # RTM_{NEW,DEL}{QDISC,TFILTER,CHAIN}
NLMSG_HDR = struct.Struct("=IHHII")
NLMSG_ERROR, NLMSG_DONE = 2, 3

DEBOUNCE = 0.05  # events arrive in bursts: one reconcile for a burst
MIN_GAP = 0.2  # at most five reconciles a second however many events come
RETRY = 1.0  # a failed reconcile is tried again after this long
BACKOFF_MIN, BACKOFF_MAX = 0.25, 1.0  # ARP requests to a next hop that does not answer
PROBE6_WAIT = 0.1  # how long one Neighbour Solicitation of a waiting IPv6 next hop waits for its answer
HEARD_TTL = 30.0  # a MAC heard from a next hop (reply, gratuitous ARP) stands in for a neighbour entry this long


def parse_events(data):
    """rtnetlink datagram -> [(type, ifindex or None)]; only the headers are read."""
    out = []
    offset = 0
    while offset + NLMSG_HDR.size <= len(data):
        length, msg_type = NLMSG_HDR.unpack_from(data, offset)[:2]
        if length < NLMSG_HDR.size:
            break
        ifindex = None
        if msg_type in NEIGH_TYPES or msg_type in TC_TYPES:
            # ndmsg and tcmsg both carry the ifindex as an int32 after four bytes
            if offset + NLMSG_HDR.size + 8 <= len(data):
                ifindex = struct.unpack_from("=i", data, offset + NLMSG_HDR.size + 4)[0]
        if msg_type not in (NLMSG_ERROR, NLMSG_DONE):
            out.append((msg_type, ifindex))
        offset += (length + 3) & ~3
    return out


def listening(port):
    """A TCP socket listens on this port (IPv4 or IPv6), read from /proc: the syslog bridge accepts."""
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as handle:
                next(handle)
                for line in handle:
                    fields = line.split()
                    if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                        return True
        except (IOError, OSError, StopIteration):
            continue
    return False


def sd_notify(message):
    """systemd's notification protocol, without a library: one datagram to $NOTIFY_SOCKET."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        sock.connect(address)
        sock.send(message.encode("ascii"))
        return True
    except (IOError, OSError):
        return False
    finally:
        sock.close()


def write_health(path, healthy):
    if not path:
        return
    directory = os.path.dirname(path)
    if directory and not os.path.isdir(directory):
        os.makedirs(directory)
    tmp = path + ".tmp"
    with open(tmp, "w") as handle:
        handle.write("0\n" if healthy else "1\n")
    os.rename(tmp, path)


class Resolver(kernel_mod.Kernel):
    """The module's kernel access, with next-hop resolution that never blocks on a silent host twice.

    A next hop the kernel has confirmed is used as it is; otherwise a MAC heard
    on the wire lately, else one ARP request and its answer.  A next hop that
    did not answer is not asked synchronously again: the agent's loop sends it
    requests with a backoff (due_probes) and hears the answer (heard).
    """

    def __init__(self, arp_timeout=0.3):
        super(Resolver, self).__init__(arp_timeout=arp_timeout)
        self.heard = {}  # (device, address) -> (mac, time)
        self.waiting = {}  # (device, address) -> [next request time, delay]
        self.resolved = {}  # (device, address) -> (mac, time of the last resolution)

    def neighbour(self, device, address):
        key = (device, address)
        now = time.time()
        entry = self.neighbour_entry(device, address)
        if entry is not None and entry[0] & kernel_mod.NUD_CONFIRMED and entry[1]:
            mac = entry[1]
        elif key in self.heard and now - self.heard[key][1] < HEARD_TTL:
            mac = self.heard[key][0]
        elif key in self.waiting:
            mac = None  # asked before without an answer: the loop keeps asking
        else:
            mac = self.arp_resolve(device, address)
        if mac:
            self.waiting.pop(key, None)
            self.resolved[key] = (mac.lower(), now)
        else:
            self.waiting.setdefault(key, [now + BACKOFF_MIN, BACKOFF_MIN])
        return mac

    def hear(self, device, address, mac):
        """ARP from `address` seen on `device`; True when it answers a wait or tells of a new MAC."""
        key = (device, address)
        if key not in self.waiting and key not in self.resolved:
            return False
        mac = mac.lower()
        self.heard[key] = (mac, time.time())
        return key in self.waiting or self.resolved[key][0] != mac

    def due_probes(self, now):
        """The (device, address) pairs to ask again now; moves each one's next time on."""
        due = []
        for key, slot in self.waiting.items():
            if now >= slot[0]:
                due.append(key)
                slot[1] = min(slot[1] * 2, BACKOFF_MAX)
                slot[0] = now + slot[1]
        return due

    def forget(self, keep):
        """Drop next hops no destination uses any more."""
        for table in (self.heard, self.waiting, self.resolved):
            for key in [k for k in table if k not in keep]:
                del table[key]


class Agent:
    def __init__(self, state_path, health_path=None, sweep=5.0, fall=2, rise=2, listen_ports=(), log=None,
                 resolver=None, interval=1.0, announce=None):
        self.state_path = state_path
        self.health_path = health_path
        self.sweep = sweep
        self.interval = interval
        self.fall, self.rise = max(1, fall), max(1, rise)
        self.listen_ports = list(listen_ports)
        self.log = log or (lambda line: sys.stderr.write(line + "\n"))
        self.kern = resolver or Resolver()
        self.params = None
        self.state_sig = None
        self.healthy = None  # unknown until the first reconcile
        self.streak = 0
        self.last_error = None
        self.last_result = None
        self.last_ok = False
        self.pending_names = set()
        self.rows = []  # destinations() after the last reconcile, for the metrics thread
        self.counts = {"reconciles": 0, "repairs": 0, "errors": 0, "events": 0}
        self.last_reconcile = 0.0
        self.ingress = set()
        self.egress = set()
        self.stop = False
        self.reload = False
        # (device, [service addresses], drain file) of the BGP mode; the Announcer exists while run() runs
        self.announce = announce
        self.announcer = None
        self.why = None  # what made the last verdict "not healthy"

    # ---- state file ----
    def _signature(self):
        try:
            st = os.stat(self.state_path)
            return (st.st_mtime, st.st_size, st.st_ino)
        except OSError:
            return None

    def load_state(self):
        """Reread the state file when it changed; a broken file keeps the last good state."""
        sig = self._signature()
        if sig == self.state_sig and self.params is not None:
            return True
        self.state_sig = sig
        try:
            params = state_mod.load(self.state_path)
        except state_mod.StateError as exc:
            self._say("state file: %s" % exc)
            return self.params is not None
        # the agent never fails on a silent collector: it waits for it
        params["pending"] = "allow"
        params["state"] = "present"
        self.params = params
        self.log("state: %s loaded (%d ingress device(s))" % (self.state_path, len(params["devices"])))
        return True

    # ---- one reconcile ----
    def _say(self, line):
        if line != self.last_error:
            self.log(line)
        self.last_error = line

    def reconcile(self):
        self.last_reconcile = time.time()
        self.counts["reconciles"] += 1
        if not self.load_state():
            self.last_ok = False
            self._first_verdict()
            return False
        self.kern.links(refresh=True)
        try:
            result = runner.run(self.params, self.kern)
        except model.ValidationError as exc:
            self._fail("the desired state cannot be installed now: %s" % "; ".join(exc.problems))
            return False
        except (runner.RunError, lock.Busy) as exc:
            self._fail(str(exc))
            return False
        except (kernel_mod.NetlinkError, kernel_mod.KernelError, OSError) as exc:
            self._fail("netlink: %s" % exc)
            return False
        self.last_error = None
        self.last_ok = True
        self.last_result = result
        if result["changed"]:
            self.counts["repairs"] += 1
            self.log("repaired: %s" % "; ".join(result["commands"]))
        self._note_pending(result["pending"])
        self._watch_sets(result)
        self.rows = self.destinations()
        self._first_verdict()
        return True

    def _fail(self, why):
        self.counts["errors"] += 1
        self.last_ok = False
        self._say(why)
        self.rows = self.destinations()
        self._first_verdict()

    def _note_pending(self, pending):
        names = set(p["name"] for p in pending)
        for line in runner.pending_warnings([p for p in pending if p["name"] not in self.pending_names]):
            self.log("warning: " + line)
        for name in sorted(self.pending_names - names):
            self.log("collector %s answered: its rules are installed" % name)
        self.pending_names = names

    def _watch_sets(self, result):
        """ifindexes whose events matter: ingress devices (tc) and egress devices (neighbours)."""
        links = self.kern.links()
        self.ingress = set(links[d["name"]]["ifindex"] for d in self.params["devices"]
                           if d.get("name") in links)
        egress, hops = set(), set()
        for dev in result["devices"]:
            for port in dev["ports"]:
                for dest in port["destinations"]:
                    if dest["device"] in links:
                        egress.add(links[dest["device"]]["ifindex"])
        for item in result["pending"]:
            if item["egress_device"] in links:
                egress.add(links[item["egress_device"]]["ifindex"])
            hops.add((item["egress_device"], item["next_hop"]))
        self.egress = egress
        hops.update(self.kern.resolved)
        self.kern.forget(hops | set(self.kern.waiting))

    # ---- health ----
    def check_listeners(self):
        for port in self.listen_ports:
            if not listening(port):
                return "syslog bridge not listening on tcp/%d" % port
        return None

    def _first_verdict(self):
        if self.healthy is None:  # at start the first comparison decides at once
            self._judge(self.last_ok)

    def check(self):
        """One health check (every `interval` s): the last comparison's result and the listeners."""
        self._judge(self.last_ok)
        self._announce(verify=True)

    def _judge(self, ok):
        """fall failed checks in a row make the host unhealthy, rise good ones healthy again."""
        if ok:
            problem = self.check_listeners()
            if problem:
                self._say(problem)
                ok = False
        if not ok:
            self.why = self.last_error or "the rules are not in place"
        if self.healthy is None:
            self.healthy, self.streak = ok, 0
            write_health(self.health_path, ok)
            self.log("health: %s" % ("healthy" if ok else "not healthy"))
            self._announce()
            return
        if ok == self.healthy:
            self.streak = 0
            return
        self.streak += 1
        if self.streak >= (self.rise if ok else self.fall):
            self.healthy, self.streak = ok, 0
            write_health(self.health_path, ok)
            self.log("health: %s" % ("healthy" if ok else "not healthy"))
            self._announce()

    # ---- the announcement (BGP mode) ----
    def _open_announcer(self):
        device, addresses, drain_file = self.announce
        self.announcer = announce_mod.Announcer(device, addresses, drain_file, self.kern.ipr, self.log)
        try:
            self.announcer.open()
        except (announce_mod.AnnounceError, kernel_mod.NetlinkError, IOError, OSError) as exc:
            self.announcer.error = "announce: %s" % exc
            self.log("announce: %s (tried again at every check)" % exc)

    def _announce(self, verify=False):
        """The link follows the verdict and the drain file (cheap: one stat unless the link must change)."""
        if self.announcer is None:
            return
        try:
            self.announcer.update(self.healthy, self.why, verify=verify)
        except (kernel_mod.NetlinkError, IOError, OSError) as exc:
            self._say("announce: %s" % exc)

    # ---- what status and metrics read ----
    def destinations(self):
        """One row per destination: name, ingress device, port, state, egress, next hop, MAC, resolution time."""
        rows = []
        result = self.last_result or {"devices": [], "pending": []}
        for dev in result["devices"]:
            for port in dev["ports"]:
                for dest in port["destinations"]:
                    row = {"collector": dest["name"], "device": dev["name"], "port": port["port"],
                           "mode": dest["mode"], "egress_device": dest["device"],
                           "next_hop_mac": dest.get("next_hop_mac"),
                           "state": "active" if self.last_ok else "stale", "resolved": None}
                    for (egress, hop), (mac, when) in self.kern.resolved.items():
                        if egress == dest["device"] and mac == dest.get("next_hop_mac"):
                            row["next_hop"], row["resolved"] = hop, when
                    rows.append(row)
        for item in result["pending"]:
            rows.append({"collector": item["name"], "device": item["device"], "port": item["port"],
                         "mode": "forward", "egress_device": item["egress_device"], "next_hop": item["next_hop"],
                         "next_hop_mac": None, "state": "pending", "resolved": None})
        return rows

    # ---- the loop ----
    def _open_events(self):
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)  # NETLINK_ROUTE
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        sock.bind((0, EVENT_GROUPS))
        sock.setblocking(False)
        return sock

    def _open_arp(self):
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(kernel_mod.ETH_P_ARP))
        sock.setblocking(False)
        return sock

    def _read_events(self, sock):
        """True when an event concerns the rules (or some were lost: then everything does)."""
        relevant = False
        while True:
            try:
                data = sock.recv(1 << 16)
            except (IOError, OSError) as exc:
                if exc.errno == errno.ENOBUFS:
                    return True
                return relevant  # EAGAIN: drained
            for msg_type, ifindex in parse_events(data):
                self.counts["events"] += 1
                if msg_type in NEIGH_TYPES:
                    relevant = relevant or ifindex in self.egress
                elif msg_type in TC_TYPES:
                    relevant = relevant or ifindex in self.ingress
                else:
                    relevant = True

    def _read_arp(self, sock):
        wake = False
        while True:
            try:
                data, addr = sock.recvfrom(128)
            except (IOError, OSError):
                return wake
            if addr[2] == socket.PACKET_OUTGOING:
                continue
            arp = kernel_mod.parse_arp(data)
            if arp is not None and self.kern.hear(addr[0], arp[2], arp[1]):
                wake = True

    def _probe(self, sock, now):
        """Ask the next hops that are due again; True when an IPv6 one answered (a reconcile is due)."""
        wake = False
        for device, address in self.kern.due_probes(now):
            if ":" in address:
                # the ARP socket does not hear Neighbour Advertisements, and one for all IPv6 would take a copy of
                # every IPv6 packet: ask and listen at once, briefly
                mac = self.kern.arp_resolve(device, address, tries=1, timeout=PROBE6_WAIT)
                if mac and self.kern.hear(device, address, mac):
                    wake = True
                continue
            frame = self.kern.arp_request(device, address)
            if frame is None:
                continue
            try:
                sock.sendto(frame, (device, kernel_mod.ETH_P_ARP))
            except (IOError, OSError):
                pass
        return wake

    def run(self, ready=None):
        """Reconcile until SIGTERM/SIGINT (returns "stop") or SIGHUP (returns "reload": the caller runs the
        program again in this process, new code included, and the health file keeps its verdict)."""
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        signal.signal(signal.SIGHUP, self._on_hup)
        self.reload = False
        # a signal wakes the loop at once (a stop withdraws the announcement now, not at the next timeout)
        self._wake_r, self._wake_w = os.pipe()
        for fd in (self._wake_r, self._wake_w):
            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_NONBLOCK)
        events = self._open_events()
        arp = self._open_arp()
        watchdog = float(os.environ.get("WATCHDOG_USEC", "0") or 0) / 1e6
        try:
            if self.announce:
                self._open_announcer()
            self.reconcile()
            sd_notify("READY=1\nSTATUS=%s" % self.summary())
            if ready is not None:
                ready(self)
            due = time.time() + self._next_gap()
            next_check = time.time() + self.interval
            last_ping = 0.0
            while not self.stop and not self.reload:
                now = time.time()
                timeout = max(0.0, due - now)
                if self.kern.waiting:
                    timeout = min(timeout, BACKOFF_MIN)
                if watchdog:
                    timeout = min(timeout, watchdog / 3)
                timeout = min(timeout, 1.0, max(0.0, next_check - now))  # a new state file: seen within 1 s
                try:
                    ready_socks = select.select([events, arp, self._wake_r], [], [], timeout)[0]
                except (IOError, OSError) as exc:
                    if exc.errno == errno.EINTR:
                        ready_socks = []
                    else:
                        raise
                if self._wake_r in ready_socks:
                    try:
                        os.read(self._wake_r, 64)
                    except OSError:
                        pass
                    if self.stop or self.reload:
                        break
                now = time.time()
                wake = False
                if events in ready_socks and self._read_events(events):
                    wake = True
                if arp in ready_socks and self._read_arp(arp):
                    wake = True
                if wake:
                    due = min(due, max(now + DEBOUNCE, self.last_reconcile + MIN_GAP))
                if self._probe(arp, now):
                    due = min(due, max(now + DEBOUNCE, self.last_reconcile + MIN_GAP))
                if watchdog and now - last_ping >= watchdog / 3:
                    sd_notify("WATCHDOG=1")
                    last_ping = now
                if now >= next_check:
                    self.check()
                    next_check = max(next_check + self.interval, now)
                else:
                    self._announce()  # the drain file, read at every wake (at least once a second)
                if now >= due:
                    self.reconcile()
                    sd_notify("STATUS=%s" % self.summary())
                    due = time.time() + self._next_gap()
                elif self._signature() != self.state_sig:
                    due = min(due, now + DEBOUNCE)
        finally:
            if not self.reload:
                write_health(self.health_path, False)
                if self.announcer is not None:
                    self.announcer.close("agent stopping")
            events.close()
            arp.close()
            os.close(self._wake_r)
            os.close(self._wake_w)
            self.kern.close()
        return "reload" if self.reload else "stop"

    def _next_gap(self):
        """A sweep period when all is well; while failing or not yet healthy again, a check every RETRY s
        (fall and rise count these)."""
        return self.sweep if self.last_ok and self.healthy else RETRY

    def summary(self):
        rows = self.destinations()
        active = sum(1 for r in rows if r["state"] == "active")
        pending = sum(1 for r in rows if r["state"] == "pending")
        return "%s; %d destination(s) active, %d pending" % (
            "in place" if self.last_ok else (self.last_error or "not in place"), active, pending)

    def _on_stop(self, signum, frame):
        self.stop = True
        self._wake()

    def _on_hup(self, signum, frame):
        self.reload = True
        self._wake()

    def _wake(self):
        try:
            os.write(self._wake_w, b"x")
        except (AttributeError, OSError):
            pass
