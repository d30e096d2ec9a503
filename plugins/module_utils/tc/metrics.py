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


class Collector(object):
    def __init__(self, agent, kernel_factory=None):
        self.agent = agent
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
        yield GaugeMetricFamily("logfwdr_agent_kernel_read_ok", "1 when this scrape could read the kernel's counters",
                                value=1 if read_ok else 0)
        yield GaugeMetricFamily("logfwdr_agent_last_reconcile_timestamp_seconds", "When the agent last compared the "
                                "kernel with the desired state (Unix time)", value=agent.last_reconcile)
        for key, text in (("reconciles", "Comparisons of the kernel with the desired state"),
                          ("repairs", "Reconciles that changed the kernel"),
                          ("errors", "Reconciles that failed"),
                          ("events", "Netlink events received")):
            yield CounterMetricFamily("logfwdr_agent_%s" % key, text, value=agent.counts[key])


def serve(listen, agent):
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
    registry.register(Collector(agent))
    start_http_server(port, addr=address, registry=registry)
    return registry


def split_listen(listen):
    address, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("%r: use ADDRESS:PORT, e.g. 127.0.0.1:9514" % listen)
    return (address.strip("[]") or "0.0.0.0"), int(port)
