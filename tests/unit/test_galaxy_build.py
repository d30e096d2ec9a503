"""The Galaxy tarball holds what users run, and nothing of the lab, the benchmarks or the tooling."""
import os
import subprocess
import sys
import tarfile

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_the_built_collection_holds_what_users_run_and_nothing_else(tmp_path):
    galaxy = os.path.join(os.path.dirname(sys.executable), "ansible-galaxy")
    proc = subprocess.run([galaxy, "collection", "build", "--output-path", str(tmp_path), REPO],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, check=False)
    assert proc.returncode == 0, proc.stdout
    tarballs = list(tmp_path.glob("netops-logfwdr-*.tar.gz"))
    assert len(tarballs) == 1, proc.stdout
    with tarfile.open(str(tarballs[0])) as tar:
        names = set(m.name for m in tar.getmembers())
    for wanted in ("MANIFEST.json", "FILES.json", "README.md", "meta/runtime.yml", "playbooks/site.yml",
                   "plugins/modules/tc_mirror.py", "plugins/module_utils/tc/runner.py",
                   "roles/logfwdr/tasks/main.yml", "roles/logfwdr/meta/argument_specs.yml", "docs/role.md",
                   "inventories/example/group_vars/replicators.yml", "changelogs/fragments"):
        assert wanted in names, wanted
    top = set(n.split("/")[0] for n in names)
    assert top <= {"MANIFEST.json", "FILES.json", "README.md", "meta", "playbooks", "plugins", "roles", "docs",
                   "inventories", "changelogs", "requirements.txt"}, sorted(top)
    assert not [n for n in names if n.startswith("inventories/lab") or "__pycache__" in n or n.endswith(".pyc")]
