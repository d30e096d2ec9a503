#!/bin/sh
"exec" "/usr/bin/python3" "$0" "$@"
# Copyright: (c) 2026, logfwdr developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# The role installs this file as /usr/local/libexec/logfwdr/check-replication. The first two lines start it with
# the system's python3 (Debian's python3-pyroute2) whatever runs it: keepalived, an operator, monitoring.

from __future__ import absolute_import, division, print_function

import errno
import json
import os
import socket
import struct
import sys
import time

EXPECTED = "/etc/logfwdr/replication-expected.json"
INGRESS_HOOK = 0xFFFFFFF2  # filters on the ingress hook, whether the qdisc is `ingress` or `clsact`
OFF_PORTS = 20  # u32 key offset of the UDP ports word (IPv4 header without options)
TCA_ACT_MAX_PRIO = 32
HELP = """\
Are this replicator's tc replication rules in place?  (netops.logfwdr, installed by the role)

keepalived runs this every logfwdr_vrrp_check_interval seconds; after logfwdr_vrrp_check_fall failures in
a row the VRRP instances go to FAULT and the peer takes the exporters' addresses.  Run it by hand too:

    /usr/local/libexec/logfwdr/check-replication -v

It reads what the role installed from /etc/logfwdr/replication-expected.json (written by the role from the
collector inventory) and compares the kernel with it through netlink (pyroute2; `tc` is never run): on every
ingress interface listed there, the ingress qdisc, and at the role's tc priority one u32 dispatch node per
UDP port linking to a table that holds at least the expected number of mirred actions (one per destination
and allow-listed source prefix).

Exit 0: in place.  Exit 1: not in place (or cannot tell), with a one-line reason on stderr.
--listen-port PORT also requires a TCP listener on PORT (the syslog bridge).

With --watch STATE_FILE it runs for ever (logfwdr-health.service): a check every --interval seconds,
STATE_FILE holds 0 while healthy and 1 after --fall failures in a row (0 again after --rise successes);
keepalived follows the file (vrrp_track_file), so no process is started per check.
Works with pyroute2 0.7.2 (Debian 12's python3-pyroute2) and 0.9.x.
"""


class NotInPlace(Exception):
    pass


def load_pyroute2():
    """pyroute2's netlink socket and attribute framing, with our own minimal tc decoders."""
    from pyroute2 import IPRoute
    from pyroute2.netlink import NLM_F_DUMP, NLM_F_REQUEST, nla
    from pyroute2.netlink.exceptions import NetlinkError
    from pyroute2.netlink.rtnl import RTM_GETQDISC, RTM_GETTFILTER, RTM_NEWQDISC, RTM_NEWTFILTER
    from pyroute2.netlink.rtnl.tcmsg import tcmsg as pr_tcmsg

    class tca_act(nla):
        nla_map = ((1, "TCA_ACT_KIND", "asciiz"),
                   (2, "TCA_ACT_OPTIONS", "cdata"))

    class tca_act_prio(nla):
        # actions are numbered 1..32 (pyroute2's own map starts at 0 and loses the 32nd)
        nla_map = tuple((i, "TCA_ACT_PRIO_%d" % i, "tca_act") for i in range(1, TCA_ACT_MAX_PRIO + 1))

    tca_act_prio.tca_act = tca_act

    class cls_u32(nla):
        nla_map = ((1, "TCA_U32_CLASSID", "uint32"),
                   (2, "TCA_U32_HASH", "uint32"),
                   (3, "TCA_U32_LINK", "uint32"),
                   (4, "TCA_U32_DIVISOR", "uint32"),
                   (5, "TCA_U32_SEL", "cdata"),
                   (7, "TCA_U32_ACT", "tca_act_prio"))

    cls_u32.tca_act_prio = tca_act_prio

    class tcmsg(pr_tcmsg):
        # pyroute2's tcmsg header; only the attributes read here, each decoded the same in every release
        nla_map = ((0, "TCA_UNSPEC", "none"),
                   (1, "TCA_KIND", "asciiz"),
                   (2, "TCA_OPTIONS", "get_options"),
                   (11, "TCA_CHAIN", "uint32"))

        @staticmethod
        def get_options(msg, *argv, **kwarg):
            return cls_u32 if msg.get_attr("TCA_KIND") == "u32" else nla.cdata

    names = dict(IPRoute=IPRoute, NLM_F_DUMP=NLM_F_DUMP, NLM_F_REQUEST=NLM_F_REQUEST, NetlinkError=NetlinkError,
                 RTM_GETQDISC=RTM_GETQDISC, RTM_GETTFILTER=RTM_GETTFILTER, RTM_NEWQDISC=RTM_NEWQDISC,
                 RTM_NEWTFILTER=RTM_NEWTFILTER, tcmsg=tcmsg)
    return type("pr", (), names)


class Kernel(object):
    def __init__(self):
        self.pr = load_pyroute2()
        self.ipr = self.pr.IPRoute()
        for msg_type in (self.pr.RTM_NEWQDISC, self.pr.RTM_NEWTFILTER):
            self.ipr.marshal.msg_map[msg_type] = self.pr.tcmsg
        status = getattr(self.ipr, "status", None)
        if status is not None and hasattr(status, "setdefault"):
            status.setdefault("nlm_generator", False)  # 0.9.x synchronous nlm_request reads it unset

    def close(self):
        self.ipr.close()

    def _dump(self, msg_type, index, parent):
        msg = self.pr.tcmsg()
        msg["family"] = socket.AF_UNSPEC
        msg["index"] = index
        msg["handle"] = 0
        msg["parent"] = parent
        msg["info"] = 0
        msg["attrs"] = []
        return list(self.ipr.nlm_request(msg, msg_type=msg_type,
                                         msg_flags=self.pr.NLM_F_REQUEST | self.pr.NLM_F_DUMP))

    def links(self):
        return dict((link.get_attr("IFLA_IFNAME"), link["index"]) for link in self.ipr.get_links())

    def ingress_hooks(self):
        """ifindexes with an ingress (or clsact) qdisc."""
        return set(q["index"] for q in self._dump(self.pr.RTM_GETQDISC, 0, 0)
                   if q.get_attr("TCA_KIND") in ("ingress", "clsact"))

    def u32_nodes(self, index, priority, chain):
        try:
            dumped = self._dump(self.pr.RTM_GETTFILTER, index, INGRESS_HOOK)
        except self.pr.NetlinkError as exc:
            if exc.code in (errno.EINVAL, errno.ENOENT, errno.EOPNOTSUPP):
                return []
            raise
        nodes = []
        for msg in dumped:
            if msg.get_attr("TCA_KIND") != "u32" or (msg["info"] >> 16) & 0xFFFF != priority:
                continue
            if (msg.get_attr("TCA_CHAIN") or 0) != chain:
                continue
            opts = msg.get_attr("TCA_OPTIONS")
            if opts is None or not hasattr(opts, "get_attr") or opts.get_attr("TCA_U32_DIVISOR") is not None:
                continue  # the classifier itself or a hash table, not a node
            kinds = []
            acts = opts.get_attr("TCA_U32_ACT")
            if acts is not None:
                for i in range(1, TCA_ACT_MAX_PRIO + 1):
                    act = acts.get_attr("TCA_ACT_PRIO_%d" % i)
                    if act is not None:
                        kinds.append(act.get_attr("TCA_ACT_KIND"))
            nodes.append({"handle": msg["handle"], "link": opts.get_attr("TCA_U32_LINK"),
                          "port": sel_port(opts.get_attr("TCA_U32_SEL")), "actions": kinds})
        return nodes


def sel_port(sel):
    """The UDP destination port a u32 selector matches (struct tc_u32_sel), or None."""
    if not sel:
        return None
    data = bytes(sel)
    header = "=BBBxHHhhI"
    nkeys = struct.unpack_from(header, data)[2]
    base, step = struct.calcsize(header), struct.calcsize("=IIii")
    for i in range(nkeys):
        mask, value, off, _offmask = struct.unpack_from("=IIii", data, base + i * step)
        if off == OFF_PORTS and socket.ntohl(mask) == 0x0000FFFF:
            return socket.ntohl(value) & 0xFFFF
    return None


def check(expected, kernel):
    """[(device, text)] of what is in place; raises NotInPlace with every problem found."""
    priority = int(expected["priority"])
    chain = int(expected.get("chain", 0))
    links = kernel.links()
    hooks = None
    problems, report = [], []
    for dev in expected.get("devices") or []:
        name = dev["name"]
        ports = [p for p in dev.get("ports") or [] if int(p.get("mirred", 0)) > 0]
        if name not in links:
            problems.append("%s: no such interface" % name)
            continue
        if not ports and not int(dev.get("mirred", 0)):
            report.append("%s: nothing to replicate" % name)
            continue
        if hooks is None:
            hooks = kernel.ingress_hooks()
        if links[name] not in hooks:
            problems.append("%s: no ingress qdisc" % name)
            continue
        nodes = kernel.u32_nodes(links[name], priority, chain)
        if not nodes:
            problems.append("%s: no replication rules at tc priority %d" % (name, priority))
            continue
        per_table = {}
        for node in nodes:
            per_table.setdefault(node["handle"] >> 20, []).extend(node["actions"])
        dispatch = dict((n["port"], n["link"] >> 20) for n in nodes
                        if n["link"] and (n["handle"] >> 20) & 0x800 and n["port"] is not None)
        for port in ports:
            want = int(port["mirred"])
            table = dispatch.get(int(port["port"]))
            if table is None:
                problems.append("%s: udp/%s: no dispatch rule at tc priority %d" % (name, port["port"], priority))
                continue
            have = per_table.get(table, []).count("mirred")
            if have < want:
                problems.append("%s: udp/%s: %d of %d copies (mirred actions) in place"
                                % (name, port["port"], have, want))
            else:
                report.append("%s: udp/%s: %d copies (%d expected)" % (name, port["port"], have, want))
        if not ports:  # an expectation without ports: the device's total only
            have, want = sum(n["actions"].count("mirred") for n in nodes), int(dev["mirred"])
            if have < want:
                problems.append("%s: %d of %d copies (mirred actions) in place" % (name, have, want))
            else:
                report.append("%s: %d copies (%d expected)" % (name, have, want))
    if problems:
        raise NotInPlace("; ".join(problems))
    return report


def check_once(path, kernel=None):
    """(True, report) or (False, one-line reason)."""
    try:
        with open(path) as handle:
            expected = json.load(handle)
    except (IOError, OSError, ValueError) as exc:
        return False, "replication not checked: cannot read %s (%s); run the netops.logfwdr.logfwdr role" % (path, exc)
    own = kernel is None
    try:
        if own:
            kernel = Kernel()
    except ImportError as exc:
        return False, "replication not checked: pyroute2 is missing (%s); install python3-pyroute2" % exc
    try:
        return True, check(expected, kernel)
    except NotInPlace as exc:
        return False, "replication not in place: %s" % exc
    except Exception as exc:  # netlink or an unreadable expectation: do not claim the rules are fine
        return False, "replication not checked: %s: %s" % (type(exc).__name__, exc)
    finally:
        if own:
            kernel.close()


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
        except (IOError, OSError):
            continue
    return False


def write_state(path, value):
    tmp = path + ".tmp"
    with open(tmp, "w") as handle:
        handle.write("%d\n" % value)
    os.rename(tmp, path)


def watch(path, state_file, interval, fall, rise, ports):
    """Check every interval seconds and keep state_file at 0 (healthy) or 1 (failed) for keepalived's
    vrrp_track_file: one long-lived process instead of a Python start (and a pyroute2 import) per check.
    fall failures in a row make it 1, rise successes in a row make it 0 again. It starts from the file's value
    (a restart keeps the verdict); no file (after a boot) means failed."""
    try:
        with open(state_file) as handle:
            healthy = handle.read().strip() == "0"
    except (IOError, OSError):
        healthy = False
    streak, last = 0, None
    write_state(state_file, 0 if healthy else 1)
    kernel = None
    while True:
        started = time.time()
        if kernel is None:
            try:
                kernel = Kernel()
            except Exception as exc:  # no pyroute2, no netlink: failed, and tell why
                ok, why = False, "replication not checked: %s: %s" % (type(exc).__name__, exc)
                kernel = None
        if kernel is not None:
            ok, why = check_once(path, kernel)
            if not ok and "not checked" in why:
                kernel.close()   # a fresh socket next time
                kernel = None
        if ok:
            for port in ports:
                if not listening(port):
                    ok, why = False, "syslog bridge not listening on tcp/%d" % port
                    break
        reason = "healthy" if ok else why
        streak = streak + 1 if ok != healthy else 0
        if ok != healthy and streak >= (rise if ok else fall):
            healthy, streak = ok, 0
            write_state(state_file, 0 if healthy else 1)
        if reason != last:
            sys.stderr.write("%s%s\n" % (reason, "" if ok == healthy else " (not yet counted)"))
            sys.stderr.flush()
            last = reason
        time.sleep(max(0.0, interval - (time.time() - started)))


def main(argv):
    path = EXPECTED
    verbose = False
    state_file, interval, fall, rise, ports = None, 1.0, 2, 2, []
    args = list(argv)
    try:
        while args:
            arg = args.pop(0)
            if arg in ("-v", "--verbose"):
                verbose = True
            elif arg in ("-e", "--expected") and args:
                path = args.pop(0)
            elif arg == "--watch" and args:
                state_file = args.pop(0)
            elif arg == "--interval" and args:
                interval = float(args.pop(0))
            elif arg == "--fall" and args:
                fall = int(args.pop(0))
            elif arg == "--rise" and args:
                rise = int(args.pop(0))
            elif arg == "--listen-port" and args:
                ports.append(int(args.pop(0)))
            elif arg in ("-h", "--help"):
                print(HELP)
                return 0
            else:
                raise ValueError(arg)
    except ValueError:
        sys.stderr.write("usage: check-replication [-v] [--expected FILE]\n"
                         "       check-replication --watch STATE_FILE [--interval S] [--fall N] [--rise N]"
                         " [--listen-port PORT]... [--expected FILE]\n")
        return 2
    if state_file:
        watch(path, state_file, interval, fall, rise, ports)
        return 1
    ok, report = check_once(path)
    if not ok:
        sys.stderr.write(report + "\n")
        return 1
    for port in ports:
        if not listening(port):
            sys.stderr.write("syslog bridge not listening on tcp/%d\n" % port)
            return 1
    if verbose:
        for line in report:
            print(line)
        print("replication in place")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
