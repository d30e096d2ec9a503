"""Power cuts on the lab's replicator pair with no playbook run afterwards: the agent puts the rules back.

    flock /tmp/logfwdr-lab.lock python3 bench/boot_rules.py [--both]

Needs the lab up and deployed (`make demo` leaves it so). replicator1 (the primary) loses power
(`lab/labctl poweroff`) and boots again (`lab/labctl start`); nobody runs Ansible. On it, from systemd's own
timestamps: when network-online.target was reached, when logfwdr-agent.service was ready (Type=notify: its first
comparison, rules installed, done) and when keepalived started; then `logfwdr status` (every destination active?),
the health file, and how long until replicator1 holds the VRRP addresses again (its preempt delay included).
With --both, both replicators lose power and boot again at once; then both must have their rules back, one of
them must hold the addresses, and a datagram from exporter1 to the virtual address must be copied.

Prints what it measured; exit status is non-zero when the lab is not usable or a host did not come back.
"""

import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))  # lib/lflab
from failover import BACKUP, PRIMARY, VIPS, log, vip_holders, wait_holder  # noqa: E402
from lflab.lab import LABCTL, require_lab, ssh  # noqa: E402

UNITS = ("network-online.target", "logfwdr-agent.service", "keepalived.service")


def boot_report(host):
    """Seconds from network-online to the agent's readiness and to keepalived's start, and the rules' state."""
    stamps = {}
    for unit in UNITS:
        out = ssh(host, "systemctl show -p ActiveEnterTimestampMonotonic -p ExecMainStartTimestampMonotonic %s"
                  % unit)
        props = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
        stamps[unit] = {"active": int(props.get("ActiveEnterTimestampMonotonic") or 0) / 1e6,
                        "start": int(props.get("ExecMainStartTimestampMonotonic") or 0) / 1e6}
    online = stamps["network-online.target"]["active"]
    agent_ready = stamps["logfwdr-agent.service"]["active"]
    keepalived_start = stamps["keepalived.service"]["start"]
    rows = json.loads(ssh(host, "logfwdr status --json", check=False) or "[]")
    return {
        "host": host,
        "agent_ready_after_network_online_s": round(agent_ready - online, 2),
        "agent_ready_s_after_boot": round(agent_ready, 2),
        "keepalived_started_after_agent_ready_s": round(keepalived_start - agent_ready, 2),
        "destinations": len(rows),
        "active": sum(1 for r in rows if r["state"] == "active"),
        "not_active": [(r["collector"], r["device"], r["port"], r["state"]) for r in rows if r["state"] != "active"],
        "health": ssh(host, "cat /run/logfwdr/health", check=False).strip(),
    }


def power_cycle(hosts):
    log("power off %s, boot again (about 30 s until SSH answers), no playbook run" % " and ".join(hosts))
    for host in hosts:
        subprocess.run([LABCTL, "poweroff", host], check=True, capture_output=True)
    t0 = time.time()
    procs = [subprocess.Popen([LABCTL, "start", host], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for host in hosts]
    for host, proc in zip(hosts, procs):
        _out, err = proc.communicate(timeout=300)
        if proc.returncode != 0:
            sys.exit("%s did not come back: %s" % (host, err.decode(errors="replace")))
    return round(time.time() - t0, 1)


def copied(holder):
    """Send 5 datagrams from exporter1 to the first virtual address; packets the holder's rules copied."""
    def packets():
        rows = json.loads(ssh(holder, "logfwdr status --json"))
        return sum(r["packets"] for r in rows if r["device"] == "vec1" and r["port"] == 514)
    before = packets()
    ssh("exporter1", "python3 -c \"import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
                     "[s.sendto(b'<134>boot_rules test', ('%s', 514)) for _ in range(5)]\"" % VIPS[0])
    time.sleep(1)
    return packets() - before


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    ap.add_argument("--both", action="store_true", help="also power-cycle both replicators at once")
    ap.add_argument("--preempt-wait", type=float, default=120)
    args = ap.parse_args()
    require_lab()
    if wait_holder(PRIMARY, 90) is None:
        sys.exit("replicator1 does not hold both VRRP addresses: %s" % vip_holders())

    boot = power_cycle([PRIMARY])
    report = boot_report(PRIMARY)
    back = wait_holder(PRIMARY, args.preempt_wait)
    print("primary power-cycled, no playbook run: booted (SSH) in %.1f s" % boot)
    print("  agent ready %.2f s after network-online.target (%.2f s after boot); keepalived started %.2f s after"
          " the agent was ready" % (report["agent_ready_after_network_online_s"], report["agent_ready_s_after_boot"],
                                    report["keepalived_started_after_agent_ready_s"]))
    print("  logfwdr status: %d of %d destinations active %s; health file %s" % (
        report["active"], report["destinations"], report["not_active"] or "", report["health"]))
    print("  replicator1 holds the VRRP addresses again %s s after SSH answered (preempt delay included)" % back)
    ok = back is not None and report["destinations"] > 0 and report["active"] == report["destinations"]

    if args.both:
        boot = power_cycle([PRIMARY, BACKUP])
        reports = [boot_report(host) for host in (PRIMARY, BACKUP)]
        t0 = time.time()
        holder = None
        while time.time() - t0 < args.preempt_wait and holder is None:
            holders = vip_holders()
            if all(len(holders[v]) == 1 for v in VIPS) and len(set(h[0] for h in holders.values())) == 1:
                holder = holders[VIPS[0]][0]
            time.sleep(0.5)
        print("both power-cycled, no playbook run: booted (SSH) in %.1f s" % boot)
        for r in reports:
            print("  %s: agent ready %.2f s after network-online, keepalived %.2f s after it; %d of %d active; "
                  "health %s" % (r["host"], r["agent_ready_after_network_online_s"],
                                 r["keepalived_started_after_agent_ready_s"], r["active"], r["destinations"],
                                 r["health"]))
        n = copied(holder) if holder else 0
        print("  %s holds the addresses %.1f s after both answered SSH; 5 datagrams to %s: %d copies counted"
              % (holder, time.time() - t0, VIPS[0], n))
        ok = ok and holder is not None and n > 0 and all(r["active"] == r["destinations"] > 0 for r in reports)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
