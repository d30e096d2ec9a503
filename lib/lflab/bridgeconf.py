# -*- coding: utf-8 -*-
"""Render the role's syslog bridge templates the way the role does, for tests.

The destinations and listeners come from the role's own filters (syslog_bridge_targets, syslog_bridge_inputs),
called with the same arguments as tasks/validate.yml; the templates are rendered by Ansible's Templar with the
role's defaults, so what rsyslogd checks here is what the role writes to a replicator.
"""

import os
import shutil
import subprocess
import sys

import yaml

from lflab import netlab

if netlab.COLLECTIONS not in sys.path:
    sys.path.insert(0, netlab.ensure_collection_path())

from ansible.parsing.dataloader import DataLoader  # noqa: E402
from ansible.template import Templar  # noqa: E402

try:  # ansible-core 2.19+: only trusted strings are templated
    from ansible.template import trust_as_template  # noqa: E402
    TRUST = True
except ImportError:  # 2.18: every string is
    TRUST = False

    def trust_as_template(value):
        return value

from ansible_collections.netops.logfwdr.plugins.filter.syslog_bridge_inputs import (  # noqa: E402
    syslog_bridge_inputs)
from ansible_collections.netops.logfwdr.plugins.filter.syslog_bridge_targets import (  # noqa: E402
    syslog_bridge_targets)

ROLE = os.path.join(netlab.REPO, "roles", "logfwdr")
DEFAULTS = yaml.safe_load(open(os.path.join(ROLE, "defaults", "main.yml")))
RSYSLOGD = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"
SETTINGS = sorted(k for k in DEFAULTS if k.startswith("logfwdr_syslog_bridge_"))


def role_vars(inventory, work_dir, stats_file, credentials_dir="/run/credentials/logfwdr-syslog-bridge.service"):
    """The variables the bridge's templates see: defaults, the inventory, and validate.yml's two facts."""
    v = dict(DEFAULTS)
    v.update(inventory)
    v["__logfwdr_syslog_bridge_targets"] = syslog_bridge_targets(
        v["logfwdr_collectors"], v["logfwdr_ingress_interfaces"], v["logfwdr_protocols"],
        egress_interfaces=v.get("logfwdr_egress_interfaces"))
    v["__logfwdr_syslog_bridge_inputs"] = syslog_bridge_inputs(
        dict((k, v[k]) for k in SETTINGS), v["logfwdr_ingress_interfaces"], vrrp=v["logfwdr_vrrp"])
    v.update({
        "__logfwdr_syslog_bridge_service": "logfwdr-syslog-bridge.service",
        "__logfwdr_syslog_bridge_conf": "/etc/logfwdr/syslog-bridge.conf",
        "__logfwdr_syslog_bridge_work_dir": work_dir,
        "__logfwdr_syslog_bridge_stats_file": stats_file,
        "__logfwdr_syslog_bridge_user": "logfwdr-syslog",
        "__logfwdr_syslog_bridge_credentials_dir": credentials_dir,
        "__logfwdr_nftables_service": "logfwdr-nftables.service",
        "ansible_managed": "Ansible managed: test render",
    })
    return v


def render(name, variables):
    """One of the role's templates, rendered by Ansible's Templar (as the template module does)."""
    source = open(os.path.join(ROLE, "templates", name)).read()
    templar = Templar(loader=DataLoader(), variables=variables)
    if TRUST:
        return templar.template(trust_as_template(source))
    # 2.18: as its template action does, no conversion of the text to data (`{ "a", "b" }` would become a set)
    return templar.template(source, convert_data=False, preserve_trailing_newlines=True, escape_backslashes=False)


ROLE_VARS = yaml.safe_load(open(os.path.join(ROLE, "vars", "main.yml")))


def role_var(name, variables, like=()):
    """One of vars/main.yml's variables, templated as the role sees it: with `variables` and the other role
    variables whose names contain one of `like` (those it is built from)."""
    values = dict(variables)
    values.update((k, trust_as_template(v) if isinstance(v, str) else v) for k, v in ROLE_VARS.items()
                  if any(word in k for word in like))
    return Templar(loader=DataLoader(), variables=values).template(trust_as_template(ROLE_VARS[name]))


def render_conf(inventory, directory):
    """syslog-bridge.conf for `inventory` (role variables), with its work dir, counters file and credentials
    directory (where the unit's LoadCredential puts the TLS key) in `directory`."""
    work_dir = os.path.join(directory, "work")
    os.makedirs(work_dir, exist_ok=True)
    variables = role_vars(inventory, work_dir, os.path.join(directory, "stats.log"),
                          credentials_dir=os.path.join(directory, "credentials"))
    return render("syslog-bridge.conf.j2", variables), variables


def check(path):
    """rsyslogd -N1 -f path, as the template task's validate: runs it."""
    return subprocess.run([RSYSLOGD, "-N1", "-f", path], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, check=False)
