"""Summarise what this lab collector received (runs ON the collector, stdlib only).

Reads the receivers' own output (files written by rsyslog, snmptrapd, nfcapd via nfdump,
sfacctd, and the tcpdump sFlow transport witness) and prints one JSON object:

  {"host": ..., "run_id": ..., "protocols": {
     "syslog":   {"messages", "run_messages", "sources", "ports", "examples"},
     "syslog-tcp": {...same, plus "senders" (origin SD ip / HOSTNAME), "formats"},
     "snmptrap": {"messages", "run_messages", "sources", "ports", "examples"},
     "netflow":  {"messages" (flow records), "packets", "sources" (exporter %ra),
                  "versions", "examples"},            # nfcapd on the NetFlow port
     "ipfix":    {...same...},                         # nfcapd on the IPFIX port
     "sflow":    {"messages" (datagrams seen by the witness), "samples" (sfacctd packets
                  with sampling rate 1 = flow samples), "sources" (UDP source of the
                  datagrams), "agents" (agent address inside sFlow = sfacctd peer_ip_src),
                  "examples"}}}
A protocol appears only when something of it was received.

usage: lab_collect.py --run-id ID [--log-dir /var/log/lab] [--flow-dir /var/lib/lab/flows]
                      [--netflow-port 2055] [--ipfix-port 4739]
"""

import argparse
import glob
import json
import os
import re
import socket
import subprocess

EXAMPLES = 3


def read_lines(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            # snmptrapd -Lf does not open with O_APPEND: after traffic.yml truncates the log,
            # the next line starts after a run of NUL bytes
            return [line.strip("\0\n") for line in f if line.strip("\0\n \t")]
    except FileNotFoundError:
        return []


def new_entry():
    return {"messages": 0, "run_messages": 0, "sources": set(), "ports": set(), "examples": []}


def finish(entry):
    out = dict(entry)
    for key, value in out.items():
        if isinstance(value, set):
            out[key] = sorted(value)
    return out


ORIGIN_RE = re.compile(r'\[origin [^\]]*ip="([^"]+)"')
IPV4_RE = re.compile(r"^\d+\.\d+\.\d+\.\d+$")


def syslog(log_dir, run_id):
    """Two entries: "syslog" (sent over UDP, replicated by tc) and "syslog-tcp" (sent over TCP,
    marked via=tcp by traffic.yml, re-sent over UDP by the replicator's bridge). For the latter,
    "senders" is who the bridge says sent it: the origin SD's ip (RFC 5424) or the HOSTNAME
    when it is an address (RFC 3164); "formats" which of the two arrived."""
    udp, tcp = new_entry(), new_entry()
    tcp["senders"], tcp["formats"] = set(), set()
    for line in read_lines(os.path.join(log_dir, "syslog.log")):
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        msg = rec.get("msg", "")
        e = tcp if " via=tcp" in msg + " " else udp
        e["messages"] += 1
        e["sources"].add(rec.get("from", ""))
        m = re.match(r"udp(\d+)$", rec.get("input", ""))
        if m:
            e["ports"].add(int(m.group(1)))
        if run_id and "LFRUN=%s " % run_id in msg + " ":
            e["run_messages"] += 1
        if e is tcp:
            origin = ORIGIN_RE.search(rec.get("sd", ""))
            if origin:
                e["senders"].add(origin.group(1))
                e["formats"].add("rfc5424")
            elif IPV4_RE.match(rec.get("host", "")):
                e["senders"].add(rec["host"])
                e["formats"].add("rfc3164")
            else:
                e["senders"].add("unidentified")
        if len(e["examples"]) < EXAMPLES:
            e["examples"].append("%s %s" % (rec.get("tag", ""), msg))
    return udp, tcp


# TRAP2|UDP: [10.10.1.21]:45678->[10.20.1.32]:162|<varbinds, tab separated>
TRAP_RE = re.compile(r"^TRAP[12]\|UDP: \[([^\]]+)\]:\d+->\[([^\]]+)\]:(\d+)\|(.*)$")


def snmptrap(log_dir, run_id):
    e = new_entry()
    for line in read_lines(os.path.join(log_dir, "snmptrapd.log")):
        m = TRAP_RE.match(line)
        if not m:
            continue
        e["messages"] += 1
        e["sources"].add(m.group(1))
        e["ports"].add(int(m.group(3)))
        varbinds = m.group(4)
        if run_id and re.search(r'STRING: "[^"]*LFRUN=%s[ "]' % re.escape(run_id), varbinds):
            e["run_messages"] += 1
        if len(e["examples"]) < EXAMPLES:
            e["examples"].append(varbinds.split("\t")[-1])
    return e


NF_FMT = "fmt:%ra|%pr|%sa|%da|%sp|%dp|%pkt|%byt"
# SysID: 1, IP:        10.10.1.21, version: 9, ID:  0, Sequence failures: 0, packets: 1, flows: 16
EXPORTER_RE = re.compile(r"IP:\s*([0-9a-fA-F.:]+),\s*version:\s*(\d+)")


def nfcapd(flow_dir, port):
    e = new_entry()
    e["packets"] = 0
    e["versions"] = set()
    del e["run_messages"]
    del e["ports"]
    d = os.path.join(flow_dir, str(port))
    files = sorted(glob.glob(os.path.join(d, "nfcapd.2*")))  # rotated files only
    if not files:
        return e
    out = subprocess.run(["nfdump", "-R", d, "-q", "-N", "-o", NF_FMT], capture_output=True,
                         text=True, check=False).stdout
    for line in out.splitlines():
        fields = [f.strip() for f in line.split("|")]
        if len(fields) != 8 or not fields[6].isdigit():
            continue
        e["messages"] += 1
        e["sources"].add(fields[0])
        e["packets"] += int(fields[6])
        if len(e["examples"]) < EXAMPLES:
            e["examples"].append("proto %s %s:%s -> %s:%s pkts %s" % (
                fields[1], fields[2], fields[4], fields[3], fields[5], fields[6]))
    for path in files:
        out = subprocess.run(["nfdump", "-E", path], capture_output=True, text=True,
                             check=False).stdout
        for m in EXPORTER_RE.finditer(out):
            e["versions"].add(int(m.group(2)))
    return e


# 20:27:01.399840 IP 10.0.0.21.58317 > 10.0.0.31.6343: sFlowv5, IPv4 agent 10.0.0.99, ...
WITNESS_RE = re.compile(r" IP (\d+\.\d+\.\d+\.\d+)\.\d+ > (\d+\.\d+\.\d+\.\d+)\.(\d+): sFlowv5")


def sflow(log_dir):
    e = new_entry()
    del e["run_messages"]
    e["samples"] = 0
    e["agents"] = set()
    for line in read_lines(os.path.join(log_dir, "sflow-transport.log")):
        m = WITNESS_RE.search(line)
        if m:
            e["messages"] += 1
            e["sources"].add(m.group(1))
            e["ports"].add(int(m.group(3)))
    for line in read_lines(os.path.join(log_dir, "sflow.json")):
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        e["samples"] += int(rec.get("packets", 0))
        e["agents"].add(rec.get("peer_ip_src", ""))
        if len(e["examples"]) < EXAMPLES:
            e["examples"].append("%s %s -> %s pkts %s" % (
                rec.get("ip_proto"), rec.get("ip_src"), rec.get("ip_dst"), rec.get("packets")))
    for line in read_lines(os.path.join(log_dir, "sflow-counters.json")):
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if rec.get("event_type") == "log":
            e["agents"].add(rec.get("peer_ip_src", ""))
    return e


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run-id", default="")
    ap.add_argument("--log-dir", default="/var/log/lab")
    ap.add_argument("--flow-dir", default="/var/lib/lab/flows")
    ap.add_argument("--netflow-port", type=int, default=2055)
    ap.add_argument("--ipfix-port", type=int, default=4739)
    args = ap.parse_args()
    syslog_udp, syslog_tcp = syslog(args.log_dir, args.run_id)
    found = {
        "syslog": syslog_udp,
        "syslog-tcp": syslog_tcp,
        "snmptrap": snmptrap(args.log_dir, args.run_id),
        "netflow": nfcapd(args.flow_dir, args.netflow_port),
        "ipfix": nfcapd(args.flow_dir, args.ipfix_port),
        "sflow": sflow(args.log_dir),
    }
    protocols = {}
    for name, entry in found.items():
        if entry["messages"] or entry.get("samples"):
            protocols[name] = finish(entry)
    print(json.dumps({"host": socket.gethostname(), "run_id": args.run_id,
                      "protocols": protocols}, sort_keys=True))


if __name__ == "__main__":
    main()
