# -*- coding: utf-8 -*-
# Copyright: (c) 2026, logfwdr developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Netlink codecs for the tc objects logfwdr writes.

pyroute2 (0.7.x and 0.9.x alike) has no encoder or decoder for act_skbmod,
act_nat, act_pedit and act_csum, reads u32 keys at the wrong offset, drops
TCA_CHAIN, has no TCA_ACT_COOKIE and forces mirred's control to pipe.  We
keep pyroute2 for the netlink socket and the attribute (TLV) framing, and pack
every C struct ourselves with :mod:`struct`, so the bytes do not depend on the
pyroute2 release.  The classes are registered into pyroute2's plugin tables
at import time so that pyroute2 decodes kernel dumps with them.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import socket
import struct

try:
    from pyroute2.netlink import nla
    from pyroute2.netlink.rtnl.tcmsg import tcmsg as _pr_tcmsg
    from pyroute2.netlink.rtnl.tcmsg import plugins as _pr_cls_plugins
    from pyroute2.netlink.rtnl.tcmsg import common_act as _pr_common_act
    HAS_PYROUTE2 = True
    PYROUTE2_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - reported by the module
    HAS_PYROUTE2 = False
    PYROUTE2_IMPORT_ERROR = exc
    nla = object
    _pr_tcmsg = object

# --- constants from the kernel uapi headers (linux/pkt_cls.h etc.) ---------
NLA_F_NESTED = 1 << 15
ETH_P_IP = 0x0800
TC_H_INGRESS = 0xFFFFFFF1
INGRESS_PARENT = 0xFFFF0000  # "ffff:" the ingress qdisc handle
TCA_ACT_MAX_PRIO = 32

# action controls (TC_ACT_*)
TC_ACT_UNSPEC = -1  # "continue": the next filter runs
TC_ACT_OK = 0
TC_ACT_RECLASSIFY = 1  # classify again from the first filter (ct's reassembled datagram)
TC_ACT_SHOT = 2
TC_ACT_PIPE = 3
TC_ACT_STOLEN = 4
TC_ACT_GOTO_CHAIN = 0x20000000
CONTROL_NAMES = {
    TC_ACT_UNSPEC: "continue",
    TC_ACT_OK: "pass",
    1: "reclassify",
    TC_ACT_SHOT: "drop",
    TC_ACT_PIPE: "pipe",
    TC_ACT_STOLEN: "stolen",
}

# u32 selector flags
TC_U32_TERMINAL = 1

# mirred eactions
TCA_EGRESS_REDIR = 1
TCA_EGRESS_MIRROR = 2

# skbmod flags
SKBMOD_F_DMAC = 1
SKBMOD_F_SMAC = 2

# csum update flags
TCA_CSUM_UPDATE_FLAG_IPV4HDR = 1
TCA_CSUM_UPDATE_FLAG_UDP = 16

# act_ct flags (TCA_CT_ACTION)
TCA_CT_ACT_CLEAR = 4

# pedit legacy command "set"
TCA_PEDIT_KEY_EX_CMD_SET = 0

# attribute numbers (for readers of the raw bytes and for the tests)
TCA_CHAIN = 11
TCA_ACT_COOKIE = 6

COOKIE_MAX = 16  # TC_COOKIE_MAX_SIZE

# --- struct layouts (x86_64 and every Linux ABI: no padding surprises) -----
TC_GEN = "IIiii"  # index, capab, action, refcnt, bindcnt
_GEN_LEN = struct.calcsize("=" + TC_GEN)


def _gen(action, index=0):
    return struct.pack("=" + TC_GEN, index, 0, action, 0, 0)


def _ungen(data):
    index, capab, action, refcnt, bindcnt = struct.unpack_from("=" + TC_GEN, data)
    return {"index": index, "action": action, "refcnt": refcnt, "bindcnt": bindcnt}


def mac_bytes(mac):
    return bytes(int(x, 16) for x in mac.split(":"))


def mac_str(data):
    return ":".join("%02x" % b for b in bytearray(data))


# ---- u32 selector --------------------------------------------------------
# struct tc_u32_sel { u8 flags, offshift, nkeys; __be16 offmask; u16 off;
#   s16 offoff, hoff; __be32 hmask; struct tc_u32_key keys[]; }
# struct tc_u32_key { __be32 mask, val; int off, offmask; }
_SEL_HDR = "=BBBxHHhhI"
_SEL_KEY = "=IIii"


def pack_u32_sel(keys, terminal, hashkey=None):
    """keys: iterable of (mask, value, offset) with mask/value as host ints; hashkey: (hmask, hoff) of a node
    that links to a hash table with a divisor (the bucket is (word at hoff & hmask) >> its lowest set bit)."""
    keys = list(keys)
    hmask, hoff = hashkey or (0, 0)
    data = struct.pack(_SEL_HDR, TC_U32_TERMINAL if terminal else 0, 0, len(keys), 0, 0, 0, hoff,
                       socket.htonl(hmask))
    for mask, value, off in keys:
        data += struct.pack(_SEL_KEY, socket.htonl(mask), socket.htonl(value & mask), off, 0)
    return data


def unpack_u32_sel(data):
    data = bytes(data)
    flags, offshift, nkeys, offmask, off, offoff, hoff, hmask = struct.unpack_from(_SEL_HDR, data)
    keys = []
    base = struct.calcsize(_SEL_HDR)
    step = struct.calcsize(_SEL_KEY)
    for i in range(nkeys):
        mask, val, koff, koffmask = struct.unpack_from(_SEL_KEY, data, base + i * step)
        keys.append((socket.ntohl(mask), socket.ntohl(val), koff))
    return {"flags": flags, "keys": keys, "hash": (socket.ntohl(hmask), hoff) if hmask else None}


# ---- action parameter structs -------------------------------------------

def pack_gact(control):
    return _gen(control)


# struct tc_gact_p { __u16 ptype; __u16 pval; int paction; }: every pval-th packet gets paction (PGACT_DETERM)
PGACT_DETERM = 2


def pack_gact_prob(every, action):
    return struct.pack("=HHi", PGACT_DETERM, every, action)


def unpack_gact_prob(data):
    ptype, pval, paction = struct.unpack_from("=HHi", bytes(data))
    return {"ptype": ptype, "every": pval, "action": paction}


def pack_mirred(eaction, ifindex, control):
    return _gen(control) + struct.pack("=iI", eaction, ifindex)


def unpack_mirred(data):
    parms = _ungen(data)
    parms["eaction"], parms["ifindex"] = struct.unpack_from("=iI", bytes(data), _GEN_LEN)
    return parms


def pack_skbmod(control, flags):
    # tc_gen, 4 bytes of padding (u64 alignment), __u64 flags
    return _gen(control) + b"\0" * 4 + struct.pack("=Q", flags)


def unpack_skbmod(data):
    parms = _ungen(data)
    (parms["flags"],) = struct.unpack_from("=Q", bytes(data), _GEN_LEN + 4)
    return parms


def pack_nat(control, old, new, mask, egress=False):
    return _gen(control) + socket.inet_aton(old) + socket.inet_aton(new) + \
        socket.inet_aton(mask) + struct.pack("=I", 1 if egress else 0)


def unpack_nat(data):
    data = bytes(data)
    parms = _ungen(data)
    base = _GEN_LEN
    parms["old"] = socket.inet_ntoa(data[base:base + 4])
    parms["new"] = socket.inet_ntoa(data[base + 4:base + 8])
    parms["mask"] = socket.inet_ntoa(data[base + 8:base + 12])
    (parms["nat_flags"],) = struct.unpack_from("=I", data, base + 12)
    return parms


# struct tc_pedit_sel { tc_gen; u8 nkeys, flags; struct tc_pedit_key keys[]; }
# struct tc_pedit_key { __u32 mask, val, off, at, offmask, shift; }
_PEDIT_KEY = "=IIIIII"


def pack_pedit(control, keys):
    """keys: iterable of (mask, value, off) in pedit's network-order words."""
    keys = list(keys)
    data = _gen(control) + struct.pack("=BBxx", len(keys), 0)
    for mask, value, off in keys:
        data += struct.pack(_PEDIT_KEY, mask, value, off, 0, 0, 0)
    return data


def unpack_pedit(data):
    data = bytes(data)
    parms = _ungen(data)
    nkeys, flags = struct.unpack_from("=BB", data, _GEN_LEN)
    keys = []
    base = _GEN_LEN + 4
    step = struct.calcsize(_PEDIT_KEY)
    for i in range(nkeys):
        mask, val, off, at, offmask, shift = struct.unpack_from(_PEDIT_KEY, data, base + i * step)
        keys.append((mask, val, off))
    parms["keys"] = keys
    return parms


def pedit_udp_dport_key(port, off=20):
    """The key `pedit munge offset 22 u16 set PORT` sends (IHL 5 assumed; IPv6: offset 42, `off` 40).

    pedit works on 32-bit words: offset 20 holds sport|dport; keep sport.
    """
    mask = struct.unpack("=I", struct.pack(">I", 0xFFFF0000))[0]
    value = struct.unpack("=I", struct.pack(">I", port & 0xFFFF))[0]
    return (mask, value, off)


def pedit_ipv6_dst_keys(address):
    """The four keys `pedit munge ip6 dst set ADDRESS` sends: the words at 24 to 36 of the IPv6 header."""
    raw = socket.inet_pton(socket.AF_INET6, address)
    return [(0, struct.unpack("=I", raw[i:i + 4])[0], 24 + i) for i in range(0, 16, 4)]


def pedit_ipv4_dst_key(address):
    return (0, struct.unpack("=I", socket.inet_aton(address))[0], 16)


def pedit_address_of(keys):
    words = dict((off, value) for mask, value, off in keys if mask == 0)
    if all(off in words for off in (24, 28, 32, 36)):
        return socket.inet_ntop(socket.AF_INET6, b"".join(struct.pack("=I", words[off]) for off in (24, 28, 32, 36)))
    for mask, value, off in keys:
        if off == 16 and mask == 0:
            return socket.inet_ntoa(struct.pack("=I", value))
    return None


def pedit_port_of(keys):
    six = pedit_address_of(keys) is not None and ":" in pedit_address_of(keys)
    for mask, value, off in keys:
        if off == (40 if six else 20) and mask != 0:
            return struct.unpack(">I", struct.pack("=I", value))[0] & 0xFFFF
    return None


def pack_csum(control, update_flags):
    return _gen(control) + struct.pack("=I", update_flags)


def unpack_csum(data):
    parms = _ungen(data)
    (parms["update_flags"],) = struct.unpack_from("=I", bytes(data), _GEN_LEN)
    return parms


# struct tc_police { u32 index; int action; u32 limit, burst, mtu;
#   struct tc_ratespec rate, peakrate; int refcnt, bindcnt; u32 capab; }
_RATESPEC = "BBHhHI"
_POLICE = "=IiIII" + _RATESPEC + _RATESPEC + "iiI"


def pack_police(exceed_control):
    return struct.pack(_POLICE, 0, exceed_control, 0, 0, 0,
                       0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)


def unpack_police(data):
    fields = struct.unpack_from(_POLICE, bytes(data))
    return {"index": fields[0], "action": fields[1]}


PSCHED_TICKS_PER_SEC = 1000000000 // 64  # psched ticks are 64 ns


def police_pkt_burst(rate, burst):
    """TCA_POLICE_PKTBURST64 is the time to send `burst` packets, in psched ticks."""
    return (burst * PSCHED_TICKS_PER_SEC) // rate


def police_burst_packets(rate, burst_ticks):
    return int(round(burst_ticks * rate / float(PSCHED_TICKS_PER_SEC)))


# ---- netlink attribute framing (pyroute2 nla classes) --------------------

class act_gact(nla):
    nla_map = ((1, "TCA_GACT_TM", "cdata"),
               (2, "TCA_GACT_PARMS", "cdata"),
               (3, "TCA_GACT_PROB", "cdata"))


class act_mirred(nla):
    nla_map = ((1, "TCA_MIRRED_TM", "cdata"),
               (2, "TCA_MIRRED_PARMS", "cdata"))


class act_skbmod(nla):
    nla_map = ((1, "TCA_SKBMOD_TM", "cdata"),
               (2, "TCA_SKBMOD_PARMS", "cdata"),
               (3, "TCA_SKBMOD_DMAC", "cdata"),
               (4, "TCA_SKBMOD_SMAC", "cdata"),
               (5, "TCA_SKBMOD_ETYPE", "cdata"))


class act_nat(nla):
    nla_map = ((1, "TCA_NAT_PARMS", "cdata"),
               (2, "TCA_NAT_TM", "cdata"))


class act_pedit(nla):
    nla_map = ((1, "TCA_PEDIT_TM", "cdata"),
               (2, "TCA_PEDIT_PARMS", "cdata"),
               (4, "TCA_PEDIT_PARMS_EX", "cdata"),
               (5, "TCA_PEDIT_KEYS_EX", "cdata"))


class act_csum(nla):
    nla_map = ((1, "TCA_CSUM_PARMS", "cdata"),
               (2, "TCA_CSUM_TM", "cdata"))


class act_ct(nla):
    # act_ct parses its options strictly (nla_parse_nested): without NLA_F_NESTED the kernel says EINVAL
    nla_flags = NLA_F_NESTED
    nla_map = ((1, "TCA_CT_PARMS", "cdata"),
               (2, "TCA_CT_TM", "cdata"),
               (3, "TCA_CT_ACTION", "uint16"),
               (4, "TCA_CT_ZONE", "uint16"))


class act_police(nla):
    nla_map = ((1, "TCA_POLICE_TBF", "cdata"),
               (5, "TCA_POLICE_RESULT", "int32"),
               (6, "TCA_POLICE_TM", "cdata"),
               (10, "TCA_POLICE_PKTRATE64", "uint64"),
               (11, "TCA_POLICE_PKTBURST64", "uint64"))


ACTION_OPTIONS = {
    "gact": act_gact,
    "mirred": act_mirred,
    "skbmod": act_skbmod,
    "nat": act_nat,
    "pedit": act_pedit,
    "csum": act_csum,
    "police": act_police,
    "ct": act_ct,
}


class _ActPlugin:
    """What pyroute2's common_act.plugins expects: .options and .get_parameters."""

    def __init__(self, options):
        self.options = options

    @staticmethod
    def get_parameters(kwarg):
        # logfwdr builds attribute dicts itself (see encode_action); this is
        # here for pyroute2's own tc() callers.
        return kwarg.get("attrs_dict", {"attrs": []})


class gnet_stats(nla):
    """TCA_ACT_STATS: struct gnet_stats_basic (u64 bytes, u32 packets) and queue."""
    nla_map = ((1, "TCA_STATS_BASIC", "cdata"),
               (2, "TCA_STATS_RATE_EST", "cdata"),
               (3, "TCA_STATS_QUEUE", "cdata"),
               (4, "TCA_STATS_APP", "cdata"),
               (5, "TCA_STATS_RATE_EST64", "cdata"),
               (6, "TCA_STATS_PAD", "cdata"),
               (7, "TCA_STATS_BASIC_HW", "cdata"),
               (8, "TCA_STATS_PKT64", "uint64"))


class tca_act(nla):
    nla_map = ((1, "TCA_ACT_KIND", "asciiz"),
               (2, "TCA_ACT_OPTIONS", "get_act_options"),
               (3, "TCA_ACT_INDEX", "uint32"),
               (4, "TCA_ACT_STATS", "gnet_stats"),
               (6, "TCA_ACT_COOKIE", "cdata"))

    gnet_stats = gnet_stats

    @staticmethod
    def get_act_options(msg, *argv, **kwarg):
        return ACTION_OPTIONS.get(msg.get_attr("TCA_ACT_KIND"), nla.cdata)


class tca_act_prio(nla):
    # Actions are numbered 1..TCA_ACT_MAX_PRIO; pyroute2 maps 0..31 and so
    # silently loses the 32nd.
    nla_map = tuple((i, "TCA_ACT_PRIO_%d" % i, "tca_act")
                    for i in range(1, TCA_ACT_MAX_PRIO + 1))
    tca_act = tca_act


class cls_u32(nla):
    nla_map = ((1, "TCA_U32_CLASSID", "uint32"),
               (2, "TCA_U32_HASH", "uint32"),
               (3, "TCA_U32_LINK", "uint32"),
               (4, "TCA_U32_DIVISOR", "uint32"),
               (5, "TCA_U32_SEL", "cdata"),
               (7, "TCA_U32_ACT", "tca_act_prio"),
               (8, "TCA_U32_INDEV", "asciiz"),
               (9, "TCA_U32_PCNT", "cdata"),
               (10, "TCA_U32_MARK", "cdata"),
               (11, "TCA_U32_FLAGS", "uint32"))
    tca_act_prio = tca_act_prio


class _ClsPlugin:
    options = cls_u32


class tcmsg(_pr_tcmsg):
    """pyroute2's tcmsg plus TCA_CHAIN, with logfwdr's u32 options."""
    nla_map = ((0, "TCA_UNSPEC", "none"),
               (1, "TCA_KIND", "asciiz"),
               (2, "TCA_OPTIONS", "get_options"),
               (3, "TCA_STATS", "cdata"),
               (4, "TCA_XSTATS", "cdata"),
               (7, "TCA_STATS2", "cdata"),
               (11, "TCA_CHAIN", "uint32"))

    @staticmethod
    def get_options(msg, *argv, **kwarg):
        if msg.get_attr("TCA_KIND") == "u32":
            return cls_u32
        return nla.cdata


def register():
    """Install logfwdr's codecs into pyroute2's plugin tables (idempotent)."""
    if not HAS_PYROUTE2:
        return
    for kind, options in ACTION_OPTIONS.items():
        _pr_common_act.plugins[kind] = _ActPlugin(options)
    _pr_cls_plugins["u32"] = _ClsPlugin


# ---- message builders ----------------------------------------------------

def tc_info(prio, protocol=ETH_P_IP):
    return ((prio & 0xFFFF) << 16) | socket.htons(protocol)


def encode_action(action):
    """One action (a dict from the model) -> pyroute2 attribute dict."""
    kind = action["kind"]
    control = action.get("control", TC_ACT_PIPE)
    if kind == "gact":
        opts = [["TCA_GACT_PARMS", pack_gact(control)]]
        if action.get("sample"):
            opts.append(["TCA_GACT_PROB", pack_gact_prob(action["sample"], action.get("sample_control", TC_ACT_PIPE))])
    elif kind == "mirred":
        opts = [["TCA_MIRRED_PARMS", pack_mirred(action["eaction"], action["ifindex"], control)]]
    elif kind == "skbmod":
        opts = [["TCA_SKBMOD_PARMS", pack_skbmod(control, SKBMOD_F_DMAC | SKBMOD_F_SMAC)],
                ["TCA_SKBMOD_DMAC", mac_bytes(action["dmac"])],
                ["TCA_SKBMOD_SMAC", mac_bytes(action["smac"])]]
    elif kind == "nat":
        # not used by tc_mirror (act_nat rewrites only the masked bits of an address it matches, so it
        # cannot set one fixed address whatever came before); kept for reading rules others wrote
        opts = [["TCA_NAT_PARMS", pack_nat(control, action.get("old", "0.0.0.0"), action["new"],
                                           action.get("mask", "255.255.255.255"), action.get("egress", False))]]
    elif kind == "pedit":
        keys = []
        six = ":" in (action.get("address") or "")
        if six:
            keys.extend(pedit_ipv6_dst_keys(action["address"]))
        elif action.get("address"):
            keys.append(pedit_ipv4_dst_key(action["address"]))
        if action.get("port"):
            keys.append(pedit_udp_dport_key(action["port"], 40 if six else 20))
        opts = [["TCA_PEDIT_PARMS", pack_pedit(control, keys)]]
    elif kind == "csum":
        opts = [["TCA_CSUM_PARMS", pack_csum(control, action.get("update_flags", TCA_CSUM_UPDATE_FLAG_UDP))]]
    elif kind == "ct":
        # zone 0, no commit: only reassembly (and, with clear, dropping the entry the first ct made)
        opts = [["TCA_CT_ACTION", TCA_CT_ACT_CLEAR if action.get("clear") else 0],
                ["TCA_CT_PARMS", _gen(control)]]
    elif kind == "police":
        # exceed verdict in the TBF struct, conform verdict in TCA_POLICE_RESULT (a destination's police
        # skips its copy when exceeded; the port's gate drops the packet before every copy)
        opts = [["TCA_POLICE_TBF", pack_police(action.get("control", TC_ACT_UNSPEC))],
                ["TCA_POLICE_RESULT", action.get("conform", TC_ACT_PIPE)],
                ["TCA_POLICE_PKTRATE64", action["rate"]],
                ["TCA_POLICE_PKTBURST64", police_pkt_burst(action["rate"], action["burst"])]]
    else:
        raise ValueError("unknown action kind %r" % kind)
    attrs = [["TCA_ACT_KIND", kind], ["TCA_ACT_OPTIONS", {"attrs": opts}]]
    if action.get("cookie"):
        attrs.append(["TCA_ACT_COOKIE", action["cookie"]])
    return {"attrs": attrs}


def encode_u32_options(node):
    """A u32 node dict -> TCA_OPTIONS attribute dict.

    node keys: divisor (hash table creation) or sel keys/terminal, link,
    ht (TCA_U32_HASH), actions.
    """
    attrs = []
    if node.get("divisor"):
        attrs.append(["TCA_U32_DIVISOR", node["divisor"]])
        return {"attrs": attrs}
    if node.get("ht") is not None:
        attrs.append(["TCA_U32_HASH", node["ht"]])
    if node.get("link") is not None:
        attrs.append(["TCA_U32_LINK", node["link"]])
    actions = node.get("actions") or []
    attrs.append(["TCA_U32_SEL", pack_u32_sel(node["keys"], terminal=bool(actions), hashkey=node.get("hash"))])
    if actions:
        if len(actions) > TCA_ACT_MAX_PRIO:
            raise ValueError("a filter holds at most %d actions" % TCA_ACT_MAX_PRIO)
        attrs.append(["TCA_U32_ACT", {"attrs": [
            ["TCA_ACT_PRIO_%d" % (i + 1), encode_action(a)] for i, a in enumerate(actions)]}])
    return {"attrs": attrs}


def build_filter_msg(ifindex, prio, handle, chain, node=None, protocol=ETH_P_IP):
    msg = tcmsg()
    msg["family"] = socket.AF_UNSPEC
    msg["index"] = ifindex
    msg["handle"] = handle
    msg["parent"] = INGRESS_PARENT
    msg["info"] = tc_info(prio, protocol)
    attrs = [["TCA_KIND", "u32"]]
    if chain:
        attrs.append(["TCA_CHAIN", chain])
    if node is not None:
        attrs.append(["TCA_OPTIONS", encode_u32_options(node)])
    msg["attrs"] = attrs
    return msg


def build_qdisc_msg(ifindex):
    msg = tcmsg()
    msg["family"] = socket.AF_UNSPEC
    msg["index"] = ifindex
    msg["handle"] = INGRESS_PARENT
    msg["parent"] = TC_H_INGRESS
    msg["info"] = 0
    msg["attrs"] = [["TCA_KIND", "ingress"]]
    return msg


# ---- decoding a dumped filter into the model's vocabulary -----------------

def _stats(act):
    stats = act.get_attr("TCA_ACT_STATS")
    out = {"packets": 0, "bytes": 0, "drops": 0, "overlimits": 0}
    if stats is None:
        return out
    basic = stats.get_attr("TCA_STATS_BASIC")
    if basic:
        out["bytes"], out["packets"] = struct.unpack_from("=QI", bytes(basic))
    pkt64 = stats.get_attr("TCA_STATS_PKT64")
    if pkt64:
        out["packets"] = pkt64
    queue = stats.get_attr("TCA_STATS_QUEUE")
    if queue:
        # struct gnet_stats_queue { qlen, backlog, drops, requeues, overlimits }
        _q, _b, out["drops"], _r, out["overlimits"] = struct.unpack_from("=IIIII", bytes(queue))
    return out


def decode_action(act):
    kind = act.get_attr("TCA_ACT_KIND")
    opts = act.get_attr("TCA_ACT_OPTIONS")
    out = {"kind": kind, "stats": _stats(act)}
    cookie = act.get_attr("TCA_ACT_COOKIE")
    if cookie:
        out["cookie"] = bytes(cookie)

    def attr(name):
        return opts.get_attr(name) if opts is not None and hasattr(opts, "get_attr") else None

    if kind == "mirred":
        parms = unpack_mirred(attr("TCA_MIRRED_PARMS"))
        out.update(eaction=parms["eaction"], ifindex=parms["ifindex"], control=parms["action"])
    elif kind == "skbmod":
        parms = unpack_skbmod(attr("TCA_SKBMOD_PARMS"))
        out["control"] = parms["action"]
        dmac, smac = attr("TCA_SKBMOD_DMAC"), attr("TCA_SKBMOD_SMAC")
        out["dmac"] = mac_str(dmac) if dmac and parms["flags"] & SKBMOD_F_DMAC else None
        out["smac"] = mac_str(smac) if smac and parms["flags"] & SKBMOD_F_SMAC else None
    elif kind == "nat":
        parms = unpack_nat(attr("TCA_NAT_PARMS"))
        out.update(new=parms["new"], old=parms["old"], mask=parms["mask"],
                   egress=bool(parms["nat_flags"] & 1), control=parms["action"])
    elif kind == "pedit":
        parms = unpack_pedit(attr("TCA_PEDIT_PARMS"))
        out.update(port=pedit_port_of(parms["keys"]), address=pedit_address_of(parms["keys"]),
                   keys=parms["keys"], control=parms["action"])
    elif kind == "csum":
        parms = unpack_csum(attr("TCA_CSUM_PARMS"))
        out.update(update_flags=parms["update_flags"], control=parms["action"])
    elif kind == "police":
        parms = unpack_police(attr("TCA_POLICE_TBF"))
        rate = attr("TCA_POLICE_PKTRATE64")
        burst = attr("TCA_POLICE_PKTBURST64")
        result = attr("TCA_POLICE_RESULT")
        if result is not None:
            out["conform"] = result
        out.update(rate=rate, control=parms["action"],
                   burst=police_burst_packets(rate, burst) if rate and burst else None)
    elif kind == "ct":
        parms = attr("TCA_CT_PARMS")
        out["control"] = _ungen(parms)["action"] if parms else None
        out["ct_flags"] = attr("TCA_CT_ACTION") or 0
        out["clear"] = out["ct_flags"] == TCA_CT_ACT_CLEAR
        out["zone"] = attr("TCA_CT_ZONE") or 0
    elif kind == "gact":
        out["control"] = _ungen(attr("TCA_GACT_PARMS"))["action"]
        prob = attr("TCA_GACT_PROB")
        if prob:
            prob = unpack_gact_prob(prob)
            if prob["ptype"] == PGACT_DETERM:
                out.update(sample=prob["every"], sample_control=prob["action"])
            else:
                out["probability"] = prob  # netrand: not the module's; canon_action keeps it foreign
    return out


def decode_filter(msg):
    """A dumped RTM_NEWTFILTER -> dict; filters of other classifiers come back as kind "other"."""
    info = msg["info"]
    out = {
        "ifindex": msg["index"],
        "prio": (info >> 16) & 0xFFFF,
        "protocol": socket.ntohs(info & 0xFFFF),
        "chain": msg.get_attr("TCA_CHAIN") or 0,
        "handle": msg["handle"],
    }
    if msg.get_attr("TCA_KIND") != "u32":
        out.update(kind="other", classifier=msg.get_attr("TCA_KIND"))
        return out
    opts = msg.get_attr("TCA_OPTIONS")
    if opts is None or not hasattr(opts, "get_attr"):
        out["kind"] = "tp"  # the classifier instance itself, no node
        return out
    divisor = opts.get_attr("TCA_U32_DIVISOR")
    if divisor is not None:
        out.update(kind="ht", divisor=divisor)
        return out
    sel = opts.get_attr("TCA_U32_SEL")
    out["kind"] = "node"
    out["link"] = opts.get_attr("TCA_U32_LINK")
    decoded = unpack_u32_sel(sel) if sel else {"flags": 0, "keys": [], "hash": None}
    out["keys"] = decoded["keys"]
    if decoded["hash"]:
        out["hash"] = decoded["hash"]
    out["terminal"] = bool(decoded["flags"] & TC_U32_TERMINAL)
    pcnt = opts.get_attr("TCA_U32_PCNT")
    if pcnt:
        # struct tc_u32_pcnt { u64 rcnt, rhit; u64 kcnts[nkeys]; }: kcnts[i] counts the packets that
        # matched keys 0..i (kernels with CONFIG_CLS_U32_PERF, as Debian's)
        counts = struct.unpack_from("=%dQ" % (2 + len(out["keys"])), bytes(pcnt))
        out["pcnt"] = {"rcnt": counts[0], "rhit": counts[1], "kcnts": list(counts[2:])}
    actions = []
    prio = opts.get_attr("TCA_U32_ACT")
    if prio is not None:
        for i in range(1, TCA_ACT_MAX_PRIO + 1):
            act = prio.get_attr("TCA_ACT_PRIO_%d" % i)
            if act is not None:
                actions.append(decode_action(act))
    out["actions"] = actions
    return out


register()
