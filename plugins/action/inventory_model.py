# -*- coding: utf-8 -*-
# Copyright: (c) 2026, logfwdr developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The role's whole inventory checked once on the controller: reads the role's variables itself (no task restates
them) and returns every view the role renders. Documented in plugins/modules/inventory_model.py."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_text
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase

from ansible_collections.netops.logfwdr.plugins.filter.host_firewall import host_firewall
from ansible_collections.netops.logfwdr.plugins.filter.replication_devices import replication_devices
from ansible_collections.netops.logfwdr.plugins.filter.syslog_bridge_inputs import syslog_bridge_inputs
from ansible_collections.netops.logfwdr.plugins.filter.syslog_bridge_targets import syslog_bridge_targets
from ansible_collections.netops.logfwdr.plugins.filter.vrrp_instances import DEFAULTS as VRRP_SETTINGS
from ansible_collections.netops.logfwdr.plugins.filter.vrrp_instances import vrrp_instances
from ansible_collections.netops.logfwdr.plugins.plugin_utils.bgp import parse_bgp, routed_exporters, service_addresses
from ansible_collections.netops.logfwdr.plugins.plugin_utils.inventory import Problems, role_defaults_under
from ansible_collections.netops.logfwdr.plugins.plugin_utils.vrrp import host_links


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        task_vars = task_vars or {}
        result["changed"] = False
        if self._task.args:
            result.update(failed=True, msg="netops.logfwdr.inventory_model takes no options (it reads the role's "
                                           "variables); remove %s" % ", ".join(sorted(self._task.args)))
            return result

        def var(name):
            # the role's defaults are in task_vars whenever this runs inside the role
            if name not in task_vars:
                raise AnsibleFilterError("%s is not defined: run netops.logfwdr.inventory_model inside the role "
                                         "netops.logfwdr.logfwdr, or define it" % name)
            return self._templar.template(task_vars[name])

        def on(name):  # the role's `| bool` switches
            return boolean(var(name), strict=False)

        try:
            # logfwdr_ha: bgp (None with vrrp): checked first, its service addresses are accepted by the tc rules
            # and the syslog bridge; the model never holds logfwdr_bgp_password (frr.conf.j2 reads the variable)
            problems = Problems()
            bgp = parse_bgp(dict((name, var(name)) for name in
                                 ["logfwdr_ha", "logfwdr_vrrp", "logfwdr_exporter_networks"]
                                 + ["logfwdr_bgp_" + k for k in role_defaults_under("logfwdr_bgp_")]),
                            var("logfwdr_ingress_interfaces"), problems,
                            egress_interfaces=var("logfwdr_egress_interfaces"))
            problems.fail("BGP settings")
            service = service_addresses(bgp)
            out = {"devices": replication_devices(
                var("logfwdr_collectors"), var("logfwdr_ingress_interfaces"), var("logfwdr_protocols"),
                egress_interfaces=var("logfwdr_egress_interfaces"), vrrp=on("logfwdr_vrrp"),
                exporter_networks=var("logfwdr_exporter_networks"), port_rate_limit=var("logfwdr_port_rate_limit"),
                port_burst=var("logfwdr_port_burst"), service_addresses=service)}
            if bgp is not None:
                out["bgp"] = bgp
            if on("logfwdr_vrrp"):
                host = task_vars.get("inventory_hostname")
                peers = var("logfwdr_vrrp_peers") or [
                    h for h in task_vars.get("groups", {}).get("replicators", []) if h != host]
                hostvars = task_vars.get("hostvars")
                nftables = on("logfwdr_nftables")
                # every replicator's interfaces, read in this run (validate.yml): the nftables rule binds each
                # peer's adverts to its MAC (not needed without the table)
                peer_links = dict((p, host_links(hostvars[p]) if hostvars is not None and p in hostvars else None)
                                  for p in peers) if nftables else None
                out["vrrp"] = vrrp_instances(
                    var("logfwdr_ingress_interfaces"), var("logfwdr_egress_interfaces"),
                    dict((name, var(name)) for name in VRRP_SETTINGS),
                    peers=peers, hostvars=hostvars, hostname=host, links=host_links(task_vars),
                    peer_links=peer_links, nftables=nftables)
                # on every run without a pair link: which forgery is still possible, and the cure
                result["warnings"] = result.get("warnings", []) + out["vrrp"].pop("warnings")
            if on("logfwdr_syslog_bridge"):
                out["syslog_bridge_targets"] = syslog_bridge_targets(
                    var("logfwdr_collectors"), var("logfwdr_ingress_interfaces"), var("logfwdr_protocols"),
                    egress_interfaces=var("logfwdr_egress_interfaces"))
                out["syslog_bridge_inputs"] = syslog_bridge_inputs(
                    dict(("logfwdr_syslog_bridge_" + k, var("logfwdr_syslog_bridge_" + k))
                         for k in role_defaults_under("logfwdr_syslog_bridge_")),
                    var("logfwdr_ingress_interfaces"), vrrp=on("logfwdr_vrrp"), service_addresses=service,
                    exporter_networks=routed_exporters(bgp, var("logfwdr_exporter_networks"),
                                                       var("logfwdr_ingress_interfaces")))
            if on("logfwdr_firewall"):
                out["firewall"] = host_firewall(
                    dict(("logfwdr_firewall_" + k, var("logfwdr_firewall_" + k))
                         for k in role_defaults_under("logfwdr_firewall_")),
                    out["devices"], out.get("syslog_bridge_inputs", {}))
        except AnsibleFilterError as exc:
            result.update(failed=True, msg=to_text(exc.message if hasattr(exc, "message") else exc))
            return result
        result.update(out)
        return result
