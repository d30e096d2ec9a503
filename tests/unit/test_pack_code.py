"""files/pack_code.py: the archive the role unpacks on the host holds an importable copy of the program."""
import os
import shutil
import subprocess
import sys
import tarfile

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PACKER = os.path.join(REPO, "roles", "logfwdr", "files", "pack_code.py")
SRC = os.path.join(REPO, "plugins", "module_utils", "tc")
PREFIX = "ansible_collections/netops/logfwdr/plugins/module_utils/tc"


def _pack(out, src=SRC):
    subprocess.run([sys.executable, PACKER, str(out), str(src), PREFIX], check=True)
    with open(str(out), "rb") as f:
        return f.read()


def test_the_unpacked_archive_imports_as_the_program(tmp_path):
    archive = tmp_path / "code.tar"
    _pack(archive)
    dest = tmp_path / "lib"
    dest.mkdir()
    # the host's tar, as ansible.builtin.unarchive runs it
    subprocess.run(["tar", "-C", str(dest), "-xf", str(archive)], check=True)
    sources = sorted(n for n in os.listdir(SRC) if n.endswith(".py"))
    assert sorted(os.listdir(str(dest / PREFIX))) == sources
    for n in sources:
        with open(os.path.join(SRC, n), "rb") as a, open(str(dest / PREFIX / n), "rb") as b:
            assert a.read() == b.read(), n
    proc = subprocess.run(
        [sys.executable, "-I", "-c",
         "import sys; sys.path.insert(0, sys.argv[1]); "
         "from ansible_collections.netops.logfwdr.plugins.module_utils.tc import cli, agent; print(cli.__file__)",
         str(dest)], stdout=subprocess.PIPE, universal_newlines=True, check=True)
    assert proc.stdout.strip() == str(dest / PREFIX / "cli.py")


def test_the_same_code_gives_the_same_bytes_and_changed_code_a_new_time(tmp_path):
    src = tmp_path / "src"
    shutil.copytree(SRC, str(src))
    first = _pack(tmp_path / "a.tar", src)
    assert _pack(tmp_path / "b.tar", src) == first
    with tarfile.open(str(tmp_path / "a.tar")) as tar:
        before = {m.name: m for m in tar.getmembers()}
    assert all(m.uid == 0 and m.gid == 0 and m.uname == "root" for m in before.values())
    # every package level has its __init__.py (tc's own comes from the source)
    parts = PREFIX.split("/")
    assert {"/".join(parts[:i]) + "/__init__.py" for i in range(1, len(parts) + 1)} <= set(before)
    with open(str(src / "cli.py"), "a") as f:
        f.write("# changed\n")
    assert _pack(tmp_path / "c.tar", src) != first
    with tarfile.open(str(tmp_path / "c.tar")) as tar:
        after = {m.name: m for m in tar.getmembers()}
    cli = PREFIX + "/cli.py"
    assert after[cli].mtime != before[cli].mtime
    assert after[PREFIX + "/agent.py"].mtime == before[PREFIX + "/agent.py"].mtime
