# -*- coding: utf-8 -*-
# Copyright: (c) 2026, logfwdr developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The desired-state file of the `logfwdr` program: tc_mirror's parameters, checked against tc_mirror's own spec.

On a managed host there is no Ansible to apply the argument spec, so the few
rules it uses (types, choices, required, defaults, unknown keys) are applied
here, from the same spec, with the module's defaults.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import json

from ansible_collections.netops.logfwdr.plugins.module_utils.tc.argspec import tc_mirror_spec

DEFAULT_PATH = "/etc/logfwdr/state.json"


class StateError(Exception):
    pass


def _typed(value, kind, where, problems):
    if value is None or kind == "raw":
        return value
    if kind == "int":
        if isinstance(value, bool):
            problems.append("%s: %r is not a whole number" % (where, value))
            return None
        if isinstance(value, int):
            return value
        text = u"%s" % value
        if text.lstrip("-").isdigit():
            return int(text)
        problems.append("%s: %r is not a whole number" % (where, value))
        return None
    if kind == "str":
        if isinstance(value, (dict, list)):
            problems.append("%s: %r is not a string" % (where, value))
            return None
        return u"%s" % value
    if kind == "list":
        if not isinstance(value, list):
            problems.append("%s: a list is needed, not %r" % (where, value))
            return None
        return value
    if kind == "dict":
        if not isinstance(value, dict):
            problems.append("%s: a mapping is needed, not %r" % (where, value))
            return None
        return value
    return value


def _apply(spec, params, where, problems):
    out = {}
    for key in sorted(set(params) - set(spec)):
        problems.append("%s%s: unknown key; known are %s" % (where, key, ", ".join(sorted(spec))))
    for key, rule in spec.items():
        here = where + key
        if key not in params or params[key] is None:
            if rule.get("required"):
                problems.append("%s: required" % here)
            out[key] = copy.deepcopy(rule.get("default"))
            continue
        value = _typed(params[key], rule.get("type", "str"), here, problems)
        if value is not None and rule.get("choices") and value not in rule["choices"]:
            problems.append("%s: %r; use one of %s" % (here, value, ", ".join(rule["choices"])))
        if value is not None and rule.get("options"):
            if rule.get("type") == "list":
                items = []
                for i, item in enumerate(value):
                    if not isinstance(item, dict):
                        problems.append("%s[%d]: a mapping is needed, not %r" % (here, i, item))
                        continue
                    items.append(_apply(rule["options"], item, "%s[%d]." % (here, i), problems))
                value = items
            else:
                value = _apply(rule["options"], value, here + ".", problems)
        out[key] = value
    return out


def normalize(raw):
    """A parsed state (dict) -> tc_mirror's parameters with defaults, or StateError naming every problem."""
    if not isinstance(raw, dict):
        raise StateError("the state must be a mapping with devices (and priority, chain), not %r" % type(raw).__name__)
    problems = []
    params = _apply(tc_mirror_spec(), raw, "", problems)
    if problems:
        raise StateError("; ".join(problems))
    return params


def parse(text):
    """JSON, or YAML when PyYAML is there (JSON is YAML too, so the role writes JSON)."""
    try:
        return json.loads(text)
    except ValueError as json_exc:
        try:
            import yaml
        except ImportError:
            raise StateError("not JSON (%s), and PyYAML is not installed to read YAML" % json_exc)
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise StateError("neither JSON nor YAML: %s" % exc)


def load(path):
    try:
        with open(path) as handle:
            text = handle.read()
    except (IOError, OSError) as exc:
        raise StateError("cannot read %s: %s" % (path, exc))
    try:
        return normalize(parse(text))
    except StateError as exc:
        raise StateError("%s: %s" % (path, exc))
