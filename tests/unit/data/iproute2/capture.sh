#!/usr/bin/env bash
# Regenerate the iproute2 reference netlink captures in this directory.
#
# What it does:
#   * creates a throwaway network namespace "lfcap" with a veth pair in0/out0
#     (no traffic is ever sent; in0 gets an ingress qdisc via capture 01),
#   * runs each tc command below under
#       strace -f -e trace=sendmsg,sendto -e write=all
#     which hex-dumps every buffer tc hands to the netlink socket,
#   * keeps only the request carrying the rule (RTM_NEWQDISC=36,
#     RTM_NEWTFILTER=44, RTM_DELTFILTER=45) and drops auxiliary messages
#     (RTM_GETLINK dumps, action probes, ...),
#   * writes NN_name.json with keys command, ifindex, nlmsg_hex, tc_version,
#     captured (+ tc_rc / tc_stderr for information),
#   * deletes the namespace.
#
# The kernel is free to reject a request (e.g. missing act_* modules): the
# request bytes are captured before the kernel answers, so that is harmless.
# nlmsg_seq in the captured header is tc's time-based sequence number and
# differs on every run; tests must not compare it.
#
# Requirements: root, iproute2 (tc, ip), strace, python3 (stdlib only).
# Usage: sudo tests/unit/data/iproute2/capture.sh [outdir]
# NEVER run from unit tests.
set -euo pipefail

NS=lfcap
OUT=${1:-$(cd "$(dirname "$0")" && pwd)}
TMP=$(mktemp -d)
TC_VERSION=$(tc -V)
DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ)

cleanup() { ip netns del "$NS" 2>/dev/null || true; rm -rf "$TMP"; }
trap cleanup EXIT

ip netns del "$NS" 2>/dev/null || true
ip netns add "$NS"
ip -n "$NS" link add in0 type veth peer name out0
ip -n "$NS" link set in0 up
ip -n "$NS" link set out0 up
IF_IN=$(ip netns exec "$NS" cat /sys/class/net/in0/ifindex)
IF_OUT=$(ip netns exec "$NS" cat /sys/class/net/out0/ifindex)

capture() {  # capture NN_name "tc args..."
    local name=$1 cmd=$2 rc=0
    # shellcheck disable=SC2086
    ip netns exec "$NS" strace -f -qq -e trace=sendmsg,sendto -e write=all \
        -o "$TMP/$name.strace" tc $cmd 2>"$TMP/$name.stderr" || rc=$?
    python3 - "$TMP/$name.strace" "$OUT/$name.json" "tc $cmd" "$IF_IN" "$IF_OUT" \
        "$TC_VERSION" "$DATE" "$rc" "$TMP/$name.stderr" <<'PY'
import json, re, struct, sys
trace, out, cmd, if_in, if_out, ver, date, rc, errf = sys.argv[1:]
WANTED = {36, 44, 45}   # RTM_NEWQDISC, RTM_NEWTFILTER, RTM_DELTFILTER
calls, cur = [], None
for line in open(trace):
    if re.match(r"^\d+\s+(sendmsg|sendto)\(", line):
        cur = bytearray(); calls.append(cur)          # one syscall = one datagram
    elif line.startswith(" | ") and cur is not None:
        # " | 00000  xx xx .. xx  xx .. xx  ascii |": hex field is columns 10..58
        cur += bytes.fromhex(line[10:59].replace(" ", ""))
msgs = []
for buf in calls:
    off = 0
    while off + 16 <= len(buf):
        ln, typ = struct.unpack_from("=IH", buf, off)
        if ln < 16: break
        if typ in WANTED: msgs.append(bytes(buf[off:off + ln]))
        off += (ln + 3) & ~3
if len(msgs) != 1:
    sys.exit(f"{out}: expected exactly one rule message, got {len(msgs)}")
json.dump({"command": cmd, "ifindex": {"in0": int(if_in), "out0": int(if_out)},
           "nlmsg_hex": msgs[0].hex(), "tc_version": ver, "captured": date,
           "tc_rc": int(rc), "tc_stderr": open(errf).read().strip()},
          open(out, "w"), indent=2)
open(out, "a").write("\n")
print(f"{out}: {len(msgs[0])} bytes, tc rc={rc}")
PY
}

U="dev in0 parent ffff: protocol ip prio 49152"
MATCH3="match u8 0x45 0xff at 0 match u16 0 0x1fff at 6 match u8 17 0xff at 9 match u16 514 0xffff at 22"
SKBMOD="action skbmod set dmac 02:00:00:00:00:02 set smac 02:00:00:00:00:01 pipe"

capture 01_qdisc_ingress      "qdisc add dev in0 ingress"
capture 02_ht_divisor         "filter add $U handle 1: u32 divisor 1"
capture 03_root_link          "filter add $U handle 800::1 u32 $MATCH3 link 1:"
capture 04_root_link_drop     "filter add $U handle 800::1 u32 $MATCH3 link 1: action drop cookie f1"
capture 05_skbmod_nat_mirred  "filter add $U handle 1::801 u32 ht 1: match u32 0 0 $SKBMOD action nat ingress 0.0.0.0/0 192.0.2.10 pipe action mirred egress mirror dev out0 continue cookie 73706c756e6b"
capture 06_police_chain       "filter add $U handle 1::b01 u32 ht 1: match ip src 10.1.0.0/16 action police pkts_rate 1000 pkts_burst 100 conform-exceed continue/pipe $SKBMOD action nat ingress 0.0.0.0/0 192.0.2.11 pipe action pedit munge offset 22 u16 set 1514 pipe action csum udp pipe action mirred egress mirror dev out0 continue cookie 6e66636170"
capture 07_mirred_add         "filter add $U handle 1::2 u32 ht 1: match u32 0 0 action mirred egress mirror dev out0 continue cookie f1746f6f6c"
capture 08_mirred_replace     "filter replace $U handle 1::2 u32 ht 1: match u32 0 0 action mirred egress mirror dev out0 continue cookie f1746f6f6c"
capture 09_filter_del_handle  "filter del $U handle 1::2 u32"
capture 10_chain_divisor      "filter add dev in0 ingress chain 5 protocol ip prio 49152 handle 1: u32 divisor 1"
capture 11_filter_del_prio    "filter del $U"
capture 12_gact_drop          "filter add $U handle 1::3 u32 ht 1: match u32 0 0 action gact drop"
# what tc_mirror writes for forward destinations: pedit sets the whole destination address (act_nat can
# only rewrite an address it matches), csum fixes the IP header and UDP checksums
capture 13_skbmod_pedit_csum    "filter add $U handle 1::401 u32 ht 1: match u32 0 0 $SKBMOD action pedit munge ip dst set 192.0.2.10 pipe action csum ip4h udp pipe action mirred egress mirror dev out0 continue cookie f173706c756e6b"
capture 14_forward_every_option "filter add $U handle 1::c01 u32 ht 1: match ip src 10.1.0.0/16 action police pkts_rate 1000 pkts_burst 100 conform-exceed continue/pipe $SKBMOD action pedit munge ip dst set 192.0.2.11 munge offset 22 u16 set 1514 pipe action csum ip4h udp pipe action mirred egress mirror dev out0 continue cookie f16e66636170"
# a dispatch node scoped to the segment: frames for in0's MAC, sent to one address, from one exporter prefix
capture 15_root_link_scoped   "filter add $U handle 800::2 u32 $MATCH3 match ether dst 02:00:00:00:00:0a match ip dst 10.77.0.1/32 match ip src 10.77.0.0/24 link 1:"
# the per-port cap in front of every copy: over the rate the packet is dropped, else the next node runs
capture 16_gate_police        "filter add $U handle 1::1 u32 ht 1: match u32 0 0 action police pkts_rate 20000 pkts_burst 2000 conform-exceed drop/continue cookie f100636170"
# a sampled destination (every 10th packet): gact continue, random determ pipe, before the copy
capture 17_gact_determ_sample  "filter add $U handle 1::2 u32 ht 1: match u32 0 0 action gact continue random determ pipe 10 action mirred egress mirror dev out0 continue cookie f1746f6f6c"
# a collector pool: its hash table of 256 buckets, the port table's link node hashing on the last octet of the
# source address, and one bucket's node
capture 18_pool_ht_divisor    "filter add $U handle 2: u32 divisor 256"
capture 19_pool_link_hashkey  "filter add $U handle 1::400 u32 ht 1: match u32 0 0 link 2: hashkey mask 0x000000ff at 12"
capture 20_pool_bucket_node   "filter add $U handle 2:5:1 u32 ht 2:5: match u32 0 0 action mirred egress mirror dev out0 continue cookie f16d31"
# reassembly (fragments: reassemble): a root node per fragment bit (here MF) for frames to in0's MAC; ct
# reassembles (a fragment that does not complete a datagram is stolen), ct clear drops the conntrack entry
# and the complete datagram is classified again from the first filter
capture 21_frag_reassemble    "filter add $U handle 800::ff2 u32 match u8 17 0xff at 9 match u16 0x2000 0x2000 at 6 match ether dst 02:00:00:00:00:0a action ct pipe cookie f1026672 action ct clear reclassify cookie f1026672"
