# -*- coding: utf-8 -*-
# Copyright: (c) 2026, logfwdr developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""validate -> read -> plan -> apply -> read back: what tc_mirror does."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os

from ansible_collections.netops.logfwdr.plugins.module_utils.tc import kernel as kernel_mod
from ansible_collections.netops.logfwdr.plugins.module_utils.tc import layout, lock, model, planner, render


class RunError(Exception):
    def __init__(self, msg, **details):
        super(RunError, self).__init__(msg)
        self.details = details


# ---- the devices a run manages ----------------------------------------------
# Devices that lost every port are found again through this record rather than by scanning every link
# (a device the desired state does not name is never read).  It lives in /run like the rules themselves:
# after a reboot there is nothing to remove.

def _managed_path():
    return os.path.join(os.environ.get("LOGFWDR_RUN_DIR") or "/run/logfwdr", "devices.json")


def _scope_key(priority, chain):
    return "%d/%d" % (priority, chain)


def read_managed(priority, chain):
    try:
        with open(_managed_path()) as handle:
            return list(json.load(handle).get(_scope_key(priority, chain), []))
    except (IOError, OSError, ValueError, AttributeError):
        return []


def write_managed(priority, chain, names):
    path = _managed_path()
    try:
        with open(path) as handle:
            record = json.load(handle)
        if not isinstance(record, dict):
            record = {}
    except (IOError, OSError, ValueError):
        record = {}
    record[_scope_key(priority, chain)] = sorted(names)
    if not os.path.isdir(os.path.dirname(path)):
        os.makedirs(os.path.dirname(path), 0o755)
    tmp = path + ".tmp"
    with open(tmp, "w") as handle:
        json.dump(record, handle, indent=1, sort_keys=True)
    os.rename(tmp, path)


def _targets(params, kern, want):
    """Device name -> (wanted ports, scope), for every device the run must look at."""
    targets = dict((d["name"], (d["ports"], d)) for d in want)
    if params["state"] == "absent" and params.get("devices"):
        problems = []
        for i, dev in enumerate(params["devices"]):
            if kern.link(dev.get("name")) is None:
                problems.append("devices[%d].name: no interface named %r on this host" % (i, dev.get("name")))
            targets[dev.get("name")] = ([], None)
        if problems:
            raise model.ValidationError(problems)
        return targets
    # the whole desired state: what earlier runs installed on devices no longer listed goes too
    for name in read_managed(params["priority"], params["chain"]):
        if kern.link(name) is not None:
            targets.setdefault(name, ([], None))
    return targets


def _read(kern, targets, priority, chain):
    """name -> (ifindex, the IPv4 instance's have, has an ingress hook, every filter there, the IPv6 one's)."""
    haves = {}
    hooks = kern.ingress_hooks()
    for name in sorted(targets):
        ifindex = kern.link(name)["ifindex"]
        filters = kern.filters(ifindex) if ifindex in hooks else []
        haves[name] = (ifindex, planner.parse_have(filters, priority, chain), ifindex in hooks, filters,
                       planner.parse_have(filters, layout.family_priority(priority, 6), chain))
    return haves


def _views(targets, name):
    """(IPv4 ports, scope), (IPv6 ports, scope) of a target."""
    ports, scope = targets[name]
    if scope is None:
        return (ports, None), ([], None)
    four, six = layout.family_view(scope, 4), layout.family_view(scope, 6)
    return (four["ports"], four), (six["ports"], six)


def _owns_any(have):
    return bool(have["ports"] or have["stray_nodes"] or have["stray_hts"] or have["frag"])


def _refuse_foreign(haves, priority, chain, targets):
    problems = []
    for name in sorted(haves):
        foreign = haves[name][1]["foreign"]
        have6 = haves[name][4]
        # the IPv6 priority is logfwdr's only where it copies IPv6 (or did): anything else there is left alone
        if have6["foreign"] and (_views(targets, name)[1][0] or _owns_any(have6)):
            foreign = foreign + have6["foreign"]
        if foreign:
            problems.append(
                "%s: priority %d chain %d holds filters logfwdr did not create (%s); logfwdr never changes or "
                "deletes them: choose another priority (logfwdr_priority) or chain, or remove them" % (
                    name, priority if haves[name][1]["foreign"] else layout.family_priority(priority, 6), chain,
                    "; ".join(planner.describe_foreign(f) for f in foreign)))
    if problems:
        raise model.ValidationError(problems)


def _plan(targets, haves):
    ops = []
    for name in sorted(targets):
        ifindex, have, hook, _filters, have6 = haves[name]
        (ports4, scope4), (ports6, scope6) = _views(targets, name)
        four = planner.plan_device(name, ifindex, ports4, have, hook, scope4)
        ops.extend(four)
        if not ports6 and not have6["tp"]:
            continue
        if have6["foreign"] and not ports6 and not _owns_any(have6):
            continue  # someone else's IPv6 filters at that priority, and nothing of ours
        # both instances allocate hash table ids from one set (u32 shares them per qdisc)
        used = set(have6["used_htids"]) | set(o["htid"] for o in four if o["op"] == "ht_add")
        six = planner.plan_device(name, ifindex, ports6, dict(have6, used_htids=used),
                                  hook or any(o["op"] == "qdisc_add" for o in four), scope6, family=6)
        ops.extend(six)
    return ops


def run(params, kern, check_mode=False, lock_timeout=30.0):
    """Make the kernel match params (tc_mirror's options); one writer at a time."""
    problems = model.validate_scope(params)
    if problems:
        raise model.ValidationError(problems)
    try:
        with lock.writer(timeout=lock_timeout):
            return _run(params, kern, check_mode)
    except lock.Busy as exc:
        raise RunError("nothing was changed: %s" % exc)


def _run(params, kern, check_mode):
    priority, chain = params["priority"], params["chain"]
    pending = [] if params.get("pending", "allow") == "allow" else None
    warnings = []
    if params["state"] == "present":
        want = model.validate(params, kern, pending)
        missing = kern.missing_features(layout.kernel_features(want))
        if missing:
            raise model.ValidationError([
                "this kernel has no %s (tc %s, kernel option %s); install a kernel that has it (Debian, Ubuntu "
                "and RHEL stock kernels ship it as a module) or remove the destinations that need it"
                % (module, kind, option) for kind, module, option in missing])
        for dev in want:
            warnings.extend(dev.get("warnings", []))
    else:
        want = []
    targets = _targets(params, kern, want)
    haves = _read(kern, targets, priority, chain)
    _refuse_foreign(haves, priority, chain, targets)
    link_names = kern.link_names()
    before = [render.merge_families(render.public_have(name, haves[name][1], link_names),
                                    render.public_have(name, haves[name][4], link_names)) for name in sorted(haves)]
    ops = _plan(targets, haves)
    result = {"changed": bool(ops), "commands": [render.command(op, priority, chain, link_names) for op in ops],
              "warnings": warnings}
    if ops and not check_mode:
        # recorded first, so that rules of a run that stops half-way are still found by the next one
        write_managed(priority, chain, set(read_managed(priority, chain)) | set(targets))
        # what a rollback must give back, from the dump the plan was made from
        snapshot = dict((name, kernel_mod.canon_filters(haves[name][2], haves[name][3])) for name in haves)
        try:
            done = kern.apply(ops, priority, chain)
        except kernel_mod.ApplyError as exc:
            _restore(kern, exc, targets, haves, priority, chain, snapshot, link_names, result)
        result["commands"] = [render.command(op, priority, chain, link_names) for op in done]
        wrong = _read_back(kern, done, priority, chain)
        if wrong:
            raise RunError("after applying, the kernel still differs from the desired state: %s" % "; ".join(
                "%s (%s)" % (render.command(op, priority, chain, link_names), why) for op, why in wrong),
                commands=result["commands"])
    # the plan covered every difference and each change was read back: the kernel now holds `want`
    after = [render.public_want(d) for d in want] + [
        {"name": name, "ports": []} for name in sorted(targets) if name not in [d["name"] for d in want]]
    if not check_mode:
        emptied = set(d["name"] for d in after if not d["ports"])
        kept = set(read_managed(priority, chain)) | set(d["name"] for d in after if d["ports"])
        write_managed(priority, chain, kept - emptied)
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


def _read_back(kern, done, priority, chain):
    """Each applied operation read back on its own (cost in proportion to the change, not to the state):
    [(op, what is wrong)]."""
    wrong = []
    hooks = None
    for op in done:
        kind = op["op"]
        if kind == "qdisc_add":
            hooks = kern.ingress_hooks() if hooks is None else hooks
            if op["ifindex"] not in hooks:
                wrong.append((op, "no ingress qdisc"))
        elif kind in ("ht_add", "ht_del"):
            found = kern.get_filter(op["ifindex"], priority, chain, op["htid"] << 20, op.get("family", 4))
            if (found is not None) != (kind == "ht_add"):
                wrong.append((op, "table %s" % ("missing" if kind == "ht_add" else "still there")))
        elif kind in ("node_add", "node_replace"):
            found = kern.get_filter(op["ifindex"], priority, chain, op["handle"], op.get("family", 4))
            if found is None or layout.canon_node(found) != layout.canon_node(op["spec"]):
                wrong.append((op, "missing" if found is None else "the kernel holds something else"))
        elif kind == "node_del":
            if kern.get_filter(op["ifindex"], priority, chain, op["handle"], op.get("family", 4)) is not None:
                wrong.append((op, "still there"))
        elif kind == "tp_del":
            if kern.owns(op["ifindex"], layout.family_priority(priority, op.get("family", 4)), chain):
                wrong.append((op, "the priority still holds filters"))
    return wrong


def _restore(kern, exc, targets, haves, priority, chain, snapshot, link_names, result):
    """After a refused change: undo what was applied, newest first, then prove the kernel is as before."""
    errors = []
    for applied in reversed(exc.done):
        undo = layout.inverse(applied)
        if undo is None:
            continue
        try:
            kern.execute(undo, priority, chain)
        except (kernel_mod.NetlinkError, kernel_mod.KernelError, OSError) as undo_exc:
            errors.append("%s: %s" % (undo["op"], undo_exc))
    # undoing the first table of a new classifier leaves the kernel's root table behind
    for name in sorted(targets):
        ifindex = haves[name][0]
        for family, have in ((4, haves[name][1]), (6, haves[name][4])):
            if not have["tp"] and kern.owns(ifindex, layout.family_priority(priority, family), chain):
                try:
                    kern.execute({"op": "tp_del", "dev": name, "ifindex": ifindex, "family": family}, priority, chain)
                except (kernel_mod.NetlinkError, kernel_mod.KernelError, OSError) as cleanup_exc:
                    errors.append("tp_del on %s: %s" % (name, cleanup_exc))
    now = kern.snapshot(targets)
    differs = sorted(name for name in snapshot if now.get(name) != snapshot[name])
    if errors or differs:
        undone = "undoing the %d applied operation(s) left the kernel different from before on %s%s" % (
            len(exc.done), ", ".join(differs) or "(compare failed)",
            ": " + "; ".join(errors) if errors else "")
    else:
        undone = ("the %d operation(s) applied before it were undone; the ingress filters of %s were compared "
                  "with what was there before the run and are the same" % (len(exc.done), ", ".join(sorted(snapshot))))
    raise RunError("the kernel refused %r: %s; %s" % (
        render.command(exc.op, priority, chain, link_names), exc.cause, undone),
        commands=result["commands"], rollback_verified=not (errors or differs))


def _sum_stats(actions, kind):
    total = {"packets": 0, "bytes": 0, "drops": 0, "overlimits": 0}
    for action in actions:
        if action["kind"] == kind:
            for key in total:
                total[key] += action["stats"][key]
    return total


def _info_family(filters, priority, chain, name, link_names):
    """One u32 instance's rules in public shape, with its counters."""
    have = planner.parse_have(filters, priority, chain)
    public = render.public_have(name, have, link_names)
    for port in public["ports"]:
        hp = have["ports"][port["port"]]
        port["original_dropped"] = _sum_stats([a for n in hp["dispatch"] for a in n["actions"]], "gact")["packets"]
        if hp["gate"]:
            port["capped"] = _sum_stats(hp["gate"]["actions"], "police")["overlimits"]
        refused = planner.refused(hp)
        if refused is not None:
            port["refused"] = refused
        for dest in port["destinations"]:
            nodes = hp["pools"][dest["pool"]]["members"][dest["name"]] if dest.get("pool") else \
                hp["dests"][dest["name"]]
            actions = [a for n in nodes for a in n["actions"]]
            mirred = _sum_stats(actions, "mirred")
            police = _sum_stats(actions, "police")
            dest["counters"] = {
                "packets": mirred["packets"],
                "bytes": mirred["bytes"],
                "drops": mirred["drops"],
                "overlimits": mirred["overlimits"],
                "rate_limited": police["overlimits"],
            }
    if have["frag"]:
        acts = [a for n in have["frag"].values() for a in n["actions"] if a["kind"] == "ct"]
        public["reassembly"] = {
            # every fragment passes the first ct; only a fragment that completes a datagram reaches ct clear
            "fragments": sum(a["stats"]["packets"] for a in acts if not a.get("clear")),
            "datagrams": sum(a["stats"]["packets"] for a in acts if a.get("clear")),
        }
    return public


def info(params, kern):
    """The module-owned rules in tc_mirror's shape, with counters per destination."""
    problems = model.validate_scope(params)
    if problems:
        raise model.ValidationError(problems)
    priority, chain = params["priority"], params["chain"]
    names = params.get("devices") or [n for n in read_managed(priority, chain) if kern.link(n) is not None]
    link_names = kern.link_names()
    devices = []
    for name in names:
        link = kern.link(name)
        if link is None:
            raise model.ValidationError(["devices: no interface named %r on this host" % name])
        filters = kern.filters(link["ifindex"])
        public = render.merge_families(_info_family(filters, priority, chain, name, link_names),
                                       _info_family(filters, layout.family_priority(priority, 6), chain, name,
                                                    link_names))
        if public["ports"] or params.get("devices"):
            devices.append(public)
    return {"changed": False, "devices": devices}
