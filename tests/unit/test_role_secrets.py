# -*- coding: utf-8 -*-
"""No secret in the output, no inventory value in keepalived.conf syntax: real ansible-playbook runs.

The role's own tasks write keepalived.conf and the VRRP password file (copied here from tasks/vrrp.yml, without their notify)
into a temporary directory, in a network namespace that has the inventory's interfaces (so that their
`keepalived -t` validation runs as on a replicator). The password must appear neither under -v nor in the
--check --diff review, while the diff of keepalived.conf is still shown. Needs root and keepalived.
"""

import os
import re
import shutil
import subprocess
import tempfile

import pytest
import yaml

from test_role_vrrp import INTERFACES, KEEPALIVED, LAB_GROUP, PLAYBOOK_DIR, ROLE, host, install_scripts, run_playbook

PASSWORD = "Zq7sEcr1"
NEW_PASSWORD = "Yw4nEwp9"


def role_tasks(*names):
    tasks = yaml.safe_load(open(os.path.join(ROLE, "tasks", "vrrp.yml")))
    found = [t for t in tasks if t["name"] in names]
    assert [t["name"] for t in found] == list(names)
    for task in found:  # outside the role: its template by path, and no handler (it would reload keepalived)
        task.pop("notify", None)
        if "ansible.builtin.template" in task:
            task["ansible.builtin.template"]["src"] = os.path.join(ROLE, "templates",
                                                                   task["ansible.builtin.template"]["src"])
    return found


def play(tmpdir, tasks=("Write the VRRP password file", "Write the keepalived configuration")):
    return [{
        "name": "The role's VRRP files, written by its own tasks",
        "hosts": "all",
        "gather_facts": False,
        "tasks": [{"name": "Validate the inventory like the role does",
                   "ansible.builtin.include_role": {"name": "netops.logfwdr.logfwdr", "tasks_from": "validate.yml",
                                                    "public": True}}]
        + role_tasks(*tasks),
    }]


def run(tmpdir, inventory, *args, **kw):
    """ansible-playbook in a network namespace with the inventory's interfaces (vecN with MAC 52:54:00:00:00:0N);
    its whole output."""
    inv = os.path.join(tmpdir, "hosts.yml")
    with open(inv, "w") as handle:
        yaml.safe_dump(inventory, handle)
    book = os.path.join(tmpdir, "play.yml")
    with open(book, "w") as handle:
        yaml.safe_dump(play(tmpdir, **kw), handle, sort_keys=False)
    extra = {"__logfwdr_keepalived_conf": os.path.join(tmpdir, "keepalived.conf"),
             "__logfwdr_keepalived_auth_file": os.path.join(tmpdir, "auth.conf"),
             "__logfwdr_libexec_dir": os.path.join(tmpdir, "libexec"),
             "__logfwdr_health_file": os.path.join(tmpdir, "health")}
    setup = "".join("ip link add %s address 52:54:00:00:00:0%d type veth peer name p%d && " % (name, n + 1, n)
                    for n, name in enumerate(INTERFACES))
    collections = os.path.join(os.path.dirname(os.path.dirname(ROLE)), ".build", "collections")
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections,
               ANSIBLE_NOCOLOR="1", ANSIBLE_LOCAL_TEMP=os.path.join(tmpdir, "ansible-tmp"),
               ANSIBLE_CONFIG=os.path.join(tmpdir, "none.cfg"), ANSIBLE_RETRY_FILES_ENABLED="0")
    env.pop("ANSIBLE_INVENTORY", None)
    cmd = [os.path.join(PLAYBOOK_DIR, "ansible-playbook"), "-i", inv, book,
           "-e", yaml.safe_dump(extra, default_flow_style=True).strip()] + list(args)
    proc = subprocess.run(["unshare", "--net", "sh", "-c", setup + 'exec "$@"', "sh"] + cmd, cwd=tmpdir, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, check=False)
    return proc.returncode, proc.stdout


def inventory(password, priority):
    group = dict(LAB_GROUP, logfwdr_vrrp_version=2, logfwdr_vrrp_advert_interval=1, logfwdr_vrrp_auth_pass=password,
                 logfwdr_syslog_bridge=False, logfwdr_vrrp_peers=["rep2"])
    # only rep1 runs; rep2 is there for its addresses (unicast_peer) and its MACs (it reads none in this run)
    rep2 = host(3, logfwdr_vrrp_peers=["rep1"], logfwdr_vrrp_macs={"vec1": "52:54:00:00:01:01",
                                                                   "vec2": "52:54:00:00:01:02"})
    return {"all": {"children": {"replicators": {"hosts": {"rep1": host(2, logfwdr_vrrp_priority=priority)},
                                                 "vars": group},
                                 "peers": {"hosts": {"rep2": rep2}, "vars": group}}}}


@pytest.fixture
def tmpdir():
    if KEEPALIVED is None:
        pytest.skip("keepalived is not installed (make deps)")
    if os.geteuid() != 0:
        pytest.skip("needs root (a network namespace with the inventory's interfaces)")
    path = tempfile.mkdtemp(prefix="logfwdr-secret-")
    install_scripts(path)
    try:
        yield path
    finally:
        shutil.rmtree(path)


def test_password_absent_from_verbose_and_check_diff_output(tmpdir):
    rc, out = run(tmpdir, inventory(PASSWORD, 150), "-v", "-l", "rep1")
    assert rc == 0, out
    assert PASSWORD not in out
    conf = open(os.path.join(tmpdir, "keepalived.conf")).read()
    assert PASSWORD not in conf and "include %s/auth.conf" % tmpdir in conf
    assert open(os.path.join(tmpdir, "auth.conf")).read() == "auth_pass %s\n" % PASSWORD
    assert oct(os.stat(os.path.join(tmpdir, "auth.conf")).st_mode & 0o777) == "0o600"

    # the review step: a new password and a new priority, --check --diff -v
    rc, out = run(tmpdir, inventory(NEW_PASSWORD, 160), "--check", "--diff", "-v", "-l", "rep1")
    assert rc == 0, out
    assert PASSWORD not in out and NEW_PASSWORD not in out, out
    # the password file is reported changed without its content; keepalived.conf's diff is still shown
    assert re.search(r"^-\s+priority 150$", out, re.M) and re.search(r"^\+\s+priority 160$", out, re.M), out
    assert "censored" in out or "no_log" in out, out
    assert open(os.path.join(tmpdir, "auth.conf")).read() == "auth_pass %s\n" % PASSWORD  # check mode: unchanged


def test_hostname_with_a_newline_is_refused_with_its_name(tmp_path):
    evil = "rep1\nstartup_script /tmp/pwned"
    group = dict(LAB_GROUP, logfwdr_syslog_bridge=False)
    inv = {"all": {"children": {"replicators": {"hosts": {evil: host(2), "rep2": host(3)}, "vars": group}}}}
    proc = run_playbook(str(tmp_path), inv)
    assert proc.returncode != 0
    assert "inventory_hostname: 'rep1\\\\nstartup_script /tmp/pwned' cannot be keepalived's router_id" in proc.stdout, \
        proc.stdout
    assert not [p for p in os.listdir(str(tmp_path)) if p.startswith("rep1") and p.endswith(".conf")]


def test_world_readable_tls_key_is_refused(tmp_path):
    files = {}
    for name, mode in (("ca.pem", 0o644), ("bridge.pem", 0o644), ("open.key", 0o644), ("closed.key", 0o600)):
        path = tmp_path / name
        path.write_text("PEM\n")
        os.chmod(str(path), mode)
        files[name] = str(path)
    group = dict(LAB_GROUP, logfwdr_vrrp=False, logfwdr_syslog_bridge_tls=True,
                 logfwdr_syslog_bridge_tls_cert_file=files["bridge.pem"])
    inv = {"all": {"children": {"replicators": {"hosts": {
        "open": host(2, logfwdr_syslog_bridge_tls_key_file=files["open.key"]),
        "closed": host(3, logfwdr_syslog_bridge_tls_key_file=files["closed.key"])}, "vars": group}}}}
    proc = run_playbook(str(tmp_path), inv)
    fatal = dict(re.findall(r"^fatal: \[(\w+)\]: FAILED! => (.*)$", proc.stdout, re.M))
    assert sorted(fatal) == ["open"], proc.stdout
    assert ("logfwdr_syslog_bridge_tls_key_file: %s on open has mode 0644: everyone can read the private key"
            % files["open.key"]) in fatal["open"], fatal


def test_vrrp_macs_are_checked_against_the_interfaces(tmpdir):
    """The peer admits VRRP only from logfwdr_vrrp_macs: a wrong one stops the run in validate.yml (which reads the
    real interfaces, here the namespace's), naming it."""
    good = inventory("", 150)
    good["all"]["children"]["replicators"]["vars"].update(logfwdr_vrrp_version=3, logfwdr_vrrp_advert_interval=0.2)
    group = good["all"]["children"]["replicators"]["vars"]
    group.pop("logfwdr_vrrp_auth_pass")
    group["logfwdr_vrrp_macs"] = {"vec1": "52:54:00:00:00:01", "vec2": "52:54:00:00:00:02"}
    rc, out = run(tmpdir, good, "-l", "rep1", tasks=())
    assert rc == 0, out
    group["logfwdr_vrrp_macs"] = {"vec1": "52:54:00:00:00:01", "vec2": "52:54:00:00:00:09"}
    rc, out = run(tmpdir, good, "-l", "rep1", tasks=())
    assert rc != 0
    assert ("logfwdr_vrrp_macs.vec2: 52:54:00:00:00:09 in the inventory, but rep1's vec2 has 52:54:00:00:00:02; the "
            "peer admits VRRP only from this MAC") in out, out
