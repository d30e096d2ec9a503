# -*- coding: utf-8 -*-
# Copyright: (c) 2026, logfwdr developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The `logfwdr` host program: apply, status, agent, on the module's own code (runner, planner, codec)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import argparse
import json
import os
import sys

from ansible_collections.netops.logfwdr.plugins.module_utils.tc import codec, layout, model, samplicator
from ansible_collections.netops.logfwdr.plugins.module_utils.tc import state as state_mod

COLUMNS = (
    ("device", "DEVICE"), ("port", "PORT"), ("collector", "COLLECTOR"), ("mode", "MODE"),
    ("egress_device", "EGRESS"), ("next_hop", "NEXT HOP"), ("next_hop_mac", "MAC"), ("state", "STATE"),
    ("packets", "PACKETS"), ("bytes", "BYTES"), ("drops", "DROPS"), ("rate_limited", "RATE-LIMITED"),
)


def _kernel():
    if not codec.HAS_PYROUTE2:
        raise SystemExit("logfwdr: pyroute2 is missing (Debian: apt install python3-pyroute2): %s"
                         % codec.PYROUTE2_IMPORT_ERROR)
    from ansible_collections.netops.logfwdr.plugins.module_utils.tc import kernel
    return kernel.Kernel()


def cmd_apply(args, out):
    from ansible_collections.netops.logfwdr.plugins.module_utils.tc import lock, runner
    params = state_mod.load(args.state)
    if args.require_all:
        params["pending"] = "fail"
    kern = _kernel()
    try:
        result = runner.run(params, kern, check_mode=args.check)
    except model.ValidationError as exc:
        result = {"failed": True, "changed": False, "problems": exc.problems,
                  "msg": "invalid replication state, nothing was changed: " + "; ".join(exc.problems)}
    except runner.RunError as exc:
        result = dict(exc.details, failed=True, changed=False, msg=str(exc))
    except lock.Busy as exc:
        result = {"failed": True, "changed": False, "msg": str(exc)}
    finally:
        kern.close()
    if not result.get("failed"):
        result["warnings"] = runner.pending_warnings(result["pending"]) + result.get("warnings", [])
        for line in result["warnings"]:
            sys.stderr.write("warning: %s\n" % line)
    out.write(json.dumps(result, indent=2, sort_keys=True) + "\n")
    return 1 if result.get("failed") else 0


# ---- status ----

def _desired(params):
    """(ingress device, port, name) -> the destination as the state file asks for it."""
    wanted = {}
    for dev in (params or {}).get("devices") or []:
        for port in dev.get("ports") or []:
            number = model.parse_port(port.get("port"))
            for dest in port.get("destinations") or []:
                mode = dest.get("mode") or "forward"
                name = dest.get("name") or (dest.get("address") if mode == "forward" else dest.get("device"))
                wanted[(dev["name"], number, name)] = dict(dest, mode=mode, name=name)
    return wanted


def _next_hop(kern, address, device=None):
    """(egress device, next-hop address) of the route to `address`, or (device, None)."""
    route = kern.route(address)
    if route is None:
        return device, None
    if device is not None and route["device"] != device:
        return route["device"], address
    return route["device"], route["gateway"] or address


def status_rows(kern, params):
    """One row per destination, installed or wanted: names, next hop, state and counters.

    active: the rule is installed and agrees with the routes and neighbours the
    kernel holds now; stale: installed but its egress device is gone, the route
    moved to another device, the neighbour entry has another MAC, or the state
    file no longer lists it; pending: wanted but not installed.
    """
    from ansible_collections.netops.logfwdr.plugins.module_utils.tc import runner
    priority = params["priority"] if params else layout.DEFAULT_PRIORITY
    chain = params["chain"] if params else 0
    listed = [d["name"] for d in (params or {}).get("devices") or [] if kern.link(d["name"]) is not None]
    info = runner.info({"priority": priority, "chain": chain, "devices": listed or []}, kern)
    wanted = _desired(params)
    rows = []
    for dev in info["devices"]:
        for port in dev["ports"]:
            for dest in port["destinations"]:
                key = (dev["name"], port["port"], dest["name"])
                row = {"device": dev["name"], "port": port["port"], "collector": dest["name"], "mode": dest["mode"],
                       "egress_device": dest["device"], "next_hop": None, "next_hop_mac": dest.get("next_hop_mac"),
                       "state": "active"}
                row.update((k, dest["counters"][k]) for k in ("packets", "bytes", "drops", "rate_limited"))
                if params is not None and key not in wanted:
                    row["state"] = "stale"
                if not isinstance(dest["device"], str) or kern.link(dest["device"]) is None:
                    row["state"] = "stale"  # the egress device it was installed for is gone
                elif dest["mode"] == "forward":
                    fixed = wanted.get(key, {}).get("next_hop_mac")
                    egress, hop = _next_hop(kern, dest["address"], wanted.get(key, {}).get("device"))
                    row["next_hop"] = hop
                    if egress is not None and egress != dest["device"]:
                        row["state"] = "stale"
                    elif hop and not fixed:
                        entry = kern.neighbour_entry(dest["device"], hop)
                        if entry and entry[1] and entry[1].lower() != (dest.get("next_hop_mac") or "").lower():
                            row["state"] = "stale"
                wanted.pop(key, None)
                rows.append(row)
    for (device, port, name), dest in sorted(wanted.items(), key=lambda kv: (kv[0][0], kv[0][1] or 0, kv[0][2])):
        row = {"device": device, "port": port, "collector": name, "mode": dest["mode"],
               "egress_device": dest.get("device"), "next_hop": None, "next_hop_mac": dest.get("next_hop_mac"),
               "state": "pending", "packets": 0, "bytes": 0, "drops": 0, "rate_limited": 0}
        if dest["mode"] == "forward" and dest.get("address"):
            row["egress_device"], row["next_hop"] = _next_hop(kern, dest["address"], dest.get("device"))
        rows.append(row)
    return rows


def format_rows(rows):
    """The rows as an aligned text table (what `logfwdr status` prints)."""
    table = [[title for _key, title in COLUMNS]]
    for row in rows:
        table.append(["-" if row.get(key) is None else str(row.get(key)) for key, _title in COLUMNS])
    widths = [max(len(line[i]) for line in table) for i in range(len(COLUMNS))]
    return "".join("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)).rstrip() + "\n"
                   for line in table)


def cmd_status(args, out):
    params = None
    path = args.state or (state_mod.DEFAULT_PATH if os.path.exists(state_mod.DEFAULT_PATH) else None)
    if path:
        params = state_mod.load(path)
    kern = _kernel()
    try:
        rows = status_rows(kern, params)
    except model.ValidationError as exc:
        sys.stderr.write("logfwdr status: %s\n" % "; ".join(exc.problems))
        return 1
    finally:
        kern.close()
    if args.json:
        out.write(json.dumps(rows, indent=2, sort_keys=True) + "\n")
    else:
        out.write(format_rows(rows))
    return 0 if all(r["state"] == "active" for r in rows) else 3


def cmd_agent(args, out):
    _kernel().close()  # pyroute2 present, netlink usable: fail early and clearly
    from ansible_collections.netops.logfwdr.plugins.module_utils.tc import agent as agent_mod
    agent = agent_mod.Agent(args.state, health_path=args.health_file, sweep=args.sweep, fall=args.fall,
                            rise=args.rise, listen_ports=args.listen_port or [], log=_log, interval=args.interval)

    def ready(running):
        if args.metrics_listen:
            from ansible_collections.netops.logfwdr.plugins.module_utils.tc import metrics
            metrics.serve(args.metrics_listen, running, vrrp_dir=args.vrrp_state_dir, bridge_file=args.bridge_stats)
            _log("metrics: http://%s/metrics" % args.metrics_listen)

    if agent.run(ready=ready) == "reload":
        _log("SIGHUP: starting again with the installed code")
        # the interpreter's own command line (sys.argv loses `python -c CODE`)
        with open("/proc/self/cmdline", "rb") as handle:
            argv = [a.decode() for a in handle.read().split(b"\0") if a]
        os.execv(sys.executable, argv)
    return 0


def _log(line):
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def cmd_import_samplicator(args, out):
    try:
        with open(args.file) as handle:
            text = handle.read()
        entries, warnings = samplicator.collectors(text, args.port, args.protocol)
    except (IOError, OSError, ValueError) as exc:
        sys.stderr.write("logfwdr import-samplicator: %s: %s\n" % (args.file, exc))
        return 2
    for line in warnings:
        sys.stderr.write("warning: %s\n" % line)
    out.write(samplicator.to_yaml(entries, args.port, args.protocol))
    return 0


def parser():
    top = argparse.ArgumentParser(prog="logfwdr", description="In-kernel replication of UDP monitoring traffic "
                                  "(tc rules written through netlink, the netops.logfwdr.tc_mirror module's code).")
    sub = top.add_subparsers(dest="command")
    sub.required = True
    apply_p = sub.add_parser("apply", help="make the kernel match a desired-state file, as tc_mirror would")
    apply_p.add_argument("--state", required=True, help="YAML or JSON: devices (and priority, chain, pending)")
    apply_p.add_argument("--check", action="store_true", help="only say what would change")
    apply_p.add_argument("--require-all", action="store_true",
                         help="fail when a collector's next hop does not answer (pending: fail)")
    apply_p.set_defaults(func=cmd_apply)
    status_p = sub.add_parser("status", help="one row per destination, with its state and counters")
    status_p.add_argument("--state", help="the desired state (default %s when it exists)" % state_mod.DEFAULT_PATH)
    status_p.add_argument("--json", action="store_true", help="JSON instead of a table")
    status_p.set_defaults(func=cmd_status)
    agent_p = sub.add_parser("agent", help="keep the kernel equal to the state file (netlink events, sweeps)")
    agent_p.add_argument("--state", default=state_mod.DEFAULT_PATH, help="default %(default)s")
    agent_p.add_argument("--metrics-listen", metavar="ADDR:PORT", help="serve Prometheus metrics there")
    agent_p.add_argument("--vrrp-state-dir", metavar="DIR",
                         help="export the VRRP state kept there by keepalived's notify script (logfwdr_vrrp_state)")
    agent_p.add_argument("--bridge-stats", metavar="FILE",
                         help="export the syslog bridge's impstats counters from FILE (logfwdr_bridge_*)")
    agent_p.add_argument("--health-file", metavar="PATH", help="0 (healthy) or 1, for keepalived's track_file")
    agent_p.add_argument("--sweep", type=float, default=5.0, help="seconds between full comparisons (%(default)s)")
    agent_p.add_argument("--interval", type=float, default=1.0,
                         help="seconds between health checks: the last comparison, the listeners (%(default)s)")
    agent_p.add_argument("--fall", type=int, default=2, help="failed checks in a row before 1 (%(default)s)")
    agent_p.add_argument("--rise", type=int, default=2, help="good checks in a row before 0 (%(default)s)")
    agent_p.add_argument("--listen-port", type=int, action="append", metavar="PORT",
                         help="healthy only while a TCP socket listens there (the syslog bridge); repeatable")
    agent_p.set_defaults(func=cmd_agent)
    import_p = sub.add_parser("import-samplicator", help="a samplicator config file (samplicate -c) as "
                              "logfwdr_collectors entries, on stdout; what does not map is warned about on stderr")
    import_p.add_argument("file", help="the samplicator config file")
    import_p.add_argument("--port", type=int, default=samplicator.DEFAULT_PORT,
                          help="the UDP port samplicate listens on (its -p; default %(default)s)")
    import_p.add_argument("--protocol", metavar="NAME",
                          help="the logfwdr_protocols name of that port (netflow, sflow, ...); default: the number")
    import_p.set_defaults(func=cmd_import_samplicator)
    return top


def main(argv=None, out=None):
    args = parser().parse_args(argv)
    try:
        return args.func(args, out or sys.stdout)
    except state_mod.StateError as exc:
        sys.stderr.write("logfwdr %s: %s\n" % (args.command, exc))
        return 2
