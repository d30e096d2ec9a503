# -*- coding: utf-8 -*-
# Copyright: (c) 2026, logfwdr developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Prometheus metrics of `logfwdr agent`, through prometheus_client (Debian: python3-prometheus-client).

Counters are read from the kernel at each scrape, with a netlink socket of
the scrape's own (the agent's socket belongs to its loop); the destinations'
states come from the agent's last reconcile.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import threading

from ansible_collections.netops.logfwdr.plugins.module_utils.tc import kernel as kernel_mod
from ansible_collections.netops.logfwdr.plugins.module_utils.tc import model, runner

STATES = ("active", "pending", "stale")
COUNTERS = (
    ("packets", "logfwdr_copies_packets", "Copies sent to a collector (mirred packets)"),
    ("bytes", "logfwdr_copies_bytes", "Bytes of the copies sent to a collector"),
    ("drops", "logfwdr_copies_drops", "Copies the kernel dropped (mirred drops)"),
    ("rate_limited", "logfwdr_copies_rate_limited", "Packets not copied because of the destination's rate limit"),
)
LABELS = ["collector", "port", "device"]


def kernel_counters(kern, params):
    """[(collector, port, ingress device, counters)] of the rules installed on the state's devices."""
    kern.links(refresh=True)
    names = [d["name"] for d in params["devices"] if kern.link(d["name"]) is not None]
    if not names:
        return []
    info = runner.info({"priority": params["priority"], "chain": params["chain"], "devices": names}, kern)
    out = []
    for dev in info["devices"]:
        for port in dev["ports"]:
            for dest in port["destinations"]:
                out.append((dest["name"], port["port"], dev["name"], dest["counters"]))
    return out


VRRP_STATES = ("MASTER", "BACKUP", "FAULT", "STOP")
# impstats fields exported per bridge action ("to-NAME") and queue ("to-NAME queue")
BRIDGE_COUNTERS = (
    ("core.action", "processed", "logfwdr_bridge_action_processed", "Messages the bridge sent to the collector"),
    ("core.action", "failed", "logfwdr_bridge_action_failed", "Messages the bridge could not send to the collector"),
    ("core.action", "suspended", "logfwdr_bridge_action_suspended", "Times the collector's action was suspended"),
    ("core.queue", "discarded.full", "logfwdr_bridge_queue_discarded_full",
     "Messages dropped because the collector's queue was full"),
    ("core.queue", "discarded.nf", "logfwdr_bridge_queue_discarded_nf",
     "Messages dropped because the collector's queue was nearly full"),
)


def vrrp_states(directory):
    """{instance: state} from the files keepalived's notify script keeps ("MASTER priority 150 since ...")."""
    out = {}
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return out
    for name in names:
        if name.startswith("."):
            continue
        try:
            with open(os.path.join(directory, name)) as handle:
                words = handle.read().split()
        except (IOError, OSError):
            continue
        out[name] = words[0] if words else "unknown"
    return out


def bridge_stats(path, tail=1 << 18):
    """{name: the last impstats record} of the bridge's "to-*" actions and queues, from the file's last bytes."""
    out = {}
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - tail))
            text = handle.read().decode("utf-8", "replace")
    except (IOError, OSError):
        return None
    for line in text.splitlines():
        i = line.find("{")
        if i < 0:
            continue
        try:
            record = json.loads(line[i:])
        except ValueError:  # the first line of the tail, cut, or one being written
            continue
        if isinstance(record, dict) and str(record.get("name", "")).startswith("to-"):
            out[record["name"]] = record
    return out


def host_families(vrrp_dir=None, bridge_file=None):
    """VRRP state and the bridge's counters, read from files (no netlink)."""
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    if vrrp_dir:
        family = GaugeMetricFamily("logfwdr_vrrp_state", "1 for the VRRP state each instance is in (keepalived)",
                                   labels=["vrrp_instance", "state"])
        for instance, current in vrrp_states(vrrp_dir).items():
            for name in VRRP_STATES:
                family.add_metric([instance, name.lower()], 1 if current == name else 0)
        yield family
    if bridge_file:
        records = bridge_stats(bridge_file)
        yield GaugeMetricFamily("logfwdr_bridge_stats_read_ok", "1 when the bridge's impstats file could be read",
                                value=0 if records is None else 1)
        families = []
        for origin, field, name, text in BRIDGE_COUNTERS:
            family = CounterMetricFamily(name, text, labels=["collector"])
            for record in (records or {}).values():
                if record.get("origin") == origin and field in record:
                    collector = record["name"][len("to-"):]
                    if collector.endswith(" queue"):
                        collector = collector[:-len(" queue")]
                    family.add_metric([collector], record[field])
            families.append(family)
        yield from families


class Collector(object):
    def __init__(self, agent, kernel_factory=None, vrrp_dir=None, bridge_file=None):
        self.agent = agent
        self.vrrp_dir = vrrp_dir
        self.bridge_file = bridge_file
        self.kernel_factory = kernel_factory or kernel_mod.Kernel
        self.lock = threading.Lock()
        self.kern = None

    def _counters(self):
        params = self.agent.params
        if params is None:
            return [], True
        with self.lock:
            try:
                if self.kern is None:
                    self.kern = self.kernel_factory()
                return kernel_counters(self.kern, params), True
            except (kernel_mod.NetlinkError, kernel_mod.KernelError, model.ValidationError, OSError):
                if self.kern is not None:
                    self.kern.close()
                self.kern = None
                return [], False

    def collect(self):
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        rows, read_ok = self._counters()
        families = dict((key, CounterMetricFamily(name, text, labels=LABELS)) for key, name, text in COUNTERS)
        for collector, port, device, counters in rows:
            labels = [collector, str(port), device]
            for key, _name, _text in COUNTERS:
                families[key].add_metric(labels, counters.get(key, 0))
        for key, _name, _text in COUNTERS:
            yield families[key]

        state = GaugeMetricFamily("logfwdr_destination_state", "1 for the state each destination is in",
                                  labels=LABELS + ["state"])
        resolved = GaugeMetricFamily("logfwdr_destination_last_resolution_timestamp_seconds",
                                     "When the destination's next hop was last resolved (Unix time)", labels=LABELS)
        for row in self.agent.rows:
            labels = [row["collector"], str(row["port"]), row["device"]]
            for name in STATES:
                state.add_metric(labels + [name], 1 if row["state"] == name else 0)
            if row.get("resolved"):
                resolved.add_metric(labels, row["resolved"])
        yield state
        yield resolved

        agent = self.agent
        yield GaugeMetricFamily("logfwdr_agent_healthy", "1 while the kernel holds the desired rules (the health file"
                                " keepalived follows says 0)", value=1 if agent.healthy else 0)
        announcer = getattr(agent, "announcer", None)
        if announcer is not None:
            yield GaugeMetricFamily("logfwdr_announced", "1 while this host announces its service addresses (BGP mode:"
                                    " the agent's TUN device is up, healthy and not drained)",
                                    value=1 if announcer.up else 0)
        yield GaugeMetricFamily("logfwdr_agent_kernel_read_ok", "1 when this scrape could read the kernel's counters",
                                value=1 if read_ok else 0)
        yield GaugeMetricFamily("logfwdr_agent_last_reconcile_timestamp_seconds", "When the agent last compared the "
                                "kernel with the desired state (Unix time)", value=agent.last_reconcile)
        for key, text in (("reconciles", "Comparisons of the kernel with the desired state"),
                          ("repairs", "Reconciles that changed the kernel"),
                          ("errors", "Reconciles that failed"),
                          ("events", "Netlink events received")):
            yield CounterMetricFamily("logfwdr_agent_%s" % key, text, value=agent.counts[key])
        yield from host_families(self.vrrp_dir, self.bridge_file)


def serve(listen, agent, vrrp_dir=None, bridge_file=None):
    """Start the HTTP exposition on ADDR:PORT ([v6]:PORT too) in a thread; returns the registry."""
    try:
        from prometheus_client import start_http_server
        from prometheus_client.core import CollectorRegistry
        from prometheus_client.process_collector import ProcessCollector
    except ImportError as exc:
        raise RuntimeError("--metrics-listen needs prometheus_client (Debian: apt install python3-prometheus-client;"
                           " pip: prometheus-client): %s" % exc)
    address, port = split_listen(listen)
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    registry.register(Collector(agent, vrrp_dir=vrrp_dir, bridge_file=bridge_file))
    start_http_server(port, addr=address, registry=registry)
    return registry


def split_listen(listen):
    address, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("%r: use ADDRESS:PORT, e.g. 127.0.0.1:9514" % listen)
    return (address.strip("[]") or "0.0.0.0"), int(port)
