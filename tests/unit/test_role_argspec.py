# -*- coding: utf-8 -*-
"""meta/argument_specs.yml and defaults/main.yml of the role describe the same variables."""

import os

import yaml

ROLE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "roles", "logfwdr")
DEFAULTS_FILE = os.path.join(ROLE, "defaults", "main.yml")
DEFAULTS = yaml.safe_load(open(DEFAULTS_FILE))
SPEC = yaml.safe_load(open(os.path.join(ROLE, "meta", "argument_specs.yml")))["argument_specs"]["main"]["options"]


def walk(options, path=""):
    for name, option in options.items():
        yield path + name, option
        yield from walk(option.get("options") or {}, path + name + ".")


def test_every_default_is_in_the_spec_with_the_same_value():
    for name, value in DEFAULTS.items():
        assert name in SPEC, "%s is in defaults/main.yml but not in meta/argument_specs.yml" % name
        assert "default" in SPEC[name], "%s: argument_specs has no default" % name
        assert SPEC[name]["default"] == value, "%s: default differs between defaults and argument_specs" % name


def test_every_optional_spec_entry_is_in_defaults():
    for name, option in SPEC.items():
        if option.get("required"):
            assert name not in DEFAULTS, "%s is required in argument_specs but has a default" % name
            assert "default" not in option, name
        else:
            assert name in DEFAULTS, "%s is in argument_specs but not in defaults/main.yml" % name


def test_required_variables_are_documented_in_defaults():
    text = open(DEFAULTS_FILE).read()
    for name, option in SPEC.items():
        if option.get("required"):
            assert "# %s:" % name in text, "%s: show an example in the comments of defaults/main.yml" % name


def test_public_names_are_prefixed_and_described():
    for name, option in walk(SPEC):
        if "." not in name:
            assert name.startswith("logfwdr_"), name
        assert option.get("description"), "%s has no description" % name
        assert option.get("type"), "%s has no type" % name
        if option.get("type") == "list":
            assert option.get("elements"), "%s: list without elements" % name


def test_choices_contain_the_default():
    for name, option in walk(SPEC):
        if "choices" in option and "default" in option:
            assert option["default"] in option["choices"], name


def test_the_defaults_pass_the_spec_as_ansible_checks_it():
    """What the role's validate_argument_spec does at the start of a run, with the defaults and a minimal inventory
    (a default that its own spec refuses, like {} for a dict with required sub-options, fails every run)."""
    from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

    params = dict(DEFAULTS)
    for name, option in SPEC.items():
        if option.get("required"):
            params[name] = [] if option.get("type") == "list" else "x"
    result = ArgumentSpecValidator(SPEC).validate(params)
    assert not result.error_messages, result.error_messages
    pair = dict(params, logfwdr_vrrp_pair_link={"name": "eth9", "address": "10.255.255.1/30"})
    assert not ArgumentSpecValidator(SPEC).validate(pair).error_messages
