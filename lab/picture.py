"""Draw the demo as a PNG: the lab's topology with what crossed each link, and each collector's copies per
second over the run (from the lab's Prometheus).

    python3 lab/picture.py SUMMARY.json PROMETHEUS.json OUT.png [--topology lab/topology.json]

SUMMARY.json is lab/playbooks/collect.yml's (what each collector received), PROMETHEUS.json
lab/playbooks/prometheus.yml's (the kernel's copies per collector during the run, and their rate). Needs
matplotlib (in .venv after `make deps`).
"""

import argparse
import json
import os

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def hosts_by_group(topology):
    out = {}
    for host in topology["hosts"]:
        out.setdefault(host.get("group", ""), []).append(host["name"])
    return out


def draw_topology(ax, groups, summary, prom):
    ax.set_axis_off()
    ax.set_xlim(0, 10)
    exporters, collectors = groups.get("exporters", []), groups.get("collectors", [])
    replicators, monitors = groups.get("replicators", []), groups.get("monitoring", [])
    rows = max(len(exporters), len(collectors), 1)
    ax.set_ylim(-1.2, rows)

    def box(x, y, text, color):
        ax.text(x, y, text, ha="center", va="center", fontsize=8,
                bbox=dict(boxstyle="round,pad=0.4", facecolor=color, edgecolor="#555555"))

    rep_y = (rows - 1) / 2.0
    up = prom.get("up", {})
    box(3.6, rep_y, "\n".join("%s (%s)" % (r, "up" if up.get(r) == 1 else "down") for r in replicators)
        + "\ntc: copy, keep source", "#d8e8f8")
    for i, name in enumerate(exporters):
        y = rows - 1 - i * (rows - 1) / max(len(exporters) - 1, 1)
        box(1.2, y, name, "#f3e3c3")
        ax.annotate("", xy=(2.6, rep_y), xytext=(1.7, y), arrowprops=dict(arrowstyle="->", color="#888888"))
    copies = prom.get("copies", {})
    for i, name in enumerate(collectors):
        y = rows - 1 - i
        received = summary.get("collectors", {}).get(name) or {}
        box(8.8, y, name, "#dcefd8")
        ax.annotate("", xy=(8.1, y), xytext=(4.6, rep_y), arrowprops=dict(arrowstyle="->", color="#4a7f3f"))
        kernel = sum(copies.get(name, {}).values())
        text = "%d copies (kernel)\n%s" % (kernel, ", ".join(
            "%s %d" % (proto, entry.get("messages", 0)) for proto, entry in sorted(received.items())))
        # near the collector's end of its arrow, where the arrows are far apart
        ax.text(7.0, rep_y + (y - rep_y) * 0.7 + 0.22, text, fontsize=6.5, ha="center", va="center",
                bbox=dict(facecolor="white", edgecolor="none", alpha=0.8))
    if monitors:
        firing = ", ".join(prom.get("alerts", [])) or "none"
        box(3.6, -0.9, "%s: Prometheus (alerts firing: %s)" % (", ".join(monitors), firing), "#eeeeee")
    ax.set_title("run %s: what each link carried" % summary.get("run_id", ""), fontsize=9)


def draw_rates(ax, prom):
    since = prom.get("since", 0)
    for name, points in sorted(prom.get("rates", {}).items()):
        if points:
            ax.plot([t - since for t, _v in points], [v for _t, v in points], label=name)
    ax.set_xlabel("seconds since the exporters started sending")
    ax.set_ylabel("copies/s (kernel counters, both replicators)")
    ax.set_title("copies per collector (Prometheus: logfwdr_copies_packets_total)", fontsize=9)
    ax.grid(True, alpha=0.3)
    if prom.get("rates"):
        ax.legend(fontsize=7)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    p.add_argument("summary")
    p.add_argument("prometheus")
    p.add_argument("out")
    p.add_argument("--topology", default=os.path.join(HERE, "topology.json"))
    args = p.parse_args(argv)
    with open(args.summary, encoding="utf-8") as f:
        summary = json.load(f)
    with open(args.prometheus, encoding="utf-8") as f:
        prom = json.load(f)
    with open(args.topology, encoding="utf-8") as f:
        groups = hosts_by_group(json.load(f))
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5), gridspec_kw={"width_ratios": [1.2, 1]})
    draw_topology(left, groups, summary, prom)
    draw_rates(right, prom)
    fig.tight_layout()
    fig.savefig(args.out, dpi=90)
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
