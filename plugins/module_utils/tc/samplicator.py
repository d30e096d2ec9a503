# -*- coding: utf-8 -*-
# Copyright: (c) 2026, logfwdr developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A samplicator configuration (samplicate -c FILE) as logfwdr_collectors entries.

samplicator's config file has one line per exporter prefix: ``ADDR[/MASK]: RECEIVER ...``, MASK a dotted netmask
or a prefix length (default /32), each RECEIVER ``ADDR[:PORT[/FREQ][,TTL]]`` (its parser, read_config.c; the
README writes ``ADDR[/PORT[/FREQ[,TTL]]]``: both are read), ``#`` starts a comment. IPv6 addresses are written in
brackets, ``[2001:db8::]/64: [2001:db8:1::5]/9995``, as samplicator's own parser tests (parsetest.c) and its IPv6
patches write them; an IPv6 prefix without a length is one address. The port samplicator listens on is not in the file (``-p``,
default 2000). Each receiver becomes one forward collector for that port, with the union of the prefixes that feed it
as its sources; what has no equivalent is reported, never silently dropped.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import json
import re

from ansible_collections.netops.logfwdr.plugins.module_utils.tc.layout import NAME_MAX

DEFAULT_PORT = 2000  # samplicate -p: the port it listens on and, per receiver, the port it sends to


def _prefix(text, lineno):
    text = text.strip()
    if text.startswith("["):
        addr, _sep, mask = text[1:].partition("]")
        if mask and not mask.startswith("/"):
            raise ValueError("line %d: %r is not [IPv6 address] or [IPv6 address]/length" % (lineno, text))
        mask, full = mask[1:], "128"
    else:
        addr, _sep, mask = text.partition("/")
        full = "32"
    try:
        return ipaddress.ip_network(addr + "/" + (mask or full), strict=False)
    except ValueError as exc:
        raise ValueError("line %d: %r is not an IPv4 address with a netmask or prefix length, or an IPv6 one in "
                         "brackets with a prefix length (%s)" % (lineno, text, exc))


# ADDR, or [IPv6 ADDR], then :PORT or /PORT, /FREQ, ,TTL
RECEIVER = re.compile(r"^(?:(?P<addr>[0-9.]+)|\[(?P<addr6>[0-9A-Fa-f:.]+)\])"
                      r"(?:[:/](?P<port>[^/,]+)(?:/(?P<freq>[^,]*))?(?:,(?P<ttl>.*))?)?$")


def _receiver(text, lineno):
    m = RECEIVER.match(text)
    if not m:
        raise ValueError("line %d: receiver %r is not ADDR[:PORT[/FREQ][,TTL]] (an IPv6 ADDR in brackets)"
                         % (lineno, text))
    try:
        addr = ipaddress.ip_address(m.group("addr") or m.group("addr6"))
    except ValueError:
        raise ValueError("line %d: receiver %r: %r is not an IP address (host names are not resolved)"
                         % (lineno, text, m.group("addr") or m.group("addr6")))
    port = m.group("port")
    if port is None:
        port = DEFAULT_PORT
    elif port.isdigit() and 0 < int(port) < 65536:
        port = int(port)
    else:
        raise ValueError("line %d: receiver %r: port %r is not 1-65535 (service names are not resolved)"
                         % (lineno, text, port))
    freq = m.group("freq") or "1"
    if not freq.isdigit() or int(freq) < 1:
        raise ValueError("line %d: receiver %r: sampling interval %r is not a positive number" % (lineno, text, freq))
    return {"address": str(addr), "port": port, "freq": int(freq), "ttl": m.group("ttl"), "line": lineno}


def parse(text):
    """[(exporter network, [receiver, ...]), ...] in file order; ValueError naming the line."""
    rules = []
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        # the colon after the exporter prefix (past an IPv6 address's own colons)
        start = line.find("]") + 1 if line.startswith("[") else 0
        lhs, colon, rhs = line[start:].partition(":")
        lhs = line[:start] + lhs
        if not colon:
            raise ValueError("line %d: no ':' between the exporter prefix and its receivers: %r" % (lineno, line))
        rules.append((_prefix(lhs, lineno), [_receiver(r, lineno) for r in rhs.split()]))
    return rules


def collectors(text, listen_port=DEFAULT_PORT, protocol=None):
    """(logfwdr_collectors entries, warnings) for a samplicator config that listens on `listen_port`."""
    proto = protocol or listen_port
    warnings = []
    by_target, order = {}, []
    for network, receivers in parse(text):
        for r in receivers:
            key = (r["address"], r["port"])
            if key not in by_target:
                by_target[key] = {"receiver": r, "networks": []}
                order.append(key)
            entry = by_target[key]
            if network not in entry["networks"]:
                entry["networks"].append(network)
            if r["freq"] != entry["receiver"]["freq"]:
                warnings.append("line %d: %s gets 1 in %d packets here but 1 in %d on line %d; logfwdr samples a "
                                "collector once per port: sample %d is kept"
                                % (r["line"], r["address"], r["freq"], entry["receiver"]["freq"],
                                   entry["receiver"]["line"], entry["receiver"]["freq"]))
            if r["ttl"]:
                warnings.append("line %d: TTL %s for %s is ignored; copies leave with the TTL the exporter's packet "
                                "arrived with" % (r["line"], r["ttl"], r["address"]))
    names = {}
    out = []
    for address, port in order:
        entry = by_target[(address, port)]
        family = ipaddress.ip_address(address).version
        nets = [n for n in entry["networks"] if n.version == family]
        other = [str(n) for n in entry["networks"] if n.version != family]
        if other:
            # samplicator resends from user space, across families; the kernel's copy keeps the packet's family
            warnings.append("line %d: %s is an IPv%d receiver; the exporters %s are not copied to it (a copy keeps "
                            "its address family: give it a receiver of theirs)%s"
                            % (entry["receiver"]["line"], address, family, ", ".join(other),
                               "" if nets else "; it gets no exporter at all and is left out"))
            if not nets:
                continue
        name = address
        if name in names:  # the same collector on a second port: its own entry, its own name
            names[name] += 1
            suffix = "-%d" % names[name]
            name = address[:NAME_MAX - len(suffix)] + suffix
        else:
            names[name] = 1
        c = {"name": name, "address": address, "protocols": [proto]}
        if port != listen_port:
            c["ports"] = {str(proto): port}
        if not any(n.prefixlen == 0 for n in nets):
            c["sources"] = [str(n) for n in nets]
        if entry["receiver"]["freq"] > 1:
            c["sample"] = entry["receiver"]["freq"]
        out.append(c)
    return out, warnings


def to_yaml(entries, listen_port, protocol=None):
    """The entries as a logfwdr_collectors block (JSON scalars and flow collections are YAML)."""
    lines = ["# from a samplicator config listening on UDP port %d; review before use" % listen_port]
    if protocol is None:
        lines.append("# protocols are the port number: name it (netflow, sflow, ...) with --protocol NAME")
    lines.append("logfwdr_collectors:")
    if not entries:
        lines[-1] += " []"
    for c in entries:
        first = True
        for key in ("name", "address", "protocols", "ports", "sources", "sample"):
            if key in c:
                lines.append("%s%s: %s" % ("  - " if first else "    ", key, json.dumps(c[key])))
                first = False
    return "\n".join(lines) + "\n"
