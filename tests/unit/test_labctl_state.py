# -*- coding: utf-8 -*-
"""lab/labctl's state file under concurrent `labctl start` (bench/boot_rules.py --both boots both replicators at
once): each process's guest pid must land, and no process may fail on another's temporary file."""

import importlib.util
import json
import multiprocessing
import os

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load_labctl(state_dir):
    spec = importlib.util.spec_from_file_location("labctl_under_test", os.path.join(REPO, "lab", "labctl.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    mod.STATE_DIR = state_dir
    mod.STATE_FILE = state_dir / "state.json"
    return mod


def writer(state_dir, name, rounds, errors):
    mod = load_labctl(state_dir)
    try:
        for i in range(rounds):
            mod.set_guest_pid(name, i)
    except Exception as exc:  # reported to the test, which fails with it
        errors.put("%s: %r" % (name, exc))


def test_two_starts_at_once_keep_both_pids(tmp_path):
    mod = load_labctl(tmp_path)
    mod.write_state({"hosts": {"a": {"pid": None}, "b": {"pid": None}}})
    errors = multiprocessing.Queue()
    procs = [multiprocessing.Process(target=writer, args=(tmp_path, name, 200, errors)) for name in ("a", "b")]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
    assert errors.empty(), errors.get()
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["hosts"] == {"a": {"pid": 199}, "b": {"pid": 199}}
    assert not list(tmp_path.glob("*.tmp"))
