# -*- coding: utf-8 -*-
"""What the logfwdr agent costs: CPU and resident memory idle, and CPU under a stream of netlink events.

On the host kernel, in a throwaway replicator namespace (lib/lflab/netlab.py) with --destinations mirror
destinations on udp/514 (one tool port each), the agent runs as its own process (`logfwdr agent`, the module's
code from this checkout). Its CPU time is read from /proc/<pid>/stat over each phase:

  idle     --seconds with nothing happening (sweeps only, every --sweep seconds)
  events   --seconds while neighbour entries on a tool port (an egress device, so every event concerns the
           rules) are rewritten --rate times a second, evenly spaced (each one is a netlink event the agent
           reads and acts on: it compares the kernel with the desired state, at most five times a second)
  metrics  --seconds with a Prometheus scrape every second (counters read from the kernel per scrape)

and its resident set size (VmRSS) at the end of each phase. Exit status is non-zero only for setup errors.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))  # the lab library, lib/lflab
from lflab import netlab  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
EVENTS = r"""
import sys, time
from pyroute2 import IPRoute
rate, seconds = float(sys.argv[1]), float(sys.argv[2])
ipr = IPRoute()
tool0 = ipr.link_lookup(ifname="tool0")[0]
start, n = time.time(), 0
while time.time() - start < seconds:
    due = start + n / rate
    if due > time.time():
        time.sleep(due - time.time())
    ipr.neigh("replace", dst="10.77.9.%d" % (1 + n % 8), lladdr="02:00:00:00:%02x:01" % (n // 8 % 2),
              ifindex=tool0, state=0x80)
    n += 1
print(n)
"""
CLI = "import sys; from ansible_collections.netops.logfwdr.plugins.module_utils.tc import cli; sys.exit(cli.main())"


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / float(TICK)


def rss_mb(pid):
    with open("/proc/%d/status" % pid) as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return None


def phase(pid, seconds, during=None):
    start_cpu, start = cpu_seconds(pid), time.time()
    if during is not None:
        during(seconds)
    else:
        time.sleep(seconds)
    return (cpu_seconds(pid) - start_cpu) / (time.time() - start) * 100, rss_mb(pid)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--destinations", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=50.0, help="netlink events per second (default 50)")
    parser.add_argument("--sweep", type=float, default=5.0)
    parser.add_argument("--python", default=sys.executable)
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root (network namespaces)")
    tmp = tempfile.mkdtemp(prefix="logfwdr-agent-cost-")
    with netlab.Lab("ac") as lab:
        tools = lab.add_receivers(args.destinations)
        state = {"devices": [{"name": "in0", "ports": [{"port": 514, "destinations": [
            {"name": "c%d" % i, "mode": "mirror", "device": tool} for i, tool in enumerate(tools)]}]}]}
        path = os.path.join(tmp, "state.json")
        with open(path, "w") as handle:
            json.dump(state, handle)
        env = dict(os.environ, PYTHONPATH=netlab.ensure_collection_path(), LOGFWDR_LOCK=os.path.join(tmp, "lock"),
                   LOGFWDR_RUN_DIR=os.path.join(tmp, "run"))
        log = open(os.path.join(tmp, "agent.log"), "w")
        agent = subprocess.Popen(["ip", "netns", "exec", lab.rep, args.python, "-c", CLI, "agent", "--state", path,
                                  "--health-file", os.path.join(tmp, "health"), "--sweep", str(args.sweep),
                                  "--metrics-listen", "127.0.0.1:9514"], stderr=log, env=env)
        lab.procs.append(agent)
        deadline = time.time() + 20
        while not os.path.exists(os.path.join(tmp, "health")):
            if agent.poll() is not None or time.time() > deadline:
                sys.exit("the agent did not start: %s" % open(os.path.join(tmp, "agent.log")).read())
            time.sleep(0.1)
        time.sleep(2)

        idle_cpu, idle_rss = phase(agent.pid, args.seconds)

        def neighbour_events(seconds):
            # evenly spaced: one neighbour entry rewritten every 1/rate s (each write is one netlink event)
            netlab.sh("ip", "netns", "exec", lab.rep, args.python, "-c", EVENTS, str(args.rate), str(seconds),
                      env=env)

        events_cpu, events_rss = phase(agent.pid, args.seconds, neighbour_events)

        def scrapes(seconds):
            end = time.time() + seconds
            while time.time() < end:
                tick = time.time()
                netlab.sh("ip", "netns", "exec", lab.rep, sys.executable, "-c",
                          "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9514/metrics').read()")
                time.sleep(max(0.0, 1.0 - (time.time() - tick)))

        metrics_cpu, metrics_rss = phase(agent.pid, args.seconds, scrapes)
        agent.terminate()
        agent.wait(timeout=10)
        reconciles = open(os.path.join(tmp, "agent.log")).read().count("repaired")
    print("logfwdr agent, %d mirror destinations, sweep %.0f s, %s" % (args.destinations, args.sweep, args.python))
    print("  idle                 %5.2f %% of a core   RSS %.1f MB" % (idle_cpu, idle_rss))
    print("  %3.0f netlink events/s %5.2f %% of a core   RSS %.1f MB" % (args.rate, events_cpu, events_rss))
    print("  1 scrape/s           %5.2f %% of a core   RSS %.1f MB" % (metrics_cpu, metrics_rss))
    print("  repairs logged: %d (the events changed nothing the rules use)" % reconciles)


if __name__ == "__main__":
    main()
