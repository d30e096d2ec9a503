"""Print what each lab collector received, from the summary written by lab/playbooks/collect.yml.

    python3 lab/report.py .build/lab-endpoints/summary.json [.build/lab-endpoints/prometheus.json]

With the second file (lab/playbooks/prometheus.yml), the "kernel" column is what the lab's Prometheus read from
both replicators' agents: how many copies the kernel sent to the collector on that protocol's port during the
run (syslog over UDP and traps only; flows and sFlow run all the time), and a line says which agents were up
and which alerts fired.

One table per collector: protocol, messages received (syslog messages, traps, flow records,
sFlow datagrams), source addresses seen (the UDP source, i.e. the exporter when the replicator
kept it; for syslog-tcp, sent over TCP and re-sent by the replicator's bridge, the replicator,
with the exporter named in the message as "senders"), and details (ports for syslog/traps, export versions for NetFlow/IPFIX, flow samples
and agent address for sFlow; how many messages carry this run's id).
"""

import json
import sys

ORDER = ["syslog", "syslog-tcp", "snmptrap", "netflow", "ipfix", "sflow"]


def details(proto, entry, run_id):
    parts = []
    if entry.get("ports"):
        parts.append("port " + ",".join(str(p) for p in entry["ports"]))
    if entry.get("senders"):
        parts.append("senders %s (%s)" % (",".join(entry["senders"]), ",".join(entry.get("formats", []))))
    if "run_messages" in entry:
        parts.append("%d with run id %s" % (entry["run_messages"], run_id))
    if entry.get("versions"):
        parts.append("version " + ",".join(str(v) for v in entry["versions"]))
    if "packets" in entry:
        parts.append("%d packets" % entry["packets"])
    if proto == "sflow":
        parts.append("%d samples" % entry.get("samples", 0))
        parts.append("agent " + ",".join(entry.get("agents", [])))
    return "; ".join(parts)


def render(summary, prom=None):
    run_id = summary.get("run_id", "")
    lines = ["run %s" % run_id]
    if prom is not None:
        up = prom.get("up", {})
        lines.append("Prometheus: agents up %s; alerts firing: %s" % (
            ", ".join("%s=%s" % item for item in sorted(up.items())) or "none",
            ", ".join(prom.get("alerts", [])) or "none"))
    header = ("protocol", "messages", "kernel", "sources", "details") if prom is not None else (
        "protocol", "messages", "sources", "details")
    # protocol -> port of the kernel counts to show: lab_counted_protocols, written by prometheus.yml
    counted_ports = {p: str(port) for p, port in (prom or {}).get("counted", {}).items()}
    for name in sorted(summary.get("collectors", {})):
        protocols = summary["collectors"][name] or {}
        rows = []
        for proto in sorted(protocols, key=lambda p: (ORDER.index(p) if p in ORDER else 99, p)):
            entry = protocols[proto]
            row = [proto, str(entry.get("messages", 0)), ", ".join(entry.get("sources", [])),
                   details(proto, entry, run_id)]
            if prom is not None:
                counted = prom.get("copies", {}).get(name, {}).get(counted_ports.get(proto, ""))
                row.insert(2, "-" if proto not in counted_ports else str(counted or 0))
            rows.append(tuple(row))
        lines.append("")
        lines.append(name)
        if not rows:
            lines.append("  (nothing received)")
            continue
        widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
        fmt = "  " + "  ".join("%%-%ds" % w for w in widths)
        lines.append((fmt % header).rstrip())
        lines.extend((fmt % row).rstrip() for row in rows)
    return "\n".join(lines)


def main(argv):
    if len(argv) not in (2, 3):
        sys.stderr.write("usage: %s SUMMARY.json [PROMETHEUS.json]\n" % argv[0])
        return 2
    with open(argv[1], encoding="utf-8") as f:
        summary = json.load(f)
    prom = None
    if len(argv) == 3:
        with open(argv[2], encoding="utf-8") as f:
            prom = json.load(f)
    print(render(summary, prom))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
