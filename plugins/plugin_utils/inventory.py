# -*- coding: utf-8 -*-
# Copyright: (c) 2026, logfwdr developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the role's filters share on the controller: the problem collector and the role's defaults."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import yaml

ROLE_DEFAULTS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                             "roles", "logfwdr", "defaults", "main.yml")
_loaded = {}


class Problems(list):
    """Every problem found in an inventory, one line each ("field: what is wrong; the fix"), each once: a
    list-wide field is checked once per protocol or interface."""

    def add(self, where, text):
        line = "%s: %s" % (where, text)
        if line not in self:
            self.append(line)


def _defaults():
    if "data" not in _loaded:
        with open(ROLE_DEFAULTS) as f:
            _loaded["data"] = yaml.safe_load(f)
    return _loaded["data"]


def role_defaults(names, prefix=""):
    """The role's defaults (defaults/main.yml) for prefix + each name, keyed by name: a filter's fallback for a
    setting it was not given is the role's own default, never a second copy of it."""
    data = _defaults()
    missing = [prefix + n for n in names if prefix + n not in data]
    if missing:
        raise KeyError("not in %s: %s" % (ROLE_DEFAULTS, ", ".join(missing)))
    return dict((n, data[prefix + n]) for n in names)


def role_defaults_under(prefix):
    """Every role default whose name starts with prefix, keyed by the rest of its name: the settings a filter
    knows are the role's, so a default added to the role is known to the filter without a second list."""
    return dict((k[len(prefix):], v) for k, v in _defaults().items() if k.startswith(prefix))
