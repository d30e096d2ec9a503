# -*- coding: utf-8 -*-
"""lab/endpoints/lab_push.py, the one-run file writer of lab/playbooks/endpoints.yml: what it prints is what
decides `changed` and the restarts, so a second run must print nothing and a changed byte or mode must show."""

import json
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(REPO, "lab", "endpoints", "lab_push.py")


def push(spec):
    # as endpoints.yml runs it: python3 -c SOURCE, the spec on stdin
    with open(SCRIPT, encoding="utf-8") as f:
        source = f.read()
    out = subprocess.run([sys.executable, "-c", source], input=json.dumps(spec), capture_output=True, text=True,
                         check=True)
    return out.stdout.splitlines()


def test_writes_then_reports_nothing_then_only_what_changed(tmp_path):
    unit, tool = str(tmp_path / "etc" / "a.service"), str(tmp_path / "sbin" / "tool")
    spec = {"dirs": [str(tmp_path / "log")], "files": {unit: "[Unit]\n", tool: "print(1)"}, "modes": {tool: "0755"}}
    assert push(spec) == [str(tmp_path / "log"), unit, tool]
    with open(tool, encoding="utf-8") as f:
        assert f.read() == "print(1)\n"          # a trailing newline, as the template module writes
    assert os.stat(tool).st_mode & 0o7777 == 0o755
    assert os.stat(unit).st_mode & 0o7777 == 0o644
    assert push(spec) == []

    os.chmod(unit, 0o600)
    assert push(spec) == [unit]
    assert os.stat(unit).st_mode & 0o7777 == 0o644
    spec["files"][tool] = "print(2)\n"
    assert push(spec) == [tool]
    assert not [n for n in os.listdir(tmp_path / "sbin") if n != "tool"]   # no temporary file left behind
