# -*- coding: utf-8 -*-
# Copyright: (c) 2026, logfwdr developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host side: links, routes, neighbours, reading and writing tc objects.

Everything goes through pyroute2's netlink socket; nothing runs `tc`.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import ipaddress
import gzip
import os
import select
import socket
import struct
import time

from ansible_collections.netops.logfwdr.plugins.module_utils.tc import codec, layout, model

try:
    from pyroute2 import IPRoute
    from pyroute2.netlink import (NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_ECHO, NLM_F_EXCL, NLM_F_REPLACE,
                                  NLM_F_REQUEST)
    from pyroute2.netlink.exceptions import NetlinkError
    from pyroute2.netlink.rtnl import (RTM_DELQDISC, RTM_DELTFILTER, RTM_GETQDISC, RTM_GETTFILTER,
                                       RTM_NEWQDISC, RTM_NEWTFILTER)
except ImportError:  # reported by the module through codec.HAS_PYROUTE2
    NetlinkError = OSError

# Filters attach to the ingress hook through this parent whether the device
# has an `ingress` or a `clsact` qdisc.
INGRESS_HOOK = 0xFFFFFFF2

# neighbour states: confirmed ones are used as they are; unconfirmed ones (the MAC may have changed since the
# kernel last heard from the host) are confirmed with an ARP request first
NUD_REACHABLE, NUD_STALE, NUD_DELAY, NUD_PROBE, NUD_NOARP, NUD_PERMANENT = 0x02, 0x04, 0x08, 0x10, 0x40, 0x80
NUD_CONFIRMED = NUD_REACHABLE | NUD_NOARP | NUD_PERMANENT
NUD_UNCONFIRMED = NUD_STALE | NUD_DELAY | NUD_PROBE

ETH_P_ARP = 0x0806


def parse_arp(data):
    """An Ethernet ARP frame -> (op, sender MAC, sender IPv4, target IPv4), or None."""
    if len(data) < 42 or data[12:14] != b"\x08\x06" or data[14:20] != b"\x00\x01\x08\x00\x06\x04":
        return None
    op = struct.unpack("!H", data[20:22])[0]
    return (op, codec.mac_str(data[22:28]), socket.inet_ntoa(data[28:32]), socket.inet_ntoa(data[38:42]))


ETH_P_IPV6 = 0x86DD


def _inet_csum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def neighbour_solicitation(src_mac, src_ip, target):
    """An NDP Neighbour Solicitation frame for IPv6 `target`, to its solicited-node multicast address (RFC 4861
    4.3), from `src_ip` (the device's link-local address; "::" sends no source link-layer option)."""
    tgt = socket.inet_pton(socket.AF_INET6, target)
    dst = socket.inet_pton(socket.AF_INET6, "ff02::1:ff00:0")[:13] + tgt[13:]
    src = socket.inet_pton(socket.AF_INET6, src_ip)
    icmp = struct.pack("!BBHI", 135, 0, 0, 0) + tgt
    if src_ip != "::":
        icmp += struct.pack("!BB", 1, 1) + src_mac
    check = _inet_csum(src + dst + struct.pack("!IxxxB", len(icmp), 58) + icmp)
    icmp = icmp[:2] + struct.pack("!H", check) + icmp[4:]
    ip = struct.pack("!IHBB", 0x60000000, len(icmp), 58, 255) + src + dst
    return b"\x33\x33" + dst[12:] + src_mac + b"\x86\xdd" + ip + icmp


def parse_na(data):
    """An Ethernet frame holding an NDP Neighbour Advertisement -> (target IPv6, MAC), or None.  The MAC is the
    target link-layer option's, else the frame's source."""
    if len(data) < 78 or data[12:14] != b"\x86\xdd" or data[20] != 58 or data[54] != 136:
        return None
    target = socket.inet_ntop(socket.AF_INET6, data[62:78])
    mac, opts = data[6:12], data[78:]
    while len(opts) >= 8 and opts[1]:
        if opts[0] == 2:
            mac = opts[2:8]
        opts = opts[8 * opts[1]:]
    return (target, codec.mac_str(mac))


class KernelError(Exception):
    pass


class _Link(dict):
    """name and ifindex at once; "mac" and "up" read with one RTM_GETLINK on first use (a run that
    names 256 tool ports needs only their ifindexes, and decoding every link costs more than the run)."""

    _LAZY = ("mac", "up")

    def __init__(self, kern, name, ifindex):
        dict.__init__(self, name=name, ifindex=ifindex)
        self._kern = kern

    def _load(self):
        if "mac" in self:
            return
        mac, up = "", False
        try:
            for msg in self._kern.ipr.get_links(self["ifindex"]):
                mac, up = msg.get_attr("IFLA_ADDRESS") or "", bool(msg["flags"] & 1)
        except NetlinkError:
            pass  # gone since the names were read: no MAC, down
        dict.update(self, mac=mac, up=up)

    def __getitem__(self, key):
        if key in self._LAZY:
            self._load()
        return dict.__getitem__(self, key)

    def get(self, key, default=None):
        if key in self._LAZY:
            self._load()
        return dict.get(self, key, default)


class Kernel(model.Resolver):
    def __init__(self, arp_timeout=1.0):
        codec.register()
        self.ipr = IPRoute()
        # pyroute2 decodes dumped filters with its own tcmsg, which has no
        # TCA_CHAIN: every filter would read as chain 0.  Decode with ours.
        self.ipr.marshal.msg_map[RTM_NEWTFILTER] = codec.tcmsg
        status = getattr(self.ipr, "status", None)
        # pyroute2 0.9.x's synchronous nlm_request reads a key it never sets
        if status is not None and hasattr(status, "setdefault"):
            try:
                status.setdefault("nlm_generator", False)
            except Exception:  # pragma: no cover
                pass
        self.arp_timeout = arp_timeout
        self._links = None
        self._roots = {}  # (ifindex, priority, chain) -> the classifier's root table, while it lives

    def close(self):
        self.ipr.close()

    # ---- netlink plumbing ----
    def request(self, msg, msg_type, flags):
        return list(self.ipr.nlm_request(msg, msg_type=msg_type, msg_flags=flags))

    # ---- links, routes, neighbours (model.Resolver) ----
    def links(self, refresh=False):
        """Every link's name and ifindex (one cheap call); a link's MAC address is read when asked for."""
        if self._links is None or refresh:
            self._links = dict((name, _Link(self, name, index)) for index, name in socket.if_nameindex())
        return self._links

    def link(self, name):
        return self.links().get(name)

    def link_names(self):
        return dict((v["ifindex"], k) for k, v in self.links().items())

    def route(self, address):
        try:
            routes = self.ipr.route("get", dst=address, family=socket.AF_INET6 if ":" in address else socket.AF_INET)
        except NetlinkError:
            return None
        for route in routes:
            oif = route.get_attr("RTA_OIF")
            name = self.link_names().get(oif)
            if name is None or name == "lo" or route["type"] != 1:  # RTN_UNICAST only
                return None
            return {"device": name, "gateway": route.get_attr("RTA_GATEWAY")}
        return None

    def neighbour_entry(self, device, address):
        """(state, MAC) of the kernel's neighbour entry for `address` on `device`, or None."""
        link = self.link(device)
        if link is None:
            return None
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        for neigh in self.ipr.get_neighbours(family=family, ifindex=link["ifindex"]):
            if neigh.get_attr("NDA_DST") == address and neigh["ifindex"] == link["ifindex"]:
                return (neigh["state"], neigh.get_attr("NDA_LLADDR"))
        return None

    def neighbour(self, device, address):
        entry = self.neighbour_entry(device, address)
        if entry is not None and entry[0] & NUD_CONFIRMED and entry[1]:
            return entry[1]
        # unknown, failed, or STALE/DELAY/PROBE (not heard from lately: a replaced NIC keeps its old entry)
        return self.arp_resolve(device, address)

    def subnets(self, name, family=4):
        link = self.link(name)
        if link is None:
            return []
        nets = []
        for addr in self.ipr.get_addr(family=socket.AF_INET6 if family == 6 else socket.AF_INET,
                                      index=link["ifindex"]):
            net = ipaddress.ip_network(u"%s/%d" % (addr.get_attr("IFA_ADDRESS"), addr["prefixlen"]), strict=False)
            if not net.is_link_local:  # fe80::/64 is on every IPv6 link: no exporter is meant by it
                nets.append(str(net))
        return sorted(set(nets), key=layout.ip_sort_key)

    def _source_address(self, ifindex):
        for addr in self.ipr.get_addr(family=socket.AF_INET, index=ifindex):
            return addr.get_attr("IFA_ADDRESS")
        return "0.0.0.0"

    def _link_local(self, ifindex):
        best = "::"
        for addr in self.ipr.get_addr(family=socket.AF_INET6, index=ifindex):
            address = addr.get_attr("IFA_ADDRESS")
            if address and ipaddress.IPv6Address(u"%s" % address).is_link_local:
                return address
            best = address or best
        return best

    def arp_request(self, device, address):
        """A broadcast ARP request frame for `address` from `device` (for an IPv6 address, a Neighbour
        Solicitation), or None without such a device."""
        link = self.link(device)
        if link is None or not link["mac"]:
            return None
        src_mac = codec.mac_bytes(link["mac"])
        if ":" in address:
            return neighbour_solicitation(src_mac, self._link_local(link["ifindex"]), address)
        src_ip = socket.inet_aton(self._source_address(link["ifindex"]))
        return (b"\xff" * 6 + src_mac + b"\x08\x06"
                + struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1)
                + src_mac + src_ip + b"\0" * 6 + socket.inet_aton(address))

    def arp_resolve(self, device, address, tries=3, timeout=None):
        """Ask for `address` on `device` with ARP requests and read the reply.

        Only ARP leaves the host: no datagram is sent to the collector.
        """
        frame = self.arp_request(device, address)
        if frame is None:
            return None
        timeout = self.arp_timeout if timeout is None else timeout
        six = ":" in address
        proto = ETH_P_IPV6 if six else ETH_P_ARP
        want = str(ipaddress.ip_address(u"%s" % address))
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(proto))
        try:
            sock.bind((device, proto))
            for dummy in range(tries):
                sock.send(frame)
                deadline = time.time() + timeout / tries
                while time.time() < deadline:
                    ready = select.select([sock], [], [], max(0.0, deadline - time.time()))[0]
                    if not ready:
                        break
                    data = sock.recv(2048)
                    if six:
                        na = parse_na(data)
                        if na is not None and str(ipaddress.ip_address(u"%s" % na[0])) == want:
                            return na[1]
                        continue
                    arp = parse_arp(data)
                    if arp is not None and arp[0] == 2 and arp[2] == address:
                        return arp[1]
        finally:
            sock.close()
        return None

    # ---- kernel features ----
    def missing_features(self, kinds):
        """Kinds whose module is neither loaded, built in, nor loadable.

        Read-only: /sys/module, /proc/config.gz and /lib/modules are
        consulted; nothing is loaded or created.  Unknown answers count as
        present (the kernel then has the last word and the change is undone).
        """
        release = os.uname()[2]
        config = None
        try:
            with gzip.open("/proc/config.gz", "rt") as handle:
                config = handle.read()
        except (IOError, OSError):
            pass
        modules_text = ""
        for name in ("modules.builtin", "modules.dep"):
            try:
                with open(os.path.join("/lib/modules", release, name)) as handle:
                    modules_text += handle.read()
            except (IOError, OSError):
                pass
        missing = []
        for kind in sorted(kinds):
            module, option = layout.KERNEL_NEEDS[kind]
            if os.path.isdir(os.path.join("/sys/module", module)):
                continue
            if "/%s.ko" % module in modules_text:
                continue
            if config is not None and "\n%s=y" % option in config:
                continue
            if config is not None or modules_text:
                missing.append((kind, module, option))
        return missing

    # ---- reading tc state ----
    def ingress_hooks(self):
        """ifindexes of the devices with an ingress or clsact qdisc (one dump)."""
        msg = codec.build_qdisc_msg(0)
        msg["attrs"] = []
        return set(q["index"] for q in self.request(msg, RTM_GETQDISC, NLM_F_REQUEST | NLM_F_DUMP)
                   if q.get_attr("TCA_KIND") in ("ingress", "clsact"))

    def filters(self, ifindex):
        msg = codec.build_filter_msg(ifindex, 0, 0, 0)
        msg["parent"] = INGRESS_HOOK
        msg["info"] = 0
        msg["attrs"] = []
        try:
            dumped = self.request(msg, RTM_GETTFILTER, NLM_F_REQUEST | NLM_F_DUMP)
        except NetlinkError as exc:
            if exc.code in (errno.EINVAL, errno.ENOENT, errno.EOPNOTSUPP):
                return []  # no ingress hook on this device
            raise
        return [f for f in (codec.decode_filter(m) for m in dumped) if f]

    def get_filter(self, ifindex, priority, chain, handle, family=4):
        """One u32 node or table by its handle (RTM_GETTFILTER), or None when the kernel has none; `family`
        picks the u32 instance (6: protocol ipv6, at the next priority)."""
        msg = codec.build_filter_msg(ifindex, layout.family_priority(priority, family), handle, chain,
                                     protocol=layout.ETH_P[family])
        msg["parent"] = INGRESS_HOOK
        try:
            found = self.request(msg, RTM_GETTFILTER, NLM_F_REQUEST | NLM_F_ECHO)
        except NetlinkError as exc:
            if exc.code in (errno.ENOENT, errno.EINVAL):
                return None
            raise
        decoded = [f for f in (codec.decode_filter(m) for m in found) if f and f["handle"] == handle]
        return decoded[0] if decoded else None

    def owns(self, ifindex, priority, chain):
        return any(f["prio"] == priority and f["chain"] == chain for f in self.filters(ifindex))

    def snapshot(self, names):
        """Everything on the devices' ingress hooks, without counters or action indexes: what a
        rollback must give back, compared as a whole."""
        hooks = self.ingress_hooks()
        out = {}
        for name in sorted(names):
            link = self.link(name)
            if link is None:
                continue
            filters = self.filters(link["ifindex"]) if link["ifindex"] in hooks else []
            out[name] = canon_filters(link["ifindex"] in hooks, filters)
        return out

    # ---- writing ----
    def _root_ht(self, op, priority, chain):
        key = (op["ifindex"], priority, chain)
        if key not in self._roots:
            root = layout.root_htid(self.filters(op["ifindex"]), priority, chain)
            if root is None:
                raise KernelError("no root hash table at priority %d on %s" % (priority, op["dev"]))
            self._roots[key] = root
        return self._roots[key]

    def execute(self, op, priority, chain):
        """Carry out one planner operation; returns the concrete op (handles resolved)."""
        kind = op["op"]
        family = op.get("family", 4)
        priority = layout.family_priority(priority, family)
        proto = layout.ETH_P[family]
        ack = NLM_F_REQUEST | NLM_F_ACK
        ifindex = op["ifindex"]
        if kind == "qdisc_add":
            self.request(codec.build_qdisc_msg(ifindex), RTM_NEWQDISC, ack | NLM_F_CREATE | NLM_F_EXCL)
        elif kind == "qdisc_del":
            self.request(codec.build_qdisc_msg(ifindex), RTM_DELQDISC, ack)
        elif kind in ("ht_add", "ht_del"):
            msg = codec.build_filter_msg(ifindex, priority, op["htid"] << 20, chain,
                                         {"divisor": op.get("divisor", 1)} if kind == "ht_add" else None,
                                         protocol=proto)
            msg["parent"] = INGRESS_HOOK
            if kind == "ht_add":
                self.request(msg, RTM_NEWTFILTER, ack | NLM_F_CREATE | NLM_F_EXCL)
            else:
                self._delete(msg, ifindex, priority, chain)
        elif kind in ("node_add", "node_replace", "node_del"):
            handle = op["handle"]
            if isinstance(handle, tuple):
                ht, nodeid = handle
                if ht == layout.ROOT:
                    ht = self._root_ht(op, priority, chain)
                handle = layout.node_handle(ht, nodeid)
                op = dict(op, handle=handle)
            if kind == "node_del":
                msg = codec.build_filter_msg(ifindex, priority, handle, chain, protocol=proto)
                msg["parent"] = INGRESS_HOOK
                self._delete(msg, ifindex, priority, chain)
            else:
                # TCA_U32_HASH names the table and the bucket the node goes in
                node = dict(op["spec"], ht=handle & 0xFFFFF000)
                msg = codec.build_filter_msg(ifindex, priority, handle, chain, node, protocol=proto)
                msg["parent"] = INGRESS_HOOK
                flags = NLM_F_CREATE | (NLM_F_EXCL if kind == "node_add" else NLM_F_REPLACE)
                self.request(msg, RTM_NEWTFILTER, ack | flags)
        elif kind == "tp_del":
            self._roots.pop((ifindex, priority, chain), None)
            msg = codec.build_filter_msg(ifindex, priority, 0, chain, protocol=proto)
            msg["parent"] = INGRESS_HOOK
            self._delete(msg, ifindex, priority, chain)
        else:
            raise KernelError("unknown operation %r" % kind)
        return op

    def _delete(self, msg, ifindex, priority, chain):
        """RTM_DELTFILTER for a module-owned object.

        cls_u32 frees a deleted node after an RCU grace period and only then
        drops its reference on the hash table it links to, so deleting that
        table right after its linking node fails with EBUSY for a moment:
        retry.  Deleting the last node of a u32 instance that shares its hash
        tables with no other instance makes the kernel remove the whole
        instance; the deletes that follow then find nothing, as they wanted.
        """
        deadline = time.time() + 2.0
        delay = 0.002
        while True:
            try:
                self.request(msg, RTM_DELTFILTER, NLM_F_REQUEST | NLM_F_ACK)
                return
            except NetlinkError as exc:
                if exc.code == errno.EBUSY and time.time() < deadline:
                    time.sleep(delay)
                    delay = min(delay * 2, 0.05)
                    continue
                if exc.code in (errno.ENOENT, errno.EINVAL) and not any(
                        f["prio"] == priority and f["chain"] == chain for f in self.filters(ifindex)):
                    return
                raise

    def apply(self, ops, priority, chain):
        """Apply ops in order and return them with handles resolved. On the first failure raise ApplyError
        holding the ones already applied: undoing them is the runner's (runner._restore)."""
        done = []
        for op in ops:
            try:
                done.append(self.execute(op, priority, chain))
            except (NetlinkError, KernelError, OSError) as exc:
                raise ApplyError(op, exc, done)
        return done


def canon_filters(hook, filters):
    return (hook, sorted(_canon_filter(f) for f in filters))


def _canon_filter(f):
    actions = tuple(layout.canon_action(a) for a in f.get("actions", []))
    return repr((f["prio"], f["chain"], f["protocol"], f["kind"], f["handle"], f.get("classifier"),
                 f.get("divisor"), tuple(f.get("keys", ())), f.get("hash"), f.get("link"), actions))


class ApplyError(Exception):
    def __init__(self, op, cause, done):
        self.op = op
        self.cause = cause
        self.done = done  # the operations applied before op, handles resolved
        super(ApplyError, self).__init__(str(cause))
