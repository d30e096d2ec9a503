# -*- coding: utf-8 -*-
"""The role's replication check (roles/logfwdr/files/check-replication) against the host kernel.

keepalived runs the check on each replicator; a failure moves the exporters' addresses to the peer.  Here the
rules are built by the real tc_mirror module in a throwaway namespace, the expectation file by the role's
replication_expected filter, and the script runs with each pyroute2 release (Debian 12's 0.7.2 and 0.9.x):
it must pass on the complete state and fail, with a one-line reason, once a node, a dispatch rule or the qdisc
is gone.

Interpreters: LOGFWDR_TEST_PYTHONS (colon-separated) when set, else every one of .venv and
.venv-pyroute2-0.7.2 that exists.  Run: .venv/bin/pytest tests/integration/test_check_replication_netns.py
"""

import json
import os
import subprocess
import sys
import tempfile

import netlab
import pytest

from conftest import dest_nodes, parse_nodes

sys.path.insert(0, netlab.ensure_collection_path())
from ansible_collections.netops.logfwdr.plugins.filter.replication_expected import (  # noqa: E402
    replication_expected)

pytestmark = pytest.mark.netns

PRIO = 5140
SCRIPT = os.path.join(netlab.REPO, "roles", "logfwdr", "files", "check_replication.py")


def _check_pythons():
    raw = [p for p in os.environ.get("LOGFWDR_TEST_PYTHONS", "").split(":") if p]
    if raw:
        return raw
    found = [os.path.join(netlab.REPO, v, "bin", "python") for v in (".venv", ".venv-pyroute2-0.7.2")]
    return [p for p in found if os.path.exists(p)] or [sys.executable]


def _env():
    return dict((k, v) for k, v in os.environ.items() if k != "PYTHONPATH")


def _pyroute2_version(python):
    proc = subprocess.run([python, "-c", "import pyroute2; print(pyroute2.__version__)"], env=_env(),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else None


CHECK_PYTHONS = _check_pythons()


@pytest.fixture(params=CHECK_PYTHONS, ids=["pyroute2-%s" % _pyroute2_version(p) for p in CHECK_PYTHONS])
def python(request):
    if _pyroute2_version(request.param) is None:
        pytest.fail("%s has no pyroute2" % request.param)
    return request.param


def test_both_pyroute2_releases_are_covered():
    """Without LOGFWDR_TEST_PYTHONS this file must run the script under 0.7.2 and 0.9.x."""
    if os.environ.get("LOGFWDR_TEST_PYTHONS"):
        pytest.skip("interpreters chosen by LOGFWDR_TEST_PYTHONS")
    versions = sorted(_pyroute2_version(p) or "none" for p in CHECK_PYTHONS)
    assert any(v.startswith("0.7.") for v in versions), versions
    assert any(v.startswith("0.9.") for v in versions), versions


def mirror(name, device, **extra):
    return dict(extra, name=name, mode="mirror", device=device)


# what replication_devices hands tc_mirror: 514 -> col0, col1 (two allow-listed prefixes: two nodes); 2055 -> col2
DEVICES = [{"name": "in0", "ports": [
    {"port": 514, "destinations": [mirror("col0", "tool0"),
                                   mirror("col1", "tool1", sources=["10.77.0.0/24", "10.99.0.0/16"])]},
    {"port": 2055, "destinations": [mirror("col2", "tool2")]},
]}, {"name": "tool3", "ports": []}]
# col0 taken from 514
DEVICES_B = [{"name": "in0", "ports": [
    {"port": 514, "destinations": [mirror("col1", "tool1", sources=["10.77.0.0/24", "10.99.0.0/16"])]},
    {"port": 2055, "destinations": [mirror("col2", "tool2")]},
]}, {"name": "tool3", "ports": []}]


class Check(object):
    """A lab with DEVICES applied by tc_mirror, and the check script run in its replicator namespace."""

    def __init__(self, lab, python, tmpdir):
        self.lab = lab
        self.python = python
        self.tmpdir = tmpdir
        lab.add_receivers(4)

    def apply(self, devices):
        result = self.lab.run_module({"priority": PRIO, "devices": devices})
        assert not result.get("failed"), result
        return result

    def expect(self, devices, previous=None, priority=PRIO):
        data = replication_expected(devices, priority, previous=previous)
        path = os.path.join(self.tmpdir, "expected.json")
        with open(path, "w") as handle:
            json.dump(data, handle)
        return data

    def run(self, *args, **kw):
        path = kw.get("path", os.path.join(self.tmpdir, "expected.json"))
        proc = netlab.sh("ip", "netns", "exec", self.lab.rep, self.python, SCRIPT, "--expected", path, *args,
                         check=False, env=_env())
        return proc.returncode, proc.stdout, proc.stderr

    def passes(self):
        rc, out, err = self.run("-v")
        assert (rc, err) == (0, ""), (rc, out, err)
        assert out.splitlines()[-1] == "replication in place"
        return out

    def fails(self):
        rc, out, err = self.run()
        assert rc == 1, (rc, out, err)
        assert out == ""
        lines = err.splitlines()
        assert len(lines) == 1, err
        return lines[0]

    def nodes(self):
        return parse_nodes(self.lab.tc("-s", "filter", "show", "dev", "in0", "ingress").stdout)


@pytest.fixture
def check(lab, python):
    tmpdir = tempfile.mkdtemp(prefix="logfwdr-check-")
    try:
        yield Check(lab, python, tmpdir)
    finally:
        for name in os.listdir(tmpdir):
            os.unlink(os.path.join(tmpdir, name))
        os.rmdir(tmpdir)


def test_expectation_counts_one_mirred_per_destination_and_prefix():
    data = replication_expected(DEVICES, PRIO)
    assert data == {"priority": PRIO, "chain": 0, "devices": [
        {"name": "in0", "mirred": 4, "ports": [{"port": 514, "mirred": 3}, {"port": 2055, "mirred": 1}]},
        {"name": "tool3", "mirred": 0, "ports": []}]}


def test_passes_when_in_place_fails_when_a_node_is_deleted(check):
    check.apply(DEVICES)
    check.expect(DEVICES)
    # the kernel holds what the expectation counts: 3 mirred nodes behind 514, 1 behind 2055
    text = check.lab.tc("-s", "filter", "show", "dev", "in0", "ingress").stdout
    assert sorted((k, len(v)) for k, v in dest_nodes(text, 514).items()) == [("col0", 1), ("col1", 2)]
    out = check.passes()
    assert "in0: udp/514: 3 copies (3 expected)" in out
    assert "in0: udp/2055: 1 copies (1 expected)" in out
    assert "tool3: nothing to replicate" in out

    handle = dest_nodes(text, 514)["col1"][0]
    check.lab.tc("filter", "del", "dev", "in0", "ingress", "protocol", "ip", "prio", str(PRIO), "handle", handle,
                 "u32")
    assert handle not in check.nodes()
    assert check.fails() == "replication not in place: in0: udp/514: 2 of 3 copies (mirred actions) in place"

    check.apply(DEVICES)  # the role's next run puts it back
    check.passes()


def test_fails_when_the_dispatch_rule_is_deleted(check):
    check.apply(DEVICES)
    check.expect(DEVICES)
    check.passes()
    dispatch = [fh for fh, n in check.nodes().items() if n["port"] == 2055 and n["link"]]
    assert len(dispatch) == 1
    check.lab.tc("filter", "del", "dev", "in0", "ingress", "protocol", "ip", "prio", str(PRIO), "handle",
                 dispatch[0], "u32")
    assert check.fails() == "replication not in place: in0: udp/2055: no dispatch rule at tc priority %d" % PRIO


def test_fails_when_the_qdisc_is_deleted(check):
    check.apply(DEVICES)
    check.expect(DEVICES)
    check.passes()
    check.lab.tc("qdisc", "del", "dev", "in0", "ingress")
    assert check.fails() == "replication not in place: in0: no ingress qdisc"


def test_fails_when_fewer_than_expected_or_elsewhere(check):
    check.apply(DEVICES)
    data = check.expect(DEVICES)
    data["devices"][0]["ports"][1]["mirred"] = 2  # the inventory wants one more copy of 2055 than installed
    with open(os.path.join(check.tmpdir, "expected.json"), "w") as handle:
        json.dump(data, handle)
    assert check.fails() == "replication not in place: in0: udp/2055: 1 of 2 copies (mirred actions) in place"
    # the rules of another priority are not the role's
    check.expect(DEVICES, priority=PRIO + 1)
    assert check.fails() == "replication not in place: in0: no replication rules at tc priority %d" % (PRIO + 1)


def test_interface_missing_and_expectation_unreadable(check):
    check.apply(DEVICES)
    data = check.expect(DEVICES)
    data["devices"].append({"name": "nosuch0", "mirred": 1, "ports": [{"port": 514, "mirred": 1}]})
    with open(os.path.join(check.tmpdir, "expected.json"), "w") as handle:
        json.dump(data, handle)
    assert check.fails() == "replication not in place: nosuch0: no such interface"
    rc, out, err = check.run(path=os.path.join(check.tmpdir, "missing.json"))
    assert rc == 1 and out == "" and len(err.splitlines()) == 1
    assert err.startswith("replication not checked: cannot read ")


def test_nothing_expected_passes_without_rules(check):
    """Before the first collector (or with none): no qdisc, no rules, nothing to miss."""
    check.expect([{"name": "in0", "ports": []}])
    assert "ingress" not in check.lab.tc("qdisc", "show", "dev", "in0").stdout
    assert "in0: nothing to replicate" in check.passes()


def test_removing_a_collector_keeps_the_relaxed_check_passing(check):
    """The role lowers the expectation before tc_mirror removes rules, and raises it after adding them."""
    check.apply(DEVICES)
    old = check.expect(DEVICES)
    relaxed = check.expect(DEVICES_B, previous=old)  # written before tc_mirror runs
    assert relaxed["devices"][0]["ports"] == [{"port": 514, "mirred": 2}, {"port": 2055, "mirred": 1}]
    check.passes()  # old rules still in place: at least the relaxed counts
    check.apply(DEVICES_B)
    check.passes()  # new rules: exactly the relaxed counts
    check.expect(DEVICES)  # the old, higher expectation would have failed meanwhile
    assert "udp/514: 2 of 3" in check.fails()
    check.expect(DEVICES_B)  # written after tc_mirror
    check.passes()
    # and back: adding col0 again raises the expectation only after the rules are there
    relaxed = check.expect(DEVICES, previous=replication_expected(DEVICES_B, PRIO))
    assert relaxed["devices"][0]["ports"][0] == {"port": 514, "mirred": 2}
    check.passes()
