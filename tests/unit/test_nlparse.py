"""Check tests/unit/nlparse.py against the iproute2 reference captures.

The captures (tests/unit/data/iproute2/*.json) were produced once by
tests/unit/data/iproute2/capture.sh; this test only reads them.
"""

import glob
import json
import os
import re
import struct

import pytest

try:  # works both as a package module and as a plain rootdir test
    from . import nlparse
except ImportError:  # pragma: no cover
    import nlparse

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "iproute2")
FILES = sorted(glob.glob(os.path.join(DATA, "[0-9][0-9]_*.json")))

INFO_PRIO49152_IP = (49152 << 16) | 0x0008  # tcm_info = prio << 16 | htons(ETH_P_IP)
TC_ACT_UNSPEC, TC_ACT_SHOT, TC_ACT_PIPE = -1, 2, 3
TCA_EGRESS_MIRROR = 2


def load(prefix):
    (path,) = [f for f in FILES if os.path.basename(f).startswith(prefix + "_")]
    with open(path) as fh:
        d = json.load(fh)
    return d, nlparse.parse_tc_message(bytes.fromhex(d["nlmsg_hex"]))


def opts(msg):
    return nlparse.u32_options(msg["attrs"][nlparse.TCA_OPTIONS])


def act_params(action, parms_type):
    """First struct of an action: TCA_<kind>_PARMS (or TBF for police)."""
    return dict(nlparse.parse_attrs(action["options"]))[parms_type]


def tc_gen(raw):
    """index, capab, action, refcnt, bindcnt"""
    return struct.unpack_from("=IIiii", raw, 0)


def test_all_files_present():
    assert len(FILES) == 21


@pytest.mark.parametrize("path", FILES, ids=os.path.basename)
def test_generic(path):
    with open(path) as fh:
        d = json.load(fh)
    assert set(d) >= {"command", "ifindex", "nlmsg_hex", "tc_version", "captured"}
    raw = bytes.fromhex(d["nlmsg_hex"])
    assert d["nlmsg_hex"] == raw.hex()  # lowercase, no separators
    m = nlparse.parse_tc_message(raw)
    assert m["nlmsg_len"] == len(raw)
    assert m["nlmsg_flags"] & nlparse.NLM_F_REQUEST
    assert m["nlmsg_flags"] & nlparse.NLM_F_ACK
    assert m["ifindex"] == d["ifindex"]["in0"]
    assert m["family"] == 0
    cmd = d["command"].split()
    if cmd[1] == "qdisc":
        assert m["nlmsg_type"] == nlparse.RTM_NEWQDISC
        return
    assert m["info"] == INFO_PRIO49152_IP
    if cmd[2] == "del":
        assert m["nlmsg_type"] == nlparse.RTM_DELTFILTER
        return
    assert m["nlmsg_type"] == nlparse.RTM_NEWTFILTER
    assert nlparse.cstr(m["attrs"][nlparse.TCA_KIND]) == "u32"
    o = opts(m)
    # actions appear in command order with prio 1..n
    want = []
    for i, tok in enumerate(cmd):
        if tok == "action":
            nxt = cmd[i + 1]
            want.append("gact" if nxt in ("drop", "pass", "ok", "continue", "pipe") else nxt)
    assert [a["kind"] for a in o["actions"]] == want
    assert [a["prio"] for a in o["actions"]] == list(range(1, len(want) + 1))
    # cookies
    cookies = [a["cookie"] for a in o["actions"] if a["cookie"] is not None]
    assert cookies == [bytes.fromhex(c) for c in re.findall(r"cookie ([0-9a-f]+)", d["command"])]
    for a in o["actions"]:
        if a["kind"] == "mirred":
            _index, _capab, action, _refcnt, _bindcnt, eaction, ifindex = struct.unpack("=IIiiiiI", act_params(a, 2))
            assert (eaction, ifindex) == (TCA_EGRESS_MIRROR, d["ifindex"]["out0"])
            assert action == TC_ACT_UNSPEC  # "continue"


def test_01_qdisc():
    _capture, m = load("01")
    assert m["nlmsg_type"] == nlparse.RTM_NEWQDISC
    assert (m["handle"], m["parent"]) == (0xFFFF0000, 0xFFFFFFF1)
    assert nlparse.cstr(m["attrs"][nlparse.TCA_KIND]) == "ingress"
    assert nlparse.TCA_OPTIONS not in m["attrs"]


def test_02_divisor():
    _capture, m = load("02")
    assert (m["handle"], m["parent"]) == (0x00100000, 0xFFFF0000)
    o = opts(m)
    assert o["divisor"] == 1
    assert o["sel"] is None and o["actions"] == [] and o["other"] == {}


def test_03_keys_and_link():
    _capture, m = load("03")
    assert m["handle"] == 0x80000001
    o = opts(m)
    assert o["link"] == 0x00100000
    assert o["hash"] is None and o["actions"] == []
    s = o["sel_decoded"]
    assert s["nkeys"] == 4
    assert s["flags"] == 0  # no TC_U32_TERMINAL without actions/classid
    assert s["keys"] == [
        (0xFF000000, 0x45000000, 0, 0),
        (0x00001FFF, 0x00000000, 4, 0),
        (0x00FF0000, 0x00110000, 8, 0),
        (0x0000FFFF, 514, 20, 0),
    ]
    assert len(o["sel"]) == 16 + 4 * 16


def test_04_link_with_drop():
    _capture, m = load("04")
    o = opts(m)
    assert o["link"] == 0x00100000
    assert o["sel_decoded"]["flags"] == 1  # TC_U32_TERMINAL
    (a,) = o["actions"]
    assert a["kind"] == "gact"
    assert tc_gen(act_params(a, 2))[2] == TC_ACT_SHOT


def test_05_three_actions():
    d, m = load("05")
    assert m["handle"] == 0x00100801
    o = opts(m)
    assert o["hash"] == 0x00100000
    assert [a["kind"] for a in o["actions"]] == ["skbmod", "nat", "mirred"]
    assert o["actions"][2]["cookie"] == b"splunk"
    skb = dict(nlparse.parse_attrs(o["actions"][0]["options"]))
    assert skb[3] == bytes.fromhex("020000000002")  # TCA_SKBMOD_DMAC
    assert skb[4] == bytes.fromhex("020000000001")  # TCA_SKBMOD_SMAC
    # struct tc_skbmod: tc_gen (20) + 4 pad + u64 flags
    assert len(skb[2]) == 32
    assert struct.unpack_from("=Q", skb[2], 24)[0] == 3  # SKBMOD_F_DMAC|SKBMOD_F_SMAC
    nat = act_params(o["actions"][1], 1)
    assert tc_gen(nat)[2] == TC_ACT_PIPE
    assert nat[24:28] == bytes([192, 0, 2, 10])  # new_addr


def test_06_six_actions():
    _capture, m = load("06")
    o = opts(m)
    assert [a["kind"] for a in o["actions"]] == ["police", "skbmod", "nat", "pedit", "csum", "mirred"]
    assert o["actions"][5]["cookie"] == bytes.fromhex("6e66636170")
    assert o["sel_decoded"]["keys"] == [(0xFFFF0000, 0x0A010000, 12, 0)]
    pol = dict(nlparse.parse_attrs(o["actions"][0]["options"]))
    assert struct.unpack_from("=i", pol[1], 4)[0] == TC_ACT_UNSPEC  # exceed: continue
    assert nlparse.u32(pol[5]) == TC_ACT_PIPE  # TCA_POLICE_RESULT (conform): pipe
    assert struct.unpack("=Q", pol[10])[0] == 1000  # TCA_POLICE_PKTRATE64
    assert struct.unpack("=Q", pol[11])[0] == 1562500  # PKTBURST64, psched ticks
    ped = act_params(o["actions"][3], 2)  # TCA_PEDIT_PARMS
    assert ped[20] == 1  # nkeys
    assert ped[24:48] == bytes.fromhex("ffff0000000005ea" + "14000000" + "00000000" + "00000000" + "00000000")
    csum = act_params(o["actions"][4], 1)
    assert struct.unpack_from("=I", csum, 20)[0] == 0x10  # TCA_CSUM_UPDATE_FLAG_UDP


def test_07_08_add_vs_replace():
    _capture, add = load("07")
    _capture, rep = load("08")
    assert add["nlmsg_flags"] == 0x605  # REQUEST|ACK|EXCL|CREATE
    assert rep["nlmsg_flags"] == 0x405  # REQUEST|ACK|CREATE (tc sets no NLM_F_REPLACE)
    assert add["attrs"] == rep["attrs"]
    assert opts(add)["actions"][0]["cookie"] == b"\xf1tool"


def test_09_del_handle():
    _capture, m = load("09")
    assert m["nlmsg_type"] == nlparse.RTM_DELTFILTER
    assert m["handle"] == 0x00100002
    assert set(m["attrs"]) == {nlparse.TCA_KIND}


def test_10_chain():
    _capture, m = load("10")
    assert nlparse.u32(m["attrs"][nlparse.TCA_CHAIN]) == 5
    assert m["parent"] == 0xFFFFFFF2  # "ingress" keyword = TC_H_MIN_INGRESS
    assert opts(m)["divisor"] == 1


def test_11_del_prio():
    _capture, m = load("11")
    assert m["nlmsg_type"] == nlparse.RTM_DELTFILTER
    assert (m["handle"], m["parent"], m["attrs"]) == (0, 0xFFFF0000, {})


def test_12_gact_drop():
    _capture, m = load("12")
    (a,) = opts(m)["actions"]
    assert a["kind"] == "gact" and a["cookie"] is None and a["other"] == {}
    assert tc_gen(act_params(a, 2))[2] == TC_ACT_SHOT


def test_17_gact_determ_sample():
    # what tc writes for "gact continue random determ pipe 10": TCA_GACT_PROB (3) is struct tc_gact_p
    # {u16 ptype (PGACT_DETERM = 2), u16 pval, int paction}, the base action in TCA_GACT_PARMS
    _capture, m = load("17")
    gact, mirred = opts(m)["actions"]
    assert (gact["kind"], mirred["kind"]) == ("gact", "mirred")
    assert tc_gen(act_params(gact, 2))[2] == TC_ACT_UNSPEC
    assert struct.unpack("=HHi", act_params(gact, 3)) == (2, 10, TC_ACT_PIPE)


def test_19_20_pool_hashkey_and_bucket():
    # "link 2: hashkey mask 0x000000ff at 12": hoff 12 and hmask (big-endian) 0xff in the selector, no flag
    _capture, m = load("19")
    o = opts(m)
    assert o["link"] == 0x00200000 and o["sel_decoded"]["hoff"] == 12 and o["sel_decoded"]["hmask"] == 0xFF
    assert o["sel_decoded"]["flags"] == 0
    # "handle 2:5:1 ... ht 2:5:": the bucket is bits 12-19 of both the handle and TCA_U32_HASH
    _capture, m = load("20")
    assert m["handle"] == 0x00205001 and opts(m)["hash"] == 0x00205000
    _capture, m = load("18")
    assert opts(m)["divisor"] == 256


def test_21_ct_reassembly_node():
    # "action ct pipe ... action ct clear reclassify": TCA_CT_ACTION (3, u16) is 0 for plain ct and
    # TCA_CT_ACT_CLEAR (4) for clear; TCA_CT_PARMS (1) is a tc_gen carrying the control
    _capture, m = load("21")
    o = opts(m)
    assert m["handle"] == 0x80000FF2 and o["link"] is None
    ct, clear = o["actions"]
    assert (ct["kind"], clear["kind"]) == ("ct", "ct")
    assert ct["cookie"] == clear["cookie"] == b"\xf1\x02fr"
    assert tc_gen(act_params(ct, 1))[2] == TC_ACT_PIPE and tc_gen(act_params(clear, 1))[2] == 1
    assert struct.unpack("=H", act_params(ct, 3)[:2]) == (0,)
    assert struct.unpack("=H", act_params(clear, 3)[:2]) == (4,)
    keys = [(k[0], k[1], k[2]) for k in o["sel_decoded"]["keys"]]
    assert (0x00FF0000, 0x00110000, 8) in keys and (0x00002000, 0x00002000, 4) in keys, keys


def test_parser_basics():
    nla = struct.pack("=HH", 8, 3 | nlparse.NLA_F_NESTED) + b"\x01\x00\x00\x00"
    nla += struct.pack("=HH", 5, 3) + b"x\0\0\0"
    assert nlparse.parse_attrs(nla) == [(3, b"\x01\x00\x00\x00"), (3, b"x")]
    assert nlparse.attrs_dict(nla) == {3: [b"\x01\x00\x00\x00", b"x"]}
    with pytest.raises(ValueError):
        nlparse.parse_attrs(struct.pack("=HH", 12, 1) + b"\0\0\0\0")
