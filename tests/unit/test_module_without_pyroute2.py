"""tc_mirror on a host without pyroute2 (a fresh host before the role installed it)."""
import json
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODULE = os.path.join(REPO, "plugins", "modules", "tc_mirror.py")
# the module process, with every pyroute2 import failing as it does where the package is missing
RUN = ("import runpy, sys; sys.modules['pyroute2'] = None; sys.argv = [sys.argv[1], sys.argv[2]]; "
       "runpy.run_path(sys.argv[0], run_name='__main__')")
ARGS = {"devices": [{"name": "ens1", "ports": [{"port": "syslog", "destinations": [{"address": "192.0.2.10"}]}]}]}


def run(tmp_path, check_mode):
    path = tmp_path / "args.json"
    path.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": dict(ARGS, _ansible_check_mode=check_mode)}))
    env = dict(os.environ, PYTHONPATH=os.path.join(REPO, ".build", "collections"))
    proc = subprocess.run([sys.executable, "-c", RUN, MODULE, str(path)], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, env=env, check=False)
    return json.loads(proc.stdout)


def test_check_mode_reports_the_change_and_warns(tmp_path):
    res = run(tmp_path, True)
    assert not res.get("failed"), res
    assert res["changed"] is True and res["pyroute2_missing"] is True
    assert "pyroute2 is not installed" in json.dumps(res["warnings"])


def test_a_real_run_still_fails_and_names_the_library(tmp_path):
    res = run(tmp_path, False)
    assert res.get("failed") is True and "pyroute2" in res["msg"], res
