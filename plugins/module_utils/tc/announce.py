# -*- coding: utf-8 -*-
# Copyright: (c) 2026, logfwdr developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The service addresses of the BGP mode, announced only while the agent judges this host healthy.

The addresses live on a non-persistent TUN device (`logfwdr0`) that the agent
holds open.  FRR announces each one (`network 192.0.2.100/32`, import-check)
only while the kernel has it as a connected address on an UP interface, so:

- the link is UP exactly while the agent's verdict is healthy and the drain
  file does not exist (decide());
- the agent stopped, crashed or killed: its file descriptor closes, the
  kernel deletes the device with its addresses, zebra and bgpd withdraw;
- SIGHUP (the agent runs again in the same process, os.execv): the descriptor
  is kept open across the exec (close-on-exec cleared, its number in
  LOGFWDR_ANNOUNCE_FD) and adopted by the new run, so a reload never withdraws.

`logfwdr drain` writes the drain file, sets the link down itself and waits
until the counters of the rules stop moving (wait_still); `logfwdr undrain`
removes the file.  The agent records what it did (announce.json beside the
drain file) for `logfwdr status`.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import fcntl
import ipaddress
import json
import os
import socket
import struct
import time

try:
    from pyroute2.netlink import NLM_F_ACK, NLM_F_CREATE, NLM_F_REPLACE, NLM_F_REQUEST
    from pyroute2.netlink.rtnl import RTM_DELADDR, RTM_NEWADDR, RTM_NEWLINK
    from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
    from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
except ImportError:  # reported by the program through codec.HAS_PYROUTE2
    pass

ENV_FD = "LOGFWDR_ANNOUNCE_FD"
DEFAULT_DEVICE = "logfwdr0"
DEFAULT_DRAIN_FILE = "/run/logfwdr/drain"
RECORD_NAME = "announce.json"

TUN_PATH = "/dev/net/tun"
TUNSETIFF, TUNGETIFF = 0x400454CA, 0x800454D2  # linux/if_tun.h: _IOW('T', 202, int), _IOR('T', 210, unsigned int)
IFF_TUN, IFF_NO_PI = 0x0001, 0x1000
IFF_UP = 0x1
IFA_F_NODAD = 0x02
IFNAMSIZ = 16
IFREQ_SIZE = 40

monotonic = getattr(time, "monotonic", time.time)


class AnnounceError(Exception):
    pass


# ---- pure logic ----

def parse_service_address(text):
    """"192.0.2.100", "2001:db8::1" (or with /32, /128) -> (family 4|6, address, prefix length).
    ValueError with the reason otherwise."""
    raw = u"%s" % text.strip()
    address, sep, length = raw.partition("/")
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise ValueError("%r is not an IPv4 or IPv6 address" % text)
    full = 32 if ip.version == 4 else 128
    if sep and length != str(full):
        raise ValueError("%r: a service address is announced as /%d: give the address alone" % (text, full))
    if ip.is_multicast or ip.is_unspecified or ip.is_loopback or ip.is_link_local:
        raise ValueError("%r is not a unicast host address" % text)
    return ip.version, str(ip), full


def default_drain_file(health_path=None):
    """The drain file: beside the health file when there is one, else /run/logfwdr/drain."""
    if health_path:
        return os.path.join(os.path.dirname(os.path.abspath(health_path)), "drain")
    return DEFAULT_DRAIN_FILE


def record_path(drain_file):
    """Where the agent records its announcement for `logfwdr status`: announce.json beside the drain file."""
    return os.path.join(os.path.dirname(os.path.abspath(drain_file)), RECORD_NAME)


def decide(healthy, drained, why=None):
    """(up, reason) for the agent's verdict and the drain file.

    up is True (announce), False (withdraw) or None (no verdict yet: keep the link as it is, down on a new device,
    up on one adopted across a reload).  reason is "drained", "not healthy: <why>" or None."""
    if drained:
        return False, "drained"
    if healthy is None:
        return None, None
    if not healthy:
        return False, "not healthy: %s" % (why or "the rules are not in place")
    return True, None


def parse_inherited(value):
    """LOGFWDR_ANNOUNCE_FD's value -> the descriptor number, or None (unset, empty, not a number, 0-2)."""
    if value is None:
        return None
    value = value.strip()
    if not value.isdigit():
        return None
    fd = int(value)
    return fd if fd > 2 else None


def describe(record, exists, up, drained):
    """The announcement as `logfwdr status` shows it: (state, text).  state is up, down, drained or no device."""
    if not exists:
        return "no device", "no device"
    if up:
        return "up", "up"
    if drained:
        return "drained", "drained"
    why = (record or {}).get("why")
    if (record or {}).get("state") == "up" or not why:
        why = "link down"
    return "down", "down (%s)" % why


def wait_still(read, quiet, timeout, step=0.2, clock=monotonic, sleep=time.sleep, on_read=None):
    """Read counters ({key: number}) every `step` s until none has moved for `quiet` s (True) or until `timeout`
    s have passed (False).  Returns (still, seconds waited, {key: increase over the last `quiet` s} of what
    still moved)."""
    start = clock()
    last = read()
    history = [(start, last)]
    still_since = start
    while True:
        now = clock()
        if now - still_since >= quiet:
            return True, now - start, {}
        if now - start >= timeout:
            base = history[0][1]  # the newest reading at least `quiet` s old
            for when, reading in history:
                if now - when >= quiet - step / 2:
                    base = reading
            moved = dict((k, v - base.get(k, 0)) for k, v in last.items() if v != base.get(k, 0))
            return False, now - start, moved
        sleep(step)
        current = read()
        when = clock()
        if on_read is not None:
            on_read(current)
        if current != last:
            still_since = when
        last = current
        history.append((when, current))
        history = [h for h in history if when - h[0] <= quiet + step] or history[-1:]


def arrivals(info):
    """runner.info's result -> {"DEVICE port N": packets counted by the port's rules (copies, rate-limited,
    originals dropped, capped, refused)}: what still moves while traffic arrives."""
    out = {}
    for dev in info["devices"]:
        for port in dev["ports"]:
            total = sum(port.get(k, 0) or 0 for k in ("original_dropped", "capped", "refused"))
            for dest in port["destinations"]:
                counters = dest.get("counters") or {}
                total += sum(counters.get(k, 0) or 0 for k in ("packets", "rate_limited", "drops"))
            out["%s port %s" % (dev["name"], port["port"])] = total
    return out


# ---- files ----

def write_record(path, record):
    directory = os.path.dirname(path)
    if directory and not os.path.isdir(directory):
        os.makedirs(directory)
    tmp = path + ".tmp"
    with open(tmp, "w") as handle:
        json.dump(record, handle, sort_keys=True)
        handle.write("\n")
    os.rename(tmp, path)


def read_record(path):
    try:
        with open(path) as handle:
            record = json.load(handle)
    except (IOError, OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def write_drain(path, text):
    directory = os.path.dirname(path)
    if directory and not os.path.isdir(directory):
        os.makedirs(directory)
    tmp = path + ".tmp"
    with open(tmp, "w") as handle:
        handle.write(text)
    os.rename(tmp, path)


# ---- the kernel ----

def tun_name(fd):
    """The TUN device `fd` is attached to, or None when fd is not an open TUN descriptor."""
    try:
        if os.readlink("/proc/self/fd/%d" % fd) != TUN_PATH:
            return None
        raw = fcntl.ioctl(fd, TUNGETIFF, b"\0" * IFREQ_SIZE)
    except (IOError, OSError):
        return None
    return raw[:IFNAMSIZ].split(b"\0", 1)[0].decode("ascii", "replace") or None


def open_tun(name):
    """A new non-persistent TUN device `name`, held by the returned descriptor (close-on-exec)."""
    if len(name.encode("ascii")) >= IFNAMSIZ:
        raise AnnounceError("%s: a device name has at most %d characters" % (name, IFNAMSIZ - 1))
    try:
        fd = os.open(TUN_PATH, os.O_RDWR | getattr(os, "O_CLOEXEC", 0))
    except (IOError, OSError) as exc:
        raise AnnounceError("cannot open %s: %s (Linux: modprobe tun)" % (TUN_PATH, exc.strerror or exc))
    try:
        fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode("ascii"), IFF_TUN | IFF_NO_PI))
    except (IOError, OSError) as exc:
        os.close(fd)
        if exc.errno == errno.EBUSY:
            raise AnnounceError("cannot make TUN device %s: another process holds it (another agent?)" % name)
        if exc.errno == errno.EINVAL:
            raise AnnounceError("cannot make TUN device %s: a device of another kind has that name" % name)
        raise AnnounceError("cannot make TUN device %s: %s" % (name, exc.strerror or exc))
    set_cloexec(fd, True)
    return fd


def set_cloexec(fd, on):
    flags = fcntl.fcntl(fd, fcntl.F_GETFD)
    flags = (flags | fcntl.FD_CLOEXEC) if on else (flags & ~fcntl.FD_CLOEXEC)
    fcntl.fcntl(fd, fcntl.F_SETFD, flags)


def ifindex(name):
    try:
        return socket.if_nametoindex(name)
    except (IOError, OSError):
        return None


def link_up(ipr, index):
    """True when the link's administrative state is UP, None when it is gone."""
    for msg in ipr.get_links(index):
        return bool(msg["flags"] & IFF_UP)
    return None


def set_link(ipr, index, up):
    msg = ifinfmsg()
    msg["family"] = socket.AF_UNSPEC
    msg["index"] = index
    msg["flags"] = IFF_UP if up else 0
    msg["change"] = IFF_UP
    list(ipr.nlm_request(msg, msg_type=RTM_NEWLINK, msg_flags=NLM_F_REQUEST | NLM_F_ACK))


def _addr_msg(index, family, address, length, flags=0):
    msg = ifaddrmsg()
    msg["family"] = socket.AF_INET6 if family == 6 else socket.AF_INET
    msg["prefixlen"] = length
    msg["index"] = index
    msg["scope"] = 0
    msg["flags"] = flags & 0xFF
    msg["attrs"] = [["IFA_LOCAL", address], ["IFA_ADDRESS", address]]
    if flags:
        msg["attrs"].append(["IFA_FLAGS", flags])
    return msg


def global_addresses(ipr, index):
    """{(family, address, prefix length)} of the device's global addresses (not the kernel's link-local one)."""
    out = set()
    for msg in ipr.get_addr(index=index):
        if msg["index"] != index or msg["scope"] != 0:
            continue
        address = msg.get_attr("IFA_LOCAL") or msg.get_attr("IFA_ADDRESS")
        out.add((6 if msg["family"] == socket.AF_INET6 else 4, address, msg["prefixlen"]))
    return out


def set_addresses(ipr, index, device, wanted):
    """Make the device's global addresses exactly `wanted` [(family, address, length)]; returns (added, removed)."""
    if any(f == 6 for f, _a, _l in wanted):
        for name, value in (("disable_ipv6", "0"), ("keep_addr_on_down", "1")):
            path = "/proc/sys/net/ipv6/conf/%s/%s" % (device, name)
            if os.path.exists(path):
                with open(path, "w") as handle:
                    handle.write(value)
    have = global_addresses(ipr, index)
    want = set(wanted)
    added, removed = [], []
    for family, address, length in sorted(have - want):
        list(ipr.nlm_request(_addr_msg(index, family, address, length), msg_type=RTM_DELADDR,
                             msg_flags=NLM_F_REQUEST | NLM_F_ACK))
        removed.append("%s/%d" % (address, length))
    for family, address, length in sorted(want - have):
        list(ipr.nlm_request(_addr_msg(index, family, address, length, IFA_F_NODAD if family == 6 else 0),
                             msg_type=RTM_NEWADDR, msg_flags=NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE))
        added.append("%s/%d" % (address, length))
    return added, removed


# ---- the agent's side ----

class Announcer:
    """The TUN device the agent holds, its addresses, and its link state following decide()."""

    def __init__(self, device, addresses, drain_file, ipr, log, environ=None):
        self.device = device
        self.addresses = [parse_service_address(a) for a in addresses]
        if not self.addresses:
            raise AnnounceError("--announce-device %s: give at least one --service-address" % device)
        self.drain_file = drain_file
        self.record_file = record_path(drain_file)
        self.ipr = ipr
        self.log = log
        self.environ = os.environ if environ is None else environ
        self.fd = None
        self.index = None
        self.up = None  # the link as last read or set: True, False, None (no device)
        self.kind = None  # up, drained, not healthy: what was logged last
        self.why = None  # the reason of the last withdrawal, recorded for `logfwdr status`
        self.recorded = None
        self.error = None

    # -- the device --
    def open(self):
        """Adopt the descriptor a previous run passed on (a reload), else make the device (link down)."""
        fd = parse_inherited(self.environ.pop(ENV_FD, None))
        if fd is not None:
            name = tun_name(fd)
            if name == self.device:
                set_cloexec(fd, True)
                self.fd = fd
                self.log("announce: %s kept across the reload (descriptor %d)" % (self.device, fd))
            else:
                self.log("announce: %s=%d is not %s's TUN descriptor (%s): making the device anew"
                         % (ENV_FD, fd, self.device, name or "not a TUN descriptor"))
                if name is not None:
                    os.close(fd)
        if self.fd is None:
            self.fd = open_tun(self.device)
        self.index = ifindex(self.device)
        if self.index is None:
            raise AnnounceError("TUN device %s made, but the kernel has no such link" % self.device)
        added, removed = set_addresses(self.ipr, self.index, self.device, self.addresses)
        self.up = link_up(self.ipr, self.index)
        if added or removed:
            held = ", ".join("%s/%d" % (a, n) for _f, a, n in self.addresses)
            self.log("announce: %s holds %s%s" % (self.device, held,
                                                  " (removed %s)" % ", ".join(removed) if removed else ""))
        if not self.up:
            self.log("announce: %s down until the first health verdict" % self.device)
        self.error = None
        self._record()

    def close(self, why):
        """Withdraw for good: close the descriptor (the kernel deletes the device and its addresses)."""
        if self.fd is None:
            return
        os.close(self.fd)
        self.fd = None
        was_up, self.up, self.index = self.up, None, None
        self.kind, self.why = "closed", why
        self.log("announce: withdrawn (%s)" % why if was_up else "announce: %s removed (%s)" % (self.device, why))
        self._record()

    def pass_on(self, environ=None):
        """Before os.execv: keep the descriptor open across the exec and tell the next run its number."""
        if self.fd is None:
            return
        set_cloexec(self.fd, False)
        (os.environ if environ is None else environ)[ENV_FD] = str(self.fd)

    def drained(self):
        return os.path.exists(self.drain_file)

    def update(self, healthy, why=None, verify=False):
        """Follow the verdict and the drain file; verify: read the link from the kernel (once a check) instead
        of trusting the last state set, and make the device again when it was deleted."""
        if self.fd is None or (verify and ifindex(self.device) != self.index):
            if not self._reopen():
                return
        if verify:
            self.up = link_up(self.ipr, self.index)
        want, reason = decide(healthy, self.drained(), why)
        if want is None:
            return
        was_up = self.up
        if want != was_up:
            set_link(self.ipr, self.index, want)
            self.up = want
        kind = "up" if want else reason.split(":")[0]  # up, drained, not healthy
        if kind != self.kind:
            if want:
                self.log("announce: up")
            else:
                self.log("announce: %s (%s)" % ("withdrawn" if was_up else "down", reason))
            self.kind = kind
        if reason != self.why or want != self.recorded:
            self.why, self.recorded = reason, want
            self._record()

    def _reopen(self):
        """The device is missing (deleted from outside, or could not be made): make it again, down."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
            self.log("announce: %s was deleted from outside: making it again" % self.device)
        try:
            self.open()
        except (AnnounceError, IOError, OSError) as exc:
            message = "announce: %s" % exc
            if message != self.error:
                self.log(message)
            self.error = message
            self.up = None
            return False
        self.kind = None
        return True

    def _record(self):
        record = {"device": self.device, "addresses": ["%s/%d" % (a, n) for _f, a, n in self.addresses],
                  "state": "up" if self.up else ("none" if self.fd is None else "down"), "why": self.why,
                  "pid": os.getpid(), "since": time.time()}
        try:
            write_record(self.record_file, record)
        except (IOError, OSError) as exc:
            message = "announce: cannot write %s: %s" % (self.record_file, exc)
            if message != self.error:
                self.log(message)
            self.error = message
