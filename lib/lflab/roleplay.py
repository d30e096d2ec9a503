# -*- coding: utf-8 -*-
"""The start of a tiny playbook that runs the role's validate.yml on fake hosts (connection local), so a test or
the netns lab can render the role's templates from exactly the views the role builds: one text, not a copy per
test."""


def validate_play(name):
    """A play named `name` whose first task is the role's validate.yml (public: its facts stay for the tasks
    appended after this text, indented as tasks of the play)."""
    return """
- name: %s
  hosts: all
  gather_facts: false
  tasks:
    - name: Validate the inventory like the role does
      ansible.builtin.include_role:
        name: netops.logfwdr.logfwdr
        tasks_from: validate.yml
        public: true
""" % name
