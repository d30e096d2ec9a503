# -*- coding: utf-8 -*-
# Copyright: (c) 2026, logfwdr developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The kernel layout: what the module writes on each ingress device, and how to read it back.

Every shape is defined here once, each encoder beside its decoder (and, for actions, beside
action_text, how `tc` prints it): the planner, the renderer, the kernel I/O layer and the host
program all use these functions.

Layout on each ingress device (one u32 classifier instance the module owns,
at ``priority`` in ``chain``):

* dispatch nodes per port in the classifier's root hash table: each matches
  IPv4, UDP, first fragment, destination port, a frame sent to the ingress
  device's own MAC (never broadcast, multicast or another host's frames), one
  of the device's accepted destination addresses and one of its exporter
  source prefixes (one node per address x prefix), and links to the port's
  table; its own action (gact drop) decides what happens to the original;
* a hash table per port holding an optional gate node first (police: packets
  over the port's cap are dropped before any copy), then one node per
  destination (one per source prefix when the destination has an allow-list).
  Every destination node ends with ``mirred ... continue`` so the next node
  runs, and carries the destination's name in the mirred action's cookie.

Ownership: every action the module creates carries a cookie that starts with
MARK.  A table is the module's when it holds a marked node; a dispatch node
is the module's when it links to such a table.  Anything else at the
module's priority and chain is foreign: never changed, never deleted.

Nodes in a table run in node-id order.  Forward destinations rewrite the
packet in place, so mirror destinations (which must see the original) get
the lowest ids, then forward destinations, then those that also rewrite the
UDP port (they would hide the port from nothing, but keep the order
predictable).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import binascii
import hashlib
import ipaddress

from ansible_collections.netops.logfwdr.plugins.module_utils.tc.codec import (
    COOKIE_MAX, TC_ACT_PIPE, TC_ACT_RECLASSIFY, TC_ACT_UNSPEC, TCA_CT_ACT_CLEAR)


# The ownership mark: the first byte of every cookie the module writes (a byte no printable name starts with).
MARK = b"\xf1"
NAME_MAX = COOKIE_MAX - len(MARK)  # the mark and the name live in the mirred cookie
GATE_COOKIE = MARK + b"\x00cap"  # the per-port cap (a name has no NUL)
# The kernel gives a filter added without a priority 49152, then 49151, ...: stay clear of that range.
DEFAULT_PRIORITY = 5140
SAMPLE_MAX = 0xFFFF  # a destination's 1-in-N: tc_gact_p.pval is a u16

# collector pools: a port-table node links to the pool's hash table, whose bucket is picked by the last octet of
# the exporter's address (u32 hashkey); each bucket holds one node copying to the member that bucket maps to
POOL_MARK = MARK + b"\x01"  # the pool marker's cookie: the mark, 0x01, the pool's name
POOL_NAME_MAX = COOKIE_MAX - len(POOL_MARK)
POOL_BUCKETS = 256  # u32's largest divisor
POOL_HASH = (0x000000FF, 12)  # (hmask, hoff): the last octet of the IPv4 source address
POOL_NODE = 0x001  # the node id of every bucket's one node
POOL_MARKER = 0xFFF  # the node id of the pool's marker, in bucket 0
LOOPBACK_IFINDEX = 1  # lo: in every network namespace, always 1
POOL_MEMBERS_MAX = 16  # with 256 buckets each member wins some (a 17th would still, very likely; keep it plain)

# reassembly (a device's `fragments: reassemble`): one root-table node per bit of the IPv4 flags/fragment-offset
# field that makes a packet a fragment (MF, then the 13 offset bits), after every dispatch node; each runs ct
# (reassembly: a fragment that completes no datagram is stolen) and ct clear (drops the conntrack entry ct made),
# which reclassifies the whole datagram from the first filter, where its port's dispatch node takes it
FRAG_COOKIE = MARK + b"\x02frag"
FRAG_BITS = [0x2000] + [1 << i for i in range(13)]
FRAG_NODE_IDS = list(range(0x1000 - len(FRAG_BITS), 0x1000))  # 0xff2-0xfff: after every dispatch node
DISPATCH_IDS = (0x001, FRAG_NODE_IDS[0] - 1)
FRAGMENT_MODES = ("first", "reassemble")

# node-id ranges per node class (see module docstring); nodes of a table run in id order
CLASS_GATE, CLASS_MIRROR, CLASS_FORWARD, CLASS_FORWARD_PORT = 3, 0, 1, 2
NODE_RANGES = {
    CLASS_GATE: (0x001, 0x001),
    CLASS_MIRROR: (0x002, 0x3FF),
    CLASS_FORWARD: (0x400, 0xBFF),
    CLASS_FORWARD_PORT: (0xC00, 0xFFF),
}
HT_RANGE = (0x100, 0x7FF)  # port hash table ids we allocate from

# kernel pieces each feature needs: (module, config option)
KERNEL_NEEDS = {
    "ingress": ("sch_ingress", "CONFIG_NET_SCH_INGRESS"),
    "u32": ("cls_u32", "CONFIG_NET_CLS_U32"),
    "mirred": ("act_mirred", "CONFIG_NET_ACT_MIRRED"),
    "skbmod": ("act_skbmod", "CONFIG_NET_ACT_SKBMOD"),
    "pedit": ("act_pedit", "CONFIG_NET_ACT_PEDIT"),
    "csum": ("act_csum", "CONFIG_NET_ACT_CSUM"),
    "police": ("act_police", "CONFIG_NET_ACT_POLICE"),
    "gact": ("act_gact", "CONFIG_NET_ACT_GACT"),
    "ct": ("act_ct", "CONFIG_NET_ACT_CT"),
}


# IPv6: a second u32 instance, protocol ipv6, at the next priority (one priority holds one protocol); it shares
# the qdisc's hash table ids with the IPv4 instance, so both allocate from one used set
ETH_P = {4: 0x0800, 6: 0x86DD}
FAMILIES = (4, 6)
OFF6_VER, OFF6_NEXT, OFF6_SRC, OFF6_DST, OFF6_PORTS = 0, 4, 8, 24, 40
POOL_HASH6 = (0x000000FF, 20)  # the last byte of the IPv6 source address (bytes 20-23 are its last word)
ANY_SOURCE6 = "::/0"


def unicast(value):
    """A unicast IPv4 or global IPv6 address, or None (multicast, unspecified, broadcast, link-local, not one)."""
    try:
        parsed = ipaddress.ip_address(u"%s" % value)
    except ValueError:
        return None
    if parsed.is_multicast or parsed.is_unspecified or str(parsed) == "255.255.255.255" or \
            (parsed.version == 6 and parsed.is_link_local):
        return None
    return parsed


def family_priority(priority, family):
    """The priority of a family's u32 instance: IPv4 at `priority`, IPv6 at the one after it."""
    return priority + (1 if family == 6 else 0)


def family_of(text):
    """4 or 6 for an address or prefix given as text."""
    return ipaddress.ip_network(u"%s" % text, strict=False).version


def family_view(dev, family):
    """The part of a validated device one family's classifier carries (nothing for a family the device does not
    copy): that family's addresses and sources; mirror destinations whose sources (if any) include a prefix of it,
    and forward destinations whose collector address is of it; each port's original as model set it per family."""
    if family not in (dev.get("families") or [4]):
        return dict(dev, ports=[], addresses=[], sources=[])
    ports = []
    for port in dev.get("ports") or []:
        dests = []
        for dest in port["destinations"]:
            if dest["mode"] == "forward" and family_of(dest["address"]) != family:
                continue  # a collector gets the packets of its own address family
            if dest.get("sources"):
                mine = [s for s in dest["sources"] if family_of(s) == family]
                if not mine:
                    continue
                dest = dict(dest, sources=mine)
            dests.append(dest)
        if dests:
            # the original is dropped where a forward destination rewrites it (model: originals)
            ports.append(dict(port, destinations=dests, original=(port.get("originals") or {}).get(
                family, port["original"])))
    out = dict(dev, ports=ports, addresses=[a for a in dev.get("addresses") or [] if family_of(a) == family],
               sources=[s for s in dev.get("sources") or [] if family_of(s) == family])
    if family == 6:
        out["fragments"] = "first"  # no IPv6 reassembly nodes (a Fragment header is an extension header)
    return out


def port_keys6(port):
    """u32 keys matching IPv6/UDP to `port` with no extension header (so never a fragment: the Fragment header is
    one)."""
    return [
        (0xF0000000, 0x60000000, OFF6_VER),
        (0x0000FF00, 0x00001100, OFF6_NEXT),  # next header 17
        (0x0000FFFF, port & 0xFFFF, OFF6_PORTS),
    ]


def _words6(net, off):
    """u32 keys for an IPv6 prefix at `off`: one per 32-bit word its mask touches."""
    mask, value = int(net.netmask), int(net.network_address)
    keys = []
    for i in range(4):
        shift = 96 - 32 * i
        m = (mask >> shift) & 0xFFFFFFFF
        if m:
            keys.append((m, (value >> shift) & 0xFFFFFFFF, off + 4 * i))
    return keys


def _net6_of(keys, off):
    words = dict((o, (m, v)) for m, v, o in keys if off <= o < off + 16)
    if not words:
        return None
    mask = value = 0
    for i in range(4):
        m, v = words.get(off + 4 * i, (0, 0))
        mask |= m << (96 - 32 * i)
        value |= v << (96 - 32 * i)
    return ipaddress.IPv6Network((value, bin(mask).count("1")))


def is_ipv6_keys(keys):
    return (0xF0000000, 0x60000000, OFF6_VER) in [(m, v & m, o) for m, v, o in keys]


# u32 key offsets (bytes from the IPv4 header, IHL 5 assumed)
OFF_VER_IHL, OFF_FRAG, OFF_PROTO, OFF_SRC, OFF_DST, OFF_PORTS = 0, 4, 8, 12, 16, 20
# the Ethernet destination address, before the IPv4 header on ingress (as `tc ... match ether dst` writes it)
OFF_ETH_DST_HI, OFF_ETH_DST_LO = -16, -12
ANY_SOURCE = "0.0.0.0/0"


def port_keys(port, whole=False):
    """u32 keys (mask, value, offset) matching IPv4/UDP first fragments to `port`; with `whole`, only
    datagrams that are not fragments (MF clear too): first fragments then go to reassembly."""
    return [
        (0xFF000000, 0x45000000, OFF_VER_IHL),  # version 4, no IP options
        (0x00003FFF if whole else 0x00001FFF, 0x00000000, OFF_FRAG),  # fragment offset 0: UDP header present
        (0x00FF0000, 0x00110000, OFF_PROTO),  # protocol 17
        (0x0000FFFF, port & 0xFFFF, OFF_PORTS),  # destination port
    ]


def port_of_keys(keys):
    for mask, value, off in keys:
        # an IPv4 source prefix never has the mask 0x0000ffff at 20 (prefix masks start at the top bit)
        if off in (OFF_PORTS, OFF6_PORTS) and mask == 0x0000FFFF:
            return value
    return None


def source_keys(prefix):
    if prefix is None:
        return [(0, 0, 0)]  # match everything, as `match u32 0 0` does
    net = ipaddress.ip_network(prefix)
    if net.version == 6:
        return _words6(net, OFF6_SRC) or [(0, 0, 0)]
    return [(int(net.netmask), int(net.network_address), OFF_SRC)]


def source_of_keys(keys, family=4):
    if family == 6 or is_ipv6_keys(keys):
        net = _net6_of(keys, OFF6_SRC)
        return str(net) if net is not None else None
    for mask, value, off in keys:
        if off == OFF_SRC:
            net = ipaddress.ip_network((value, bin(mask).count("1")))
            return str(net)
    return None


def mac_keys(mac):
    """u32 keys matching frames whose Ethernet destination is `mac`."""
    raw = bytearray(int(b, 16) for b in mac.split(":"))
    return [(0x0000FFFF, (raw[0] << 8) | raw[1], OFF_ETH_DST_HI),
            (0xFFFFFFFF, (raw[2] << 24) | (raw[3] << 16) | (raw[4] << 8) | raw[5], OFF_ETH_DST_LO)]


def mac_of_keys(keys):
    hi = [v for m, v, o in keys if o == OFF_ETH_DST_HI and m == 0x0000FFFF]
    lo = [v for m, v, o in keys if o == OFF_ETH_DST_LO and m == 0xFFFFFFFF]
    if not hi or not lo:
        return None
    raw = [(hi[0] >> 8) & 0xFF, hi[0] & 0xFF] + [(lo[0] >> s) & 0xFF for s in (24, 16, 8, 0)]
    return ":".join("%02x" % b for b in raw)


def address_of_keys(keys):
    if is_ipv6_keys(keys):
        net = _net6_of(keys, OFF6_DST)
        return str(net.network_address) if net is not None and net.prefixlen == 128 else None
    for mask, value, off in keys:
        if off == OFF_DST and mask == 0xFFFFFFFF:
            return str(ipaddress.IPv4Address(value))
    return None


def is_ipv6(value):
    """True if `value` is an IPv6 address, interface or prefix: where only IPv4 fits (the VRRP adverts' addresses),
    an operator who writes one is told where the IPv6 one goes, not only that it is not IPv4."""
    try:
        ipaddress.IPv6Interface(u"%s" % value)
    except (ipaddress.AddressValueError, ipaddress.NetmaskValueError, ValueError):
        return False
    return True


def ip_sort_key(text):
    net = ipaddress.ip_network(u"%s" % text, strict=False)
    return (int(net.network_address), net.prefixlen)


def mark_cookie(name):
    return MARK + name.encode("ascii")


def is_marked(node):
    return any(bytes(a.get("cookie") or b"").startswith(MARK) for a in node.get("actions", []))


def destination_class(dest):
    if dest["mode"] == "mirror":
        return CLASS_MIRROR
    return CLASS_FORWARD_PORT if dest.get("port") else CLASS_FORWARD


def destination_actions(dest):
    """The action list of one destination node, in the vocabulary of codec."""
    actions = []
    if dest.get("sample"):
        # every Nth packet pipes on to this destination's copy; the others end the node's actions with
        # "continue", so the next destination's node runs (the kernel counts per action, so per destination)
        actions.append({"kind": "gact", "control": TC_ACT_UNSPEC, "sample": dest["sample"],
                        "sample_control": TC_ACT_PIPE})
    if dest.get("rate_limit"):
        actions.append({"kind": "police", "rate": dest["rate_limit"], "burst": dest["burst"]})
    if dest["mode"] == "forward":
        actions.append({"kind": "skbmod", "dmac": dest["next_hop_mac"], "smac": dest["source_mac"]})
        # pedit sets the whole destination address (and port): every forward node overwrites what the
        # node before it wrote; csum then fixes the IPv4 header and UDP checksums
        actions.append({"kind": "pedit", "address": dest["address"], "port": dest.get("port")})
        # IPv6 has no header checksum; its UDP checksum (over the pseudo-header) is required and act_csum fixes it
        actions.append({"kind": "csum", "update_flags": 16 if ":" in dest["address"] else 17})
    actions.append({"kind": "mirred", "eaction": 2, "ifindex": dest["ifindex"],
                    "control": -1, "cookie": mark_cookie(dest["name"])})
    return actions


def destination_nodes(dest):
    """One node spec per allow-listed prefix (or one matching everything)."""
    prefixes = dest.get("sources") or [None]
    return [{"keys": source_keys(p), "actions": destination_actions(dest)} for p in prefixes]


def have_destination(nodes, link_names, family=4):
    """The inverse of destination_nodes: module-owned nodes of one destination -> the public (input) shape."""
    first = nodes[0]
    acts = dict((a["kind"], a) for a in first["actions"])
    mirred = acts.get("mirred", {})
    out = {"name": cookie_name(first), "device": link_names.get(mirred.get("ifindex"), mirred.get("ifindex"))}
    if "skbmod" in acts:
        out["mode"] = "forward"
        out["address"] = acts.get("pedit", {}).get("address")
        out["next_hop_mac"] = acts.get("skbmod", {}).get("dmac")
        if acts.get("pedit", {}).get("port"):
            out["port"] = acts["pedit"]["port"]
    else:
        out["mode"] = "mirror"
    sources = [source_of_keys(n["keys"], family) for n in nodes]
    if any(sources):
        out["sources"] = sorted(s for s in sources if s)
    if "police" in acts:
        out["rate_limit"] = acts["police"]["rate"]
        out["burst"] = acts["police"]["burst"]
    if acts.get("gact", {}).get("sample"):
        out["sample"] = acts["gact"]["sample"]
    return out


def action_text(action, link_names):
    """One action as `tc` prints and takes it: the third side of destination_actions and have_destination."""
    kind = action["kind"]
    if kind == "police":
        if action.get("cookie") == GATE_COOKIE:
            return "action police pkts_rate %d pkts_burst %d conform-exceed drop/continue cookie %s" % (
                action["rate"], action["burst"], binascii.hexlify(GATE_COOKIE).decode())
        return "action police pkts_rate %d pkts_burst %d conform-exceed continue/pipe" % (
            action["rate"], action["burst"])
    if kind == "skbmod":
        return "action skbmod set dmac %s set smac %s pipe" % (action["dmac"], action["smac"])
    if kind == "nat":
        return "action nat ingress 0.0.0.0/0 %s pipe" % action["new"]
    if kind == "pedit":
        words = []
        six = ":" in (action.get("address") or "")
        if action.get("address"):
            words.append("munge ip6 dst set %s" % action["address"] if six else "munge ip dst set %s" % action["address"])
        if action.get("port"):
            words.append("munge offset %d u16 set %d" % (42 if six else 22, action["port"]))
        return "action pedit %s pipe" % " ".join(words)
    if kind == "csum":
        return "action csum %sudp pipe" % ("ip4h " if action.get("update_flags", 16) & 1 else "")
    if kind == "ct":
        return "action ct%s %s%s" % (" clear" if action.get("clear") else "",
                                     "reclassify" if action.get("control") == TC_ACT_RECLASSIFY else "pipe",
                                     " cookie %s" % binascii.hexlify(bytes(action["cookie"])).decode()
                                     if action.get("cookie") else "")
    if kind == "gact" and action.get("sample"):
        return "action gact continue random determ pipe %d" % action["sample"]
    if kind == "gact":
        return "action drop%s" % (" cookie %s" % binascii.hexlify(bytes(action["cookie"])).decode()
                                  if action.get("cookie") else "")
    if kind == "mirred":
        cookie = action.get("cookie")
        return "action mirred egress mirror dev %s continue%s" % (
            link_names.get(action["ifindex"], action["ifindex"]),
            " cookie %s" % binascii.hexlify(bytes(cookie)).decode() if cookie else "")
    return "action %s" % kind


def dispatch_nodes(dev, port, family=4):
    """The root-table nodes steering `port` on `dev` into its table: one per accepted
    destination address x exporter prefix, each for frames sent to the device's own MAC."""
    actions = [{"kind": "gact", "control": 2, "cookie": MARK}] if port["original"] == "drop" else []
    six = family == 6
    base = port_keys6(port["port"]) if six else port_keys(port["port"], whole=dev.get("fragments") == "reassemble")
    if dev.get("mac"):
        base = base + mac_keys(dev["mac"])
    nodes = []
    for address in dev.get("addresses") or [None]:
        for prefix in dev.get("sources") or [ANY_SOURCE6 if six else ANY_SOURCE]:
            keys = list(base)
            if address is not None and six:
                keys.extend(_words6(ipaddress.IPv6Network(u"%s/128" % address), OFF6_DST))
            elif address is not None:
                keys.append((0xFFFFFFFF, int(ipaddress.IPv4Address(address)), OFF_DST))
            if prefix not in (ANY_SOURCE, ANY_SOURCE6):
                keys.extend(source_keys(prefix))
            nodes.append({"keys": keys, "actions": list(actions)})
    return nodes


def gate_node(port):
    """The node in front of every copy: packets over the port's cap end here (dropped, counted)."""
    if not port.get("rate_limit"):
        return None
    return {"keys": [(0, 0, 0)], "actions": [{"kind": "police", "rate": port["rate_limit"], "burst": port["burst"],
                                              "control": 2, "conform": -1, "cookie": GATE_COOKIE}]}


def frag_nodes(dev):
    """(node id, spec) of the device's reassembly nodes, or [] (see FRAG_COOKIE): UDP fragments sent to the
    device's MAC; the complete datagram meets the dispatch nodes' address, source and port keys again."""
    if dev.get("fragments") != "reassemble" or not dev.get("ports"):
        return []
    actions = [{"kind": "ct", "control": TC_ACT_PIPE, "clear": False, "cookie": FRAG_COOKIE},
               {"kind": "ct", "control": TC_ACT_RECLASSIFY, "clear": True, "cookie": FRAG_COOKIE}]
    extra = mac_keys(dev["mac"]) if dev.get("mac") else []
    return [(nodeid, {"keys": [(0x00FF0000, 0x00110000, OFF_PROTO), (bit, bit, OFF_FRAG)] + extra,
                      "actions": [dict(a) for a in actions]})
            for nodeid, bit in zip(FRAG_NODE_IDS, FRAG_BITS)]


def is_frag_node(node):
    return any(a["kind"] == "ct" and bytes(a.get("cookie") or b"") == FRAG_COOKIE for a in node.get("actions", []))


def kernel_features(devices):
    """The tc kinds a desired state needs (for the availability check)."""
    kinds = set()
    for dev in [family_view(d, f) for d in devices for f in FAMILIES]:
        if dev["ports"]:
            kinds.update(("ingress", "u32"))
        if frag_nodes(dev):
            kinds.add("ct")
        for port in dev["ports"]:
            if port["original"] == "drop":
                kinds.add("gact")
            if port.get("rate_limit"):
                kinds.add("police")
            for dest in port["destinations"]:
                for node in destination_nodes(dest)[:1]:
                    kinds.update(a["kind"] for a in node["actions"])
    return kinds


# ---- collector pools -------------------------------------------------------

def pool_cookie(name):
    return POOL_MARK + name.encode("ascii")


def pool_name(node):
    """The pool name in a pool marker node's cookie, or None."""
    for action in node.get("actions", []):
        cookie = bytes(action.get("cookie") or b"")
        if action["kind"] == "mirred" and cookie.startswith(POOL_MARK):
            try:
                return cookie[len(POOL_MARK):].decode("ascii")
            except UnicodeDecodeError:
                return None
    return None


def _score(bucket, name):
    return hashlib.sha256(("%d/%s" % (bucket, name)).encode("utf-8")).digest()


def pool_buckets(members):
    """Rendezvous (highest random weight) hashing: bucket -> the member with the highest score for it.

    A member that joins takes only the buckets it now wins; one that leaves (or is pending) gives each of its
    buckets to that bucket's runner-up; no other bucket moves.
    """
    if not members:
        return []
    return [max(members, key=lambda m: (_score(b, m["name"]), m["name"])) for b in range(POOL_BUCKETS)]


def pool_bucket_node(member):
    return {"keys": [(0, 0, 0)], "actions": destination_actions(member)}


def pool_marker_node(name):
    """A node that never matches (IP version 0), in bucket 0 after the bucket's copy: its cookie marks the pool's
    table as the module's and names the pool.  The link node in the port table cannot carry it: u32 runs a link
    node's actions after the linked table, and the only action every kernel has, mirred, would send a copy."""
    return {"keys": [(0xF0000000, 0x00000000, OFF_VER_IHL)],
            "actions": [{"kind": "mirred", "eaction": 2, "ifindex": LOOPBACK_IFINDEX, "control": -1,
                         "cookie": pool_cookie(name)}]}


def pool_link_node(pool_htid, family=4):
    """The port-table node that sends the packet through the pool's hash table; no action, so the port
    table's next node runs after it."""
    return {"keys": [(0, 0, 0)], "link": pool_htid << 20, "hash": POOL_HASH6 if family == 6 else POOL_HASH,
            "actions": []}


# ---- handles, canonical forms, names: reading the kernel back ----------

ROOT = "root"  # placeholder for the classifier's root hash table id


def htid_of(handle):
    return (handle >> 20) & 0xFFF


def nodeid_of(handle):
    return handle & 0xFFF


def node_handle(htid, nodeid, bucket=0):
    return (htid << 20) | ((bucket & 0xFF) << 12) | (nodeid & 0xFFF)


def bucket_of(handle):
    return (handle >> 12) & 0xFF


def is_root_htid(htid):
    """The kernel numbers a classifier's own root hash table from 0x800 up; we allocate below (HT_RANGE)."""
    return bool(htid & 0x800)


def root_htid(filters, priority, chain):
    """The root hash table of the u32 classifier at priority and chain, from decoded filters, or None."""
    roots = [htid_of(f["handle"]) for f in filters
             if f and f["prio"] == priority and f["chain"] == chain and f["kind"] == "ht"
             and is_root_htid(htid_of(f["handle"]))]
    return roots[0] if roots else None


def class_of_nodeid(nodeid):
    for cls, (low, high) in NODE_RANGES.items():
        if low <= nodeid <= high:
            return cls
    return None


# ---- canonical forms: the same shape for decoded and desired objects -----

_DEFAULT_CONTROL = {"gact": 2, "mirred": -1, "police": -1}
_DEFAULT_CONFORM = 3  # pipe: a destination's police lets conforming packets on to its mirred


def canon_action(action):
    kind = action["kind"]
    control = action.get("control", _DEFAULT_CONTROL.get(kind, 3))
    if kind == "mirred":
        cookie = action.get("cookie")
        return (kind, control, action.get("eaction"), action.get("ifindex"), bytes(cookie) if cookie else None)
    if kind == "skbmod":
        return (kind, control, (action.get("dmac") or "").lower(), (action.get("smac") or "").lower())
    if kind == "nat":
        return (kind, control, action.get("new"), action.get("old", "0.0.0.0"),
                action.get("mask", "255.255.255.255"), bool(action.get("egress", False)))
    if kind == "pedit":
        return (kind, control, action.get("address"), action.get("port") or None)
    if kind == "csum":
        return (kind, control, action.get("update_flags", 16))
    if kind == "ct":
        flags = action.get("ct_flags", TCA_CT_ACT_CLEAR if action.get("clear") else 0)
        return (kind, control, flags, action.get("zone", 0), bytes(action.get("cookie") or b"") or None)
    if kind == "police":
        return (kind, control, action.get("conform", _DEFAULT_CONFORM), action.get("rate"), action.get("burst"),
                bytes(action.get("cookie") or b"") or None)
    if kind == "gact":
        return (kind, control, bytes(action.get("cookie") or b"") or None, action.get("sample"),
                action.get("sample_control") if action.get("sample") else None, repr(action.get("probability")))
    return (kind, control)


def canon_node(node):
    keys = tuple((m, v & m, o) for m, v, o in node["keys"])
    hashkey = tuple(node["hash"]) if node.get("hash") and node["hash"][0] else None
    return ((keys, hashkey), node.get("link"), tuple(canon_action(a) for a in node.get("actions", [])))


def cookie_name(node):
    """The destination name in a marked mirred cookie, or None."""
    for action in node.get("actions", []):
        cookie = bytes(action.get("cookie") or b"")
        if action["kind"] == "mirred" and cookie.startswith(MARK) and not cookie.startswith(POOL_MARK):
            try:
                return cookie[len(MARK):].decode("ascii")
            except UnicodeDecodeError:
                return None
    return None


# ---- rollback -------------------------------------------------------------

def inverse(op):
    """The operation that undoes `op` (for rollback), or None."""
    kind = op["op"]
    base = dict((k, v) for k, v in op.items() if k not in ("op", "spec", "old"))
    if kind == "qdisc_add":
        return dict(base, op="qdisc_del")
    if kind == "ht_add":
        return dict(base, op="ht_del")
    if kind == "ht_del":
        return dict(base, op="ht_add")
    if kind == "node_add":
        return dict(base, op="node_del", old=op["spec"])
    if kind == "node_del":
        return dict(base, op="node_add", spec=op["old"])
    if kind == "node_replace":
        return dict(base, op="node_replace", spec=op["old"], old=op["spec"])
    return None
