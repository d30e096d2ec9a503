# -*- coding: utf-8 -*-
import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.netops.logfwdr.plugins.filter.json_query import FilterModule, json_query, plain

IP_ADDR = [
    {"ifname": "lo", "flags": ["LOOPBACK", "UP"],
     "addr_info": [{"family": "inet", "local": "127.0.0.1", "prefixlen": 8}]},
    {"ifname": "vec1", "flags": ["BROADCAST", "UP", "LOWER_UP"],
     "addr_info": [{"family": "inet", "local": "10.10.1.2", "prefixlen": 24},
                   {"family": "inet6", "local": "fe80::1", "prefixlen": 64}]},
    {"ifname": "vec2", "flags": ["BROADCAST"], "addr_info": []},
]


class TaggedStr(str):
    """Stands for the str subclasses Ansible hands to filters."""


class TaggedList(list):
    pass


def test_registered():
    assert FilterModule().filters()["json_query"] is json_query


def test_queries_used_by_the_role():
    # tasks/interfaces.yml waits on these two
    assert json_query(IP_ADDR, "[?contains(flags, 'UP')].ifname") == ["lo", "vec1"]
    assert json_query(IP_ADDR, "[].addr_info[?family == 'inet'][].join('/', [local, to_string(prefixlen)])") == [
        "127.0.0.1/8", "10.10.1.2/24"]


def test_subclasses_of_builtin_types_work_with_type_checks():
    data = TaggedList([{TaggedStr("protocols"): TaggedList([TaggedStr("syslog")]), "name": TaggedStr("a")}])
    assert json_query(data, "[?contains(protocols, 'syslog')].name") == ["a"]
    assert plain(data)[0]["name"].__class__ is str


def test_bad_expression_is_a_filter_error():
    with pytest.raises(AnsibleFilterError, match="json_query"):
        json_query({}, "[?")
