# -*- coding: utf-8 -*-
"""keepalived.conf as the role renders it, checked by keepalived itself.

A tiny ansible-playbook run against fake hosts (connection local) runs the role's validate.yml and renders
templates/keepalived.conf.j2 (and the network files) into a temporary directory - nothing on this machine is
changed. `keepalived -t -f` then checks each file in a throwaway network namespace that has the interfaces
the inventory names (keepalived -t checks that interfaces exist and that check scripts are root-owned and safe).
The keepalived part needs root and keepalived (`make deps` installs it).
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import pytest
import yaml

from lflab.roleplay import validate_play

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ROLE = os.path.join(REPO, "roles", "logfwdr")
COLLECTIONS = os.path.join(REPO, ".build", "collections")
PLAYBOOK_DIR = os.path.dirname(sys.executable)
KEEPALIVED = shutil.which("keepalived") or ("/usr/sbin/keepalived" if os.path.exists("/usr/sbin/keepalived") else None)
INTERFACES = ("vec1", "vec2", "vec3", "vec4")

PLAYBOOK = validate_play("Render the role's VRRP files like the role does, into a directory") + """
    - name: Render keepalived.conf
      ansible.builtin.template:
        src: {role}/templates/keepalived.conf.j2
        dest: "{{{{ outdir }}}}/{{{{ inventory_hostname }}}}.conf"
        mode: "0600"
      when: logfwdr_vrrp | bool
    - name: Render the nftables table (VRRP from the peer only)
      ansible.builtin.template:
        src: {role}/templates/logfwdr-nftables.conf.j2
        dest: "{{{{ outdir }}}}/{{{{ inventory_hostname }}}}.nft"
        mode: "0600"
      when: logfwdr_vrrp | bool
    - name: Write the VRRP password file keepalived.conf includes
      ansible.builtin.copy:
        content: "auth_pass {{{{ logfwdr_vrrp_auth_pass }}}}\\n"
        dest: "{{{{ __logfwdr_keepalived_auth_file }}}}"
        mode: "0600"
      when: logfwdr_vrrp | bool and __logfwdr_vrrp.auth
    - name: Render the agent's unit (it writes the health file keepalived follows)
      ansible.builtin.template:
        src: {role}/templates/logfwdr-agent.service.j2
        dest: "{{{{ outdir }}}}/{{{{ inventory_hostname }}}}-agent.service"
        mode: "0600"
      when: logfwdr_vrrp | bool
    - name: Render the network files
      ansible.builtin.template:
        src: {role}/templates/logfwdr.network.j2
        dest: "{{{{ outdir }}}}/{{{{ inventory_hostname }}}}-{{{{ item.name }}}}.network"
        mode: "0600"
      loop: "{{{{ __logfwdr_interfaces }}}}"
""".format(role=ROLE)

# lab-like (inventories/lab): two ingress segments, two egress subnets, a pair with priorities 150 / 100
LAB_GROUP = {
    "logfwdr_ingress_interfaces": [
        {"name": "vec1", "address": "10.10.1.{{ replicator_host_octet }}/24", "virtual_address": "10.10.1.1/24",
         "virtual_router_id": 11},
        {"name": "vec2", "address": "10.10.2.{{ replicator_host_octet }}/24", "virtual_address": "10.10.2.1/24",
         "virtual_router_id": 12}],
    "logfwdr_egress_interfaces": [
        {"name": "vec3", "address": "10.20.1.{{ replicator_host_octet }}/24"},
        {"name": "vec4", "address": "10.20.2.{{ replicator_host_octet }}/24"}],
    "logfwdr_collectors": [
        {"name": "collector1", "address": "10.20.1.31", "protocols": ["syslog"]},
        {"name": "collector3", "address": "10.20.2.33", "protocols": ["netflow", "ipfix"]}],
    "logfwdr_vrrp": True,
}


def fake_mac(octet, name):
    """The MAC a fake host (replicator_host_octet) has on interface vecN: 52:54:00:0<octet>:00:0<N>."""
    return "52:54:00:%02x:00:%02x" % (int(octet), int(name[3:]))


def write_links(tmpdir):
    """Each fake host's `ip -json link show` (links-<octet>.json), which the role's validate.yml reads
    (__logfwdr_ip_link_command): the peer's VRRP rule binds each host's adverts to these MACs."""
    for octet in range(2, 10):
        links = [{"ifindex": n, "ifname": "vec%d" % n, "address": fake_mac(octet, "vec%d" % n)} for n in range(1, 6)]
        with open(os.path.join(tmpdir, "links-%d.json" % octet), "w") as handle:
            json.dump([{"ifindex": 0, "ifname": "lo", "address": "00:00:00:00:00:00"}] + links, handle)
    return "cat %s/links-{{ replicator_host_octet }}.json" % tmpdir


def host(octet, **extra):
    return dict(extra, replicator_host_octet=octet, ansible_connection="local",
                ansible_python_interpreter=sys.executable)


def run_playbook(tmpdir, inventory, extra_vars=None, args=()):
    inv = os.path.join(tmpdir, "hosts.yml")
    with open(inv, "w") as handle:
        yaml.safe_dump(inventory, handle)
    book = os.path.join(tmpdir, "render.yml")
    with open(book, "w") as handle:
        handle.write(PLAYBOOK)
    libexec = os.path.join(tmpdir, "libexec")
    extra = {"outdir": tmpdir, "__logfwdr_libexec_dir": libexec,
             "__logfwdr_health_file": os.path.join(tmpdir, "health"),
             "__logfwdr_keepalived_auth_file": os.path.join(tmpdir, "{{ inventory_hostname }}-auth.conf"),
             "__logfwdr_ip_link_command": write_links(tmpdir)}
    extra.update(extra_vars or {})
    cfg = os.path.join(tmpdir, "ansible.cfg")
    with open(cfg, "w") as handle:
        handle.write("[defaults]\n")
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, ANSIBLE_CONFIG=cfg, ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCAL_TEMP=os.path.join(tmpdir, "ansible-tmp"), ANSIBLE_RETRY_FILES_ENABLED="0",
               ANSIBLE_HOST_KEY_CHECKING="0")
    env.pop("ANSIBLE_INVENTORY", None)
    proc = subprocess.run([os.path.join(PLAYBOOK_DIR, "ansible-playbook"), "-i", inv, book,
                           "-e", yaml.safe_dump(extra, default_flow_style=True).strip()] + list(args),
                          cwd=tmpdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, check=False)
    return proc


def install_scripts(tmpdir):
    """The role's notify script where the rendered file points (keepalived -t checks it)."""
    libexec = os.path.join(tmpdir, "libexec")
    os.makedirs(libexec, mode=0o755, exist_ok=True)
    for name, source in (("vrrp-notify", "vrrp-notify"),):
        shutil.copy(os.path.join(ROLE, "files", source), os.path.join(libexec, name))
        os.chmod(os.path.join(libexec, name), 0o755)
    os.chmod(tmpdir, 0o755)


def keepalived_test(path, interfaces=INTERFACES):
    """rc and output of `keepalived -t -f path` in a new network namespace holding `interfaces`."""
    if KEEPALIVED is None:
        pytest.skip("keepalived is not installed (make deps)")
    if os.geteuid() != 0:
        pytest.skip("keepalived -t needs root here (a network namespace with the inventory's interfaces)")
    setup = "".join("ip link add %s type veth peer name p%d && " % (name, n) for n, name in enumerate(interfaces))
    proc = subprocess.run(["unshare", "--net", "sh", "-c", setup + '%s -t -f "$0"' % KEEPALIVED, path],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, check=False)
    return proc.returncode, proc.stdout


def blocks(text, keyword):
    """{name: body} of the top-level `keyword name { ... }` blocks of a keepalived.conf."""
    out = {}
    for match in re.finditer(r"^%s (\S+) \{\n(.*?)^\}" % keyword, text, re.M | re.S):
        out[match.group(1)] = match.group(2)
    return out


def lines(body):
    return [line.strip() for line in body.splitlines() if line.strip() and not line.strip().startswith("#")]


@pytest.fixture(scope="module")
def rendered():
    """Two pairs rendered in one run: the lab-like pair (multicast, VRRPv3) and a unicast VRRPv2 pair."""
    tmpdir = tempfile.mkdtemp(prefix="logfwdr-vrrp-")
    install_scripts(tmpdir)
    uni_group = {
        "logfwdr_ingress_interfaces": [LAB_GROUP["logfwdr_ingress_interfaces"][0]],
        "logfwdr_egress_interfaces": LAB_GROUP["logfwdr_egress_interfaces"][:1],
        "logfwdr_collectors": LAB_GROUP["logfwdr_collectors"][:1],
        "logfwdr_vrrp": True, "logfwdr_vrrp_unicast": True, "logfwdr_vrrp_version": 2,
        "logfwdr_vrrp_advert_interval": 1, "logfwdr_vrrp_auth_pass": "s3cret", "logfwdr_vrrp_preempt": False,
        "logfwdr_syslog_bridge": False, "logfwdr_vrrp_check_interval": 5,
    }
    inventory = {"all": {"children": {
        "replicators": {"hosts": {"rep1": host(2, logfwdr_vrrp_priority=150), "rep2": host(3)},
                        "vars": LAB_GROUP},
        "unicast": {"hosts": {"uni1": host(2, logfwdr_vrrp_priority=200, logfwdr_vrrp_peers=["uni2"]),
                              "uni2": host(3, logfwdr_vrrp_priority=50, logfwdr_vrrp_peers=["uni1"])},
                    "vars": uni_group},
        # the lab pair with a link of its own (vec5) for the adverts
        "paired": {"hosts": {"pair1": host(2, logfwdr_vrrp_priority=150, logfwdr_vrrp_peers=["pair2"],
                                           logfwdr_vrrp_pair_link={"name": "vec5", "address": "10.255.255.1/30"}),
                             "pair2": host(3, logfwdr_vrrp_peers=["pair1"],
                                           logfwdr_vrrp_pair_link={"name": "vec5", "address": "10.255.255.2/30"})},
                   "vars": LAB_GROUP}}}}
    try:
        proc = run_playbook(tmpdir, inventory)
        assert proc.returncode == 0, proc.stdout
        out = {"dir": tmpdir, "stdout": proc.stdout}
        for name in ("rep1", "rep2", "uni1", "uni2", "pair1", "pair2"):
            with open(os.path.join(tmpdir, name + ".conf")) as handle:
                out[name] = handle.read()
            with open(os.path.join(tmpdir, name + ".nft")) as handle:
                out[name + ".nft"] = handle.read()
        yield out
    finally:
        shutil.rmtree(tmpdir)


# ---- what is rendered ----------------------------------------------------------------------------------------

def test_lab_pair_instances_and_priorities(rendered):
    for name, priority in (("rep1", 150), ("rep2", 100)):
        text = rendered[name]
        instances = blocks(text, "vrrp_instance")
        assert sorted(instances) == ["logfwdr_vec1", "logfwdr_vec2"]
        vec1 = lines(instances["logfwdr_vec1"])
        for line in ("state BACKUP", "interface vec1", "virtual_router_id 11", "priority %d" % priority,
                     "version 3", "advert_int 0.2", "preempt_delay 30", "10.10.1.1/24 dev vec1"):
            assert line in vec1, (name, line, vec1)
        assert "virtual_router_id 12" in lines(instances["logfwdr_vec2"])
        assert "10.10.2.1/24 dev vec2" in lines(instances["logfwdr_vec2"])
        # every other ingress and egress interface is tracked (keepalived tracks the own one anyway)
        assert re.search(r"track_interface \{\s+vec2\s+vec3\s+vec4\s+\}", instances["logfwdr_vec1"])
        assert re.search(r"track_interface \{\s+vec1\s+vec3\s+vec4\s+\}", instances["logfwdr_vec2"])
        assert re.search(r"track_file \{\s+logfwdr_health\s+\}", instances["logfwdr_vec1"])
        assert "track_script" not in text and "vrrp_script" not in text
        for forbidden in ("authentication", "nopreempt", "state MASTER"):
            assert forbidden not in text, (name, forbidden)
        # unicast by default, to the peer's address on the same interface; adverts only from there
        own, peer = ("2", "3") if name == "rep1" else ("3", "2")
        for inst, net in (("logfwdr_vec1", "10.10.1."), ("logfwdr_vec2", "10.10.2.")):
            assert "unicast_src_ip %s%s" % (net, own) in lines(instances[inst])
            assert re.search(r"unicast_peer \{\s+%s\s+\}" % re.escape(net + peer), instances[inst])
        # no sync group: a forged advert on one segment must not move the other segments' addresses; the
        # instances fail over together through their tracked interfaces and health file
        assert "vrrp_sync_group" not in text
        global_defs = lines(re.search(r"^global_defs \{\n(.*?)^\}", text, re.M | re.S).group(1))
        assert global_defs == ["router_id %s" % name, "enable_script_security", "script_user root",
                               "vrrp_check_unicast_src", "vrrp_garp_master_repeat 5", "vrrp_garp_master_delay 1"]
        tracked = blocks(text, "vrrp_track_file")
        assert list(tracked) == ["logfwdr_health"]
        assert lines(tracked["logfwdr_health"]) == ['file "%s/health"' % rendered["dir"], "weight 0", "init_file 1"]
        # the agent writes the file keepalived follows: its settings, the bridge's port, the metrics address
        unit = open(os.path.join(rendered["dir"], name + "-agent.service")).read()
        execstart = re.search(r"^ExecStart=(.*)$", unit, re.M).group(1).split()
        assert execstart == ["/usr/local/sbin/logfwdr", "agent", "--state", "/etc/logfwdr/state.json",
                             "--health-file", "%s/health" % rendered["dir"], "--interval", "1", "--fall", "2", "--rise", "2",
                             "--metrics-listen", "127.0.0.1:9514", "--vrrp-state-dir", "/run/logfwdr/vrrp",
                             "--bridge-stats", "/var/log/logfwdr/syslog-bridge-stats.log", "--listen-port", "514"]
        # ready (Type=notify) before keepalived starts; stopped or killed: unhealthy
        for line in ("Type=notify", "Before=keepalived.service", "After=network-online.target "
                     "systemd-modules-load.service", "ExecStopPost=/bin/sh -c 'echo 1 > %s/health'" % rendered["dir"]):
            assert line in unit.splitlines(), (line, unit)


def test_unicast_v2_pair(rendered):
    for name, priority, src, peer in (("uni1", 200, "10.10.1.2", "10.10.1.3"), ("uni2", 50, "10.10.1.3", "10.10.1.2")):
        text = rendered[name]
        instances = blocks(text, "vrrp_instance")
        assert list(instances) == ["logfwdr_vec1"]
        body = instances["logfwdr_vec1"]
        for line in ("priority %d" % priority, "version 2", "advert_int 1", "nopreempt", "unicast_src_ip " + src,
                     "auth_type PASS", "include %s/%s-auth.conf" % (rendered["dir"], name)):
            assert line in lines(body), (name, line)
        # the password is only in its own file, which keepalived includes
        assert "s3cret" not in text
        assert open(os.path.join(rendered["dir"], name + "-auth.conf")).read() == "auth_pass s3cret\n"
        assert re.search(r"unicast_peer \{\s+%s\s+\}" % re.escape(peer), body)
        assert "preempt_delay" not in text
        # one instance: no sync group (keepalived -t warns about a group of one); no syslog bridge check
        assert "vrrp_sync_group" not in text
        assert "syslog bridge" not in text
        assert re.search(r"track_interface \{\s+vec3\s+\}", body)
        unit = open(os.path.join(rendered["dir"], name + "-agent.service")).read()
        assert "--interval 5 " in unit and "--listen-port" not in unit


def test_pair_link_carries_the_adverts(rendered):
    for name, src, peer in (("pair1", "10.255.255.1", "10.255.255.2"), ("pair2", "10.255.255.2", "10.255.255.1")):
        instances = blocks(rendered[name], "vrrp_instance")
        for inst, vip, others in (("logfwdr_vec1", "10.10.1.1/24 dev vec1", r"vec1\s+vec2\s+vec3\s+vec4"),
                                  ("logfwdr_vec2", "10.10.2.1/24 dev vec2", r"vec1\s+vec2\s+vec3\s+vec4")):
            body = instances[inst]
            for line in ("interface vec5", "unicast_src_ip " + src, vip, "dont_track_primary"):
                assert line in lines(body), (name, inst, line)
            assert re.search(r"unicast_peer \{\s+%s\s+\}" % re.escape(peer), body)
            # the segments are not keepalived's interfaces now: both are tracked (a dead segment moves them all)
            assert re.search(r"track_interface \{\s+%s\s+\}" % others, body), body
        # the pair link gets its address like the other interfaces
        network = open(os.path.join(rendered["dir"], "%s-vec5.network" % name)).read()
        assert "Address=%s/30" % src in network.splitlines() and "pair link" in network


def test_network_files_keep_the_virtual_address(rendered):
    for name in ("rep1", "uni1"):
        ingress = open(os.path.join(rendered["dir"], "%s-vec1.network" % name)).read()
        egress = open(os.path.join(rendered["dir"], "%s-vec3.network" % name)).read()
        assert "KeepConfiguration=static" in ingress
        assert "KeepConfiguration" not in egress


# ---- the nftables rule: the peer's address and the MAC read from it -------------------------------------------

NFT = shutil.which("nft") or "/usr/sbin/nft"
WARNING = ("VRRP adverts travel on the exporter segments (logfwdr_vrrp_pair_link is unset): the role's nftables table "
           "admits them only from the peer's address and MAC, so any host on a segment that forges both (its own MAC "
           "set to the peer's) can send priority-255 adverts that make both replicators give up the virtual "
           "addresses. To stop that, give the pair a link of its own (logfwdr_vrrp_pair_link, on both replicators), "
           "or route the service addresses instead (logfwdr_ha: bgp); logfwdr_vrrp_require_pair_link: true makes "
           "this an error")


def vrrp_chain(text):
    """The rules of the nftables table's vrrp chain."""
    got = lines(text)
    start = got.index("chain vrrp {") + 1
    return got[start:start + got[start:].index("}")]


def nft_check(text, tmpdir):
    if os.geteuid() != 0 or not os.path.exists(NFT):
        pytest.skip("needs root and nft (make deps installs nftables)")
    path = os.path.join(tmpdir, "check.nft")
    with open(path, "w") as handle:
        handle.write(text)
    return subprocess.run(["unshare", "--net", NFT, "-c", "-f", path], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, universal_newlines=True, check=False)


def test_vrrp_rule_binds_the_peer_address_and_the_mac_read_from_the_peer(rendered):
    """No logfwdr_vrrp_macs anywhere (the defaults): each host admits VRRP on a segment only from the peer's address
    there and the peer's MAC there, as the role read it from the peer in the same run; nft -c takes the file."""
    for name, peer, segments in (("rep1", 3, 2), ("rep2", 2, 2), ("uni1", 3, 1), ("uni2", 2, 1)):
        text = rendered[name + ".nft"]
        want = ['iifname "vec%d" ip saddr 10.10.%d.%d ether saddr %s accept' % (n, n, peer, fake_mac(peer, "vec%d" % n))
                for n in range(1, segments + 1)]
        assert vrrp_chain(text) == want + ["counter drop"], (name, text)
        assert "forges the peer's address AND its MAC still gets through" in text
        proc = nft_check(text, rendered["dir"])
        assert proc.returncode == 0, proc.stdout + text
    # with a pair link: only from the peer's pair-link address there; nothing is admitted from a segment
    for name, peer in (("pair1", "10.255.255.2"), ("pair2", "10.255.255.1")):
        text = rendered[name + ".nft"]
        assert vrrp_chain(text) == ['iifname "vec5" ip saddr %s accept' % peer, "counter drop"], text
        assert "still gets through" not in text
    # every run without a pair link says what is still possible, and the cure
    assert WARNING in " ".join(rendered["stdout"].split()), rendered["stdout"]


def test_play_stops_on_pair_link_and_mac_mistakes(tmp_path):
    """logfwdr_vrrp_require_pair_link without a pair link, a wrong logfwdr_vrrp_macs here or on the peer: each an
    error naming the setting, before anything is written; with pair links the same switch passes, and no warning."""
    tmpdir = str(tmp_path)
    inventory = {"all": {"children": {
        "strict": {"hosts": {"strict1": host(2, logfwdr_vrrp_peers=["strict2"]),
                             "strict2": host(3, logfwdr_vrrp_peers=["strict1"])},
                   "vars": dict(LAB_GROUP, logfwdr_vrrp_require_pair_link=True)},
        "wrong": {"hosts": {"wrong1": host(2, logfwdr_vrrp_peers=["wrong2"],
                                           logfwdr_vrrp_macs={"vec1": fake_mac(2, "vec1"), "vec2": fake_mac(2, "vec9")}),
                            "wrong2": host(3, logfwdr_vrrp_peers=["wrong1"])},
                  "vars": LAB_GROUP},
        "paired": {"hosts": {"sp1": host(2, logfwdr_vrrp_peers=["sp2"],
                                         logfwdr_vrrp_pair_link={"name": "vec5", "address": "10.255.255.1/30"}),
                             "sp2": host(3, logfwdr_vrrp_peers=["sp1"],
                                         logfwdr_vrrp_pair_link={"name": "vec5", "address": "10.255.255.2/30"})},
                   "vars": dict(LAB_GROUP, logfwdr_vrrp_require_pair_link=True)}}}}
    proc = run_playbook(tmpdir, inventory)
    fatal = dict(re.findall(r"^fatal: \[(\w+)\]: FAILED! => (.*)$", proc.stdout, re.M))
    assert sorted(fatal) == ["strict1", "strict2", "wrong1", "wrong2"], proc.stdout
    for name in ("strict1", "strict2"):
        assert ("logfwdr_vrrp_require_pair_link: true, but logfwdr_vrrp_pair_link is unset: VRRP adverts on the "
                "exporter segments can be forged by any host there that forges a MAC too; give the pair a link of its "
                "own (logfwdr_vrrp_pair_link, on both replicators), or route the service addresses instead "
                "(logfwdr_ha: bgp), or set logfwdr_vrrp_require_pair_link: false") in fatal[name], fatal[name]
    assert ("logfwdr_vrrp_macs.vec2: 52:54:00:02:00:09 in the inventory, but wrong1's vec2 has 52:54:00:02:00:02; the "
            "peer admits VRRP only from this MAC") in fatal["wrong1"], fatal["wrong1"]
    assert ("logfwdr_ingress_interfaces[1].name: wrong1's logfwdr_vrrp_macs.vec2 is 52:54:00:02:00:09, but its vec2 "
            "has 52:54:00:02:00:02; this host would drop its adverts") in fatal["wrong2"], fatal["wrong2"]
    assert sorted(f for f in os.listdir(tmpdir) if f.endswith((".conf", ".nft"))) == [
        "sp1.conf", "sp1.nft", "sp2.conf", "sp2.nft"]
    assert "VRRP adverts travel on the exporter segments" not in proc.stdout


def test_a_peer_outside_the_play_needs_its_macs_listed(tmp_path):
    """--limit to one replicator: its peer read nothing in this run. Without the peer's logfwdr_vrrp_macs the run
    stops, naming the peer and the fix; with them, the rule binds the listed MACs."""
    tmpdir = str(tmp_path)
    listed = {"vec1": "52:54:00:aa:00:01", "vec2": "52:54:00:aa:00:02"}
    inventory = {"all": {"children": {
        "limited": {"hosts": {"lim1": host(2, logfwdr_vrrp_peers=["lim2"]),
                              "lim2": host(3, logfwdr_vrrp_peers=["lim1"])}, "vars": LAB_GROUP},
        "listed": {"hosts": {"listed1": host(2, logfwdr_vrrp_peers=["listed2"]),
                             "listed2": host(3, logfwdr_vrrp_peers=["listed1"], logfwdr_vrrp_macs=listed)},
                   "vars": LAB_GROUP}}}}
    proc = run_playbook(tmpdir, inventory, args=("--limit", "lim1,listed1"))
    fatal = dict(re.findall(r"^fatal: \[(\w+)\]: FAILED! => (.*)$", proc.stdout, re.M))
    assert sorted(fatal) == ["lim1"], proc.stdout
    assert ("logfwdr_vrrp_peers: lim2 did not read its interfaces in this run (it is not in the play: --limit, serial, "
            "or it failed before), so its MACs are unknown and the VRRP rule cannot bind its adverts to them; run the "
            "play on both replicators (--limit lim1,lim2), or set logfwdr_vrrp_macs (its MAC per ingress interface) "
            "in lim2's host_vars") in fatal["lim1"], fatal["lim1"]
    assert not os.path.exists(os.path.join(tmpdir, "lim1.nft"))
    with open(os.path.join(tmpdir, "listed1.nft")) as handle:
        assert vrrp_chain(handle.read()) == [
            'iifname "vec1" ip saddr 10.10.1.3 ether saddr 52:54:00:aa:00:01 accept',
            'iifname "vec2" ip saddr 10.10.2.3 ether saddr 52:54:00:aa:00:02 accept', "counter drop"]


# ---- keepalived -t -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["rep1", "rep2", "uni1", "uni2", "pair1", "pair2"])
def test_keepalived_accepts_the_rendered_file(rendered, name):
    path = os.path.join(rendered["dir"], name + ".conf")
    rc, out = keepalived_test(path, INTERFACES + (("vec5",) if name.startswith("pair") else ()))
    assert (rc, out) == (0, ""), out


BROKEN = [
    ("unknown interface", lambda t: t.replace("interface vec1", "interface vec9"), "doesn't exist"),
    ("router id out of range", lambda t: t.replace("virtual_router_id 11", "virtual_router_id 300"), "outside range"),
    ("missing brace", lambda t: t.rstrip()[:-1], "missing '}'"),
    ("unknown keyword", lambda t: t.replace("state BACKUP", "state BACKUP\n    preemt_delay 30", 1), "Unknown keyword"),
    ("sub-second VRRPv2", lambda t: t.replace("version 3", "version 2"), "must be an integer"),
    ("authentication with VRRPv3", lambda t: t.replace(
        "    state BACKUP", "    state BACKUP\n    authentication {\n        auth_type PASS\n        auth_pass x\n    }",
        1), "does not support authentication"),
    ("own interface tracked", lambda t: t.replace("track_interface {\n        vec2",
                                                  "track_interface {\n        vec1\n        vec2", 1), "own interface"),
]


@pytest.mark.parametrize("what, mutate, message", BROKEN, ids=[b[0] for b in BROKEN])
def test_keepalived_rejects_broken_variants(rendered, what, mutate, message):
    text = rendered["rep1"]
    broken = mutate(text)
    assert broken != text, what
    path = os.path.join(rendered["dir"], "broken.conf")
    with open(path, "w") as handle:
        handle.write(broken)
    rc, out = keepalived_test(path)
    assert rc != 0, (what, out)
    assert message in out, (what, out)


# ---- the role's checks in a real play ----------------------------------------------------------------------------

def test_play_stops_on_vrrp_mistakes():
    tmpdir = tempfile.mkdtemp(prefix="logfwdr-vrrp-bad-")
    try:
        group = dict(LAB_GROUP)
        v3_auth = host(2, logfwdr_vrrp_auth_pass="secret", logfwdr_vrrp_peers=["ok"])
        no_virtual = host(2, logfwdr_vrrp_peers=["ok"], logfwdr_ingress_interfaces=[
            LAB_GROUP["logfwdr_ingress_interfaces"][0],
            {"name": "vec2", "address": "10.10.2.2/24"}])
        mismatch = host(2, logfwdr_vrrp_peers=["other"])
        other = host(3, logfwdr_vrrp_peers=["mismatch"], logfwdr_ingress_interfaces=[
            LAB_GROUP["logfwdr_ingress_interfaces"][0],
            dict(LAB_GROUP["logfwdr_ingress_interfaces"][1], virtual_router_id=22)])
        inventory = {"all": {"children": {"pairs": {
            "hosts": {"v3auth": v3_auth, "novirtual": no_virtual, "mismatch": mismatch, "other": other,
                      "ok": host(3, logfwdr_vrrp_peers=["v3auth"])},
            "vars": group}}}}
        proc = run_playbook(tmpdir, inventory)
        assert proc.returncode != 0
        fatal = dict(re.findall(r"^fatal: \[(\w+)\]: FAILED! => (.*)$", proc.stdout, re.M))
        assert sorted(fatal) == ["mismatch", "novirtual", "other", "v3auth"], proc.stdout
        assert "logfwdr_vrrp_auth_pass: VRRPv3 has no authentication (RFC 5798 removed it)" in fatal["v3auth"]
        assert "logfwdr_ingress_interfaces[1].virtual_address: required with logfwdr_vrrp: true" in fatal["novirtual"]
        assert "logfwdr_ingress_interfaces[1].virtual_router_id: 12 here but 22 on other" in fatal["mismatch"]
        assert "logfwdr_ingress_interfaces[1].virtual_router_id: 22 here but 12 on mismatch" in fatal["other"]
        assert os.path.exists(os.path.join(tmpdir, "ok.conf"))
        assert not os.path.exists(os.path.join(tmpdir, "v3auth.conf"))
    finally:
        shutil.rmtree(tmpdir)


def test_notify_script_keeps_the_state_per_instance(tmp_path):
    script = os.path.join(ROLE, "files", "vrrp-notify")
    env = dict(os.environ, LOGFWDR_VRRP_STATE_DIR=str(tmp_path / "vrrp"))
    for args in (["INSTANCE", "logfwdr_vec1", "BACKUP", "150"], ["INSTANCE", "logfwdr_vec1", "MASTER", "150"],
                 ["INSTANCE", "logfwdr_vec2", "FAULT", "150"], ["INSTANCE", "../evil name", "STOP"]):
        subprocess.run([script] + args, env=env, check=True)
    states = dict((p.name, p.read_text()) for p in (tmp_path / "vrrp").iterdir())
    assert sorted(states) == [".._evil_name", "logfwdr_vec1", "logfwdr_vec2"]
    assert re.match(r"^MASTER priority 150 since \d{4}-\d\d-\d\dT", states["logfwdr_vec1"])
    assert states["logfwdr_vec2"].startswith("FAULT priority 150 since ")
    assert states[".._evil_name"].startswith("STOP priority ? since ")
