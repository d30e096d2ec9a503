"""What the lab's Prometheus saw of a traffic run, as JSON on stdout (runs on the monitoring host; stdlib only).

usage: lab_prometheus.py --since EPOCH [--until EPOCH] [--url http://127.0.0.1:9090] [--job logfwdr]
                         [--targets N] [--wait S] [--step S]

- up: {instance: 0|1} of the job; waits up to --wait seconds until --targets instances are up
- copies: {collector: {port: n}}, how much logfwdr_copies_packets_total (summed over every replicator and
  ingress interface) rose from --since to --until (default: the newest scrape): the kernel's own counters
- rates: {collector: [[t, copies/s], ...]} from --since to --until every --step seconds, for the demo's picture
- alerts: the names of the alerts firing now
"""

import argparse
import json
import sys
import time
import urllib.parse
import urllib.request

COPIES = 'sum by (collector, port) (logfwdr_copies_packets_total{job="%s"})'
RATES = 'sum by (collector) (rate(logfwdr_copies_packets_total{job="%s"}[%ds]))'


def api(url, path, **params):
    with urllib.request.urlopen("%s/api/v1/%s?%s" % (url, path, urllib.parse.urlencode(params)), timeout=10) as r:
        body = json.load(r)
    if body.get("status") != "success":
        raise RuntimeError("%s: %s" % (path, body))
    return body["data"]


def copies_at(url, job, when):
    out = {}
    for series in api(url, "query", query=COPIES % job, time="%.3f" % when)["result"]:
        labels = series["metric"]
        out.setdefault(labels.get("collector", ""), {})[labels.get("port", "")] = int(float(series["value"][1]))
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    p.add_argument("--since", type=float, required=True, help="start of the run (epoch seconds)")
    p.add_argument("--until", type=float, help="end of the run (default: now)")
    p.add_argument("--url", default="http://127.0.0.1:9090")
    p.add_argument("--job", default="logfwdr")
    p.add_argument("--targets", type=int, default=2, help="instances that must be up (default 2)")
    p.add_argument("--wait", type=float, default=60, help="seconds to wait for them (default 60)")
    p.add_argument("--step", type=float, default=2, help="seconds between rate points (default 2)")
    args = p.parse_args(argv)

    deadline = time.time() + args.wait
    while True:
        up = dict((s["metric"].get("instance", ""), int(float(s["value"][1])))
                  for s in api(args.url, "query", query='up{job="%s"}' % args.job)["result"])
        if sum(up.values()) >= args.targets or time.time() > deadline:
            break
        time.sleep(1)
    until = args.until or time.time()
    before, after = copies_at(args.url, args.job, args.since), copies_at(args.url, args.job, until)
    copies = dict((c, dict((port, n - before.get(c, {}).get(port, 0)) for port, n in ports.items()))
                  for c, ports in after.items())
    window = max(int(args.step * 3), 6)  # at least two scrapes in every rate window
    rates = {}
    for series in api(args.url, "query_range", query=RATES % (args.job, window), start="%.3f" % args.since,
                      end="%.3f" % until, step="%g" % args.step)["result"]:
        rates[series["metric"].get("collector", "")] = [[float(t), float(v)] for t, v in series["values"]]
    alerts = sorted(set(a["labels"]["alertname"] for a in api(args.url, "alerts")["alerts"]
                        if a.get("state") == "firing"))
    json.dump({"up": up, "since": args.since, "until": until, "copies": copies, "rates": rates, "alerts": alerts},
              sys.stdout, sort_keys=True)
    print()
    return 0 if sum(up.values()) >= args.targets else 1


if __name__ == "__main__":
    sys.exit(main())
