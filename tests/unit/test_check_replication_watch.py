# -*- coding: utf-8 -*-
"""check-replication's parts that need no tc rules: the bridge's listening check, read from this machine's
/proc/net/tcp{,6} against real sockets, and the watcher's state file (0 healthy, 1 failed)."""

import importlib.util
import os
import socket

SCRIPT = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                      "roles", "logfwdr", "files", "check_replication.py")
SPEC = importlib.util.spec_from_file_location("check_replication", SCRIPT)
CHECK = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(CHECK)


def test_listening_sees_a_real_listener_and_its_absence():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    assert not CHECK.listening(port)          # bound, not listening yet
    s.listen(1)
    assert CHECK.listening(port)
    s.close()
    assert not CHECK.listening(port)


def test_a_connected_client_socket_is_not_a_listener():
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    cli = socket.create_connection(srv.getsockname())
    try:
        assert not CHECK.listening(cli.getsockname()[1])
    finally:
        cli.close()
        srv.close()


def test_state_file_is_replaced_whole(tmp_path):
    path = str(tmp_path / "health")
    CHECK.write_state(path, 1)
    assert open(path).read() == "1\n"
    CHECK.write_state(path, 0)
    assert open(path).read() == "0\n"
    assert os.listdir(str(tmp_path)) == ["health"]


def test_one_shot_fails_without_an_expectation_file(tmp_path, capsys):
    rc = CHECK.main(["--expected", str(tmp_path / "missing.json")])
    assert rc == 1
    assert "cannot read" in capsys.readouterr().err
