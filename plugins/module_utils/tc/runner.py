# -*- coding: utf-8 -*-
# Copyright: (c) 2026, logfwdr developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""validate -> read -> plan -> apply -> read back: what tc_mirror does."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.netops.logfwdr.plugins.module_utils.tc import kernel as kernel_mod
from ansible_collections.netops.logfwdr.plugins.module_utils.tc import model, planner, render


class RunError(Exception):
    def __init__(self, msg, **details):
        super(RunError, self).__init__(msg)
        self.details = details


def _targets(params, kern, want):
    """Device name -> wanted ports, for every device the run must look at."""
    priority, chain = params["priority"], params["chain"]
    targets = dict((d["name"], d["ports"]) for d in want)
    if params["state"] == "absent" and params.get("devices"):
        problems = []
        for i, dev in enumerate(params["devices"]):
            if kern.link(dev.get("name")) is None:
                problems.append("devices[%d].name: no interface named %r on this host" % (i, dev.get("name")))
            targets[dev.get("name")] = []
        if problems:
            raise model.ValidationError(problems)
        return targets
    # the whole desired state: owned filters on unlisted devices go too
    for name in kern.owners(priority, chain):
        targets.setdefault(name, [])
    return targets


def _read(kern, targets, priority, chain):
    haves = {}
    hooks = kern.ingress_hooks()
    for name in sorted(targets):
        ifindex = kern.link(name)["ifindex"]
        filters = kern.filters(ifindex) if ifindex in hooks else []
        haves[name] = (ifindex, planner.parse_have(filters, priority, chain), ifindex in hooks)
    return haves


def _plan(targets, haves):
    ops = []
    for name in sorted(targets):
        ifindex, have, hook = haves[name]
        ops.extend(planner.plan_device(name, ifindex, targets[name], have, hook))
    return ops


def run(params, kern, check_mode=False):
    priority, chain = params["priority"], params["chain"]
    pending = [] if params.get("pending", "allow") == "allow" else None
    if params["state"] == "present":
        want = model.validate(params, kern, pending)
        missing = kern.missing_features(model.kernel_features(want))
        if missing:
            raise model.ValidationError([
                "this kernel has no %s (tc %s, kernel option %s); install a kernel that has it (Debian, Ubuntu "
                "and RHEL stock kernels ship it as a module) or remove the destinations that need it"
                % (module, kind, option) for kind, module, option in missing])
    else:
        want = []
    targets = _targets(params, kern, want)
    haves = _read(kern, targets, priority, chain)
    link_names = kern.link_names()
    before = [render.public_have(name, haves[name][1], link_names) for name in sorted(haves)]
    ops = _plan(targets, haves)
    result = {"changed": bool(ops), "commands": [render.command(op, priority, chain, link_names) for op in ops]}
    if ops and not check_mode:
        try:
            done = kern.apply(ops, priority, chain)
        except kernel_mod.ApplyError as exc:
            # undoing the first table of a new classifier leaves the kernel's root table behind
            for name in sorted(targets):
                ifindex, have = haves[name][:2]
                if not have["tp"] and kern.owns(ifindex, priority, chain):
                    try:
                        kern.execute({"op": "tp_del", "dev": name, "ifindex": ifindex}, priority, chain)
                    except (kernel_mod.NetlinkError, kernel_mod.KernelError, OSError) as cleanup_exc:
                        exc.rollback_errors.append("tp_del on %s: %s" % (name, cleanup_exc))
            if exc.rollback_errors:
                undone = "undoing the %d applied operation(s) failed too: %s" % (
                    exc.applied, "; ".join(exc.rollback_errors))
            else:
                undone = "the %d operation(s) applied before it were undone" % exc.applied
            raise RunError("the kernel refused %r: %s; %s" % (
                render.command(exc.op, priority, chain, link_names), exc.cause, undone),
                commands=result["commands"])
        result["commands"] = [render.command(op, priority, chain, link_names) for op in done]
        haves = _read(kern, targets, priority, chain)
        leftover = _plan(targets, haves)
        if leftover:
            raise RunError("after applying, the kernel still differs from the desired state: %s"
                           % "; ".join(render.command(op, priority, chain, link_names) for op in leftover),
                           commands=result["commands"])
        after = [render.public_have(name, haves[name][1], link_names) for name in sorted(haves)]
    else:
        after = [render.public_want(d) for d in want] + [
            {"name": name, "ports": []} for name in sorted(targets) if name not in [d["name"] for d in want]]
    result["diff"] = {"before": render.describe(before), "after": render.describe(after)}
    result["devices"] = [d for d in sorted(after, key=lambda d: d["name"]) if d["ports"]]
    result["pending"] = pending or []
    return result


def pending_warnings(pending):
    """One line per collector that waits for its next hop (not one per port and ingress device)."""
    seen = {}
    for item in pending:
        seen.setdefault(item["name"], []).append(item)
    return ["collector %s is pending: %s; its rules are installed once it answers (%s)" % (
        name, items[0]["reason"], ", ".join("%s udp/%d" % (i["device"], i["port"]) for i in items))
        for name, items in sorted(seen.items())]


def _sum_stats(actions, kind):
    total = {"packets": 0, "bytes": 0, "drops": 0, "overlimits": 0}
    for action in actions:
        if action["kind"] == kind:
            for key in total:
                total[key] += action["stats"][key]
    return total


def info(params, kern):
    """The module-owned rules in tc_mirror's shape, with counters per destination."""
    priority, chain = params["priority"], params["chain"]
    names = params.get("devices") or kern.owners(priority, chain)
    link_names = kern.link_names()
    devices = []
    for name in names:
        link = kern.link(name)
        if link is None:
            raise model.ValidationError(["devices: no interface named %r on this host" % name])
        have = planner.parse_have(kern.filters(link["ifindex"]), priority, chain)
        public = render.public_have(name, have, link_names)
        for port in public["ports"]:
            hp = have["ports"][port["port"]]
            port["original_dropped"] = _sum_stats(hp["dispatch"]["actions"], "gact")["packets"]
            for dest in port["destinations"]:
                actions = [a for n in hp["dests"][dest["name"]] for a in n["actions"]]
                mirred = _sum_stats(actions, "mirred")
                police = _sum_stats(actions, "police")
                dest["counters"] = {
                    "packets": mirred["packets"],
                    "bytes": mirred["bytes"],
                    "drops": mirred["drops"],
                    "overlimits": mirred["overlimits"],
                    "rate_limited": police["overlimits"],
                }
        devices.append(public)
    return {"changed": False, "devices": devices}
