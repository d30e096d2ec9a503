# -*- coding: utf-8 -*-
# Copyright: (c) 2026, logfwdr developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The `logfwdr` host program: apply, status, agent, drain, undrain, on the module's own code (runner, planner,
codec)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import argparse
import errno
import json
import os
import sys
import time

from ansible_collections.netops.logfwdr.plugins.module_utils.tc import announce as announce_mod
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


def announce_status(kern, device, drain_file):
    """The announcement of the BGP mode as the kernel holds it, with the agent's reason for a withdrawal; None
    when this host has none configured (no device named, none recorded by the agent, no logfwdr0)."""
    record = announce_mod.read_record(announce_mod.record_path(drain_file))
    name = device or (record or {}).get("device") or announce_mod.DEFAULT_DEVICE
    index = announce_mod.ifindex(name)
    if device is None and record is None and index is None:
        return None
    up = announce_mod.link_up(kern.ipr, index) if index is not None else None
    drained = os.path.exists(drain_file)
    state, text = announce_mod.describe(record, up is not None, up, drained)
    addresses = sorted("%s/%d" % (a, n) for _f, a, n in announce_mod.global_addresses(kern.ipr, index)) \
        if up is not None else []
    return {"device": name, "state": state, "text": text, "drained": drained, "drain_file": drain_file,
            "addresses": addresses, "why": text[len(state) + 2:-1] if text.startswith(state + " (") else None}


def cmd_status(args, out):
    params = None
    path = args.state or (state_mod.DEFAULT_PATH if os.path.exists(state_mod.DEFAULT_PATH) else None)
    if path:
        params = state_mod.load(path)
    kern = _kernel()
    try:
        rows = status_rows(kern, params)
        announced = announce_status(kern, args.device, args.drain_file)
    except model.ValidationError as exc:
        sys.stderr.write("logfwdr status: %s\n" % "; ".join(exc.problems))
        return 1
    finally:
        kern.close()
    if args.json:
        # a list of rows as always; with an announcement (BGP mode) an object holding both
        data = rows if announced is None else {"destinations": rows, "announce": announced}
        out.write(json.dumps(data, indent=2, sort_keys=True) + "\n")
    else:
        out.write(format_rows(rows))
        if announced is not None:
            out.write("announce: %s\n" % announced["text"])
    return 0 if all(r["state"] == "active" for r in rows) else 3


def _ingress_scope(kern, params):
    kern.links(refresh=True)
    names = [d["name"] for d in params["devices"] if kern.link(d["name"]) is not None]
    return {"priority": params["priority"], "chain": params["chain"], "devices": names}


def _withdraw(kern, device):
    """The announcement's link set down by `logfwdr drain` itself (the agent may hang); what was done, as text."""
    index = announce_mod.ifindex(device)
    if index is None:
        return "no device %s: nothing is announced from here" % device
    if announce_mod.link_up(kern.ipr, index):
        announce_mod.set_link(kern.ipr, index, False)
        return "withdrawn: %s set down" % device
    return "withdrawn: %s was down already" % device


def cmd_drain(args, out):
    from ansible_collections.netops.logfwdr.plugins.module_utils.tc import kernel, runner
    if args.quiet <= 0 or args.timeout <= 0:
        sys.stderr.write("logfwdr drain: --quiet and --timeout are seconds greater than 0\n")
        return 2
    # withdraw first, whatever else fails: the counters are read from the state's devices afterwards
    try:
        announce_mod.write_drain(args.drain_file, "drained by logfwdr drain at %s\n"
                                 % time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    except (IOError, OSError) as exc:
        sys.stderr.write("logfwdr drain: cannot write %s: %s\n" % (args.drain_file, exc))
        return 2
    out.write("drain file %s written: the agent keeps %s withdrawn while it exists\n" % (args.drain_file, args.device))
    kern = _kernel()
    try:
        out.write(_withdraw(kern, args.device) + "\n")
        out.flush()
        try:
            params = state_mod.load(args.state)
        except state_mod.StateError as exc:
            sys.stderr.write("logfwdr drain: withdrawn, but no counters to watch: %s\n" % exc)
            return 2
        scope = _ingress_scope(kern, params)
        if not scope["devices"]:
            out.write("none of the state's ingress devices exists: no counters to watch\n")
        else:
            out.write("watching the counters of the rules on %s every 0.2 s until still for %.1f s\n"
                      % (", ".join(scope["devices"]), args.quiet))
        out.flush()

        def read():
            return announce_mod.arrivals(runner.info(scope, kern)) if scope["devices"] else {}

        def again(_reading):
            # an agent that read the drain file a moment too early may have raised the link again: down it is
            index = announce_mod.ifindex(args.device)
            if index is not None and announce_mod.link_up(kern.ipr, index):
                announce_mod.set_link(kern.ipr, index, False)
                out.write("withdrawn again: %s was up\n" % args.device)
                out.flush()

        still, waited, moved = announce_mod.wait_still(read, args.quiet, args.timeout, on_read=again)
    except (kernel.NetlinkError, kernel.KernelError, OSError) as exc:
        sys.stderr.write("logfwdr drain: %s\n" % exc)
        return 2
    except model.ValidationError as exc:
        sys.stderr.write("logfwdr drain: %s\n" % "; ".join(exc.problems))
        return 2
    finally:
        kern.close()
    if still:
        out.write("drained: withdrawn, no datagram for %.1f s: the host may stop\n" % args.quiet)
        return 0
    sys.stderr.write("logfwdr drain: not drained after %.1f s: still arriving: %s; the drain file stays (logfwdr "
                     "undrain announces again)\n" % (waited, ", ".join(
                         "%s (+%d packets counted by its rules in the last %.1f s)" % (key, count, args.quiet)
                         for key, count in sorted(moved.items()))))
    return 1


def cmd_undrain(args, out):
    try:
        os.unlink(args.drain_file)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            out.write("not drained: no %s, nothing to do\n" % args.drain_file)
            return 0
        sys.stderr.write("logfwdr undrain: cannot remove %s: %s\n" % (args.drain_file, exc))
        return 2
    out.write("undrained: %s removed; the agent announces again at its next health check (within 1 s) while "
              "healthy\n" % args.drain_file)
    return 0


def announce_args(args):
    """(device, service addresses, drain file) from the agent's options, or None; ValueError says what is wrong."""
    addresses = args.service_address or []
    if not args.announce_device:
        if addresses:
            raise ValueError("--service-address needs --announce-device")
        return None
    if not addresses:
        raise ValueError("--announce-device %s needs at least one --service-address" % args.announce_device)
    for address in addresses:
        announce_mod.parse_service_address(address)
    if len(args.announce_device.encode("utf-8")) >= announce_mod.IFNAMSIZ or "/" in args.announce_device:
        raise ValueError("--announce-device %r is not a device name" % args.announce_device)
    return (args.announce_device, addresses, args.drain_file or announce_mod.default_drain_file(args.health_file))


def cmd_agent(args, out):
    try:
        announce = announce_args(args)
    except ValueError as exc:
        sys.stderr.write("logfwdr agent: %s\n" % exc)
        return 2
    _kernel().close()  # pyroute2 present, netlink usable: fail early and clearly
    from ansible_collections.netops.logfwdr.plugins.module_utils.tc import agent as agent_mod
    agent = agent_mod.Agent(args.state, health_path=args.health_file, sweep=args.sweep, fall=args.fall,
                            rise=args.rise, listen_ports=args.listen_port or [], log=_log, interval=args.interval,
                            announce=announce)

    def ready(running):
        if args.metrics_listen:
            from ansible_collections.netops.logfwdr.plugins.module_utils.tc import metrics
            metrics.serve(args.metrics_listen, running, vrrp_dir=args.vrrp_state_dir, bridge_file=args.bridge_stats)
            _log("metrics: http://%s/metrics" % args.metrics_listen)

    if agent.run(ready=ready) == "reload":
        _log("SIGHUP: starting again with the installed code")
        if agent.announcer is not None:
            agent.announcer.pass_on()  # the TUN device stays: a reload never withdraws
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
    status_p.add_argument("--json", action="store_true", help="JSON instead of a table: a list of rows; with an "
                          "announcement (BGP mode) an object with the rows (destinations) and the announcement")
    status_p.add_argument("--device", metavar="NAME", help="the announcement's TUN device (default: the one the "
                          "agent recorded beside the drain file, else %s when it exists)" % announce_mod.DEFAULT_DEVICE)
    status_p.add_argument("--drain-file", metavar="PATH", default=announce_mod.DEFAULT_DRAIN_FILE,
                          help="default %(default)s")
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
    agent_p.add_argument("--announce-device", metavar="NAME",
                         help="BGP mode: hold the service addresses on this TUN device (e.g. %s), UP exactly while "
                         "healthy and not drained" % announce_mod.DEFAULT_DEVICE)
    agent_p.add_argument("--service-address", action="append", metavar="ADDRESS",
                         help="a service address (IPv4 or IPv6, put on the device as /32 or /128); repeatable")
    agent_p.add_argument("--drain-file", metavar="PATH", help="while it exists the addresses are not announced "
                         "(default: drain beside the health file, else %s)" % announce_mod.DEFAULT_DRAIN_FILE)
    agent_p.set_defaults(func=cmd_agent)
    drain_p = sub.add_parser("drain", help="BGP mode: withdraw the announcement and wait until the rules' counters "
                             "are still (then the host may stop)")
    drain_p.add_argument("--drain-file", metavar="PATH", default=announce_mod.DEFAULT_DRAIN_FILE,
                         help="written first; the agent keeps the device down while it exists (%(default)s)")
    drain_p.add_argument("--device", default=announce_mod.DEFAULT_DEVICE, metavar="NAME",
                         help="set down by this command too, even if the agent hangs (%(default)s)")
    drain_p.add_argument("--state", default=state_mod.DEFAULT_PATH, help="its ingress devices' rules are watched "
                         "(default %(default)s)")
    drain_p.add_argument("--quiet", type=float, default=2.0, metavar="SECONDS",
                         help="counters still this long: drained, exit 0 (%(default)s)")
    drain_p.add_argument("--timeout", type=float, default=60.0, metavar="SECONDS",
                         help="give up after this long, exit 1 naming what still arrives (%(default)s)")
    drain_p.set_defaults(func=cmd_drain)
    undrain_p = sub.add_parser("undrain", help="BGP mode: remove the drain file (the agent announces again within 1 s "
                               "while healthy)")
    undrain_p.add_argument("--drain-file", metavar="PATH", default=announce_mod.DEFAULT_DRAIN_FILE,
                           help="default %(default)s")
    undrain_p.set_defaults(func=cmd_undrain)
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
