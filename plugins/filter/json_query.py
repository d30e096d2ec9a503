# -*- coding: utf-8 -*-
# Copyright: (c) 2026, logfwdr developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
name: json_query
short_description: Select data with a JMESPath expression
version_added: "0.1.0"
description:
  - Runs a JMESPath expression (U(https://jmespath.org)) against the input and returns the result.
  - Does what C(community.general.json_query) does, so playbooks of this collection need no other collection.
  - Values are copied to plain Python types first, so JMESPath type checks (C(contains), C(length), ...) work on
    Ansible's variables.
positional: expr
options:
  _input:
    description: The data to query (the output of C(ip -j), a registered result, an inventory variable).
    type: raw
    required: true
  expr:
    description: The JMESPath expression.
    type: str
    required: true
requirements:
  - jmespath on the Ansible controller
author:
  - logfwdr developers
"""

EXAMPLES = r"""
- name: Names of the interfaces that are up
  ansible.builtin.debug:
    msg: "{{ ip_addr.stdout | from_json | netops.logfwdr.json_query('[?contains(flags, `UP`)].ifname') }}"

- name: Collectors that want syslog
  ansible.builtin.debug:
    msg: "{{ logfwdr_collectors | netops.logfwdr.json_query(\"[?contains(protocols, 'syslog')].name\") }}"
"""

RETURN = r"""
_value:
  description: The result of the expression (C(null) when nothing matches a single-value expression).
  type: raw
"""

from ansible.errors import AnsibleFilterError

try:
    import jmespath

    HAS_JMESPATH = True
except ImportError:
    HAS_JMESPATH = False


def plain(value):
    """A copy of `value` made of builtin types only.

    JMESPath decides a value's type by its class name, and Ansible hands
    filters subclasses of str, list and dict.
    """
    if isinstance(value, dict):
        return dict((plain(k), plain(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, str):
        return str(value)
    return value


def json_query(data, expr):
    if not HAS_JMESPATH:
        raise AnsibleFilterError("netops.logfwdr.json_query needs the Python package jmespath on the controller "
                                 "(pip install jmespath, or apt install python3-jmespath)")
    try:
        return jmespath.search(str(expr), plain(data))
    except jmespath.exceptions.JMESPathError as exc:
        raise AnsibleFilterError("json_query: %s in expression %r" % (exc, str(expr)))


class FilterModule(object):
    def filters(self):
        return {"json_query": json_query}
