# -*- coding: utf-8 -*-
"""logfwdr_manage_interfaces false: the role's own interface tasks write no network file and check the interfaces
the host's network configuration brings up. Real ansible-playbook runs of tasks/interfaces.yml in a network
namespace with the inventory's interfaces; needs root."""

import os
import shutil
import subprocess
import tempfile

import pytest
import yaml

from test_role_vrrp import INTERFACES, LAB_GROUP, PLAYBOOK_DIR, ROLE, host

PLAY = [{
    "name": "The role's interface tasks",
    "hosts": "all",
    "gather_facts": False,
    "tasks": [
        {"name": "Validate the inventory like the role does",
         "ansible.builtin.include_role": {"name": "netops.logfwdr.logfwdr", "tasks_from": "validate.yml",
                                          "public": True}},
        {"name": "Bring up the interfaces like the role does",
         "ansible.builtin.include_role": {"name": "netops.logfwdr.logfwdr", "tasks_from": "interfaces.yml"}},
    ],
}]


def run(tmpdir, configured, manage=False):
    """ansible-playbook in a namespace whose vecN exist; `configured`: the ones brought up with their addresses."""
    group = dict(LAB_GROUP, logfwdr_syslog_bridge=False, logfwdr_vrrp=False, logfwdr_manage_interfaces=manage)
    inventory = {"all": {"children": {"replicators": {"hosts": {"rep1": host(2)}, "vars": group}}}}
    inv = os.path.join(tmpdir, "hosts.yml")
    with open(inv, "w") as handle:
        yaml.safe_dump(inventory, handle)
    book = os.path.join(tmpdir, "play.yml")
    with open(book, "w") as handle:
        yaml.safe_dump(PLAY, handle, sort_keys=False)
    networkd = os.path.join(tmpdir, "networkd")
    os.mkdir(networkd)
    addresses = dict((i["name"], i["address"].replace("{{ replicator_host_octet }}", "2"))
                     for i in LAB_GROUP["logfwdr_ingress_interfaces"] + LAB_GROUP["logfwdr_egress_interfaces"])
    setup = "".join("ip link add %s type veth peer name p%d && " % (name, n) for n, name in enumerate(INTERFACES))
    setup += "".join("ip addr add %s dev %s && ip link set %s up && ip link set p%d up && "
                     % (addresses[name], name, name, INTERFACES.index(name)) for name in configured)
    collections = os.path.join(os.path.dirname(os.path.dirname(ROLE)), ".build", "collections")
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections, ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCAL_TEMP=os.path.join(tmpdir, "ansible-tmp"), ANSIBLE_CONFIG=os.path.join(tmpdir, "none.cfg"),
               ANSIBLE_RETRY_FILES_ENABLED="0")
    env.pop("ANSIBLE_INVENTORY", None)
    cmd = [os.path.join(PLAYBOOK_DIR, "ansible-playbook"), "-i", inv, book,
           "-e", "__logfwdr_networkd_dir=%s" % networkd]
    proc = subprocess.run(["unshare", "--net", "sh", "-c", setup + 'exec "$@"', "sh"] + cmd, cwd=tmpdir, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, check=False)
    return proc.returncode, proc.stdout, os.listdir(networkd)


@pytest.fixture
def tmpdir():
    if os.geteuid() != 0:
        pytest.skip("needs root (a network namespace with the inventory's interfaces)")
    path = tempfile.mkdtemp(prefix="logfwdr-ifaces-")
    try:
        yield path
    finally:
        shutil.rmtree(path)


def test_unmanaged_interfaces_that_are_up_pass_without_a_network_file(tmpdir):
    rc, out, files = run(tmpdir, configured=INTERFACES)
    assert rc == 0, out
    assert files == []
    assert "skipping: [rep1] => (item=ingress vec1)" in out or "Write a systemd-networkd file" not in out, out
    assert "changed=0" in out and "failed=0" in out, out


def test_unmanaged_interfaces_missing_their_addresses_fail_naming_them(tmpdir):
    rc, out, files = run(tmpdir, configured=("vec1", "vec3"))
    assert rc != 0, out
    assert files == []
    assert "logfwdr_manage_interfaces is false" in out, out
    for missing in ("vec2", "vec4", "10.10.2.2/24", "10.20.2.2/24"):
        assert missing in out.split("logfwdr_manage_interfaces is false", 1)[1], (missing, out)
    for present in ("10.10.1.2/24", "10.20.1.2/24"):
        assert present not in out.split("logfwdr_manage_interfaces is false", 1)[1].split("Configure them")[0], out


def test_managed_interfaces_get_their_network_files(tmpdir):
    """The control: with the default, the same run writes one networkd file per interface (it then stops at
    starting systemd-networkd, which this namespace does not have)."""
    _rc, out, files = run(tmpdir, configured=(), manage=True)
    assert sorted(files) == ["60-logfwdr-%s.network" % name for name in INTERFACES], out


def test_an_ipv6_address_and_route_are_written_into_the_network_file():
    from lflab import bridgeconf
    item = {"name": "vec3", "side": "egress", "address": "10.20.1.2/24", "address6": "2001:db8:20::2/64",
            "routes": [{"to": "10.30.0.0/16", "via": "10.20.1.1"}, {"to": "2001:db8:30::/48", "via": "2001:db8:20::1"}]}
    text = bridgeconf.render("logfwdr.network.j2", {"item": item, "logfwdr_vrrp": False, "ansible_managed": "test"})
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert "Address=10.20.1.2/24" in lines and "Address=2001:db8:20::2/64" in lines
    assert lines[lines.index("Destination=2001:db8:30::/48") + 1] == "Gateway=2001:db8:20::1"
    plain = bridgeconf.render("logfwdr.network.j2", {"item": dict(item, address6=None, routes=[]),
                                                     "logfwdr_vrrp": False, "ansible_managed": "test"})
    assert "2001:db8" not in plain
