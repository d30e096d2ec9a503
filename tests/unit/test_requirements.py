# -*- coding: utf-8 -*-
"""requirements.txt gives users ranges; the pinned sets CI installs (requirements-ci.txt, the oldest ansible-core's
requirements-ansible-2.18.txt) must lie inside them, and meta/runtime.yml must claim no older ansible-core than
CI tests."""

import os
import re

import yaml
from packaging.requirements import Requirement

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def read(name):
    out = {}
    for line in open(os.path.join(REPO, name)):
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-r"):
            req = Requirement(line)
            out[req.name.lower()] = req
    return out


def test_pinned_sets_are_inside_the_user_ranges():
    ranges = read("requirements.txt")
    assert all(not str(r.specifier).startswith("==") for r in ranges.values()), ranges
    for pinned_file in ("requirements-ci.txt", "requirements-ansible-2.18.txt"):
        pins = read(pinned_file)
        for name, req in ranges.items():
            assert name in pins, "%s does not pin %s" % (pinned_file, name)
            version = str(pins[name].specifier).lstrip("=")
            assert req.specifier.contains(version), "%s pins %s %s, outside %s in requirements.txt" % (
                pinned_file, name, version, req.specifier)


def test_requires_ansible_is_the_oldest_release_ci_tests():
    runtime = yaml.safe_load(open(os.path.join(REPO, "meta", "runtime.yml")))
    claimed = re.match(r"^>=(\d+\.\d+)", runtime["requires_ansible"]).group(1)
    oldest = str(read("requirements-ansible-2.18.txt")["ansible-core"].specifier).lstrip("=")
    assert oldest.startswith(claimed + "."), (runtime["requires_ansible"], oldest)
    assert read("requirements.txt")["ansible-core"].specifier.contains(claimed + ".0")
