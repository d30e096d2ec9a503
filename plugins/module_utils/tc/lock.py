# -*- coding: utf-8 -*-
# Copyright: (c) 2026, logfwdr developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One writer at a time: the module, the logfwdr command and its agent take this lock
around read, plan, apply and read-back, so two runs never interleave their changes."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import errno
import fcntl
import os
import time

DEFAULT_PATH = "/run/lock/logfwdr.lock"


class Busy(Exception):
    pass


def path():
    return os.environ.get("LOGFWDR_LOCK") or DEFAULT_PATH


@contextlib.contextmanager
def writer(timeout=30.0, lock_path=None):
    """Hold the exclusive lock; wait at most `timeout` seconds for it, then raise Busy."""
    lock_path = lock_path or path()
    directory = os.path.dirname(lock_path)
    if directory and not os.path.isdir(directory):
        os.makedirs(directory, 0o755)
    handle = open(lock_path, "a+")
    try:
        deadline = time.time() + timeout
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except (IOError, OSError) as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                if time.time() >= deadline:
                    raise Busy("another logfwdr run (module, logfwdr apply or the agent) has held %s for %.0f s; "
                               "wait for it to finish, or find it with `fuser %s`" % (lock_path, timeout, lock_path))
                time.sleep(0.05)
        yield
    finally:
        handle.close()  # closing the descriptor releases the lock
