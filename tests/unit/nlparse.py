"""Tiny, independent (stdlib-only) netlink parser for tc filter/qdisc requests.

Used by the unit tests to pick apart both the reference bytes captured from
iproute2's ``tc`` (tests/unit/data/iproute2/*.json) and the bytes produced by
our own encoders, so that the two can be compared field by field.

Deliberately does not use pyroute2: it must not share bugs with the encoders
under test.

Layouts (host byte order unless stated):
  struct nlmsghdr  { u32 len; u16 type; u16 flags; u32 seq; u32 pid; }   16 bytes
  struct tcmsg     { u8 family; u8 pad1; u16 pad2; s32 ifindex;
                     u32 handle; u32 parent; u32 info; }                  20 bytes
  struct nlattr    { u16 len; u16 type; } + payload, padded to 4 bytes
  struct tc_u32_sel { u8 flags, offshift, nkeys, pad; be16 offmask; u16 off;
                      s16 offoff; s16 hoff; be32 hmask; tc_u32_key keys[]; }
  struct tc_u32_key { be32 mask; be32 val; s32 off; s32 offmask; }
"""

import struct

NLA_F_NESTED = 1 << 15
NLA_F_NET_BYTEORDER = 1 << 14
NLA_TYPE_MASK = ~(NLA_F_NESTED | NLA_F_NET_BYTEORDER) & 0xFFFF

NLMSGHDR = struct.Struct("=IHHII")
TCMSG = struct.Struct("=BBHiIII")

# rtnetlink message types
RTM_NEWQDISC = 36
RTM_DELQDISC = 37
RTM_NEWTFILTER = 44
RTM_DELTFILTER = 45

# nlmsg_flags
NLM_F_REQUEST = 0x01
NLM_F_ACK = 0x04
NLM_F_REPLACE = 0x100
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400
NLM_F_APPEND = 0x800

# enum TCA_* (tcmsg level)
TCA_KIND = 1
TCA_OPTIONS = 2
TCA_CHAIN = 11

# enum TCA_U32_*
TCA_U32_CLASSID = 1
TCA_U32_HASH = 2
TCA_U32_LINK = 3
TCA_U32_DIVISOR = 4
TCA_U32_SEL = 5
TCA_U32_POLICE = 6
TCA_U32_ACT = 7
TCA_U32_INDEV = 8
TCA_U32_PCNT = 9
TCA_U32_MARK = 10
TCA_U32_FLAGS = 11

# enum TCA_ACT_*
TCA_ACT_KIND = 1
TCA_ACT_OPTIONS = 2
TCA_ACT_INDEX = 3
TCA_ACT_STATS = 4
TCA_ACT_PAD = 5
TCA_ACT_COOKIE = 6
TCA_ACT_FLAGS = 7
TCA_ACT_HW_STATS = 8

U32_SEL_HDR = struct.Struct("=BBBxHHhhI")  # offmask/hmask re-read big-endian
U32_KEY = struct.Struct("=IIii")


def _align4(n):
    return (n + 3) & ~3


def parse_attrs(payload):
    """Split a buffer of netlink attributes into [(type, payload_bytes), ...].

    NLA_F_NESTED / NLA_F_NET_BYTEORDER are stripped from the type.
    Raises ValueError on malformed/truncated attributes.
    """
    payload = bytes(payload)
    out = []
    off = 0
    while off < len(payload):
        if len(payload) - off < 4:
            raise ValueError("trailing garbage: %r" % payload[off:])
        nla_len, nla_type = struct.unpack_from("=HH", payload, off)
        if nla_len < 4 or off + nla_len > len(payload):
            raise ValueError("bad nla_len %d at offset %d" % (nla_len, off))
        out.append((nla_type & NLA_TYPE_MASK, payload[off + 4:off + nla_len]))
        off += _align4(nla_len)
    return out


def attrs_dict(payload):
    """parse_attrs() as {type: bytes}; a repeated type maps to a list."""
    d = {}
    for t, v in parse_attrs(payload):
        if t in d:
            if not isinstance(d[t], list):
                d[t] = [d[t]]
            d[t].append(v)
        else:
            d[t] = v
    return d


def parse_tc_message(b):
    """Parse one rtnetlink tc message (nlmsghdr + tcmsg + attributes)."""
    b = bytes(b)
    if len(b) < NLMSGHDR.size + TCMSG.size:
        raise ValueError("message too short: %d bytes" % len(b))
    nlen, ntype, nflags, seq, pid = NLMSGHDR.unpack_from(b, 0)
    if nlen != len(b):
        raise ValueError("nlmsg_len %d != buffer length %d" % (nlen, len(b)))
    family, _p1, _p2, ifindex, handle, parent, info = TCMSG.unpack_from(b, NLMSGHDR.size)
    return {
        "nlmsg_len": nlen,
        "nlmsg_type": ntype,
        "nlmsg_flags": nflags,
        "nlmsg_seq": seq,
        "nlmsg_pid": pid,
        "family": family,
        "ifindex": ifindex,
        "handle": handle,
        "parent": parent,
        "info": info,
        "attrs": attrs_dict(b[NLMSGHDR.size + TCMSG.size:]),
    }


def cstr(v):
    """NUL-terminated attribute payload -> str."""
    return bytes(v).split(b"\0", 1)[0].decode("ascii")


def u32(v):
    return struct.unpack("=I", bytes(v)[:4])[0]


def decode_u32_sel(raw):
    raw = bytes(raw)
    flags, offshift, nkeys, _offmask, off, offoff, hoff, _hmask = U32_SEL_HDR.unpack_from(raw, 0)
    (offmask,) = struct.unpack_from(">H", raw, 4)
    (hmask,) = struct.unpack_from(">I", raw, 12)
    if len(raw) < U32_SEL_HDR.size + nkeys * U32_KEY.size:
        raise ValueError("tc_u32_sel truncated: %d keys, %d bytes" % (nkeys, len(raw)))
    keys = []
    for i in range(nkeys):
        base = U32_SEL_HDR.size + i * U32_KEY.size
        mask, val = struct.unpack_from(">II", raw, base)
        koff, koffmask = struct.unpack_from("=ii", raw, base + 8)
        keys.append((mask, val, koff, koffmask))
    return {
        "flags": flags,
        "offshift": offshift,
        "nkeys": nkeys,
        "offmask": offmask,
        "off": off,
        "offoff": offoff,
        "hoff": hoff,
        "hmask": hmask,
        "keys": keys,
    }


def parse_actions(payload):
    """TCA_*_ACT nest -> list of action dicts sorted by prio (the attr type)."""
    acts = []
    for prio, body in parse_attrs(payload):
        a = attrs_dict(body)
        kind = a.pop(TCA_ACT_KIND, None)
        acts.append({
            "prio": prio,
            "kind": cstr(kind) if kind is not None else None,
            "options": a.pop(TCA_ACT_OPTIONS, None),
            "cookie": a.pop(TCA_ACT_COOKIE, None),
            "other": a,
        })
    acts.sort(key=lambda x: x["prio"])
    return acts


def u32_options(options_payload):
    """Decode the TCA_OPTIONS nest of a u32 filter."""
    a = attrs_dict(options_payload)

    def pop_int(t):
        v = a.pop(t, None)
        return None if v is None else u32(v)

    sel = a.pop(TCA_U32_SEL, None)
    act = a.pop(TCA_U32_ACT, None)
    res = {
        "sel": sel,
        "sel_decoded": decode_u32_sel(sel) if sel is not None else None,
        "classid": pop_int(TCA_U32_CLASSID),
        "hash": pop_int(TCA_U32_HASH),
        "link": pop_int(TCA_U32_LINK),
        "divisor": pop_int(TCA_U32_DIVISOR),
        "flags": pop_int(TCA_U32_FLAGS),
        "actions": parse_actions(act) if act is not None else [],
    }
    res["other"] = a  # anything else (police, indev, mark, ...), raw
    res.update(dict(a))
    return res
