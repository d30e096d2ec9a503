"""The Galaxy tarball holds what users run, and installs and runs like any collection."""
import os
import subprocess
import sys
import tarfile

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)


def _run(argv, cwd, env=None):
    proc = subprocess.run(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, check=False)
    assert proc.returncode == 0, "%s\n%s" % (" ".join(argv), proc.stdout)
    return proc.stdout


@pytest.fixture(scope="module")
def tarball(tmp_path_factory):
    out = tmp_path_factory.mktemp("build")
    log = _run([os.path.join(BIN, "ansible-galaxy"), "collection", "build", "--output-path", str(out), REPO],
               cwd=str(out))
    tarballs = list(out.glob("netops-logfwdr-*.tar.gz"))
    assert len(tarballs) == 1, log
    return tarballs[0]


def test_the_built_collection_holds_what_users_run_and_nothing_else(tarball):
    with tarfile.open(str(tarball)) as tar:
        names = set(m.name for m in tar.getmembers())
    for wanted in ("MANIFEST.json", "FILES.json", "README.md", "meta/runtime.yml", "playbooks/site.yml",
                   "plugins/modules/tc_mirror.py", "plugins/module_utils/tc/runner.py",
                   "roles/logfwdr/tasks/main.yml", "roles/logfwdr/meta/argument_specs.yml", "roles/logfwdr/files/pack_code.py",
                   "docs/role.md", "docs/architecture.md",
                   "docs/install.md", "prometheus/logfwdr-alerts.yml", "inventories/example/group_vars/replicators.yml", "changelogs/fragments"):
        assert wanted in names, wanted
    top = set(n.split("/")[0] for n in names)
    assert top <= {"MANIFEST.json", "FILES.json", "README.md", "meta", "playbooks", "plugins", "roles", "docs",
                   "inventories", "changelogs", "requirements.txt", "prometheus"}, sorted(top)
    assert not [n for n in names if n.startswith("inventories/lab") or "__pycache__" in n or n.endswith(".pyc")]


def test_the_tarball_installs_into_an_empty_collections_path_and_runs(tarball, tmp_path):
    """docs/install.md, as a user follows it: nothing from this checkout's ansible.cfg or .build is used."""
    colls = tmp_path / "collections"
    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(ANSIBLE_COLLECTIONS_PATH=str(colls), ANSIBLE_LOCAL_TEMP=str(tmp_path / "tmp"),
               ANSIBLE_HOME=str(tmp_path / "home"), HOME=str(tmp_path))
    _run([os.path.join(BIN, "ansible-galaxy"), "collection", "install", "--offline", str(tarball), "-p", str(colls)],
         cwd=str(work), env=env)
    installed = colls / "ansible_collections" / "netops" / "logfwdr"
    assert (installed / "MANIFEST.json").is_file()
    listing = _run([os.path.join(BIN, "ansible-galaxy"), "collection", "list", "-p", str(colls)], cwd=str(work),
                   env=env)
    assert "netops.logfwdr" in listing, listing
    doc = _run([os.path.join(BIN, "ansible-doc"), "netops.logfwdr.tc_mirror"], cwd=str(work), env=env)
    assert str(installed / "plugins" / "modules" / "tc_mirror.py") in doc, doc[:400]
    role_doc = _run([os.path.join(BIN, "ansible-doc"), "-t", "role", "netops.logfwdr.logfwdr"], cwd=str(work),
                    env=env)
    assert "logfwdr_collectors" in role_doc, role_doc[:400]
    check = _run([os.path.join(BIN, "ansible-playbook"), "netops.logfwdr.site", "--syntax-check",
                  "-i", str(installed / "inventories" / "example")], cwd=str(work), env=env)
    assert "playbook: %s" % (installed / "playbooks" / "site.yml") in check, check
